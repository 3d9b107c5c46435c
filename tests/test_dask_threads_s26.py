"""Dask workers that run several threads (``dask worker`` without ``--nthreads 1``), and
``--parallel`` with an existing cluster.

The tests of threads use a real ``distributed.LocalCluster`` with one worker *process* of
two threads, so that two of assay's tasks reach the same process at once.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import assay
from assay.errors import ConfigError
from conftest import forget_project_modules, local_cluster, run_cli

READER = """
import os
import time
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from experiments.helper import WHO


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 0


@assay.stage(outputs=["seen"], cachers=[JsonCacher])
def read(record):
    time.sleep(0.3)  # long enough for the worker's other thread to start a task meanwhile
    with open("data/input.txt") as handle:  # relative: the folder the run started from
        text = handle.read().strip()
    return {"text": text, "who": WHO, "cwd": os.getcwd(), "x": record.params.x}


@assay.stage(inputs=["seen"], outputs=["total"], cachers=[JsonCacher])
def count(record, seen):
    return {"x": seen["x"] * 10, "who": WHO}


def get_params():
    return [Params(name=f"p{x}", x=x) for x in range(SETS)]


def run(param_sets, manager):
    for params in param_sets:
        count(read(assay.Record(manager, params)))
"""


def reader_project(folder: Path, who: str, sets: int) -> Path:
    """A project whose stages read ``data/input.txt`` (holding ``who``) by a relative path
    and ``WHO`` from its ``experiments/helper.py``: the same module names in every project."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "experiments" / "reader.py").write_text(READER.replace("SETS", str(sets)))
    (folder / "experiments" / "helper.py").write_text(f"WHO = {who!r}\n")
    (folder / "data" / "input.txt").write_text(f"I am {who}\n")
    return folder


def cached_outputs(root: Path) -> list[dict]:
    """Every output in the project's cache (the JSON files beside their sidecars)."""
    files = sorted((root / "data" / "cache" / "objects").rglob("*.json"))
    return [json.loads(p.read_text()) for p in files if not p.name.endswith(".meta.json")]


def outputs(manager) -> list:
    return [(r.params.name, r.state["seen"], r.state["total"]) for r in manager.records]


@pytest.mark.slow
def test_a_worker_with_two_threads_gives_a_serial_runs_results(tmp_path: Path, monkeypatch):
    root = reader_project(tmp_path / "project", "one", sets=6)
    monkeypatch.chdir(root)  # as `assay run` from the project folder
    serial = assay.run_experiment("reader", [], project_root=root, cache_dir=tmp_path / "serial")
    forget_project_modules()

    with local_cluster(threads=2) as cluster:
        threaded = assay.run_experiment(
            "reader",
            [],
            project_root=root,
            executor="dask",
            dask_address=cluster.scheduler_address,
        )

    assert outputs(threaded) == outputs(serial)
    assert outputs(serial)[5] == (
        "p5",
        {"text": "I am one", "who": "one", "cwd": str(root), "x": 5},
        {"x": 50, "who": "one"},
    )


@pytest.mark.slow
def test_two_projects_at_once_on_a_two_threaded_worker_each_get_their_own_files(tmp_path: Path):
    """Both projects' runs send tasks to the same worker process at the same time: each
    stage must run in its own project's folder, with its own project's modules."""
    projects = {who: reader_project(tmp_path / who, who, sets=4) for who in ("ann", "bob")}

    with local_cluster(threads=2) as cluster:
        address = cluster.scheduler_address

        def run(root: Path):
            return run_cli(
                "run", "reader", "--executor", "dask", "--dask-address", address, cwd=root
            )

        with ThreadPoolExecutor(2) as both:
            results = list(both.map(run, projects.values()))

    for result in results:
        assert result.code == 0, result
    for who, root in projects.items():
        found = cached_outputs(root)
        assert len(found) == 8, found
        for output in found:
            assert output["who"] == who, (root, output)
            if "text" in output:
                assert output["text"] == f"I am {who}"
                assert output["cwd"] == str(root)


# -- --parallel with an existing cluster ----------------------------------------------------


def test_parallel_with_an_existing_cluster_is_refused_before_anything_runs(tmp_path: Path):
    """--parallel sizes the cluster assay starts; an existing cluster has its own workers. No
    scheduler is needed: the run stops before connecting, and records nothing."""
    root = reader_project(tmp_path / "project", "one", sets=1)
    address = "tcp://127.0.0.1:9"  # nothing listens there

    result = run_cli(
        "run", "reader", "--executor", "dask", "--dask-address", address, "--parallel", "3",
        cwd=root,
    )  # fmt: skip

    assert result.code == 1, result
    message = " ".join(result.stderr.split())
    assert "--parallel 3 is how many worker processes assay starts on this machine" in message
    assert f"--dask-address {address} runs the stages on an existing Dask cluster" in message
    assert "Traceback" not in result.stderr
    assert not (root / "assay.db").exists()
    with pytest.raises(ConfigError, match="Leave out --parallel"):
        assay.run_experiment(
            "reader", [], project_root=root, executor="dask", dask_address=address, parallel=3
        )
