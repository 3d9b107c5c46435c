"""``python -m benchmarks [--quick] [--only NAME]``: measure assay against Curifactory and joblib.

Prints a table per section and writes ``benchmarks/RESULTS.md`` (a full run)
or ``benchmarks/RESULTS-partial.md`` (``--quick`` or ``--only``). Exits
non-zero on a crash or a wrong result; the figures themselves never fail it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from benchmarks import harness
from benchmarks.harness import BENCHMARKS, BenchmarkError, Workers
from benchmarks.report import Section, attach_evidence, markdown, show
from benchmarks.sections import ORDER, Context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="the short CI run (about 4 minutes on 2 cores)"
    )
    parser.add_argument("--only", choices=ORDER, action="append", help="run only this section")
    parser.add_argument("--output", type=Path, help="where to write the results (Markdown)")
    options = parser.parse_args(argv)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 180)
    names = options.only or [n for n in ORDER if n != "profile" or not options.quick]
    complete = not options.quick and not options.only
    output = options.output or BENCHMARKS / ("RESULTS.md" if complete else "RESULTS-partial.md")
    started = time.perf_counter()
    pythons = {"assay": Path(sys.executable)}
    sections: list[Section] = []
    speed: list[float] = []
    try:
        harness.compile_sources()
        pythons["curifactory"] = pythons["joblib"] = harness.curifactory_python(console.print)
        speed.append(harness.loop_seconds(Workers(pythons)))
        run(names, options.quick, pythons, sections, console)
        speed.append(harness.loop_seconds(Workers(pythons)))
    except BenchmarkError as exc:
        console.print(f"[red]Benchmark failed:[/] {exc}")
        if sections:  # keep what was measured, for the post-mortem; never as RESULTS.md
            failed = BENCHMARKS / "RESULTS-partial.md"
            elapsed = time.perf_counter() - started
            preamble = introduction(options.quick, pythons, elapsed, speed)
            failed.write_text(markdown(sections, [f"**FAILED: {exc}**", "", *preamble]))
            console.print(f"The sections that finished are in {failed}.")
        return 1
    attach_evidence(sections)
    show(console, sections)
    elapsed = time.perf_counter() - started
    output.write_text(markdown(sections, introduction(options.quick, pythons, elapsed, speed)))
    console.print(f"Wrote {output} in {elapsed:.0f} s.")
    return 0


def run(names: list[str], quick: bool, pythons: dict, sections: list, console: Console) -> None:
    """Run the named sections, appending each one's results to ``sections`` as it ends."""

    def say(message: str) -> None:
        console.print(message, markup=False)

    ctx = Context(quick=quick, workers=Workers(pythons), say=say)
    for name in names:
        say(f"[{name}]")
        start = time.perf_counter()
        section = importlib.import_module(f"benchmarks.sections.{name}").run(ctx)
        section.seconds = time.perf_counter() - start
        sections.append(section)


def introduction(
    quick: bool, pythons: dict[str, Path], elapsed: float, speed: list[float]
) -> list[str]:
    """The head of RESULTS.md: when, where, how fast, which versions, and how it was measured.

    ``speed``: :func:`harness.loop_seconds` at the start of the run and at its end.
    """
    theirs = harness.other_versions(pythons["curifactory"])
    scratch = harness.scratch_root()
    probe = {folder: harness.metadata_probe(Path(folder)) for folder in ("/tmp", str(scratch))}
    mode = "quick (`--quick`)" if quick else "full"
    lines = [
        "# assay benchmarks: against Curifactory 0.20.5 and joblib.Memory",
        "",
        "Written by `python -m benchmarks` (see `benchmarks/__init__.py` for the method); "
        "do not edit by hand.",
        "",
        "| | |",
        "|---|---|",
        f"| date | {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC |",
        f"| mode | {mode}, {elapsed:.0f} s in all |",
    ]
    lines += [f"| {key} | {value} |" for key, value in harness.machine().items()]
    if speed:
        times = " at the start, ".join(f"{t:.2f} s" for t in speed)
        lines.append(
            f"| Python speed | {harness.SPEED_PROBE:,} iterations of the stages' loop "
            f"(`workloads/_common.py`, `burn`) took {times}{' at the end' * (len(speed) > 1)} "
            f"(median of 3; {REFERENCE_SPEED}) |"
        )
    lines += [
        f"| scratch folder | `{scratch}` ({_probe(probe[str(scratch)])}; in /tmp, on the same "
        f"disk: {_probe(probe['/tmp'])}) |",
        f"| assay | {harness.version('assay')} (this repository, `{pythons['assay']}`) |",
        f"| Curifactory | {theirs.get('curifactory')} (`{pythons['curifactory']}`) |",
    ]
    for package in harness.SHARED_LIBRARIES:
        ours, other = harness.version(package), theirs.get(package)
        same = ours if ours == other else f"{ours} (assay venv) / {other} (Curifactory venv)"
        lines.append(f"| {package} | {same} |")
    return [*lines, "", METHOD, ""]


REFERENCE_SPEED = (
    "earlier runs on this VM, from the loop sizes their parallel sections wrote down: "
    "0.65 s on 2026-12-05 at 19:00 UTC, 1.03 s three hours later; every figure below moves "
    "with it"
)
"""How fast this shared machine ran before the speed was recorded in the head."""


def _probe(probe: dict[str, float]) -> str:
    return f"a small file is created in {probe['create']:.0f} µs, a symlink in {probe['symlink']:.0f} µs"


METHOD = """\
**Method.** Every measurement runs in a fresh process in a new temporary project
folder, so nothing is shared between repetitions but the disk. assay runs with
this repository's `.venv`; Curifactory and joblib in `benchmarks/.venv-curifactory`,
whose joblib, numpy, pandas and pyarrow are pinned to the versions of assay's venv.
Both frameworks run the *same* experiment files (`benchmarks/workloads/chain.py`,
`big.py`, `burn.py`, which `import curifactory as cf` or `import assay as cf`)
through their normal entry point, a full run:
`assay.run_experiment(module, report=False)` (run store, log file) and
`curifactory.experiment.run_experiment(name, log=True, quiet=True, report=False)`
(parameter registry, run store, log file). The HTML report is off on both sides,
to compare the frameworks rather than their report templates. The timer runs in
the worker around that one call, after the imports (start-up is its own section).
Every worker loads both frameworks from bytecode: pip wrote Curifactory's at install
time, and the harness compiles assay's (installed in editable mode) before measuring
and lets workers keep it even where `PYTHONDONTWRITEBYTECODE` is set, as it is on
this machine. (Before 2026-12-01 assay's modules were compiled from source in every
measured process, which cost it about 0.1 s per process start.)
This machine is a VM whose host backs memory lazily and takes freed memory back
within seconds: filling a fresh 500 MB array took 0.6–1.1 s, or 0.03 s when the
process had just freed that much, which made big-artifact times swing by 5×. So
every big-artifact worker fills and frees 3× the artifact's size with numpy right
before each timed write or read (`workloads/_common.py`, `prefault`).
Figures are median (min–max) over the repetitions; a speed-up is the other tool's
median time divided by assay's (above 1×: assay is faster). This machine is shared
with other work, so figures move between runs; the benchmark fails only on a crash
or a wrong result (a wrong value, a stage that ran when it should not, an artifact
loaded by a fully cached assay run)."""


if __name__ == "__main__":
    sys.exit(main())
