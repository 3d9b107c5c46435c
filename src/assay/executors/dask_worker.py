"""Run in each worker process of a local Dask cluster that assay starts (a Dask preload).

A terminal's Ctrl-C reaches every process of its group: the workers of a
local cluster too, which would each die with a traceback of their own. They
ignore it instead; the main process stops the run and shuts them down.
"""

from __future__ import annotations

import logging
import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    """Dask calls this when a worker process starts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def quiet() -> None:
    """Keep what a stopping worker logs off the researcher's terminal: its notes on the
    tasks it cancels, and the error of a heartbeat that meets the closed scheduler."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
