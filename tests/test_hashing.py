"""Tests of assay.hashing: stability, collision resistance and coverage of value types."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import fractions
import functools
import importlib.util
import os
import pathlib
import subprocess
import sys
import uuid
from collections import OrderedDict, namedtuple
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import xxhash

from assay.hashing import Hasher, args_hash, file_checksum, hash_value, set_hash_functions
from assay.params import ExperimentParameters


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass
class PinnedData:
    x: int = 1
    y: str = "two"


@dataclasses.dataclass
class PinnedParams(ExperimentParameters):
    seed: int = 3
    lr: float = 0.5
    layers: tuple = (64, 32)


@dataclasses.dataclass
class Inner:
    a: int = 0


@dataclasses.dataclass
class Outer:
    a: int = 0
    inner: Inner = dataclasses.field(default_factory=Inner)


@dataclasses.dataclass
class SameFieldsA:
    x: int = 1


@dataclasses.dataclass
class SameFieldsB:
    x: int = 1


# -- the compatibility contract -----------------------------------------------------------


def test_hashes_stay_the_same():
    """A changed hash silently invalidates every user's cache: these must never change."""
    pinned = [
        (0, "fcc8964da82d40efa256da87035deeb0"),
        (-1, "1329c9a3631456782d9155c2d240d589"),
        (2**100, "09ae5312e669a389c5eeb45ecc0632d4"),
        (3.14, "c407517078858b3550822253e6e785d3"),
        ("hello", "a0d8e45b9c507a2d2093b906df2a4bdc"),
        (b"bytes", "b8b2b0b57f3a4607c2114775bc97012f"),
        (None, "1db48096476cb0f44e17bae58fcc2731"),
        (True, "b7a190dee2b5f93ea1d376afef5447dd"),
        ((1, "a", None), "1de1035baf08b21997488cff51bc975b"),
        ({"b": [1, 2, {"c": 3.5}], "a": (4,)}, "1c697b902dbb66613fcd4ecdbdc5f87a"),
        ({"x", "y", "z"}, "61b5527ab88e55f2a987483d20adfbdc"),
        # with its value since 2026-12, and its class's module since 2026-12-07:
        (Color.RED, "14be261901fc8c0d0f90c09897ba4501"),
        (pathlib.PurePosixPath("data/raw.csv"), "fddb7b2646ccd1d82b28f461a18ee6d6"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "6bf62708c03acc2073b60aad3a1338a1"),
        (Decimal("1.10"), "e5aeaeaa87cfe58cfc9daae8e698cb5a"),
        (dt.date(2024, 1, 2), "bf4d822951c3a0bf6697811c86b431e8"),
        (dt.time(3, 4, 5), "62169bb8306065799b493cf5924244eb"),
        (dt.timedelta(days=1, seconds=2, microseconds=3), "f6fff736c98461a3fe52f97416dedbd5"),
        (fractions.Fraction(3, 7), "efb4ec20e518d7abb6e85d99f618144f"),
        (uuid.UUID(int=12345), "114ec2fd03ee149f3f36356fb119a83a"),
        (range(1, 10, 2), "a6064779dbb5099666534707e0a71035"),
        (slice(1, None, 2), "cd973190392192071e6db9a95db91ce2"),
        (np.arange(6, dtype=np.int64).reshape(2, 3), "cd7aacf36e17bd48585b72ccde5b5515"),
        (np.float32(1.5), "734d90b2759fcd7010796cecccbcf2f4"),
        # text columns hashed as pandas 2's object columns since 2026-12-06:
        (pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}), "6337cbe4e5748875bc735ae74c74c2d8"),
        (PinnedData(), "b90c5f4489ae83abfb11e344d108d7c5"),  # with its module since 2026-12-07
        (PinnedParams(name="ignored"), "f1d1ac9b39bc11ed067d6b0ceed150fc"),
    ]
    assert [hash_value(value) for value, _ in pinned] == [expected for _, expected in pinned]


# -- stability ----------------------------------------------------------------------------

_SEED_SCRIPT = """
from assay.hashing import hash_value
words = [f"word{i}" for i in range(50)]
value = {"alpha": set(words), "beta": frozenset(words[:7]), **{w: i for i, w in enumerate(words)}}
print(hash_value(value))
"""


def test_stable_across_processes_and_hash_seeds():
    outputs = set()
    for seed in ("0", "1", "123"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", _SEED_SCRIPT], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        outputs.add(run.stdout.strip())
    words = [f"word{i}" for i in range(50)]
    here = hash_value(
        {"alpha": set(words), "beta": frozenset(words[:7]), **{w: i for i, w in enumerate(words)}}
    )
    assert outputs == {here}


def test_importing_does_not_import_numpy_or_pandas():
    code = (
        "import sys, assay.hashing, assay.params\n"
        "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_equal_values_give_equal_hashes():
    assert hash_value({"a": [1, 2], "b": {"c"}}) == hash_value({"a": [1, 2], "b": {"c"}})
    assert hash_value(PinnedData(x=5)) == hash_value(PinnedData(x=5))
    assert hash_value(float("nan")) == hash_value(-float("nan"))
    assert hash_value(Hasher) == hash_value(Hasher)


def test_hash_value_is_hasher_of_one_value():
    assert hash_value([1, 2]) == Hasher().update([1, 2]).hexdigest()
    two = Hasher().update(1).update(2).hexdigest()
    assert len(two) == 32
    assert two != Hasher().update(2).update(1).hexdigest()


# -- the collisions of SPEC section 2 -----------------------------------------------------


def test_dict_and_set_order_do_not_matter():
    assert hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})
    assert hash_value({1: "int", "1": "str", (1,): "tuple"}) == hash_value(
        {(1,): "tuple", "1": "str", 1: "int"}
    )
    assert hash_value({3, 1, 2}) == hash_value({2, 3, 1})
    assert hash_value({"a": 1, "b": 2}) != hash_value({"a": 2, "b": 1})


def test_dict_order_counts_when_asked_and_nothing_else_changes():
    """Cache keys hash dicts in order (code iterating one sees it); equal dicts still hash
    alike by default, as parameter-set hashes must (SPEC section 3)."""
    steps, reordered = {"add": 1, "mul": 3}, {"mul": 3, "add": 1}
    assert hash_value(steps, dict_order=True) != hash_value(reordered, dict_order=True)
    assert hash_value([{"n": {"a": 1, "b": 2}}], dict_order=True) != hash_value(
        [{"n": {"b": 2, "a": 1}}], dict_order=True
    )
    assert hash_value(steps, dict_order=True) == hash_value(dict(steps), dict_order=True)
    # Sets, keyword arguments and an object's attributes have no order that matters.
    assert hash_value({3, 1, 2}, dict_order=True) == hash_value({2, 3, 1}, dict_order=True)
    assert hash_value(functools.partial(max, a=1, b=2), dict_order=True) == hash_value(
        functools.partial(max, b=2, a=1), dict_order=True
    )
    first, second = PlainState(), PlainState()
    first.x, first.y = 1, 2
    second.y, second.x = 2, 1
    assert hash_value(first, dict_order=True) == hash_value(second, dict_order=True)
    # Values without a dict of two items or more hash as without dict_order.
    for value in (0, "hello", (1, "a", None), {"k": [1, {"j": 2}]}, PinnedData(), Color.RED):
        assert hash_value(value, dict_order=True) == hash_value(value)
    assert Hasher(dict_order=True).update(steps).hexdigest() == hash_value(steps, dict_order=True)


class PlainState:
    pass


HELD_FUNCTION = """
def scale(x, k):
    return x * k


class Scaler:
    def apply(self, x):
        return x * 2


LAMBDA = lambda x: x*2
"""


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        pytest.param("def scale(x, k):\n", 'def scale(x, k):\n    """Scale."""\n', True,
                     id="docstring"),
        pytest.param("return x * k\n", "return x * k  # scale\n", True, id="comment"),
        pytest.param("return x * k\n", "return (x *\n            k)\n", True, id="layout"),
        pytest.param("x*2\n", "x * 2\n", True, id="lambda-layout"),
        pytest.param("class Scaler:\n", 'class Scaler:\n    """Scales."""\n', True,
                     id="class-docstring"),
        pytest.param("return x * k\n", "return x * k + 1\n", False, id="code"),
        pytest.param("return x * 2\n", "return x * 3\n", False, id="method-code"),
        pytest.param("x*2\n", "x*3\n", False, id="lambda-code"),
    ],
)  # fmt: skip
def test_functions_and_classes_hash_by_their_code_not_its_layout(
    tmp_path, monkeypatch, old: str, new: str, same: bool
):
    """As stage code is compared: a docstring, a comment or a re-wrapped line in a function
    held in a value (a partial, a dict of functions, a field) changes nothing."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / "held_functions.py"

    def hashes(text: str) -> str:
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("held_functions", path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "held_functions", module)
        spec.loader.exec_module(module)
        values = (functools.partial(module.scale, k=3), module.Scaler, {"f": module.LAMBDA})
        return [hash_value(value) for value in values]

    before = hashes(HELD_FUNCTION)
    assert (before == hashes(HELD_FUNCTION.replace(old, new))) is same


def test_type_tags_keep_lookalikes_apart():
    values = [
        1,
        1.0,
        "1",
        True,
        (1,),
        [1],
        {1},
        frozenset({1}),
        {1: None},
        b"1",
        bytearray(b"1"),
        None,
        np.int64(1),
        np.array([1]),
        Decimal(1),
        fractions.Fraction(1),
        range(1),
        Color.RED,
    ]
    assert len({hash_value(v) for v in values}) == len(values)


def test_lengths_are_part_of_the_hash():
    assert hash_value(("ab", "c")) != hash_value(("a", "bc"))
    assert hash_value([["a"], "b"]) != hash_value(["a", ["b"]])
    assert hash_value([[], [1]]) != hash_value([[1], []])
    assert hash_value(b"ab" + b"c") != hash_value((b"a", b"bc"))


def test_values_swapped_between_levels_differ():
    assert hash_value(Outer(a=1, inner=Inner(a=2))) != hash_value(Outer(a=2, inner=Inner(a=1)))
    assert hash_value({"a": 1, "n": {"a": 2}}) != hash_value({"a": 2, "n": {"a": 1}})


def test_two_classes_with_the_same_fields_differ():
    assert hash_value(SameFieldsA()) != hash_value(SameFieldsB())


def test_large_arrays_differing_in_one_middle_element_differ():
    a = np.zeros(10**6)
    b = a.copy()
    b[len(b) // 2] = 1.0
    assert repr(a) == repr(b)  # what a repr-based hash would have seen
    assert hash_value(a) != hash_value(b)


def test_lambdas_differ():
    pair = (lambda x: x + 1, lambda x: x - 1)
    first = lambda x: x * 2  # noqa: E731
    second = lambda x: x * 3  # noqa: E731
    hashes = {hash_value(f) for f in (*pair, first, second)}
    assert len(hashes) == 4
    assert hash_value(pair[0]) == hash_value(pair[0])


def test_closures_and_defaults_are_hashed():
    def make(k):
        return lambda x: x * k

    def scale(x, factor=2):
        return x * factor

    assert hash_value(make(2)) == hash_value(make(2))
    assert hash_value(make(2)) != hash_value(make(3))
    assert hash_value(functools.partial(scale, factor=2)) != hash_value(
        functools.partial(scale, factor=3)
    )


# -- coverage of value types --------------------------------------------------------------


def test_big_integers_and_floats():
    assert hash_value(2**200) != hash_value(2**200 + 1)
    assert hash_value(-(2**64)) != hash_value(2**64)
    assert hash_value(0.1 + 0.2) != hash_value(0.3)
    assert hash_value(1 + 2j) != hash_value(2 + 1j)


def test_standard_library_values():
    pairs = [
        (pathlib.PurePosixPath("a/b"), pathlib.PurePosixPath("a/c")),
        (dt.date(2024, 1, 1), dt.date(2024, 1, 2)),
        (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 1)),
        (dt.time(1, 2), dt.time(1, 3)),
        (dt.timedelta(days=1), dt.timedelta(days=2)),
        (Decimal("1.5"), Decimal("1.6")),
        (uuid.UUID(int=1), uuid.UUID(int=2)),
        (range(3), range(4)),
        (slice(1, 2), slice(1, 3)),
        (Color.RED, Color.BLUE),
    ]
    for a, b in pairs:
        assert hash_value(a) != hash_value(b), (a, b)
    assert hash_value(pathlib.Path("a/b")) == hash_value(pathlib.PurePosixPath("a/b"))


def test_an_enum_member_counts_by_its_value_too():
    """``ADAM = 0.001`` edited to ``ADAM = 0.5``: the same class and member name, a new value."""
    before = enum.Enum("Optimizer", {"ADAM": 0.001, "SGD": 0.1})
    after = enum.Enum("Optimizer", {"ADAM": 0.5, "SGD": 0.1})

    assert hash_value(before.ADAM) != hash_value(after.ADAM)
    assert hash_value(before.SGD) == hash_value(after.SGD)
    assert hash_value(before.ADAM) != hash_value(before.SGD)


def test_subclasses_of_builtins_carry_their_class():
    Point = namedtuple("Point", "x y")
    assert hash_value(Point(1, 2)) != hash_value((1, 2))
    assert hash_value(OrderedDict(a=1)) != hash_value({"a": 1})
    assert hash_value(Point(1, 2)) == hash_value(Point(1, 2))


def test_classes_and_callables_by_name():
    assert hash_value(len) != hash_value(sum)
    assert hash_value(str.upper) != hash_value(str.lower)
    assert hash_value("a".upper) != hash_value("b".upper)
    assert hash_value(SameFieldsA) != hash_value(SameFieldsB)
    assert hash_value(np.add) != hash_value(np.multiply)
    assert hash_value(np.float32) != hash_value(np.float64)
    assert hash_value(np.mean) != hash_value(np.median)
    assert hash_value(os) != hash_value(sys)


def test_nested_function_that_calls_itself():
    def countdown(n):
        return n if n <= 0 else countdown(n - 1)

    assert hash_value(countdown) == hash_value(countdown)


def test_dataclass_honours_field_metadata():
    @dataclasses.dataclass
    class Config:
        a: int = 1
        workers: int = dataclasses.field(default=4, metadata={"hash": False})
        data: list = dataclasses.field(default_factory=list, metadata={"hash": len})

    base = hash_value(Config())
    assert hash_value(Config(workers=16)) == base
    assert hash_value(Config(data=[5])) == hash_value(Config(data=[7]))
    assert hash_value(Config(data=[5])) != base
    assert hash_value(Config(a=2)) != base


def test_adding_a_none_default_field_keeps_the_hash():
    @dataclasses.dataclass
    class Version1:
        a: int = 1

    @dataclasses.dataclass
    class Version2:
        a: int = 1
        b: int | None = None

    Version2.__qualname__ = Version1.__qualname__  # the same class, edited
    assert hash_value(Version2()) == hash_value(Version1())
    assert hash_value(Version2(b=2)) != hash_value(Version1())


def test_assay_hash_method_is_used():
    class Tokenizer:
        def __init__(self, vocab, cache):
            self.vocab = vocab
            self.cache = cache

        def __assay_hash__(self):
            return self.vocab

    assert hash_value(Tokenizer("v1", cache=1)) == hash_value(Tokenizer("v1", cache=2))
    assert hash_value(Tokenizer("v1", cache=1)) != hash_value(Tokenizer("v2", cache=1))


def test_plain_objects_are_hashed_by_state():
    class Scaler:
        def __init__(self, with_mean):
            self.with_mean = with_mean

    assert hash_value(Scaler(True)) == hash_value(Scaler(True))
    assert hash_value(Scaler(True)) != hash_value(Scaler(False))


def test_unhashable_object_gives_a_helpful_error():
    class Handle:
        __slots__ = ("fd",)

    with pytest.raises(TypeError) as info:
        hash_value({"model": [1, Handle()]})
    message = str(info.value)
    assert "Handle" in message
    assert "value['model'][1]" in message
    assert "hash_representations" in message


def test_self_referencing_container_raises():
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        hash_value({"x": loop})
    shared = [1, 2]
    assert hash_value([shared, shared]) == hash_value([[1, 2], [1, 2]])


# -- numpy and pandas ---------------------------------------------------------------------


def test_numpy_arrays_by_dtype_shape_and_content():
    a = np.arange(6, dtype=np.int64)
    assert hash_value(a) != hash_value(a.astype(np.int32))
    assert hash_value(a.reshape(2, 3)) != hash_value(a.reshape(3, 2))
    assert hash_value(a.reshape(2, 3)) != hash_value(a)
    matrix = np.arange(12.0).reshape(3, 4)
    assert hash_value(matrix[:, ::2]) == hash_value(matrix[:, ::2].copy())
    assert hash_value(np.asfortranarray(matrix)) == hash_value(matrix)
    assert hash_value(a.astype(">i8")) == hash_value(a)
    assert hash_value(np.array(["2024-01-01"], dtype="M8[D]")) != hash_value(
        np.array(["2024-01-02"], dtype="M8[D]")
    )
    assert hash_value(np.array([1, "a"], dtype=object)) != hash_value(
        np.array(["1", "a"], dtype=object)
    )
    masked = np.ma.masked_array([1, 2], mask=[False, True])
    assert hash_value(masked) != hash_value(np.ma.masked_array([1, 2], mask=[True, False]))


def test_numpy_scalars_and_dtypes():
    assert hash_value(np.float32(1.5)) != hash_value(np.float64(1.5))
    assert hash_value(np.float64(1.5)) != hash_value(1.5)
    assert hash_value(np.dtype("f4")) != hash_value(np.dtype("f8"))


def test_hundred_megabyte_array():
    big = np.ones(100 * 2**20 // 8)
    before = hash_value(big)
    big[-1] = 2.0
    assert len(before) == 32
    assert hash_value(big) != before


def test_pandas_objects():
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, None, 1.5]})
    assert hash_value(frame) == hash_value(frame.copy())
    changed = frame.copy()
    changed.loc[1, "b"] = "w"
    assert hash_value(changed) != hash_value(frame)
    assert hash_value(frame.rename(columns={"a": "A"})) != hash_value(frame)
    assert hash_value(frame.set_index(pd.Index([7, 8, 9]))) != hash_value(frame)
    assert hash_value(frame.astype({"a": "int32"})) != hash_value(frame)
    assert hash_value(frame["a"]) != hash_value(frame["a"].rename("z"))
    assert hash_value(frame.index) != hash_value(pd.Index([0, 1, 2]))
    mixed = pd.Series([1, "1", None], dtype=object)
    assert hash_value(mixed) != hash_value(pd.Series(["1", "1", None], dtype=object))
    multi = pd.MultiIndex.from_arrays([[1, 2], ["a", "b"]])
    assert hash_value(multi) != hash_value(pd.MultiIndex.from_arrays([[1, 2], ["b", "a"]]))
    category = pd.Series(["a", "b"], dtype="category")
    assert hash_value(category) != hash_value(pd.Series(["b", "a"], dtype="category"))
    assert hash_value(category) == hash_value(pd.Series(["a", "b"], dtype="category"))
    more = pd.CategoricalDtype(["a", "b", "c"])  # the same values, another set of categories
    assert hash_value(category) != hash_value(category.astype(more))
    ordered = pd.CategoricalDtype(["a", "b"], ordered=True)
    assert hash_value(category) != hash_value(category.astype(ordered))
    reordered = pd.CategoricalDtype(["b", "a"], ordered=True)  # "b" < "a" now
    assert hash_value(category.astype(ordered)) != hash_value(category.astype(reordered))
    assert hash_value(pd.DataFrame({"c": category})) != hash_value(
        pd.DataFrame({"c": category.astype(more)})
    )


def test_text_hashes_the_same_under_pandas_2_and_3():
    """pandas 3 stores text as dtype ``str`` where pandas 2 used ``object``, and calls text
    with missing values "string" where pandas 2 said "mixed": a parameter set holding such
    a frame got a new key, and every stage recomputed, when pandas was upgraded."""
    as_objects = pd.DataFrame(
        {"t": pd.Series(["x", "y"], dtype=object), "m": pd.Series(["x", np.nan], dtype=object)}
    )
    as_objects.columns = pd.Index(["t", "m"], dtype=object)
    assert hash_value(as_objects) == "3983bf1e8cbb9bfaa4088eec4a419dbf"  # pandas 2 gives it too
    text = pd.StringDtype(na_value=np.nan)  # pandas 3's default "str"
    as_text = as_objects.astype(text)
    as_text.columns = as_text.columns.astype(text)
    assert str(as_text["m"].dtype) == "str" and as_text["m"].isna().tolist() == [False, True]
    assert hash_value(as_text) == hash_value(as_objects)
    assert hash_value(as_text["t"]) == hash_value(as_objects["t"])
    assert hash_value(pd.Index(["x"], dtype=text)) == hash_value(pd.Index(["x"], dtype=object))
    # Missing is missing, whichever way it was written (and text with gaps hashes fast).
    assert hash_value(pd.Series(["x", None], dtype=object, name="m")) == hash_value(as_objects["m"])
    levels = pd.MultiIndex.from_arrays([pd.Index(["a", "b"], dtype=object), [1, 2]])
    as_text_levels = pd.MultiIndex.from_arrays([pd.Index(["a", "b"], dtype=text), [1, 2]])
    assert hash_value(as_text_levels) == hash_value(levels)


def test_large_frame():
    frame = pd.DataFrame(np.zeros((200_000, 10)), columns=[f"c{i}" for i in range(10)])
    before = hash_value(frame)
    frame.iloc[100_000, 5] = 1.0
    assert hash_value(frame) != before


# -- helpers ------------------------------------------------------------------------------


def test_file_checksum(tmp_path):
    data = bytes(range(256)) * 100
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_checksum(path, chunk=7) == xxhash.xxh3_128(data).hexdigest()
    assert file_checksum(str(path)) == xxhash.xxh3_128(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_checksum(empty) == xxhash.xxh3_128(b"").hexdigest()


def test_set_hash_functions():
    def by_length(params, value):
        return len(value)

    declared = set_hash_functions({"a": by_length}, b=None)
    assert declared.default_factory() == {"a": by_length, "b": None}
    assert declared.default_factory() is not declared.default_factory()
    assert declared.repr is False
    assert set_hash_functions(c=None).default_factory() == {"c": None}
    with pytest.raises(ValueError, match="dict"):
        set_hash_functions(["a"])


def test_args_hash_matches_params_hash():
    params = PinnedParams(seed=9)
    assert args_hash(params) == params.params_hash() == hash_value(params)
    assert args_hash(params, dry=True) == {"layers": (64, 32), "lr": 0.5, "seed": 9}


def test_values_a_stage_would_tell_apart_hash_apart():
    """Each pair hashed alike, so a stage that sees the difference reused the other
    value's result: a zone against a fixed offset (they part at summer time), pandas'
    nanoseconds, and a text column against a bytes column."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    new_york = dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("America/New_York"))
    fixed = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert new_york.isoformat() == fixed.isoformat()
    assert hash_value(new_york) != hash_value(fixed)
    assert hash_value(pd.Timedelta(500, "ns")) != hash_value(pd.Timedelta(100, "ns"))
    assert hash_value(pd.Series([b"a", b"b"])) != hash_value(pd.Series(["a", "b"]))
    # What hashed alike before still does (no recomputation for naive times, whole
    # microseconds, text columns).
    assert hash_value(pd.Timedelta(5, "us")) == hash_value(dt.timedelta(microseconds=5))
    assert hash_value(dt.datetime(2024, 1, 1)) == hash_value(dt.datetime(2024, 1, 1))
