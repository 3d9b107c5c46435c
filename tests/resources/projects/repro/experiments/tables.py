"""Tables, arrays and JSON, for export and reproduction tests.

    make_table -> describe      (per parameter set; describe also reads make_array)
    make_array -^
    leaderboard(every record's description)   (aggregate)

Deterministic as written. Setting ``NOISE = True`` makes every stage add
random numbers (from ``os.urandom``) without changing any stage's code, so
the cache keys stay the same while the results differ: what a stage that
reads the clock or an unseeded random generator does.
"""

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

import assay
from assay.caching import JsonCacher, NumpyCacher, PandasCsvCacher

NOISE = False


def noise(n):
    """``n`` random numbers in [0, 1) when NOISE is on, zeros otherwise."""
    if not NOISE:
        return np.zeros(n)
    return np.frombuffer(os.urandom(8 * n), dtype=np.uint64) / 2.0**64


@dataclass
class Params(assay.ExperimentParameters):
    rows: int = 4
    scale: float = 1.0


@assay.stage(outputs=["table"], cachers=[PandasCsvCacher])
def make_table(record):
    p = record.params
    x = np.arange(p.rows, dtype=float)
    return pd.DataFrame({"x": x, "y": p.scale * x**2 + noise(p.rows), "label": ["r"] * p.rows})


@assay.stage(outputs=["weights"], cachers=[NumpyCacher])
def make_array(record):
    p = record.params
    return np.linspace(0.0, p.scale, 6).reshape(2, 3) + noise(6).reshape(2, 3)


@assay.stage(inputs=["table", "weights"], outputs=["stats"], cachers=[JsonCacher])
def describe(record, table, weights):
    return {
        "rows": int(len(table)),
        "y_sum": round(float(table["y"].sum()), 6),
        "w_max": round(float(weights.max()), 6),
    }


@assay.aggregate(inputs=["stats"], outputs=["board"], cachers=[JsonCacher])
def leaderboard(record, records, stats):
    return {r.params.name: s["y_sum"] for r, s in stats.items()}


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        make_table(record)
        make_array(record)
        describe(record)
    leaderboard(assay.Record(manager, None))
