"""``assay cache ls | verify | gc`` and what survives them, found by a walkthrough.

Each test drives the real command line (or the library) on a copy of the ``basic``
project, as a researcher would, and checks what it printed and what is on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

from assay.cache import CacheStore
from assay.cache_admin import verify_all
from assay.caching import PickleCacher
from assay.humanize import format_size
from conftest import run_cli

KEY = "c" * 32


def ok(result):
    assert result.code == 0, result
    assert "Traceback" not in result.output, result
    return result


def stage_folder(project: Path, param_set: str, stage: str) -> Path:
    return (project / "data" / "cache" / "by-name" / "diamond" / param_set / stage).resolve()


# -- verify: an artifact whose sidecar was deleted -----------------------------------------


def test_verify_fails_an_artifact_whose_sidecar_was_deleted(tmp_project: Path):
    """Its file stayed, with no checksum to check it against, and verify said all was well
    (a warning, exit code 0)."""
    ok(run_cli("run", "diamond", cwd=tmp_project))
    folder = stage_folder(tmp_project, "a", "double")
    (folder / "doubled.meta.json").unlink()
    (folder / "notes.txt").write_text("the stage wrote this beside its outputs")

    failed = run_cli("cache", "verify", cwd=tmp_project)

    assert failed.code == 1, failed
    assert "FAILED Cached artifact 'doubled' of stage 'double' (parameter set 'a')" in failed.text
    assert "its record doubled.meta.json is missing" in failed.text
    assert str(folder / "doubled.pkl") in failed.text and "--remove" in failed.text
    assert "9 artifact(s) checked, 1 failed" in failed.text
    # A file named after no output of the stage run is no failure, and stays.
    assert f"File without a record: {folder / 'notes.txt'}." in failed.text
    assert failed.text.count("File without a record") == 1

    removed = ok(run_cli("cache", "verify", "--remove", cwd=tmp_project))
    assert "1 failed (removed)" in removed.text
    assert f"Removed {folder / 'doubled.pkl'}" in removed.text
    # The stage run had no other artifact: it went whole (notes.txt too), as gc removes it.
    assert not folder.exists()
    assert "8 artifact(s) checked, 0 failed" in ok(run_cli("cache", "verify", cwd=tmp_project)).text


def test_verify_knows_an_output_from_its_stage_run_s_other_sidecars(tmp_path: Path):
    """Without a run store: the sidecars of a stage run name all its outputs."""
    cache = CacheStore(tmp_path / "cache")
    ingredients = {"outputs": [["model", "1" * 32], ["score", "2" * 32]]}
    for output in ("model", "score"):
        cache.save(
            PickleCacher(name=output),
            {output: 1},
            key=KEY,
            output=output,
            meta={"stage": "train", "param_set": "s0", "ingredients": ingredients},
        )
    cache.link("exp", "s0", "train", KEY)  # the run is done writing it
    Path(cache.meta_path(KEY, "score")).unlink()

    checked, bad = verify_all(cache, without_record=(loose := []))

    assert checked == 2 and loose == []
    ((meta, problem),) = bad
    assert meta["output"] == "score" and "score.meta.json is missing" in problem
    assert "stage 'train' (parameter set 's0')" in problem


# -- verify --remove: the whole damaged entry goes ----------------------------------------


def test_verify_remove_removes_a_damaged_entry_whole_and_says_what(tmp_project: Path, calls):
    """A damaged sidecar went, its data file stayed; a stage run left with nothing kept its
    empty folder and its by-name link."""
    ok(run_cli("run", "diamond", cwd=tmp_project))
    calls.take()
    tampered = stage_folder(tmp_project, "b", "double")
    (tampered / "doubled.pkl").write_bytes(b"not the pickle")
    damaged = stage_folder(tmp_project, "b", "square")
    (damaged / "squared.meta.json").write_text("{ cut short")
    by_name = tmp_project / "data" / "cache" / "by-name" / "diamond" / "b"

    result = ok(run_cli("cache", "verify", "--remove", cwd=tmp_project))

    assert "9 artifact(s) checked, 2 failed (removed)" in result.text
    for path in (
        damaged / "squared.meta.json",
        damaged / "squared.pkl",
        tampered / "doubled.pkl",
        damaged,
        by_name / "square",
        by_name / "double",
    ):
        assert f"Removed {path}" in result.text, result
    assert not tampered.exists() and not damaged.exists()
    assert not (by_name / "double").is_symlink() and not (by_name / "square").is_symlink()
    assert (by_name / "load").exists()  # the sound ones stay
    assert "File without a record" not in result.text
    assert "7 artifact(s) checked, 0 failed" in ok(run_cli("cache", "verify", cwd=tmp_project)).text
    ok(run_cli("run", "diamond", "--overwrite-stage", "combine", cwd=tmp_project))
    assert {"double:b", "square:b"} <= set(calls.take())


def test_verify_remove_keeps_a_stage_run_s_sound_outputs(tmp_path: Path):
    cache = CacheStore(tmp_path / "cache")
    for output in ("model", "score"):
        cache.save(
            PickleCacher(name=output), {output: 1}, key=KEY, output=output, meta={"stage": "t"}
        )
    cache.link("exp", "s0", "t", KEY)
    Path(cache.meta_path(KEY, "score")).write_text("null")

    checked, bad = verify_all(cache, remove=True, without_record=[])

    assert checked == 2 and len(bad) == 1
    assert cache.outputs_of(KEY) == ["model"] and cache.linked_key("exp", "s0", "t") == KEY
    assert sorted(p.name for p in cache.stage_dir(KEY).iterdir()) == [
        "model.meta.json",
        "model.pkl",
    ]


# -- ls: sizes that tell the disk use ------------------------------------------------------


def _bytes_of_files(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir() or p.is_symlink())


def test_cache_ls_says_what_its_sizes_count_and_what_the_cache_holds_in_all(tmp_project: Path):
    """The size shown counted only the outputs' files: not their sidecars, nor the kept
    reportables, nor the code texts and read indexes, so it was far below the disk use."""
    ok(run_cli("run", "scaled", "-n", "a", cwd=tmp_project))
    cache = tmp_project / "data" / "cache"
    assert list(cache.rglob("_reportables.pkl")), "this test needs kept reportables"
    metas = [m for m in cache.rglob("*.meta.json") if not m.name.startswith("_")]
    data = sum(json.loads(m.read_text())["size"] for m in metas)
    folders = {m.parent for m in metas}

    listed = ok(run_cli("cache", "ls", cwd=tmp_project))

    header = table_header(listed.stdout)
    assert "data" in header and "size" not in header
    assert f"{len(metas)} artifact(s), {format_size(data)} of data." in listed.text
    in_folders = sum(_bytes_of_files(f) for f in folders)
    assert in_folders > data
    assert (
        f"Their {len(folders)} stage run folder(s) hold {format_size(in_folders)} of files in "
        "all: the data, each artifact's record (.meta.json), the stage runs' kept reportables"
    ) in listed.text, listed
    total = format_size(_bytes_of_files(cache))
    assert f"The whole cache holds {total} of files (with" in listed.text, listed
    only = ok(run_cli("cache", "ls", "-e", "scaled", cwd=tmp_project))
    assert f"hold {format_size(in_folders)} of files" in only.text
    assert "whole cache" not in only.text


def table_header(text: str) -> str:
    return " ".join(line for line in text.splitlines() if line.startswith("┃"))


# -- assay.load while another process replaces the entry (--overwrite) ---------------------


OVERWRITER = """
import sys
import time
from pathlib import Path
from assay.cache import CacheStore
from assay.caching import PickleCacher

cache = CacheStore(sys.argv[1])
meta = {"experiment": "exp", "param_set": "a", "stage": "make"}
i = 0
while not Path(sys.argv[2]).exists():  # as `assay run --overwrite` does, in a loop
    cache.save(PickleCacher(name="obj"), list(range(10 + i % 2)), key=sys.argv[3],
               output="obj", meta={**meta, "run_number": i})  # (each run its own)
    cache.link("exp", "a", "make", sys.argv[3])
    i += 1
    time.sleep(0.001)
print(i)
"""


def test_load_while_another_process_replaces_the_entry_gets_a_whole_artifact(tmp_path: Path):
    """A load by name between the old sidecar's removal and the new one's rename found no
    entry ("No cached artifact matches ...", "its record ... is missing"): 8 of about
    4,000 loads racing `assay run --overwrite`."""
    import subprocess
    import sys
    import time

    import assay

    root, stop = tmp_path / "cache", tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", OVERWRITER, str(root), str(stop), KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    failures: list[str] = []
    loads = 0
    try:
        deadline = time.monotonic() + 60
        while not (root / "by-name" / "exp" / "a" / "make").exists():
            assert time.monotonic() < deadline and writer.poll() is None, "the writer did not start"
            time.sleep(0.01)
        end = time.monotonic() + 4
        while time.monotonic() < end:
            try:
                value = assay.load(
                    "obj", param_set="a", stage="make", cache_dir=root, project_root=tmp_path
                )
                assert value in (list(range(10)), list(range(11))), value
            except Exception as exc:  # noqa: BLE001 - each failure is the finding
                failures.append(f"{type(exc).__name__}: {exc}")
            loads += 1
    finally:
        stop.touch()
        replaced, _ = writer.communicate(timeout=60)

    assert failures == [], f"{len(failures)} of {loads} loads failed: {failures[:3]}"
    assert writer.returncode == 0 and int(replaced) > 100 and loads > 100, (replaced, loads)


# -- verify: an artifact whose sidecar is damaged names its stage and parameter set ------------


def test_verify_names_the_stage_and_set_of_an_artifact_whose_sidecar_is_damaged(bad_project):
    """It said only "Cached artifact 'data': its record ... unreadable (key ...)". The
    names come from a by-name link to the stage run, else from the run store; with
    neither, the key alone is all there is to say."""
    ok(run_cli("run", "good", cwd=bad_project))
    by_name = bad_project / "data" / "cache" / "by-name" / "good"
    folder = (by_name / "alpha" / "load").resolve()  # its only sidecar: no other to ask
    (folder / "data.meta.json").write_text('{"key": "cut sh')
    named = "FAILED Cached artifact 'data' of stage 'load' (parameter set 'alpha'): its record"

    from_links = run_cli("cache", "verify", cwd=bad_project)
    assert from_links.code == 1 and named in from_links.text, from_links

    for param_set in ("alpha", "beta"):
        (by_name / param_set / "load").unlink()
    from_store = run_cli("cache", "verify", cwd=bad_project)
    assert from_store.code == 1 and named in from_store.text, from_store

    (bad_project / "assay.db").unlink()
    by_key = run_cli("cache", "verify", cwd=bad_project)
    assert by_key.code == 1, by_key
    assert "FAILED Cached artifact 'data': its record data.meta.json" in by_key.text
    assert folder.name in by_key.text  # the key


_PAIR = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["low", "high"], cachers=[JsonCacher, JsonCacher])
def split(record):
    return record.params.n, record.params.n + 1


def run(param_sets, manager):
    for params in param_sets:
        split(assay.Record(manager, params))


def get_params():
    return [Params(name="pair")]
"""


def test_verify_names_a_damaged_sidecar_after_the_other_sidecars_of_its_stage_run(
    tmp_path: Path,
):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "pair.py").write_text(_PAIR)
    ok(run_cli("run", "pair", cwd=tmp_path))
    link = tmp_path / "data" / "cache" / "by-name" / "pair" / "pair" / "split"
    folder = link.resolve()
    (folder / "low.meta.json").write_text("")
    link.unlink()  # and no run store: only the sidecar of `high` tells
    (tmp_path / "assay.db").unlink()

    failed = run_cli("cache", "verify", cwd=tmp_path)

    assert failed.code == 1, failed
    assert "FAILED Cached artifact 'low' of stage 'split' (parameter set 'pair')" in failed.text
