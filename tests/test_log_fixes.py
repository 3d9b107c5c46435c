"""The run's console and log when a stage closes ``sys.stdout``, when the run store fills up
as a run ends, and when the log itself cannot be written (SPEC sections 5 and 10)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from assay.store import RunStore
from conftest import run_cli
from test_messages_fixes import _FILLS_THE_LOG as _FILLS

TRACEBACK = "Traceback (most recent call last)"

# -- a stage that closes sys.stdout -------------------------------------------------------

_CLOSES_STDOUT = """
import sys

import assay
from assay.caching import JsonCacher
from experiments.good import Params, get_params


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    print("before the close")
    sys.stdout.close()
    sys.stderr.close()
    print("after the close", flush=True)
    print("on stderr after the close", file=sys.stderr, flush=True)
    return [1, 2, 3]


@assay.stage(inputs=["data"], outputs=["total"], cachers=[JsonCacher])
def train(record, data):
    print("the next stage prints", flush=True)
    return sum(data)


def run(param_sets, manager):
    for params in param_sets:
        train(load(assay.Record(manager, params)))
"""


@pytest.mark.parametrize("workers", [[], ["--parallel", "1"]], ids=["serial", "worker"])
def test_a_stage_that_closes_stdout_closes_neither_the_console_nor_the_log(bad_project, workers):
    """The run completed, then the command died on its last line: "ValueError: I/O
    operation on closed file." (the stage had closed the console itself), exit 1; in a
    worker, the stage's next ``flush()`` failed it."""
    (bad_project / "experiments" / "closes.py").write_text(_CLOSES_STDOUT)
    result = run_cli("run", "closes", *workers, cwd=bad_project)
    assert result.code == 0, result
    assert TRACEBACK not in result.text, result
    assert "Run 1 (closes-" in result.stdout and "completed" in result.stdout, result
    assert "after the close\nthe next stage prints\n" in result.stdout, result
    assert "on stderr after the close" in result.stderr, result
    with RunStore(bad_project / "assay.db") as store:
        run = store.get_run("latest")
    assert run.status == "completed"
    log = (bad_project / "logs" / f"{run.id}.log").read_text()
    for printed in ("after the close", "on stderr after the close", "the next stage prints"):
        assert printed in log, log
    assert "Run 1 completed" in log


# -- a run store that fills up as the run ends --------------------------------------------

_FILLS_THE_DISK = """
import os

import assay
from assay.caching import JsonCacher
from experiments.good import Params, get_params


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    try:  # the disk of the run store: nothing more fits on it
        with open(os.environ["FILL"], "wb") as filler:
            while filler.write(b"\\0" * 65536):
                pass
    except OSError:
        pass
    return [1, 2, 3]


@assay.stage(inputs=["data"], outputs=["total"], cachers=[JsonCacher])
def train(record, data):
    FAIL
    return sum(data)


def run(param_sets, manager):
    for params in param_sets:
        train(load(assay.Record(manager, params)))
"""


@pytest.fixture
def small_disk(tmp_path):
    """A small empty tmpfs (root only; skipped elsewhere)."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small disk needs root on Linux")
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _run_filling_the_store(project, disk, *options, fail=False):
    (project / "experiments" / "fills.py").write_text(
        _FILLS_THE_DISK.replace("FAIL", 'raise ValueError("boom")' if fail else "pass")
    )
    env = {"FILL": str(disk / "filler"), "ASSAY_STORE_PATH": str(disk / "assay.db")}
    return run_cli("run", "fills", *options, cwd=project, env=env)


@pytest.mark.parametrize("dry_cache", [True, False])
def test_a_run_store_that_fills_up_is_said_once_with_what_the_cache_kept(
    bad_project, small_disk, dry_cache
):
    """The console said it twice ("ERROR: Run 1 ended ... could not be recorded" and then
    "Error: The run store ... could not be written"), and under --dry-cache it said that the
    stages' artifacts were cached, when the run wrote nothing to the cache."""
    result = _run_filling_the_store(
        bad_project, small_disk, *(["--dry-cache"] if dry_cache else [])
    )
    assert result.code == 1, result
    assert TRACEBACK not in result.text, result
    assert result.text.count("could not be written") == 1, result
    assert result.text.count("could not be recorded") == 1, result
    said = (
        "Error: Run 1 ended (completed) but could not be recorded in the run store: The run "
        f"store {small_disk / 'assay.db'} could not be written: the disk holding it is full"
    )
    assert said in result.text, result
    if dry_cache:
        assert "With --dry-cache it wrote nothing to the cache" in result.text, result
        assert "are cached" not in result.text, result
    else:
        assert "The artifacts its stages finished are cached" in result.text, result
    logs = list((bad_project / "logs").glob("*.log"))
    assert len(logs) == 1, logs
    assert f"Log: logs/{logs[0].name}" in result.stderr, result
    log = logs[0].read_text()
    assert log.count("could not be recorded in the run store") == 1, log
    assert "ERROR" in log


def test_a_run_store_that_fills_up_as_a_stage_fails_is_said_with_the_failure(
    bad_project, small_disk
):
    """The stage's failure is what the command line shows; the store's is said before it."""
    result = _run_filling_the_store(bad_project, small_disk, fail=True)
    assert result.code == 1, result
    assert result.text.count("Run 1 ended (failed) but could not be recorded") == 1, result
    said = "Error: Stage 'train' failed for parameter set 'alpha': ValueError: boom"
    assert said in result.text, result


# -- a log that cannot be written ---------------------------------------------------------

# The messages tests' experiment whose log disk fills up; here ``train`` may fail.
_FILLS_THE_LOG = _FILLS.replace("PRINT\n    return sum", "FAIL\n    return sum").replace(
    "PRINT", 'print("stage output")'
)


@pytest.mark.skipif(
    not os.path.exists("/dev/full") or not os.path.isdir("/proc/self/fd"),
    reason="needs Linux's /dev/full and /proc",
)
@pytest.mark.parametrize("fail", [False, True])
def test_a_log_that_could_not_be_written_is_recorded_on_the_run(bad_project, fail):
    """Only the console's warning said so: the run store, `assay show` and the run's
    metadata file had nothing of it, and the log itself was the only other trace."""
    (bad_project / "experiments" / "fills_log.py").write_text(
        _FILLS_THE_LOG.replace("FAIL", 'raise ValueError("boom")' if fail else "pass")
    )
    result = run_cli("run", "fills_log", cwd=bad_project)
    assert result.code == (1 if fail else 0), result
    with RunStore(bad_project / "assay.db") as store:
        run = store.get_run("latest")
    log = bad_project / "logs" / f"{run.id}.log"
    note = f"The run's log {log} is incomplete: writing it failed (No space left on device)."
    assert run.error is not None and run.error.endswith(note), run.error
    if fail:
        assert run.error.startswith("Stage 'train' failed"), run.error
    shown = run_cli("show", run.number, cwd=bad_project)
    assert "is incomplete: writing it failed" in shown.stdout, shown
