"""Live progress of runs on workers (``--parallel``, ``--executor dask``), and what the
run store records of when each stage run started.

A pool of two workers runs two stage runs at once and queues the rest. The
progress bar, the dashboard's progress file and ``assay show`` of a running run
counted every stage run *sent* to the workers as running (six of them, where two
ran), and the run store gave every stage run the moment it was sent as its start.

Each test runs ``assay run held`` as a user would, in a process of its own: six
parameter sets through one stage that notes when it began, then waits for a
``go.flag`` file, so that the test sees the run while two stage runs are held.
"""

from __future__ import annotations

import json
import math
import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assay.store import RunStore
from conftest import run_cli

HELD = """
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    index: int = 0


@assay.stage(None, ["result"], [JsonCacher])
def work(record):
    began = time.time()
    Path(f"began-{record.params.name}.txt").write_text(repr(began))
    while not Path("go.flag").exists():
        time.sleep(0.02)
    return record.params.index


def get_params():
    return [Params(name=f"s{i}", index=i) for i in range(6)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""

EXECUTORS = [
    pytest.param(["--parallel", "2"], id="parallel"),
    pytest.param(["--executor", "dask", "--parallel", "2"], id="dask"),
]

WAIT_S = 90
"""How long a test waits for the run to reach a state (a generous bound, never a
measurement: the states come in a few seconds)."""


def start_run(project: Path, options: list[str], **popen) -> subprocess.Popen:
    (project / "experiments" / "held.py").write_text(HELD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(PYTHONDONTWRITEBYTECODE="1")
    env.update(popen.pop("env", {}))
    return subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "held", *options], cwd=project, env=env, **popen
    )


def began(project: Path) -> dict[str, float]:
    """The stage runs that have begun: parameter set -> the time the stage noted."""
    found = {}
    for path in project.glob("began-*.txt"):
        text = path.read_text()
        if text:
            found[path.stem.removeprefix("began-")] = float(text)
    return found


def wait_until(condition, process: subprocess.Popen, what: str):
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value:
            return value
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def progress_file(project: Path) -> dict | None:
    """The running run's progress file, once it accounts for all six stage runs."""
    for path in (project / "logs").glob("*.progress.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):  # being replaced right now
            continue
        if len(data.get("current", [])) + data.get("queued", 0) == 6:
            return data
    return None


def finish(process: subprocess.Popen, project: Path) -> None:
    (project / "go.flag").touch()
    output, _ = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, output


@pytest.mark.parametrize("options", EXECUTORS)
def test_progress_counts_only_the_stage_runs_workers_have_taken_as_running(
    tmp_project: Path, options: list[str]
):
    """Two workers, six stage runs: the bar said `work [s5]` (the last one sent, which
    ran last), and the progress file and `assay show` six running, none pending."""
    screen_end, terminal = pty.openpty()
    process = start_run(
        tmp_project,
        options,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env={"COLUMNS": "200", "TERM": "xterm"},
    )
    os.close(terminal)
    drawn: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(screen_end, drawn), daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(began(tmp_project)) == 2, process, "two stage runs begin")
        progress = wait_until(lambda: progress_file(tmp_project), process, "the progress file")
        held = sorted(began(tmp_project))
        running = [f"work [{name}]" for name in held]
        assert sorted(progress["current"]) == running, progress
        assert progress["queued"] == 4, progress
        dashboard = _dashboard(tmp_project)
        with RunStore(tmp_project / "assay.db") as store:
            run_id = store.get_run("latest").id
        panel = dashboard.get(f"/api/runs/{run_id}/progress").json()
        page = dashboard.get(f"/runs/{run_id}/").text
        wait_until(lambda: b"(4 queued)" in b"".join(drawn), process, "4 queued on the bar")
        shown = run_cli("show", "latest", cwd=tmp_project)
        assert len(began(tmp_project)) == 2  # still held: what the test saw is the truth
    finally:
        finish(process, tmp_project)
        reader.join(timeout=WAIT_S)

    assert (sorted(panel["current"]), panel["queued"]) == (running, 4), panel
    assert "4 more sent to workers, waiting for a free one" in page
    bar = b"".join(drawn).decode(errors="replace")
    assert f"{running[0]}, {running[1]} (4 queued)" in bar
    assert shown.code == 0, shown
    assert "0 done, 2 running, 4 pending (4 of them sent to workers" in shown.text, shown
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in shown.stdout.splitlines()]
    assert sorted(row[0] for row in rows if row[-1:] == ["running"]) == held, shown


@pytest.mark.parametrize("options", EXECUTORS)
def test_the_run_store_records_when_each_stage_run_started_on_its_worker(
    tmp_project: Path, options: list[str]
):
    """Every stage run was recorded as started when it was sent to the workers, also
    the four that waited for the first two to finish."""
    process = start_run(
        tmp_project, [*options, "-q"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: len(began(tmp_project)) == 2, process, "two stage runs begin")
        # The four others were sent already: hold them in the queue for seconds, so that
        # a start recorded when they were sent is seen to be one.
        time.sleep(2.5)
    finally:
        finish(process, tmp_project)

    with RunStore(tmp_project / "assay.db") as store:
        stages = store.stages(store.get_run("latest").id)
    noted = began(tmp_project)
    assert sorted(s.param_set for s in stages) == sorted(noted) == [f"s{i}" for i in range(6)]
    for stage in stages:
        recorded = _epoch_second(stage.started)
        # The stage noted its start just after the worker did (the same second, unless a
        # second began in between).
        second = math.floor(noted[stage.param_set])
        assert recorded in (second, second - 1), (stage, noted[stage.param_set])


def _dashboard(project: Path):
    """``assay ui`` of ``project``, answering in this process."""
    from starlette.testclient import TestClient

    from assay.config import ProjectConfig
    from assay.ui import LOCAL_HOSTS, create_app

    app = create_app(ProjectConfig.load(project), allowed_hosts=list(LOCAL_HOSTS))
    return TestClient(app, base_url="http://127.0.0.1:8000")


def _epoch_second(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def _read_all(fd: int, into: list[bytes]) -> None:
    """What the run draws on its terminal, until it closes it."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the run ended: its end of the terminal is closed
            break
        if not chunk:
            break
        into.append(chunk)
    os.close(fd)


SLOW_INPUT = """
import time

import assay
from assay.caching import JsonCacher


class SlowJson(JsonCacher):
    def load(self):
        time.sleep(LOAD_S)
        return super().load()


@assay.stage(None, ["data"], [SlowJson])
def make(record):
    return [1, 2, 3]


@assay.stage(["data"], ["total"], [JsonCacher])
def add_up(record, data):
    return sum(data)


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        add_up(make(assay.Record(manager, params)))
"""

LOAD_S = 2.0


def test_a_stage_failing_on_a_worker_is_recorded_with_its_own_time_not_its_inputs_load(
    tmp_project: Path,
):
    """A failed stage run on a worker was recorded with the time from the worker taking
    the task, loading its inputs included, where a serial run records the stage's own."""
    experiment = tmp_project / "experiments" / "slow_input.py"
    experiment.write_text(SLOW_INPUT.replace("LOAD_S", repr(LOAD_S)))
    first = run_cli("run", "slow_input", "--parallel", "2", cwd=tmp_project)
    assert first.code == 0, first
    # Only add_up's code changes: make's output is loaded from the cache, slowly, first.
    experiment.write_text(
        experiment.read_text().replace("return sum(data)", "raise ValueError('no sum')")
    )

    failed = run_cli("run", "slow_input", "--parallel", "2", cwd=tmp_project)

    assert failed.code == 1 and "no sum" in failed.text, failed
    with RunStore(tmp_project / "assay.db") as store:
        stages = store.stages(store.get_run("latest").id)
    (add_up,) = [s for s in stages if s.stage == "add_up"]
    assert add_up.status == "failed" and add_up.duration_s is not None
    assert add_up.duration_s < LOAD_S, add_up  # the stage raised at once; loading took 2 s
