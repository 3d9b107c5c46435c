"""Where assay's overhead goes: cProfile of the overhead benchmark's runs (full run only).

The 5-stage chain with 1 and 1,000 sets without cachers, and 1,000 sets with
``PickleCacher`` and re-run cached (a new process), each under cProfile in its worker; the
functions with the most time of their own. cProfile slows pure-Python code
about twofold, so read the shares, not the seconds.
"""

from __future__ import annotations

from benchmarks.harness import project
from benchmarks.report import Section, Table
from benchmarks.sections import Context
from benchmarks.sections.overhead import LABEL

N = 1000


def run(ctx: Context) -> Section:
    profiles = {}
    args = {"experiment": "chain", "profile": True}
    for n in (1, N):
        with project("chain") as folder:
            result = ctx.workers.run("assay", "run_tool.py", args, folder, {"BENCH_N": n})
            profiles[("none", n)] = result["phases"]["run"]
    with project("chain") as folder:
        env = {"BENCH_N": N, "BENCH_CACHE": "pickle"}
        for mode in ("pickle", "cached"):
            result = ctx.workers.run("assay", "run_tool.py", args, folder, env)
            profiles[(mode, N)] = result["phases"]["run"]
    tables = []
    for (mode, n), phase in profiles.items():
        found = phase["profile"]
        title = f"{LABEL[mode]}, N={n:,}: {phase['seconds']:.3f} s under cProfile"
        for view, rows in (
            ("most own time", found["own"]),
            ("assay's, by cumulative time", found["assay"]),
        ):
            table = Table(
                f"{title}; {view}", ["function", "calls", "own s", "own %", "cumulative s"]
            )
            for name, calls, own, cumulative in rows:
                share = f"{own / (found['total'] or 1) * 100:.0f} %"
                table.rows.append([name, f"{calls:,}", f"{own:.3f}", share, f"{cumulative:.3f}"])
            tables.append(table)
    notes = [
        "Each run under cProfile in its own worker; 'own %' is the share of all profiled own "
        "time. cProfile slows pure-Python code about twofold: read the shares, not the seconds."
    ]
    section = Section("profile", "Profile of assay's overhead (cProfile)", tables, notes)
    section.data["profiles"] = {key: phase["profile"] for key, phase in profiles.items()}
    return section
