"""A run store entry whose JSON is damaged shows as empty, with a warning; the rest shows.

A run's settings, set names, parameter values or provenance that are not JSON
(edited by hand, or a failing disk) made `assay ls` and `assay show` end in a
JSONDecodeError traceback, so no run could be listed.
"""

from __future__ import annotations

import sqlite3
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
    return [Params(name="a")]


def run(param_sets, manager):
    for p in param_sets:
        make(assay.Record(manager, p))
"""


def test_damaged_json_in_the_store_is_shown_as_empty(tmp_path: Path) -> None:
    root = one_experiment_project(tmp_path, "damaged_s34", EXPERIMENT)
    for _ in range(2):
        assert run_cli("run", "damaged_s34", "-q", cwd=root).code == 0
    db = sqlite3.connect(root / "assay.db")
    with db:
        db.execute("UPDATE runs SET config_json = '{' WHERE number = 1")
        db.execute("UPDATE runs SET param_names_json = '[' WHERE number = 2")
        db.execute("UPDATE param_sets SET values_json = 'x' WHERE run = 2")
        db.execute("UPDATE provenance SET data_json = '{' WHERE run = 2")
    db.close()

    listed = run_cli("ls", cwd=root)
    assert listed.code == 0 and "Traceback" not in listed.text, listed
    assert "damaged (not JSON), shown as empty: run 1's settings" in listed.text
    assert "run 2's set names" in listed.text
    assert "damaged_s34" in listed.stdout and listed.stdout.count("completed") == 2

    shown = run_cli("show", "2", cwd=root)
    assert shown.code == 0 and "Traceback" not in shown.text, shown
    assert "values of parameter set 'a'" in shown.text and "provenance of run" in shown.text
