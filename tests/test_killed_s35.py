"""``--parallel`` workers that die mid-stage, and how many workers a run starts. Every
test runs ``assay run`` in a real process with real worker processes (Linux: the
stages look at ``/proc``)."""

from __future__ import annotations

import html
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.store import RunStore
from conftest import one_experiment_project, run_cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

DYING = """
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("killed_dying")


@dataclass
class Params(assay.ExperimentParameters):
    die: bool = False


def die():
    how = (ROOT / "die.how").read_text().strip()
    (ROOT / "die.how").unlink()
    if how == "itself":
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    elif how == "another":
        kill = f"import os, signal; os.kill({os.getpid()}, signal.SIGKILL)"
        subprocess.run([sys.executable, "-c", kill])
    else:
        os._exit(3)  # a crash in C code
    time.sleep(60)  # the kill takes its time to arrive


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def work(record):
    name = record.params.name
    print(f"printed by {name} before it could die")
    log.warning("logged by %s before it could die", name)
    (ROOT / f"started-{name}").touch()
    while len(list(ROOT.glob("started-*"))) < 2:  # both run at once
        time.sleep(0.02)
    if record.params.die and (ROOT / "die.how").exists():
        die()
    while (ROOT / "die.how").exists() or not (ROOT / "rerun").exists():
        time.sleep(0.05)  # until the run stops this worker (the first run)
    return 1


def get_params():
    return [Params(name="fine"), Params(name="dying", die=True)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


def dying_project(folder: Path, how: str) -> Path:
    root = one_experiment_project(folder, "killed_dying", DYING)
    (root / "die.how").write_text(how)
    return root


def statuses_and_error(root: Path) -> tuple[dict[str, str], str | None]:
    with RunStore(root / "assay.db") as store:
        run = store.get_run("latest")
        return {s.param_set: s.status for s in store.stages(run.id)}, run.error


@pytest.mark.parametrize("how", ["itself", "another", "crash"])
def test_what_a_stage_printed_and_logged_before_its_worker_died_reaches_the_runs_log(
    tmp_path: Path, how: str
):
    """A worker sent what its stage printed and logged back with the stage's result: one
    killed mid-stage (out of memory, kill -9, a crash) took it with it, so the run's log
    said nothing of how far the stage got, nor of the other stage runs the run stopped."""
    root = dying_project(tmp_path, how)

    result = run_cli("run", "killed_dying", "--parallel", "2", cwd=root)

    assert result.code == 1, result
    assert "Traceback" not in result.output, result
    (log_file,) = (root / "logs").glob("*.log")
    logged = log_file.read_text()
    for name in ("fine", "dying"):
        assert f"printed by {name} before it could die" in logged, logged
        assert f"logged by {name} before it could die" in logged, logged
        assert f"printed by {name} before it could die" in result.stdout, result
    assert logged.index("logged by dying") < logged.index("worker process stopped"), logged


@pytest.mark.parametrize("how", ["itself", "another"])
def test_the_set_whose_worker_died_is_the_one_marked_failed(tmp_path: Path, how: str):
    """A process pool fails every stage run in flight alike when one of its workers dies:
    the run marked failed the first set it collected ('fine', submitted first), whose
    worker was fine, and the report and the message named it too."""
    root = dying_project(tmp_path, how)

    result = run_cli("run", "killed_dying", "--parallel", "2", cwd=root)

    assert result.code == 1, result
    statuses, error = statuses_and_error(root)
    assert statuses == {"fine": "interrupted", "dying": "failed"}, statuses
    for said in (error, result.text):
        assert "stage 'work' for parameter set 'dying'" in said, said
        assert "parameter set 'fine'" not in said, said
    (report,) = (root / "reports").glob("*/index.html")
    shown = html.unescape(report.read_text())
    assert "The run failed in stage <code>work</code> for <code>dying</code>" in shown
    assert "parameter set 'dying'" in shown and "parameter set 'fine'" not in shown

    for started in root.glob("started-*"):
        started.unlink()
    (root / "rerun").touch()
    rerun = run_cli("run", "killed_dying", "--parallel", "2", cwd=root)

    assert rerun.code == 0, rerun
    assert statuses_and_error(root)[0] == {"fine": "executed", "dying": "executed"}


COUNTED = """
import os
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher


def workers_of_the_run():
    \"\"\"The worker processes of the run's process: spawned, or forked from it (the
    same command line), not the other programs it runs (git).\"\"\"
    run, found = os.getppid(), 0
    run_command = Path(f"/proc/{run}/cmdline").read_bytes()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():  # /proc/self is this process again
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == run and (b"spawn_main" in command or command == run_command):
            found += 1
    return found


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 0


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def work(record):
    return [record.params.x, workers_of_the_run()]


def get_params():
    return [Params(name="a", x=1), Params(name="b", x=2)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


def test_parallel_50_for_two_parameter_sets_starts_two_workers(tmp_path: Path):
    """`--parallel 50` for two parameter sets started 50 worker processes (with a warning
    about the cores), 48 of which never ran a stage."""
    root = one_experiment_project(tmp_path, "killed_counted", COUNTED)

    result = run_cli("run", "killed_counted", "--parallel", "50", cwd=root)

    assert result.code == 0, result
    values = [
        eval(p.read_text())  # JsonCacher: a list reads as Python
        for p in (root / "data" / "cache").rglob("v.json")
    ]
    assert sorted(x for x, _ in values) == [1, 2], values
    assert all(workers == 2 for _, workers in values), values
    assert "starts 50 worker processes" not in result.text, result
    (log_file,) = (root / "logs").glob("*.log")
    assert "Starting 2 worker processes, not 50" in log_file.read_text()


PRINTING = """
import sys
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    how: str = ""


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def work(record):
    print("text first")
    if record.params.how == "bytes":
        sys.stdout.buffer.write(b"bytes \\xe2\\x9c\\x93 and \\xff then\\n")  # a check mark, a bad byte
        sys.stdout.buffer.flush()
    else:
        print("a lone surrogate \\udcff")
    return 1


def get_params():
    return [Params(name=HOW, how=HOW)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


def printing_project(folder: Path, how: str) -> Path:
    return one_experiment_project(
        folder, "killed_printing", PRINTING.replace("HOW", repr(how), 1).replace("HOW", repr(how))
    )


def test_a_stage_writing_bytes_to_sys_stdout_runs_on_a_worker_as_serially(tmp_path: Path):
    """``sys.stdout.buffer.write(...)`` (what a stage passing on a program's raw output
    does) works in a serial run; on a worker ``sys.stdout`` had no ``buffer``, and the
    stage failed with an AttributeError."""
    root = printing_project(tmp_path, "bytes")

    result = run_cli("run", "killed_printing", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    assert "bytes \u2713 and \ufffd then" in result.stdout, result
    (log_file,) = (root / "logs").glob("*.log")
    assert "bytes \u2713 and \ufffd then" in log_file.read_text(encoding="utf-8")


def test_text_the_runs_log_cannot_hold_fails_the_stage_on_a_worker_as_serially(tmp_path: Path):
    """A serial run fails the stage that prints a lone surrogate (its log file, UTF-8,
    cannot hold it); on a worker the print went through, and the main process, printing
    it, stopped the whole run with a traceback through assay's code (the run left
    "running" in the run store)."""
    root = printing_project(tmp_path, "surrogate")

    for options in ([], ["--parallel", "2"]):
        result = run_cli("run", "killed_printing", *options, cwd=root)

        assert result.code == 1, result
        said = "Stage 'work' failed for parameter set 'surrogate': UnicodeEncodeError"
        assert said in result.text, result
        assert "Traceback (most recent call last)" not in result.output, result
        assert statuses_and_error(root)[0] == {"surrogate": "failed"}, options


STOPPED = """
import logging
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher

ROOT = Path(__file__).resolve().parent.parent


def square(x):
    print(f"a forked process squares {x}")
    return x * x


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 0


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def work(record):
    name = record.params.name
    with multiprocessing.get_context("fork").Pool(1) as pool:
        squares = pool.map(square, [record.params.x])
    print(f"{name} got {squares}")
    logging.getLogger("killed_stopped").warning("%s logged", name)
    (ROOT / f"working-{name}").touch()
    while not (ROOT / "go-on").exists():
        time.sleep(0.05)
    return squares


def get_params():
    return [Params(name="a", x=2), Params(name="b", x=3)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


def start_run(root: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
    return subprocess.Popen(
        [sys.executable, "-m", "assay", "run", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_what_stages_printed_before_ctrl_c_stopped_their_workers_reaches_the_runs_log(
    tmp_path: Path,
):
    """Ctrl-C stops the workers mid-stage: what their stages had printed and logged
    (which a serial run shows as it goes) was lost with them."""
    root = one_experiment_project(tmp_path, "killed_stopped", STOPPED)
    proc = start_run(root, "killed_stopped", "--parallel", "2")
    try:
        deadline = time.monotonic() + 60
        while not all((root / f"working-{name}").exists() for name in "ab"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == 130, stdout + stderr
    (log_file,) = (root / "logs").glob("*.log")
    logged = log_file.read_text()
    for name, square in (("a", 4), ("b", 9)):
        assert f"{name} got [{square}]" in stdout, stdout
        assert f"{name} got [{square}]" in logged, logged
        assert f"{name} logged" in logged, logged
    assert statuses_and_error(root)[0] == {"a": "interrupted", "b": "interrupted"}


def test_what_processes_a_stage_forks_print_reaches_the_runs_log_from_a_worker(
    tmp_path: Path,
):
    """A serial run shows and logs what the processes of a stage's ``multiprocessing``
    pool print; on a worker it went into their copy of the worker's output, and was
    lost with them."""
    root = one_experiment_project(tmp_path, "killed_stopped", STOPPED)
    (root / "go-on").touch()

    for options in ([], ["--parallel", "2"]):
        result = run_cli("run", "killed_stopped", "--overwrite", *options, cwd=root)

        assert result.code == 0, result
        log_file = max((root / "logs").glob("*.log"))
        for x in (2, 3):
            assert f"a forked process squares {x}" in result.stdout, (options, result)
            assert f"a forked process squares {x}" in log_file.read_text(), options


def test_an_output_file_cut_mid_entry_reads_up_to_the_entry_cut(tmp_path: Path):
    """A worker killed in the middle of a write leaves half an entry: what came before
    it is replayed, line by line as written (text waits for its newline)."""
    from assay.remote import LogLine
    from assay.worker_output import OutputFile, read

    path = tmp_path / "1.out"
    output = OutputFile(str(path))
    output.add("stdout", "epoch 1")
    output.add("stdout", " done\n")
    output.add("log", LogLine(30, "killed", "a warning"))
    output.add("stderr", "half a line")  # written as the stream changes
    output.add("stdout", "epoch 2 done\n")
    output.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])

    written = read(str(path))

    assert written is not None and written.lost
    assert written.events[0] == ("stdout", "epoch 1 done\n")
    assert written.events[1][1].message == "a warning"
    assert written.events[2:] == [("stderr", "half a line")]
    assert read(str(tmp_path / "missing.out")) is None


PROGRAM = """
import faulthandler
import subprocess
import sys
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 0


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def work(record):
    faulthandler.enable()  # writes to sys.stderr's file descriptor
    program = "print('printed by a program')"
    subprocess.run([sys.executable, "-c", program], stdout=sys.stdout, check=True)
    return 1


def get_params():
    return [Params(name="a", x=1)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


def test_a_stage_handing_sys_stdout_to_a_program_runs_on_a_worker_as_serially(tmp_path: Path):
    """``subprocess.run(..., stdout=sys.stdout)`` and ``faulthandler.enable()`` take the
    stream's file descriptor: a serial run's is the console's, a worker's stream had
    none (``io.UnsupportedOperation: fileno``), and the stage failed."""
    root = one_experiment_project(tmp_path, "killed_program", PROGRAM)

    for options in ([], ["--parallel", "2"]):
        result = run_cli("run", "killed_program", "--overwrite", *options, cwd=root)

        assert result.code == 0, result
        assert "printed by a program" in result.stdout, result


TWO_ARGUMENTS = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


class FitFailed(Exception):
    def __init__(self, epoch, loss):
        super().__init__(f"the fit diverged at epoch {epoch} (loss {loss})")
        self.epoch, self.loss = epoch, loss


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 0


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def fit(record):
    raise FitFailed(7, float("inf"))


def get_params():
    return [Params(name="a", x=1)]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
"""


@pytest.mark.parametrize("parallel", [None, 2], ids=["serial", "parallel"])
def test_a_stage_exception_whose_init_takes_other_arguments_keeps_its_attributes(
    tmp_path: Path, parallel: int | None
):
    """Python pickles an exception as its class called with its ``args``: one whose
    ``__init__(self, epoch, loss)`` passes a message on could not be rebuilt from a
    worker, and ``except FitFailed as e: e.epoch`` found no ``epoch`` (a serial run's
    has it)."""
    import assay

    root = one_experiment_project(tmp_path, "killed_two_arguments", TWO_ARGUMENTS)

    with pytest.raises(Exception) as raised:
        assay.run_experiment("killed_two_arguments", [], project_root=root, parallel=parallel)

    kinds = [kind.__name__ for kind in type(raised.value).__mro__]
    assert "FitFailed" in kinds, kinds  # `except FitFailed` catches it
    assert (raised.value.epoch, raised.value.loss) == (7, float("inf"))
    assert "the fit diverged at epoch 7" in str(raised.value)
