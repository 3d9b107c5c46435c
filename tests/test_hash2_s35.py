"""Values that hashed alike though they differ, and advice about a value passed to a stage
that cannot be hashed (session 35). Two parameter sets (or two stage arguments) that hash
alike share one cached result: the second is handed the first's."""

from __future__ import annotations

import collections
import datetime as dt
import importlib
import multiprocessing
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import assay
from assay.errors import ParameterError
from assay.hashing import hash_value
from conftest import one_experiment_project, run_cli


@dataclass
class _Hash2Params(assay.ExperimentParameters):
    value: Any = None


def test_exceptions_hash_by_their_message_and_arguments():
    """An exception keeps its message in ``args``, out of its ``__dict__``: hashed by its
    attributes, every ``ValueError`` was one value whatever it said."""
    assert hash_value(ValueError("a")) != hash_value(ValueError("b"))
    assert hash_value(KeyError("lr")) != hash_value(KeyError("seed"))
    assert hash_value(ValueError("a")) == hash_value(ValueError("a"))
    assert hash_value(ValueError("a")) != hash_value(TypeError("a"))
    # OSError keeps its file name outside `args`; it is rebuilt (pickled) with it.
    assert hash_value(OSError(2, "missing", "a.csv")) != hash_value(OSError(2, "missing", "b.csv"))
    noted = ValueError("a")
    noted.__notes__ = ["while loading"]  # what `add_note` (Python 3.11+) sets
    assert hash_value(noted) != hash_value(ValueError("a"))
    first = _Hash2Params(name="first", value=ValueError("too small"))
    second = _Hash2Params(name="second", value=ValueError("too large"))
    assert first.params_hash() != second.params_hash()


def _static_and_class_methods(folder: Path, body: str) -> tuple[Any, Any]:
    """A static and a class method of ``Loader`` in a module ``hash2_loader`` at
    ``folder``, wrapping ``def read(...): return BODY`` (the same names each time)."""
    folder.mkdir()
    (folder / "hash2_loader.py").write_text(
        textwrap.dedent(
            f"""
            def read(*args):
                return {body}


            class Loader:
                read_static = staticmethod(read)
                read_class = classmethod(read)
            """
        )
    )
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("hash2_loader")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("hash2_loader", None)
    attributes = module.Loader.__dict__
    return attributes["read_static"], attributes["read_class"]


def test_static_and_class_methods_hash_by_the_function_they_wrap(tmp_path: Path):
    """A ``staticmethod`` object's attributes are its function's name, module and docstring:
    hashed by them, one passed as a parameter was the same value after its code changed."""
    static_1, class_1 = _static_and_class_methods(tmp_path / "one", "1")
    static_2, class_2 = _static_and_class_methods(tmp_path / "two", "2")
    static_again, class_again = _static_and_class_methods(tmp_path / "again", "1")
    assert hash_value(static_1) != hash_value(static_2)
    assert hash_value(class_1) != hash_value(class_2)
    assert hash_value(static_1) == hash_value(static_again)
    assert hash_value(class_1) == hash_value(class_again)
    assert hash_value(static_1) != hash_value(class_1)
    assert hash_value(static_1) != hash_value(static_1.__func__)


class _Hash2Slotted:
    __slots__ = ("size", "__kind")

    def __init__(self, size: int) -> None:
        self.size = size
        self.__kind = f"k{size}"


class _Hash2SlottedChild(_Hash2Slotted):
    """A subclass without ``__slots__``: it has a ``__dict__`` (empty) and its base's slots."""


def test_attributes_kept_in_slots_enter_the_hash():
    """An object of a subclass of a class with ``__slots__`` was hashed by its ``__dict__``
    alone, empty: ``Child(1)`` and ``Child(2)`` were one value. One of a class with only
    slots could not be hashed at all."""
    assert hash_value(_Hash2SlottedChild(1)) != hash_value(_Hash2SlottedChild(2))
    assert hash_value(_Hash2SlottedChild(1)) == hash_value(_Hash2SlottedChild(1))
    assert hash_value(_Hash2Slotted(1)) != hash_value(_Hash2Slotted(2))
    assert hash_value(_Hash2Slotted(1)) == hash_value(_Hash2Slotted(1))
    child = _Hash2SlottedChild(1)
    child.extra = "x"
    assert hash_value(child) != hash_value(_Hash2SlottedChild(1))


def test_ordered_dicts_in_another_order_hash_apart():
    """Two ``OrderedDict`` with the same items in another order are unequal in Python (and
    code iterating them sees another order), but hashed alike as parameter values."""
    ab = collections.OrderedDict([("a", 1), ("b", 2)])
    ba = collections.OrderedDict([("b", 2), ("a", 1)])
    assert ab != ba
    assert hash_value(ab) != hash_value(ba)
    assert _Hash2Params(name="x", value=ab).params_hash() != (
        _Hash2Params(name="x", value=ba).params_hash()
    )
    assert hash_value(ab) == hash_value(collections.OrderedDict([("a", 1), ("b", 2)]))
    assert hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})


def test_time_zones_and_compiled_patterns_can_be_parameters():
    """``ZoneInfo("Europe/Paris")``, ``timezone.utc`` and ``re.compile(...)`` in a parameter
    set stopped the run: "assay does not know how to hash" them, though a datetime in that
    zone was hashed and a pattern held in a module constant too."""
    paris, chicago = ZoneInfo("Europe/Paris"), ZoneInfo("America/Chicago")
    assert hash_value(paris) == hash_value(ZoneInfo("Europe/Paris"))
    assert hash_value(paris) != hash_value(chicago)
    assert hash_value(dt.timezone.utc) != hash_value(ZoneInfo("UTC"))
    hours = dt.timedelta(hours=1)
    assert hash_value(dt.timezone(hours)) != hash_value(dt.timezone(2 * hours))
    assert hash_value(dt.timezone(-5 * hours, "EST")) != hash_value(dt.timezone(-4 * hours, "EST"))
    assert _Hash2Params(name="p", value=paris).params_hash() != (
        _Hash2Params(name="p", value=chicago).params_hash()
    )
    assert hash_value(re.compile("a+")) == hash_value(re.compile("a+"))
    assert hash_value(re.compile("a+")) != hash_value(re.compile("b+"))
    assert hash_value(re.compile("a+")) != hash_value(re.compile("a+", re.IGNORECASE))
    assert hash_value(re.compile(b"a+")) != hash_value(re.compile("a+"))
    assert hash_value(re.compile("a+")) != hash_value("a+")


def test_structured_arrays_hash_by_their_fields_not_their_padding():
    """A structured array with padding (``align=True``; the view ``table[["a", "c"]]``
    keeps ``b``'s bytes between its fields) was hashed with the bytes of its padding,
    which hold whatever the memory held: equal arrays hashed apart, from one run to the
    next too (``np.empty``), and a field subset changed hash when an unused field did."""
    aligned = np.dtype([("a", "i1"), ("b", "f8")], align=True)
    hashes = set()
    for fill in (0, 255, 7):
        memory = np.full(2 * aligned.itemsize, fill, dtype=np.uint8)
        array = memory.view(aligned)  # padding bytes are `fill`, as leftovers would be
        array["a"], array["b"] = 1, 2.0
        hashes.add(hash_value(array))
        hashes.add(hash_value(array[0]) + "scalar")
    assert len(hashes) == 2, hashes
    table = np.array([(1, 5.0, 3), (2, 6.0, 4)], dtype=[("a", "i4"), ("b", "f8"), ("c", "i4")])
    other = table.copy()
    other["b"] = [7.0, 8.0]
    assert hash_value(table[["a", "c"]]) == hash_value(other[["a", "c"]])
    assert hash_value(table[["a", "c"]]) == hash_value(table[["a", "c"]].copy())
    assert hash_value(table[["a", "c"]]) != hash_value(table[["a", "b"]])
    changed = table.copy()
    changed["c"] = [3, 5]
    assert hash_value(table[["a", "c"]]) != hash_value(changed[["a", "c"]])


STAGE_ARGUMENTS = """
import threading
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["checked"], cachers=[JsonCacher])
def check(record, problem):
    return str(problem)


@assay.stage(outputs=["locked"], cachers=[JsonCacher])
def guarded(record, lock):
    return record.params.n


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        check(record, problem=ValueError(PROBLEM))
        guarded(record, lock=threading.Lock())
"""


def _write_stage_arguments(root: Path, problem: str) -> None:
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "assay.toml").write_text("")
    source = STAGE_ARGUMENTS.replace("PROBLEM", repr(problem))
    (root / "experiments" / "hash2_arguments.py").write_text(source)


def test_a_stage_argument_that_differs_only_in_an_exceptions_message_recomputes(tmp_path: Path):
    """A stage given ``problem=ValueError("a")``, then ``ValueError("b")``, reused the first
    run's result: both arguments hashed alike."""
    _write_stage_arguments(tmp_path, "first problem")
    first = run_cli("run", "hash2_arguments", "--no-report", cwd=tmp_path)
    assert first.code == 0, str(first)
    _write_stage_arguments(tmp_path, "second problem")
    why = run_cli("why", "hash2_arguments", cwd=tmp_path)
    assert why.code == 0, str(why)
    assert "executes check [a]: the value passed to it as argument 'problem' changed" in (
        why.text
    ), str(why)
    second = run_cli("run", "hash2_arguments", "--no-report", cwd=tmp_path)
    assert second.code == 0 and "2 executed" in second.text, str(second)


def test_why_advises_on_a_stage_argument_it_cannot_hash_not_on_a_parameter_field(
    tmp_path: Path,
):
    """A lock passed to a stage: ``assay why`` said to leave "the field" out with
    ``metadata={'hash': False}`` or ``set_hash_functions``, which is about parameter sets
    and does nothing for a stage argument."""
    _write_stage_arguments(tmp_path, "p")
    why = run_cli("why", "hash2_arguments", cwd=tmp_path)
    assert why.code == 0, str(why)
    line = next(line for line in why.output.splitlines() if "guarded [a]" in line)
    assert "argument 'lock': assay does not know how to hash an object of type" in line, line
    assert "metadata=" not in line and "set_hash_functions" not in line, line
    assert "field" not in line, line
    assert "pass as argument 'lock' what identifies the object" in line, line
    assert "__assay_hash__" in line, line


PASSED_VALUES = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    return 1


@assay.stage(inputs=["x"], outputs=["y"], cachers=[JsonCacher])
def scale(record, x, k=1):
    return x * k


def get_params():
    return [Params(name="made"), Params(name="given")]


def run(param_sets, manager):
    made, given = (assay.Record(manager, p) for p in param_sets)
    scale(make(made), k=K)
    given.state["x"] = X
    scale(given)


K = 1
X = 1
"""


def test_why_says_a_value_passed_to_a_stage_changed_not_its_input_upstream(tmp_path: Path):
    """``scale(record, k=2)`` where it was ``k=1``, or another value put in ``record.state``
    by ``run()``: why said "its input 'k' changed upstream", though no stage upstream
    changed (the user looks for one in vain)."""
    root = one_experiment_project(tmp_path, "hash2_passed", PASSED_VALUES)
    experiment = root / "experiments" / "hash2_passed.py"
    assert run_cli("run", "hash2_passed", "--no-report", cwd=root).code == 0
    experiment.write_text(PASSED_VALUES.replace("K = 1", "K = 2").replace("X = 1", "X = 2"))

    why = run_cli("why", "hash2_passed", cwd=root)

    assert why.code == 0, str(why)
    assert "executes scale [made]: the value passed to it as argument 'k' changed" in why.text
    assert (
        "executes scale [given]: the value of its input 'x' in record.state changed "
        "(no stage made it)" in why.text
    ), str(why)
    assert "changed upstream" not in why.text, str(why)


ZONED = """
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import assay
from assay.caching import JsonCacher

TZ = ZoneInfo("Europe/Paris")
WINDOW = slice(0, 2)


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["hour"], cachers=[JsonCacher])
def local_hour(record):
    return dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc).astimezone(TZ).hour


@assay.stage(outputs=["window"], cachers=[JsonCacher])
def window(record):
    return [1, 2, 3, 4][WINDOW]


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    record = assay.Record(manager, param_sets[0])
    local_hour(record)
    window(record)
"""


def test_editing_a_time_zone_or_slice_constant_recomputes_the_stages_using_it(tmp_path: Path):
    """``TZ = ZoneInfo("Europe/Paris")`` edited to New York (or ``WINDOW = slice(0, 2)`` to
    ``slice(1, 3)``): the constant counted by its type only, and the stage's old result
    (the hour in Paris) was reused."""
    root = one_experiment_project(tmp_path, "hash2_zoned", ZONED)
    experiment = root / "experiments" / "hash2_zoned.py"
    assert run_cli("run", "hash2_zoned", "--no-report", cwd=root).code == 0
    edited = ZONED.replace("Europe/Paris", "America/New_York")
    experiment.write_text(edited.replace("slice(0, 2)", "slice(1, 3)"))

    why = run_cli("why", "hash2_zoned", cwd=root)

    assert why.code == 0, str(why)
    assert "executes local_hour [a]: constant experiments.hash2_zoned.TZ changed" in why.text
    assert "executes window [a]: constant experiments.hash2_zoned.WINDOW changed" in why.text
    assert run_cli("run", "hash2_zoned", "--no-report", cwd=root).code == 0
    assert run_cli("why", "hash2_zoned", cwd=root).text.count("reused") == 2


HELD_STATIC = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


def helper(x):
    return x * 2


def double(x):
    return helper(x)


TOOLS = {"double": staticmethod(double)}


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def work(record):
    return TOOLS["double"](record.params.n)


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    work(assay.Record(manager, param_sets[0]))
"""


def test_editing_a_helper_of_a_static_method_held_in_a_constant_recomputes(tmp_path: Path):
    """``TOOLS = {"double": staticmethod(double)}``: the function a static method object
    wraps was not followed to the helpers it calls, so editing ``helper`` reused the
    stage's old result."""
    root = one_experiment_project(tmp_path, "hash2_held", HELD_STATIC)
    experiment = root / "experiments" / "hash2_held.py"
    assert run_cli("run", "hash2_held", "--no-report", cwd=root).code == 0
    experiment.write_text(HELD_STATIC.replace("x * 2", "x * 3"))

    why = run_cli("why", "hash2_held", cwd=root)

    assert why.code == 0, str(why)
    assert "executes work [a]: its code changed: function experiments.hash2_held.helper" in (
        why.text
    ), str(why)


def test_a_multiprocessing_lock_in_a_parameter_set_is_refused_with_a_parameter_error():
    """``multiprocessing.Lock()`` refuses to be pickled (its ``__getstate__`` raises
    RuntimeError): hashing a set holding one crashed ``assay run`` with a traceback, where
    the README promises a ParameterError naming the parameter set and field."""
    held = _Hash2Params(name="locked", value=multiprocessing.Lock())
    with pytest.raises(ParameterError) as refused:
        held.params_hash()
    message = str(refused.value)
    assert "Parameter set 'locked'" in message and "_Hash2Params.value" in message, message
    assert "RuntimeError: Lock objects should only be shared" in message, message
    assert "metadata={'hash': False}" in message, message


QUEUE_ARGUMENT = """
import multiprocessing
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def work(record, queue):
    return record.params.n


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    work(assay.Record(manager, param_sets[0]), queue=multiprocessing.Queue())
"""


def test_a_stage_given_a_multiprocessing_queue_runs_uncached(tmp_path: Path):
    """A ``multiprocessing.Queue`` passed to a stage failed the run ("Queue objects should
    only be shared between processes through inheritance", from hashing it), where a
    ``threading.Lock`` makes the stage run uncached; ``assay why`` says which argument."""
    root = one_experiment_project(tmp_path, "hash2_queue", QUEUE_ARGUMENT)

    ran = run_cli("run", "hash2_queue", "--no-report", cwd=root)

    assert ran.code == 0 and "1 executed" in ran.text, str(ran)
    why = run_cli("why", "hash2_queue", cwd=root)
    assert "executes work [a]: an input cannot be hashed: argument 'queue':" in why.text, str(why)
    assert "its __getstate__() raised RuntimeError" in why.text, str(why)


def test_type_expressions_hash_by_their_parts() -> None:
    """`list[int]` could not be hashed (the message named a `mappingproxy`), nor `int | str`;
    `typing.List[int]` could. Each is now hashed by what it is made of."""
    forms = [list[int], list[str], dict[str, int], int | str, str | int, int | None, list]
    digests = [hash_value(form) for form in forms]

    assert len(set(digests)) == len(forms)
    assert hash_value(list[int]) == hash_value(list[int])
