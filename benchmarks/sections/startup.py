"""Section 5: start-up time of the library and of the command line.

Wall-clock time of ``python -c "import assay"`` and ``assay --help`` against
``python -c "import curifactory"`` and Curifactory's ``experiment --help``,
each in its own venv, from an empty project folder, interleaved; ``python -c
pass`` shows the interpreter's own share. ``import assay`` loads what an
experiment file uses and leaves the run machinery for its first use, so a
row also times importing ``run_experiment`` itself, what a script that runs an
experiment pays. One untimed warm-up each first, so both read their files from
the page cache.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness import Sample, project, ratio, timed_command
from benchmarks.report import Section, Table, Target
from benchmarks.sections import Context

WHY = (
    "`python -X importtime -c 'import assay'` lists what the import pulls in (the stage, "
    "parameter and record modules, and the standard library modules they use: dataclasses, "
    "inspect, pathlib, typing, ast); what would close it: fewer of those on the import path."
)


def commands(pythons: dict[str, Path]) -> dict[str, tuple[list[str], list[str]]]:
    """What → (assay's command, Curifactory's command)."""
    ours, theirs = pythons["assay"], pythons["curifactory"]
    return {
        "python -c pass (the interpreter alone)": ([str(ours), "-c", "pass"], [str(theirs), "-c", "pass"]),
        "python -c 'import assay' / 'import curifactory'": (
            [str(ours), "-c", "import assay"], [str(theirs), "-c", "import curifactory"]),
        "python -c 'from {assay,curifactory}.experiment import run_experiment'": (
            [str(ours), "-c", "from assay.experiment import run_experiment"],
            [str(theirs), "-c", "from curifactory.experiment import run_experiment"]),
        "assay --help / experiment --help": (
            [str(ours.parent / "assay"), "--help"], [str(theirs.parent / "experiment"), "--help"]),
    }  # fmt: skip


def run(ctx: Context) -> Section:
    reps = ctx.reps(10, 3)
    runs = commands(ctx.workers.pythons)
    times: dict[tuple[str, int], list[float]] = {}
    with project() as folder:
        for command in (c for pair in runs.values() for c in pair):
            timed_command(command, folder)
        for _ in range(reps):
            for what, pair in runs.items():
                for side, command in enumerate(pair):
                    times.setdefault((what, side), []).append(timed_command(command, folder) * 1e3)
    table = Table(
        "ms, wall clock: median (min–max)", ["command", "assay ms", "Curifactory ms", "speed-up"]
    )
    for what in runs:
        ours, theirs = Sample(times[(what, 0)], "ms"), Sample(times[(what, 1)], "ms")
        table.rows.append([what, ours, theirs, ratio(ours, theirs)])
    value = Sample(times[(list(runs)[1], 0)], "ms").median
    theirs = Sample(times[(list(runs)[1], 1)], "ms").median
    target = Target(
        "`import assay` (whole `python -c`)",
        f"Curifactory {theirs:.0f} ms (measured here)",
        "≤ 100 ms",
        f"{value:.0f} ms",
        value <= 100,
        WHY,
    )
    return Section(
        "startup",
        "Start-up",
        [table],
        [f"{reps} runs of each, interleaved, after one warm-up run of each."],
        [target],
    )
