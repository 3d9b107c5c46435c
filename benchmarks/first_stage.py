"""When the stages of a ``--parallel 2`` run start and end: assay against Curifactory.

::

    .venv/bin/python -m benchmarks.first_stage                      # 12 rounds, stages of 0.05 s
    .venv/bin/python -m benchmarks.first_stage --rounds 30 --seconds 0.2
    .venv/bin/python -m benchmarks.first_stage --rounds 16 --seconds 0.5 --jitter 4096

The parallel section judges ``--parallel 2`` on 8 stages of 2 s each, where
what differs between the two tools, their fixed costs of a few tens of ms, is
smaller than this machine's spread from one round to the next. This script
looks at those costs directly. Each round runs the section's experiment
(``workloads/burn.py``, 8 sets) under both tools, in a new order, each run in
a fresh process and project folder, through ``workloads/run_tool.py`` as the
section does. Every stage run notes when it started and ended
(``BENCH_TRACE``), and the worker notes when the timed call began and ended,
on the machine's monotonic clock.

Prints, per tool, median (min–max) over the rounds of: the time from the call
to the first stage's start and to the last worker's first stage, the time
between one stage's end and the next one's start on a worker, a stage's
length (which grows when the run's own work takes the cores) and the CPU time
of its loop, the time from the last stage's end to the end of the call, and
the whole call; then the median of Curifactory's whole call ÷ assay's, round
by round. Nothing is written to ``RESULTS.md``.

The loop's CPU time depends by a few per cent on where in the heap its
objects land, so on everything its process did before; one tool's workers
can land on a slow spot round after round. ``--jitter N`` makes every stage
hold a random number (below N) of small objects while its loop runs, so that
both tools' loops run at random spots and what remains between them is the
tools' own work.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

from benchmarks.harness import (
    SPEED_PROBE,
    Sample,
    Workers,
    compile_sources,
    curifactory_python,
    expect,
    loop_seconds,
    project,
)

SETS = 8
TOOLS = ("assay", "curifactory")


def main() -> None:
    """Measure the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=0.05, help="each stage's length")
    parser.add_argument(
        "--jitter",
        type=int,
        default=0,
        help="each stage holds up to this many small objects while its loop runs (4096: "
        "the loop's objects sit at a random place of the heap; see workloads/_common.scatter)",
    )
    options = parser.parse_args()
    compile_sources()
    workers = Workers({"assay": Path(sys.executable), "curifactory": curifactory_python(print)})
    loops = calibrate(workers, options.seconds)
    figures: dict[str, dict[str, list[float]]] = {tool: {} for tool in TOOLS}
    for number in range(options.rounds):
        print(f"round {number + 1}/{options.rounds}", file=sys.stderr)
        for tool in random.sample(TOOLS, len(TOOLS)):
            for name, value in timeline(workers, tool, loops, options.jitter).items():
                figures[tool].setdefault(name, []).append(value)
    scattered = f", objects scattered (--jitter {options.jitter})" if options.jitter else ""
    print(
        f"8 sets x one stage of {options.seconds} s, --parallel 2, {options.rounds} rounds"
        + scattered
    )
    print(f"{'ms, median (min-max)':34}" + "".join(f"{tool:>28}" for tool in TOOLS))
    for name in figures["assay"]:
        cells = "".join(
            f"{str(Sample([v * 1000 for v in figures[t][name]], 'ms')):>28}" for t in TOOLS
        )
        print(f"{name:34}{cells}")
    versus = [
        c / a for a, c in zip(figures["assay"]["whole call"], figures["curifactory"]["whole call"])
    ]
    print(f"Curifactory's whole call / assay's, round by round: {Sample(versus, '')}")


def calibrate(workers: Workers, seconds: float) -> int:
    """Loop iterations of ``burn`` that take about ``seconds`` here."""
    return max(1, int(SPEED_PROBE * seconds / loop_seconds(workers)))


def timeline(workers: Workers, tool: str, loops: int, jitter: int = 0) -> dict[str, float]:
    """One ``--parallel 2`` run of ``tool``: its figures in seconds."""
    with project("burn") as folder:
        trace = folder / "trace.txt"
        env = {"BENCH_JITTER": jitter, "BENCH_N": SETS, "BENCH_LOOPS": loops, "BENCH_TRACE": trace}
        args = {"experiment": "burn", "options": {"parallel": 2}}
        phase = workers.run(tool, "run_tool.py", args, folder, env)["phases"]["run"]
        expect(phase["correct"], f"{tool}: a parameter set ended with a wrong total")
        stages = [tuple(map(float, line.split())) for line in trace.read_text().splitlines()]
    expect(len(stages) == SETS, f"{tool}: {len(stages)} stage runs noted, not {SETS}")
    begin, end = phase["clock"]
    by_worker: dict[float, list[tuple[float, float]]] = {}
    for pid, start, stop, *_ in sorted(stages, key=lambda s: s[1]):
        by_worker.setdefault(pid, []).append((start, stop))
    gaps = [b[0] - a[1] for runs in by_worker.values() for a, b in zip(runs, runs[1:])]
    return {
        "first stage starts": min(s[1] for s in stages) - begin,
        "every worker has started one": max(runs[0][0] for runs in by_worker.values()) - begin,
        "a worker's gap between stages": statistics.mean(gaps) if gaps else 0.0,
        "a stage's length": statistics.mean(s[2] - s[1] for s in stages),
        "a stage's CPU": statistics.mean(s[3] for s in stages),
        "last stage's end to the call's": end - max(s[2] for s in stages),
        "whole call": end - begin,
    }


if __name__ == "__main__":
    main()
