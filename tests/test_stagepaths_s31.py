"""A stage reaching an earlier stage's folder, and a stage calling another stage.

Curifactory's ways to reach a file that an earlier stage ``make`` of the same record
wrote in its folder, ``record.get_path("x.csv", stage_name="make")`` and a cacher made
by hand with ``.stage = "make"``, must give the same results in a serial run, with
``--parallel 2`` and on a real Dask cluster (workers are separate processes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from assay.errors import StageFailed
from conftest import forget_project_modules, load_experiment_module, local_cluster

PATHS = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def make(record):
    with open(record.get_path("x.csv"), "w") as handle:
        handle.write(f"seed,{record.params.seed}")
    PickleCacher(record=record, name="extra").save({"tenfold": record.params.seed * 10})
    return record.params.seed


@assay.stage(inputs=["v"], outputs=["w"], cachers=[JsonCacher])
def use(record, v):
    with open(record.get_path("x.csv", stage_name="make")) as handle:
        text = handle.read()
    extra = PickleCacher(record=record, name="extra")
    extra.stage = "make"
    return [v, text, extra.load()["tenfold"]]


@assay.aggregate(inputs=["w"], outputs=["texts"], cachers=[JsonCacher])
def gather(record, records, w):
    texts = []
    for other in records:
        with open(other.get_path("x.csv", stage_name="make")) as handle:
            texts.append(handle.read())
    return sorted(texts)


def get_params():
    return [Params(name=f"p{i}", seed=i) for i in range(3)]


def run(param_sets, manager):
    records = [use(make(assay.Record(manager, p))) for p in param_sets]
    gather(assay.Record(manager, None), records)
"""

EXPECTED_W = [[i, f"seed,{i}", 10 * i] for i in range(3)]
EXPECTED_TEXTS = [f"seed,{i}" for i in range(3)]


def results(root: Path, **options) -> tuple[list, list]:
    forget_project_modules()
    manager = assay.run_experiment("paths", [], project_root=root, **options)
    made = [r for r in manager.records if r.params is not None]
    aggregate = next(r for r in manager.records if r.params is None)
    return [r.state["w"] for r in made], aggregate.state["texts"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "paths.py").write_text(PATHS)
    return root


RUNS = [
    pytest.param({}, id="fresh"),
    pytest.param({"dry_cache": True}, id="dry-cache"),
    pytest.param({"overwrite": True}, id="overwrite"),
]
EXPECTED = (EXPECTED_W, EXPECTED_TEXTS)
AGAIN = {"overwrite_stages": ["use", "gather"]}
"""``make`` reused from the cache, the stages that read its folder executed again."""


@pytest.mark.parametrize("options", RUNS)
def test_an_earlier_stages_folder_is_found_in_worker_processes_as_serially(
    project: Path, options: dict
):
    """``--parallel 2`` failed with "call it inside a stage (or name a stage that ran on
    this record ...)": the worker's record knew only its own stage."""
    assert results(project, parallel=2, **options) == EXPECTED  # an empty cache
    assert results(project, **options) == EXPECTED
    assert results(project, parallel=2, **options, **AGAIN) == EXPECTED
    assert results(project, parallel=2, dry_cache=True, **AGAIN) == EXPECTED


@pytest.mark.slow
def test_an_earlier_stages_folder_is_found_on_a_dask_cluster_as_serially(project: Path):
    with local_cluster(workers=2) as cluster:
        on_cluster = {"executor": "dask", "dask_address": cluster.scheduler_address}
        assert results(project, dry_cache=True, **on_cluster) == EXPECTED  # an empty cache
        assert results(project, **on_cluster) == EXPECTED
        assert results(project, overwrite=True, **on_cluster) == EXPECTED
        assert results(project, dry_cache=True, **AGAIN, **on_cluster) == EXPECTED
        assert results(project, **AGAIN, **on_cluster) == EXPECTED
    assert results(project, **AGAIN) == EXPECTED


TWICE = """
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def make(record, k=1):
    with open(record.get_path("x.txt"), "w") as handle:
        handle.write(f"k={k}")
    return k


@assay.stage(inputs=["v"], outputs=["w"], cachers=[JsonCacher])
def use(record, v):
    with open(record.get_path("x.txt", stage_name="make")) as handle:
        return handle.read()


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        use(make(record, k=1))
        make(record, k=2)
"""


@pytest.mark.parametrize("options", [{}, {"parallel": 2}], ids=["serial", "process"])
def test_stage_name_means_the_latest_run_of_that_stage_before_the_running_one(
    project: Path, options: dict
):
    """A serial run gave ``make(record, k=2)``'s folder, called after ``use``: not made
    yet (FileNotFoundError), where Curifactory reads what ``make(record, k=1)`` wrote."""
    (project / "experiments" / "twice.py").write_text(TWICE)
    manager = assay.run_experiment("twice", [], project_root=project, **options)
    assert manager.records[0].state["w"] == "k=1"


NESTED = """
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def make(record):
    return record.params.name + "!"


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def outer(record):
    make(record)
    return record.state["v"] * 2


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        outer(assay.Record(manager, params))
"""


@pytest.mark.parametrize("options", [{}, {"parallel": 2}], ids=["serial", "process"])
def test_a_stage_called_inside_another_is_refused_saying_what_to_write(
    project: Path, options: dict
):
    """The inner stage ran, its outputs hidden from the caller: a bare ``KeyError: 'v'``.
    Supported, the caller's key (fixed before it runs) could not cover what it made."""
    (project / "experiments" / "nested.py").write_text(NESTED)
    with pytest.raises(StageFailed) as failed:
        assay.run_experiment("nested", [], project_root=project, **options)
    message = " ".join(str(failed.value).split())
    assert "Stage 'make' was called inside stage 'outer'" in message, message
    assert "Call both from the experiment's run()" in message, message
    assert "inputs=['v']" in message and "`outer(make(record))`" in message, message


def test_a_stage_called_inside_another_in_a_notebook_is_refused(project: Path):
    (project / "experiments" / "nested.py").write_text(NESTED)
    module = load_experiment_module(project, "nested")
    manager = assay.ArtifactManager("notebook", project_root=project)
    with pytest.raises(StageFailed, match="Stage 'make' was called inside stage 'outer'"):
        module.outer(assay.Record(manager, assay.ExperimentParameters(name="a")))


COPIES = """
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def make(record):
    with open(record.get_path("x.txt"), "w") as handle:
        handle.write(f"made for {record.params.name}")
    return 1


@assay.stage(inputs=["v"], outputs=["w"], cachers=[JsonCacher])
def use(record, v):
    with open(record.get_path("x.txt", stage_name="make")) as handle:
        return [v, handle.read()]


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = make(assay.Record(manager, params))
        use(record.make_copy())
"""


@pytest.mark.parametrize("options", [{}, {"parallel": 2}], ids=["serial", "process"])
def test_a_copy_finds_the_folder_of_a_stage_run_on_its_original(project: Path, options: dict):
    """Curifactory's copy has its original's stages (and, same parameters, its paths);
    assay's said "name a stage that ran on this record", serially too."""
    (project / "experiments" / "copies.py").write_text(COPIES)
    manager = assay.run_experiment("copies", [], project_root=project, **options)
    assert manager.records[1].state["w"] == [1, "made for a"]


UNORDERED = """
import time
from pathlib import Path

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def make(record):
    deadline = time.time() + 60
    while not Path("go").exists() and time.time() < deadline:  # held until the run stops
        time.sleep(0.05)
    with open(record.get_path("x.txt"), "w") as handle:
        handle.write("made")
    return 1


@assay.stage(outputs=["w"], cachers=[JsonCacher])
def use(record):
    with open(record.get_path("x.txt", stage_name="make")) as handle:
        return handle.read()


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        use(make(assay.Record(manager, params)))
"""


def test_a_stage_reaching_an_unfinished_stages_folder_in_a_worker_says_what_to_declare(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    """``use`` takes none of ``make``'s outputs, so nothing makes it wait for ``make`` on
    workers: it says so, and how to declare it, instead of "call it inside a stage"."""
    (project / "experiments" / "unordered.py").write_text(UNORDERED)
    monkeypatch.chdir(project)
    with pytest.raises(StageFailed) as failed:
        assay.run_experiment("unordered", [], project_root=project, parallel=2)
    message = " ".join(str(failed.value).split())
    assert "Stage 'make' had not finished on parameter set 'a' when 'use' started" in message
    assert "Give 'use' one of its outputs as an input" in message, message


def run_log(root: Path, manager) -> str:
    return (root / "logs" / f"{manager.run_id}.log").read_text()


def test_a_stage_reaching_a_folder_its_key_does_not_cover_is_warned_about(project: Path):
    """``use`` reads ``make``'s file without taking ``make``'s outputs: edited, ``make``
    ran again and ``use`` was reused with the old file's content, silently."""
    (project / "experiments" / "unordered.py").write_text(
        UNORDERED.replace('Path("go").exists()', "True").replace("made", "version 1")
    )
    first = assay.run_experiment("unordered", [], project_root=project)
    assert first.records[0].state["w"] == "version 1"
    log = " ".join(run_log(project, first).split())
    assert "Stage 'use' reaches the folder of stage 'make'" in log, log
    assert "Give 'use' an output of 'make' as an input" in log, log
    assert log.count("reaches the folder") == 1, log


def test_a_stage_reaching_the_folder_of_a_stage_it_depends_on_is_not_warned_about(
    project: Path,
):
    for options in ({}, {"parallel": 2, "overwrite": True}):
        forget_project_modules()
        manager = assay.run_experiment("paths", [], project_root=project, **options)
        assert "reaches the folder" not in run_log(project, manager)
