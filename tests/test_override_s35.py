"""Worker processes writing cache entries and files outside the cache.

Every test runs real worker processes (``--parallel``, a Dask ``LocalCluster`` with
processes). Where a test needs two stage runs in two workers at once, each stage waits
for the other to start (a rendezvous through files), so that one worker cannot run both.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import assay
from assay.caches.fsspec import FsspecCacheStore
from assay.caching import JsonCacher
from conftest import (
    forget_project_modules,
    local_cluster,
    one_experiment_project,
    run_cli,
    use_s3_cache,
)

RENDEZVOUS = """
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def meet(count):
    \"\"\"Wait until ``count`` stage runs that meet have started, each in its own process.\"\"\"
    (ROOT / f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(ROOT.glob("started-*"))) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the other stage run never started: one worker ran both?")
        time.sleep(0.02)
"""

FIXED = (
    RENDEZVOUS
    + """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


@assay.stage(outputs=["summary"], cachers=[JsonCacher(str(ROOT / "results/summary.json"))])
def summarize(record):
    meet(MEET)
    return {"seed": record.params.seed}


MEET = 2


def get_params():
    return [Params(name="a", seed=1), Params(name="b", seed=2)]


def run(param_sets, manager):
    for params in param_sets:
        summarize(assay.Record(manager, params))
"""
)


def fixed_project(tmp_path: Path, source: str = FIXED) -> Path:
    return one_experiment_project(tmp_path, "override_fixed", source)


def claims_left(root: Path) -> list[Path]:
    return list((root / "data" / "cache").glob("claims/*/*"))


def assert_refused(text: str) -> None:
    assert "path_override of output 'summary' of stage 'summarize'" in text, text
    assert "parameter sets 'a' and 'b'" in text or "parameter sets 'b' and 'a'" in text, text
    assert "{params.name}" in text, text
    assert "Traceback" not in text, text


def assert_one_entry_holds_the_file(root: Path) -> None:
    """The file holds what the one set cached for it saved: that set loads, and no
    other set has an entry recording the file."""
    held = json.loads((root / "results" / "summary.json").read_text())
    sidecars = list((root / "data" / "cache" / "objects").rglob("summary.meta.json"))
    assert len(sidecars) == 1, sidecars
    owner = json.loads(sidecars[0].read_text())["param_set"]
    assert held == {"seed": {"a": 1, "b": 2}[owner]}
    forget_project_modules()
    assert assay.load("summary", param_set=owner, project_root=root) == held


# -- one path_override file for two parameter sets, written by two workers ----------------


def test_two_workers_writing_one_fixed_file_are_refused_as_a_serial_run_is(tmp_path: Path):
    """Each worker saw only its own stage run, so set b silently wrote over the file set
    a's entry records (and every later run found a's file changed, forever)."""
    root = fixed_project(tmp_path)

    result = run_cli("run", "override_fixed", "--parallel", "2", cwd=root)

    assert result.code == 1, result
    assert_refused(result.text)
    assert len(list(root.glob("started-*"))) == 2  # two workers, at once
    assert_one_entry_holds_the_file(root)
    assert claims_left(root) == []  # the run's claims go with it


def test_two_dask_workers_writing_one_fixed_file_are_refused(tmp_path: Path):
    root = fixed_project(tmp_path)

    with local_cluster(workers=2) as cluster, pytest.raises(assay.errors.AssayError) as info:
        assay.run_experiment(
            "override_fixed",
            [],
            project_root=root,
            executor="dask",
            dask_address=cluster.scheduler_address,
        )

    assert_refused(" ".join(str(info.value).split()))
    assert_one_entry_holds_the_file(root)
    assert claims_left(root) == []


def test_a_fixed_file_a_cached_set_recorded_is_not_written_over_by_another_set(
    tmp_path: Path,
):
    """Set a ran alone first; with both sets, a was reused and b wrote over a's file
    unrefused (serially and in workers): a's entry then recorded another file."""
    root = fixed_project(tmp_path, FIXED.replace("MEET = 2", "MEET = 0"))
    assert run_cli("run", "override_fixed", "--names", "a", cwd=root).code == 0

    serial = run_cli("run", "override_fixed", cwd=root)
    parallel = run_cli("run", "override_fixed", "--parallel", "2", cwd=root)

    for result in (serial, parallel):
        assert result.code == 1, result
        assert_refused(result.text)
        assert "Nothing of stage 'summarize' for 'b' was saved" in result.text, result
    assert_one_entry_holds_the_file(root)


TWINS_IN_ONE_FILE = FIXED.replace(
    '    return {"seed": record.params.seed}', '    return {"kind": "same for every set"}'
).replace('name="b", seed=2', 'name="b", seed=1')


def test_sets_sharing_a_stage_run_may_share_its_fixed_file_across_workers(tmp_path: Path):
    """Two sets whose stage run has one key (the stage reads no field they differ in)
    write the same file with the same content: no conflict, in two workers at once."""
    root = fixed_project(tmp_path, TWINS_IN_ONE_FILE)

    result = run_cli("run", "override_fixed", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    assert json.loads((root / "results" / "summary.json").read_text()) == {
        "kind": "same for every set"
    }
    rerun = run_cli("run", "override_fixed", "--parallel", "2", cwd=root)
    assert rerun.code == 0 and "2 cached" in rerun.text, rerun
    assert claims_left(root) == []


def test_a_path_override_naming_the_set_is_not_refused_in_workers(tmp_path: Path):
    source = FIXED.replace('"results/summary.json"', '"results/{params.name}/summary.json"')
    root = fixed_project(tmp_path, source)

    result = run_cli("run", "override_fixed", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    for name, seed in (("a", 1), ("b", 2)):
        saved = json.loads((root / "results" / name / "summary.json").read_text())
        assert saved == {"seed": seed}


# -- a cache at a URL: the second worker to save a stage run takes the first's entry -------

TWINS = (
    RENDEZVOUS
    + """
import uuid
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


class Logged(JsonCacher):
    \"\"\"A JSON cacher that notes each save in saves.log.\"\"\"

    def save(self, obj):
        with open(ROOT / "saves.log", "a") as log:
            log.write(f"{os.getpid()}\\n")
        super().save(obj)


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 1
    y: int = 0


@assay.stage(outputs=["made", "also"], cachers=[Logged, JsonCacher])
def slow(record):
    x = record.params.x  # the only field it reads: sets differing in y share its key
    meet(2)  # both workers run it at once
    token = f"{x}-{uuid.uuid4().hex}"
    return token, token


@assay.stage(inputs=["made"], outputs=["used"], cachers=[JsonCacher])
def use(record, made):
    return {"made": made, "y": record.params.y}


def get_params():
    return [Params(name="a", y=1), Params(name="b", y=2)]


def run(param_sets, manager):
    for params in param_sets:
        use(slow(assay.Record(manager, params)))
"""
)


def test_two_workers_saving_one_stage_run_at_a_local_url_share_one_entry(tmp_path: Path):
    cache = tmp_path / "shared-cache"
    root = one_experiment_project(tmp_path, "override_twins", TWINS)
    (root / "assay.toml").write_text(f'cache_dir = "local://{cache}"\n')

    result = run_cli("run", "override_twins", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    made = [json.loads(p.read_text()) for p in sorted(cache.rglob("made.json"))]
    used = [json.loads(p.read_text()) for p in sorted(cache.rglob("used.json"))]
    assert len(made) == 1 and len(used) == 2
    assert len(list(root.glob("started-*"))) == 2  # two workers ran it at once
    assert len((root / "saves.log").read_text().split()) == 1  # the second took the entry
    assert [u["made"] for u in used] == made * 2
    rerun = run_cli("run", "override_twins", "--parallel", "2", cwd=root)
    assert rerun.code == 0 and "4 cached" in rerun.text, rerun


def test_two_workers_saving_one_stage_run_in_s3_share_one_entry(tmp_path: Path, s3):
    root = one_experiment_project(tmp_path, "override_twins_s3", TWINS)
    bucket = s3.new_bucket()
    use_s3_cache(root, s3, bucket)

    result = run_cli("run", "override_twins_s3", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    fs = s3.filesystem()
    made = [json.loads(fs.cat_file(p)) for p in fs.glob(f"{bucket}/cache/objects/*/*/made.json")]
    used = [json.loads(fs.cat_file(p)) for p in fs.glob(f"{bucket}/cache/objects/*/*/used.json")]
    assert len(made) == 1 and len(used) == 2
    assert len((root / "saves.log").read_text().split()) == 1  # the second took the entry
    assert [u["made"] for u in used] == made * 2


# -- what an upload stopped halfway leaves at a URL -----------------------------------------

SIMPLE = """
from dataclasses import dataclass

import assay
from assay.caching import PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["data"], cachers=[PickleCacher])
def make(record):
    return list(range(record.params.n))


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
"""


def test_an_upload_stopped_before_its_rename_is_an_unfinished_write_at_a_url(tmp_path: Path):
    """At a URL with renames (a mounted folder, sftp) each file is uploaded to a temporary
    name, ``NAME.tmp-PID-N-RANDOM``, then renamed. What a run stopped in between left was
    listed as a stage (a link's), called "written by the stage" by verify, and never
    removed by gc."""
    cache = tmp_path / "url-cache"
    root = one_experiment_project(tmp_path, "override_simple", SIMPLE)
    (root / "assay.toml").write_text(f'cache_dir = "local://{cache}"\n')
    assert run_cli("run", "override_simple", cwd=root).code == 0
    (folder,) = (cache / "objects").glob("*/*")
    link = cache / "by-name" / "override_simple" / "a" / "make"
    left = {
        folder / "data.pkl.tmp-4242-0-abcdef": folder / "data.pkl",
        folder / "data.meta.json.tmp-4242-1-abcdef": folder / "data.meta.json",
        link.with_name("make.tmp-4242-2-abcdef"): link,
    }
    hours_ago = time.time() - 7200
    for leftover, source in left.items():
        shutil.copyfile(source, leftover)
        os.utime(leftover, (hours_ago, hours_ago))

    listed = run_cli("cache", "ls", cwd=root)
    verified = run_cli("cache", "verify", cwd=root)
    collected = run_cli("cache", "gc", cwd=root)

    assert listed.code == 0 and "tmp-4242" not in listed.text, listed
    assert verified.code == 0, verified
    assert "2 unfinished write(s)" in verified.text, verified
    assert "File without a record" not in verified.text, verified
    assert collected.code == 0, collected
    assert sorted(p.name for p in folder.iterdir()) == ["data.meta.json", "data.pkl"]
    rerun = run_cli("run", "override_simple", cwd=root)
    assert rerun.code == 0 and "1 cached" in rerun.text, rerun


def test_a_url_store_looks_afresh_for_an_entry_another_store_saved_meanwhile(tmp_path: Path):
    """Two workers' stores on one URL (memory://, in one process): the second had looked
    the entry up and found none; just before it saves, it must see the first's."""
    url, key = f"memory://override-s35/{tmp_path.name}/cache", "ab" + "0" * 30
    first = FsspecCacheStore(url, tmp_path / "first")
    second = FsspecCacheStore(url, tmp_path / "second")
    second.prefetch([(key, "made"), (key, "also")])  # as planned: nothing cached yet
    assert second.saved_now(key, ["made", "also"]) == {}
    meta = {"stage": "slow", "param_set": "a", "run_id": "r-1"}
    for output in ("made", "also"):
        first.save(JsonCacher(name=output), [1], key=key, output=output, meta=dict(meta))

    found = second.saved_now(key, ["made", "also"])

    assert sorted(found) == ["also", "made"]
    assert {m["run_id"] for m in found.values()} == {"r-1"}
