"""Stage runs as tasks on a Dask cluster: ``assay run ... --executor dask``.

Without an address a ``distributed.LocalCluster`` of worker *processes* is
started on this machine; with ``--dask-address tcp://HOST:8786`` the run uses
an existing scheduler (``dask scheduler`` and ``dask worker``, or a
``dask-jobqueue`` cluster on SLURM/PBS). Workers must see the project folder
at the same path, and the cache there too (a shared filesystem) or at a URL
(see :mod:`assay.caches.fsspec`).

The cluster is started (or connected to) in a background thread, so that
its start-up overlaps with loading and planning the experiment; the first
submission waits for it. Results are fetched in batches: a collector thread
takes every task that has finished and gathers their results with one
request, where fetching each on its own would cost a round trip per task.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from assay.errors import AssayError, ConfigError
from assay.executor import (
    Executor,
    restore_environment,
    usable_cores,
    worker_thread_limits,
)

log = logging.getLogger("assay")

WORKERS_RECHECK_S = 2.0
"""How often the run looks whether an existing cluster has workers: as often as Dask's
client hears of them (``distributed.client.scheduler-info-interval``)."""

LOCAL_CLUSTER_CONFIG = {
    # Without a dashboard nobody sees the workers' statistical profiles, and taking
    # them interrupts the stage's thread 100 times a second.
    "distributed.worker.profile.enabled": False,
    # Dask checks that each event loop is responsive 50 times a second (20ms), in every
    # process, and only warns past 3 s. On a laptop's few cores those wake-ups take time
    # from the stages. Measured on 2 cores, checking 5 times a second: the idle 2-worker
    # cluster uses 4 % of a core instead of 9 %, and a CPU-bound stage's thread gets 97 %
    # of the time it runs instead of 95 % (docs/scaling.md).
    "distributed.admin.tick.interval": "200ms",
    # Every nanny and worker reads its memory use 10 times a second (to spill, pause or
    # restart a worker near its memory limit), and every process takes CPU, memory, disk
    # and network statistics (the dashboard's "System" page) twice a second. Checked twice
    # a second and every 2 s: the idle 2-worker cluster uses 2 % of a core instead of 3.5 %,
    # and the stages' threads have the CPU 98.5 % of their run time instead of 97.6 %.
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}
"""Dask settings of the local cluster that assay starts (what an existing one should use
for CPU-bound stages, see docs/scaling.md)."""


def _worker_environment(workers: int) -> dict[str, Any]:
    """What Dask's nannies put in the environment of the local cluster's worker processes
    (``distributed.nanny.pre-spawn-environ``): Dask's own (it limits numpy's BLAS to one
    thread) with assay's thread limits for ``workers`` workers over it. A variable set in
    the environment wins over both, as Dask reads it."""
    import dask

    return {
        **dask.config.get("distributed.nanny.pre-spawn-environ"),
        **worker_thread_limits(workers),
    }


def connect_timeout() -> float:
    """How long Dask tries to reach a scheduler, in seconds
    (``distributed.comm.timeouts.connect``, 30 s by default)."""
    import dask
    import distributed  # noqa: F401  (sets Dask's defaults of its settings)
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))


def check_host_known(address: str) -> None:
    """Raise :class:`ConfigError` if the host name of the scheduler address ``address`` is
    known to no name server: Dask would try it again and again for its whole connect
    timeout, then say only that it timed out. A name server that does not answer, or an
    address Dask cannot parse, is left to Dask."""
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls", "ws", "wss"):
            return
        host, port = parse_host_port(location)
    except Exception:  # Dask's own message says what is wrong with it
        return
    unknown = {
        getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)
    }
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in unknown:
            raise ConfigError(
                f"The host name {host!r} of --dask-address {address} is not known on this "
                f"machine ({exc.strerror}). Check its spelling, or give the scheduler's "
                "address as `dask scheduler` prints it ('Scheduler at tcp://IP:PORT')."
            ) from exc


def last_attempt(failure: BaseException) -> str:
    """Why Dask's last attempt to connect failed, for a message: its "Timed out trying to
    connect" keeps it (connection refused: nothing listens on that port; a timeout: a
    firewall may drop the packets) to itself, as the exception's cause."""
    cause = failure.__cause__
    if cause is None:
        return ""
    # Dask's own wrapper names its connector object first: "in <...TCPConnector ...>: ".
    reason = re.sub(r"^in <[^>]*>: ", "", str(cause)).strip().rstrip(".")
    if not reason:
        reason = type(cause).__name__
    elif ": " not in reason[:40] and not isinstance(cause, OSError):
        reason = f"{type(cause).__name__}: {reason}"
    return f" (the last attempt: {reason})"


class SchedulerLost(AssayError):
    """The run lost its connection to the Dask scheduler: the scheduler stopped, or the
    network to it failed. No worker need have failed."""


def _hold_back_ctrl_c() -> None:
    """Hold Ctrl-C back from this thread, and so from the threads it starts and the
    worker processes they start, until each worker leaves it to the main process
    (:mod:`assay.executors.dask_worker`): a worker that it reached while importing
    would die with a traceback. Python's resource tracker process is started first:
    starting it lets Ctrl-C through again in the thread that does."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process groups to signal
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


class DaskExecutor(Executor):
    """Submit each stage run to a Dask cluster, respecting the DAG."""

    name = "dask"
    remote = True

    def __init__(self, address: str | None = None, workers: int | None = None):
        if address and workers:
            raise ConfigError(
                f"--parallel {workers} is how many worker processes assay starts on this "
                f"machine, but --dask-address {address} runs the stages on an existing Dask "
                "cluster, whose workers are the ones started for it (dask worker, "
                "dask-jobqueue). Leave out --parallel; to use fewer workers, start fewer."
            )
        self.address = address
        self.workers = workers
        self.client: Any = None
        self.cluster: Any = None
        self._starting: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._warm_ups: list[tuple] = []
        self._warm_futures: list[Any] = []  # held, or Dask forgets the tasks
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._collector: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._watching = threading.Event()
        """Set when the run is over: the watcher of an existing cluster's workers stops."""
        self._outstanding = 0
        """Tasks submitted whose results have not come back."""
        self._lock = threading.Lock()
        self._environment: dict[str, str | None] = {}
        """This process's environment variables that the local cluster's nannies set (each
        as it starts a worker), as they were before: put back once the workers run."""
        self._abandoned = False
        """Stopped while still connecting to an existing cluster: the connecting thread
        closes its client itself."""
        self._connect_began = 0.0

    def start(self) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise ConfigError("The Dask executor needs dask.distributed: pip install 'assay[dask]'")
        self._starting = threading.Thread(
            target=self._connect, name="assay-dask-start", daemon=True
        )
        self._connect_began = time.monotonic()
        self._starting.start()

    def _connect(self) -> None:
        try:
            from distributed import Client

            if self.address:
                check_host_known(self.address)
                client = Client(self.address)  # up to Dask's connect timeout (30 s)
                with self._lock:
                    if self._abandoned:  # the run has gone on without it
                        client.close()
                        return
                    self.client = client
            else:
                self.cluster = self._start_local_cluster()
                self.client = Client(self.cluster)
            for fn, args in self._warm_ups:
                self._warm(fn, args)
        except BaseException as exc:  # told to the first caller that needs the cluster
            self._failure = exc

    def _start_local_cluster(self) -> Any:
        """A ``LocalCluster`` of single-threaded worker processes on this machine."""
        import dask
        from distributed import LocalCluster

        # The local cluster's start-up chatter is not the researcher's business.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        _hold_back_ctrl_c()
        workers = self.workers or usable_cores()
        spawn_environment = _worker_environment(workers)
        # A nanny sets them in its own process, this one, and leaves them there.
        self._environment = {
            name: os.environ.get(name) for name in [*spawn_environment, "PYTHONHASHSEED"]
        }
        config = {**LOCAL_CLUSTER_CONFIG, "distributed.nanny.pre-spawn-environ": spawn_environment}
        try:
            with dask.config.set(config):  # the scheduler's and the workers'
                return LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    # The scheduler's HTTP server (health, metrics, worker pages) still
                    # wants a port: a free one, so another cluster holding 8787 costs no
                    # warning, on this machine only (":0" listened on every interface).
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    preload=["assay.executors.dask_worker"],  # Ctrl-C is the run's
                )
        finally:
            restore_environment(self._environment)

    def _ready(self) -> None:
        """Wait for the cluster; raise what stopped it from starting."""
        if self._starting is not None:
            if self.address:
                self._wait_for_answer()
            else:
                self._starting.join()
            self._starting = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            if isinstance(failure, ConfigError):
                raise failure
            if self.address and isinstance(failure, MemoryError):
                # Dask read what the program said first as the length of a message: the
                # bytes of "HTTP/1.1 400" or "SSH-2.0-" make one of exbibytes.
                raise self._not_a_scheduler("what it sent back is not Dask's protocol") from failure
            if self.address:
                where, advice = (
                    self.address,
                    " Check --dask-address, or run without --executor dask.",
                )
            else:
                from assay.runner import main_guard_advice

                where, advice = "a local cluster", main_guard_advice()
            raise ConfigError(
                f"Could not start or reach the Dask cluster ({where}): "
                f"{type(failure).__name__}: {str(failure).rstrip('.')}{last_attempt(failure)}."
                f"{advice}"
            ) from failure

    def _wait_for_answer(self) -> None:
        """Wait for the connection to the scheduler at ``self.address``, at most twice
        Dask's connect timeout: Dask gives up on an address where nothing listens after one,
        but one where a server that is no Dask scheduler listens (the dashboard's port, a web
        server) accepts the connection, and Dask then waits for its greeting for ever."""
        patience = 2 * connect_timeout()
        starting = self._starting
        assert starting is not None
        starting.join(max(0.0, self._connect_began + patience - time.monotonic()))
        with self._lock:
            if not starting.is_alive():
                return
            self._abandoned = True  # the connecting thread closes a client it gets late
            self._starting = None
        raise self._not_a_scheduler(f"nothing came back within {patience:g} s")

    def _not_a_scheduler(self, what: str) -> ConfigError:
        """The error for an address where a program listens that is no Dask scheduler
        (``what``: what it did instead of greeting the client)."""
        return ConfigError(
            f"No Dask scheduler answered at {self.address}: a program there accepted the "
            f"connection, but {what}, as a Dask scheduler does not. Is it the scheduler's port "
            "(8786 by default, the address `dask scheduler` prints as 'Scheduler at'), not its "
            "dashboard's (8787) or another program's? Check --dask-address, or run without "
            "--executor dask."
        )

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
        if self._collector is None:
            self._collector = threading.Thread(
                target=self._collect, name="assay-dask-results", daemon=True
            )
            self._collector.start()
            if self.address:
                self._watcher = threading.Thread(
                    target=self._watch_workers, name="assay-dask-workers", daemon=True
                )
                self._watcher.start()
        result: Future = Future()
        self._count_out(1)
        result.add_done_callback(lambda _: self._count_out(-1))
        # First submitted, first run, as on a process pool. Dask ranks tasks submitted
        # within `fifo_timeout` (100 ms) of each other as equal, and then runs them in
        # any order (a run's last parameter set first, a failure found last). A timeout
        # of 0 gives each submission a rank of its own; the priority stays Dask's
        # default, so that other clients of a shared cluster are served in turn.
        try:
            task = self.client.submit(fn, *args, pure=False, fifo_timeout=0)
        except Exception as exc:
            if self._connected():
                raise
            raise self._lost() from exc
        result.add_done_callback(lambda f: f.cancelled() and task.cancel())
        # Whether the client was still connected when the task ended: one that lost its
        # scheduler cancels every task, then tries to connect again for a while.
        task.add_done_callback(lambda done: self._done.put((done, result, self._connected())))
        return result

    def _watch_workers(self) -> None:
        """While the run's tasks are out on an existing cluster, warn when it has no worker:
        none yet (a scheduler started alone, dask-jobqueue's jobs still queued), or none left
        (their batch jobs reached their walltime). The tasks wait for one, which is right,
        but a run that only waits looked hung, with or without a progress display to say
        "queued". Once more after workers came and went again."""
        had_workers = told = False
        while True:
            threads = self.slots()
            if threads:
                had_workers, told = True, False
            elif threads == 0 and self._outstanding and not told:
                told = True
                log.warning(self._no_workers(had_workers))
            if self._watching.wait(WORKERS_RECHECK_S):
                return

    def _no_workers(self, had_workers: bool) -> str:
        """What to tell of the existing cluster having no worker (``had_workers``: it had
        some since the run began)."""
        start = f"`dask worker {self.address}`, or with dask-jobqueue's `cluster.scale(...)`"
        if had_workers:
            return (
                f"The Dask scheduler at {self.address} has no workers left (they stopped, or "
                "their batch jobs ended): the stages wait until one joins. Start more with "
                f"{start}. Ctrl-C stops the run; stages that finished are cached."
            )
        return (
            f"The Dask scheduler at {self.address} has no workers yet: the stages wait until "
            f"one joins (start them with {start}; jobs still queued join when they start). "
            "Ctrl-C stops the run."
        )

    def _count_out(self, change: int) -> None:
        with self._lock:
            self._outstanding += change

    def slots(self) -> int | None:
        # The cluster's threads, as the client last heard from the scheduler (Dask asks
        # every 2 s, distributed.client.scheduler-info-interval): free to read, and it
        # follows workers that join or leave. Tasks of other clients of a shared cluster
        # may hold some of them.
        identity = getattr(self.client, "_scheduler_identity", None)
        threads = identity.get("total_threads") if isinstance(identity, dict) else None
        return threads if isinstance(threads, int) else None

    def _connected(self) -> bool:
        return self.client is not None and self.client.status == "running"

    def _lost(self) -> SchedulerLost:
        """What to tell of a task that ended because the client lost its scheduler."""
        where = f"at {self.address}" if self.address else "of the local cluster"
        advice = (
            "Check that the scheduler still runs and can be reached at that address (restart "
            "it and its workers if it stopped, or correct --dask-address)"
            if self.address
            else "Check that this machine did not run out of memory"
        )
        return SchedulerLost(
            f"Lost the connection to the Dask scheduler {where} while the run was going on: "
            f"the scheduler stopped or the network to it failed; no stage failed. {advice}, "
            "then run the same command again: stages that finished are cached."
        )

    def _collect(self) -> None:
        """Hand finished tasks' results (or errors) to their futures, many at a time."""
        stop = False
        while not stop:
            batch = [self._done.get()]
            while True:
                try:
                    batch.append(self._done.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            batch = [item for item in batch if item is not None]
            finished = [(task, future) for task, future, _ in batch if task.status == "finished"]
            try:
                values = self.client.gather([task for task, _ in finished])
            except BaseException:  # a result went away meanwhile: fetch each on its own
                values = []
            for (_, future), value in zip(finished, values):
                future.set_result(value)
            for task, future, connected in batch:
                if future.done():
                    continue
                if not (connected and self._connected()):  # the client cancelled it
                    future.set_exception(self._lost())
                elif task.status == "cancelled":
                    future.cancel()
                else:
                    try:
                        future.set_result(task.result())
                    except BaseException as exc:  # the stage's failure, or a lost worker
                        future.set_exception(exc)

    def shutdown(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._watcher is not None:
            self._watching.set()
            self._watcher.join()
            self._watcher = None
        if self._collector is not None:
            self._done.put(None)
            self._collector.join(timeout=30)
            self._collector = None
        if self.cluster is not None:
            # Our own workers are about to be stopped: what they log from now on (the
            # tasks an all-cached run cancels while they import, a heartbeat that meets
            # the closed scheduler) is about that stop, not about the run.
            self._quiet_workers()
        self._warm_futures.clear()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        # Also what a nanny set again as it restarted a worker that had died.
        restore_environment(self._environment)

    def abort(self) -> None:
        with self._lock:
            if self.address and self.client is None and self._starting is not None:
                # Still connecting (an unreachable address waits out Dask's connect
                # timeout): do not wait for it, the connecting thread closes its client.
                self._abandoned = True
                self._starting = None
                return
        self._quiet_workers()
        self.shutdown()  # closing the client releases the tasks it had submitted

    def _quiet_workers(self) -> None:
        """Our own workers, when we stop them, warn about what they cancel and what outlives
        the grace period, and a heartbeat in flight errs on the closed scheduler: noise for
        the researcher, whose run is over."""
        if self.cluster is None or self.client is None:
            return
        from assay.executors.dask_worker import quiet

        logging.getLogger("distributed").setLevel(logging.ERROR)
        try:
            self.client.run(quiet, on_error="ignore", callback_timeout=5)
        except Exception:  # a courtesy: the shutdown goes ahead regardless
            pass
