"""Run in each worker process of a local Dask cluster that assay starts (a Dask preload).

A terminal's Ctrl-C reaches every process of its group: the workers of a
local cluster too, which would each die with a traceback of their own. They
leave it to the main process instead, which stops the run and shuts them down.
They start with Ctrl-C held back (see ``DaskExecutor._connect``), so that one
pressed while they import dies of nothing either, and take it again once they
handle it with a handler that does nothing: the programs a stage starts then
have Ctrl-C as in a serial run (an ignored or held-back signal would stay so
in them).
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from assay.executor import stop_stage_pools_at_exit


def dask_setup(worker: Any) -> None:
    """Dask calls this when a worker process starts."""
    stop_stage_pools_at_exit()
    signal.signal(signal.SIGINT, _not_ours)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _not_ours(signum: int, frame: Any) -> None:
    """Ctrl-C in a worker: the main process handles it."""


def quiet() -> None:
    """Keep what a stopping worker logs off the researcher's terminal: its notes on the
    tasks it cancels, and the error of a heartbeat that meets the closed scheduler."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
