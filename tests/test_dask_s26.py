"""An existing Dask cluster across runs: edited helpers, a lost scheduler, a worker's cache.

Every test uses real worker processes: a ``distributed.LocalCluster`` whose
workers are separate processes and which outlives the runs (as a site's
cluster does), or a ``dask scheduler`` and ``dask worker`` started as
commands of their own.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import assay
from assay import remote, worker_code
from assay.errors import CacheError
from assay.hashing import file_checksum
from conftest import (
    S3Server,
    edit,
    forget_project_modules,
    free_port,
    local_cluster,
    use_s3_cache,
)
from test_scale_fixes import start_run, wait_for, waiting_project
from test_worker_code import MODULE, folder_on_path

# -- a helper that a stage imports inside its body ------------------------------------------

LAZY = """
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["y"], cachers=[JsonCacher])
def compute(record):
    from experiments.helpers_lazy import transform

    return transform(record.params.x)


def get_params():
    return [assay.ExperimentParameters(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        compute(assay.Record(manager, params))
"""


def long_unchanged(path: Path) -> None:
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))


def lazy_project(folder: Path) -> Path:
    """A project whose stage imports ``experiments/helpers_lazy.py`` when it runs."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "experiments" / "lazy.py").write_text(LAZY.replace("record.params.x", "1"))
    lazy = folder / "experiments" / "helpers_lazy.py"
    lazy.write_text("def transform(x):\n    return x + 1\n")
    long_unchanged(lazy)  # written long before the run, as usual
    return folder


@pytest.mark.slow
def test_a_helper_a_stage_imports_in_its_body_is_imported_again_after_an_edit(
    tmp_path: Path,
):
    """The worker imported the helper while the stage ran; the next run, after an edit,
    must not run the old helper under the new code's key (which every later run reuses)."""
    root = lazy_project(tmp_path / "project")

    def y(**options) -> int:
        forget_project_modules()
        manager = assay.run_experiment("lazy", [], project_root=root, **options)
        return manager.records[0].state["y"]

    with local_cluster() as cluster:
        on_cluster = {"executor": "dask", "dask_address": cluster.scheduler_address}
        assert y(**on_cluster) == 2
        edit(root / "experiments" / "helpers_lazy.py", "x + 1", "x + 100")
        assert y(**on_cluster) == 101


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A project folder on ``sys.path`` with one module, ``VALUE = 1``, unchanged for an
    hour; yields the folder and the module's file."""
    root = tmp_path / "project"
    with folder_on_path(root, MODULE, "VALUE = 1\n") as path:
        long_unchanged(path)
        yield root, path
    worker_code.forget_project()


def test_a_module_a_stage_imported_is_digested_as_it_was_then(helper):
    """This process plays the worker: the stage imports the module, the file changes later,
    and the next run's main process sends the new file's digest."""
    root, path = helper
    with worker_code.running_stage(str(root), {}):
        assert importlib.import_module(MODULE).VALUE == 1
    path.write_text("VALUE = 22\n")
    main = {str(path): file_checksum(path)}

    worker_code.use_sources(main, str(root))

    assert MODULE not in sys.modules
    assert importlib.import_module(MODULE).VALUE == 22


def test_a_module_whose_file_changed_while_the_stage_ran_is_imported_again(helper):
    root, path = helper
    with worker_code.running_stage(str(root), {}):
        importlib.import_module(MODULE)
        path.write_text("VALUE = 22\n")  # after the import, before the stage ends
    main = {str(path): file_checksum(path)}

    worker_code.use_sources(main, str(root))

    assert MODULE not in sys.modules


def test_a_module_a_stage_imported_from_an_unchanged_file_stays_imported(helper):
    root, path = helper
    with worker_code.running_stage(str(root), {}):
        module = importlib.import_module(MODULE)

    worker_code.use_sources({str(path): file_checksum(path)}, str(root))

    assert sys.modules[MODULE] is module


def test_a_module_a_worker_imported_to_warm_up_is_digested_as_it_was_then(helper):
    """A run whose stages were all cached left the workers with what they imported to
    warm up; the next run comes after an edit."""
    root, path = helper
    remote.warm_up(MODULE, None, str(root), {}, None)
    assert sys.modules[MODULE].VALUE == 1
    path.write_text("VALUE = 22\n")
    main = {str(path): file_checksum(path)}

    worker_code.use_sources(main, str(root))

    assert MODULE not in sys.modules


# -- the scheduler lost while a run goes on ------------------------------------------------


@contextmanager
def dask_commands(folder: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``dask scheduler`` and a ``dask worker`` (one process, one thread), commands of their
    own started in ``folder``; yields the address and the scheduler's process, once the
    worker is in, and stops what is left of them afterwards."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    quiet = ["--no-dashboard"]
    with open(folder / "dask.log", "wb") as output:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", address.rsplit(":", 1)[1], *quiet],
            stdout=output, stderr=subprocess.STDOUT, cwd=folder,
        )  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
             "--nthreads", "1", "--local-directory", str(folder / "dask-space"), *quiet],
            stdout=output, stderr=subprocess.STDOUT, cwd=folder,
        )  # fmt: skip
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address, scheduler
    finally:
        for process in (worker, scheduler):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.slow
def test_a_scheduler_lost_during_the_run_is_told_as_such_not_as_a_killed_worker(
    tmp_path: Path, monkeypatch
):
    root = waiting_project(tmp_path / "project", ("a",))
    (tmp_path / "node").mkdir()
    with dask_commands(tmp_path / "node") as (address, scheduler):
        # The run's client gives up reconnecting after 2 s instead of 30.
        monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")
        proc = start_run(root, "--executor", "dask", "--dask-address", address)
        try:
            wait_for([root / "started-a"], proc)
            scheduler.kill()
            proc.wait(timeout=120)
        finally:
            (root / "go").write_text("")  # the stage ends; the worker can stop

    output = (root / "output.txt").read_text()
    assert proc.returncode == 1, output
    text = " ".join(output.split())
    assert f"Lost the connection to the Dask scheduler at {address}" in text, output
    assert "stages that finished are cached" in text, output
    assert "killed or run out of memory" not in text, output


# -- a cache at a URL that a worker cannot use ------------------------------------------------


@pytest.mark.slow
def test_a_cache_url_a_dask_worker_cannot_use_is_said_to_fail_on_that_worker(
    tmp_path: Path, s3_server: S3Server, monkeypatch
):
    """The researcher's shell has the credentials, the cluster's workers were started
    without them: the message must send them to the workers' environment."""
    from distributed import Client

    root = lazy_project(tmp_path / "project")
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credentials from elsewhere
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with local_cluster() as cluster:
        with Client(cluster) as client:
            (worker,) = client.scheduler_info()["workers"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # this process's only
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        url = use_s3_cache(root, s3_server, s3_server.new_bucket())
        with pytest.raises(CacheError) as raised:
            assay.run_experiment(
                "lazy",
                [],
                project_root=root,
                executor="dask",
                dask_address=cluster.scheduler_address,
            )

    message = " ".join(str(raised.value).split())
    assert f"The cache at {url} failed" in message, message
    assert f"on the Dask worker {worker}" in message, message
    assert "credentials of its own environment" in message, message
