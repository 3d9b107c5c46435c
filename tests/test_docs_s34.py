"""What the README and docs/ promise, checked as a new researcher follows them (session 34)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import assay
from assay.errors import ParameterError


@dataclass
class _DocsHandleParams(assay.ExperimentParameters):
    handle: Any = None


@dataclass
class _DocsHandleByName(assay.ExperimentParameters):
    handle: Any = field(default=None, metadata={"hash": lambda f: f.name})


def test_an_open_file_in_a_parameter_set_is_refused_not_hashed_by_its_mode(tmp_path: Path):
    """The README: "A value assay cannot hash (a lock, an open file or connection) stops the
    run before anything executes, with a ParameterError naming the parameter set and field".
    An open file was hashed by its attributes, ``{'mode': 'r'}``: sets holding two different
    files had one hash, so one's cached results were reused for the other."""
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n2\n")

    for mode in ("r", "rb"):
        with open(tmp_path / "a.csv", mode) as handle, pytest.raises(ParameterError) as refused:
            _DocsHandleParams(name="files", handle=handle).params_hash()
        message = str(refused.value)
        assert "Parameter set 'files'" in message and "_DocsHandleParams.handle" in message
        assert "an open file or stream" in message, message

    with open(tmp_path / "a.csv") as a, open(tmp_path / "b.csv") as b:  # the README's way
        by_a = _DocsHandleByName(name="files", handle=a).params_hash()
        assert by_a != _DocsHandleByName(name="files", handle=b).params_hash()
    in_memory = [_DocsHandleParams(handle=io.StringIO(text)).params_hash() for text in "12"]
    assert in_memory[0] != in_memory[1]  # a buffer in memory is hashed by its content


def test_the_advice_for_a_value_assay_cannot_hash_keeps_results_reusable(tmp_path: Path):
    """A lock in a parameter set was refused with advice to hash it by ``repr``
    (``set_hash_functions(my_field=lambda self, value: repr(value))`` or
    ``metadata={'hash': repr}``), which holds the object's memory address: every run then
    hashed the set differently and no run ever reused another's results. The README says
    not to use ``repr``; the message now says the same and shows a stable way."""
    import threading

    with pytest.raises(ParameterError) as refused:
        _DocsHandleParams(name="locked", handle=threading.Lock()).params_hash()

    message = str(refused.value)
    assert "repr(value)" not in message and "'hash': repr}" not in message, message
    assert "not `repr`" in message, message
    assert "the same in every run" in message, message
    assert "metadata={'hash': lambda f: f.name}" in message, message
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    with open(data) as first, open(data) as second:  # the advice, followed as written
        assert (
            _DocsHandleByName(name="f", handle=first).params_hash()
            == _DocsHandleByName(name="f", handle=second).params_hash()
        )


DOCS_FILE_EXPERIMENT = """
import os
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


def get_params():
    return [Params(name="p")]


@assay.stage(outputs=["text"], cachers=[JsonCacher])
def read_all(record, handle=None):
    return handle.read()


def run(param_sets, manager):
    with open(os.environ["DOCS_S34_FILE"]) as handle:
        record = read_all(assay.Record(manager, param_sets[0]), handle=handle)
        return record.state["text"]  # read here: the stage runs while the file is open
"""


def test_a_stage_given_another_open_file_does_not_reuse_the_first_files_result(
    tmp_project: Path, monkeypatch
):
    """``read_all(record, handle=open(path))``: the value passed in was keyed by the file's
    mode, so a run given another file reused the first file's result."""
    (tmp_project / "experiments" / "docs_s34_files.py").write_text(DOCS_FILE_EXPERIMENT)
    (tmp_project / "a.csv").write_text("from a")
    (tmp_project / "b.csv").write_text("from b")

    monkeypatch.setenv("DOCS_S34_FILE", str(tmp_project / "a.csv"))
    first = assay.run_experiment("docs_s34_files", project_root=tmp_project)
    monkeypatch.setenv("DOCS_S34_FILE", str(tmp_project / "b.csv"))
    second = assay.run_experiment("docs_s34_files", project_root=tmp_project)

    assert (first.results, second.results) == ("from a", "from b")


DOCS_RNG_EXPERIMENT = """
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import assay
from assay.caching import JsonCacher

RNG = np.random.default_rng(0)
NOISE = {"rng": np.random.default_rng(3), "scale": 0.0}


@dataclass
class Params(assay.ExperimentParameters):
    rng: Any = field(default_factory=lambda: np.random.default_rng(1))


def get_params():
    return [Params(name="seed1"), Params(name="seed2", rng=np.random.default_rng(2))]


@assay.stage(outputs=["draw"], cachers=[JsonCacher])
def draw(record):
    return float(record.params.rng.random())


@assay.stage(inputs=["draw"], outputs=["shifted"], cachers=[JsonCacher])
def shift(record, draw):
    # module-level generators, alone or in a dict: keyed by their type, not their state
    return draw + 0.0 * float(RNG.random()) + NOISE["scale"] * float(NOISE["rng"].random())


def run(param_sets, manager):
    results = {}
    for params in param_sets:
        results[params.name] = shift(draw(assay.Record(manager, params))).state["draw"]
    return results
"""


def test_parameter_sets_holding_numpy_generators_of_other_seeds_do_not_share_results(
    tmp_project: Path,
):
    """``rng: Any = field(default_factory=lambda: np.random.default_rng(1))``: a numpy
    ``Generator`` was hashed by its ``__getstate__()``, which is ``None``, so generators of
    every seed hashed alike and the set seeded 2 got the draws of the set seeded 1."""
    np = pytest.importorskip("numpy")
    from assay.hashing import hash_value

    (tmp_project / "experiments" / "docs_s34_rng.py").write_text(DOCS_RNG_EXPERIMENT)

    first = assay.run_experiment("docs_s34_rng", project_root=tmp_project)
    again = assay.run_experiment("docs_s34_rng", project_root=tmp_project)

    expected = {f"seed{s}": float(np.random.default_rng(s).random()) for s in (1, 2)}
    assert first.results == expected
    assert again.results == expected
    statuses = {(s.spec.name, s.record_label): s.status for s in again.plan.nodes}
    assert set(statuses.values()) == {"cached"}, statuses  # the module's RNG drew meanwhile
    drawn = np.random.default_rng(1)
    drawn.random()
    assert hash_value(drawn) != hash_value(np.random.default_rng(1))
    assert hash_value(np.random.PCG64(1)) != hash_value(np.random.PCG64(2))


class _DocsSlotsHandle:
    """Keeps its data where assay cannot see it, as a compiled extension's type may."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def __getstate__(self):
        return None

    def __reduce__(self):
        return (_DocsSlotsHandle, (self._value,))


def test_an_object_whose_state_assay_cannot_see_is_refused_not_hashed_as_none():
    """An object whose ``__getstate__()`` gives ``None`` and that has no ``__dict__`` (numpy's
    ``Generator`` was one) hashed as ``None``: every such object alike."""
    with pytest.raises(ParameterError) as refused:
        _DocsHandleParams(name="slots", handle=_DocsSlotsHandle(1)).params_hash()

    assert "cannot see the state of an object of type" in str(refused.value)
    assert "_DocsSlotsHandle" in str(refused.value)


def test_parameter_sets_holding_other_pandas_periods_hash_differently():
    """``period=pd.Period("2020-01")``: a pandas ``Period`` was hashed by its attributes,
    which hold only a cache of its frequency, so every month hashed alike and a set for
    February reused January's results."""
    pd = pytest.importorskip("pandas")

    hashes = {
        _DocsHandleParams(name="p", handle=pd.Period(text, freq)).params_hash()
        for text, freq in [("2020-01", "M"), ("2020-02", "M"), ("2020-01-01", "D")]
    }

    assert len(hashes) == 3
    same = [_DocsHandleParams(handle=pd.Period("2020-01", "M")).params_hash() for _ in "ab"]
    assert same[0] == same[1]


def test_parameter_sets_holding_other_pandas_arrays_hash_differently():
    """``labels=pd.Categorical([...])``, a ``DatetimeArray`` or a ``PeriodArray`` keeps its
    values in a slot of pandas' compiled base class; hashed by their attributes (none),
    every such array of a type hashed alike."""
    pd = pytest.importorskip("pandas")

    pairs = [
        (pd.Categorical(["a", "b"]), pd.Categorical(["b", "a"])),
        (pd.Categorical(["a"], ordered=True), pd.Categorical(["a"])),
        (pd.array(pd.to_datetime(["2020-01-01"])), pd.array(pd.to_datetime(["2021-01-01"]))),
        (
            pd.array(pd.period_range("2020-01", periods=2, freq="M")),
            pd.array(pd.period_range("2020-02", periods=2, freq="M")),
        ),
        (pd.array(pd.to_timedelta(["1D"])), pd.array(pd.to_timedelta(["2D"]))),
    ]

    for first, second in pairs:
        hashes = [_DocsHandleParams(handle=v).params_hash() for v in (first, second)]
        assert hashes[0] != hashes[1], (first, second)
        assert _DocsHandleParams(handle=first.copy()).params_hash() == hashes[0]


def test_parameter_sets_holding_other_sympy_expressions_hash_differently():
    """``model=x**2 + 1`` (sympy): an expression keeps its parts in slots and its
    ``__getstate__()`` is ``None``, so every symbol and expression hashed alike."""
    sympy = pytest.importorskip("sympy")
    x, y = sympy.symbols("x y")

    values = [x, y, x + 1, x + 2, sympy.Symbol("x", positive=True), sympy.Rational(1, 3)]
    hashes = {_DocsHandleParams(handle=v).params_hash() for v in values}

    assert len(hashes) == len(values)
    assert (
        _DocsHandleParams(handle=x + 1).params_hash()
        == _DocsHandleParams(handle=1 + sympy.Symbol("x")).params_hash()
    )
