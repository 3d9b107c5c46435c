"""Tests of assay.params: parameter sets, their hashes, grids and overrides."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pytest

from assay.errors import AssayError, ParameterError
from assay.hashing import hash_value, set_hash_functions
from assay.params import (
    ExperimentParameters,
    Params,
    apply_overrides,
    check_unique_names,
    describe,
    diff_fields,
    grid,
)
from conftest import copy_project, run_cli


class Optimizer(enum.Enum):
    SGD = "sgd"
    ADAM = "adam"


@dataclasses.dataclass
class Model:
    depth: int = 3
    kind: str = "forest"


@dataclasses.dataclass
class Basic(ExperimentParameters):
    seed: int = 42
    n_trees: int = 100
    lr: float = 0.1
    verbose: bool = False
    tag: str = "base"
    data_dir: pathlib.Path = pathlib.Path("data")
    optimizer: Optimizer = Optimizer.SGD
    model: Model = dataclasses.field(default_factory=Model)
    n_jobs: int = dataclasses.field(default=4, metadata={"hash": False})
    weights: list = dataclasses.field(default_factory=list, metadata={"hash": sum})


@dataclasses.dataclass
class Extended(Basic):
    dropout: float = 0.5


@dataclasses.dataclass
class Twin(ExperimentParameters):
    seed: int = 42


@dataclasses.dataclass
class Sibling(ExperimentParameters):
    seed: int = 42


# -- the base class -----------------------------------------------------------------------


def test_defaults_follow_curifactory():
    params = Basic()
    assert params.name == "UNNAMED"
    assert params.hash is None
    assert params.overwrite is False
    assert params.hash_representations == {}
    assert "hash_representations" not in repr(params)
    assert Params is ExperimentParameters


def test_inheritance_adds_fields_and_changes_the_hash():
    child = Extended(seed=1)
    assert child.seed == 1
    assert child.dropout == 0.5
    assert isinstance(child, ExperimentParameters)
    assert child.params_hash() != Basic(seed=1).params_hash()
    assert child.params_hash() != Extended(seed=1, dropout=0.2).params_hash()


def test_classes_with_the_same_fields_hash_differently():
    assert Twin().params_hash() != Sibling().params_hash()


def test_hash_is_a_stable_hex_string_that_follows_values():
    params = Basic()
    first = params.params_hash()
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert Basic().params_hash() == first
    params.seed = 7  # instances are mutable and nothing is memoised
    assert params.params_hash() != first
    assert params.params_hash() == Basic(seed=7).params_hash()


def test_bookkeeping_fields_are_not_hashed():
    reference = Basic().params_hash()
    assert Basic(name="other").params_hash() == reference
    assert Basic(overwrite=True).params_hash() == reference
    assert Basic(hash_representations={"seed": None}).params_hash() != reference


def test_nested_dataclass_values_are_hashed():
    assert Basic(model=Model(depth=4)).params_hash() != Basic().params_hash()
    assert Basic(model=Model(depth=3)).params_hash() == Basic().params_hash()


def test_none_fields_do_not_change_the_hash():
    @dataclasses.dataclass
    class Before(ExperimentParameters):
        seed: int = 1

    @dataclasses.dataclass
    class After(ExperimentParameters):
        seed: int = 1
        new_option: str | None = None

    After.__qualname__ = Before.__qualname__  # the same class after an edit
    assert After().params_hash() == Before().params_hash()
    assert After(new_option="x").params_hash() != Before().params_hash()


def test_field_metadata_excludes_or_represents():
    reference = Basic().params_hash()
    assert Basic(n_jobs=32).params_hash() == reference
    assert Basic(weights=[1, 2]).params_hash() == Basic(weights=[3]).params_hash()
    assert Basic(weights=[1, 2]).params_hash() != Basic(weights=[1, 3]).params_hash()


def test_hash_representations():
    @dataclasses.dataclass
    class WithReps(ExperimentParameters):
        data: list = dataclasses.field(default_factory=list)
        gpus: int = 1
        scale: float | None = None
        hash_representations: dict = set_hash_functions(
            data=lambda self, value: len(value),
            gpus=None,
            scale=lambda self, value: "default" if value is None else value,
        )

    reference = WithReps(data=[1, 2]).params_hash()
    assert WithReps(data=[8, 9]).params_hash() == reference
    assert WithReps(data=[1]).params_hash() != reference
    assert WithReps(data=[1, 2], gpus=8).params_hash() == reference
    assert dict(WithReps(data=[1, 2])._hash_fields()) == {"data": 2, "scale": "default"}


def test_hash_representations_with_a_typo_is_an_error():
    @dataclasses.dataclass
    class Typo(ExperimentParameters):
        n_gpus: int = 1
        hash_representations: dict = set_hash_functions(n_gpu=None)

    with pytest.raises(ParameterError, match="Did you mean 'n_gpus'"):
        Typo().params_hash()


def test_user_hash_overrides_the_computed_one():
    assert Basic(hash="my-hash").params_hash() == "my-hash"
    assert Basic(hash="my-hash").args_hash() == "my-hash"
    assert Basic().args_hash() == Basic().params_hash()


def test_params_hash_dry_shows_what_is_hashed_as_curifactory_does():
    """Curifactory 0.20's ``params_hash(dry=True)`` raised a TypeError here."""
    assert Basic().params_hash(dry=True) == Basic().args_hash(dry=True)
    assert isinstance(Basic().params_hash(dry=True), dict)


def test_hash_fields_are_sorted_and_filtered():
    names = [name for name, _ in Basic()._hash_fields()]
    assert names == sorted(names)
    assert "n_jobs" not in names
    assert not {"name", "hash", "overwrite", "hash_representations"} & set(names)
    assert Basic().args_hash(dry=True)["model"] == Model()


def test_params_hash_equals_hash_value_of_the_set():
    assert Basic().params_hash() == hash_value(Basic())
    # A parameter set nested in another is hashed through its own fields.
    assert hash_value([Basic(name="a")]) == hash_value([Basic(name="b")])


# -- grid ---------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_with_readable_names():
    base = Basic(name="rf")
    sets = grid(base, n_trees=[10, 100], lr=[0.1, 1e-3])
    assert [(p.n_trees, p.lr) for p in sets] == [(10, 0.1), (10, 0.001), (100, 0.1), (100, 0.001)]
    assert [p.name for p in sets] == [
        "rf-n_trees=10-lr=0.1",
        "rf-n_trees=10-lr=0.001",
        "rf-n_trees=100-lr=0.1",
        "rf-n_trees=100-lr=0.001",
    ]
    assert all(type(p) is Basic for p in sets)
    assert len({p.params_hash() for p in sets}) == 4
    assert base.name == "rf"
    assert base.n_trees == 100


def test_grid_formats_names_shortly():
    sets = grid(Basic(name="b"), optimizer=[Optimizer.ADAM], tag=["x y"], verbose=[True])
    assert sets[0].name == "b-optimizer=ADAM-tag=x y-verbose=True"


def test_grid_with_nested_dotted_axes_never_mutates_base():
    base = Basic(name="rf")
    sets = grid(base, **{"model.depth": [1, 2], "model.kind": ["tree"]})
    assert [p.model.depth for p in sets] == [1, 2]
    assert [p.model.kind for p in sets] == ["tree", "tree"]
    assert sets[0].name == "rf-model.depth=1-model.kind=tree"
    assert base.model == Model()
    assert sets[0].model is not sets[1].model


def test_grid_unknown_field_lists_valid_fields_and_suggests():
    with pytest.raises(ParameterError) as info:
        grid(Basic(), n_tres=[1, 2])
    message = str(info.value)
    assert "n_tres" in message
    assert "Did you mean 'n_trees'" in message
    assert "seed, n_trees, lr" in message
    assert isinstance(info.value, AssayError)


def test_grid_reports_every_bad_axis_at_once():
    with pytest.raises(ParameterError) as info:
        grid(Basic(), **{"model.dept": [1], "seed": 5, "lr": []})
    message = str(info.value)
    assert "Did you mean 'depth'" in message
    assert "axis 'seed': expected a list of values" in message
    assert "axis 'lr': the list of values is empty" in message


def test_grid_rejects_reserved_fields():
    with pytest.raises(ParameterError, match="reserved"):
        grid(Basic(), name=["a", "b"])


def test_grid_drops_a_hand_set_hash():
    sets = grid(Basic(hash="pinned"), seed=[1, 2])
    assert [p.hash for p in sets] == [None, None]
    assert sets[0].params_hash() != sets[1].params_hash()


# -- overrides ----------------------------------------------------------------------------


def test_apply_overrides_coerces_to_the_current_type():
    original = Basic(name="a")
    (new,) = apply_overrides(
        [original],
        [
            "seed=7",
            "lr=3",
            "verbose=true",
            "tag=42",
            "data_dir=/tmp/x",
            "optimizer=ADAM",
            "weights=[1, 2]",
            "model.depth=5",
        ],
    )
    assert new.seed == 7
    assert new.lr == 3.0 and isinstance(new.lr, float)
    assert new.verbose is True
    assert new.tag == "42"
    assert new.data_dir == pathlib.Path("/tmp/x")
    assert new.optimizer is Optimizer.ADAM
    assert new.weights == [1, 2]
    assert new.model.depth == 5
    assert original == Basic(name="a")


@dataclasses.dataclass
class Annotated(ExperimentParameters):
    tag: str | None = None
    layers: list[int] | None = None
    threshold: float | None = 0.5
    pair: tuple[int, int] = (1, 2)
    scales: list[float] = dataclasses.field(default_factory=lambda: [1.0])
    model: Model = dataclasses.field(default_factory=Model)


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("tag=2024", "tag", "2024"),  # text, though it looks like a number
        ("tag=None", "tag", None),
        ("layers=[3, 4]", "layers", [3, 4]),
        ("threshold=None", "threshold", None),
        ("threshold=1", "threshold", 1.0),
        ("pair=[3, 4]", "pair", (3, 4)),  # the annotated container, not the literal's
        ("scales=[1, 2.5]", "scales", [1.0, 2.5]),
    ],
)
def test_apply_overrides_follows_the_field_annotation(override, field, expected):
    (new,) = apply_overrides([Annotated(name="a")], [override])
    value = getattr(new, field)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("layers=abc", "expected a list such as [1, 2], got 'abc'"),
        ("layers=['a']", "expected int items, got 'a'"),
        ("pair=[1, 2, 3]", "expected 2 values"),
        ("model=None", "is a Model: set its fields one by one (--set model.NAME=VALUE)"),
        ("threshold=high", "expected a number, got 'high'"),
    ],
)
def test_apply_overrides_refuses_values_the_annotation_rules_out(override, message):
    with pytest.raises(ParameterError) as info:
        apply_overrides([Annotated(name="a")], [override])
    assert message in str(info.value)


@dataclasses.dataclass
class Choices(ExperimentParameters):
    mode: Literal["a", "b"] = "a"
    level: Literal[1, 2, 3] = 1
    flag: Literal[True, False] = False
    mixed: Literal["auto", 0, 2.5, None] = "auto"
    digit: Literal[1, "1"] = 1
    optimizer: Literal[Optimizer.SGD, Optimizer.ADAM] = Optimizer.SGD
    optional: Optional[Literal["x", "y"]] = None  # noqa: UP045
    piped: Literal["x", "y"] | None = "x"
    either: int | Literal["auto"] = "auto"
    modes: list[Literal["a", "b"]] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("mode=b", "mode", "b"),
        ("mode='b'", "mode", "b"),
        ("mode= b ", "mode", "b"),
        ("level=3", "level", 3),  # the number, as Literal[1, 2, 3] says
        ("level=3.0", "level", 3),
        ("flag=true", "flag", True),
        ("flag=True", "flag", True),
        ("flag=0", "flag", False),
        ("mixed=0", "mixed", 0),
        ("mixed=2.5", "mixed", 2.5),
        ("mixed=None", "mixed", None),
        ("mixed=auto", "mixed", "auto"),
        ("digit=1", "digit", 1),
        ("digit='1'", "digit", "1"),
        ("optimizer=ADAM", "optimizer", Optimizer.ADAM),
        ("optional=y", "optional", "y"),
        ("optional=None", "optional", None),
        ("piped=None", "piped", None),
        ("piped=y", "piped", "y"),
        ("either=5", "either", 5),
        ("either=auto", "either", "auto"),
        ("modes=['b', 'a']", "modes", ["b", "a"]),
    ],
)
def test_apply_overrides_converts_to_a_literal_choice(override, field, expected):
    (new,) = apply_overrides([Choices(name="c")], [override])
    value = getattr(new, field)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mode=c", "Choices.mode: expected one of 'a', 'b', got 'c'"),
        ("mode=A", "Choices.mode: expected one of 'a', 'b', got 'A'"),
        ("level=4", "Choices.level: expected one of 1, 2, 3, got '4'"),
        ("level='3'", "Choices.level: expected one of 1, 2, 3, got \"'3'\""),
        ("flag=maybe", "Choices.flag: expected one of True, False, got 'maybe'"),
        ("flag=2", "Choices.flag: expected one of True, False, got '2'"),
        ("mixed=1", "Choices.mixed: expected one of 'auto', 0, 2.5, None, got '1'"),
        ("digit=2", "Choices.digit: expected one of 1, '1', got '2'"),
        ("optimizer=RMS", "Choices.optimizer: expected one of SGD, ADAM, got 'RMS'"),
        ("optional=z", "Choices.optional: expected one of 'x', 'y', None, got 'z'"),
        ("piped=z", "Choices.piped: expected one of 'x', 'y', None, got 'z'"),
        ("either=big", "expected one of 'auto', got 'big'"),
        ("modes=['a', 'c']", "Choices.modes: expected items among 'a', 'b', got 'c'"),
    ],
)
def test_apply_overrides_refuses_a_value_outside_the_literal(override, message):
    with pytest.raises(ParameterError) as info:
        apply_overrides([Choices(name="c")], [override])
    assert f"--set {override}: " in str(info.value)
    assert message in str(info.value)


def test_the_command_line_refuses_a_value_outside_the_literal_before_running(
    tmp_path: Path,
):
    """``--set mode=c`` for ``mode: Literal["a", "b"]`` reached the stage as 'c'."""
    project = copy_project("bad", tmp_path)
    (project / "experiments" / "literal.py").write_text(
        "from __future__ import annotations\n"
        "\n"
        "from dataclasses import dataclass\n"
        "from pathlib import Path\n"
        "from typing import Literal\n"
        "\n"
        "import assay\n"
        "\n"
        "\n"
        "@dataclass\n"
        "class Params(assay.ExperimentParameters):\n"
        '    mode: Literal["a", "b"] = "a"\n'
        "\n"
        "\n"
        "@assay.stage(outputs=['seen'])\n"
        "def look(record):\n"
        "    Path('seen.txt').write_text(repr(record.params.mode))  # in the project\n"
        "    return record.params.mode\n"
        "\n"
        "\n"
        "def get_params():\n"
        "    return [Params(name='only')]\n"
        "\n"
        "\n"
        "def run(param_sets, manager):\n"
        "    for params in param_sets:\n"
        "        look(assay.Record(manager, params))\n"
    )
    result = run_cli("run", "literal", "--set", "mode=c", cwd=project)
    assert result.code not in (0, None), result
    assert "Traceback" not in result.output, result
    assert "--set mode=c: Params.mode: expected one of 'a', 'b', got 'c'" in result.text
    assert not (project / "seen.txt").exists()
    assert not (project / "assay.db").exists()

    result = run_cli("run", "literal", "--set", "mode=b", cwd=project)
    assert result.code == 0, result
    assert (project / "seen.txt").read_text() == "'b'"


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("0", False), ("False", False), ("yes", True)]
)
def test_apply_overrides_booleans(text, expected):
    (new,) = apply_overrides([Basic()], [f"verbose={text}"])
    assert new.verbose is expected


def test_apply_overrides_to_several_sets_of_several_classes():
    sets = apply_overrides([Basic(name="a"), Twin(name="b")], ["seed=5"])
    assert [(type(p), p.name, p.seed) for p in sets] == [(Basic, "a", 5), (Twin, "b", 5)]


def test_apply_overrides_quoted_strings_and_values_with_equals():
    (new,) = apply_overrides([Basic()], ["tag='a=b'"])
    assert new.tag == "a=b"
    (new,) = apply_overrides([Basic()], ["tag=x=y"])
    assert new.tag == "x=y"


def test_apply_overrides_without_equals_sign():
    with pytest.raises(ParameterError, match="FIELD=VALUE"):
        apply_overrides([Basic()], ["seed"])


def test_apply_overrides_unknown_field():
    with pytest.raises(ParameterError) as info:
        apply_overrides([Basic()], ["sede=1"])
    message = str(info.value)
    assert "--set sede=1" in message
    assert "Basic" in message
    assert "Did you mean 'seed'" in message


def test_apply_overrides_unknown_for_one_class_only():
    with pytest.raises(ParameterError, match="Twin has no field 'lr'"):
        apply_overrides([Basic(), Twin()], ["lr=0.5"])


def test_apply_overrides_bad_values_are_reported_together():
    with pytest.raises(ParameterError) as info:
        apply_overrides([Basic()], ["seed=abc", "verbose=maybe", "optimizer=RMS"])
    message = str(info.value)
    assert "Basic.seed: expected an integer" in message
    assert "Basic.verbose: expected a boolean" in message
    assert "expected one of SGD, ADAM" in message


def test_apply_overrides_drops_a_hand_set_hash():
    (new,) = apply_overrides([Basic(hash="pinned")], ["seed=1"])
    assert new.hash is None


@dataclasses.dataclass
class Layer:
    width: int = 8
    act: str = "relu"


@dataclasses.dataclass
class Net(ExperimentParameters):
    layers: list[Layer] = dataclasses.field(default_factory=lambda: [Layer(), Layer(16)])
    sizes: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
    pair: tuple[int, str] = (1, "a")
    seed: int = 0


@pytest.mark.parametrize(
    "override", ["layers.1.width=64", "layers[1].width=64", "layers.-1.width=64"]
)
def test_set_reaches_an_item_of_a_list_of_dataclasses(override):
    """``--set layers.1.width=64`` said 'Params.layers' is a list, not a dataclass."""
    base = Net(name="n")
    (new,) = apply_overrides([base], [override])
    assert [layer.width for layer in new.layers] == [8, 64]
    assert [layer.width for layer in base.layers] == [8, 16]  # the given set is untouched
    assert new.layers[0] is base.layers[0] and new.layers[1] is not base.layers[1]
    assert new.params_hash() != base.params_hash()  # a cache key of its own
    (back,) = apply_overrides([new], ["layers.1.width=16"])
    assert back.params_hash() == base.params_hash()


def test_set_reaches_items_of_lists_and_tuples_by_their_annotation():
    (new,) = apply_overrides([Net()], ["sizes.0=5", "pair.1=b", "pair[0]=2.0"])
    assert new.sizes == [5, 2] and new.pair == (2, "b")
    assert grid(Net(name="g"), **{"layers.0.act": ["tanh"]})[0].layers[0].act == "tanh"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "layers.2.width=1",
            "'Net.layers' has 2 items (0 to 1, or -2 to -1 from the end), so it has no item 2",
        ),
        ("layers.-3.width=1", "so it has no item -3"),
        ("seed.1=3", "'Net.seed' is not a list or tuple (it is int), so it has no item 1"),
        (
            "layers.width=3",
            "'Net.layers' is a list: pick an item by its position first, as in "
            "--set layers.0.width=VALUE (0 to 1)",
        ),  # fmt: skip
        ("layers.1.widht=3", "Net.layers.1 has no field 'widht'. Did you mean 'width'?"),
        ("layers.1=3", "is a Layer: set its fields one by one (--set layers.1.NAME=VALUE)"),
        ("sizes.1=x", "Net.sizes.1: expected an integer, got 'x'"),
        ("0.width=3", "'0' is not a field name: start with a field of Net"),
    ],
)
def test_set_with_an_index_says_what_is_wrong(override, message):
    with pytest.raises(ParameterError) as info:
        apply_overrides([Net()], [override])
    assert f"--set {override}: " in str(info.value)
    assert message in str(info.value)


def test_the_command_line_sets_an_item_of_a_list_and_caches_it_apart(tmp_path: Path):
    project = copy_project("bad", tmp_path)
    (project / "experiments" / "layered.py").write_text(
        "from dataclasses import dataclass, field\n"
        "from pathlib import Path\n"
        "\n"
        "import assay\n"
        "from assay.caching import JsonCacher\n"
        "\n"
        "\n"
        "@dataclass\n"
        "class Layer:\n"
        "    width: int = 8\n"
        "\n"
        "\n"
        "@dataclass\n"
        "class Params(assay.ExperimentParameters):\n"
        "    layers: list[Layer] = field(default_factory=lambda: [Layer(), Layer(16)])\n"
        "\n"
        "\n"
        "@assay.stage(outputs=['widths'], cachers=[JsonCacher])\n"
        "def build(record):\n"
        "    widths = [layer.width for layer in record.params.layers]\n"
        "    with Path('built.txt').open('a') as out:  # in the project\n"
        "        out.write(f'{widths}\\n')\n"
        "    return widths\n"
        "\n"
        "\n"
        "def get_params():\n"
        "    return [Params(name='only')]\n"
        "\n"
        "\n"
        "def run(param_sets, manager):\n"
        "    for params in param_sets:\n"
        "        build(assay.Record(manager, params))\n"
    )
    for given in ([], ["--set", "layers.1.width=64"], ["--set", "layers[1].width=64"], []):
        result = run_cli("run", "layered", "-q", *given, cwd=project)
        assert result.code == 0, result
    assert (project / "built.txt").read_text().splitlines() == ["[8, 16]", "[8, 64]"]
    result = run_cli("run", "layered", "--set", "layers.1.width=1", "--set", "layers[1].width=2",
                     cwd=project)  # fmt: skip
    assert result.code == 2 and "--set gives layers.1.width twice" in result.text, result
    # -1 is item 1 of two: the same field, known once the list's length is
    result = run_cli("run", "layered", "--set", "layers.-1.width=1", "--set", "layers.1.width=2",
                     cwd=project)  # fmt: skip
    assert result.code == 1, result
    assert "--set gives layers.1.width twice (layers.-1.width=1 and layers.1.width=2): " \
        "give it once" in result.text, result  # fmt: skip
    assert (project / "built.txt").read_text().splitlines() == ["[8, 16]", "[8, 64]"]


@pytest.mark.parametrize(
    "first, second",
    [("layers.-1.width", "layers.1.width"), ("layers.-2.act", "layers[0].act"),
     ("sizes.1", "sizes.-1"), ("pair.01", "pair.1"), ("seed", " seed")],
)  # fmt: skip
def test_set_refuses_one_field_given_twice_once_the_list_lengths_are_known(first, second):
    with pytest.raises(ParameterError) as info:
        apply_overrides([Net()], [f"{first}=3", f"{second}=4"])
    assert f"({first}=3 and {second}=4): give it once" in str(info.value)
    assert "--set gives " in str(info.value) and " twice " in str(info.value)


def test_set_takes_minus_one_and_one_of_a_longer_list_as_two_items():
    (new,) = apply_overrides([Net(sizes=[1, 2, 3])], ["sizes.-1=7", "sizes.1=8"])
    assert new.sizes == [1, 8, 7]


# -- diff, describe, names ----------------------------------------------------------------


def test_diff_fields():
    sets = grid(Basic(), **{"n_trees": [1, 2], "model.depth": [1, 2]})
    assert diff_fields(sets) == ["n_trees", "model.depth"]
    assert diff_fields([Basic(name="a"), Basic(name="b")]) == []
    assert diff_fields([Basic()]) == []
    assert diff_fields([Basic(), Basic(n_jobs=2)]) == ["n_jobs"]


def test_diff_fields_across_classes_and_arrays():
    assert diff_fields([Basic(), Extended()]) == ["dropout"]

    @dataclasses.dataclass
    class WithArray(ExperimentParameters):
        weights: np.ndarray | None = None

    a = WithArray(weights=np.zeros(5))
    b = WithArray(weights=np.zeros(5))
    assert diff_fields([a, b]) == []
    b.weights[2] = 1.0
    assert diff_fields([a, b]) == ["weights"]


def test_describe_and_diff_fields_show_a_list_of_dataclasses_item_by_item():
    """They showed `layers` as one field, its repr; --set names each item's fields."""
    shown = describe(Net(name="n"))
    assert shown == {
        "name": "n",
        "layers.0.width": 8,
        "layers.0.act": "relu",
        "layers.1.width": 16,
        "layers.1.act": "relu",
        "sizes": "[1, 2]",  # no dataclasses: one field, as before
        "pair": "(1, 'a')",
        "seed": 0,
    }
    assert describe(Net(layers=[]))["layers"] == "[]"
    sets = [Net(), Net(layers=[Layer(4), Layer(16)]), Net(layers=[Layer(), Layer(16), Layer()])]
    assert diff_fields(sets) == ["layers.0.width", "layers.2.width", "layers.2.act"]
    (changed,) = apply_overrides([Net()], ["layers.1.width=64"])
    assert diff_fields([Net(), changed]) == ["layers.1.width"]


def test_params_shows_the_items_of_a_list_of_dataclasses_as_set_names_them(tmp_path: Path):
    project = tmp_path / "proj"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "net.py").write_text(
        "from dataclasses import dataclass, field\n\nimport assay\n\n\n"
        "@dataclass\nclass Layer:\n    width: int = 8\n\n\n"
        "@dataclass\nclass Params(assay.ExperimentParameters):\n"
        "    layers: list[Layer] = field(default_factory=lambda: [Layer(), Layer(16)])\n\n\n"
        "def get_params():\n"
        "    return [Params(name='a'), Params(name='b', layers=[Layer(), Layer(4)])]\n\n\n"
        "def run(param_sets, manager):\n    pass\n"
    )
    result = run_cli("params", "net", cwd=project)
    assert result.code == 0, result
    assert "Fields that differ: layers.1.width" in result.text, result
    every = run_cli("params", "net", "--all-fields", cwd=project)
    assert every.code == 0, every
    assert "layers.0.width" in every.text and "Layer(width=" not in every.text, every


def test_describe_is_flat_and_json_safe():
    import json

    @dataclasses.dataclass
    class Rich(ExperimentParameters):
        model: Model = dataclasses.field(default_factory=Model)
        weights: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((3, 2)))
        scorer: object = len
        long_text: list = dataclasses.field(default_factory=lambda: list(range(500)))
        missing: float = float("nan")

    shown = describe(Rich(name="r"))
    assert list(shown)[0] == "name"
    assert shown["name"] == "r"
    assert shown["model.depth"] == 3
    assert shown["model.kind"] == "forest"
    assert (
        shown["weights"]
        == f"ndarray(shape=(3, 2), dtype=float64, #{hash_value(np.zeros((3, 2)))[:8]})"
    )
    assert shown["scorer"] == "<function builtins.len>"
    assert len(shown["long_text"]) == 200
    assert shown["missing"] == "nan"
    assert "hash" not in shown and "hash_representations" not in shown
    json.dumps(shown)


def test_check_unique_names():
    check_unique_names([Basic(name="a"), Basic(name="b")])
    with pytest.raises(ParameterError) as info:
        check_unique_names([Basic(name="a"), Basic(name="b"), Basic(name="a")])
    message = str(info.value)
    assert "'a' at positions 0, 2" in message
    assert "'b'" not in message


# -- generated names of long values; overrides of container elements -------------------------


def test_grid_names_of_long_values_cut_alike_stay_distinct():
    """Two 48-character paths differing after character 37 got one name: the run was
    refused for duplicate names."""
    first = "/data/projects/lab/experiments/2024/run_A/x1.csv"
    second = first.replace("x1", "y1")
    assert len(first) == 48 and first[:37] == second[:37]

    sets = grid(Basic(name="g"), tag=[first, second, "short"])

    names = [p.name for p in sets]
    assert len(set(names)) == 3, names
    check_unique_names(sets)
    assert names[2] == "g-tag=short"  # a name that is not cut is as before
    for name in names[:2]:
        label = name.removeprefix("g-tag=")
        assert len(label) <= 40 and label.startswith(first[:25]) and "..." in label
    again = grid(Basic(name="g"), tag=[first])[0].name
    assert again == names[0]  # the same value, the same name (a hash, not a counter)


@dataclasses.dataclass
class Containers(ExperimentParameters):
    paths: list[Path] = dataclasses.field(default_factory=list)
    lr: float = 0.1
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    nested: list[list[int]] = dataclasses.field(default_factory=list)
    bounds: list[float] | None = None


def test_set_converts_path_elements_as_a_path_field_is_converted():
    """--set "paths=['a.csv','b.csv']" failed: expected Path items, got 'a.csv'."""
    (new,) = apply_overrides([Containers()], ["paths=['a.csv', 'b.csv']"])
    assert new.paths == [Path("a.csv"), Path("b.csv")]
    assert all(isinstance(p, Path) for p in new.paths)
    with pytest.raises(ParameterError, match="expected Path items, got 1"):
        apply_overrides([Containers()], ["paths=[1]"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("inf", float("inf")), ("-inf", float("-inf")), ("+Infinity", float("inf"))],
)
def test_set_accepts_infinite_floats(text, expected):
    (new,) = apply_overrides([Containers()], [f"lr={text}"])
    assert new.lr == expected


def test_set_accepts_nan_and_non_finite_elements():
    (new,) = apply_overrides([Containers()], ["lr=nan", "bounds=[-inf, 1, nan]"])
    assert new.lr != new.lr  # nan
    assert new.bounds[:2] == [float("-inf"), 1.0] and new.bounds[2] != new.bounds[2]
    with pytest.raises(ParameterError, match="expected a number, got 'high'"):
        apply_overrides([Containers()], ["lr=high"])


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("counts={'a': 'x'}", "expected int items, got 'x'"),
        ("counts={1: 2}", "expected str items, got 1"),
        ("nested=[['x']]", "expected int items, got 'x'"),
        ("nested=[1]", "expected list[int] items, got 1"),
    ],
)
def test_set_checks_the_elements_of_dicts_and_nested_containers(override, problem):
    """dict[str, int] took {'a': 'x'} and list[list[int]] took [['x']]."""
    with pytest.raises(ParameterError) as info:
        apply_overrides([Containers()], [override])
    assert problem in str(info.value)


def test_set_fills_dicts_and_nested_containers_of_the_right_types():
    (new,) = apply_overrides([Containers()], ["counts={'a': 1}", "nested=[[1, 2], [3]]"])
    assert new.counts == {"a": 1} and new.nested == [[1, 2], [3]]


GRID_NAMES = """
import functools
from dataclasses import dataclass, field

import numpy as np

import assay


def scale(x, k):
    return x * k


@dataclass
class P(assay.ExperimentParameters):
    tags: frozenset = frozenset()
    chosen: set = field(default_factory=set)
    fn: object = None
    f: float = 0.0


sets = assay.grid(P(name="g"), tags=[frozenset({"beta", "gamma", "alpha"})],
                  chosen=[{"x", "y", "z", "w"}], fn=[functools.partial(scale, k=2),
                  lambda x: x + 1, lambda x: x + 2], f=[np.float64(0.5)])
print("\\n".join(p.name for p in sets))
"""


def test_grid_names_are_the_same_in_every_process():
    """Sets were named in their own order, which changes with string hashing, and a
    partial by its memory address: ``-n NAME`` from one process failed in the next.
    Two lambdas got one name (a duplicate), a numpy float ``np.float64(0.5)``."""
    names = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-c", GRID_NAMES], capture_output=True,
                              text=True, env={**os.environ, "PYTHONHASHSEED": seed},
                              timeout=60, check=True)  # fmt: skip
        names.add(done.stdout)
    (listed,) = names
    lines = listed.splitlines()
    assert len(set(lines)) == 3, lines
    assert lines[0].startswith(
        "g-tags=frozenset({'alpha', 'beta', 'gamma'})-chosen={'w', 'x', 'y', 'z'}-fn=scale(k=2)"
    ), lines
    assert lines[0].endswith("-f=0.5"), lines


@dataclasses.dataclass
class Typed(ExperimentParameters):
    when: datetime.datetime = datetime.datetime(2024, 1, 1)
    maybe: Optional[datetime.date] = None  # noqa: UP045 (read on Python 3.10 too)
    fn: Callable = len
    arr: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))
    npf: float = np.float64(0.5)


def test_set_refuses_a_field_it_cannot_write_rather_than_change_its_type():
    """``--set when=2024-02-01`` gave a datetime field the text, ``--set fn=other`` a
    function field the name, ``--set arr=[1,2]`` an array field a list: the stage then
    ran on a value of another type. A numpy float became a Python float (another hash)."""
    base = Typed(name="t")
    for override, kind in [("when=2024-02-01", "datetime.datetime"),
                           ("maybe=2024-02-01", "datetime.date"),
                           ("fn=other_helper", "builtins.builtin_function_or_method"),
                           ("arr=[1, 2]", "numpy.ndarray")]:  # fmt: skip
        with pytest.raises(ParameterError, match=f"holds a {kind}, which --set cannot make"):
            apply_overrides([base], [override])
    (changed,) = apply_overrides([base], ["npf=0.25"])
    assert type(changed.npf) is np.float64 and changed.npf == 0.25


def test_describe_shows_what_differs_and_only_that():
    """`assay compare` listed equal sets (in another order) and partials (at another
    address) as differences, and missed arrays and frames whose values differed."""
    import functools

    import pandas as pd

    @dataclasses.dataclass
    class Shown(ExperimentParameters):
        tags: set = dataclasses.field(default_factory=set)
        fn: object = None
        arr: object = None
        df: object = None

    def make(order, value):
        return describe(Shown(name="s", tags=set(order), fn=functools.partial(max, key=len),
                              arr=np.full(3, value), df=pd.DataFrame({"a": [value]})))  # fmt: skip

    one, other_order, other_values = make("abc", 1), make("cba", 1), make("abc", 2)
    assert one == other_order
    assert "0x" not in one["fn"] and one["fn"] == "partial builtins.max(key=len)"
    assert {k for k in one if one[k] != other_values[k]} == {"arr", "df"}


def test_the_change_check_is_installed_only_while_a_set_is_frozen():
    """Setting a field costs one plain assignment outside run()'s planning: the check
    that refuses changes of a frozen set is on the class only while one is frozen."""
    from assay.params import freeze, thaw_all

    @dataclasses.dataclass
    class Seeded(ExperimentParameters):
        seed: int = 1

        def __setattr__(self, name, value):  # a set with its own hook is still checked
            super().__setattr__(name, value)

    frozen, other = Seeded(name="frozen"), Seeded(name="other")
    assert "__setattr__" not in ExperimentParameters.__dict__
    freeze(frozen)
    try:
        with pytest.raises(ParameterError, match="'frozen' cannot change now"):
            frozen.seed = 2
        other.seed = 3  # another set, or a copy, may change
        assert dataclasses.replace(frozen, seed=4).seed == 4
    finally:
        thaw_all()
    assert "__setattr__" not in ExperimentParameters.__dict__
    frozen.seed = 5
    assert (frozen.seed, other.seed) == (5, 3)
