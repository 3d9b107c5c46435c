"""False cache hits found in session 31: each edit between two real runs (fresh
``python -m assay run`` processes in a project made in ``tmp_path``) must recompute the
stages whose result it can change, and the results loaded afterwards must be the ones the
current code and parameters compute."""

from __future__ import annotations

import textwrap
from pathlib import Path

import assay
from conftest import edit, run_cli

OPTIONS = """
import enum
from dataclasses import dataclass


@dataclass
class Options:
    lr: float = 0.1


class Kind(enum.Enum):
    FAST = 1
"""

EXPERIMENT = """
from dataclasses import dataclass, field

import assay
from assay.caching import JsonCacher

import lib.adam
import lib.sgd


@dataclass
class Params(assay.ExperimentParameters):
    opt: object = field(default_factory=lib.sgd.Options)
    kind: object = lib.sgd.Kind.FAST


@assay.stage(outputs=["kinded"], cachers=[JsonCacher])
def kinded(record):
    return "sgd" if record.params.kind is lib.sgd.Kind.FAST else "adam"


@assay.aggregate(outputs=["summary"], cachers=[JsonCacher])
def summary(record, records):
    return [type(r.params.opt).__module__ for r in records]


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    records = [assay.Record(manager, params) for params in param_sets]
    for record in records:
        kinded(record)
    summary(assay.Record(manager, None), records)
"""


def write_project(root: Path, files: dict[str, str]) -> None:
    (root / "assay.toml").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def test_classes_of_one_name_in_two_modules_are_told_apart_in_parameters(tmp_path: Path):
    """An enum member (or a dataclass instance) of `lib.adam` in place of the one of the
    same name in `lib.sgd` is another value: a stage reading it and an aggregate over the
    set recompute, instead of handing back what the `lib.sgd` value gave."""
    write_project(
        tmp_path,
        {
            "lib/__init__.py": "",
            "lib/sgd.py": OPTIONS,
            "lib/adam.py": OPTIONS,
            "experiments/opt.py": EXPERIMENT,
        },
    )
    first = run_cli("run", "opt", "--no-report", cwd=tmp_path)
    assert first.code == 0, str(first)
    edit(
        tmp_path / "experiments/opt.py",
        "default_factory=lib.sgd.Options)\n    kind: object = lib.sgd.Kind.FAST",
        "default_factory=lib.adam.Options)\n    kind: object = lib.adam.Kind.FAST",
    )
    second = run_cli("run", "opt", "--no-report", cwd=tmp_path)
    assert second.code == 0, str(second)

    def load(output: str, **where: str):
        return assay.load(output, experiment="opt", project_root=tmp_path, **where)

    assert load("kinded", param_set="a") == "adam"
    assert load("summary") == ["lib.adam"]
