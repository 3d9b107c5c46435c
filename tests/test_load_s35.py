"""Loading artifacts and `--overwrite`, as a researcher meets them (session 35).

Only ``_reportables`` and ``_state`` are assay's own entries beside a stage's outputs;
any other name starting with ``_`` is a researcher's output, and loading the stage by
name or by its folder without ``output=`` must find it. And a run made with
``--overwrite`` sets ``record.params.overwrite``, as Curifactory's command line does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from conftest import one_experiment_project, run_cli

SOURCE = """\
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["_scratch"], cachers=[JsonCacher])
def keep(record):
    return {"kept": record.params.name}


def get_params():
    return [assay.ExperimentParameters(name="one")]


def run(param_sets, manager):
    for params in param_sets:
        keep(assay.Record(manager, params))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = one_experiment_project(tmp_path, "load_s35_private", SOURCE)
    result = run_cli("run", "load_s35_private", "--no-report", cwd=root)
    assert result.code == 0, result
    return root


def test_a_stage_whose_output_starts_with_an_underscore_loads_by_name(project: Path) -> None:
    """It said "no artifact" (every `_`-name was taken for assay's own)."""
    value = assay.load(
        param_set="one", stage="keep", experiment="load_s35_private", project_root=project
    )
    assert value == {"kept": "one"}


def test_a_stage_whose_output_starts_with_an_underscore_loads_by_its_folder(
    project: Path,
) -> None:
    folder = project / "data" / "cache" / "by-name" / "load_s35_private" / "one" / "keep"
    assert folder.is_dir(), sorted(p.name for p in folder.parent.iterdir())

    assert assay.load(path=folder, project_root=project) == {"kept": "one"}


OVERWRITE_SOURCE = """\
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


@assay.stage(outputs=["seen"], cachers=[JsonCacher])
def look(record):
    return {"overwrite": record.params.overwrite}


def get_params():
    return [Params(name="one")]


def run(param_sets, manager):
    for params in param_sets:
        look(assay.Record(manager, params))
"""


@pytest.mark.parametrize("parallel", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_overwrite_sets_record_params_overwrite_as_curifactory_does(
    tmp_path: Path, parallel: list
) -> None:
    """`--overwrite` recomputed every stage, but a stage reading `record.params.overwrite`
    (as Curifactory's CLI sets it) saw False."""
    root = one_experiment_project(tmp_path, "load_s35_overwrite", OVERWRITE_SOURCE)
    seen = {}
    for flags in ([], ["--overwrite"]):
        result = run_cli("run", "load_s35_overwrite", "--no-report", *flags, *parallel, cwd=root)
        assert result.code == 0, result
        seen[bool(flags)] = assay.load(
            "seen", param_set="one", experiment="load_s35_overwrite", project_root=root
        )

    assert seen == {False: {"overwrite": False}, True: {"overwrite": True}}
