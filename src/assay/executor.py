"""Executors decide *where* a stage run executes; the runner decides *when*.

An executor has three methods: :meth:`Executor.submit` hands it a callable
and returns a :class:`concurrent.futures.Future`; :meth:`Executor.as_completed`
yields futures as they finish; :meth:`Executor.shutdown` releases workers.
Executors are registered by dotted path, so a backend's heavy imports happen
only when it is chosen.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from assay.errors import ConfigError

EXECUTORS: dict[str, str] = {
    "serial": "assay.executors.serial:SerialExecutor",
    "process": "assay.executors.process:ProcessExecutor",
    "dask": "assay.executors.dask:DaskExecutor",
}
"""Executor name → ``module:Class``."""


class Executor:
    """Base class of executors (see the module documentation)."""

    name = "executor"
    remote = False
    """Whether stage runs execute in other processes (they then get a picklable task)."""
    inline = False
    """Whether ``submit`` runs the work at once in the caller (the runner then skips futures)."""
    own_workers = False
    """Whether the workers are processes this one starts for the run: they then run this
    very assay, and their tasks skip the check that a worker runs the main process's
    assay (:mod:`assay.worker_code`), which a worker that outlives runs (a Dask
    cluster's) may not."""

    same_machine = False
    """Whether the workers are processes of this machine, which share its temporary folder:
    they then also keep what each stage prints and logs in a file as it goes
    (:mod:`assay.worker_output`), which the run reads if a worker dies mid-stage."""

    def start(self) -> None:
        """Acquire workers (called before the first ``submit``)."""

    def notes(self) -> list[str]:
        """What the researcher should know about these workers (the run logs each as a
        warning once its log is open), such as more workers than CPU cores."""
        return []

    def fit(self, stage_runs: int) -> None:
        """The run is planned: it has ``stage_runs`` stage runs to execute, so it never
        needs more workers than that (an executor that has not started its workers yet
        starts no more)."""

    def warm_up(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start the workers now and run ``fn(*args)`` once on each, without waiting.

        Called while the run is still being planned, so that starting
        processes and importing the project overlap with the planning; a
        failure here is not reported (the first real task meets it again).
        """

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` somewhere; the future holds its result or exception."""
        raise NotImplementedError

    def slots(self) -> int | None:
        """How many submitted calls run at once (the others wait their turn, first
        submitted first run), as far as known now; ``None``: as many as are submitted.

        Progress displays count the stage runs sent to workers beyond it as queued.
        """
        return None

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        """Yield ``futures`` as they finish."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release workers, after the work submitted so far is done."""

    def abort(self) -> None:
        """Stop at once (Ctrl-C, a failure): cancel what has not started, stop workers."""
        self.shutdown()


def usable_cores() -> int:
    """The CPU cores this process may run on (``taskset``, a batch job's allocation and
    container limits included where the system tells), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no affinity to ask
        return os.cpu_count() or 1


THREAD_VARIABLES = (
    "OMP_NUM_THREADS",  # OpenMP: scikit-learn, torch, many compiled extensions
    "OPENBLAS_NUM_THREADS",  # numpy's and scipy's BLAS as pip installs them
    "MKL_NUM_THREADS",  # Intel MKL (conda's numpy)
    "BLIS_NUM_THREADS",  # BLIS
    "VECLIB_MAXIMUM_THREADS",  # Apple Accelerate
    "NUMBA_NUM_THREADS",  # numba's parallel=True
    "NUMEXPR_NUM_THREADS",  # numexpr (pandas' eval and query)
)
"""The environment variables that size the thread pools of numerical libraries (the ones
joblib's worker processes get), read as each library loads."""


def worker_thread_limits(workers: int) -> dict[str, str]:
    """What each of ``workers`` local worker processes gets in its environment, so that
    their numerical libraries share the cores instead of each starting a thread per core:
    the usable cores divided among the workers (at least 1), for each of
    :data:`THREAD_VARIABLES` that is not set already (a value you set is kept)."""
    share = str(max(1, usable_cores() // max(1, workers)))
    return {name: share for name in THREAD_VARIABLES if name not in os.environ}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """This process's environment with ``values`` added, for the processes started
    meanwhile (they copy it); as it was again afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        restore_environment(before)


def restore_environment(before: dict[str, str | None]) -> None:
    """Put the variables named in ``before`` back as they were (``None``: unset)."""
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def stop_stage_pools_at_exit() -> None:
    """In a worker process (``--parallel``'s, a local Dask cluster's), as it starts: have
    the process pools a stage left running stop themselves when the worker exits.

    multiprocessing ends a worker by waiting for its child processes, and only then runs
    the exit hooks with which pools stop their own (``threading``'s, run first at the end
    of an ordinary Python program). joblib's processes stay up for 300 s after their last
    task unless told to stop: a stage that used ``n_jobs=2`` held the run that long after
    its last stage.
    """
    import multiprocessing.util
    import threading

    # What Python's own exit calls first; it runs once however often it is called.
    multiprocessing.util.Finalize(None, threading._shutdown, exitpriority=100)  # type: ignore[attr-defined]


def sigterm_as_usual_in_children(handler: Callable[..., Any]) -> None:
    """Have the processes forked from this one while ``handler`` (assay's own, for this
    process) answers SIGTERM start with SIGTERM's default action instead.

    A forked process inherits its parent's signal handlers: the processes of a stage's
    ``multiprocessing.Pool`` (forked from the run's process, or from a ``--parallel``
    worker) raised the run's exception when the pool ended them with SIGTERM, each
    printing a traceback, and one sent SIGTERM just before it waited for its next task,
    or before it ran at all, never acted on it (Python runs a handler between two steps
    of its code, and forgets at a fork the signals not handled yet), so the pool, the
    stage and the run waited for ever. SIGTERM is held back while such a process is
    forked, until it has the default action: one sent meanwhile then ends it.
    """
    global _registered
    _ours.add(handler)
    if not _registered and hasattr(os, "register_at_fork") and hasattr(signal, "pthread_sigmask"):
        os.register_at_fork(
            before=_hold_sigterm,
            after_in_parent=_release_sigterm,
            after_in_child=_sigterm_as_usual,
        )
        _registered = True


def _hold_sigterm() -> None:
    """Before a fork while assay's handler answers SIGTERM: hold SIGTERM back (in the
    forking thread, whose mask the child inherits)."""
    _held.mask = None
    with contextlib.suppress(ValueError, OSError, TypeError):
        if signal.getsignal(signal.SIGTERM) in _ours:
            _held.mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def _release_sigterm() -> None:
    """After a fork, in the parent: SIGTERM as before."""
    mask, _held.mask = getattr(_held, "mask", None), None
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _sigterm_as_usual() -> None:
    """After a fork, in the child: SIGTERM's default action, then no longer held back."""
    if getattr(_held, "mask", None) is not None:
        with contextlib.suppress(ValueError, OSError, TypeError):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _release_sigterm()


_ours: weakref.WeakSet = weakref.WeakSet()
"""The SIGTERM handlers of assay's that forked processes do not keep."""
_held = threading.local()
"""The forking thread's signal mask before :func:`_hold_sigterm` (``mask``), if it held
SIGTERM back."""
_registered = False


def get_executor(name: str, **options: Any) -> Executor:
    """The executor registered as ``name``, constructed with ``options``."""
    try:
        target = EXECUTORS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown executor {name!r}; available: {', '.join(sorted(EXECUTORS))}."
        ) from None
    module_name, _, class_name = target.partition(":")
    executor = getattr(importlib.import_module(module_name), class_name)(**options)
    executor.start()
    return executor
