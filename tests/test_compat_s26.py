"""Curifactory code that ran there and broke here, and a ``Lazy`` handle that loaded a
modified cache file without checking it.

- A stage's declaration is checked when the stage is called, as Curifactory checks it:
  ``except CachersMismatchError`` around the call catches it, a module holding a broken
  stage it never calls imports, and ``suppress_missing_inputs=True`` on inputs without
  defaults works while the inputs are there (SPEC section 2).
- ``record.state.resolve = False`` gives the ``Lazy`` objects, as Curifactory's does.
- ``ParameterError`` is a ``RuntimeError`` and ``NoArtifactManagerError`` exists, so
  ``except`` clauses written for Curifactory keep catching.
- ``Lazy(..., resolve=False).load()`` checks the files against their checksums, as
  every other load does (SPEC section 4).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

import assay
from assay.caching import JsonCacher, PickleCacher
from assay.errors import (
    AssayError,
    CachersMismatchError,
    CorruptArtifactError,
    EmptyCachersError,
    InputSignatureError,
    OutputSignatureError,
    ParameterError,
    StageError,
    StageFailed,
)

HERE = os.path.relpath(__file__)


@dataclass
class Params(assay.ExperimentParameters):
    size: int = 3


@pytest.fixture
def manager(tmp_path: Path) -> assay.ArtifactManager:
    """A live manager, as in a notebook."""
    return assay.ArtifactManager("compat", project_root=tmp_path)


def record_of(manager, name: str = "p") -> assay.Record:
    return assay.Record(manager, Params(name=name))


# -- declarations are checked when the stage is called (A-F2) --------------------------


def test_a_cachers_mismatch_is_raised_by_the_call_not_the_declaration(manager):
    """It was raised by the decorator, when the module was imported: a migrated
    ``with pytest.raises(CachersMismatchError): stage(record)`` failed."""

    @assay.stage(None, ["a", "b"], [PickleCacher])
    def two(record):
        return 1, 2

    with pytest.raises(CachersMismatchError) as caught:
        two(record_of(manager))
    message = str(caught.value)
    assert "Stage 'two' declares 2 output(s) ['a', 'b'] but 1 cacher(s)." in message
    assert f"The stage is defined in {HERE}, line " in message  # the call's traceback is hidden


@pytest.mark.parametrize("kind", ["stage", "aggregate"])
def test_every_declaration_error_waits_for_the_call(manager, kind):
    decorate = assay.stage if kind == "stage" else assay.aggregate

    @decorate(None, None, [])
    def empty(record, records=None):
        pass

    @decorate(["x"], ["y"])
    def misnamed(record, records=None):
        return 1

    @decorate(None, [assay.Lazy("big")])
    def lazy(record, records=None):
        return 1

    @decorate(None, ["a"], [int])
    def not_a_cacher(record, records=None):
        return 1

    record = assay.Record(manager, None) if kind == "aggregate" else record_of(manager)
    expected = [
        (empty, EmptyCachersError, "has cachers=[]"),
        (misnamed, InputSignatureError, "declares inputs ['x'] that its function does not"),
        (lazy, OutputSignatureError, "has Lazy outputs ['big'] but no cachers"),
        (not_a_cacher, StageError, "The cacher int for output 'a'"),
    ]
    for function, error, fragment in expected:
        with pytest.raises(error, match=r"defined in .*\.py, line \d+\.$") as caught:
            function(record)
        assert fragment in str(caught.value)
        with pytest.raises(error):  # and at every call, not just the first
            function(record)


@pytest.mark.parametrize("setting", ["lazy", "ignore_lazy"])
def test_a_lazy_output_without_cachers_runs_under_lazy_and_ignore_lazy(tmp_path, setting):
    """Curifactory lets it pass under both: ``--lazy`` gives it a PickleCacher,
    ``--ignore-lazy`` makes it an ordinary output."""
    manager = assay.ArtifactManager("compat", project_root=tmp_path, **{setting: True})

    @assay.stage(None, [assay.Lazy("big")])
    def make(record):
        return [1, 2]

    assert make(record_of(manager)).state["big"] == [1, 2]


def test_a_module_holding_a_broken_stage_it_never_calls_imports_and_runs(bad_project: Path):
    (bad_project / "experiments" / "spare_stage.py").write_text(
        "import assay\n"
        "from assay.caching import PickleCacher\n"
        "from experiments.good import get_params, load, train  # noqa: F401\n"
        "\n"
        "\n"
        "@assay.stage(outputs=['a', 'b'], cachers=[PickleCacher])\n"
        "def unused(record):\n"
        "    return 1, 2\n"
        "\n"
        "\n"
        "def run(param_sets, manager):\n"
        "    return [train(load(assay.Record(manager, p))).state['total'] for p in param_sets]\n"
    )
    manager = assay.run_experiment("spare_stage", project_root=bad_project)
    assert manager.results == [3 + 1, 3 + 2]


@assay.stage(None, ["data"], [JsonCacher])
def load_data(record):
    return list(range(record.params.size))


@assay.stage(["data"], ["total"], suppress_missing_inputs=True)
def total(record, data):  # no default: the input is there whenever it is called
    return sum(data)


def test_suppressing_missing_inputs_without_defaults_runs_while_the_inputs_are_there(manager):
    """Refused when the module was imported: "inputs ['data'] need default values"."""
    assert total(load_data(record_of(manager))).state["total"] == 0 + 1 + 2
    assert total(record_of(manager, "q"), data=[5, 6]).state["total"] == 11


def test_suppressing_missing_inputs_refuses_a_missing_input_without_default(manager):
    with pytest.raises(InputSignatureError) as caught:
        total(record_of(manager))
    message = str(caught.value)
    assert message.startswith(
        "Stage 'total' for parameter set 'p' is missing input(s) ['data']: no earlier stage "
        "on the record made them and the call does not pass them."
    ), message
    assert "def total(record, data) has none for data. Give such an input a default" in message
    assert "total(record, data=...)" in message


def test_suppressing_missing_inputs_uses_the_default(manager):
    @assay.stage(["data"], ["total"], suppress_missing_inputs=True)
    def with_default(record, data=(7,)):
        return sum(data)

    assert with_default(record_of(manager)).state["total"] == 7


def test_an_input_a_stage_before_puts_in_the_state_by_hand_is_not_refused_early(manager):
    """Known only once that stage has run: not refused when the stage is called."""

    @assay.stage()
    def by_hand(record):
        record.state["data"] = [4, 5]

    assert total(by_hand(record_of(manager))).state["total"] == 9


def test_an_input_a_stage_before_did_not_put_in_the_state_is_refused_as_missing(manager):
    """The stage was called without it and failed with a raw TypeError (missing argument)."""

    @assay.stage()
    def forgets(record):
        pass

    with pytest.raises(InputSignatureError, match=r"missing input\(s\) \['data'\]"):
        total(forgets(record_of(manager)))


def test_suppressing_missing_inputs_runs_in_a_planned_run(bad_project: Path):
    """``run_experiment`` plans ``run()`` first: the inputs are planned artifacts then, or
    values that a stage before puts in the state by hand once it has run."""
    (bad_project / "experiments" / "suppressing.py").write_text(
        "import assay\n"
        "from experiments.good import Params, get_params, load  # noqa: F401\n"
        "\n"
        "\n"
        "@assay.stage()\n"
        "def by_hand(record):\n"
        "    record.state['data'] = [4, 5]\n"
        "\n"
        "\n"
        "@assay.stage(['data'], ['total'], suppress_missing_inputs=True)\n"
        "def total(record, data):\n"
        "    return sum(data)\n"
        "\n"
        "\n"
        "def run(param_sets, manager):\n"
        "    records = [total(load(assay.Record(manager, p))) for p in param_sets]\n"
        "    records.append(total(by_hand(assay.Record(manager, Params(name='hand')))))\n"
        "    return [r.state['total'] for r in records]\n"
    )
    assert assay.run_experiment("suppressing", project_root=bad_project).results == [3, 3, 9]


# -- record.state.resolve (A-F6) -------------------------------------------------------


def test_state_resolve_false_gives_the_lazy_objects(manager):
    """It was accepted and did nothing: ``record.state["big"]`` stayed the value."""

    @assay.stage(None, [assay.Lazy("big"), "small"], [PickleCacher, JsonCacher])
    def make(record):
        return "hello world", 3

    record = make(record_of(manager))
    record.state.resolve = False
    handle = record.state["big"]
    assert isinstance(handle, assay.Lazy) and handle.name == "big"
    assert isinstance(handle.cacher, PickleCacher)
    assert handle.load() == "hello world"
    assert record.state["small"] == 3  # not a Lazy output: its value, as in Curifactory
    record.state.resolve = True
    assert record.state["big"] == "hello world"


def test_state_resolve_false_under_lazy_gives_every_output_as_lazy(tmp_path):
    manager = assay.ArtifactManager("compat", project_root=tmp_path, lazy=True)

    @assay.stage(None, ["tester"])
    def make(record):
        return "hello world"

    record = make(record_of(manager))
    record.state.resolve = False
    assert isinstance(record.state["tester"], assay.Lazy)
    assert isinstance(record.state["tester"].cacher, PickleCacher)


# -- exception types that Curifactory code catches (A-F8) ------------------------------


def test_an_unknown_parameter_set_name_is_a_runtime_error_too(bad_project: Path):
    with pytest.raises(RuntimeError) as caught:
        assay.run_experiment("good", param_set_names=["nope"], project_root=bad_project)
    assert isinstance(caught.value, ParameterError)
    assert "No parameter set named 'nope'" in str(caught.value)
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is ParameterError and str(again) == str(caught.value)


def test_a_procedure_without_a_manager_raises_curifactorys_error(manager):
    from assay.procedure import NoArtifactManagerError

    assert issubclass(NoArtifactManagerError, AssayError)
    assert issubclass(NoArtifactManagerError, ValueError)  # what it raised before
    procedure = assay.Procedure([load_data])
    with pytest.raises(NoArtifactManagerError, match="needs a manager"):
        procedure.run(Params(name="p"))


# -- a Lazy handle loads only files that match their checksums (E-F1) -------------------


@assay.stage(None, [assay.Lazy("big", resolve=False)], [PickleCacher])
def make_big(record):
    with open(Path(record.manager.config.root) / "made.txt", "a") as made:
        made.write("big\n")  # a file: a counter in the module would be keyed
    return {"data": list(range(1000))}


def times_made(root: Path) -> int:
    return (root / "made.txt").read_text().count("big")


@assay.stage(["big"], ["n"])
def use_big(record, big):
    return len(big.load()["data"])


class _Touches:
    """Unpickling it creates the file ``path``: what a hostile pickle could do."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _replace_keeping_size(path: Path, payload: bytes) -> None:
    """Write ``payload`` over ``path``, padded to its size (so only a checksum tells)."""
    size = path.stat().st_size
    assert len(payload) < size
    path.write_bytes(payload + b"\0" * (size - len(payload)))


def test_a_lazy_handle_does_not_unpickle_a_modified_file(tmp_path: Path):
    """``big.load()`` unpickled it: the hostile pickle ran and the stage went on with
    what it returned, while ``assay.load`` refused the same file."""
    first = assay.ArtifactManager("lazy", project_root=tmp_path)
    record = use_big(make_big(record_of(first)))
    assert record.state["n"] == 1000
    pickled = Path(record.state["big"].cacher.get_path())
    marker = tmp_path / "unpickled"
    _replace_keeping_size(pickled, pickle.dumps(_Touches(str(marker))))

    second = assay.ArtifactManager("lazy", project_root=tmp_path)
    with pytest.raises(StageFailed) as caught:
        use_big(make_big(record_of(second)))  # make_big is cached; use_big has no cacher
    message = str(caught.value)
    assert "Stage 'use_big' failed for parameter set 'p': CorruptArtifactError: " in message
    assert "Cached artifact 'big' of stage 'make_big' (parameter set 'p'):" in message
    assert "does not match its recorded checksum" in message
    assert "It was removed from the cache: the next run computes it again." in message
    assert not marker.exists()
    assert times_made(tmp_path) == 1

    third = assay.ArtifactManager("lazy", project_root=tmp_path)
    assert use_big(make_big(record_of(third))).state["n"] == 1000
    assert times_made(tmp_path) == 2  # computed again
    assert not marker.exists()


def test_a_lazy_handle_read_after_the_run_checks_the_file_too(tmp_path: Path):
    manager = assay.ArtifactManager("lazy", project_root=tmp_path)
    handle = make_big(record_of(manager)).state["big"]
    path = Path(handle.cacher.get_path())
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte: a damaged disk
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptArtifactError, match="does not match its recorded checksum"):
        handle.load()


def test_a_lazy_handle_in_a_worker_does_not_unpickle_a_modified_file(tmp_project: Path, calls):
    """The ``lazy`` experiment's ``inspect_blob`` calls ``blob.load()`` in a worker."""
    manager = assay.run_experiment("lazy", project_root=tmp_project)
    (small,) = [r for r in manager.records if r.name == "small"]
    pickled = Path(small.state["blob"].cacher.get_path())
    edited = pickled.read_bytes().replace(b"small", b"SMALL")  # still a valid pickle
    assert pickle.loads(edited) == ["blob of", "SMALL"]
    pickled.write_bytes(edited)
    calls.take()

    with pytest.raises(StageFailed) as caught:
        assay.run_experiment(
            "lazy", overwrite_stages=["inspect_blob"], parallel=2, project_root=tmp_project
        )
    message = str(caught.value)
    assert "Stage 'inspect_blob' failed for parameter set 'small': CorruptArtifactError" in message
    assert "Cached artifact 'blob' of stage 'make_blob' (parameter set 'small')" in message

    manager = assay.run_experiment(
        "lazy", overwrite_stages=["inspect_blob"], project_root=tmp_project
    )
    assert "make_blob:small" in calls.take()  # removed from the cache, so computed again
    (small,) = [r for r in manager.records if r.name == "small"]
    assert small.state["blob_info"] == {"type": "Lazy", "loaded": ["blob of", "small"]}
