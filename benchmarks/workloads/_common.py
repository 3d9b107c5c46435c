"""Helpers shared by the worker scripts (run in either venv; no assay or curifactory import).

A worker is started as ``python WORKER.py '{"json": "arguments"}'`` in a
fresh process, does one measurement, and prints one line
``BENCH-RESULT {...}`` that the harness parses.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

MARKER = "BENCH-RESULT "


def arguments() -> dict:
    """The JSON arguments the harness passed as ``argv[1]``."""
    return json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def emit(result: dict) -> None:
    """Hand the measurement back to the harness (always the last line printed)."""
    result.setdefault("peak_rss_mb", peak_rss_mb())
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's current resident set size, in MB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def files_under(folder: str) -> list[str]:
    """Every regular file below ``folder`` (symlinks not followed)."""
    found = []
    for root, _dirs, names in os.walk(folder):
        found.extend(os.path.join(root, n) for n in names)
    return [f for f in found if os.path.isfile(f) and not os.path.islink(f)]


def make_durable(paths: list[str]) -> None:
    """``fdatasync`` every file, as ``dd conv=fdatasync`` does: the data is on disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)


def evict(paths: list[str]) -> None:
    """Drop the (clean) pages of these files from the page cache: the next read hits the disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def total_bytes(paths: list[str]) -> int:
    return sum(os.path.getsize(p) for p in paths)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (and ``t.started``, ``t.ended``: the
    machine's monotonic clock, the same in every process)."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.ended = time.perf_counter()
        self.seconds = self.ended - self.started


def make_frame(megabytes: float):
    """A DataFrame of ``megabytes`` MB (10^6 bytes): four float64 columns and one int64 column."""
    import numpy as np
    import pandas as pd

    rows = int(megabytes * 1e6 / 40)
    rng = np.random.default_rng(0)
    columns = {f"x{i}": rng.random(rows) for i in range(4)}
    columns["id"] = np.arange(rows, dtype=np.int64)
    return pd.DataFrame(columns)


def make_array(megabytes: float):
    """A float64 numpy array of ``megabytes`` MB (10^6 bytes; random, so incompressible)."""
    import numpy as np

    return np.random.default_rng(1).random(int(megabytes * 1e6 / 8))


def prefault(megabytes: float) -> None:
    """Fill and free this much memory with numpy, right before a timed step.

    On this VM the host backs memory lazily and takes freed memory back within
    seconds, so a fresh 500 MB array can take 1 s to fill, or 0.03 s if the
    process freed that much a moment before. Every big-artifact worker calls
    this just before each timed step, so that all cases start alike.
    """
    import numpy as np

    block = np.ones(int(megabytes * 1e6 / 8))
    del block


def make_data(kind: str, megabytes: float):
    """``"frame"`` or ``"array"`` of about ``megabytes`` MB."""
    return make_frame(megabytes) if kind == "frame" else make_array(megabytes)


def same_data(a, b) -> bool:
    """Whether two frames or arrays are equal (used to check a read-back)."""
    if hasattr(a, "equals"):
        return bool(a.equals(b))
    import numpy as np

    return bool(np.array_equal(a, b))


def burn(loops: int) -> int:
    """A CPU-bound pure-Python loop: the work of the parallel benchmark's stage."""
    total = 0
    for i in range(loops):
        total = (total + i * i) % 1_000_003
    return total


def scatter(limit: int) -> list:
    """A random number (below ``limit``) of small objects and one buffer of random size,
    for the caller to hold while it times a loop: the loop's own objects then come from
    a random place of the heap. The speed of ``burn`` depends on that place by a few
    per cent (``benchmarks/forked_loop.py``), and so on everything the process did
    before; holding these evens that out between tools. Nothing when ``limit`` is 0."""
    if not limit:
        return []
    import random

    return [bytearray(random.randrange(1, 64) * 16)] + [
        10**6 + j for j in range(random.randrange(limit))
    ]


def burned(loops: int) -> int:
    """What ``burn(loops)`` returns, in closed form: the sum of i² for i < loops, mod 1,000,003."""
    return ((loops - 1) * loops * (2 * loops - 1) // 6) % 1_000_003


def advised_dask_environment() -> dict[str, str]:
    """The settings docs/scaling.md advises for a cluster that runs CPU-bound stages (those
    of assay's own local cluster), as the environment variables of ``dask worker``."""
    from assay.executors.dask import LOCAL_CLUSTER_CONFIG

    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in LOCAL_CLUSTER_CONFIG.items()
    }


class DaskCluster:
    """An existing Dask cluster for a measurement, as a site runs one: ``dask scheduler``
    and ``dask worker`` as processes of their own, started (and waited for) before the
    timed run, so that the run pays only for connecting to it. With Dask's default
    settings, or with ``advised`` those of :func:`advised_dask_environment`."""

    def __init__(self, workers: int, folder: str, advised: bool = False):
        self.env = {**os.environ, **(advised_dask_environment() if advised else {})}
        # A cluster that does not come up (a port taken between the probe and the
        # scheduler's bind, a worker that dies at start) is tried once more.
        for attempt in (1, 2):
            try:
                self._start(workers, folder, attempt)
                return
            except RuntimeError:
                self.close()
                if attempt == 2:
                    raise

    def _start(self, workers: int, folder: str, attempt: int) -> None:
        import socket
        import subprocess

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        log = os.path.join(folder, f"dask-cluster-{attempt}.log")
        python = sys.executable
        with open(log, "wb") as out:
            quiet = {"stdout": out, "stderr": subprocess.STDOUT, "env": self.env}
            self.processes = [
                subprocess.Popen([python, "-m", "distributed.cli.dask_scheduler", "--host",
                                  "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet),
                subprocess.Popen([python, "-m", "distributed.cli.dask_worker", self.address,
                                  "--nworkers", str(workers), "--nthreads", "1", "--no-dashboard",
                                  "--local-directory", os.path.join(folder, "dask-space")],
                                 **quiet),
            ]  # fmt: skip
            wait = (
                "import sys; from distributed import Client\n"
                "with Client(sys.argv[1], timeout=60) as c: c.wait_for_workers(int(sys.argv[2]), 60)"
            )
            done = subprocess.run(
                [python, "-c", wait, self.address, str(workers)], capture_output=True, text=True
            )
        if done.returncode != 0:
            with open(log, errors="replace") as handle:
                cluster = handle.read()[-3000:]
            raise RuntimeError(
                f"The Dask cluster at {self.address} did not come up (attempt {attempt}):\n"
                f"{done.stderr[-2000:]}\n-- scheduler and workers --\n{cluster}"
            )

    def close(self) -> None:
        for process in getattr(self, "processes", []):
            process.terminate()
        for process in getattr(self, "processes", []):
            process.wait(timeout=30)
