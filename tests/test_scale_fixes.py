"""Worker processes at the edges: shared clusters, killed runs, Ctrl-C, assay's own errors.

Every test uses real worker processes: a process pool (``--parallel``) or a
``distributed.LocalCluster`` whose workers are separate processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import assay
from assay.errors import StageFailed
from conftest import forget_project_modules, local_cluster, run_cli
from test_parallel import alive, descendants, stage_rows

# -- two projects, one cluster -------------------------------------------------------------

CFG = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from experiments.helper import SCALE


@dataclass
class Params(assay.ExperimentParameters):
    k: int = 3


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def compute(record):
    return record.params.k * SCALE


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        compute(assay.Record(manager, params))
"""


def project_with_scale(folder: Path, scale: int) -> Path:
    """A project whose ``experiments/cfg.py`` computes ``k * SCALE``, SCALE from a helper."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "experiments" / "cfg.py").write_text(CFG)
    (folder / "experiments" / "helper.py").write_text(f"SCALE = {scale}\n")
    return folder


@pytest.mark.slow
def test_projects_with_modules_of_the_same_name_each_run_their_own_on_one_cluster(
    tmp_path: Path,
):
    """Both projects have ``experiments/cfg.py`` (and the helper it imports): a worker
    that imported the first project's must not run the second's stages with it."""
    one = project_with_scale(tmp_path / "one", 1)
    two = project_with_scale(tmp_path / "two", 10)

    def value(root: Path, **options) -> int:
        forget_project_modules()
        manager = assay.run_experiment("cfg", [], project_root=root, **options)
        return manager.records[0].state["v"]

    with local_cluster() as cluster:
        on_cluster = {"executor": "dask", "dask_address": cluster.scheduler_address}
        assert value(one, **on_cluster) == 3
        assert value(two, **on_cluster) == 30
        assert value(one, overwrite=True, **on_cluster) == 3  # and back


# -- a run killed outright -----------------------------------------------------------------

WAITING = """
import os
import time

import assay
from assay.caching import JsonCacher

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@assay.stage(outputs=["n"], cachers=[JsonCacher])
def wait(record):
    with open(os.path.join(HERE, f"started-{record.params.name}"), "w") as handle:
        handle.write(str(os.getpid()))
    deadline = time.monotonic() + 300
    while record.params.name != "quick" and not os.path.exists(os.path.join(HERE, "go")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return 1


def get_params():
    return [assay.ExperimentParameters(name=n) for n in NAMES]


def run(param_sets, manager):
    for params in param_sets:
        wait(assay.Record(manager, params))
"""


def waiting_project(folder: Path, names: tuple[str, ...]) -> Path:
    """A project whose stage notes its pid in ``started-NAME``, then waits for a file
    ``go`` (but for parameter set "quick")."""
    (folder / "experiments").mkdir(parents=True)
    text = WAITING.replace("NAMES", repr(names))
    (folder / "experiments" / "waiting.py").write_text(text)
    return folder


def start_run(root: Path, *options: str) -> subprocess.Popen:
    """``assay run waiting OPTIONS`` in its own process group, as from a terminal; its
    output goes to ``root / "output.txt"`` (a pipe would stay open as long as a worker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
    with open(root / "output.txt", "w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "assay", "run", "waiting", *options],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(paths: list[Path], proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not all(p.exists() and p.read_text() for p in paths):
        assert proc.poll() is None and time.monotonic() < deadline, proc.args
        time.sleep(0.02)


def gone(pids: list[int], within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def test_the_workers_of_a_run_killed_outright_exit_instead_of_running_its_stages(
    tmp_path: Path,
):
    root = waiting_project(tmp_path / "project", ("a", "b", "c", "d"))
    proc = start_run(root, "--parallel", "2")
    workers: list[int] = []
    try:
        wait_for([root / "started-a", root / "started-b"], proc)
        workers = descendants(proc.pid)
        assert len(workers) == 2
        proc.kill()  # SIGKILL: the run cannot stop its workers itself
        proc.wait(timeout=30)

        assert gone(workers)
        assert not (root / "started-c").exists()
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# -- Ctrl-C --------------------------------------------------------------------------------


def test_ctrl_c_reaching_the_workers_is_left_to_the_main_process(tmp_path: Path):
    """A terminal's Ctrl-C signals the whole group: here the workers alone get it, one
    running a stage and one waiting for work. The main process decides (here: to go on);
    neither worker dies of it, nor prints a traceback."""
    root = waiting_project(tmp_path / "project", ("slow",))
    proc = start_run(root, "--parallel", "2")
    try:
        wait_for([root / "started-slow"], proc)
        workers = descendants(proc.pid)
        assert len(workers) == 2
        for pid in workers:
            os.kill(pid, signal.SIGINT)
        (root / "go").touch()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    output = (root / "output.txt").read_text()
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    assert "1 executed" in " ".join(output.split()), output


SITECUSTOMIZE = """
import os
import signal
import sys

if "--multiprocessing-fork" in sys.argv:  # a worker process, as it starts
    os.kill(os.getpid(), signal.SIGINT)
"""


@pytest.mark.slow
def test_a_ctrl_c_that_reaches_local_dask_workers_as_they_start_kills_none(tmp_path: Path):
    """Ctrl-C pressed while a local cluster starts reached its worker processes while they
    imported, and each printed a traceback. Here each signals itself, at that moment."""
    root = waiting_project(tmp_path / "project", ("quick",))
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)

    result = run_cli("run", "waiting", "--executor", "dask", "--parallel", "1",
                     cwd=root, env={"PYTHONPATH": str(hook)}, timeout=240)  # fmt: skip

    assert result.code == 0, result
    assert "Traceback" not in result.output, result
    assert "1 executed" in result.text, result


# -- assay's own errors in a worker --------------------------------------------------------

LOCKED = """
import threading

import assay
from assay.caching import PickleCacher


@assay.stage(outputs=["guard"], cachers=[PickleCacher])
def make(record):
    return threading.Lock()


def get_params():
    return [assay.ExperimentParameters(name="p")]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
"""


@pytest.mark.slow
def test_an_output_a_dask_worker_cannot_save_shows_assays_message_alone(tmp_path: Path):
    (tmp_path / "project" / "experiments").mkdir(parents=True)
    root = tmp_path / "project"
    (root / "experiments" / "locked.py").write_text(LOCKED)

    serial = run_cli("run", "locked", cwd=root)
    shutil.rmtree(root / "data" / "cache")
    on_dask = run_cli("run", "locked", "--executor", "dask", "--parallel", "1", cwd=root,
                      timeout=240)  # fmt: skip

    message = "Could not save output 'guard' of stage 'make' (parameter set 'p') with PickleCacher"
    for result in (serial, on_dask):
        assert result.code == 1 and message in result.text, result
        assert "Traceback" not in result.output, result
    assert "Compute Failed" not in on_dask.output, on_dask
    assert "distributed.worker" not in on_dask.output, on_dask


# -- what a worker could not be sent -------------------------------------------------------

UNDECLARED = """
import threading

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=[])
def configure(record):
    record.state["guard"] = threading.Lock()


@assay.stage(outputs=["kind"], cachers=[JsonCacher])
def undeclared(record):
    return type(record.state.get("guard")).__name__


def get_params():
    return [assay.ExperimentParameters(name="p")]


def run(param_sets, manager):
    for params in param_sets:
        undeclared(configure(assay.Record(manager, params)))
"""


def test_an_undeclared_state_value_that_cannot_be_pickled_is_said_to_be_so(tmp_path: Path):
    """Undeclared values that can be pickled do travel: "declare it" was the wrong advice."""
    root = tmp_path / "project"
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "undeclared.py").write_text(UNDECLARED)

    with pytest.raises(StageFailed) as failure:
        assay.run_experiment("undeclared", [], project_root=root, parallel=2)

    message = str(failure.value)
    assert "holds a _thread.lock that stage 'configure' put there" in message, message
    assert "cannot be pickled" in message and "Declare it" not in message, message


# -- the run store -------------------------------------------------------------------------

FAILING = """
import os
import time
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher

A_DONE = "a-done"  # in the folder the run starts from, which the stages run in


@dataclass
class Params(assay.ExperimentParameters):
    fail: bool = False


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def first(record):
    if record.params.fail:  # starts checking once a's check has run (and noted what it read)
        deadline = time.monotonic() + 120
        while not os.path.exists(A_DONE) and time.monotonic() < deadline:
            time.sleep(0.02)
    return 1


@assay.stage(inputs=["x"], outputs=["checked"], cachers=[JsonCacher])
def check(record, x):
    record.log_metric("pre", 1.0)
    if record.params.fail:
        raise ValueError("boom")
    return x


@assay.stage(inputs=["checked"], outputs=["done"], cachers=[JsonCacher])
def after(record, checked):
    open(A_DONE, "w").close()
    return checked


def get_params():
    return [Params(name="a"), Params(name="b", fail=True)]


def run(param_sets, manager):
    for params in param_sets:
        after(check(first(assay.Record(manager, params))))
"""


def failed_check_key(root: Path) -> tuple:
    """The key of b's failed ``check`` in the run store: its stage row's, its metric's."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(root / "assay.db")) as db:
        query = "SELECT key FROM {} WHERE param_set = 'b' AND stage = 'check'"
        return tuple(
            db.execute(query.format(table)).fetchone()[0] for table in ("stages", "metrics")
        )


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"parallel": 2}, id="process"),
        pytest.param({"executor": "dask", "parallel": 2}, id="dask", marks=pytest.mark.slow),
    ],
)
def test_a_failed_stage_is_recorded_with_its_key_as_in_a_serial_run(
    tmp_path: Path, monkeypatch, options
):
    """b's check is keyed on the fields it reads, known once it has run: a serial run
    records the key a's check had (what b's likely is), and so must a remote one."""
    monkeypatch.chdir(tmp_path)
    roots = []
    for name in ("serial", "remote"):
        root = tmp_path / name
        (root / "experiments").mkdir(parents=True)
        (root / "experiments" / "failing.py").write_text(FAILING)
        roots.append(root)
    serial, remote = roots
    for root, how in ((serial, {}), (remote, options)):
        forget_project_modules()
        Path("a-done").unlink(missing_ok=True)
        with pytest.raises(StageFailed, match="boom"):
            assay.run_experiment("failing", [], project_root=root, **how)

    assert stage_rows(remote) == stage_rows(serial)
    keys = failed_check_key(serial)
    assert None not in keys
    assert failed_check_key(remote) == keys
