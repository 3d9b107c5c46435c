"""Stage runs as tasks on a Dask cluster: ``assay run ... --executor dask``.

Without an address a ``distributed.LocalCluster`` of worker *processes* is
started on this machine; with ``--dask-address tcp://HOST:8786`` the run uses
an existing scheduler (``dask scheduler`` and ``dask worker``, or a
``dask-jobqueue`` cluster on SLURM/PBS). Workers must see the project folder
and the cache at the same paths (a shared filesystem).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from assay.errors import ConfigError
from assay.executor import Executor


class DaskExecutor(Executor):
    """Submit each stage run to a Dask cluster, respecting the DAG."""

    name = "dask"
    remote = True

    def __init__(self, address: str | None = None, workers: int | None = None):
        self.address = address
        self.workers = workers
        self.client: Any = None
        self.cluster: Any = None
        self._executor: Any = None

    def start(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(
                "The Dask executor needs dask.distributed: pip install 'assay[dask]'"
            ) from None
        if self.address:
            self.client = Client(self.address)
        else:
            # The local cluster's start-up chatter is not the researcher's business.
            logging.getLogger("distributed").setLevel(logging.WARNING)
            self.cluster = LocalCluster(
                n_workers=self.workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # The scheduler's HTTP server (health, metrics) still wants a port: take a
                # free one, so another Dask cluster holding 8787 costs no warning.
                scheduler_kwargs={"dashboard_address": ":0"},
            )
            self.client = Client(self.cluster)
        self._executor = self.client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._executor.submit(fn, *args)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def abort(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self.shutdown()
