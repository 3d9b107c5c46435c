"""The engine through the Python API: planning, caching decisions, cachers, provenance.

Most tests run the experiments of ``tests/resources/projects/basic`` (see
``conftest.py``) with :func:`assay.run_experiment` and read what happened from
the returned manager, the cache folder, the run store, and ``calls.txt`` (the
stages that really executed).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import assay
from assay.caching import (
    Cacheable,
    FileReferenceCacher,
    JsonCacher,
    NumpyCacher,
    PandasCacher,
    PandasCsvCacher,
    PandasJsonCacher,
    PandasParquetCacher,
    PathRef,
    PickleCacher,
)
from assay.config import ProjectConfig
from assay.errors import (
    CacheError,
    CorruptArtifactError,
    InputSignatureError,
    ParameterError,
    StageFailed,
)
from assay.hashing import file_checksum
from assay.plan import MISSING
from assay.project import load_experiment
from assay.store import RunStore
from conftest import Calls, edit, run_cli

DIAMOND = [
    *(f"{stage}:{p}" for p in ("a", "b") for stage in ("load", "double", "square", "combine")),
    "summarize:aggregate",
]
"""Every stage run of the ``diamond`` experiment with its two parameter sets."""


# -- helpers ------------------------------------------------------------------------------


def run(root: Path, experiment: str = "diamond", *param_files: str, **options: Any):
    return assay.run_experiment(experiment, list(param_files), project_root=root, **options)


def node_of(manager, stage: str, param_set: str):
    (node,) = [
        n for n in manager.plan.nodes if n.spec.name == stage and n.record_label == param_set
    ]
    return node


def record_of(manager, name: str):
    (record,) = [r for r in manager.records if r.name == name]
    return record


def statuses(manager) -> dict[str, str]:
    return {f"{n.spec.name}:{n.record_label}": n.status for n in manager.plan.nodes}


def by_status(manager, status: str) -> list[str]:
    return sorted(
        f"{n.spec.name}:{n.record_label}" for n in manager.plan.nodes if n.status == status
    )


def loaded(manager) -> list[str]:
    return sorted(f"{a.name}:{a.node.record_label}" for a in manager.runner.loaded)


def import_experiment(root: Path, name: str):
    return load_experiment(name, ProjectConfig.load(root))


def snapshot(root: Path) -> dict[str, str]:
    """Every file of a project (but bytecode and calls.txt) with a hash of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.name != "calls.txt"
    }


def sidecars(root: Path) -> list[Path]:
    cache = root / "data" / "cache"
    return sorted(cache.rglob("*.meta.json")) if cache.exists() else []


# -- deciding what runs -------------------------------------------------------------------


def test_first_run_executes_every_stage_and_keeps_the_values(tmp_project: Path, calls: Calls):
    manager = run(tmp_project)

    assert sorted(calls.take()) == sorted(DIAMOND)
    assert by_status(manager, "executed") == sorted(DIAMOND)
    a, b = record_of(manager, "a"), record_of(manager, "b")
    assert a.state["data"] == [0, 1, 2]
    assert a.state["doubled"] == [0, 2, 4]
    assert a.state["squared"] == [0, 1, 4]
    assert a.state["combined"] == {"sum": 11, "n": 3}
    assert b.state["combined"] == {"sum": 32, "n": 3}
    assert record_of(manager, "aggregate").state["summary"] == {"a": 11, "b": 32}
    assert manager.runner.loaded == []


def test_a_rerun_executes_nothing_and_loads_nothing(tmp_project: Path, calls: Calls):
    run(tmp_project)
    calls.take()

    manager = run(tmp_project)

    assert calls.take() == []
    assert by_status(manager, "cached") == sorted(DIAMOND)
    assert manager.runner.loaded == []
    for record in manager.records:
        for name in dict.keys(record.state):
            assert not record.state.is_loaded(name), (record.name, name)
    # Reading a value afterwards loads it from the cache, and only it.
    assert record_of(manager, "b").state["combined"] == {"sum": 32, "n": 3}
    assert loaded(manager) == ["combined:b"]


def test_a_stage_that_executes_loads_only_the_inputs_it_needs(tmp_project: Path, calls: Calls):
    run(tmp_project)
    calls.take()

    manager = run(tmp_project, overwrite_stages=["combine"])

    assert sorted(calls.take()) == ["combine:a", "combine:b", "summarize:aggregate"]
    assert loaded(manager) == ["doubled:a", "doubled:b", "squared:a", "squared:b"]
    a = record_of(manager, "a")
    assert not a.state.is_loaded("data")
    assert a.state.is_loaded("combined")


def test_editing_a_stage_recomputes_it_and_its_downstream_only(tmp_project: Path, calls: Calls):
    run(tmp_project)
    calls.take()
    edit(
        tmp_project / "experiments" / "diamond.py",
        "return [2 * x for x in data]",
        "return [3 * x for x in data]",
    )

    manager = run(tmp_project)

    recomputed = ["combine:a", "combine:b", "double:a", "double:b", "summarize:aggregate"]
    assert sorted(calls.take()) == recomputed
    assert by_status(manager, "executed") == recomputed
    assert by_status(manager, "cached") == ["load:a", "load:b", "square:a", "square:b"]
    assert loaded(manager) == ["data:a", "data:b", "squared:a", "squared:b"]
    assert record_of(manager, "aggregate").state["summary"] == {"a": 14, "b": 38}


def test_comment_docstring_and_layout_edits_recompute_nothing(tmp_project: Path, calls: Calls):
    run(tmp_project)
    calls.take()
    experiment = tmp_project / "experiments" / "diamond.py"
    edit(experiment, '"""Fan-out', '# A new first line moves every function down.\n"""Fan-out')
    edit(experiment, '"""Make the numbers."""', '"""Make the numbers (now documented better)."""')
    edit(
        experiment,
        '    note(record, "double")\n',
        '    # Only a comment was added here.\n    note(record, "double")\n',
    )
    edit(experiment, "return [x * x for x in data]", "return [x*x  for x in data]  # same")

    manager = run(tmp_project)

    assert calls.take() == []
    assert by_status(manager, "cached") == sorted(DIAMOND)


def test_a_parameter_change_recomputes_only_the_sets_whose_hash_changed(
    tmp_project: Path, calls: Calls
):
    run(tmp_project, "diamond", "two")
    calls.take()
    edit(
        tmp_project / "params" / "two.py", 'Params(name="b", scale=2)', 'Params(name="b", scale=3)'
    )

    manager = run(tmp_project, "diamond", "two")

    changed = ["combine:b", "double:b", "load:b", "square:b", "summarize:aggregate"]
    assert sorted(calls.take()) == changed
    assert by_status(manager, "cached") == ["combine:a", "double:a", "load:a", "square:a"]
    assert record_of(manager, "aggregate").state["summary"] == {"a": 11, "b": 63}


def test_a_field_left_out_of_the_hash_recomputes_nothing(tmp_project: Path, calls: Calls):
    run(tmp_project, "diamond", "two")
    calls.take()
    edit(
        tmp_project / "params" / "two.py",
        'Params(name="b", scale=2)',
        'Params(name="b", scale=2, workers=8)',
    )

    manager = run(tmp_project, "diamond", "two")

    assert calls.take() == []
    assert record_of(manager, "b").params.workers == 8
    assert by_status(manager, "cached") == sorted(DIAMOND)


DATA_FILE_EXPERIMENT = """
from dataclasses import dataclass, field

import assay
from assay.caching import JsonCacher
from assay.hashing import file_checksum


@dataclass
class Params(assay.ExperimentParameters):
    raw: str = field(default="raw.csv", metadata={"hash": file_checksum})
    scale: int = 1


@assay.stage(outputs=["total"], cachers=[JsonCacher])
def total(record):
    with open(record.params.raw) as handle:
        return sum(int(line) for line in handle) * record.params.scale


def get_params():
    return [Params(name="a"), Params(name="b", scale=2)]


def run(param_sets, manager):
    return [total(assay.Record(manager, p)).state["total"] for p in param_sets]
"""


def test_a_data_file_named_by_a_parameter_hashed_by_its_content_recomputes_when_it_changes(
    tmp_project: Path, monkeypatch
):
    """The remedy docs/invalidation.md gives for data files a stage opens."""
    (tmp_project / "experiments" / "totals.py").write_text(DATA_FILE_EXPERIMENT)
    (tmp_project / "raw.csv").write_text("1\n2\n")
    monkeypatch.chdir(tmp_project)
    assert run(tmp_project, "totals").results == [3, 6]
    assert by_status(run(tmp_project, "totals"), "cached") == ["total:a", "total:b"]

    (tmp_project / "raw.csv").write_text("1\n2\n3\n")
    said = run_cli("why", "totals", cwd=tmp_project).text

    assert "a parameter it reads changed: raw 'raw.csv' (hashed as '" in said
    assert run(tmp_project, "totals").results == [6, 12]


def test_overwrite_recomputes_everything(tmp_project: Path, calls: Calls):
    run(tmp_project)
    calls.take()

    manager = run(tmp_project, overwrite=True)

    assert sorted(calls.take()) == sorted(DIAMOND)
    assert by_status(manager, "executed") == sorted(DIAMOND)


def test_overwrite_stages_recomputes_the_named_stages_and_what_uses_them(
    tmp_project: Path, calls: Calls
):
    """What uses a recomputed output is recomputed too: its key (made of the upstream
    keys) stays the same, its input may not (a data file read again, a random draw)."""
    run(tmp_project)
    calls.take()

    manager = run(tmp_project, overwrite_stages=["double", "square"])

    assert sorted(calls.take()) == [
        "combine:a", "combine:b", "double:a", "double:b", "square:a", "square:b",
        "summarize:aggregate",
    ]  # fmt: skip
    assert node_of(manager, "load", "a").status == "cached"
    assert "--overwrite-stage double" in node_of(manager, "combine", "a").reason
    assert loaded(manager) == ["data:a", "data:b"]

    calls.take()
    run(tmp_project, overwrite_stages=["summarize"])
    assert calls.take() == ["summarize:aggregate"]


def test_a_parameter_set_with_overwrite_true_recomputes_itself_and_what_uses_it(
    tmp_project: Path, calls: Calls
):
    run(tmp_project)
    calls.take()
    Params = import_experiment(tmp_project, "diamond").Params

    run(
        tmp_project,
        param_sets=[Params(name="a", scale=1), Params(name="b", scale=2, overwrite=True)],
    )

    # Set a is not recomputed; the aggregate over both uses what b recomputed.
    assert sorted(calls.take()) == [
        "combine:b", "double:b", "load:b", "square:b", "summarize:aggregate"
    ]  # fmt: skip


def test_a_dry_run_executes_nothing_and_writes_nothing(tmp_project: Path, calls: Calls):
    before = snapshot(tmp_project)

    manager = run(tmp_project, dry=True)

    assert by_status(manager, "run") == sorted(DIAMOND)
    assert calls.take() == []
    assert manager.run_info is None
    assert snapshot(tmp_project) == before
    assert not (tmp_project / "assay.db").exists()
    assert sidecars(tmp_project) == []


def test_a_dry_run_after_a_run_sees_the_cache_and_records_no_run(tmp_project: Path, calls: Calls):
    first = run(tmp_project)
    calls.take()
    before = snapshot(tmp_project)

    manager = run(tmp_project, dry=True)

    assert by_status(manager, "cached") == sorted(DIAMOND)
    assert calls.take() == []
    assert manager.runner.loaded == []
    assert snapshot(tmp_project) == before
    with RunStore(tmp_project / "assay.db") as store:
        assert [r.number for r in store.list_runs()] == [first.run_number]


def test_dry_cache_executes_but_never_writes_the_cache(tmp_project: Path, calls: Calls):
    manager = run(tmp_project, dry_cache=True)

    assert sorted(calls.take()) == sorted(DIAMOND)
    assert record_of(manager, "aggregate").state["summary"] == {"a": 11, "b": 32}
    assert sidecars(tmp_project) == []
    assert not (tmp_project / "data" / "cache" / "by-name").exists()

    run(tmp_project)  # nothing was cached, so everything executes again
    assert sorted(calls.take()) == sorted(DIAMOND)
    cached = snapshot(tmp_project)

    manager = run(tmp_project, dry_cache=True)
    assert calls.take() == []
    assert by_status(manager, "cached") == sorted(DIAMOND)
    after = snapshot(tmp_project)
    assert {k: v for k, v in after.items() if "cache" in k} == {
        k: v for k, v in cached.items() if "cache" in k
    }


# -- lazy outputs -------------------------------------------------------------------------


def test_a_lazy_value_is_dropped_from_memory_and_read_back_from_the_cache(
    tmp_project: Path, calls: Calls
):
    manager = run(tmp_project, "lazy")

    for name, size in (("small", 3), ("large", 5)):
        artifact = node_of(manager, "make_big", name).outputs[0]
        assert artifact.value is MISSING
        record = record_of(manager, name)
        assert not record.state.is_loaded("big")
        assert record.state["big"] == {"owner": name, "values": list(range(size))}
        assert not record.state.is_loaded("big"), "a lazy value must not stay in memory"
        assert record.state["total"] == sum(range(size))


def test_lazy_outputs_a_run_computes_are_recorded_as_computed(tmp_project: Path):
    """A lazy output is read back after its stage saved it: it was recorded as reused."""
    manager = run(tmp_project, "lazy")

    with RunStore(tmp_project / "assay.db") as store:
        actions = {(a.param_set, a.name): a.action for a in store.artifacts(manager.run_id)}
    assert set(actions.values()) == {"computed"}, actions
    report = json.loads((tmp_project / "logs" / f"{manager.run_id}.json").read_text())
    assert "reused" not in json.dumps(report), report


def test_each_record_gets_its_own_lazy_value_in_an_aggregate(tmp_project: Path, calls: Calls):
    manager = run(tmp_project, "lazy")

    assert record_of(manager, "aggregate").state["owners"] == {
        "small": "small",
        "large": "large",
    }
    small, large = record_of(manager, "small"), record_of(manager, "large")
    assert dict.__getitem__(small.state, "big") is not dict.__getitem__(large.state, "big")
    assert small.state["blob"] is not large.state["blob"]

    # And again when the aggregate re-executes from cached lazy values.
    calls.take()
    manager = run(tmp_project, "lazy", overwrite_stages=["owners"])
    assert calls.take() == ["owners:aggregate"]
    assert record_of(manager, "aggregate").state["owners"] == {
        "small": "small",
        "large": "large",
    }


def test_lazy_with_resolve_false_gives_the_lazy_object(tmp_project: Path, calls: Calls):
    manager = run(tmp_project, "lazy")

    small = record_of(manager, "small")
    assert small.state["blob_info"] == {"type": "Lazy", "loaded": ["blob of", "small"]}
    handle = small.state["blob"]
    assert isinstance(handle, assay.Lazy)
    assert handle.load() == ["blob of", "small"]
    assert record_of(manager, "large").state["blob"].load() == ["blob of", "large"]

    # A consumer that re-executes from the cache gets a Lazy too.
    calls.take()
    manager = run(tmp_project, "lazy", overwrite_stages=["inspect_blob"])
    assert sorted(calls.take()) == ["inspect_blob:large", "inspect_blob:small"]
    assert record_of(manager, "large").state["blob_info"] == {
        "type": "Lazy",
        "loaded": ["blob of", "large"],
    }


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"dry_cache": True}, id="dry-cache"),
        pytest.param({"dry_cache": True, "parallel": 2}, id="dry-cache-parallel"),
        pytest.param({"parallel": 2}, id="parallel"),
    ],
)
def test_a_resolve_false_input_is_a_lazy_whatever_the_cache_holds(tmp_project: Path, options: dict):
    """The stage gets a ``Lazy`` on a first run, from the cache, and when nothing is
    written (``--dry-cache`` kept the value in memory and handed the value itself)."""
    for overwrite in ([], ["inspect_blob"]):
        manager = run(tmp_project, "lazy", overwrite_stages=overwrite, **options)
        for name in ("small", "large"):
            record = record_of(manager, name)
            assert record.state["blob_info"] == {"type": "Lazy", "loaded": ["blob of", name]}
            handle = record.state["blob"]
            assert isinstance(handle, assay.Lazy) and handle.load() == ["blob of", name]
            assert (handle.cacher is None) == bool(options.get("dry_cache"))


def test_ignore_lazy_gives_the_value_of_a_resolve_false_output_from_the_cache_too(
    tmp_project: Path,
):
    run(tmp_project, "lazy")  # cached as a Lazy
    manager = run(tmp_project, "lazy", ignore_lazy=True, overwrite_stages=["inspect_blob"])

    assert record_of(manager, "small").state["blob_info"] == {
        "type": "list",
        "loaded": ["blob of", "small"],
    }
    assert record_of(manager, "small").state["blob"] == ["blob of", "small"]


@pytest.mark.parametrize(
    "first, parallel",
    [({"ignore_lazy": True}, 0), ({}, 0), ({"ignore_lazy": True}, 2)],
    ids=["ignore-first", "plain-first", "ignore-first-parallel"],
)
def test_a_stage_given_a_value_instead_of_a_handle_is_not_taken_from_the_other_runs_cache(
    tmp_project: Path, calls: Calls, first: dict, parallel: int
):
    """``--ignore-lazy`` gives ``inspect_blob`` its input's value where it otherwise gets a
    handle; what it computed one way was reused the other way ("9 cached"), so its
    ``blob_info`` said ``list`` in a run that handed a ``Lazy``, and the other way round."""
    second = ({} if first else {"ignore_lazy": True}) | {"parallel": parallel}
    first = first | {"parallel": parallel}
    run(tmp_project, "lazy", **first)
    calls.take()

    manager = run(tmp_project, "lazy", **second)

    assert sorted(calls.take()) == ["inspect_blob:large", "inspect_blob:small"]
    shown = "list" if second.get("ignore_lazy") else "Lazy"
    assert record_of(manager, "small").state["blob_info"]["type"] == shown
    calls.take()
    run(tmp_project, "lazy", **first)  # each way keeps its own entry
    assert calls.take() == []


def test_ignore_lazy_keeps_lazy_values_in_memory(tmp_project: Path):
    manager = run(tmp_project, "lazy", ignore_lazy=True)

    artifact = node_of(manager, "make_big", "small").outputs[0]
    assert artifact.value == {"owner": "small", "values": [0, 1, 2]}
    assert record_of(manager, "small").state["blob_info"] == {
        "type": "list",
        "loaded": ["blob of", "small"],
    }


# -- aggregates, copies, procedures, keyword inputs -----------------------------------------


def test_aggregates_with_and_without_explicit_records(tmp_project: Path, calls: Calls):
    manager = run(tmp_project, "aggregates")

    everything, first_two = manager.results["all"], manager.results["first_two"]
    assert everything.state["scores"] == [["x", 10], ["y", 20], ["z", 30]]
    assert first_two.state["scores"] == [["x", 10], ["y", 20]]
    assert [r.name for r in first_two.input_records] == ["x", "y"]
    keys = {n.key for n in manager.plan.nodes if n.spec.name == "collect"}
    assert len(keys) == 2

    calls.take()
    manager = run(tmp_project, "aggregates")
    assert calls.take() == []
    assert manager.results["first_two"].state["scores"] == [["x", 10], ["y", 20]]


def test_an_uncached_stage_whose_consumers_are_cached_is_unneeded_and_no_output_stages_run(
    tmp_project: Path, calls: Calls
):
    first = run(tmp_project, "nocacher")
    assert calls.take() == ["source:one", "process:one", "announce:one"]
    assert by_status(first, "executed") == ["announce:one", "process:one", "source:one"]

    manager = run(tmp_project, "nocacher")

    assert calls.take() == ["announce:one"]
    assert node_of(manager, "source", "one").status == "unneeded"
    assert node_of(manager, "process", "one").status == "cached"
    assert node_of(manager, "announce", "one").status == "executed"
    assert loaded(manager) == ["processed:one"]


PARTLY_CACHED = """
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["model", "metrics"], cachers=[None, JsonCacher])
def train(record):
    note(record, "train")
    return [record.params.n], {"score": record.params.n * 2}


@assay.stage(inputs=["metrics"], outputs=["summary"], cachers=[JsonCacher])
def summarize(record, metrics):
    note(record, "summarize")
    return "score " + str(metrics["score"])


@assay.stage(inputs=["model"], outputs=["prediction"], cachers=[JsonCacher])
def predict(record, model):
    note(record, "predict")
    return model[0] + 1


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        predict(summarize(train(record)))
"""


@pytest.mark.parametrize("parallel", [0, 2], ids=["serial", "parallel"])
def test_a_stage_that_caches_some_outputs_runs_only_for_the_one_it_does_not_cache(
    tmp_project: Path, calls: Calls, parallel: int
):
    """It was never looked up: editing a stage that reads only its cached output ran it."""
    experiment = tmp_project / "experiments" / "partly.py"
    experiment.write_text(PARTLY_CACHED)
    run(tmp_project, "partly", parallel=parallel)
    assert sorted(calls.take()) == ["predict:a", "summarize:a", "train:a"]

    edit(experiment, '"score " + str(', '"Score: " + str(')
    manager = run(tmp_project, "partly", parallel=parallel)

    assert calls.take() == ["summarize:a"]  # its metrics come from the cache
    assert node_of(manager, "train", "a").status == "unneeded"
    assert record_of(manager, "a").state["summary"] == "Score: 6"
    with RunStore(tmp_project / "assay.db") as store:
        reused = [a.name for a in store.artifacts(manager.run_info.id) if a.action == "reused"]
    assert sorted(reused) == ["metrics", "prediction"]

    edit(experiment, "return model[0] + 1", "return model[0] + 2")
    manager = run(tmp_project, "partly", parallel=parallel)

    assert sorted(calls.take()) == ["predict:a", "train:a"]  # the model is made anew
    assert record_of(manager, "a").state["prediction"] == 5


PARTLY_CACHED_SETTER = """
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


@assay.stage(outputs=["big", "small"], cachers=[None, JsonCacher])
def first(record):
    note(record, "first")
    record.state["x"] = record.params.seed * 10
    return [1, 2, 3], record.params.seed


@assay.stage(inputs=["small", "x"], outputs=["both"], cachers=[JsonCacher])
def second(record, small, x):
    note(record, "second")
    return [small, x]


def get_params():
    return [Params(name="a", seed=1)]


def run(param_sets, manager):
    for params in param_sets:
        second(first(assay.Record(manager, params)))
"""


def test_a_partly_cached_stage_that_sets_state_by_hand_is_not_run_again_for_it(
    tmp_project: Path, calls: Calls
):
    """Its hand-set values were restored only for stages found cached, so the stage after
    it waited for it, which made it run on every run; --dry and `why` said so too."""
    (tmp_project / "experiments" / "setter.py").write_text(PARTLY_CACHED_SETTER)
    run(tmp_project, "setter")
    assert sorted(calls.take()) == ["first:a", "second:a"]

    said = run_cli("run", "setter", "--dry", cwd=tmp_project).text
    manager = run(tmp_project, "setter")

    assert "0 to execute, 1 cached, 1 not needed." in said, said
    assert calls.take() == []
    assert record_of(manager, "a").state["both"] == [1, 10]


COPY_TAKES_HAND_SET = """
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


@assay.stage(outputs=["o1"], cachers=[JsonCacher])
def first(record):
    note(record, "first")
    record.state["x"] = record.params.seed * 10
    return record.params.seed


@assay.stage(inputs=["o1", "x"], outputs=["o2"], cachers=[JsonCacher])
def second(record, o1, x):
    note(record, "second")
    return o1 + x


def get_params():
    return [Params(name="a", seed=1)]


def run(param_sets, manager):
    for params in param_sets:
        second(first(assay.Record(manager, params)).make_copy())
"""


@pytest.mark.parametrize("parallel", [0, 2], ids=["serial", "parallel"])
def test_a_copy_taking_what_a_cached_stage_put_in_the_state_is_reused(
    tmp_project: Path, calls: Calls, parallel: int
):
    """The copy got the value only as its stage was about to execute, after its key had
    been looked up without it: a serial run executed it every time."""
    (tmp_project / "experiments" / "copying.py").write_text(COPY_TAKES_HAND_SET)
    run(tmp_project, "copying", parallel=parallel)
    assert sorted(calls.take()) == ["first:a", "second:a"]

    manager = run(tmp_project, "copying", parallel=parallel)

    assert calls.take() == []
    assert [n.status for n in manager.plan.nodes] == ["cached", "cached"]


def test_make_copy_branches_a_record(tmp_project: Path, calls: Calls):
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("copies", project_root=tmp_project)
    original = diamond.load(assay.Record(manager, diamond.Params(name="a")))

    branch = original.make_copy(diamond.Params(name="a3", scale=3))
    diamond.double(branch)
    hidden = original.make_copy(add_to_manager=False)

    assert branch.params.name == "a3"
    assert branch.state["doubled"] == [0, 2, 4]  # from the original's data
    assert "doubled" not in original.state
    assert dict.__getitem__(branch.state, "data") is dict.__getitem__(original.state, "data")
    assert branch.state["data"] == original.state["data"]
    assert branch.state["data"] is not original.state["data"]  # its own copy
    assert branch.input_records == [original]
    assert branch in manager.records
    assert hidden not in manager.records
    assert calls.take() == ["load:a", "double:a3"]


BRANCHES = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    extra: int = 0


@assay.stage(None, ["items"], [PickleCacher])
def make_items(record):
    record.state["side"] = 41  # by hand, once the stage runs (after make_copy is planned)
    return [1, 2, 3]


@assay.stage(["items"], ["total"], [JsonCacher])
def add_and_sum(record, items):
    items.append(record.params.extra)  # changes its input in place
    return sum(items)


@assay.stage(None, ["seen"], [JsonCacher])
def peek(record):
    return list(record.state["note"]) + [record.state.get("side")]


def get_params():
    return [Params(name="base"), Params(name="ten", extra=10), Params(name="hundred", extra=100)]


def run(param_sets, manager):
    common = make_items(assay.Record(manager, param_sets[0]))
    common.state["note"] = ["n"]
    for params in param_sets:
        branch = common.make_copy(params)
        branch.state["note"].append(params.name)
        add_and_sum(branch)
        peek(branch)
"""


@pytest.mark.parametrize("options", [{}, {"parallel": 2}], ids=["serial", "process"])
def test_copies_of_a_record_do_not_share_what_their_stages_change(tmp_project: Path, options: dict):
    """As in Curifactory, each branch of ``make_copy`` gets its own values: a stage that
    appends to its input changed the other branches' input (totals 6, 16, 116), and the
    wrong total was cached; a parallel run gave 106. What the original's stage put in the
    state by hand reaches the copies too (it was missing: the copy was made while the run
    was planned, before the stage ran)."""
    (tmp_project / "experiments" / "branches.py").write_text(BRANCHES)
    manager = assay.run_experiment("branches", project_root=tmp_project, **options)

    totals = {r.name: r.state["total"] for r in manager.records if "total" in r.state}
    assert totals == {"base": 6, "ten": 16, "hundred": 106}
    seen = {r.name: r.state["seen"] for r in manager.records if "seen" in r.state}
    assert seen == {
        "base": ["n", "base", 41],
        "ten": ["n", "ten", 41],
        "hundred": ["n", "hundred", 41],
    }


MUTATED_FIRST = (
    BRANCHES[: BRANCHES.index("def run(")]
    + """def run(param_sets, manager):
    common = make_items(assay.Record(manager, Params(name="first", extra=1000)))
    branches = [common.make_copy(params) for params in param_sets]
    add_and_sum(common)  # appends 1000 to its items, before the branches use them
    for branch in branches:
        add_and_sum(branch)
"""
)


@pytest.mark.parametrize(
    ("options", "cacher"),
    [
        ({}, "PickleCacher"),
        ({"parallel": 2}, "PickleCacher"),
        ({}, "None"),
        ({"parallel": 2}, "None"),
        ({"dry_cache": True}, "PickleCacher"),
    ],
    ids=["serial", "process", "serial-no-cacher", "process-no-cacher", "dry-cache"],
)
def test_a_copy_sees_its_inputs_as_they_were_at_the_copy(
    tmp_project: Path, options: dict, cacher: str
):
    """The original's stage changed the list in place before the copies' stages ran: a
    serial run gave them the changed list (as it was then), a parallel run (each stage
    loading its input from the cache, or sent it) the list as it was made."""
    text = MUTATED_FIRST.replace('@assay.stage(None, ["items"], [PickleCacher])',
                                 f'@assay.stage(None, ["items"], [{cacher}])')  # fmt: skip
    (tmp_project / "experiments" / "mutated.py").write_text(text)
    manager = assay.run_experiment("mutated", project_root=tmp_project, **options)

    totals = {r.name: r.state["total"] for r in manager.records if "total" in r.state}
    assert totals == {"first": 1006, "base": 6, "ten": 16, "hundred": 106}


REPLACED = """
import assay
from assay.caching import JsonCacher


@assay.stage(None, ["a"], [JsonCacher])
def bump(record):
    record.state["counter"] = record.state["counter"] + 1
    return 1


@assay.stage(None, ["seen"], [JsonCacher])
def peek(record):
    return record.state["counter"]


def get_params():
    return [assay.ExperimentParameters(name="base")]


def run(param_sets, manager):
    record = assay.Record(manager, param_sets[0])
    record.state["counter"] = 0
    bump(record)
    copy = record.make_copy(assay.ExperimentParameters(name="copy"))
    peek(copy)
"""


@pytest.mark.parametrize("options", [{}, {"parallel": 2}], ids=["serial", "process"])
def test_a_copy_sees_a_value_a_stage_put_in_again_before_the_copy(tmp_project: Path, options):
    """``run()`` put 0 in, the stage 1, then the copy was made: the copy saw 0."""
    (tmp_project / "experiments" / "replaced.py").write_text(REPLACED)
    manager = assay.run_experiment("replaced", project_root=tmp_project, **options)

    assert [r.state["seen"] for r in manager.records if "seen" in r.state] == [1]


def test_copies_cost_nothing_until_used_and_chains_of_them_stay_small(tmp_project: Path):
    """A value in the state was deep-copied into every copy at once (100 copies of a
    20 MB array: 2 GB), and each copy of a copy waited on all its ancestors' stage runs
    (planning a chain of 3,000 took 20 s instead of 0.2 s)."""
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("copies", project_root=tmp_project, dry=True)
    original = diamond.load(assay.Record(manager, diamond.Params(name="a")))
    original.state["big"] = [0] * 1000

    copies = [original.make_copy(diamond.Params(name=f"c{i}")) for i in range(3)]
    assert all(dict.__getitem__(c.state, "big") is original.state["big"] for c in copies)
    assert copies[0].state["big"] == original.state["big"]
    assert dict.__getitem__(copies[0].state, "big") is not original.state["big"]  # read: copied

    record = original
    for i in range(50):
        record = diamond.double(record.make_copy(diamond.Params(name=f"chain{i}")))
    assert len(record._copied_after) == 1
    assert max(len(n.after) for n in manager.plan.nodes) == 1


def test_experiments_in_a_subfolder_are_named_by_their_module_path(tmp_project: Path):
    """``subexp.first`` and ``subexp.second`` were both named ``subexp`` (the path's
    "stem"), so their runs and cached results were listed as one experiment's."""
    sub = tmp_project / "experiments" / "subexp"
    sub.mkdir()
    for name in ("first", "second"):
        shutil.copy(tmp_project / "experiments" / "nocacher.py", sub / f"{name}.py")

    names = [
        assay.run_experiment(ref, project_root=tmp_project, report=False).experiment_name
        for ref in ("subexp.first", "subexp.second", str(sub / "first.py"), "nocacher")
    ]

    assert names == ["subexp.first", "subexp.second", "subexp.first", "nocacher"]
    with RunStore(tmp_project / "assay.db") as store:
        assert sorted(run.experiment for run in store.list_runs()) == sorted(names)


PARTIAL = """
from dataclasses import dataclass

import assay
from assay.caching import PickleCacher

CALLS = __file__ + ".calls"  # what really ran (a module list would be keyed by value)


def note(what):
    with open(CALLS, "a") as log:
        log.write(what + "\\n")


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1000


@assay.stage([], ["expensive", "cheap"], [PickleCacher] * 2)
def make_pair(record):
    kept = record.stage_cachers[0]
    if kept.check():
        expensive = kept.load()
    else:
        note("expensive")
        expensive = sum(range(record.params.n))
    note("cheap")
    return expensive, "ready"


def run(param_sets, manager):
    for params in param_sets:
        make_pair(assay.Record(manager, params))
"""


def test_a_stage_may_use_its_own_cachers_to_reuse_one_output(tmp_project: Path):
    """Curifactory's partial caching: ``record.stage_cachers[i].check()`` and ``.load()``
    inside the stage find what an earlier run kept (they said the cacher had "no place to
    write yet")."""
    (tmp_project / "experiments" / "partial.py").write_text(PARTIAL)
    partial = import_experiment(tmp_project, "partial")

    def run():
        manager = assay.ArtifactManager("partial", project_root=tmp_project)
        return partial.make_pair(assay.Record(manager, partial.Params(name="p")))

    def calls():
        return Path(partial.CALLS).read_text().split()

    assert run().state["expensive"] == 499500
    assert calls() == ["expensive", "cheap"]
    (cheap,) = (tmp_project / "data" / "cache").rglob("cheap.pkl")
    cheap.unlink()

    again = run()

    assert again.state["expensive"] == 499500 and again.state["cheap"] == "ready"
    assert calls() == ["expensive", "cheap", "cheap"]
    assert run().state["cheap"] == "ready" and len(calls()) == 3  # all cached now


OWN_FILES = """
import json
import os
from pathlib import Path

import assay
from assay.caching import FileReferenceCacher, PathRef


@assay.stage(outputs=["folder"], cachers=[PathRef])
def export(record):
    path = record.get_path("folder")
    os.makedirs(path, exist_ok=True)
    Path(path, "0.txt").write_text("x")
    return path


@assay.stage(outputs=["files"], cachers=[FileReferenceCacher])
def write_files(record):
    path = Path(record.get_dir("tables")) / "0.json"
    path.write_text(json.dumps({"i": 0}))
    return [str(path)]


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        export(record)
        write_files(record)
"""


def test_dry_cache_writes_nothing_into_the_cache_even_files_stages_write_themselves(
    tmp_project: Path,
):
    """``record.get_path``/``get_dir`` gave folders in the cache, and a ``PathRef`` stage
    that executed dropped its cached entry's sidecar, under "never write the cache"."""
    (tmp_project / "experiments" / "own_files.py").write_text(OWN_FILES)
    cache = tmp_project / "data" / "cache"

    dry = assay.run_experiment("own_files", project_root=tmp_project, dry_cache=True)
    assert {n.status for n in dry.plan.nodes} == {"executed"}
    assert not (cache / "objects").exists() or not any((cache / "objects").rglob("*"))
    assert Path(dry.records[0].state["folder"], "0.txt").read_text() == "x"

    assay.run_experiment("own_files", project_root=tmp_project)
    before = snapshot(cache)
    again = assay.run_experiment(
        "own_files", project_root=tmp_project, dry_cache=True, overwrite=True
    )
    assert {n.status for n in again.plan.nodes} == {"executed"}
    assert snapshot(cache) == before
    assert not again.records[0].state["files"][0].startswith(str(cache))


READS_ANOTHER = """
import assay
from assay.caching import JsonCacher


@assay.stage(None, ["done"], [JsonCacher])
def write_a(record):
    with open(record.get_path("out.txt"), "w") as handle:
        handle.write("xyz")
    return True


@assay.stage(["done"], ["size"], [None])
def read_b(record, done):
    with open(record.get_path("out.txt", stage_name="write_a")) as handle:
        return len(handle.read())


def get_params():
    return [assay.ExperimentParameters(name="x")]


def run(param_sets, manager):
    for params in param_sets:
        read_b(write_a(assay.Record(manager, params)))
"""


def test_dry_cache_reads_what_earlier_runs_kept(tmp_project: Path):
    """Under --dry-cache, a stage's own files of a cached stage (``get_path(...,
    stage_name=)``) and a stage's own cachers (partial caching) pointed into the empty
    temporary folder: FileNotFoundError, and the expensive output recomputed."""
    (tmp_project / "experiments" / "reads_another.py").write_text(READS_ANOTHER)
    assay.run_experiment("reads_another", project_root=tmp_project)
    dry = assay.run_experiment("reads_another", project_root=tmp_project, dry_cache=True)
    assert dry.records[0].state["size"] == 3

    (tmp_project / "experiments" / "partial.py").write_text(PARTIAL)
    partial = import_experiment(tmp_project, "partial")
    sets = [partial.Params(name="p")]
    assay.run_experiment("partial", param_sets=sets, project_root=tmp_project)
    for cheap in (tmp_project / "data" / "cache" / "objects").rglob("cheap.*"):
        cheap.unlink()  # its file and sidecar: that output is not cached
    assay.run_experiment("partial", param_sets=sets, project_root=tmp_project, dry_cache=True)
    calls = (tmp_project / "experiments" / "partial.py.calls").read_text().split()
    assert calls == ["expensive", "cheap", "cheap"]


COUNTED = """
from pathlib import Path

import assay
from assay.caching import PickleCacher


@assay.stage(outputs=[assay.Lazy("made", resolve=False)], cachers=[PickleCacher])
def make(record):
    counter = Path(record.manager.config.root) / "made.txt"
    times = len(counter.read_text()) if counter.exists() else 0
    counter.write_text("x" * (times + 1))
    return times + 1


@assay.stage(["made"], ["seen"])
def use(record, made):
    return [made.cacher is None, made.load()]


def get_params():
    return [assay.ExperimentParameters(name="x")]


def run(param_sets, manager):
    for params in param_sets:
        use(make(assay.Record(manager, params)))
"""


@pytest.mark.parametrize("options", [{}, {"parallel": 2}], ids=["serial", "process"])
def test_dry_cache_hands_on_what_the_stage_just_made_not_the_cached_entry(
    tmp_project: Path, options: dict
):
    """Under --dry-cache --overwrite, a ``resolve=False`` output's ``Lazy`` pointed at the
    entry an earlier run cached (``.load()`` gave the old value) instead of the new one."""
    (tmp_project / "experiments" / "counted.py").write_text(COUNTED)
    first = assay.run_experiment("counted", project_root=tmp_project, **options)
    assert first.records[0].state["seen"] == [False, 1]

    dry = assay.run_experiment(
        "counted", project_root=tmp_project, dry_cache=True, overwrite=True, **options
    )

    assert dry.records[0].state["seen"] == [True, 2]  # no cacher: nothing was written
    after = assay.run_experiment("counted", project_root=tmp_project)
    assert after.records[0].state["seen"] == [False, 1]  # the cache still holds the first


def test_dry_cache_workers_write_into_the_runs_temporary_folder_which_goes(
    tmp_project: Path, tmp_path: Path, monkeypatch
):
    """Each worker process left a temporary folder of its own behind, every run."""
    import gc
    import tempfile

    # A temporary folder of this test's own, this process's and the workers' (forked or
    # spawned): other runs on the machine make and remove theirs in the system's meanwhile.
    own = tmp_path / "tmp"
    own.mkdir()
    monkeypatch.setenv("TMPDIR", str(own))
    monkeypatch.setattr(tempfile, "tempdir", str(own))

    def folders():
        return set(own.glob("assay-dry-cache-*"))

    (tmp_project / "experiments" / "own_files.py").write_text(OWN_FILES)
    before = folders()
    manager = assay.run_experiment(
        "own_files", project_root=tmp_project, dry_cache=True, parallel=2
    )
    (made,) = folders() - before
    assert Path(manager.records[0].state["folder"]).is_relative_to(made)
    del manager
    gc.collect()
    assert folders() - before == set()


def test_a_procedure_runs_its_stages_in_order(tmp_project: Path, calls: Calls):
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("procedures", project_root=tmp_project)
    steps = assay.Procedure(
        [diamond.load, diamond.double, diamond.square, diamond.combine], manager
    )

    a = steps.run(diamond.Params(name="a"))
    b = steps.run(diamond.Params(name="b", scale=2))
    summary = assay.Procedure([diamond.summarize], manager, previous_proc=steps).run(None)

    assert steps.records == [a, b]
    assert a.stages == ["load", "double", "square", "combine"]
    assert b.state["combined"] == {"sum": 32, "n": 3}
    assert summary.state["summary"] == {"a": 11, "b": 32}
    assert sorted(calls.take()) == sorted(DIAMOND)


def test_a_keyword_argument_overrides_an_input(tmp_project: Path, calls: Calls):
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("kwargs", project_root=tmp_project)
    record = assay.Record(manager, diamond.Params(name="a"))

    diamond.double(record, data=[5, 6])
    assert record.state["doubled"] == [10, 12]

    other = diamond.double(diamond.load(assay.Record(manager, diamond.Params(name="b"))), data=[1])
    assert other.state["doubled"] == [2]
    assert calls.take() == ["double:a", "load:b", "double:b"]

    again = assay.ArtifactManager("kwargs", project_root=tmp_project)
    same = diamond.double(assay.Record(again, diamond.Params(name="a")), data=[5, 6])
    changed = diamond.double(assay.Record(again, diamond.Params(name="a")), data=[7])
    assert same._nodes[-1].status == "cached"
    assert same.state["doubled"] == [10, 12]
    assert changed._nodes[-1].status == "executed"
    assert changed.state["doubled"] == [14]
    assert calls.take() == ["double:a"]


def test_notebook_use_executes_at_once_and_a_new_manager_reuses_the_cache(
    tmp_project: Path, calls: Calls
):
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("nb", project_root=tmp_project)
    record = assay.Record(manager, diamond.Params(name="a"))

    diamond.load(record)
    assert calls.take() == ["load:a"]
    assert record.state["data"] == [0, 1, 2]
    diamond.combine(diamond.square(diamond.double(record)))
    assert calls.take() == ["double:a", "square:a", "combine:a"]
    assert record.state["combined"] == {"sum": 11, "n": 3}
    diamond.summarize(assay.Record(manager, None))
    assert calls.take() == ["summarize:aggregate"]

    later = assay.ArtifactManager("nb", project_root=tmp_project)
    again = assay.Record(later, diamond.Params(name="a"))
    diamond.combine(diamond.square(diamond.double(diamond.load(again))))
    assert calls.take() == []
    assert [n.status for n in later.plan.nodes] == ["cached"] * 4
    assert later.runner.loaded == []
    assert again.state["combined"] == {"sum": 11, "n": 3}
    assert loaded(later) == ["combined:a"]


# -- a run() that reads its stages' results --------------------------------------------------

READS_RESULTS = {
    "scores": {
        "mid": {"score": 2.0, "collecting": True},
        "long": {"score": 4.0, "collecting": True},
    },
    "best": 20,
}
"""What the ``reads_results`` experiment's run() returns (Curifactory's ``--no-dag`` gives
the same); ``collecting``: the garbage collector was on while the stage ran."""


def test_a_run_that_reads_its_results_while_planned_executes_what_it_needs_first(
    tmp_project: Path, calls: Calls, capsys
):
    manager = run(tmp_project, "reads_results")

    assert manager.results == READS_RESULTS
    assert capsys.readouterr().out.splitlines()[:3] == [
        "short: 2 values", "mid: 3 values", "long: 5 values"
    ]  # fmt: skip
    assert calls.take() == [
        "raw:short", "load:short", "raw:mid", "load:mid", "train:mid", "raw:long",
        "load:long", "train:long", "score:mid", "score:long", "best:aggregate",
    ]  # fmt: skip
    assert set(statuses(manager).values()) == {"executed"}
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == "completed"

    again = run(tmp_project, "reads_results")
    assert again.results == READS_RESULTS
    # raw has no cacher: it runs again where a stage that runs needs it (score), even
    # though the read that found it unneeded came before score was called
    assert calls.take() == ["raw:mid", "score:mid", "raw:long", "score:long"]
    assert by_status(again, "unneeded") == ["raw:short"]
    assert by_status(again, "cached") == [
        "best:aggregate", "load:long", "load:mid", "load:short", "train:long", "train:mid"
    ]  # fmt: skip


def test_the_progress_bar_counts_the_stage_runs_executed_while_run_is_planned(
    tmp_project: Path,
):
    from io import StringIO

    from rich.console import Console

    from assay.cli_output import ProgressObserver

    observer = ProgressObserver(Console(file=StringIO(), force_terminal=True))
    run(tmp_project, "reads_results", observer=observer)  # every stage runs before planned()

    (task,) = observer.progress.tasks
    observer.close()
    assert (task.total, task.completed) == (11, 11)


def test_a_plan_that_executes_nothing_stops_where_run_reads_an_uncached_result(
    tmp_project: Path,
):
    stops = "The plan stops where run() reads 'data' (output of stage 'load' for 'short'), "
    for command in (["run", "reads_results", "--dry"], ["why", "reads_results"],
                    ["run", "reads_results", "--paths"]):  # fmt: skip
        result = run_cli(*command, cwd=tmp_project)
        assert result.code == 0, result
        assert stops + "which is not cached" in result.text, result
        assert "Run the experiment once to plan past it." in result.text
    assert "2 to execute" in run_cli("run", "reads_results", "--dry", cwd=tmp_project).text
    assert not (tmp_project / "calls.txt").exists()  # nothing ran
    assert not (tmp_project / "data" / "cache").exists()  # nothing written
    assert run(tmp_project, "reads_results", dry=True).plan_stops.startswith(stops)
    # a stage the plan did not reach is no unknown stage
    assert run(tmp_project, "reads_results", dry=True, overwrite_stages=["score"]).plan_stops

    run(tmp_project, "reads_results")  # now 'data' comes from the cache; 'score' never does
    planned = run(tmp_project, "reads_results", dry=True)

    assert planned.plan_stops.startswith(
        "The plan stops where run() reads 'score' (output of stage 'score' for 'mid'), which "
        "has no cacher"
    )
    assert by_status(planned, "cached") == [
        "load:long", "load:mid", "load:short", "train:long", "train:mid"
    ]  # fmt: skip
    assert run(tmp_project, "reads_results").plan_stops is None


def test_explain_counts_the_stage_runs_executed_while_run_is_planned(tmp_project: Path):
    assert run_cli("run", "reads_results", cwd=tmp_project).code == 0

    said = run_cli("run", "reads_results", "--explain", cwd=tmp_project).text

    # raw and score have no cacher: they run again, at the reads of 'data' and 'score'
    assert (
        "executed score [mid]: output(s) ['score'] have no cacher (while run() was planned" in said
    )
    assert "4 of 11 stage runs execute." in said


def test_the_dashboards_progress_file_counts_the_stage_runs_executed_while_run_is_planned(
    tmp_project: Path,
):
    from assay.runner import Observer, ProgressFile

    seen: list[tuple[int, int]] = []

    class Watch(Observer):  # what the file holds after each stage run, and when planned
        def planned(self, plan) -> None:
            seen.append((progress.total, progress.done))

        def stage_finished(self, node) -> None:
            seen.append((progress.total, progress.done))

    progress = ProgressFile(tmp_project / "progress.json", Watch())
    try:
        run(tmp_project, "reads_results", observer=progress)
    finally:
        progress.close()

    # Every stage ran at a read, before planning ended; then the total counts them: 11 of 11.
    assert seen[-2:] == [(0, 11), (11, 11)]


def test_overwrite_stage_reaches_stages_called_after_a_read_while_planned(
    tmp_project: Path, calls: Calls
):
    run(tmp_project, "reads_results")
    calls.take()

    manager = run(tmp_project, "reads_results", overwrite_stages=["load"])

    assert manager.results == READS_RESULTS
    assert sorted(calls.take()) == sorted(
        f"{stage}:{name}"
        for stage, names in {
            "raw": ["short", "mid", "long"],
            "load": ["short", "mid", "long"],
            "train": ["mid", "long"],
            "score": ["mid", "long"],
            "best": ["aggregate"],
        }.items()
        for name in names
    )
    assert node_of(manager, "train", "mid").reason == (
        "it uses what --overwrite-stage load recomputes"
    )


# -- assay.load -----------------------------------------------------------------------------


def test_load_finds_an_artifact_by_name_path_and_key(tmp_project: Path):
    manager = run(tmp_project)
    by_name = tmp_project / "data" / "cache" / "by-name" / "diamond"

    assert assay.load(
        "doubled", param_set="a", stage="double", experiment="diamond", project_root=tmp_project
    ) == [0, 2, 4]
    assert assay.load("summary", project_root=tmp_project) == {"a": 11, "b": 32}
    assert assay.load(path=by_name / "b" / "double" / "doubled.pkl", project_root=tmp_project) == [
        0,
        4,
        8,
    ]
    assert assay.load("squared", path=by_name / "b" / "square", project_root=tmp_project) == [
        0,
        4,
        16,
    ]
    key = node_of(manager, "combine", "b").outputs[0].key
    assert assay.load(key=key, project_root=tmp_project) == {"sum": 32, "n": 3}


def test_load_refuses_to_guess_between_several_artifacts(tmp_project: Path):
    run(tmp_project)

    with pytest.raises(CacheError) as info:
        assay.load("doubled", project_root=tmp_project)
    message = str(info.value)
    assert "2 cached artifacts" in message
    assert "parameter set a" in message and "parameter set b" in message

    with pytest.raises(CacheError, match="No cached artifact"):
        assay.load("no_such_output", project_root=tmp_project)


def test_load_with_a_misspelled_name_says_the_name_it_likely_means(tmp_project: Path):
    """ "No cached artifact matches stage='doubel'" said nothing more."""
    run(tmp_project)

    for given, meant in [({"stage": "doubel"}, "stage='double'"),
                         ({"param_set": "aa", "experiment": "diamnd"},
                          "experiment='diamond', param_set='a'")]:  # fmt: skip
        with pytest.raises(CacheError) as info:
            assay.load("doubled", project_root=tmp_project, **given)
        assert str(info.value).endswith(f"Did you mean {meant}?"), info.value
    with pytest.raises(CacheError) as info:
        assay.load("dubled", param_set="a", project_root=tmp_project)
    assert str(info.value).endswith("Did you mean output='doubled'?"), info.value


def test_load_never_unpickles_a_corrupt_file(tmp_project: Path):
    manager = run(tmp_project)
    folder = manager.cache.stage_dir(node_of(manager, "double", "a").key)
    (folder / "doubled.pkl").write_bytes(b"garbage")

    with pytest.raises(CorruptArtifactError, match="doubled"):
        assay.load("doubled", param_set="a", project_root=tmp_project)


# -- cachers: one contract for all ------------------------------------------------------------


@dataclass
class ContractParams(assay.ExperimentParameters):
    seed: int = 7


class TextCacher(Cacheable):
    """A user-written cacher: text in a file, its length kept in the metadata."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("extension", ".txt")
        super().__init__(*args, **kwargs)

    def save(self, obj):
        Path(self.get_path()).write_text(obj)
        self.extra_metadata["length"] = len(obj)

    def load(self):
        text = Path(self.get_path()).read_text()
        if self.extra_metadata.get("length") != len(text):
            raise ValueError(f"extra metadata not restored: {self.extra_metadata}")
        return text


class SiblingCacher(Cacheable):
    """A user-written cacher (as the probe's): a second file named after get_path()'s name
    by string operations, and a writer that adds its own extension (np.save). Both stayed
    under the save's temporary name: the entry was recorded, and every later load failed."""

    def _labels(self):
        return os.path.splitext(self.get_path())[0] + "_labels.json"

    def save(self, obj):
        np.save(self.get_path(), obj["weights"])  # writes get_path() + ".npy"
        Path(self._labels()).write_text(json.dumps(obj["labels"]))

    def load(self):
        labels = json.loads(Path(self._labels()).read_text())
        return {"weights": np.load(self.get_path() + ".npy").tolist(), "labels": labels}


class TaggingCacher(Cacheable):
    """A cacher written for Curifactory: it reads ``self.metadata`` in save() and load()
    under Curifactory's names (it was None in save())."""

    def save(self, obj):
        tags = {k: self.metadata[k] for k in ("params_name", "stage", "artifact_name")}
        Path(self.get_path()).write_text(json.dumps({"tags": tags, "value": obj}))

    def load(self):
        saved = json.loads(Path(self.get_path()).read_text())
        assert saved["tags"]["params_name"] == self.metadata.get("params_name")
        assert self.metadata["cacher_type"] == str(type(self))
        return saved


FRAME = pd.DataFrame(
    {"x": [1, 2, 3], "y": [0.5, 1.25, -2.0], "label": ["p", "q", "r"]},
    index=["i", "j", "k"],
)
SERIES = pd.Series([3, 1, 2], index=["u", "v", "w"], name="counts")


def _same_frame(value, root):
    pd.testing.assert_frame_equal(value, FRAME)


def _same_array(value, root):
    np.testing.assert_array_equal(value, np.arange(12.0).reshape(3, 4))
    assert value.dtype == np.float64


def _write_files(record):
    folder = Path(record.get_dir("texts"))
    paths = []
    for name, text in (("one.txt", "first"), ("two.txt", "second")):
        (folder / name).write_text(text)
        paths.append(str(folder / name))
    return paths


def _check_files(value, root):
    assert [Path(p).name for p in value] == ["one.txt", "two.txt"]
    assert [Path(p).read_text() for p in value] == ["first", "second"]


def _write_in_place(record):
    path = Path(record.get_path("out"))
    path.write_text("written by the stage itself")
    return str(path)


def _check_in_place(value, root):
    assert Path(value).read_text() == "written by the stage itself"


def _check_override(value, root):
    assert value == {"seed": 7}
    assert pickle.loads((root / "exported" / "7" / "make-out.pkl").read_bytes()) == {"seed": 7}


def _check_override_file(value, root):
    assert value == {"seed": 7}
    assert pickle.loads((root / "exported-7-make-out.pkl").read_bytes()) == {"seed": 7}


@dataclass
class CacherCase:
    cacher: Callable[[Path], Any]
    produce: Callable[[Any], Any]
    check: Callable[[Any, Path], None]


def _equals(expected):
    def check(value, root):
        assert value == expected

    return check


CACHER_CASES = {
    "pickle": CacherCase(
        lambda root: PickleCacher,
        lambda record: {"tuple": (1, 2), "set": {3}, "bytes": b"x"},
        _equals({"tuple": (1, 2), "set": {3}, "bytes": b"x"}),
    ),
    "json": CacherCase(
        lambda root: JsonCacher,
        lambda record: {"list": [1, 2], "nested": {"b": "c"}, "f": 0.25},
        _equals({"list": [1, 2], "nested": {"b": "c"}, "f": 0.25}),
    ),
    "pandas-csv": CacherCase(
        lambda root: PandasCacher(format="csv"), lambda record: FRAME, _same_frame
    ),
    "pandas-parquet": CacherCase(
        lambda root: PandasCacher(format="parquet"), lambda record: FRAME, _same_frame
    ),
    "pandas-pickle": CacherCase(
        lambda root: PandasCacher(format="pickle"), lambda record: FRAME, _same_frame
    ),
    "pandas-json": CacherCase(
        lambda root: PandasCacher(format="json"), lambda record: FRAME, _same_frame
    ),
    "pandas-csv-series": CacherCase(
        lambda root: PandasCacher(format="csv"),
        lambda record: SERIES,
        lambda value, root: pd.testing.assert_series_equal(value, SERIES),
    ),
    "pandas-json-series": CacherCase(
        lambda root: PandasJsonCacher,
        lambda record: SERIES,
        lambda value, root: pd.testing.assert_series_equal(value, SERIES),
    ),
    "pandas-parquet-series": CacherCase(
        lambda root: PandasCacher(format="parquet"),
        lambda record: SERIES,
        lambda value, root: pd.testing.assert_series_equal(value, SERIES),
    ),
    "pandas-csv-unnamed-series": CacherCase(
        lambda root: PandasCacher(format="csv"),
        lambda record: SERIES.rename(None),
        lambda value, root: pd.testing.assert_series_equal(value, SERIES.rename(None)),
    ),
    "PandasCsvCacher": CacherCase(lambda root: PandasCsvCacher, lambda record: FRAME, _same_frame),
    "PandasJsonCacher": CacherCase(
        lambda root: PandasJsonCacher, lambda record: FRAME, _same_frame
    ),
    "PandasParquetCacher": CacherCase(
        lambda root: PandasParquetCacher, lambda record: FRAME, _same_frame
    ),
    "numpy": CacherCase(
        lambda root: NumpyCacher,
        lambda record: np.arange(12.0).reshape(3, 4),
        _same_array,
    ),
    "file-reference": CacherCase(lambda root: FileReferenceCacher, _write_files, _check_files),
    "path-ref": CacherCase(lambda root: PathRef, _write_in_place, _check_in_place),
    "custom-cacheable": CacherCase(
        lambda root: TextCacher(),
        lambda record: "some text\nover two lines",
        _equals("some text\nover two lines"),
    ),
    "custom-files-named-after-get-path": CacherCase(
        lambda root: SiblingCacher(),
        lambda record: {"weights": np.arange(3.0), "labels": ["cat", "dog"]},
        _equals({"weights": [0.0, 1.0, 2.0], "labels": ["cat", "dog"]}),
    ),
    "custom-reads-curifactory-metadata": CacherCase(
        lambda root: TaggingCacher(),
        lambda record: 5,
        _equals(
            {"tags": {"params_name": "p", "stage": "make", "artifact_name": "out"}, "value": 5}
        ),
    ),
    "path-override-template": CacherCase(
        lambda root: PickleCacher(
            path_override=str(root / "exported" / "{params.seed}" / "{stage}-{name}.pkl")
        ),
        lambda record: {"seed": record.params.seed},
        _check_override,
    ),
    "path-override-file-name": CacherCase(
        lambda root: PickleCacher(
            path_override=str(root / "exported-{params.seed}-{stage}-{name}.pkl")
        ),
        lambda record: {"seed": record.params.seed},
        _check_override_file,
    ),
}


def _contract_stage(cacher, produce, produced: list):
    @assay.stage(outputs=["out"], cachers=[cacher])
    def make(record):
        produced.append(record.name)
        return produce(record)

    return make


@pytest.mark.parametrize("case", list(CACHER_CASES.values()), ids=list(CACHER_CASES))
def test_every_cacher_round_trips(case: CacherCase, tmp_project: Path):
    produced: list[str] = []
    make = _contract_stage(case.cacher(tmp_project), case.produce, produced)
    params = ContractParams(name="p")

    first = assay.ArtifactManager("contract", project_root=tmp_project)
    record = make(assay.Record(first, params))
    assert first.plan.nodes[0].status == "executed"
    case.check(record.state["out"], tmp_project)

    second = assay.ArtifactManager("contract", project_root=tmp_project)
    again = make(assay.Record(second, params))
    node = second.plan.nodes[0]
    assert node.status == "cached"
    assert not again.state.is_loaded("out")
    case.check(again.state["out"], tmp_project)
    assert loaded(second) == ["out:p"]
    assert produced == ["p"]

    meta = second.cache.read_meta(node.key, "out")
    assert meta["files"], "the sidecar lists the files the cacher wrote"
    assert meta["size"] == sum(f["size"] for f in meta["files"]) > 0
    second.cache.verify(meta)
    case.check(assay.load(key=node.outputs[0].key, project_root=tmp_project), tmp_project)


def test_a_cacher_made_by_hand_on_a_cached_file_reads_its_metadata(tmp_project: Path):
    """Curifactory's inline use: ``TextCacher(path).load()`` and ``.load_metadata()`` on a
    file of the cache find the sidecar assay wrote beside it (they looked for a
    ``_metadata.json`` file and found nothing)."""
    make = _contract_stage(TextCacher(), lambda record: "four", [])
    manager = assay.ArtifactManager("inline", project_root=tmp_project)
    make(assay.Record(manager, ContractParams(name="p")))
    (path,) = manager.cache.stage_dir(manager.plan.nodes[0].key).glob("out.txt")

    by_hand = TextCacher(str(path))

    assert by_hand.load_metadata()["extra"] == {"length": 4}
    assert by_hand.extra_metadata == {"length": 4}
    assert by_hand.load() == "four"
    assert TextCacher(str(tmp_project / "elsewhere.txt")).load_metadata() is None


def test_a_path_ref_written_elsewhere_is_told_the_exact_name_to_ask_for(tmp_project: Path):
    """With an extension the file is ``out.txt``: the message said ``get_path('out')``."""

    def run_writing(name: str):
        def write(record):
            path = Path(record.get_path(name))
            path.write_text("x")
            return str(path)

        make = _contract_stage(PathRef(extension=".txt"), write, [])
        manager = assay.ArtifactManager("pathref", project_root=tmp_project)
        return make(assay.Record(manager, ContractParams(name="p")))

    with pytest.raises(CacheError, match=r"record.get_path\('out.txt'\)"):
        run_writing("out")
    assert Path(run_writing("out.txt").state["out"]).name == "out.txt"


def test_files_a_stage_writes_under_get_dir_are_checked_with_its_file_reference(
    tmp_project: Path,
):
    produced: list[str] = []
    make = _contract_stage(FileReferenceCacher, _write_files, produced)
    params = ContractParams(name="p")
    first = assay.ArtifactManager("files", project_root=tmp_project)
    paths = make(assay.Record(first, params)).state["out"]
    folder = first.cache.stage_dir(first.plan.nodes[0].key)
    assert all(Path(p).parent.parent == folder for p in paths)
    sidecar = first.cache.read_meta(first.plan.nodes[0].key, "out")
    assert {"texts/one.txt", "texts/two.txt"} <= {f["path"] for f in sidecar["files"]}

    Path(paths[1]).unlink()
    second = assay.ArtifactManager("files", project_root=tmp_project)
    again = make(assay.Record(second, params))
    assert second.plan.nodes[0].status == "executed"
    assert Path(again.state["out"][1]).read_text() == "second"
    assert produced == ["p", "p"]


# -- the cache on disk ----------------------------------------------------------------------


def test_the_sidecar_records_key_checksum_size_and_provenance(tmp_project: Path):
    manager = run(tmp_project)
    node = node_of(manager, "double", "a")
    folder = manager.cache.stage_dir(node.key)
    file = folder / "doubled.pkl"

    meta = json.loads((folder / "doubled.meta.json").read_text())

    assert pickle.loads(file.read_bytes()) == [0, 2, 4]
    assert meta["key"] == node.key
    assert meta["output"] == "doubled"
    assert meta["stage"] == "double"
    assert meta["param_set"] == "a"
    assert meta["experiment"] == "diamond"
    assert meta["params_hash"] == record_of(manager, "a").params.params_hash()
    assert meta["run_id"] == manager.run_id
    assert meta["run_number"] == manager.run_number == 1
    assert meta["files"] == [
        {"path": "doubled.pkl", "size": file.stat().st_size, "checksum": file_checksum(file)}
    ]
    assert meta["size"] == file.stat().st_size
    assert meta["cacher"]["class"] == "assay.caching.PickleCacher"
    upstream = node_of(manager, "load", "a").outputs[0].key
    assert upstream in json.dumps(meta["ingredients"]["upstream"])
    assert meta["duration_s"] >= 0


def test_artifacts_are_found_by_experiment_parameter_set_and_stage(tmp_project: Path):
    manager = run(tmp_project)

    link = tmp_project / "data" / "cache" / "by-name" / "diamond" / "b" / "double"
    assert pickle.loads((link / "doubled.pkl").read_bytes()) == [0, 4, 8]
    assert link.resolve() == manager.cache.stage_dir(node_of(manager, "double", "b").key).resolve()


def test_a_shared_artifact_is_stored_once_and_found_from_each_name(tmp_project: Path):
    Params = import_experiment(tmp_project, "diamond").Params
    first = run(tmp_project, param_sets=[Params(name="a")])

    second = run(tmp_project, param_sets=[Params(name="twin")], prefix="again")

    # load and square read only n and scale: shared. double prints the set's name and
    # the aggregate labels its result by name: keyed on the name, so not shared.
    assert by_status(second, "cached") == ["load:twin", "square:twin"]
    assert by_status(second, "executed") == [
        "combine:twin",
        "double:twin",
        "summarize:aggregate",
    ]
    assert record_of(second, "aggregate").state["summary"] == {"twin": 11}
    assert node_of(second, "square", "twin").key == node_of(first, "square", "a").key
    objects = tmp_project / "data" / "cache" / "objects"
    assert len([d for shard in objects.iterdir() for d in shard.iterdir()]) == 8
    for experiment, name in (("diamond", "a"), ("again", "twin")):
        found = assay.load(
            "squared", param_set=name, experiment=experiment, project_root=tmp_project
        )
        assert found == [0, 1, 4]


def test_a_save_that_fails_halfway_leaves_no_artifact_and_the_next_run_recomputes(
    tmp_project: Path, calls: Calls
):
    (tmp_project / "raise.flag").touch()

    with pytest.raises(CacheError) as info:
        run(tmp_project, "crashing")

    message = str(info.value)
    assert "'payload'" in message and "'produce'" in message
    assert "HalfWritingCacher" in message and "the disk went away" in message
    cache = tmp_project / "data" / "cache"
    assert list(cache.rglob("*payload*")) == []  # no sidecar, no partial or temporary file
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == "failed"

    (tmp_project / "raise.flag").unlink()
    calls.take()
    manager = run(tmp_project, "crashing")
    assert calls.take() == ["produce:only", "consume:only"]
    assert record_of(manager, "only").state["length"] == 50
    assert assay.load("payload", project_root=tmp_project) == {"numbers": list(range(50))}


def test_a_process_killed_while_saving_leaves_nothing_a_later_run_loads(
    tmp_project: Path, calls: Calls
):
    (tmp_project / "crash.flag").touch()

    killed = run_cli("run", "crashing", cwd=tmp_project)

    assert killed.code == 3, killed
    cache = tmp_project / "data" / "cache"
    assert list(cache.rglob("payload.meta.json")) == []
    # At most a partial file under a temporary name, which no lookup considers.
    partial = list(cache.rglob("*payload*"))
    assert all(".tmp" in str(p.relative_to(cache)) for p in partial), partial

    (tmp_project / "crash.flag").unlink()
    calls.take()
    manager = run(tmp_project, "crashing")
    assert calls.take() == ["produce:only", "consume:only"]
    assert record_of(manager, "only").state["length"] == 50
    assert assay.load("payload", project_root=tmp_project) == {"numbers": list(range(50))}


@pytest.mark.parametrize("damage", ["truncated", "edited"])
def test_a_corrupt_cache_file_is_never_loaded_but_recomputed(
    damage: str, tmp_project: Path, calls: Calls, caplog
):
    first = run(tmp_project)
    calls.take()
    file = first.cache.stage_dir(node_of(first, "load", "a").key) / "data.pkl"
    original = file.read_bytes()
    # Either way, unpickling the damaged file would raise and fail the run.
    file.write_bytes(
        original[: len(original) // 2] if damage == "truncated" else b"X" * len(original)
    )

    with caplog.at_level(logging.WARNING):
        manager = run(tmp_project, overwrite_stages=["double"])

    assert sorted(calls.take()) == [
        "combine:a", "combine:b", "double:a", "double:b", "load:a", "summarize:aggregate",
    ]  # fmt: skip
    assert record_of(manager, "a").state["doubled"] == [0, 2, 4]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'data'" in w and "'load'" in w and "'a'" in w for w in warnings), warnings
    assert pickle.loads(file.read_bytes()) == [0, 1, 2]


# -- the run store and the log --------------------------------------------------------------


def _sidecar_for(root: Path, artifact_key: str) -> dict:
    stage_key, _, output = artifact_key.rpartition(".")
    return json.loads(
        (
            root / "data" / "cache" / "objects" / stage_key[:2] / stage_key / f"{output}.meta.json"
        ).read_text()
    )


def test_the_run_store_records_runs_stages_and_artifacts(tmp_project: Path):
    first = run(tmp_project, notes="first try")
    second = run(tmp_project)

    with RunStore(tmp_project / "assay.db") as store:
        run1, run2 = store.get_run(first.run_number), store.get_run(second.run_number)
        assert (run1.number, run2.number) == (1, 2)
        assert run1.status == run2.status == "completed"
        assert run1.experiment == "diamond" and run1.notes == "first try"
        assert run1.param_names == ["a", "b"]
        assert [(p.name, p.hash) for p in store.param_sets(run1.id)] == [
            ("a", record_of(first, "a").params.params_hash()),
            ("b", record_of(first, "b").params.params_hash()),
        ]
        for info, status, action in ((run1, "executed", "computed"), (run2, "cached", "reused")):
            stages = store.stages(info.id)
            assert sorted(f"{s.stage}:{s.param_set}" for s in stages) == sorted(DIAMOND)
            assert {s.status for s in stages} == {status}
            artifacts = store.artifacts(info.id)
            assert sorted(a.name for a in artifacts) == sorted(
                ["data", "doubled", "squared", "combined"] * 2 + ["summary"]
            )
            assert {a.action for a in artifacts} == {action}
            for artifact in artifacts:
                meta = _sidecar_for(tmp_project, artifact.key)
                assert artifact.checksum == meta["files"][0]["checksum"], (action, artifact)
                assert artifact.size == meta["size"], (action, artifact)


@pytest.mark.parametrize("cache", ["inside", "outside"])
def test_the_run_store_gives_artifact_paths_relative_to_the_project(
    tmp_project: Path, tmp_path: Path, cache: str
):
    cache_dir = tmp_path / "elsewhere" / "cache" if cache == "outside" else None
    manager = run(tmp_project, cache_dir=cache_dir)

    with RunStore(tmp_project / "assay.db") as store:
        paths = [a.path for a in store.artifacts(manager.run_id)]
    assert len(paths) == 9
    for path in paths:
        assert not Path(path).is_absolute()
        assert path.startswith("../" if cache == "outside" else "data/cache/objects/")
        assert (tmp_project / path).is_file()


def test_a_failed_run_is_recorded_and_the_next_run_resumes(tmp_project: Path, calls: Calls):
    (tmp_project / "fail.flag").touch()

    with pytest.raises(StageFailed) as info:
        run(tmp_project, "flaky")

    assert (info.value.stage, info.value.record_name) == ("second", "a")
    assert isinstance(info.value.original, ValueError)
    # Also the stage's own type, as Curifactory's stages' exceptions arrive: a notebook's
    # `except ValueError` catches it; its message is assay's.
    assert isinstance(info.value, ValueError) and str(info.value).startswith("Stage 'second'")
    with RunStore(tmp_project / "assay.db") as store:
        failed = store.get_run("latest")
        assert failed.status == "failed"
        assert "second" in failed.error and "cannot handle 1" in failed.error
        rows = {(s.param_set, s.stage): s.status for s in store.stages(failed.id)}
        assert rows[("a", "first")] == "executed"
        assert rows[("a", "second")] == "failed"
        assert rows[("a", "third")] not in ("executed", "cached")
        computed = {(a.param_set, a.name) for a in store.artifacts(failed.id)}
        assert ("a", "first_out") in computed

    (tmp_project / "fail.flag").unlink()
    calls.take()
    manager = run(tmp_project, "flaky")
    resumed = calls.take()
    assert "first:a" not in resumed
    assert {"second:a", "third:a", "second:b", "third:b"} <= set(resumed)
    assert record_of(manager, "a").state["third_out"] == 4
    assert record_of(manager, "b").state["third_out"] == 22


def test_an_interrupted_run_is_recorded_keeps_its_artifacts_and_resumes(
    tmp_project: Path, calls: Calls
):
    (tmp_project / "interrupt.flag").touch()

    with pytest.raises(KeyboardInterrupt):
        run(tmp_project, "flaky")

    done = calls.take()
    assert "first:a" in done and "third:a" not in done
    with RunStore(tmp_project / "assay.db") as store:
        interrupted = store.get_run("latest")
        assert interrupted.status == "interrupted"
        assert interrupted.ended is not None
    assert assay.load("first_out", param_set="a", project_root=tmp_project) == 1

    (tmp_project / "interrupt.flag").unlink()
    manager = run(tmp_project, "flaky")
    resumed = calls.take()
    assert "first:a" not in resumed
    assert sorted(resumed) == sorted(
        {"second:a", "second:b", "third:a", "third:b"} | ({"first:b"} - set(done))
    )
    assert record_of(manager, "b").state["third_out"] == 22


def test_a_batch_writes_the_read_index_when_it_ends_however_it_ends(tmp_path: Path):
    from assay.cache import CacheStore

    cache = CacheStore(tmp_path / "cache")
    index = tmp_path / "cache" / "reads" / "fit.jsonl"
    with cache.reads_batched():
        cache.add_reads("fit", "base-1", frozenset({"alpha"}))
        cache.add_reads("fit", "base-2", frozenset({"alpha", "beta"}))
        assert not index.exists()  # waiting in memory
        assert cache.known_reads("fit", "base-2") == [frozenset({"alpha", "beta"})]
        assert cache.read_entries("fit") == [  # reading the file writes what waits first
            ("base-1", frozenset({"alpha"})),
            ("base-2", frozenset({"alpha", "beta"})),
        ]
        with pytest.raises(RuntimeError), cache.reads_batched():
            cache.add_reads("fit", "base-3", "*")
            raise RuntimeError("a stage failed")
        assert len(index.read_text().splitlines()) == 2  # the inner batch is part of this one
    assert [json.loads(line) for line in index.read_text().splitlines()] == [
        {"base": "base-1", "reads": ["alpha"]},
        {"base": "base-2", "reads": ["alpha", "beta"]},
        {"base": "base-3", "reads": "*"},
    ]

    cache.add_reads("fit", "base-4", frozenset())  # outside a batch: written at once
    assert CacheStore(tmp_path / "cache").known_reads("fit", "base-4") == [frozenset()]

    blocked = CacheStore(tmp_path / "blocked")
    blocked.known_reads("fit", "base-1")  # the index is loaded (empty)...
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "reads").write_text("...then a file takes its folder's place")
    with pytest.raises(ZeroDivisionError), blocked.reads_batched():  # the run's own failure
        blocked.add_reads("fit", "base-1", frozenset({"alpha"}))
        raise ZeroDivisionError("a stage failed")
    with pytest.raises(CacheError, match="is a file, not a folder"), blocked.reads_batched():
        blocked.add_reads("fit", "base-2", frozenset({"alpha"}))


def test_a_failed_run_keeps_the_read_index_of_the_stages_that_finished(
    tmp_project: Path, calls: Calls
):
    from assay.cache import CacheStore

    (tmp_project / "fail.flag").touch()
    with pytest.raises(StageFailed):
        run(tmp_project, "flaky")

    index = CacheStore(tmp_project / "data" / "cache")
    assert [reads for _, reads in index.read_entries("first")] == [frozenset({"value"})]


def test_the_plan_is_set_aside_from_the_garbage_collector_during_the_run(tmp_project: Path):
    import gc

    (tmp_project / "experiments" / "frozen.py").write_text(
        "import gc\n"
        "from dataclasses import dataclass\n"
        "import assay\n\n"
        "@dataclass\n"
        "class Params(assay.ExperimentParameters):\n"
        "    n: int = 0\n\n"
        "@assay.stage(outputs=['frozen'])\n"
        "def look(record):\n"
        "    return gc.get_freeze_count()\n\n"
        "def get_params():\n"
        "    return [Params(name='a')]\n\n"
        "def run(param_sets, manager):\n"
        "    for params in param_sets:\n"
        "        look(assay.Record(manager, params))\n"
    )
    manager = run(tmp_project, "frozen")

    assert record_of(manager, "a").state["frozen"] > 1000  # the plan, and all before it
    assert gc.get_freeze_count() == 0 and gc.isenabled()  # as before the run
    run(tmp_project, "frozen", dry=True)  # planning only
    assert gc.get_freeze_count() == 0 and gc.isenabled()

    gc.disable()
    try:
        (tmp_project / "fail.flag").touch()
        with pytest.raises(StageFailed):
            run(tmp_project, "flaky")
        assert gc.get_freeze_count() == 0 and not gc.isenabled()  # a failed run too
    finally:
        gc.enable()

    gc.freeze()  # a program that sets objects aside itself keeps its arrangement
    try:
        frozen = gc.get_freeze_count()
        alive = [[n] for n in range(5000)]  # not frozen: a run that froze would take them
        manager = run(tmp_project, "frozen")
        assert len(alive) == 5000
        assert record_of(manager, "a").state["frozen"] < frozen + 1000  # nothing more frozen
        assert gc.get_freeze_count() >= frozen - 1000  # nor unfrozen
    finally:
        gc.unfreeze()


def test_the_run_log_keeps_what_stages_print(tmp_project: Path):
    manager = run(tmp_project)

    log = tmp_project / "logs" / f"{manager.run_id}.log"
    text = log.read_text()
    assert "doubling for a" in text and "doubling for b" in text

    quiet = run(tmp_project, overwrite=True, log_file=False)
    assert not (tmp_project / "logs" / f"{quiet.run_id}.log").exists()


def test_import_assay_does_not_import_heavy_libraries():
    code = (
        "import sys, assay\n"
        "print(','.join(m for m in ('pandas', 'numpy', 'matplotlib', 'dask') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_import_assay_leaves_the_run_machinery_for_its_first_use():
    code = (
        "import sys, assay\n"
        "later = ('assay.experiment', 'assay.runner', 'assay.store', 'assay.config', 'sqlite3')\n"
        "print(','.join(m for m in later if m in sys.modules))\n"
        "from assay import run_experiment\n"
        "import assay.experiment\n"
        "print(run_experiment is assay.experiment.run_experiment, assay.Manager is assay.ArtifactManager)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split("\n")[:2] == ["", "True True"]


def test_curifactory_code_that_reaches_submodules_through_the_package_still_works():
    code = (
        "import assay as cf\n"
        "print(cf.experiment.run_experiment is cf.run_experiment,"
        " cf.manager.ArtifactManager is cf.ArtifactManager,"
        " cf.procedure.Procedure is cf.Procedure, cf.staging.stage is cf.stage,"
        " cf.store.RunStore.__name__, cf.reporting.JsonReporter.__name__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["True"] * 4 + ["RunStore", "JsonReporter"]


def test_every_public_name_resolves_and_a_wrong_one_says_so():
    import assay

    assert set(assay.__all__) <= set(dir(assay))
    assert all(getattr(assay, name) is not None for name in assay.__all__)
    with pytest.raises(AttributeError, match="no attribute 'run_experimnet'"):
        assay.run_experimnet  # noqa: B018


def test_while_a_stage_runs_the_state_holds_what_earlier_stages_made(tmp_project: Path):
    """As in Curifactory: not the running stage's own outputs, nor later stages'; a name a
    later stage reuses still means the earlier value there."""
    record = run(tmp_project, "statewise").records[0]

    seen_by_first = {"keys": [], "has_y": False, "y_or_default": "absent", "len": 0}
    assert record.state["z"] == {"keys": ["x", "y"], "has_y": True, "y": 7, "has_z": False}
    assert record.state["x"] == {"earlier_x": seen_by_first}  # last's x, made from first's
    assert sorted(record.state) == ["x", "y", "z"] and record.state["y"] == 7  # after the run


def test_a_full_disk_while_recording_an_artifact_is_named_and_leaves_no_entry(
    tmp_path: Path, monkeypatch
):
    """The disk fills up between an artifact's file and its sidecar (the last write)."""
    import errno

    from assay import cache as cache_module
    from assay.cache import CacheStore

    cache = CacheStore(tmp_path / "cache")
    replace = os.replace

    def full_disk(source, target):
        if str(target).endswith(".meta.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target)

    monkeypatch.setattr(cache_module.os, "replace", full_disk)
    meta = {"stage": "fit", "param_set": "a"}
    with pytest.raises(CacheError, match="Could not record output 'model' of stage 'fit'") as info:
        cache.save(JsonCacher(name="model"), [1, 2], key="k" * 32, output="model", meta=meta)
    assert "No space left on device" in str(info.value) and "cache gc" in str(info.value)
    monkeypatch.undo()
    assert not cache.has("k" * 32, "model")
    assert not [p for p in (tmp_path / "cache").rglob(".model.meta.json.*")]  # no temporary


NOTEBOOK = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher

SCALE = 2


def helper(x):
    return x * SCALE


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1
    b: int = 10


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def scaled(record):
    return helper(record.params.a)


@assay.stage(outputs=["b_seen"], cachers=[JsonCacher])
def uses_b(record):
    return record.params.b


def run(param_sets, manager):  # unused: the tests call the stages as notebook cells would
    pass
"""


def test_a_notebook_manager_records_a_run_and_writes_its_report(tmp_project: Path):
    """Curifactory's ``manager.generate_report()``: an AttributeError before."""
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("nb", project_root=tmp_project)
    record = diamond.load(assay.Record(manager, diamond.Params(name="a")))

    page = manager.generate_report()

    assert page is not None and page.is_file() and manager.run_number == 1
    assert "load" in page.read_text()
    assert "--no-log" not in page.read_text()  # said of a session, which has no such flag
    assert "an interactive session" in page.read_text()
    diamond.double(record)
    assert manager.generate_report() == page  # the same run, recorded again
    with RunStore(tmp_project / "assay.db") as store:
        (run,) = store.list_runs()
        assert (run.experiment, run.status) == ("nb", "completed")
        assert [(s.stage, s.status) for s in store.stages(run.id)] == [
            ("load", "executed"),
            ("double", "executed"),
        ]
        assert [p.name for p in store.param_sets(run.id)] == ["a"]
    export = run_cli("export", "full", "latest", cwd=tmp_project)
    assert export.code == 0, export
    (folder,) = (tmp_project / "data" / "runs").iterdir()
    again = run_cli("reproduce", str(folder), cwd=tmp_project)
    assert again.code != 0 and "generate_report()" in again.text, again
    assert (
        assay.ArtifactManager("dry", dry=True, project_root=tmp_project).generate_report() is None
    )


def test_a_notebook_run_with_a_failed_stage_is_recorded_as_failed(tmp_project: Path):
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("nb", project_root=tmp_project)
    diamond.load(assay.Record(manager, diamond.Params(name="a")))
    manager.generate_report()

    with pytest.raises(StageFailed):
        diamond.load(assay.Record(manager, diamond.Params(name="bad", n="x")))
    manager.generate_report()

    with RunStore(tmp_project / "assay.db") as store:
        (run,) = store.list_runs()
    assert run.status == "failed" and "'load'" in (run.error or "")
    assert run.param_names == ["a", "bad"]


def test_a_notebook_stage_that_failed_then_ran_leaves_the_run_completed(tmp_project: Path):
    """Fixed in a later cell and called again, it still made the session a failed run."""
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("nb", project_root=tmp_project)
    with pytest.raises(StageFailed):
        diamond.load(assay.Record(manager, diamond.Params(name="bad", n="x")))
    diamond.load(assay.Record(manager, diamond.Params(name="bad", n=3)))

    manager.generate_report()

    with RunStore(tmp_project / "assay.db") as store:
        (run,) = store.list_runs()
    assert run.status == "completed" and run.error is None, run


def test_a_notebook_session_s_run_lasts_from_the_manager_to_the_last_stage(tmp_project: Path):
    """Its start, end and duration were those of the generate_report() call (0.0 s)."""
    from assay.store import _parse_stamp

    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager("nb", project_root=tmp_project)
    time.sleep(0.3)
    diamond.load(assay.Record(manager, diamond.Params(name="a")))
    stage_done = time.time()
    time.sleep(0.5)

    manager.generate_report()

    with RunStore(tmp_project / "assay.db") as store:
        (run,) = store.list_runs()
    assert run.duration_s >= 0.3, run
    assert _parse_stamp(run.ended).timestamp() <= stage_done + 0.01, run


def test_a_manager_takes_curifactorys_arguments(tmp_project: Path):
    """Curifactory's examples/experiments/manual.py: a TypeError on its first line."""
    diamond = import_experiment(tmp_project, "diamond")
    manager = assay.ArtifactManager(
        "manual",
        disable_non_cf_loggers=False,
        reports_path="my-reports",
        manager_cache_path="registry",
        store_full=True,
        live_log_debug=True,
        project_root=tmp_project,
    )
    diamond.load(assay.Record(manager, diamond.Params(name="a")))

    page = manager.generate_report()

    assert page.parent.parent == tmp_project / "my-reports"
    assert (tmp_project / "registry" / "assay.db").is_file()
    assert not (tmp_project / "assay.db").exists()
    assert (tmp_project / "data" / "runs" / manager.run_id / "run.json").is_file()


def test_a_notebook_manager_sees_edits_made_between_cells(tmp_project: Path):
    """A live manager outlives many edits: each stage call takes code and parameters as
    they are now, never a fingerprint or hash remembered from an earlier cell."""
    (tmp_project / "experiments" / "cells.py").write_text(NOTEBOOK)
    cells = import_experiment(tmp_project, "cells")
    manager = assay.ArtifactManager("nb", project_root=tmp_project)

    def out() -> int:
        return cells.scaled(assay.Record(manager, cells.Params(name="x"))).state["out"]

    assert out() == 2
    cells.SCALE = 3  # a cell that sets a constant
    assert out() == 3
    cells.helper = lambda x: x * 10  # a cell that redefines a helper
    assert out() == 10

    params = cells.Params(name="y")
    record = assay.Record(manager, params)
    assert cells.uses_b(record).state["b_seen"] == 10
    params.b = 20  # a field assigned after the record was made
    assert cells.uses_b(record).state["b_seen"] == 20
    fresh = assay.ArtifactManager("nb", project_root=tmp_project)
    again = cells.uses_b(assay.Record(fresh, cells.Params(name="y", b=20)))
    assert again.state["b_seen"] == 20 and fresh.plan.nodes[0].status == "cached"


def test_a_notebook_manager_made_dry_plans_but_runs_and_writes_nothing(tmp_project: Path):
    (tmp_project / "experiments" / "cells.py").write_text(NOTEBOOK)
    cells = import_experiment(tmp_project, "cells")
    manager = assay.ArtifactManager("nb", dry=True, project_root=tmp_project)
    before = snapshot(tmp_project)

    cells.scaled(assay.Record(manager, cells.Params(name="x")))

    assert [n.status for n in manager.plan.nodes] == ["run"]
    assert snapshot(tmp_project) == before


def test_a_notebook_manager_refuses_names_that_share_a_folder(tmp_project: Path):
    (tmp_project / "experiments" / "cells.py").write_text(NOTEBOOK)
    cells = import_experiment(tmp_project, "cells")
    manager = assay.ArtifactManager("nb", project_root=tmp_project)
    assay.Record(manager, cells.Params(name="lr 0.1"))
    assay.Record(manager, cells.Params(name="lr 0.1", a=2))  # the same name: its folder
    with pytest.raises(ParameterError, match="'lr 0.1' and 'lr_0.1' would share"):
        assay.Record(manager, cells.Params(name="lr_0.1"))


def test_a_link_whose_folder_was_removed_meanwhile_is_made_again(tmp_path: Path):
    """A notebook's manager files stage runs by name while `assay cache gc` runs in a
    terminal: the parameter set's folder it had made was gone, and linking into it
    recursed until RecursionError."""
    from assay.cache import CacheStore, link_target

    cache = CacheStore(tmp_path / "cache")
    cache.link("exp", "alpha", "load", "ab" * 16)
    shutil.rmtree(tmp_path / "cache" / "by-name" / "exp")

    cache.link("exp", "alpha", "train", "cd" * 16)

    assert os.readlink(cache.name_link("exp", "alpha", "train")) == link_target("cd" * 16)


ONE_FILE_PER_SET = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


@assay.stage(None, ["result"], [JsonCacher(path_override="{cache}/exported_{artifact_filename}")])
def compute(record):
    return {"a": record.params.a}


def get_params():
    return [Params(name="one", a=1), Params(name="two", a=2)]


def run(param_sets, manager):
    for params in param_sets:
        compute(assay.Record(manager, params))
"""


def test_artifact_filename_in_a_path_override_names_one_file_per_parameter_set(tmp_project):
    """It was NAME.EXT alone, as Curifactory's is not: the second set overwrote the first's
    file, which then failed its checksum when loaded."""
    (tmp_project / "experiments" / "exported.py").write_text(ONE_FILE_PER_SET)

    assert run_cli("run", "exported", cwd=tmp_project).code == 0

    files = sorted((tmp_project / "data" / "cache").glob("exported_*.json"))
    hashes = {}
    for name in ("one", "two"):
        manager = assay.ArtifactManager("exported", config=ProjectConfig.load(tmp_project))
        hashes[name] = manager.params_hash(
            load_experiment("exported", manager.config).get_params()[name == "two"]
        )
    assert [f.name for f in files] == sorted(
        f"exported_exported_{hashes[n]}_compute_result.json" for n in ("one", "two")
    )
    for name, value in (("one", 1), ("two", 2)):
        assert assay.load("result", param_set=name, project_root=tmp_project) == {"a": value}


def test_an_input_put_in_the_state_by_hand_is_taken_then_and_keys_the_stage(
    tmp_project: Path, calls: Calls
):
    """`doubled` declares "hand", which `source` (no outputs) puts in record.state: it was
    refused before anything ran ("no earlier stage produced it"). And a stage reading such
    an entry was keyed before `source` had put it there, so a serial re-run never reused it."""
    first = run(tmp_project, "handset")
    assert [record_of(first, n).state["doubled"] for n in ("one", "two")] == [20, 40]
    calls.take()

    again = run(tmp_project, "handset")

    assert sorted(calls.take()) == ["source:one", "source:two"]  # no outputs: always run
    for stage, name in itertools.product(("doubled", "total", "measure", "sized"), ("one", "two")):
        assert statuses(again)[f"{stage}:{name}"] == "cached"
    assert record_of(again, "two").state["doubled"] == 40
    # measure was reused: what it put in the state by hand came back with its output
    assert [record_of(again, n).state["sized"] for n in ("one", "two")] == [3, 6]
    assert record_of(again, "two").state["size"] == 6

    why = run_cli("why", "handset", cwd=tmp_project)
    assert (
        "doubled [one]: it takes what source [one] puts in record.state by hand: looked up in "
        "the cache once that has run" in why.text
    ), why
    # measure is cached, so what it put in the state by hand is known before the run: `why`
    # and --dry say what the run does ("executes sized: state:size no longer exists" before)
    assert "reused sized [one]: artifact made by run 1" in why.text, why
    assert "6 of 15 stage runs execute." in why.text, why
    assert "6 to execute, 9 cached" in run_cli("run", "handset", "--dry", cwd=tmp_project).text

    edit(tmp_project / "experiments" / "handset.py", 'record.state["hand"] =', "_ =")
    with pytest.raises(InputSignatureError) as caught:
        run(tmp_project, "handset")
    assert (
        "Stage 'doubled' needs input 'hand', but no earlier stage on the record for parameter "
        "set 'one' outputs it, and the stages before it that put values in record.state by "
        "hand (source [one]) did not put it there."
    ) in str(caught.value)


def test_run_experiment_again_after_editing_a_module_a_parameter_file_imports(
    tmp_project: Path,
):
    """`params/derived.py` does `from params.base import A`: after an edit of base.py, a
    notebook's second run_experiment ran the old values, silently (only files assay had
    imported itself were imported again)."""
    params = tmp_project / "params"
    (params / "base.py").write_text(
        "from experiments.diamond import Params\n\nA = Params(name='a', scale=1)\n\n\n"
        "def get_params():\n    return [A]\n"
    )
    (params / "derived.py").write_text(
        "from dataclasses import replace\n\nfrom params.base import A\n\n\n"
        "def get_params():\n    return [replace(A, name='d')]\n"
    )
    assert run(tmp_project, "diamond", "derived").records[0].params.scale == 1
    base = params / "base.py"  # edited as in an editor, modules left as they are
    base.write_text(base.read_text().replace("scale=1", "scale=3"))
    later = time.time() + 2
    os.utime(base, (later, later))

    assert run(tmp_project, "diamond", "base").records[0].params.scale == 3
    assert run(tmp_project, "diamond", "derived").records[0].params.scale == 3


def test_edits_are_seen_through_a_linked_project_folder_and_a_linked_parameter_file(
    tmp_project: Path, tmp_path: Path
):
    """The project opened through a symbolic link, and a parameter file that is a link to
    a file kept elsewhere: assay finds the project's modules by their real paths (each
    folder resolved once per process), so a second run_experiment still runs the edit."""
    params = tmp_project / "params"
    (params / "base.py").write_text(
        "from experiments.diamond import Params\n\nA = Params(name='a', scale=1)\n\n\n"
        "def get_params():\n    return [A]\n"
    )
    kept = tmp_path / "elsewhere" / "derived.py"
    kept.parent.mkdir()
    kept.write_text(
        "from dataclasses import replace\n\nfrom params.base import A\n\n\n"
        "def get_params():\n    return [replace(A, name='d', scale=A.scale * 10)]\n"
    )
    (params / "derived.py").symlink_to(kept)
    linked = tmp_path / "linked-project"
    linked.symlink_to(tmp_project)
    assert run(linked, "diamond", "derived").records[0].params.scale == 10
    base = params / "base.py"
    base.write_text(base.read_text().replace("scale=1", "scale=3"))
    kept.write_text(kept.read_text().replace("* 10", "* 100"))
    later = time.time() + 2
    os.utime(base, (later, later))
    os.utime(kept, (later, later))

    assert run(linked, "diamond", "derived").records[0].params.scale == 300


def test_run_experiment_again_after_an_edit_runs_the_edited_experiment(tmp_project: Path):
    """A notebook that called ``run_experiment`` again after editing the experiment file ran
    the code imported the first time (and cached its result under the edited code's key)."""
    first = run(tmp_project)
    assert record_of(first, "a").state["squared"] == [0, 1, 4]
    experiment = tmp_project / "experiments" / "diamond.py"
    text = experiment.read_text()
    experiment.write_text(text.replace("[x * x for x in data]", "[x * x + 1 for x in data]"))

    again = run(tmp_project)

    assert record_of(again, "a").state["squared"] == [1, 2, 5]
    assert statuses(again)["square:a"] == "executed"
