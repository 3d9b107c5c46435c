"""A cache at an fsspec URL: ``cache_dir = "s3://bucket/cache"``.

Every test talks to a real S3 service: moto's server, started once per
session in its own process on 127.0.0.1 (see ``conftest.s3_server``), through
s3fs, exactly as a run against AWS would. Each test gets a new bucket. A
second copy of a project stands for another machine: it shares nothing with
the first but the URL.

The reference is the ``scaled`` experiment (see ``test_parallel.py``) run
serially with a local cache folder: wherever stages run, the URL must end up
holding exactly those files, sidecars and links.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import assay
from assay.config import ProjectConfig
from assay.errors import CacheError, ConfigError, CorruptArtifactError
from assay.project import load_experiment
from assay.store import RunStore
from conftest import (
    Calls,
    S3Server,
    copy_project,
    edit,
    forget_project_modules,
    free_port,
    run_cli,
    run_outside_test,
    use_s3_cache,
)

SCALED = sorted(
    [f"{stage}:{p}" for p in "abcd" for stage in ("prepare", "fit", "evaluate", "wait")]
    + ["leaderboard:aggregate"]
)
VOLATILE_META = {"run_id", "created", "write", "duration_s", "project"}  # project: its folder


def run(root: Path, experiment: str = "scaled", **options: Any):
    return assay.run_experiment(experiment, [], project_root=root, **options)


def comparable(name: str, data: bytes) -> Any:
    """A cache file as the comparison sees it: sidecars without run-specific fields."""
    if name.endswith(".meta.json"):
        return {k: v for k, v in json.loads(data).items() if k not in VOLATILE_META}
    return hashlib.sha256(data).hexdigest()


def local_cache(root: Path) -> dict[str, Any]:
    """``objects/`` files and ``by-name/`` link targets of a project's cache folder."""
    cache = root / "data" / "cache"
    found = {
        str(p.relative_to(cache)): comparable(p.name, p.read_bytes())
        for p in sorted((cache / "objects").rglob("*"))
        if p.is_file()
    }
    for link in sorted((cache / "by-name").rglob("*")):
        if link.is_symlink():
            found[str(link.relative_to(cache))] = os.readlink(link)
    return found


def remote_cache(s3: S3Server, url: str) -> dict[str, Any]:
    """The same view of a cache at a URL, read with s3fs directly (not through assay)."""
    fs = s3.filesystem()
    base = url.removeprefix("s3://")
    found = {}
    for path in sorted(fs.find(base)):
        name = path[len(base) + 1 :]
        if name.startswith("objects/"):
            found[name] = comparable(name, fs.cat_file(path))
        elif name.startswith("by-name/"):
            found[name] = fs.cat_file(path).decode()
    return found


@pytest.fixture(scope="module")
def serial_files(tmp_path_factory) -> dict[str, Any]:
    """What a serial run of ``scaled`` leaves in a local cache folder."""
    root = copy_project("basic", tmp_path_factory.mktemp("serial"))
    manager = run_outside_test(lambda: run(root))
    assert {n.status for n in manager.plan.nodes} == {"executed"}
    return local_cache(root)


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


@pytest.fixture
def url(tmp_project: Path, s3: S3Server, bucket: str) -> str:
    """The ``basic`` project with its cache in a new bucket."""
    return use_s3_cache(tmp_project, s3, bucket)


def elsewhere(tmp_path: Path, s3: S3Server, bucket: str) -> Path:
    """Another copy of the project, as on another machine, using the same URL."""
    other = copy_project("basic", tmp_path / "elsewhere")
    use_s3_cache(other, s3, bucket)
    return other


# -- the same results wherever stages run --------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="serial"),
        pytest.param({"parallel": 2}, id="process"),
        pytest.param({"executor": "dask", "parallel": 2}, id="dask", marks=pytest.mark.slow),
    ],
)
def test_the_url_holds_exactly_what_a_serial_run_leaves_in_a_folder(
    tmp_project: Path, calls: Calls, s3: S3Server, url: str, serial_files: dict, options: dict
):
    manager = run(tmp_project, **options)

    assert sorted(calls.take()) == SCALED
    assert remote_cache(s3, url) == serial_files
    assert manager.run_info.status == "completed"
    assert manager.records[-1].state["ranking"] == list("cbad")
    with RunStore(tmp_project / "assay.db") as store:
        (only,) = store.list_runs()
        assert only.config["cache_dir"] == url
        paths = [a.path for a in store.artifacts(only.id)]
    assert paths and all(p.startswith(f"{url}/objects/") for p in paths)
    if options:
        # Workers wrote every artifact themselves: nothing went through this process.
        assert manager.cache.uploaded == []
        pids = {
            int(line.rsplit(":", 1)[1]) for line in (tmp_project / "pids.txt").read_text().split()
        }
        assert os.getpid() not in pids
    assert not (tmp_project / "data" / "cache" / "objects").exists()  # only local copies


def test_a_rerun_reuses_the_url_and_loads_and_writes_nothing(
    tmp_project: Path, calls: Calls, url: str
):
    run(tmp_project)
    calls.take()
    forget_project_modules()

    again = run(tmp_project)

    assert calls.take() == []
    assert {n.status for n in again.plan.nodes} == {"cached", "unneeded"}
    assert again.runner.loaded == []
    assert again.cache.uploaded == []


def test_another_machine_finds_every_artifact_at_the_url(
    tmp_project: Path, tmp_path: Path, calls: Calls, s3: S3Server, bucket: str, url: str
):
    first = run(tmp_project)
    expected = first.records[-1].state["ranking"]
    forget_project_modules()
    other = elsewhere(tmp_path, s3, bucket)

    again = run(other)

    assert Calls(other).take() == []
    assert {n.status for n in again.plan.nodes} == {"cached", "unneeded"}
    assert again.records[-1].state["ranking"] == expected  # downloaded, checked, loaded
    assert again.cache.downloaded
    assert assay.load("ranking", param_set="aggregate", project_root=other) == expected
    assert (
        assay.load("score", param_set="b", stage="evaluate", project_root=other)
        == (first.records[1].state["score"])
    )


def test_assay_load_takes_the_url_of_an_artifact_at_the_url(
    tmp_project: Path, tmp_path: Path, s3: S3Server, bucket: str, url: str
):
    """``path="s3://..."`` was taken as a local path (``./s3:/...``): nothing matched."""
    first = run(tmp_project)
    score = first.records[1].state["score"]
    (node,) = [n for n in first.plan.nodes if (n.spec.name, n.record_label) == ("evaluate", "b")]
    forget_project_modules()
    other = elsewhere(tmp_path, s3, bucket)

    def load(path: str, output: str | None = None) -> Any:
        return assay.load(output, path=path, project_root=other)

    assert load(f"{url}/by-name/scaled/b/evaluate", "score") == score
    with pytest.raises(CacheError, match="2 cached artifacts match .*details.*score"):
        load(f"{url}/by-name/scaled/b/evaluate")  # as for a local stage folder
    assert load(f"{url}/by-name/scaled/b/evaluate/score.json") == score
    assert load(f"{url}/objects/{node.key[:2]}/{node.key}", "score") == score
    assert load(f"{url}/objects/{node.key[:2]}/{node.key}/score.json") == score
    with pytest.raises(CacheError, match=f"cache_dir='{url}'"):
        load(url)
    with pytest.raises(CacheError, match="Nothing is filed under by-name/scaled/z/evaluate"):
        load(f"{url}/by-name/scaled/z/evaluate")


def test_editing_a_stage_on_another_machine_recomputes_only_it_from_the_urls_inputs(
    tmp_project: Path, tmp_path: Path, s3: S3Server, bucket: str, url: str
):
    run(tmp_project, parallel=2)
    forget_project_modules()
    other = elsewhere(tmp_path, s3, bucket)
    edit(
        other / "experiments" / "scaled.py",
        "def leaderboard(record, records, score):",
        "def leaderboard(record, records, score):\n    noted(record, 'leaderboard')  # twice",
    )

    again = run(other, executor="dask", parallel=2)

    counted = Calls(other).take()
    assert counted == ["leaderboard:aggregate", "leaderboard:aggregate"]
    assert again.records[-1].state["ranking"] == list("cbad")
    assert again.cache.uploaded == []  # the worker wrote the new leaderboard


# -- what is at the URL stays trustworthy --------------------------------------------------


def test_a_tampered_file_at_the_url_is_never_loaded(
    tmp_project: Path, tmp_path: Path, s3: S3Server, bucket: str, url: str
):
    run(tmp_project)
    fs = s3.filesystem()
    base = url.removeprefix("s3://")
    (model,) = [p for p in fs.find(base) if p.endswith("/model.pkl")][:1]
    fs.pipe_file(model, b"\x80\x04not the model")
    forget_project_modules()
    other = elsewhere(tmp_path, s3, bucket)

    with pytest.raises(CorruptArtifactError) as info:
        assay.load("model", param_set="a", project_root=other)

    assert "does not match its recorded checksum" in str(info.value) or "bytes instead" in str(
        info.value
    )
    assert url in str(info.value)
    result = run_cli("cache", "verify", cwd=other)
    assert result.code != 0 and "model" in result.text, result


@pytest.mark.parametrize(
    "damage", [b'{"key": "', b"{}", b"not json at all"], ids=["cut-short", "empty", "garbage"]
)
def test_a_damaged_sidecar_at_the_url_is_warned_about_as_in_a_folder(
    tmp_project: Path, calls: Calls, s3: S3Server, url: str, damage: bytes
):
    """The run took it for no entry: it recomputed the artifact without a word (a folder
    cache warns), and ``cache verify`` could not say what was wrong with it."""
    run(tmp_project)
    calls.take()
    fs = s3.filesystem()
    link = fs.cat_file(f"{url.removeprefix('s3://')}/by-name/scaled/b/evaluate").decode()
    folder = f"{url.removeprefix('s3://')}/objects/{link.rsplit('/objects/', 1)[1]}"
    fs.pipe_file(f"{folder}/score.meta.json", damage)

    result = run_cli("run", "scaled", "--overwrite-stage", "leaderboard", cwd=tmp_project)

    assert result.code == 0, result
    for fragment in ("'score'", "'evaluate'", "'b'", "score.meta.json is missing or unreadable",
                     "It is not reused"):  # fmt: skip
        assert fragment in result.text, result
    assert sorted(calls.take()) == ["evaluate:b", "leaderboard:aggregate"]
    again = run_cli("run", "scaled", "--overwrite-stage", "leaderboard", cwd=tmp_project)
    assert "It is not reused" not in again.text, again
    fs.pipe_file(f"{folder}/score.meta.json", damage)
    verify = run_cli("cache", "verify", cwd=tmp_project)
    assert verify.code == 1 and "score.meta.json is missing or unreadable" in verify.text, verify


def test_a_damaged_file_at_the_url_handed_as_a_lazy_handle_is_recomputed(
    tmp_project: Path, s3: S3Server, url: str
):
    """A Lazy(resolve=False) output was fetched for its handle outside the checked load:
    every later run stopped at the damaged file, which stayed at the URL."""
    run(tmp_project, "lazy")
    fs = s3.filesystem()
    (blob,) = [p for p in fs.find(url.removeprefix("s3://")) if p.endswith("/blob.pkl")][:1]
    data = fs.cat_file(blob)
    fs.pipe_file(blob, data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped
    shutil.rmtree(tmp_project / "data" / "cache" / "remote")  # as on another machine

    again = run(tmp_project, "lazy", overwrite_stages=["inspect_blob"])

    made = [n.status for n in again.plan.nodes if n.spec.name == "make_blob"]
    assert sorted(made) == ["cached", "executed"], made
    sets = [r for r in again.records if r.params is not None]  # not the aggregate's
    assert len(sets) == 2
    for record in sets:
        assert record.state["blob_info"]["loaded"] == ["blob of", record.params.name]


def test_a_local_copy_that_differs_from_the_url_is_fetched_again(tmp_project: Path, url: str):
    first = run(tmp_project)
    expected = first.records[0].state["score"]
    (node,) = [n for n in first.plan.nodes if (n.spec.name, n.record_label) == ("evaluate", "a")]
    score = first.cache.stage_dir(node.key) / "score.json"
    assert score.is_relative_to(tmp_project / "data" / "cache" / "remote")
    score.write_text("666")

    again = assay.load("score", param_set="a", project_root=tmp_project)

    assert again == expected
    assert score.read_text() != "666"


def test_cache_ls_verify_and_gc_work_on_the_url(
    tmp_project: Path, calls: Calls, s3: S3Server, url: str
):
    run(tmp_project)
    listed = run_cli("cache", "ls", cwd=tmp_project)
    assert listed.code == 0 and "leaderboard" in listed.text, listed
    verified = run_cli("cache", "verify", cwd=tmp_project)
    assert verified.code == 0 and "0 failed" in verified.text, verified
    forget_project_modules()
    edit(
        tmp_project / "experiments" / "scaled.py",
        "def leaderboard(record, records, score):",
        "def leaderboard(record, records, score):\n    edited = True  # noqa: F841",
    )
    run(tmp_project)  # the old leaderboard is no longer linked
    before = remote_cache(s3, url)

    collected = run_cli("cache", "gc", cwd=tmp_project)

    assert collected.code == 0, collected
    after = remote_cache(s3, url)
    gone = sorted(set(before) - set(after))
    assert gone and all(name.startswith("objects/") for name in gone), gone
    assert len({name.split("/")[2] for name in gone}) == 1  # one stage run: the old leaderboard
    forget_project_modules()
    assert {n.status for n in run(tmp_project).plan.nodes} == {"cached", "unneeded"}


def test_store_full_exports_a_run_from_the_url(tmp_project: Path, url: str):
    manager = run(tmp_project, store_full=True)

    folder = tmp_project / "data" / "runs" / manager.run_id
    exported = json.loads((folder / "run.json").read_text())["export"]["artifacts"]
    assert exported["missing"] == [] and exported["copied"] > 0, exported
    assert assay.load("ranking", param_set="aggregate", cache_dir=folder / "cache",
                      project_root=tmp_project) == list("cbad")  # fmt: skip


# -- bad input: a clear message, nothing run, nothing lost ---------------------------------


def test_a_bucket_that_does_not_exist_stops_the_run_before_any_stage(
    tmp_project: Path, calls: Calls, s3: S3Server
):
    use_s3_cache(tmp_project, s3, "no-such-bucket-here")

    result = run_cli("run", "scaled", cwd=tmp_project)

    assert result.code != 0, result
    assert "Traceback" not in result.output
    for fragment in ("s3://no-such-bucket-here/cache", "cannot be written", "does not exist"):
        assert fragment in result.text, result
    assert calls.take() == []


@pytest.mark.parametrize("command", ["ls", "verify", "gc"])
def test_cache_commands_on_a_bucket_that_does_not_exist_fail_instead_of_listing_nothing(
    tmp_project: Path, s3: S3Server, bucket: str, command: str
):
    """They reported an empty, healthy cache (exit 0) for a mistyped bucket."""
    use_s3_cache(tmp_project, s3, "no-such-bucket-here")

    result = run_cli("cache", command, cwd=tmp_project)

    assert result.code != 0 and "Traceback" not in result.output, result
    for fragment in ("no cache at s3://no-such-bucket-here/cache", "bucket", "does not exist"):
        assert fragment in result.text, result
    empty = run_cli("cache", command, "--cache", f"s3://{bucket}/nothing", cwd=tmp_project)
    assert empty.code != 0 and f"no cache at s3://{bucket}/nothing" in empty.text, empty


def test_an_unreachable_endpoint_stops_the_run_before_any_stage(
    tmp_project: Path, calls: Calls, s3: S3Server, bucket: str
):
    unreachable = S3Server(f"http://127.0.0.1:{free_port()}")  # nobody listens there
    use_s3_cache(
        tmp_project, unreachable, bucket, ", config_kwargs = { retries = { max_attempts = 1 } }"
    )

    result = run_cli("run", "scaled", cwd=tmp_project)

    assert result.code != 0, result
    assert "Traceback" not in result.output
    for fragment in ("cannot be written", "Nothing was run", "credentials"):
        assert fragment in result.text, result
    assert calls.take() == []


@pytest.fixture
def stalled_endpoint():
    """An endpoint that accepts connections and never answers (a hung server or proxy)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed: the test is over
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in held:
        connection.close()


def test_a_store_that_never_answers_stops_the_run_before_any_stage(
    tmp_project: Path, calls: Calls, s3: S3Server, stalled_endpoint: str, monkeypatch
):
    """The run hung forever on the check's upload, read_timeout in cache_options or not."""
    monkeypatch.setattr("assay.caches.fsspec._ANSWER_WAIT_S", 2.0)  # 60 s by default
    timeouts = ", config_kwargs = { read_timeout = 1, retries = { max_attempts = 1 } }"
    use_s3_cache(tmp_project, S3Server(stalled_endpoint), "lab", timeouts)
    started = time.monotonic()

    with pytest.raises(CacheError) as info:
        run(tmp_project)

    assert time.monotonic() - started < 30
    for fragment in ("s3://lab/cache", "did not answer within 2 s", "Nothing was run"):
        assert fragment in str(info.value), info.value
    assert calls.take() == []


def test_a_protocol_without_its_package_names_the_package(tmp_project: Path):
    with pytest.raises(ConfigError) as info:
        run(tmp_project, cache_dir="gcs://lab-bucket/cache")

    assert "gcsfs" in str(info.value) and "gcs://lab-bucket/cache" in str(info.value)


def test_an_unknown_protocol_is_refused_with_examples(tmp_project: Path, calls: Calls):
    result = run_cli("run", "scaled", "--cache", "nosuch://somewhere/cache", cwd=tmp_project)

    assert result.code != 0 and "Traceback" not in result.output, result
    assert "nosuch://somewhere/cache" in result.text and "s3://bucket/path" in result.text
    assert calls.take() == []


def test_a_url_with_one_slash_is_refused_with_the_url_it_should_be(tmp_project: Path, calls: Calls):
    """``--cache s3:/x`` silently made a local folder named ``s3:``."""
    result = run_cli("run", "scaled", "--cache", "s3:/lab/cache", cwd=tmp_project)

    assert result.code != 0 and "Traceback" not in result.output, result
    assert "'s3:/lab/cache'" in result.text and "Did you mean 's3://lab/cache'?" in result.text
    assert calls.take() == []
    assert not (tmp_project / "s3:").exists()
    (tmp_project / "assay.toml").write_text('cache_dir = "gcs:/lab/cache"\n')
    with pytest.raises(ConfigError, match="Did you mean 'gcs://lab/cache'"):
        ProjectConfig.load(tmp_project)
    config = ProjectConfig.load(tmp_project, cache_dir="data/cache")
    with pytest.raises(ConfigError, match="Did you mean 'file:///scratch/cache'"):
        config.with_cache_dir("file:/scratch/cache")
    for folder in ("C:/scratch/cache", "./s3:/lab", "results/s3:/lab", "c", "s3"):
        assert config.with_cache_dir(folder).cache_url is None  # folders, as before
        assert config.with_cache_dir(folder).cache_dir == tmp_project / folder


def test_cache_options_must_be_a_table(tmp_project: Path):
    (tmp_project / "assay.toml").write_text('cache_dir = "s3://b/c"\ncache_options = "key=1"\n')

    with pytest.raises(ConfigError) as info:
        ProjectConfig.load(tmp_project)

    assert "cache_options must be a table" in str(info.value)


def test_a_failing_upload_names_the_artifact_and_loses_nothing(
    tmp_project: Path, calls: Calls, s3: S3Server, bucket: str, url: str
):
    """In a notebook the cache is first used by a stage call: the bucket has gone by then."""
    diamond = load_experiment("diamond", ProjectConfig.load(tmp_project))
    manager = assay.ArtifactManager("nb", project_root=tmp_project)
    record = assay.Record(manager, diamond.Params(name="a"))
    diamond.combine(diamond.square(diamond.double(diamond.load(record))))
    s3.filesystem().rm(bucket, recursive=True)

    with pytest.raises(CacheError) as info:
        diamond.summarize(assay.Record(manager, None))

    message = str(info.value)
    for fragment in ("output 'summary'", "stage 'summarize'", url, "bucket does not exist"):
        assert fragment in message, message
    (node,) = [n for n in manager.plan.nodes if n.spec.name == "summarize"]
    assert (manager.cache.stage_dir(node.key) / "summary.json").is_file()  # the local copy stays
    with pytest.raises(CacheError) as info:  # b's data is a's: reused, then filed under b
        diamond.load(assay.Record(manager, diamond.Params(name="b")))
    assert "stage 'load' for parameter set 'b'" in str(info.value) and url in str(info.value)
    assert calls.take() == [f"{s}:a" for s in ("load", "double", "square", "combine")] + [
        "summarize:aggregate"
    ]


# -- configuration -------------------------------------------------------------------------


def test_a_url_cache_keeps_its_local_copies_apart_and_its_options_out_of_records(tmp_path: Path):
    (tmp_path / "assay.toml").write_text(
        'cache_dir = "s3://lab/cache/"\ncache_options = { key = "AKIA-SECRET", secret = "hush" }\n'
    )

    config = ProjectConfig.load(tmp_path)

    assert config.cache_url == "s3://lab/cache" == config.cache_location
    assert config.cache_dir.parent == tmp_path / "data" / "cache" / "remote"
    assert config.cache_dir.name.startswith("s3-lab-cache-")
    assert config.cache_options == {"key": "AKIA-SECRET", "secret": "hush"}
    assert "hush" not in json.dumps(config.as_dict())
    other = config.with_cache_dir("gcs://lab/cache")
    assert other.cache_dir != config.cache_dir  # two URLs never share local copies
    assert config.with_cache_dir("file:///scratch/cache").cache_dir == Path("/scratch/cache")
    assert config.with_cache_dir("file:///scratch/cache").cache_url is None
    assert config.with_cache_dir("elsewhere").cache_dir == tmp_path / "elsewhere"


# -- assay cache verify checks what is at the URL ------------------------------------------


def test_cache_verify_checks_the_files_at_the_url_not_this_machine_s_copies(
    tmp_project: Path, s3: S3Server, url: str
):
    """verify checked the local copies only: a file changed at the URL (same size) passed
    while this machine's copy of it matched its record, and --remove left it there."""
    run(tmp_project)
    fs = s3.filesystem()
    base = url.removeprefix("s3://")
    (score,) = [p for p in fs.find(base) if p.endswith("/score.json")][:1]
    fs.pipe_file(score, b"9" * len(fs.cat_file(score)))

    failed = run_cli("cache", "verify", cwd=tmp_project)

    assert failed.code == 1 and "1 failed" in failed.text, failed
    assert "'score'" in failed.text and "does not match its recorded checksum" in failed.text
    removed = run_cli("cache", "verify", "--remove", cwd=tmp_project)
    assert removed.code == 0 and "(removed)" in removed.text, removed
    fs.invalidate_cache()
    assert not fs.exists(score.removesuffix(".json") + ".meta.json")
    again = run_cli("cache", "verify", cwd=tmp_project)
    assert again.code == 0 and "0 failed" in again.text, again


def test_cache_verify_reports_a_file_at_the_url_whose_record_was_deleted(
    tmp_project: Path, s3: S3Server, url: str
):
    run(tmp_project)
    fs = s3.filesystem()
    base = url.removeprefix("s3://")
    (score,) = [p for p in fs.find(base) if p.endswith("/score.json")][:1]
    fs.rm(score.removesuffix(".json") + ".meta.json")

    result = run_cli("cache", "verify", cwd=tmp_project)

    # The run store recorded the artifact: with no checksum left to check it, it fails.
    assert result.code == 1 and "its record score.meta.json is missing" in result.text, result
    assert f"s3://{score}" in result.text and "File without a record" not in result.text, result
    removed = run_cli("cache", "verify", "--remove", cwd=tmp_project)
    assert removed.code == 0 and "1 failed (removed)" in removed.text, removed
    fs.invalidate_cache()
    assert not fs.exists(score)
