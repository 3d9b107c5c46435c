"""The run store as a researcher reads it while and after runs (session 35).

Each test drives the real command line (``python -m assay`` in a subprocess) on a small
project of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import one_experiment_project, run_cli

TRACEBACK = "Traceback (most recent call last)"

# Set "b" calls only_b, set "a" calls wait, which holds the run until the file "go" exists
# (after saying it has begun with the file "started").
WAITING = """
from dataclasses import dataclass
from pathlib import Path
import time
import assay
from assay.caching import JsonCacher

ROOT = Path(__file__).parent.parent

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1

@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    return [record.params.n]

@assay.stage(inputs=["data"], outputs=["model"], cachers=[JsonCacher])
def wait(record, data):
    (ROOT / "started").touch()
    while not (ROOT / "go").exists():
        time.sleep(0.02)
    return sum(data)

@assay.stage(inputs=["data"], outputs=["other"], cachers=[JsonCacher])
def only_b(record, data):
    return 2

def get_params():
    return [Params(name="a"), Params(name="b", n=2)]

def run(param_sets, manager):
    for p in param_sets:
        data = load(assay.Record(manager, p))
        if p.name == "b":
            only_b(data)
        else:
            wait(data)
"""


def recorded_runs(root: Path) -> int:
    """How many runs the project's run store holds (0 without one)."""
    if not (root / "assay.db").exists():
        return 0
    with sqlite3.connect(root / "assay.db") as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def start_run(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``assay run runs_waiting ARGS`` in the background (``env``: extra environment
    variables); returns once its stage ``wait`` has begun (the file ``started`` exists),
    or fails the test if the run ended first."""
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "runs_waiting", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while not (root / "started").exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its stage began: {proc.stdout.read()}")
        time.sleep(0.02)
    return proc


def wait_for_running_stage(logs: Path, proc: subprocess.Popen) -> None:
    """Return once the run's progress file (in ``logs``) names a stage running."""
    while True:
        assert proc.poll() is None, "the run ended before its progress file said so"
        for path in logs.glob("*.progress.json"):
            with contextlib.suppress(ValueError, OSError):  # written by a rename: whole
                if json.loads(path.read_text()).get("current"):
                    return
        time.sleep(0.02)


def finish(root: Path, proc: subprocess.Popen) -> str:
    """Let the waiting stage go on, and return the run's output once it has ended."""
    (root / "go").touch()
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    return output


def test_export_of_a_run_still_running_is_refused(tmp_path):
    """`assay export full latest` (or notebook, docker) while the latest run is still going:
    exit status 1 with a message that it is still running and to export it once it has
    ended, and nothing written (it said "Exported to" a folder marked running, with none of
    the run's artifacts). Once the run has ended the same command exports it."""
    root = one_experiment_project(tmp_path, "runs_waiting", WAITING)
    proc = start_run(root, "-n", "a")
    try:
        for kind in ("full", "notebook", "docker"):
            extra = ["--no-build"] if kind == "docker" else []
            result = run_cli("export", kind, "latest", *extra, cwd=root)
            assert result.code == 1, result
            assert TRACEBACK not in result.output, result
            assert "Run 1 (runs_waiting-0001-" in result.text, result
            assert "is still running" in result.text, result
            assert f"assay export {kind} 1" in result.text, result
        assert not (root / "data" / "runs").exists() or not any((root / "data" / "runs").iterdir())
    finally:
        finish(root, proc)
    done = run_cli("export", "full", "latest", cwd=root)
    assert done.code == 0, done
    assert "Exported to" in done.text, done
    (folder,) = (root / "data" / "runs").iterdir()
    assert "completed" in (folder / "README.md").read_text()


def test_show_finds_the_log_in_the_logs_folder_the_run_used(tmp_path):
    """A run made with ASSAY_LOGS_DIR=mylogs: `assay show` without the variable names its
    log (it printed no Log line, looking in logs/), and `assay export full` takes the log
    along (the export had no run.log)."""
    root = one_experiment_project(tmp_path, "runs_waiting", WAITING)
    ran = run_cli("run", "runs_waiting", "-n", "b", cwd=root, env={"ASSAY_LOGS_DIR": "mylogs"})
    assert ran.code == 0, ran
    (log_file,) = (root / "mylogs").glob("*.log")
    shown = run_cli("show", "latest", cwd=root)
    assert shown.code == 0, shown
    assert f"Log: {Path('mylogs') / log_file.name}" in shown.text, shown
    exported = run_cli("export", "full", "latest", cwd=root)
    assert exported.code == 0, exported
    (folder,) = (root / "data" / "runs").iterdir()
    assert (folder / "run.log").read_text() == log_file.read_text()


def test_show_finds_the_log_after_logs_dir_changed_in_the_settings(tmp_path):
    """A run made with logs_dir = "old-logs" in assay.toml, the setting changed since:
    `assay show` still names the run's log where it was written."""
    root = one_experiment_project(tmp_path, "runs_waiting", WAITING)
    (root / "assay.toml").write_text('logs_dir = "old-logs"\n')
    assert run_cli("run", "runs_waiting", "-n", "b", cwd=root).code == 0
    (root / "assay.toml").write_text('logs_dir = "new-logs"\n')
    shown = run_cli("show", "latest", cwd=root)
    assert shown.code == 0, shown
    assert f"Log: {Path('old-logs')}" in shown.text, shown


def test_overwrite_stage_of_a_stage_this_run_does_not_call_is_a_usage_error(tmp_path):
    """`assay run runs_waiting -n b --overwrite-stage wait`: `wait` is a stage of the
    experiment, but only set "a" calls it. Exit status 2 before anything is recorded (it
    recorded a failed run, with a log and a report); the same flag with set "a" runs."""
    root = one_experiment_project(tmp_path, "runs_waiting", WAITING)
    result = run_cli("run", "runs_waiting", "-n", "b", "--overwrite-stage", "wait", cwd=root)
    assert result.code == 2, result
    assert TRACEBACK not in result.output, result
    assert "--overwrite-stage 'wait': no stage called in this run has that name" in result.text
    assert "Its stages: load, only_b" in result.text, result
    assert recorded_runs(root) == 0
    assert not (root / "data" / "cache" / "objects").exists()
    (root / "go").touch()
    ran = run_cli("run", "runs_waiting", "-n", "a", "--overwrite-stage", "wait", cwd=root)
    assert ran.code == 0, ran
    assert recorded_runs(root) == 1


def test_export_of_a_run_made_before_the_project_moved_ships_its_artifacts(tmp_path):
    """A project moved to another folder (its cache with it): `assay export full` of a run
    made before the move copies the run's artifacts from the project's cache (it looked in
    the run's old cache folder, gone, and exported none: "2 no longer in the cache"), and
    `assay export notebook` loads them from the project's cache, not the old folder."""
    root = one_experiment_project(tmp_path, "runs_waiting", WAITING)
    assert run_cli("run", "runs_waiting", "-n", "b", cwd=root).code == 0
    moved = root.rename(tmp_path / "moved")
    exported = run_cli("export", "full", "latest", cwd=moved)
    assert exported.code == 0, exported
    assert "no longer in the cache" not in exported.text, exported
    (folder,) = (moved / "data" / "runs").iterdir()
    assert len(list((folder / "cache" / "objects").iterdir())) == 2
    notebook = run_cli("export", "notebook", "latest", cwd=moved)
    assert notebook.code == 0, notebook
    (written,) = folder.glob("*.ipynb")
    assert str(root) not in written.read_text().replace(str(moved), "")
    assert "PROJECT / 'data/cache'" in written.read_text()


def test_ls_shows_the_start_of_long_notes_and_show_all_of_them(tmp_path):
    """`assay run ... --notes` with a page of text: `assay ls` shows its first line, cut
    with "…" (the row took hundreds of lines, one run filled the screen); `assay show`
    still shows every word."""
    root = one_experiment_project(tmp_path, "runs_waiting", WAITING)
    long_note = "start " + " ".join(f"word{i}" for i in range(800)) + " theend"
    assert run_cli("run", "runs_waiting", "-n", "b", "--notes", long_note, cwd=root).code == 0
    notes = "first line\nsecond line"
    assert run_cli("run", "runs_waiting", "-n", "b", "--notes", notes, cwd=root).code == 0
    listed = run_cli("ls", cwd=root)
    assert listed.code == 0, listed
    assert len(listed.stdout.splitlines()) < 15, listed
    assert "start word0" in listed.text and "theend" not in listed.text, listed
    assert "…" in listed.text and "second line" not in listed.text, listed
    shown = run_cli("show", "1", cwd=root)
    assert "theend" in shown.text and "word799" in shown.text, shown


def test_show_of_a_running_run_reads_its_progress_in_the_logs_folder_it_uses(tmp_path):
    """A run going on with ASSAY_LOGS_DIR=mylogs: `assay show` in another shell (without
    the variable) lists the stage running now from the run's progress file and names its
    log (it looked in logs/ and showed no stage and no log)."""
    root = one_experiment_project(tmp_path, "runs_waiting", WAITING)
    proc = start_run(root, "-n", "a", env={"ASSAY_LOGS_DIR": "mylogs"})
    try:
        wait_for_running_stage(root / "mylogs", proc)
        shown = run_cli("show", "latest", cwd=root)
    finally:
        finish(root, proc)
    assert shown.code == 0, shown
    assert "stages so far" in shown.text, shown
    so_far = shown.text.split("stages so far", 1)[1]
    assert "wait" in so_far and "1 running" in so_far, shown
    assert f"Log: {Path('mylogs')}" in shown.text, shown
