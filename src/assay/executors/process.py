"""Stage runs on local worker processes: ``assay run ... --parallel N``."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from assay.executor import Executor


class ProcessExecutor(Executor):
    """Run stage runs on ``workers`` fresh Python processes of this machine.

    Workers are started with the ``spawn`` method (a clean interpreter that
    imports the project), the same on Linux, macOS and Windows.
    """

    name = "process"
    remote = True

    def __init__(self, workers: int = 2):
        self.workers = max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
        )

    def warm_up(self, fn: Callable[..., Any], *args: Any) -> None:
        # Each submission finds no idle process yet, so each starts one.
        for _ in range(self.workers):
            self.submit(fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        assert self._pool is not None, "start() the executor first"
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def abort(self) -> None:
        if self._pool is None:
            return
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        self._pool = None
