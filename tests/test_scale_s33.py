"""Issue 6 re-checked as a new user: ``--parallel`` and Dask runs from the command line."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli

SCALE_S33 = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def make(record):
    return list(range(record.params.n))


@assay.stage(inputs=["v"], outputs=["total"], cachers=[JsonCacher])
def total(record, v):
    return sum(v)


def get_params():
    return [Params(name="a", n=3), Params(name="b", n=4)]


def run(param_sets, manager):
    for params in param_sets:
        total(make(assay.Record(manager, params)))
"""


def scale_s33_project(folder: Path) -> Path:
    """A project with ``experiments/scale_s33_exp.py``: two sets of two chained stages."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "experiments" / "scale_s33_exp.py").write_text(SCALE_S33)
    return folder


def test_parallel_run_refuses_a_cache_in_memory_instead_of_hanging(tmp_path: Path):
    """A ``memory://`` cache lives in one process: the workers' saves never reached the
    run, which warned that its results were missing and recomputed them (and, with an
    aggregate stage, waited forever). The run now stops before anything runs, saying
    why and what to use instead."""
    root = scale_s33_project(tmp_path / "proj")
    result = run_cli(
        "run",
        "scale_s33_exp",
        "--parallel",
        "2",
        "--cache",
        "memory://scale-s33/cache",
        cwd=root,
        timeout=90,
    )
    assert result.code != 0
    assert "memory://scale-s33/cache" in result.stderr
    assert "nothing was run" in result.stderr
    assert "Traceback" not in result.stderr
    # The same cache serially is fine: it lives in the one process that runs everything.
    serial = run_cli("run", "scale_s33_exp", "--cache", "memory://scale-s33/cache", cwd=root)
    assert serial.code == 0, serial.stderr
