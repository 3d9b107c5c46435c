"""The markers that keep ``assay cache gc`` off stage runs being written (assay.cache_writing).

Each process keeps one marker file per cache, listing the stage runs it saved
and has not linked yet. These tests read the files themselves and run gc in
other processes, as a researcher's second terminal would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import assay
from assay import cache_writing
from assay.cache import CacheStore
from assay.cache_admin import collect_garbage
from assay.caching import PickleCacher
from conftest import edit, run_cli

KEYS = [c * 32 for c in "abcd"]
HOUR_AGO = time.time() - 2 * 3600


def save(cache: CacheStore, key: str, value: object = 1) -> None:
    meta = {"stage": "make", "param_set": "s0", "experiment": "exp"}
    cache.save(PickleCacher(name="obj"), value, key=key, output="obj", meta=meta)


def markers(cache: CacheStore) -> dict[str, list[str]]:
    folder = cache.root / cache_writing.FOLDER
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text().split() for p in folder.iterdir()}


GC_ELSEWHERE = """
import sys
from assay.cache import CacheStore
from assay.cache_admin import collect_garbage
removed, _ = collect_garbage(CacheStore(sys.argv[1]))
print(len(removed))
"""


def gc_elsewhere(cache: CacheStore) -> int:
    done = subprocess.run([sys.executable, "-c", GC_ELSEWHERE, str(cache.root)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_one_marker_per_process_lists_only_the_unlinked_stage_runs(tmp_path: Path):
    """Before: a file made and removed per saved stage run (up to hundreds of µs each on
    a busy disk). Now one file per process, appended to and emptied."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEYS[0])
    save(cache, KEYS[1])

    [(name, listed)] = markers(cache).items()
    assert name.startswith(f"{os.getpid()}-") and listed == KEYS[:2]
    assert gc_elsewhere(cache) == 0

    cache.link("exp", "s0", "make", KEYS[0])
    assert markers(cache) == {name: [KEYS[1]]}
    cache.link("exp", "s1", "make", KEYS[1])
    assert markers(cache) == {name: []}
    save(cache, KEYS[2])
    cache.link("exp", "s0", "make", KEYS[2])  # replaces KEYS[0] under its name
    assert markers(cache) == {name: []}
    assert gc_elsewhere(cache) == 1 and not cache.stage_dir(KEYS[0]).exists()


def test_a_marker_gc_removed_is_made_again_with_what_is_unfinished(tmp_path: Path):
    """A process idle for more than an hour: gc removes its empty marker; the next
    save must still be protected, so the marker is written anew (not into the
    removed file, which gc would never read)."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEYS[0])
    cache.link("exp", "s0", "make", KEYS[0])
    [path] = (cache.root / cache_writing.FOLDER).iterdir()
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    collect_garbage(cache)
    assert not path.exists()

    save(cache, KEYS[1])

    assert markers(cache) == {path.name: [KEYS[1]]}
    assert gc_elsewhere(cache) == 0 and cache.has(KEYS[1], "obj")


def test_a_stopped_process_marker_counts_for_an_hour_then_goes(tmp_path: Path):
    """A run killed between save and link: its stage run is kept while its marker is
    recent, then collected together with the marker."""
    cache = CacheStore(tmp_path / "cache")
    code = (
        "import sys, os; from assay.cache import CacheStore; from assay.caching import "
        "PickleCacher; c = CacheStore(sys.argv[1]); c.save(PickleCacher(name='obj'), 1, "
        f"key={KEYS[3]!r}, output='obj', meta={{'stage': 'make'}}); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(cache.root)], check=True, timeout=120)
    [(name, listed)] = markers(cache).items()
    assert listed == [KEYS[3]]
    assert gc_elsewhere(cache) == 0

    os.utime(cache.root / cache_writing.FOLDER / name, (HOUR_AGO, HOUR_AGO))

    assert gc_elsewhere(cache) == 1
    assert markers(cache) == {} and not cache.stage_dir(KEYS[3]).exists()


LONG_IN_PLACE_WRITE = """
import os, sys, time
from assay import cache_writing
cache_writing.REFRESH_S = 0.1
from assay.cache import CacheStore
folder = CacheStore(sys.argv[1]).prepare_in_place(sys.argv[2])
(folder / "model.partial").write_text("three hours of training so far")
[marker] = os.scandir(os.path.join(sys.argv[1], cache_writing.FOLDER))
for path in (folder / "model.partial", folder, marker.path):
    os.utime(path, (time.time() - 7200, time.time() - 7200))
print(marker.path, flush=True)
sys.stdin.read()
"""


def test_a_stage_writing_in_place_for_hours_keeps_its_folder(tmp_path: Path):
    """A stage writing into its folder (``record.get_path``) for more than an hour: its
    marker was last written when the folder was made, and gc took the run for a
    stopped one and removed the folder under it. The process touches its marker now."""
    cache = CacheStore(tmp_path / "cache")
    with subprocess.Popen(
        [sys.executable, "-c", LONG_IN_PLACE_WRITE, str(cache.root), KEYS[2]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as writer:  # fmt: skip
        try:
            marker = Path(writer.stdout.readline().strip())
            deadline = time.time() + 30
            while time.time() - marker.stat().st_mtime > 60 and time.time() < deadline:
                time.sleep(0.05)

            assert gc_elsewhere(cache) == 0
            assert (cache.stage_dir(KEYS[2]) / "model.partial").exists()
        finally:
            writer.stdin.close()
    assert writer.returncode == 0


@dataclass
class Training(assay.ExperimentParameters):
    epochs: int = 3


def test_a_stage_using_its_folder_for_hours_keeps_it_from_gc(tmp_path: Path, monkeypatch):
    """``record.get_path`` made the stage's folder and marked nothing: a second terminal's
    gc removed what the stage had written an hour before, while it still ran."""
    monkeypatch.setattr(cache_writing, "REFRESH_S", 0.05)
    manager = assay.ArtifactManager("t", project_root=tmp_path)
    seen = {}

    @assay.stage(None, ["model"], [PickleCacher])
    def train(record):
        path = Path(record.get_path("weights.partial"))
        path.write_text("two hours of training so far")
        [marker] = (manager.cache.root / cache_writing.FOLDER).iterdir()
        for each in (path, path.parent, marker):
            os.utime(each, (HOUR_AGO, HOUR_AGO))
        deadline = time.time() + 30
        while time.time() - marker.stat().st_mtime > 60 and time.time() < deadline:
            time.sleep(0.02)
        seen["removed"], seen["kept"] = gc_elsewhere(manager.cache), path.exists()
        return 1

    train(assay.Record(manager, Training(name="p")))

    assert seen == {"removed": 0, "kept": True}
    assert not cache_writing.keeping_fresh()  # its thread is gone: workers fork again


def test_a_failed_stage_that_used_its_folder_leaves_no_thread(tmp_path: Path):
    manager = assay.ArtifactManager("t", project_root=tmp_path)

    @assay.stage(None, ["model"], [PickleCacher])
    def train(record):
        Path(record.get_path("weights.partial")).write_text("half")
        assert cache_writing.keeping_fresh()
        raise ValueError("diverged")

    with pytest.raises(Exception, match="diverged"):
        train(assay.Record(manager, Training(name="p")))

    assert not cache_writing.keeping_fresh()
    assert not any(t.name == "assay-cache-markers" for t in threading.enumerate())


def test_a_process_that_exits_normally_removes_its_marker(tmp_path: Path):
    cache = CacheStore(tmp_path / "cache")
    code = (
        "import sys; from assay.cache import CacheStore; from assay.caching import "
        "PickleCacher; c = CacheStore(sys.argv[1]); c.save(PickleCacher(name='obj'), 1, "
        f"key={KEYS[0]!r}, output='obj', meta={{'stage': 'make'}}); "
        f"c.link('exp', 's0', 'make', {KEYS[0]!r})"
    )
    subprocess.run([sys.executable, "-c", code, str(cache.root)], check=True, timeout=120)

    assert markers(cache) == {}
    assert cache.has(KEYS[0], "obj")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_a_forked_worker_keeps_a_marker_of_its_own(tmp_path: Path):
    """A ``--parallel`` worker is a fork of the run: writing into the run's open marker
    would mix the two lists, and emptying it would un-protect the run's stage runs."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEYS[0])
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's outcome is its exit status)
        try:
            save(cache, KEYS[1])
            cache.link("exp", "s1", "make", KEYS[1])
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.WEXITSTATUS(status) == 0

    found = markers(cache)
    assert found[f"{os.getpid()}-{cache_writing._RANDOM}"] == [KEYS[0]]
    assert all(
        listed == [] for name, listed in found.items() if not name.startswith(f"{os.getpid()}-")
    )
    assert gc_elsewhere(cache) == 0 and cache.has(KEYS[0], "obj")


def test_an_earlier_assays_marker_still_counts(tmp_path: Path):
    """A run of the previous version (one empty ``KEY.PID-RANDOM`` file per stage run)
    may be writing while this version's gc runs."""
    cache = CacheStore(tmp_path / "cache")
    save(cache, KEYS[0])
    cache.link("exp", "s0", "make", KEYS[0])
    other = CacheStore(tmp_path / "cache")
    other_dir = cache.stage_dir(KEYS[1])
    other_dir.mkdir(parents=True)
    (other_dir / "obj.pkl").write_bytes(b"half")
    (other_dir / "obj.meta.json").write_text("{}")
    (cache.root / cache_writing.FOLDER / f"{KEYS[1]}.123-abcdef").touch()

    assert KEYS[1] in other.keys_being_written(3600)
    assert gc_elsewhere(cache) == 0 and other_dir.exists()


def test_a_parallel_run_leaves_no_markers(tmp_project: Path):
    """``--parallel`` workers exit without running ``atexit``: each left an empty marker
    behind, run after run, until a gc an hour later."""
    for _ in range(2):
        result = run_cli("run", "scaled", "--parallel", "2", "--overwrite", cwd=tmp_project)
        assert result.code == 0, result.stderr

    folder = tmp_project / "data" / "cache" / cache_writing.FOLDER
    assert folder.is_dir()  # the workers did write markers
    assert sorted(p.name for p in folder.iterdir()) == []


BRANCHES = """
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def make(record):
    return list(range(record.params.seed, record.params.seed + 10))


@assay.stage(inputs=["data"], outputs=["x"], cachers=[JsonCacher])
def double(record, data):
    return [v * 2 for v in data]


@assay.stage(inputs=["data"], outputs=["x"], cachers=[JsonCacher])
def triple(record, data):
    return [v * 3 for v in data]


@assay.stage(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
def final(record, x):
    return sum(x) + 0


@assay.stage(inputs=["total"], outputs=["waited"], cachers=[JsonCacher])
def wait(record, total):
    if Path("slow.flag").exists():
        Path("waiting.txt").touch()
    while Path("slow.flag").exists():
        time.sleep(0.05)
    return total


def get_params():
    return [Params(name="p", seed=1)]


def run(param_sets, manager):
    for p in param_sets:
        r = make(assay.Record(manager, p))
        r2 = r.make_copy()
        final(double(r))
        final(triple(r2))
        wait(r2)
"""


@pytest.mark.parametrize("how", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_gc_during_a_run_leaves_what_the_run_made_though_its_name_now_points_elsewhere(
    tmp_path: Path, how: list[str]
):
    """``final`` of the first branch is filed as ``p/final``, then the second branch's
    ``final`` takes that name: gc from another terminal removed the first one while the
    run went on, and the run reported it "completed", its result gone."""
    root = tmp_path / "branches"
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "branches.py").write_text(BRANCHES)
    assert run_cli("run", "branches", "-q", cwd=root).code == 0
    edit(root / "experiments" / "branches.py", "sum(x) + 0", "sum(x) + 1")
    (root / "slow.flag").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    proc = subprocess.Popen([sys.executable, "-m", "assay", "run", "branches", *how, "-q"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (root / "waiting.txt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        gc = run_cli("cache", "gc", cwd=root)
        (root / "slow.flag").unlink()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert gc.code == 0, gc
    assert proc.returncode == 0, out + err
    plan = run_cli("run", "branches", "--dry", cwd=root)
    assert "0 to execute" in plan.text, plan
    assert run_cli("cache", "verify", cwd=root).code == 0


def test_a_save_into_a_folder_removed_since_this_process_made_it_makes_it_again(
    tmp_path: Path,
):
    """The process remembered the folder as made: the save failed with FileNotFoundError
    on its temporary file, and the run with it."""
    import shutil

    cache = CacheStore(tmp_path / "cache")
    meta = {"stage": "make", "param_set": "p"}
    cache.save(PickleCacher(name="a"), [1], key="k" * 32, output="a", meta=meta)
    shutil.rmtree(cache.stage_dir("k" * 32))  # gc from another terminal

    cache.save(PickleCacher(name="a"), [2], key="k" * 32, output="a", meta=meta)

    assert cache.read_meta("k" * 32, "a") is not None


def test_a_run_in_this_process_lists_what_it_made_only_until_it_ends(tmp_path: Path):
    """What a run made stays listed while it goes on (see the gc test above), and no
    longer: a notebook's kernel would otherwise keep everything it ever ran from gc."""
    from conftest import copy_project

    project = copy_project("basic", tmp_path)
    seen: list[set] = []

    from assay.runner import Observer

    class Watch(Observer):
        def stage_finished(self, node):
            seen.append(set().union(*(m.keys for m in cache_writing._markers.values())))

    manager = assay.run_experiment("diamond", ["two"], project_root=project, observer=Watch())

    executed = {n.key for n in manager.plan.nodes if n.status == "executed"}
    assert executed and executed <= seen[-1]  # all listed by the run's last stage
    assert not any(m.keys for m in cache_writing._markers.values())
