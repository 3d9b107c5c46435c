"""Curifactory's names for running an experiment: ``run_experiment``'s keyword arguments
and the command line's options, so that scripts and shell lines written for Curifactory
run with ``import assay as cf`` (see :mod:`assay.compat`).

The experiment is ``scaled`` of ``tests/resources/projects/basic``: four parameter sets
``a``-``d`` through four stages, then the aggregate ``leaderboard``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from assay.errors import ParameterError
from conftest import Calls, run_cli


def ran_sets(calls: Calls) -> list[str]:
    """The parameter sets whose stages ran since the last look."""
    return sorted({call.split(":")[1] for call in calls.take()} - {"aggregate"})


def test_run_experiment_takes_curifactorys_keyword_arguments(tmp_project: Path, calls: Calls):
    """`param_set_names=` (and a dozen others) was "an unexpected keyword argument"."""
    manager = assay.run_experiment(
        experiment_name="scaled",
        param_files=[],
        param_set_names=["b"],
        overwrite_override=None,
        log=True,
        log_debug=False,
        no_dag=True,
        quiet=True,
        progress=False,
        project_root=tmp_project,
    )
    assert [r.name for r in manager.records if r.params is not None] == ["b"]
    assert ran_sets(calls) == ["b"]

    again = assay.run_experiment(
        "scaled",
        [],
        global_param_set_indices=["0-2"],
        stage_overwrites=["fit"],
        project_root=tmp_project,
    )
    assert [r.name for r in again.records if r.params is not None] == ["a", "b"]
    assert ran_sets(calls) == ["a", "b"]  # a for the first time; b's fit (--overwrite-stage)

    planned = assay.run_experiment("scaled", [], paths_only=True, project_root=tmp_project)
    assert planned.run_info is None and calls.take() == []  # a plan: nothing ran


@pytest.mark.parametrize(
    ("arguments", "error", "fragment"),
    [
        ({"mngr": object()}, TypeError, "makes its own manager and returns it"),
        ({"colour": True}, TypeError, "unexpected keyword argument 'colour'"),
        ({"param_set_names": ["a"], "names": ["b"]}, TypeError, "got 'names' twice"),
        ({"param_set_indices": ["3-1"]}, ParameterError, "1-3 means 1 and 2"),
    ],
)
def test_a_curifactory_argument_assay_cannot_take_says_why(
    tmp_project: Path, calls: Calls, arguments, error, fragment
):
    with pytest.raises(error, match=fragment):
        assay.run_experiment("scaled", [], project_root=tmp_project, **arguments)
    assert calls.take() == []


def test_the_command_line_takes_curifactorys_options(tmp_project: Path, calls: Calls):
    """`-c DIR`, `-s`, `--indices 1-3`, `--global-indices` and `--no-dag` were refused."""
    result = run_cli(
        "run", "scaled", "-i", "1-3", "--global-indices", "0", "-c", "other-cache", "-s",
        "--no-dag", "--no-report", cwd=tmp_project,
    )  # fmt: skip

    assert result.code == 0, result
    assert ran_sets(calls) == ["a", "b", "c"]
    assert (tmp_project / "other-cache" / "by-name" / "scaled" / "c").is_dir()
    assert not (tmp_project / "data" / "cache" / "by-name").exists()
    assert "Exported to: data/runs/" in result.text, result

    wrong = run_cli("run", "scaled", "-i", "3-1", cwd=tmp_project)
    assert wrong.code == 2 and "1-3 means 1 and 2, as in Curifactory" in wrong.text, wrong
