"""Sections 1 and 2: framework overhead per stage, and the fully cached re-run.

N parameter sets x a chain of 5 trivial stages (``workloads/chain.py``, the
same file under both tools): without cachers, with a ``PickleCacher`` on
every output, and re-run with everything cached (a new process on the same
project). The same run without any stage call gives the run's fixed cost
(run store, log, parameter sets, records), which is subtracted to get the
cost per stage. joblib.Memory runs the same five steps as cached functions.
"""

from __future__ import annotations

import math
import statistics

from benchmarks.harness import Sample, expect, metadata_probe, project, ratio, scratch_root
from benchmarks.report import Section, Table, Target
from benchmarks.sections import Context

MODES = ("none", "pickle", "cached")
LABEL = {
    "empty": "no stages (fixed cost)",
    "none": "no cachers",
    "pickle": "PickleCacher",
    "cached": "cached re-run",
}
TOOLS = ("assay", "curifactory", "joblib")

WHY = {
    "none": (
        "at N=1 the per-stage figure is the difference of two runs of tens of ms, and what it "
        "holds is mostly what a stage function costs the first time a process calls it: assay "
        "fingerprints its code (source, syntax tree, the helpers it calls) to key the cache; at "
        "larger N, planning and bookkeeping of each stage run. What would close it: keep code "
        "fingerprints across processes (an on-disk cache keyed by the source file's path, size "
        "and mtime), and trim the per-stage-run work the profile points at."
    ),
    "pickle": (
        "every cached output costs new file-system entries: a folder per stage run, the file "
        "and its sidecar (each written under a temporary name, then renamed) and a by-name "
        "symlink, so about 4 inodes and 2 renames per stage run where Curifactory makes 2 "
        "files. In the scratch folder an inode cost {create} µs (file) and {symlink} µs "
        "(symlink) during this section, so this layout cannot reach 150 µs on this disk. What "
        "would close it: fewer inodes per artifact (no folder per stage run, one by-name link "
        "per parameter set rather than per stage, or the name index in the run store)."
    ),
    "cached": (
        "a fully cached re-run still plans every stage run (keys from code fingerprints and "
        "upstream keys), reads each output's sidecar and stats the files it lists (a file "
        "deleted or cut short is not reused: about 25 µs of this row since 2026-12-06), "
        "checks each stage's by-name link and "
        "records the whole run (every stage run, in the run record and the store); at N=1 the "
        "first-call fingerprinting dominates, "
        "as without cachers. What would close it: the same fingerprint cache, and a cheaper "
        "record of reused stage runs (see the profile)."
    ),
    "10000": (
        "it is the per-stage cost without cachers times 50,000 stage runs, plus the run's fixed "
        "cost; closing the per-stage target closes this one."
    ),
}


def sizes(quick: bool) -> dict[str, list[int]]:
    """The N for each tool (Curifactory's cost grows quadratically with N)."""
    if quick:
        return {"assay": [1, 100, 1000], "curifactory": [1, 100], "joblib": [1, 100]}
    return {
        "assay": [1, 10, 100, 1000, 10000],
        "curifactory": [1, 10, 100, 1000],
        "joblib": [1, 10, 100, 1000],  # its cost per call is flat; 10,000 adds minutes
    }


def repetitions(n: int, quick: bool) -> int:
    """More repetitions where a run is short and its fixed cost's noise matters most."""
    if quick:
        return 2 if n <= 100 else 1
    return 9 if n <= 10 else 5 if n <= 100 else 3


def run(ctx: Context) -> Section:
    ns = sizes(ctx.quick)
    all_ns = sorted({n for v in ns.values() for n in v})
    seconds: dict[tuple, list[float]] = {}
    facts: dict[tuple, dict] = {}
    probes = []
    reps = max(repetitions(n, ctx.quick) for n in all_ns)
    for rep in range(reps):
        ctx.say(f"  overhead: repetition {rep + 1}/{reps}")
        probes.append(metadata_probe(scratch_root()))
        for n in (n for n in all_ns if rep < repetitions(n, ctx.quick)):
            for tool in (t for t in TOOLS if n in ns[t]):
                for mode, phase in measure(ctx, tool, n):
                    seconds.setdefault((tool, mode, n), []).append(phase["seconds"])
                    facts[(tool, mode, n)] = phase
    if ctx.quick:  # the quick run's one 10,000-set point
        for mode, phase in measure(ctx, "assay", 10000, ("empty", "none")):
            seconds.setdefault(("assay", mode, 10000), []).append(phase["seconds"])
    per_stage = stage_costs(seconds)
    notes = growth(per_stage, seconds) + [
        "Per stage = (the run − the same run calling no stage) ÷ (N × 5): what the stages add. "
        "The median of the runs without stages (the run's fixed cost: run store, log, parameter "
        "sets, records) is taken from each repetition; at N ≤ 10 that fixed cost and its noise "
        "dwarf the stages, so a repetition can come out negative. The whole runs are in the "
        "second table. joblib has no run around its calls: its figure is the loop's time ÷ "
        "(N × 5).",
        "joblib.Memory has no 'no cachers' mode (without caching it is a plain call); its "
        "re-run must load every cached value, since the call returns it.",
        f"During this section, creating a small file in the scratch folder took "
        f"{Sample([p['create'] for p in probes], 'µs')} µs and a symlink "
        f"{Sample([p['symlink'] for p in probes], 'µs')} µs (one probe per repetition): "
        "every cached artifact costs a few such operations, whatever the tool.",
    ]
    return Section(
        "overhead",
        "Framework overhead per stage, and the cached re-run",
        tables=[stage_table(per_stage), run_table(seconds, facts)],
        notes=notes,
        targets=targets(per_stage, seconds, facts, probes),
    )


def measure(ctx: Context, tool: str, n: int, modes=("empty", *MODES)):
    """Yield ``(mode, phase facts)`` for one repetition; every run is a fresh process."""
    env = {"BENCH_N": n}
    if tool == "joblib":  # it has neither a run around its calls nor a "no cachers" mode
        with project() as folder:
            for mode in ("pickle", "cached"):
                phase = ctx.workers.run("joblib", "joblib_chain.py", {"n": n}, folder)["phases"]
                yield mode, check(tool, mode, n, phase["run"])
        return
    for mode, extra in (("empty", {"BENCH_STAGES": 0}), ("none", {})):
        if mode in modes:
            with project("chain") as folder:
                result = ctx.workers.run(
                    tool, "run_tool.py", {"experiment": "chain"}, folder, {**env, **extra}
                )
                yield mode, check(tool, mode, n, result["phases"]["run"])
    if "pickle" in modes:
        with project("chain") as folder:
            for mode in ("pickle", "cached"):
                result = ctx.workers.run(
                    tool, "run_tool.py", {"experiment": "chain"}, folder,
                    {**env, "BENCH_CACHE": "pickle"},
                )  # fmt: skip
                yield mode, check(tool, mode, n, result["phases"]["run"])


def check(tool: str, mode: str, n: int, phase: dict) -> dict:
    """Fail on a wrong result; return the phase's facts."""
    where = f"{tool}, {LABEL[mode]}, N={n}"
    expect(phase["correct"], f"{where}: a record ended with a wrong value")
    ran = {"empty": 0, "none": 5 * n, "pickle": 5 * n, "cached": 0}[mode]
    expect(phase["executed"] == ran, f"{where}: {phase['executed']} stages ran, not {ran}")
    if mode == "cached" and tool == "assay":
        expect(
            phase["runner_loaded"] == 0 and phase["loads"] == 0,
            f"{where}: {phase['runner_loaded']} artifacts in manager.runner.loaded and "
            f"{phase['loads']} cacher loads; a fully cached run must load none",
        )
    return phase


def stage_costs(seconds: dict) -> dict[tuple, Sample]:
    """µs per stage: each run minus the median run without stages, over N x 5."""
    costs = {}
    for (tool, mode, n), values in seconds.items():
        if mode == "empty":
            continue
        fixed = statistics.median(seconds.get((tool, "empty", n), [0.0]))
        costs[(tool, mode, n)] = Sample([(s - fixed) / (n * 5) * 1e6 for s in values], "µs")
    return costs


def stage_table(per_stage: dict) -> Table:
    table = Table(
        "µs per stage, the run's fixed cost taken out: median (min–max); "
        "speed-up = their time ÷ assay's",
        ["N sets × 5 stages", "cachers", "assay µs", "Curifactory µs", "joblib.Memory µs",
         "vs Curifactory", "vs joblib"],
        left=2,
    )  # fmt: skip
    for n in sorted({k[2] for k in per_stage}):
        for mode in MODES:
            ours, theirs, joblib = (per_stage.get((tool, mode, n)) for tool in TOOLS)
            if ours is None and theirs is None:
                continue
            table.rows.append(
                [f"{n:,}", LABEL[mode], ours, theirs if theirs else "not run (quadratic)",
                 joblib, ratio(ours, theirs), ratio(ours, joblib)]
            )  # fmt: skip
    return table


def run_table(seconds: dict, facts: dict) -> Table:
    table = Table(
        "whole runs: seconds, and stage functions run / artifacts loaded "
        "(assay · Curifactory · joblib)",
        ["N", "run", "assay s", "Curifactory s", "joblib s", "stages run", "loaded"],
        left=2,
    )
    for n in sorted({k[2] for k in seconds}):
        for mode in ("empty", *MODES):
            keys = [(tool, mode, n) for tool in TOOLS]
            if not any(k in seconds for k in keys):
                continue
            samples = [Sample(seconds[k], "s") if k in seconds else None for k in keys]
            ran = " · ".join(str(facts[k]["executed"]) if k in facts else "–" for k in keys)
            loaded = " · ".join(str(facts[k]["loads"]) if k in facts else "–" for k in keys)
            table.rows.append([f"{n:,}", LABEL[mode], *samples, ran, loaded])
    return table


def growth(per_stage: dict, seconds: dict) -> list[str]:
    """How each figure grows with N: per stage, and the whole run's scaling exponent."""
    lines = []
    for tool in TOOLS:
        for mode in MODES:
            points = sorted((k[2], v) for k, v in per_stage.items() if k[:2] == (tool, mode))
            if len(points) < 2:
                continue
            (n0, first), (n1, last) = points[0], points[-1]
            (m0, t0), (m1, t1) = [
                (n, statistics.median(seconds[(tool, mode, n)])) for n, _ in points[-2:]
            ]
            exponent = math.log(t1 / t0) / math.log(m1 / m0)
            lines.append(
                f"Growth, {tool}, {LABEL[mode]}: {first.median:,.1f} µs/stage at N={n0:,} → "
                f"{last.median:,.1f} µs/stage at N={n1:,}; the whole run grows as N^{exponent:.2f} "
                f"from N={m0:,} to N={m1:,} (1 = linear, 2 = quadratic)."
            )
    return lines


def targets(per_stage: dict, seconds: dict, facts: dict, probes: list[dict]) -> list[Target]:
    found = []
    rows = [
        ("none", "overhead per executed stage, no cachers", "138 µs at N=1, 2,300 µs at N=1,000", 20),
        ("pickle", "overhead per stage, small pickle cache", "374 µs at N=1, 3,980 µs at N=1,000", 150),
        ("cached", "fully cached re-run, per stage", "315 µs at N=1, 3,080 µs at N=1,000", 20),
    ]  # fmt: skip
    probe = {k: statistics.median(p[k] for p in probes) for k in ("create", "symlink")}
    for mode, figure, anchor, limit in rows:
        points = sorted((k[2], v.median) for k, v in per_stage.items() if k[:2] == ("assay", mode))
        value, n = max((v, k) for k, v in points)
        measured = (
            f"worst {value:,.1f} µs (N={n:,}); {points[-1][1]:,.1f} µs at N={points[-1][0]:,}"
        )
        met = value <= limit
        target = f"≤ {limit} µs at every N"
        if mode == "cached":
            loaded = sum(f["loads"] for k, f in facts.items() if k[:2] == ("assay", "cached"))
            measured += f", {loaded} loaded"
            target += ", 0 loaded"
            met = met and loaded == 0
        why = WHY[mode].format(create=f"{probe['create']:.0f}", symlink=f"{probe['symlink']:.0f}")
        profile = (mode, 1) if mode == "none" and n == 1 else (mode, 1000)
        found.append(Target(figure, anchor, target, measured, met, why, profile))
    big = seconds.get(("assay", "none", 10000))
    if big:
        value = statistics.median(big)
        found.append(
            Target(
                "10,000 sets × 5 stages, no cachers (whole run)",
                "not feasible (quadratic)",
                "≤ 2 s",
                f"{value:.2f} s",
                value <= 2,
                WHY["10000"],
                ("none", 1000),
            )
        )
    return found
