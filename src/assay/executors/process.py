"""Stage runs on local worker processes: ``assay run ... --parallel N``."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, NoReturn

from assay import cache_writing, worker_output
from assay.errors import ConfigError
from assay.executor import (
    Executor,
    environment,
    sigterm_as_usual_in_children,
    stop_stage_pools_at_exit,
    usable_cores,
    worker_thread_limits,
)

START_METHOD_VARIABLE = "ASSAY_START_METHOD"
"""The environment variable that chooses how workers start (``fork``, ``spawn``, ...)."""


class ProcessExecutor(Executor):
    """Run stage runs on ``workers`` Python processes of this machine.

    Workers are forked where that is safe (see :func:`start_method`), and
    spawned (a clean interpreter that imports the project) everywhere else.
    Each starts with :attr:`thread_limits` in its environment.

    Workers start with the executor, before the run is planned, unless there are more
    than the CPU cores this process may use: they then start once the run knows how
    many stage runs it has (:meth:`fit`), no more of them than that.
    """

    name = "process"
    remote = True
    own_workers = True
    same_machine = True

    def __init__(self, workers: int = 2):
        self.workers = max(1, int(workers))
        self.asked = self.workers
        """The workers asked for (``--parallel N``); :attr:`workers` may be fewer."""
        self.deferred = self.workers > usable_cores()
        """Whether the workers wait for :meth:`fit` (or the first stage run) to start."""
        self.start_method = start_method()
        self.thread_limits = worker_thread_limits(self.workers)
        """The threads each worker's numerical libraries may start (BLAS, OpenMP, ...): the
        cores shared out among the workers, where you have not set them yourself."""
        self._pool: ProcessPoolExecutor | None = None
        self._started = False
        self.stopped: list[int] = []
        """Workers that :meth:`abort` stopped. A save one could not unwind (it was deaf to
        SIGTERM for ``STOP_GRACE_S`` and was killed, or SIGTERM came where Python cannot
        raise) is left half-written, for the run to clear."""

    def notes(self) -> list[str]:
        cores = usable_cores()
        if self.workers <= cores:
            return []
        return [
            f"--parallel {self.asked} starts {self.workers} worker processes, but this "
            f"process may use {cores} CPU core{'' if cores == 1 else 's'}: stages that "
            f"compute take turns on {'it' if cores == 1 else 'them'}, and each worker holds "
            "its own copy of what the experiment imports. (Fine for stages that mostly wait "
            "on disks or networks.)"
        ]

    def start(self) -> None:
        if not self.deferred:
            self._start_pool()

    def fit(self, stage_runs: int) -> None:
        """Start no more workers than ``stage_runs``, the stage runs the run has to
        execute, if they have not started yet: ``--parallel 50`` for two parameter sets
        started 50 processes, 48 of which never ran anything (each holding a copy of
        what the experiment imports)."""
        if self._pool is not None:
            return
        fewer = max(1, min(self.workers, stage_runs))
        if fewer < self.workers:
            self.workers = fewer
            self.thread_limits = worker_thread_limits(fewer)
        self._start_pool()

    def _start_pool(self) -> None:
        self._started = True
        self.start_method = start_method()  # forking may have become unsafe since
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context(self.start_method),
            initializer=_start_worker,
            initargs=(self.start_method == "fork", self.thread_limits),
        )

    def warm_up(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:  # the workers start later (they fork with the project)
            return
        # Each submission finds no idle process yet, so each starts one.
        for _ in range(self.workers):
            self.submit(fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        if self._pool is None and not self._started:
            self._start_pool()
        assert self._pool is not None, "the executor was shut down"
        # The pool may start workers now, and a worker copies this process's environment as
        # it starts: a spawned one imports numpy (if the script it was started from does)
        # before it runs any code of ours.
        with environment(self.thread_limits):
            return self._pool.submit(_call, fn, *args)

    def slots(self) -> int:
        return self.workers

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
                process.terminate()  # a stage running there is unwound: see _stop_worker
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():  # deep in C code, or deaf to the exception
                process.kill()
                process.join(timeout=5)
            self.stopped.append(process.pid)
        self._pool = None


def start_method() -> str:
    """How this run's worker processes start: ``fork`` where it is safe, ``spawn`` elsewhere.

    A forked worker is a copy of this process: it starts in milliseconds, with
    assay (and, from Python, the experiment) imported already, where a spawned
    one takes about 0.1 s of CPU to import them. Forking is safe only while
    this process runs a single thread (a thread holding a lock at that moment
    leaves it locked forever in the copy), and only on Linux (macOS's system
    libraries do not survive it). ``assay run`` starts its workers before it
    loads the experiment, so from the command line that is the usual case; in
    Jupyter, or once numpy's BLAS or torch has started its threads, workers are
    spawned. ``ASSAY_START_METHOD=spawn`` (or ``forkserver``) chooses for you.
    """
    chosen = os.environ.get(START_METHOD_VARIABLE, "").strip()
    if chosen:
        available = multiprocessing.get_all_start_methods()
        if chosen not in available:
            raise ConfigError(
                f"{START_METHOD_VARIABLE}={chosen!r} is not a way to start processes here; "
                f"use one of: {', '.join(available)} (or unset it: assay then forks where "
                "that is safe and spawns elsewhere)."
            )
        return chosen
    if not sys.platform.startswith("linux"):
        return "spawn"
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        return "spawn"
    return "fork" if threads == 1 else "spawn"


PARENT_CHECK_S = 0.5
"""How often a worker checks that the process that started it still runs (seconds)."""

STOP_GRACE_S = 3.0
"""How long stopped workers have to unwind their stages before they are killed (seconds)."""


def _start_worker(forked: bool, thread_limits: dict[str, str]) -> None:
    """In each worker, as it starts: the run, not the worker, answers Ctrl-C, the
    worker goes when the run's process does, and its cache markers go as it exits."""
    # Inherited already, but from a forkserver: as it was when that started (another run's).
    os.environ.update(thread_limits)
    # A terminal's Ctrl-C reaches every process of its group: each worker would die with
    # a traceback of its own. The main process stops the run and the workers instead. A
    # handler that does nothing (rather than ignoring the signal) leaves the default to the
    # programs a stage starts, which Ctrl-C stops as in a serial run.
    signal.signal(signal.SIGINT, _not_ours)
    signal.signal(signal.SIGTERM, _stop_worker)
    sigterm_as_usual_in_children(_stop_worker)
    global _worker_pid
    _worker_pid = os.getpid()
    sys.unraisablehook = _stopped_where_it_cannot_unwind(sys.unraisablehook)
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="assay-parent-watch", daemon=True
    ).start()
    if forked:
        _as_if_spawned()
    cache_writing.close_at_worker_exit()
    stop_stage_pools_at_exit()


def _not_ours(signum: int, frame: Any) -> None:
    """Ctrl-C in a worker: the main process handles it."""


class _Stopped(BaseException):
    """SIGTERM reached a worker while it ran a stage (see :func:`_stop_worker`)."""


_busy = False  # whether this worker runs a call of the run's now
_worker_pid: int | None = None  # the worker's own process (not one a stage forked)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """In a worker: run one call of the run's, and exit if SIGTERM stopped it."""
    global _busy
    try:
        _busy = True
        return fn(*args)
    except _Stopped:
        _exit_stopped()
    finally:
        _busy = False


def _stop_worker(signum: int, frame: Any) -> None:
    """SIGTERM in a worker: the run stops its workers (Ctrl-C, SIGTERM, a failed stage),
    or a batch system's time limit reached the whole job.

    A stage running here is marked as stopped by the run, not lost (see
    :mod:`assay.worker_output`), and unwound, as Ctrl-C unwinds a serial run, so that a save
    under way removes what it wrote under temporary names; then the worker exits. The
    default, dying on the spot, left those files in the cache until ``assay cache gc``
    removed them an hour later. A process a stage forks starts with the default action
    (see :func:`~assay.executor.sigterm_as_usual_in_children`); one forked otherwise
    (a C library's own fork) dies here as before.
    """
    if os.getpid() != _worker_pid:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    signal.signal(signal.SIGTERM, _not_ours)  # a second SIGTERM does not cut the unwinding
    worker_output.stopped()  # before the unwinding closes the stage run's output file
    if _busy:
        raise _Stopped()
    _exit_stopped()


def _stopped_where_it_cannot_unwind(
    previous: Callable[[Any], object],
) -> Callable[[Any], object]:
    """The worker's hook for exceptions Python cannot raise: SIGTERM's unwinding that
    landed in a ``__del__`` or a weakref callback ends the worker there.

    Python prints such an exception as "Exception ignored in: ..." and carries on, so the
    stage went on running, deaf to a second SIGTERM, until the run killed the worker; its
    traceback, through assay's code, reached the run's output. What a save under way
    wrote is cleared by the run (see :attr:`ProcessExecutor.stopped`).
    """

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, _Stopped):
            _exit_stopped()
        previous(unraisable)

    return hook


def _exit_stopped() -> NoReturn:
    """End a worker that SIGTERM stopped, its cache markers removed."""
    cache_writing.close_all()
    os._exit(128 + signal.SIGTERM)


def _exit_with_parent(parent: int) -> None:
    """Stop this worker once the process that started it is gone.

    A run killed outright (``kill -9``, the out-of-memory killer) cannot stop its
    workers; they would go on running the stages queued for them, for nobody.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _as_if_spawned() -> None:
    """In a forked worker: drop what a spawned one would not have inherited.

    Log handlers of the main process (they write to its console and log
    file; a worker's logs travel back with its result instead) and numpy's
    global random state (two forked workers would draw the same "random"
    numbers; Python's ``random`` reseeds itself at a fork).
    """
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):  # a broken numpy is the stage's to report
            numpy.random.seed()
