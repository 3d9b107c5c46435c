"""``assay.load`` of a stage whose only output's name starts with ``_`` (session 35).

Only ``_reportables`` and ``_state`` are assay's own entries beside a stage's outputs;
any other name starting with ``_`` is a researcher's output, and loading the stage by
name or by its folder without ``output=`` must find it.
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
