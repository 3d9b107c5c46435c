"""Stage runs as tasks on a Dask cluster: ``assay run ... --executor dask``.

Without an address a ``distributed.LocalCluster`` of worker *processes* is
started on this machine; with ``--dask-address tcp://HOST:8786`` the run uses
an existing scheduler (``dask scheduler`` and ``dask worker``, or a
``dask-jobqueue`` cluster on SLURM/PBS). Workers must see the project folder
at the same path, and the cache there too (a shared filesystem) or at a URL
(see :mod:`assay.caches.fsspec`).

The cluster is started (or connected to) in a background thread, so that
its start-up overlaps with loading and planning the experiment; the first
submission waits for it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
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
        self._starting: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._warm_ups: list[tuple] = []
        self._warm_futures: list[Any] = []  # held, or Dask forgets the tasks

    def start(self) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise ConfigError("The Dask executor needs dask.distributed: pip install 'assay[dask]'")
        self._starting = threading.Thread(
            target=self._connect, name="assay-dask-start", daemon=True
        )
        self._starting.start()

    def _connect(self) -> None:
        try:
            from distributed import Client, LocalCluster

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
            for fn, args in self._warm_ups:
                self._warm(fn, args)
        except BaseException as exc:  # told to the first caller that needs the cluster
            self._failure = exc

    def _ready(self) -> None:
        """Wait for the cluster; raise what stopped it from starting."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            if isinstance(failure, ConfigError):
                raise failure
            where = self.address or "a local cluster"
            raise ConfigError(
                f"Could not start or reach the Dask cluster ({where}): "
                f"{type(failure).__name__}: {failure}. Check --dask-address, or run without "
                "--executor dask."
            ) from failure

    def warm_up(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._starting is not None and self._starting.is_alive():
            self._warm_ups.append((fn, args))  # the starting thread sends it when ready
        elif self.client is not None:
            self._warm(fn, args)

    def _warm(self, fn: Callable[..., Any], args: tuple) -> None:
        try:
            for worker in self.client.scheduler_info().get("workers", {}):
                future = self.client.submit(fn, *args, workers=[worker], pure=False)
                self._warm_futures.append(future)
        except Exception:  # a courtesy: the first real task meets any problem again
            pass

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        self._ready()
        return self._executor.submit(fn, *args)

    def shutdown(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._warm_futures.clear()
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
