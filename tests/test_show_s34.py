"""``assay show`` of a sweep lists at most 200 parameter sets, as it does stage runs.

It printed every parameter set (a 5,000-row table for 5,000 sets) while it cut the
stage runs at 200.
"""

from __future__ import annotations

from pathlib import Path

from conftest import one_experiment_project, run_cli

EXPERIMENT = """
from dataclasses import dataclass

import assay


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(None, ["value"])
def make(record):
    return record.params.n


def get_params():
    return [Params(name=f"set{i}", n=i) for i in range(205)]


def run(param_sets, manager):
    for p in param_sets:
        make(assay.Record(manager, p))
"""


def test_show_cuts_parameter_sets_as_it_cuts_stage_runs(tmp_path: Path) -> None:
    root = one_experiment_project(tmp_path, "sweep_show_s34", EXPERIMENT)
    assert run_cli("run", "sweep_show_s34", "-q", "--no-report", cwd=root).code == 0

    shown = run_cli("show", "latest", cwd=root)
    assert shown.code == 0, shown
    assert "... and 5 more parameter sets." in shown.stdout
    assert "... and 5 more stage runs." in shown.stdout
    assert "set199" in shown.stdout and "set200" not in shown.stdout
