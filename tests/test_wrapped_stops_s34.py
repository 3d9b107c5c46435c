"""A SIGTERM or Ctrl-C that Python wraps in another error still stops the run.

Python 3.11 turns an exception raised while a class body's ``__set_name__`` runs
(as an import defines classes) into ``RuntimeError: Error calling __set_name__``,
caused by it. A SIGTERM that landed there (assay imports its provenance code
while the first stages run) ended the run as a failure, exit 1, with a traceback.
The experiment below sends itself SIGTERM from inside ``__set_name__``, in a
stage or in its ``run()``: the run must stop as SIGTERM stops it (exit 143, run
recorded as interrupted), and the next run carry on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.errors import Terminated, stop_behind
from assay.store import RunStore
from conftest import one_experiment_project, run_cli

EXPERIMENT = '''
import os
import signal
from dataclasses import dataclass

import assay


class Stops:
    """Sends this process SIGTERM while Python calls its __set_name__."""

    def __set_name__(self, owner, name):
        if os.environ.get("STOP_IN"):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs between these steps
                pass


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(None, ["value"])
def make(record):
    if os.environ.get("STOP_IN") == "stage":
        class Late:
            attr = Stops()
    return record.params.n * 2


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    if os.environ.get("STOP_IN") == "run":
        class Late:
            attr = Stops()
    return [make(assay.Record(manager, p)) for p in param_sets]
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = one_experiment_project(tmp_path, "wrapped_stop_s34", EXPERIMENT)
    return root


def latest_status(root: Path) -> str:
    with RunStore(root / "assay.db") as store:
        return store.get_run("latest").status


@pytest.mark.parametrize("where", ["stage", "run"])
def test_sigterm_wrapped_by_set_name_stops_the_run(project: Path, where: str) -> None:
    stopped = run_cli("run", "wrapped_stop_s34", cwd=project, env={"STOP_IN": where})
    assert stopped.code == 143, stopped
    assert "Stopped by SIGTERM" in stopped.stderr
    assert "Traceback" not in stopped.stderr and "RuntimeError" not in stopped.stderr
    assert latest_status(project) == "interrupted"

    again = run_cli("run", "wrapped_stop_s34", cwd=project)
    assert again.code == 0, again
    assert latest_status(project) == "completed"


def test_stop_behind_finds_the_signal_in_the_chain() -> None:
    try:
        try:
            raise Terminated()
        except Terminated as stop:
            raise RuntimeError("Error calling __set_name__") from stop
    except RuntimeError as wrapped:
        found, original = stop_behind(wrapped), wrapped.__cause__
    assert type(found) is Terminated and found is not original
    assert stop_behind(RuntimeError("a stage's own error")) is None
