"""The shared experiment of the overhead benchmark: N parameter sets x 5 trivial stages.

This very file runs under assay and under Curifactory: ``BENCH_TOOL`` chooses
which package is imported as ``cf`` (assay keeps Curifactory's API), and
``BENCH_N`` / ``BENCH_CACHE`` choose how many parameter sets there are and
whether every output gets a ``PickleCacher``. The stages do next to nothing,
so a run's time is the framework's own overhead. ``BENCH_STAGES=0`` makes
the same run without calling any stage: its time is the run's fixed cost.
"""

import os
from dataclasses import dataclass

if os.environ.get("BENCH_TOOL") == "curifactory":
    import curifactory as cf
    from curifactory.caching import PickleCacher
else:
    import assay as cf
    from assay.caching import PickleCacher

N = int(os.environ.get("BENCH_N", "10"))
CACHERS = [PickleCacher] if os.environ.get("BENCH_CACHE") == "pickle" else None
STAGES = int(os.environ.get("BENCH_STAGES", "5"))
executed = [0]
"""How many stage functions ran in this process (a cached re-run must run none)."""


@dataclass
class Params(cf.ExperimentParameters):
    index: int = 0


@cf.stage(None, ["a"], CACHERS)
def first(record):
    executed[0] += 1
    return record.params.index


@cf.stage(["a"], ["b"], CACHERS)
def second(record, a):
    executed[0] += 1
    return a + 1


@cf.stage(["b"], ["c"], CACHERS)
def third(record, b):
    executed[0] += 1
    return b + 1


@cf.stage(["c"], ["d"], CACHERS)
def fourth(record, c):
    executed[0] += 1
    return c + 1


@cf.stage(["d"], ["e"], CACHERS)
def fifth(record, d):
    executed[0] += 1
    return d + 1


def get_params():
    return [Params(name=f"set{i}", index=i) for i in range(N)]


def run(param_sets, manager):
    for params in param_sets:
        if STAGES:
            fifth(fourth(third(second(first(cf.Record(manager, params))))))
        else:
            cf.Record(manager, params)


def check(records, phase):
    """Whether every record ended with the right value (reading it may load it)."""
    records = [r for r in records if r.params is not None]
    if not STAGES:
        return len(records) == N
    return len(records) == N and all(r.state["e"] == r.params.index + 4 for r in records)
