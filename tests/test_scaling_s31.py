"""Stages that start processes of their own, inside ``--parallel`` and Dask workers.

Every test runs ``assay run`` as a user would, with real worker processes: a process
pool, or a ``distributed.LocalCluster`` of two single-threaded worker processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from assay.errors import ConfigError
from conftest import run_cli

NESTED = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


def square(x):
    return x * x


@dataclass
class Params(assay.ExperimentParameters):
    how: str = "pool"


@assay.stage(outputs=["total"], cachers=[JsonCacher])
def work(record):
    if record.params.how == "pool":
        import multiprocessing

        with multiprocessing.Pool(2) as pool:
            return sum(pool.map(square, range(5)))
    from joblib import Parallel, delayed

    return sum(Parallel(n_jobs=2)(delayed(square)(i) for i in range(5)))


def get_params():
    return [Params(name="pool", how="pool"), Params(name="joblib", how="joblib")]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


def nested_project(folder: Path) -> Path:
    """A project whose stage computes with ``multiprocessing.Pool(2)`` or joblib's
    ``n_jobs=2``, as a researcher's stage often does."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "experiments" / "nested.py").write_text(NESTED)
    return folder


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--parallel", "2"], id="process"),
        pytest.param(["--executor", "dask", "--parallel", "2"], id="dask", marks=pytest.mark.slow),
    ],
)
def test_stages_with_process_pools_of_their_own_run_in_workers_and_let_the_run_end(
    tmp_path: Path, options: list[str]
):
    """A local Dask cluster's workers were daemons: ``multiprocessing.Pool`` failed there
    with "daemonic processes are not allowed to have children". And a worker that had run
    joblib waited, as it exited, for joblib's idle processes: 300 s after the last stage
    (the timeout below is far shorter)."""
    root = nested_project(tmp_path / "project")

    result = run_cli("run", "nested", *options, cwd=root, timeout=90)

    assert result.code == 0, result.stderr
    assert "2 executed" in result.stdout
    assert "daemonic" not in result.stdout + result.stderr


@pytest.mark.parametrize("parallel", [-1, 2.5, True])
def test_a_parallel_that_is_no_number_of_workers_is_refused(tmp_path: Path, parallel):
    """``parallel=-1`` (joblib's "every core") ran one worker process without a word,
    ``parallel=2.5`` two; ``True`` one."""
    root = nested_project(tmp_path / "project")

    with pytest.raises(ConfigError, match=rf"parallel={parallel!r} is not a number of worker"):
        assay.run_experiment("nested", [], project_root=root, parallel=parallel)

    assert not (root / "data").exists()  # nothing ran, nothing was cached
