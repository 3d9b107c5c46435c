"""The shared experiment of the big-artifact benchmark: one large output, written then read.

Runs unchanged under assay and Curifactory (``BENCH_TOOL``). ``BENCH_KIND``
(``frame`` or ``array``), ``BENCH_MB`` and ``BENCH_CACHER`` (``parquet``,
``numpy`` or ``pickle``) choose the artifact and its cacher. The data is made
by ``prepare()`` before the timed run, so the stage only hands it over: the
run's time is the cacher's write (phase ``write``) or the cached run's load
(phase ``read``, where a consuming stage needs the artifact).
"""

import io
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from _common import make_data, prefault, same_data

if os.environ.get("BENCH_TOOL") == "curifactory":
    import curifactory as cf
    from curifactory import caching
else:
    import assay as cf
    from assay import caching

KIND = os.environ.get("BENCH_KIND", "array")
MEGABYTES = float(os.environ.get("BENCH_MB", "10"))
# assay's PandasParquetCacher is PandasCacher(format="parquet"); Curifactory only has the latter.
PARQUET = getattr(caching, "PandasParquetCacher", None) or caching.PandasCacher(format="parquet")
CACHER = {
    "parquet": PARQUET,
    "numpy": getattr(caching, "NumpyCacher", None),  # assay only
    "pickle": caching.PickleCacher,
}[os.environ.get("BENCH_CACHER", "pickle")]
PHASE = "write"
DATA = None
seen = {}
executed = [0]


@dataclass
class Params(cf.ExperimentParameters):
    kind: str = "array"
    megabytes: float = 0.0


def prepare():
    """Make the data, and import the libraries the cachers use (untimed)."""
    global DATA
    DATA = make_data(KIND, MEGABYTES)
    small = make_data(KIND, 0.01)
    buffer = io.BytesIO()
    if KIND == "frame":
        small.to_parquet(buffer)
        pd.read_parquet(io.BytesIO(buffer.getvalue()))
    else:
        np.save(buffer, small)
        np.load(io.BytesIO(buffer.getvalue()))


def warm():
    """Called right before each timed run (see ``_common.prefault``)."""
    prefault(3 * MEGABYTES)


@cf.stage(None, ["big"], [CACHER])
def make(record):
    executed[0] += 1
    return DATA


@cf.stage(["big"], None)
def consume(record, big):
    seen["big"] = big


def get_params():
    return [Params(name="big", kind=KIND, megabytes=MEGABYTES)]


def run(param_sets, manager):
    for params in param_sets:
        record = make(cf.Record(manager, params))
        if PHASE == "read":
            consume(record)


def check(records, phase):
    """Whether the read-back equals what was written."""
    if phase == "write":
        return True
    return same_data(seen.pop("big"), DATA)
