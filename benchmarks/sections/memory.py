"""Section 7: peak memory of a run with many parameter sets.

The overhead benchmark's experiment (5 stages, no cachers) with N sets: the
peak resident set size of the whole worker process (``ru_maxrss``), the
resident size once the tool and the experiment are imported, and the
difference per 1,000 sets. Curifactory runs at the N it can reach in time.
"""

from __future__ import annotations

from benchmarks.harness import Sample, expect, project, ratio
from benchmarks.report import Section, Table
from benchmarks.sections import Context


def run(ctx: Context) -> Section:
    big, small = (1000, 100) if ctx.quick else (10000, 1000)
    runs = [("assay", big), ("assay", small), ("curifactory", small)]
    reps = ctx.reps(3, 1)
    found: dict[tuple, dict[str, list[float]]] = {}
    for rep in range(reps):
        ctx.say(f"  memory: repetition {rep + 1}/{reps}")
        for tool, n in runs:
            with project("chain") as folder:
                result = ctx.workers.run(
                    tool, "run_tool.py", {"experiment": "chain"}, folder, {"BENCH_N": n}
                )
            phase = result["phases"]["run"]
            expect(phase["correct"], f"{tool}, N={n}: a record ended with a wrong value")
            entry = found.setdefault((tool, n), {})
            entry.setdefault("peak", []).append(result["peak_rss_mb"])
            entry.setdefault("base", []).append(result["rss_before_mb"])
            growth = (result["peak_rss_mb"] - result["rss_before_mb"]) / n * 1000
            entry.setdefault("growth", []).append(growth)
    table = Table(
        "resident memory of the worker process, MB: median (min–max)",
        ["tool", "N sets × 5 stages", "peak RSS MB", "RSS after imports MB", "MB per 1,000 sets"],
        left=2,
    )
    for (tool, n), entry in found.items():
        table.rows.append(
            [tool, f"{n:,}", Sample(entry["peak"], "MB"), Sample(entry["base"], "MB"),
             Sample(entry["growth"], "MB")]
        )  # fmt: skip
    ours = Sample(found[("assay", small)]["growth"], "MB")
    theirs = Sample(found[("curifactory", small)]["growth"], "MB")
    notes = [
        f"At N={small:,}, Curifactory's memory per 1,000 sets ÷ assay's: {ratio(ours, theirs)}.",
        "Peak RSS is the process's high-water mark (resource.getrusage, ru_maxrss), measured "
        "in the worker; 'after imports' is its resident size just before the run.",
    ]
    return Section("memory", "Memory", [table], notes)
