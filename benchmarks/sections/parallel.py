"""Section 6: 8 parameter sets x one CPU-bound stage, serially and on 2 processes.

The shared ``workloads/burn.py`` runs under assay (serially, ``parallel=2``
and the Dask executor with 2 local workers, when they exist) and Curifactory
(serially and ``parallel=2``); a plain loop and ``multiprocessing.Pool(2)``
over the same function give the limit. Every run is a fresh process on a new
project, so start-up (worker processes, a Dask cluster) counts.
"""

from __future__ import annotations

import importlib.util
import inspect

from benchmarks.harness import Sample, expect, project
from benchmarks.report import Section, Table, Target
from benchmarks.sections import Context

SETS = 8
WHY = (
    "in the same repetitions multiprocessing.Pool(2) itself reached {pool}{limit}; against that "
    "limit assay's parallel=2 reached {efficiency} of Pool(2)'s speed-up (Curifactory: "
    "{theirs}). {fixed}What would close the gap to Pool(2): overlap that start-up with the "
    "work, e.g. start the worker processes while the run is being planned."
)
FIXED = (
    "With stages that do nothing, parallel=2 took {extra} s more than a serial run (the "
    "fixed cost of starting 2 spawned workers that import assay and the project, and of "
    "shipping stage runs to them; table below), against Pool(2)'s few ms of fork. "
)
NOT_YET = "not implemented yet (issue 6)"
VARIANTS = {  # name → (tool, worker, options), serial baseline first for each tool
    "assay, serial": ("assay", "run_tool.py", {}),
    "assay, parallel=2 (--parallel 2)": ("assay", "run_tool.py", {"parallel": 2}),
    "assay, Dask executor, 2 local workers": ("assay", "run_tool.py", {"executor": "dask", "parallel": 2}),
    "Curifactory, serial": ("curifactory", "run_tool.py", {}),
    "Curifactory, parallel=2 (--parallel 2)": ("curifactory", "run_tool.py", {"parallel": 2}),
    "plain Python loop, serial": ("assay", "pool.py", {"mode": "serial"}),
    "multiprocessing.Pool(2)": ("assay", "pool.py", {"mode": "pool", "processes": 2}),
}  # fmt: skip
BASELINE = {"assay": "assay, serial", "curifactory": "Curifactory, serial"}
POOL, PLAIN, OURS = (
    "multiprocessing.Pool(2)",
    "plain Python loop, serial",
    "assay, parallel=2 (--parallel 2)",
)


def missing_feature(options: dict) -> str | None:
    """Why assay cannot run these options yet, or ``None`` if it can."""
    import assay

    accepted = inspect.signature(assay.run_experiment).parameters
    if any(k not in accepted for k in options):
        return NOT_YET
    if options.get("executor") == "dask" and importlib.util.find_spec("distributed") is None:
        return "dask not installed: pip install 'assay[dask]'"
    return None


def run(ctx: Context) -> Section:
    seconds_each = 0.2 if ctx.quick else 2.0
    loops = calibrate(ctx, seconds_each)
    reps = ctx.reps(3, 1)
    absent = {
        name: missing_feature(options)
        for name, (tool, worker, options) in VARIANTS.items()
        if tool == "assay" and worker == "run_tool.py" and options
    }
    variants = {n: v for n, v in VARIANTS.items() if not absent.get(n)}
    times: dict[str, list[float]] = {}
    empty: dict[str, list[float]] = {}
    for rep in range(reps):
        ctx.say(f"  parallel: repetition {rep + 1}/{reps}")
        for name, variant in variants.items():
            times.setdefault(name, []).append(measure(ctx, name, *variant, loops))
            if (
                not ctx.quick and variant[1] == "run_tool.py"
            ):  # the fixed cost, stages doing nothing
                empty.setdefault(name, []).append(measure(ctx, name, *variant, 0))
    table, speedups = speed_table(times, absent, seconds_each)
    tables = [table]
    extra = None
    if empty:
        tables.append(Table("the same runs with stages that do nothing: the fixed cost", ["how", "s"],
                            [[name, Sample(values, "s")] for name, values in empty.items()]))  # fmt: skip
        if OURS in empty:
            extra = Sample(empty[OURS], "s").median - Sample(empty["assay, serial"], "s").median
    notes = [
        f"Each stage run spins a loop of about {loops:,} iterations (sized here to "
        f"{seconds_each:g} s).",
        "Speed-up = that tool's serial run ÷ this run, repetition by repetition. Share of "
        "Pool(2)'s speed-up = (speed-up − 1) ÷ (Pool(2)'s speed-up − 1) in the same "
        "repetition: 100 % is as good as a bare process pool on this machine at that moment.",
        "Curifactory's --parallel runs the experiment in N processes on slices of the "
        "parameter sets, then once more in the parent on the cache they filled; assay's "
        "parallel=2 runs stage runs on a pool of 2 spawned worker processes.",
    ]
    target = parallel_target(ctx.quick, table, speedups, extra)
    return Section("parallel", "Parallel runs", tables, notes, [target])


def speed_table(times: dict, absent: dict, seconds_each: float) -> tuple[Table, dict]:
    """The runs' times, speed-ups over each tool's serial run, and share of Pool(2)'s."""
    table = Table(
        f"{SETS} sets × one stage of {seconds_each:g} s of pure-Python CPU work: whole run",
        ["how", "s", "speed-up over serial", "share of Pool(2)'s speed-up"],
    )
    speedups: dict[str, Sample] = {}
    for name, (tool, worker, _options) in VARIANTS.items():
        if name not in times:
            table.rows.append([name, absent[name], "—", "—"])
            continue
        base = PLAIN if worker == "pool.py" else BASELINE[tool]
        if base != name:
            speedups[name] = Sample([b / t for b, t in zip(times[base], times[name])], "×", True)
        table.rows.append([name, Sample(times[name], "s"), speedups.get(name), None])
    pool = speedups[POOL].values
    for row in table.rows:
        if row[0] in speedups and row[0] != POOL:
            shares = [
                (a - 1) / (p - 1) * 100 if p > 1 else 0
                for a, p in zip(speedups[row[0]].values, pool)
            ]
            row[3] = Sample(shares, "%", True)
    return table, speedups


def parallel_target(quick: bool, table: Table, speedups: dict, extra: float | None) -> Target:
    ours, pool = speedups.get(OURS), speedups[POOL]
    shares = {row[0]: row[3] for row in table.rows if isinstance(row[3], Sample)}
    theirs = speedups.get("Curifactory, parallel=2 (--parallel 2)")
    their_share = shares.get("Curifactory, parallel=2 (--parallel 2)")
    why = "assay has no `--parallel` yet (issue 6)."
    if ours:
        why = WHY.format(
            pool=f"{pool.median:.2f}×",
            limit=" (other work on this shared 2-core machine took part of the second core, so "
            "≥ 1.9× was out of reach for any tool in this run)" if pool.median < 1.9 else "",
            efficiency=f"{shares[OURS].median:.0f} %" if OURS in shares else "—",
            theirs=f"{theirs.median:.2f}×, {their_share.median:.0f} %" if their_share else "—",
            fixed=FIXED.format(extra=f"{extra:.2f}") if extra is not None else "",
        )  # fmt: skip
    return Target(
        "`--parallel 2`, 8 × 2 s" + (" (quick: 8 × 0.2 s)" if quick else ""),
        "Curifactory 1.70× over serial; Pool(2) 1.99×",
        "≥ 1.9×",
        f"{ours.median:.2f}×" if ours else NOT_YET,
        ours.median >= 1.9 if ours else None,
        why,
    )


def calibrate(ctx: Context, seconds: float) -> int:
    """Loop iterations that take about ``seconds`` on this machine now (fastest of 3 probes)."""
    probe = 2_000_000
    fastest = min(
        ctx.workers.run("assay", "pool.py", {"mode": "serial", "n": 1, "loops": probe})["phases"][
            "run"
        ]["seconds"]
        for _ in range(3)
    )
    return int(probe * seconds / fastest)


def measure(ctx: Context, name: str, tool: str, worker: str, options: dict, loops: int) -> float:
    if worker == "pool.py":
        result = ctx.workers.run(tool, worker, {"n": SETS, "loops": loops, **options})
        phase = result["phases"]["run"]
    else:
        env = {"BENCH_N": SETS, "BENCH_LOOPS": loops}
        with project("burn") as folder:
            args = {"experiment": "burn", "options": options}
            phase = ctx.workers.run(tool, worker, args, folder, env)["phases"]["run"]
        if not options:
            expect(phase["executed"] == SETS, f"{name}: {phase['executed']} stages ran, not {SETS}")
    expect(phase["correct"], f"{name}: a parameter set ended with a wrong total")
    return phase["seconds"]
