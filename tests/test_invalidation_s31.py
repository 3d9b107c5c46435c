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


CONVERT = """
import functools


@functools.singledispatch
def convert(x):
    return x


@convert.register(int)
def _(x):
    return x * 10


@convert.register(str)
def _(x):
    return x.upper()


def make_scaler(k):
    def scale(x):
        return x * k

    return scale


def chain(k, inner=None):
    def step(x):
        return (inner(x) if inner else x) * k

    return step
"""

SAME_NAMES = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from lib.helpers import chain, convert, make_scaler

DOUBLE = make_scaler(2)
TRIPLE = make_scaler(3)
CHAINED = chain(2, chain(3))


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 1


@assay.stage(outputs=["converted"], cachers=[JsonCacher])
def converted(record):
    return [convert(record.params.x), convert("a")]


@assay.stage(outputs=["scaled"], cachers=[JsonCacher])
def scaled(record):
    x = record.params.x
    return [DOUBLE(x), TRIPLE(x), CHAINED(x)]


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        converted(record)
        scaled(record)
"""


def test_functions_of_one_name_are_each_keyed(tmp_path: Path):
    """The implementations of a singledispatch function, all called `_`, and two closures
    one factory made (`make_scaler(2)`, `make_scaler(3)`, `chain(2, chain(3))`) each
    count: editing the one a later one of the same name hid recomputes the stage."""
    write_project(
        tmp_path,
        {"lib/__init__.py": "", "lib/helpers.py": CONVERT, "experiments/same.py": SAME_NAMES},
    )

    def run_and_load() -> tuple:
        result = run_cli("run", "same", "--no-report", cwd=tmp_path)
        assert result.code == 0, str(result)
        return tuple(
            assay.load(output, param_set="a", experiment="same", project_root=tmp_path)
            for output in ("converted", "scaled")
        )

    assert run_and_load() == ([10, "A"], [2, 3, 6])
    edit(tmp_path / "lib/helpers.py", "return x * 10", "return x * 20")
    edit(tmp_path / "experiments/same.py", "make_scaler(2)", "make_scaler(5)")
    assert run_and_load() == ([20, "A"], [5, 3, 6])
    edit(tmp_path / "lib/helpers.py", "x.upper()", "x.lower()")
    edit(tmp_path / "experiments/same.py", "chain(3)", "chain(4)")
    assert run_and_load() == ([20, "a"], [5, 3, 8])


WHOLESALE = """
import dataclasses
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1


@assay.stage(outputs=["settings"], cachers=[JsonCacher])
def settings(record):
    found = dataclasses.asdict(record.params)
    return {k: v for k, v in found.items() if k in ("lr", "depth", "note")}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        settings(assay.Record(manager, params))
"""


def test_a_field_added_to_a_class_read_wholesale_recomputes_the_stage(tmp_path: Path):
    """A stage that reads its parameters wholesale (`asdict`, `vars`, `Model(**asdict(p))`)
    uses a field added to the class: it recomputes (it was keyed on the fields the class
    had when it first ran, and handed back settings without the new one). A field added
    with the default None changes nothing, as for the parameter set's hash."""
    write_project(tmp_path, {"experiments/whole.py": WHOLESALE})
    path = tmp_path / "experiments/whole.py"

    def run_and_load() -> tuple[str, dict]:
        result = run_cli("run", "whole", "--no-report", cwd=tmp_path)
        assert result.code == 0, str(result)
        found = assay.load("settings", param_set="a", experiment="whole", project_root=tmp_path)
        return result.stdout, found

    assert run_and_load()[1] == {"lr": 0.1}
    edit(path, "    lr: float = 0.1\n", "    lr: float = 0.1\n    depth: int = 3\n")
    why = run_cli("why", "whole", cwd=tmp_path)
    assert "which now has fields depth" in why.stdout, str(why)
    assert run_and_load()[1] == {"lr": 0.1, "depth": 3}
    edit(path, "    depth: int = 3\n", "    depth: int = 3\n    note: object = None\n")
    stdout, found = run_and_load()
    assert "1 cached" in stdout and found == {"lr": 0.1, "depth": 3}


FACTORY = """
def make_model(k):
    class Model:
        def predict(self, x):
            return x * k

    return Model
"""

MADE = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from lib.factory import make_model

Model = make_model(2)


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 1


@assay.stage(outputs=["predicted"], cachers=[JsonCacher])
def predicted(record):
    return Model().predict(record.params.x)


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        predicted(assay.Record(manager, params))
"""


def test_what_the_methods_of_a_class_made_by_a_function_close_over_is_keyed(tmp_path: Path):
    """`Model = make_model(2)` edited to `make_model(3)`: the class's source is the same,
    its method's `k` is not, and the stage using it recomputes (it reused 2's result)."""
    write_project(
        tmp_path,
        {"lib/__init__.py": "", "lib/factory.py": FACTORY, "experiments/made.py": MADE},
    )

    def run_and_load() -> int:
        result = run_cli("run", "made", "--no-report", cwd=tmp_path)
        assert result.code == 0, str(result)
        return assay.load("predicted", param_set="a", experiment="made", project_root=tmp_path)

    assert run_and_load() == 2
    edit(tmp_path / "experiments/made.py", "make_model(2)", "make_model(3)")
    assert run_and_load() == 3
