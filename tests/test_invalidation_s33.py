"""False cache hits found in session 33: each edit between two real runs (fresh
``python -m assay run`` processes in a project made in ``tmp_path``) must recompute the
stages whose result it can change, and the results loaded afterwards must be the ones the
current code and parameters compute."""

from __future__ import annotations

import textwrap
from pathlib import Path

import assay
from conftest import edit, run_cli


def write_project(root: Path, files: dict[str, str]) -> None:
    (root / "assay.toml").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def run_ok(root: Path, *args: str) -> str:
    result = run_cli("run", *args, "--no-report", cwd=root)
    assert result.code == 0, str(result)
    return result.text


OPTIONAL_FIELD = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1


@assay.stage(outputs=["dropout"], cachers=[JsonCacher])
def dropout(record):
    return getattr(record.params, "dropout", 0.5)


@assay.stage(outputs=["has_dropout"], cachers=[JsonCacher])
def has_dropout(record):
    return hasattr(record.params, "dropout")


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        dropout(record)
        has_dropout(record)
"""


def test_a_field_read_with_a_fallback_recomputes_once_the_class_has_it(tmp_path: Path):
    """`getattr(record.params, "dropout", 0.5)` (or `hasattr`) on a set without that field
    gives the fallback; once the class gets the field, the stage gives the field's value
    and must recompute, instead of handing back the fallback's result."""
    write_project(tmp_path, {"experiments/inval33_optional.py": OPTIONAL_FIELD})
    run_ok(tmp_path, "inval33_optional")
    edit(
        tmp_path / "experiments/inval33_optional.py",
        "lr: float = 0.1\n",
        "lr: float = 0.1\n    dropout: float = 0.2\n",
    )
    why = run_cli("why", "inval33_optional", cwd=tmp_path)
    assert why.code == 0, str(why)
    assert "executes dropout [a]: a parameter it reads changed: dropout <absent> -> 0.2" in (
        why.text
    ), str(why)
    assert "executes has_dropout" in why.text, str(why)
    run_ok(tmp_path, "inval33_optional")

    def load(output: str):
        return assay.load(
            output, param_set="a", experiment="inval33_optional", project_root=tmp_path
        )

    assert load("dropout") == 0.2
    assert load("has_dropout") is True


HANDED_ON = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


class Model:
    def __init__(self, params):
        self.params = params

    def fit(self):
        return self.params.lr * 10


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1


@assay.stage(outputs=["model"])
def make_model(record):
    return Model(record.params)


@assay.stage(inputs=["model"], outputs=["score"], cachers=[JsonCacher])
def train(record, model):
    return model.fit()


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        train(make_model(assay.Record(manager, params)))
"""


def test_a_parameter_set_handed_on_in_an_output_keys_what_reads_it_later(tmp_path: Path):
    """`make_model` returns an object holding `record.params` (no cacher), and `train`
    reads `lr` through it: changing `lr` recomputes both, instead of reusing the score
    computed with the old `lr`."""
    write_project(tmp_path, {"experiments/inval33_handed.py": HANDED_ON})
    run_ok(tmp_path, "inval33_handed")
    run_ok(tmp_path, "inval33_handed", "--set", "lr=0.5")
    score = assay.load("score", param_set="a", experiment="inval33_handed", project_root=tmp_path)
    assert score == 5.0
