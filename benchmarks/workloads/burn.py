"""The shared experiment of the parallel benchmark: N parameter sets x one CPU-bound stage.

Runs unchanged under assay and Curifactory (``BENCH_TOOL``). Each stage run
spins a pure-Python loop of ``BENCH_LOOPS`` + ``index`` iterations (the harness
sizes it to the wanted seconds; the index makes every set's work, and so its
cache key, distinct); its result is pickled so that Curifactory's
``--parallel`` (which re-runs the experiment on the cache its processes
filled) can be used. With ``BENCH_TRACE`` (``benchmarks/first_stage.py``), each
stage run appends its process id, start, end and the loop's CPU seconds to that
file; with ``BENCH_JITTER``, each stage holds a random number (below it) of
small objects while its loop runs (``_common.scatter``).
"""

import os
import time
from dataclasses import dataclass

from _common import burn, burned, scatter

if os.environ.get("BENCH_TOOL") == "curifactory":
    import curifactory as cf
    from curifactory.caching import PickleCacher
else:
    import assay as cf
    from assay.caching import PickleCacher

N = int(os.environ.get("BENCH_N", "8"))
LOOPS = int(os.environ.get("BENCH_LOOPS", "1000"))
TRACE = os.environ.get("BENCH_TRACE")
JITTER = int(os.environ.get("BENCH_JITTER", "0"))
executed = [0]


@dataclass
class Params(cf.ExperimentParameters):
    index: int = 0
    loops: int = 0


@cf.stage(None, ["total"], [PickleCacher])
def work(record):
    executed[0] += 1
    held = scatter(JITTER)  # noqa: F841 (kept alive while the loop runs)
    started = time.perf_counter()
    cpu = time.thread_time()
    total = burn(record.params.loops + record.params.index)
    cpu = time.thread_time() - cpu
    if TRACE:
        with open(TRACE, "a") as handle:
            handle.write(f"{os.getpid()} {started} {time.perf_counter()} {cpu}\n")
    return total


def get_params():
    return [Params(name=f"set{i}", index=i, loops=LOOPS) for i in range(N)]


def warm_up_sets():
    """One set that costs nothing, with a key of its own: for an untimed earlier run."""
    return [Params(name="warm-up", index=-1, loops=0)]


def run(param_sets, manager):
    for params in param_sets:
        work(cf.Record(manager, params))


def check(records, phase):
    """Whether every set's total is right (see ``_common.burned``)."""
    records = [r for r in records if r.params is not None]
    return len(records) == N and all(
        r.state["total"] == burned(LOOPS + r.params.index) for r in records
    )
