"""Clear messages for files that are there but cannot be read or written: settings files
that are not UTF-8 or are folders, experiment and parameter files with a NUL byte or that
are no regular file, a log file or run store on a full disk (SPEC section 10)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assay.config import ProjectConfig
from assay.errors import ConfigError, ProjectError, RunStoreError
from assay.project import load_experiment, load_param_sets
from assay.runlog import run_log
from assay.store import RunStore
from conftest import run_cli
from test_bad_input import fails

# -- settings files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [("assay.toml", b'cache_dir = "\xff"\n'), ("pyproject.toml", b'[tool.assay]\nx = "\xff"\n')],
)
def test_a_settings_file_that_is_not_utf8_is_named_for_every_command(bad_project, name, content):
    """It was a UnicodeDecodeError traceback, whatever the command."""
    (bad_project / name).write_bytes(content)
    fails(
        run_cli("ls", cwd=bad_project),
        f"{bad_project / name} is not valid TOML",
        "not UTF-8 text (byte 0xff",
        "Fix the file or remove it",
    )


def test_a_folder_named_assay_toml_is_refused_not_ignored(bad_project):
    """Its settings were silently replaced by the defaults."""
    (bad_project / "assay.toml").mkdir()
    with pytest.raises(ConfigError, match="assay.toml is a folder") as caught:
        ProjectConfig.load(bad_project)
    assert str(bad_project / "assay.toml") in str(caught.value)


# -- experiment and parameter files ---------------------------------------------------------


def _config(root: Path) -> ProjectConfig:
    return ProjectConfig.load(root)


def test_a_nul_byte_in_a_parameter_file_names_the_file(bad_project):
    """It said "The parameter file None, line None, has a syntax error"."""
    (bad_project / "params" / "nul.py").write_bytes(b"x = 1\x00\n")
    result = fails(run_cli("run", "good", "-p", "nul", cwd=bad_project))
    assert "None" not in result.text, result
    assert f"The parameter file {bad_project / 'params' / 'nul.py'} has a syntax error" in (
        result.text
    ), result
    assert "null bytes" in result.text, result


def test_a_nul_byte_in_an_experiment_or_a_module_it_imports_is_placed(bad_project):
    experiments = bad_project / "experiments"
    (experiments / "nulexp.py").write_bytes(b"import assay\x00\n")
    config = _config(bad_project)
    with pytest.raises(ProjectError) as caught:
        load_experiment("nulexp", config)
    message = str(caught.value)
    assert "None" not in message
    assert f"The experiment {experiments / 'nulexp.py'} has a syntax error" in message

    (bad_project / "nulhelper.py").write_bytes(b"x = 1\x00\n")
    (experiments / "uses_nul.py").write_text("import assay\nimport nulhelper\n")
    with pytest.raises(ProjectError) as caught:
        load_experiment("uses_nul", config)
    message = str(caught.value)
    assert "None" not in message
    assert f"{experiments / 'uses_nul.py'} imports a module that has a syntax error" in message
    assert "line 2" in message


def test_a_syntax_error_in_a_module_the_experiment_imports_names_it_as_such(bad_project: Path):
    """It said "The experiment .../helper.py has a syntax error", as if the helper were the
    experiment."""
    config = ProjectConfig.load(bad_project)
    experiments = bad_project / "experiments"
    (bad_project / "broken_helper.py").write_text("def broken(:\n")
    (experiments / "uses_broken.py").write_text("import assay\nimport broken_helper\n")
    with pytest.raises(ProjectError) as caught:
        load_experiment("uses_broken", config)

    assert str(caught.value) == (
        f"{bad_project / 'broken_helper.py'}, line 1, has a syntax error: invalid syntax (the "
        f"experiment {experiments / 'uses_broken.py'} imports it)."
    )


def _make(kind: str, path: Path) -> None:
    if kind == "folder":
        path.mkdir()
    elif kind == "broken link":
        path.symlink_to(path.parent / "gone" / "nowhere.py")
    elif kind == "link loop":
        path.symlink_to(path.name)
    else:
        os.mkfifo(path)


_KINDS = {
    "folder": "is a folder",
    "broken link": "is a broken symbolic link: it points to",
    "link loop": "is a symbolic link in a loop",
    "fifo": "is not a regular file",
}


@pytest.mark.parametrize("kind", list(_KINDS))
def test_a_parameter_name_that_is_no_regular_file_says_what_it_is(bad_project, kind):
    """It said "params/NAME.py does not exist. Did you mean 'NAME'?", the very name typed."""
    path = bad_project / "params" / "odd.py"
    _make(kind, path)
    config = _config(bad_project)
    experiment = load_experiment("good", config)
    for ref in ("odd", str(path)):
        with pytest.raises(ProjectError) as caught:
            load_param_sets([ref], experiment, config)
        message = str(caught.value)
        assert _KINDS[kind] in message, message
        assert "Did you mean" not in message
        assert not message.startswith("No parameter file"), message


@pytest.mark.parametrize("kind", list(_KINDS))
def test_an_experiment_name_that_is_no_regular_file_says_what_it_is(bad_project, kind):
    _make(kind, bad_project / "experiments" / "odd.py")
    with pytest.raises(ProjectError) as caught:
        load_experiment("odd", _config(bad_project))
    message = str(caught.value)
    assert _KINDS[kind] in message, message
    assert str(bad_project / "experiments" / "odd.py") in message
    assert "Did you mean" not in message


def test_a_dotted_file_name_is_not_suggested_as_itself(bad_project):
    """``-p v1.2`` looks for params/v1/2.py; params/v1.2.py needs its path."""
    shutil.copy(bad_project / "params" / "empty.py", bad_project / "params" / "v1.2.py")
    config = _config(bad_project)
    with pytest.raises(ProjectError) as caught:
        load_param_sets(["v1.2"], load_experiment("good", config), config)
    message = str(caught.value)
    assert "Did you mean 'v1.2'" not in message
    assert f"To use {bad_project / 'params' / 'v1.2.py'}, give its path" in message


# -- the log file ---------------------------------------------------------------------------

needs_dev_full = pytest.mark.skipif(
    not os.path.exists("/dev/full") or not os.path.isdir("/proc/self/fd"),
    reason="needs Linux's /dev/full and /proc",
)


@needs_dev_full
def test_a_log_file_that_cannot_be_written_fails_nothing_and_is_named_once(capfd, caplog):
    """Writing to a full disk raised out of print() and out of the end of the run."""
    with run_log(Path("/dev/full")) as log_file:
        print("a stage prints")
        logging.getLogger("assay.test").info("and logs")
        print("and prints again")
    assert log_file is not None
    assert log_file.failure is not None
    out, _ = capfd.readouterr()
    assert "a stage prints" in out and "and prints again" in out  # the console has it all
    warnings = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        "The run's log /dev/full cannot be written (No space left on device)"
    )


_FILLS_THE_LOG = '''
import os

import assay
from assay.caching import JsonCacher
from experiments.good import Params, get_params


def _log_disk_fills_up():
    """Point the run's open log file at /dev/full: every write to it now fails (ENOSPC)."""
    full = os.open("/dev/full", os.O_WRONLY)
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith(".log") and f"{os.sep}logs{os.sep}" in target:
            os.dup2(full, int(fd))
    os.close(full)


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    _log_disk_fills_up()
    PRINT
    return [1, 2, 3]


@assay.stage(inputs=["data"], outputs=["total"], cachers=[JsonCacher])
def train(record, data):
    PRINT
    return sum(data)


def run(param_sets, manager):
    for params in param_sets:
        train(load(assay.Record(manager, params)))
'''


@needs_dev_full
@pytest.mark.parametrize("prints", [True, False])
def test_a_full_disk_under_the_log_fails_no_stage_and_not_the_run(bad_project, prints):
    """A stage that printed was recorded as failed; without print the run was recorded as
    completed, but the command still said "Error: No space left on device" and exited 1."""
    statement = 'print("stage output", record.params.name)' if prints else "pass"
    (bad_project / "experiments" / "fills_log.py").write_text(
        _FILLS_THE_LOG.replace("PRINT", statement)
    )
    result = run_cli("run", "fills_log", cwd=bad_project)
    assert result.code == 0, result
    assert "Error" not in result.output, result
    with RunStore(bad_project / "assay.db") as store:
        run = store.get_run("latest")
        assert run.status == "completed"
        statuses = {s.status for s in store.stages(run.id)}
        assert "executed" in statuses and statuses <= {"executed", "cached"}, statuses
    log = bad_project / "logs" / f"{run.id}.log"
    assert result.stderr.count("cannot be written") == 1, result
    assert f"The run's log {log} cannot be written (No space left on device)" in result.text
    if prints:
        assert result.stdout.count("stage output") == 4, result  # the console has it all


# -- the run store --------------------------------------------------------------------------


def test_a_run_store_that_is_a_folder_is_said_to_be_one(bad_project):
    """It said "could not be used: unable to open database file"."""
    (bad_project / "assay.db").mkdir()
    fails(
        run_cli("run", "good", cwd=bad_project),
        f"The run store {bad_project / 'assay.db'} is a folder, not a SQLite file",
        "Move the folder away",
    )


_LIMITED_WRITES = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))
from assay.store import RunStore
try:
    RunStore(sys.argv[1]).begin_run("good", command="assay run good")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="file size limits as Linux has them")
def test_a_run_store_that_cannot_be_written_says_the_disk_may_be_full(tmp_path):
    """It said only "could not be used: disk I/O error"."""
    store = tmp_path / "assay.db"
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED_WRITES, str(store)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.startswith("RunStoreError"), proc
    assert f"The run store {store} could not be written" in proc.stdout
    assert "the disk holding it may be full" in proc.stdout
    assert "Make room on that disk, or set store_path" in proc.stdout


def test_a_run_store_on_a_full_disk_says_the_disk_is_full(full_disk):
    store = full_disk / "assay.db"
    with pytest.raises(RunStoreError) as caught:
        RunStore(store).begin_run("good", command="assay run good")
    message = str(caught.value)
    assert f"The run store {store} could not be written: the disk holding it is full" in message


def test_a_full_disk_as_the_logs_folder_fails_nothing(bad_project, full_disk):
    """The finding as reported: ``ASSAY_LOGS_DIR`` on a full disk."""
    result = run_cli(
        "run", "good", "--overwrite", cwd=bad_project, env={"ASSAY_LOGS_DIR": str(full_disk)}
    )
    assert result.code == 0, result
    assert "cannot be written (No space left on device)" in result.text, result


@pytest.fixture
def full_disk(tmp_path):
    """A small tmpfs, filled up (root only; skipped elsewhere)."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small full disk needs root on Linux")
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        with open(folder / "filler", "wb", buffering=0) as filler:
            try:
                while filler.write(b"\0" * 4096):
                    pass
            except OSError:
                pass
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
