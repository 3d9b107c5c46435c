"""Curifactory code that behaved otherwise under assay (migration findings, session 26).

- ``overwrite=True`` (or ``overwrite_stages`` set since) in a live manager recomputes what
  an earlier call of the same session computed under the same key;
- ``hash_representations`` on a dataclass nested in a parameter set is honoured;
- ``save_metadata()`` of a cacher made by hand in a stage writes the stage, parameter set
  and run, in Curifactory's names;
- a closed-over (``nonlocal``) or ``global`` variable the stage assigns, a call counter, is
  state and no part of its key;
- a live manager's ``cache_path`` exists from the start.

Each test failed before the fix it is named after.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import assay
from assay.caching import JsonCacher, PickleCacher
from assay.codeprint import Fingerprinter
from conftest import Calls, load_experiment_module


@pytest.fixture
def lab(tmp_path: Path, monkeypatch) -> Path:
    """An empty project folder, the working directory (as a notebook started there)."""
    (tmp_path / "assay.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass
class FileParams(assay.ExperimentParameters):
    path: str = "input.txt"


@assay.stage(None, ["text"], [PickleCacher])
def read_text(record):
    return Path(record.params.path).read_text()


@assay.stage(["text"], ["shout"], [PickleCacher])
def shout(record, text):
    return text.upper()


# -- overwrite in a live manager ----------------------------------------------------------


def test_overwrite_true_in_a_notebook_recomputes_what_an_earlier_call_computed(lab: Path):
    """The second record's overwrite=True gave the value the first call computed."""
    manager = assay.ArtifactManager("nb", project_root=lab)
    (lab / "input.txt").write_text("old")
    assert read_text(assay.Record(manager, FileParams(name="p"))).state["text"] == "old"

    (lab / "input.txt").write_text("new")  # the data changed: force a recomputation
    again = shout(read_text(assay.Record(manager, FileParams(name="p", overwrite=True))))

    assert again.state["text"] == "new"
    assert again.state["shout"] == "NEW"
    # Without overwrite, the cache (now holding the new value) is reused, as before.
    (lab / "input.txt").write_text("newer")
    assert read_text(assay.Record(manager, FileParams(name="p"))).state["text"] == "new"


def test_overwrite_stages_set_on_a_live_manager_recompute_what_it_computed(lab: Path):
    manager = assay.ArtifactManager("nb", project_root=lab)
    (lab / "input.txt").write_text("old")
    first = shout(read_text(assay.Record(manager, FileParams(name="p"))))
    assert first.state["shout"] == "OLD"

    (lab / "input.txt").write_text("new")
    manager.overwrite_stages = ["read_text"]  # a list, as Curifactory's notebooks set it
    again = shout(read_text(assay.Record(manager, FileParams(name="p"))))

    assert again.state["text"] == "new"
    assert again.state["shout"] == "NEW"  # what uses the recomputed stage follows it


def test_an_aggregate_called_twice_with_overwrite_executes_twice(lab: Path):
    """Curifactory's test_aggregate_args_overwrite_no_records_doesnot_load_cache."""
    manager = assay.ArtifactManager("nb", project_root=lab)
    executed = []

    @assay.aggregate(None, ["out"], [PickleCacher])
    def collect(record, records):
        executed.append(record.name)
        return "hello"

    for _ in range(2):
        collect(assay.Record(manager, assay.ExperimentParameters(name="t", overwrite=True)), [])
    collect(assay.Record(manager, assay.ExperimentParameters(name="t")), [])

    assert executed == ["t", "t"]  # the third call, without overwrite, reuses the cache


def test_a_run_still_computes_a_key_shared_by_overwritten_sets_once(
    tmp_project: Path, calls: Calls
):
    """The notebook fix leaves a run alone: twins (same values, other names) under
    --overwrite share the keys of the stages that do not read the name, which the run
    computes once (``double`` prints the name, so it is keyed on it)."""
    Params = load_experiment_module(tmp_project, "diamond").Params
    twins = [Params(name="a"), Params(name="twin")]
    options = {"project_root": tmp_project, "param_sets": twins}
    assay.run_experiment("diamond", **options)
    fresh = sorted(calls.take())
    assert "load:twin" not in fresh and "square:twin" not in fresh

    manager = assay.run_experiment("diamond", overwrite=True, **options)

    assert sorted(calls.take()) == fresh
    executed = [n.key for n in manager.plan.nodes if n.status == "executed"]
    assert len(executed) == len(set(executed))


# -- hash_representations on a nested dataclass -------------------------------------------


@dataclass
class Model:
    depth: int = 5
    n_jobs: int = 4
    data_file: str = "/data/a/train.csv"
    hash_representations: dict = assay.set_hash_functions(
        n_jobs=None, data_file=lambda self, path: os.path.basename(path)
    )


@dataclass
class ModelParams(assay.ExperimentParameters):
    a: int = 0
    model: Model = field(default_factory=Model)


def test_hash_representations_of_a_nested_dataclass_are_honoured():
    base = ModelParams(name="x").params_hash()

    assert ModelParams(name="x", model=Model(n_jobs=16)).params_hash() == base  # None: left out
    moved = Model(data_file="/elsewhere/train.csv")
    assert ModelParams(name="x", model=moved).params_hash() == base  # hashed as its basename
    assert ModelParams(name="x", model=Model(depth=6)).params_hash() != base
    assert ModelParams(name="x", model=Model(data_file="/data/a/test.csv")).params_hash() != base


def test_a_stage_reading_a_nested_dataclass_is_reused_when_an_excluded_field_changes(lab: Path):
    executed = []

    @assay.stage(None, ["fit"], [PickleCacher])
    def train(record):
        executed.append(record.name)
        return record.params.model.depth

    train(assay.Record(assay.ArtifactManager("t", project_root=lab), ModelParams(name="a")))
    other = ModelParams(name="a", model=Model(n_jobs=16))
    train(assay.Record(assay.ArtifactManager("t", project_root=lab), other))

    assert executed == ["a"]


def test_a_nested_hash_representations_meaning_something_else_is_left_alone():
    """As in Curifactory, entries naming no field (or giving no function) are ignored: an
    existing class using that name for something else made every run fail."""

    @dataclass
    class Shape:
        color: str = "red"
        hash_representations: dict = field(default_factory=lambda: {"color": "hex", "x": None})

    @dataclass
    class ShapeParams(assay.ExperimentParameters):
        model: Shape = field(default_factory=Shape)

    shape = ShapeParams(name="x")
    assert shape.params_hash() != ShapeParams(name="x", model=Shape(color="blue")).params_hash()


# -- save_metadata() of a cacher made by hand ---------------------------------------------


@dataclass
class TwoParams(assay.ExperimentParameters):
    a: int = 1
    b: int = 2


def test_a_hand_made_cachers_metadata_names_the_stage_parameter_set_and_run(lab: Path):
    """Curifactory's test_manual_static_path_cacher_outputs_metadata: KeyError 'stage'."""
    executed = []

    @assay.stage(None, ["value"], [JsonCacher])
    def export(record):
        executed.append(record.name)
        cacher = PickleCacher("exports/raw_path_file.pkl", record=record)
        cacher.extra_metadata["note"] = "hi"
        cacher.save("hello world")
        cacher.save_metadata()
        return record.params.a

    manager = assay.ArtifactManager("t", project_root=lab)
    record = export(assay.Record(manager, TwoParams(name="test")))

    loader = PickleCacher("exports/raw_path_file.pkl")
    metadata = loader.load_metadata()
    assert loader.load() == "hello world"
    assert metadata["stage"] == "export"
    assert metadata["extra"] == {"note": "hi"} == loader.extra_metadata
    assert metadata["params_name"] == metadata["record_name"] == "test"
    assert metadata["params_hash"] == record.get_hash()
    assert metadata["params"] == {"name": "test", "a": "1", "b": "2"}
    assert metadata["cacher_type"] == "<class 'assay.caching.PickleCacher'>"
    assert metadata["manager_run_info"] == {
        "experiment_name": "t",
        "run_number": None,  # a notebook's manager: no run recorded
        "reference": None,
    }
    # Writing the parameter set into the file is no read: the stage read `a` only.
    export(assay.Record(assay.ArtifactManager("t", project_root=lab), TwoParams(name="test", b=3)))
    assert executed == ["test"]


def test_a_cacher_without_a_record_writes_what_it_knows(lab: Path):
    cacher = PickleCacher("alone.pkl")
    cacher.extra_metadata["k"] = 1
    cacher.save([1])
    cacher.save_metadata()

    written = json.loads((lab / "alone_metadata.json").read_text())
    assert sorted(written) == ["artifact_generated", "artifact_name", "cacher_type", "extra"]
    assert written["extra"] == {"k": 1}


# -- state a stage keeps in a variable it assigns -----------------------------------------


def test_a_stage_counting_its_calls_with_nonlocal_is_keyed_once(lab: Path):
    calls = 0

    @assay.stage(None, ["x"], [PickleCacher])
    def counted(record):
        nonlocal calls
        calls += 1
        return 42

    for _ in range(3):
        counted(assay.Record(assay.ArtifactManager("t", project_root=lab), TwoParams(name="p")))

    assert calls == 1


def make_counters(factor: int):
    """A stage-like function closing over a setting it reads and a counter it bumps
    through a helper nested in it."""
    count = 0

    def scaled(x):
        def bump():
            nonlocal count
            count += 1

        bump()
        return x * factor

    return scaled


def test_a_closed_over_setting_stays_keyed_and_a_counter_does_not(tmp_path: Path):
    def digest(function) -> str:
        return Fingerprinter(tmp_path).fingerprint(function)[0]

    twice = make_counters(2)
    before = digest(twice)
    twice(1)  # the counter moves on
    assert digest(twice) == before
    assert digest(make_counters(3)) != before  # the setting is configuration


RATE = 0.1


def tuned(x, halve=False):
    global RATE
    if halve:
        RATE = RATE / 2
    return x * RATE


def test_a_global_setting_the_function_may_assign_stays_keyed(tmp_path: Path, monkeypatch):
    """Keying only the variables a stage reads but never assigns missed an edit of a
    module-level setting that one branch of the stage changes (0.1 -> 0.001 loaded the
    result made with 0.1)."""

    def digest() -> str:
        return Fingerprinter(tmp_path).fingerprint(tuned)[0]

    before = digest()
    monkeypatch.setattr(sys.modules[__name__], "RATE", 0.001)
    assert digest() != before


# -- the cache folder of a live manager ---------------------------------------------------


def test_a_live_managers_cache_folder_exists_from_the_start(lab: Path):
    manager = assay.ArtifactManager("t", project_root=lab)
    assert Path(manager.cache_path).is_dir()


@pytest.mark.parametrize("option", ["dry", "dry_cache"])
def test_a_manager_that_writes_nothing_creates_no_cache_folder(lab: Path, option: str):
    manager = assay.ArtifactManager("t", project_root=lab, **{option: True})
    assert not Path(manager.cache_path).exists()
