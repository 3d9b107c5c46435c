"""Stages that start processes of their own, inside ``--parallel`` and Dask workers.

Every test runs ``assay run`` as a user would, with real worker processes: a process
pool, or a ``distributed.LocalCluster`` of two single-threaded worker processes.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import assay
from assay.errors import ConfigError, StageFailed
from conftest import local_cluster, run_cli

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
    ],
)
def test_stages_with_process_pools_of_their_own_run_in_workers_and_let_the_run_end(
    tmp_path: Path, options: list[str]
):
    """A worker that had run joblib waited, as it exited, for joblib's idle processes:
    300 s after the last stage (the timeout below is far shorter). (A Dask cluster's
    workers are daemons, which may not start processes: see the test below.)"""
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


DYING = """
import os
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    die: bool = False


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def work(record):
    if record.params.die:
        os._exit(1)  # as the out-of-memory killer or a crash in compiled code would
    return 1


def get_params():
    return [Params(name="fine"), Params(name="dying", die=True)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


@pytest.mark.slow
def test_dasks_own_lines_about_a_dead_worker_go_to_the_log_not_the_console(tmp_path: Path):
    """The scheduler's, the nannies' and the client's warnings ("Removing worker ...",
    "Restarting worker", "Couldn't gather keys") came before assay's own message, which
    says what happened; the run's log keeps them."""
    root = tmp_path / "project"
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "dying.py").write_text(DYING)

    result = run_cli("run", "dying", "--executor", "dask", "--parallel", "2", cwd=root)

    assert result.code == 1
    assert "A worker process stopped while stage 'work' for parameter set 'dying'" in (
        result.output
    )
    assert "Restarting worker" not in result.output
    assert "distributed" not in result.stderr.replace("distributed.dask.org", "")
    (log,) = (root / "logs").glob("*.log")
    assert "WARNING distributed.nanny: Restarting worker" in log.read_text()


SCRATCH = """
from dataclasses import dataclass
import gc
from pathlib import Path

import assay
from assay.caching import PathRef


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["table"], cachers=[PathRef])
def write(record):
    path = Path(record.get_path("table.csv"))
    path.write_text("n\\n" + str(record.params.n))
    return str(path)


@assay.stage(inputs=["table"], outputs=["rows"])
def read(record, table):
    return Path(table).read_text().splitlines()


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    for params in param_sets:
        read(write(assay.Record(manager, params)))
"""


@pytest.mark.slow
def test_dry_cache_files_on_an_existing_cluster_go_to_the_project_folder(tmp_path: Path):
    """Under ``--dry-cache`` the files a stage writes itself went to the main machine's
    /tmp path, which a worker on another machine made in its own /tmp: a later stage on
    a third machine did not find them, and the main process, which removes that folder,
    never removed theirs. The project folder is at the same path on every worker."""
    root = tmp_path / "project"
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "scratch.py").write_text(SCRATCH)

    with local_cluster() as cluster:
        manager = assay.run_experiment(
            "scratch", [], project_root=root, dry_cache=True,
            executor="dask", dask_address=cluster.scheduler_address,
        )  # fmt: skip
        (record,) = manager.records
        written = Path(record.state["table"])
        assert record.state["rows"] == ["n", "3"]
        assert root.resolve() in written.resolve().parents
        del manager, record
        gc.collect()

    assert not written.exists()  # the run's scratch folder goes with it


@pytest.mark.slow
def test_a_process_pool_on_an_existing_clusters_daemonic_worker_says_how_to_allow_it(
    tmp_path: Path,
):
    """Dask's workers are daemons unless told otherwise: a stage's ``multiprocessing.Pool``
    failed with Python's "daemonic processes are not allowed to have children" alone,
    and "fix the problem" pointed at the researcher's code."""
    root = nested_project(tmp_path / "project")

    with (
        local_cluster() as cluster,
        pytest.raises(StageFailed) as failure,
    ):
        assay.run_experiment(
            "nested", [], names=["pool"], project_root=root,
            executor="dask", dask_address=cluster.scheduler_address,
        )  # fmt: skip

    message = str(failure.value)
    assert "daemonic processes are not allowed to have children" in message
    assert "DASK_DISTRIBUTED__WORKER__DAEMON=False" in message


@pytest.mark.slow
def test_a_process_pool_on_the_local_dask_cluster_says_how_to_allow_it(tmp_path: Path):
    """The local cluster's workers stay daemons (a non-daemon worker being restarted as
    the cluster closed could hold the run's exit): the failure says what to set."""
    root = nested_project(tmp_path / "project")

    result = run_cli(
        "run", "nested", "-n", "pool", "--executor", "dask", "--parallel", "2", cwd=root,
        timeout=90,
    )  # fmt: skip

    assert result.code == 1, result.stderr
    assert "DASK_DISTRIBUTED__WORKER__DAEMON=False" in " ".join(result.output.split())
