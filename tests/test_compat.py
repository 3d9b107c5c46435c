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


RUN_NAMES = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(None, ["names"], [JsonCacher])
def names(record):
    manager = record.manager
    with open(manager.get_run_output_path(f"notes/{record.name}.txt"), "w") as out:
        out.write(manager.get_reference_name())
    return {
        "n": record.params.n,
        "number": manager.experiment_run_number,
        "reference": manager.get_reference_name(),
        "stamp": manager.get_str_timestamp(),
        "run_id": manager.run_id,
    }


def get_params():
    return [Params(name="one"), Params(name="two", n=2)]


def run(param_sets, manager):
    for params in param_sets:
        names(assay.Record(manager, params))
"""


@pytest.mark.parametrize("parallel", [None, 2], ids=["serial", "workers"])
def test_a_stage_finds_the_run_under_curifactorys_names(tmp_project: Path, parallel):
    """`manager.get_reference_name()`, `experiment_run_number`, `get_run_output_path()`...
    were AttributeErrors, and on a worker `manager.run_id` was None."""
    (tmp_project / "experiments" / "run_names.py").write_text(RUN_NAMES)

    manager = assay.run_experiment(
        "run_names", [], parallel=parallel, store_full=True, project_root=tmp_project
    )

    stamp = manager.run_id.rpartition("-")[2]  # run-0001-20261206T095901
    expected = {
        "number": manager.run_number,
        "reference": manager.run_id,
        "stamp": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}-{stamp[8:]}",
        "run_id": manager.run_id,
    }
    assert [r.state["names"] for r in manager.records] == [
        {"n": 1, **expected},
        {"n": 2, **expected},
    ]
    assert manager.git_commit_hash == (manager.run_info.git_commit or "")
    export = tmp_project / "data" / "runs" / manager.run_id
    assert (export / "run.json").exists()  # --store-full kept what the stages wrote there
    for name in ("one", "two"):
        assert (export / "notes" / f"{name}.txt").read_text() == manager.run_id


def test_run_info_answers_to_curifactory_s_dict_keys(tmp_project: Path):
    """``manager.run_info["reference"]`` was "'RunInfo' object is not subscriptable"."""
    manager = assay.run_experiment("diamond", ["two"], project_root=tmp_project, notes="n")
    info = manager.run_info

    assert info["reference"] == manager.run_id and info["run_number"] == manager.run_number
    assert info["experiment_name"] == "diamond" and info["notes"] == "n"
    assert info["param_files"] == ["two"] and info["status"] == "completed"
    assert "reference" in info and info.get("params", "absent") == "absent"
    with pytest.raises(KeyError, match="'params': a run's record has no such entry"):
        info["params"]


def test_a_missing_input_is_a_key_error_as_in_curifactory(tmp_project: Path, calls: Calls):
    """Curifactory raises ``KeyError`` for an input no earlier stage produced; scripts that
    catch it (to skip a record, say) got an ``InputSignatureError`` they did not expect."""
    import pickle

    from assay.config import ProjectConfig
    from assay.errors import InputSignatureError, MissingInputError
    from assay.project import load_experiment

    diamond = load_experiment("diamond", ProjectConfig.load(tmp_project))
    manager = assay.ArtifactManager("missing", project_root=tmp_project)
    record = assay.Record(manager, diamond.Params(name="a"))

    with pytest.raises(KeyError) as caught:
        diamond.double(record)  # needs "data", which load() outputs

    assert isinstance(caught.value, InputSignatureError)  # assay's name still catches it
    message = str(caught.value)
    assert message.startswith("Stage 'double' needs input 'data'"), message  # not quoted
    again = pickle.loads(pickle.dumps(caught.value))  # it travels back from a worker
    assert type(again) is MissingInputError and str(again) == message
    assert calls.take() == []


KEYWORD_INPUTS = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    return list(range(record.params.n))


@assay.stage(inputs=["data"], outputs=["doubled"], cachers=[JsonCacher])
def double(record, **kwargs):
    return [2 * x for x in kwargs["data"]]


@assay.stage(inputs=["doubled", "absent"], outputs=["counted"], suppress_missing_inputs=True)
def count(record, doubled=(), **rest):
    return len(doubled) + len(rest)


@assay.aggregate(inputs=["doubled"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, **inputs):
    return sum(sum(values) for values in inputs["doubled"].values())


def get_params():
    return [Params(name="two", n=2), Params(name="three", n=3)]


def run(param_sets, manager):
    records = [count(double(load(assay.Record(manager, p)))) for p in param_sets]
    total(assay.Record(manager, None), records)
"""


@pytest.mark.parametrize("parallel", [None, 2], ids=["serial", "workers"])
def test_a_stage_may_take_its_inputs_as_keyword_arguments(tmp_project: Path, parallel):
    """Curifactory passes inputs by keyword and never checks the signature, so
    ``def double(record, **kwargs)`` works there; assay refused it when it was declared."""
    (tmp_project / "experiments" / "keywords.py").write_text(KEYWORD_INPUTS)

    manager = assay.run_experiment("keywords", [], parallel=parallel, project_root=tmp_project)

    assert [r.state["counted"] for r in manager.records[:2]] == [2, 3]
    assert manager.records[-1].state["total"] == 2 * (0 + 1) + 2 * (0 + 1 + 2)
