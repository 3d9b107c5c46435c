"""How fast a forked process runs a pure-Python loop, depending on what it did first.

::

    .venv/bin/python -m benchmarks.forked_loop                 # 16 rounds
    .venv/bin/python -m benchmarks.forked_loop --rounds 30

The parallel section's stages run in worker processes forked from the run, and
a stage's length differs between assay's workers and Curifactory's by about
1 % (``benchmarks/first_stage.py``, "a stage's length"), although both run the
same loop. This script looks for the cause outside both tools. Each round forks
one process per case below, in a new order; the process does its case, then
times (CPU time of its thread) two loops of 3 million steps: the parallel
section's own (``workloads/_common.burn``, which makes new integers at every
step) and one that makes none.

Cases: nothing; sleeping 20 ms and spinning 20 ms (time passes, but no memory is
written); ``gc.collect()`` (it writes to every object's header, so the process
gets its own copies of the pages it shared with its parent); making 1,000
integers and keeping them. Prints, per case and loop, the median (min–max)
over the rounds and the median's ratio to the case "nothing". Linux only (it
forks). Nothing is written to ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from itertools import repeat
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "workloads"))
from _common import burn  # noqa: E402  (the parallel section's stage loop)

STEPS = 3_000_000
KEPT: list = []


def no_new_objects(steps: int) -> int:
    """A loop whose every value is one of Python's cached small integers."""
    total = 0
    for _ in repeat(None, steps):
        total = (total * 7 + 3) & 255
    return total


def spin(seconds: float) -> None:
    """Keep the CPU busy without writing to memory."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


CASES: dict[str, Callable[[], object]] = {
    "nothing": lambda: None,
    "sleep 20 ms": lambda: time.sleep(0.02),
    "spin 20 ms": lambda: spin(0.02),
    "gc.collect()": gc.collect,
    "1,000 integers kept": lambda: KEPT.append([10**9 + i for i in range(1000)]),
}
LOOPS: dict[str, Callable[[int], int]] = {"burn": burn, "no new objects": no_new_objects}


def in_a_fork(case: str, loop: str) -> float:
    """Fork; in the child, do ``case`` and time ``loop``; return the child's CPU seconds."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        CASES[case]()
        started = time.thread_time()
        LOOPS[loop](STEPS)
        os.write(write, repr(time.thread_time() - started).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        seconds = float(handle.read())
    os.waitpid(pid, 0)
    return seconds


def main() -> None:
    """Measure every case in every round and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=16)
    options = parser.parse_args()
    pairs = [(case, loop) for loop in LOOPS for case in CASES]
    times: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    for _ in range(options.rounds):
        for pair in random.sample(pairs, len(pairs)):
            times[pair].append(in_a_fork(*pair))
    print(f"CPU seconds of {STEPS:,} steps in a forked process, {options.rounds} rounds")
    print(f"{'loop':<16}{'before the loop':<24}{'median (min–max)':<26}÷ nothing")
    for case, loop in pairs:
        values = times[case, loop]
        median = statistics.median(values)
        base = statistics.median(times["nothing", loop])
        span = f"{median:.4f} ({min(values):.4f}–{max(values):.4f})"
        print(f"{loop:<16}{case:<24}{span:<26}{median / base:.3f}")


if __name__ == "__main__":
    main()
