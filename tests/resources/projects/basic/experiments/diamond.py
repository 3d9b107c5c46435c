"""Fan-out / fan-in, then an aggregate over every parameter set.

    load -> double, square -> combine     (per parameter set)
    summarize(every record's combined)      (aggregate)

Values for the default sets (n=3): a (scale 1) combines to 11, b (scale 2) to 32.
"""

from dataclasses import dataclass, field

from tracking import note

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3
    scale: int = 1
    offset: int = 0
    workers: int = field(default=1, metadata={"hash": False})


@assay.stage(inputs=None, outputs=["data"], cachers=[PickleCacher])
def load(record):
    """Make the numbers."""
    note(record, "load")
    return [record.params.scale * i for i in range(record.params.n)]


@assay.stage(inputs=["data"], outputs=["doubled"], cachers=[PickleCacher])
def double(record, data):
    note(record, "double")
    print(f"doubling for {record.params.name}")
    return [2 * x for x in data]


@assay.stage(inputs=["data"], outputs=["squared"], cachers=[PickleCacher])
def square(record, data):
    note(record, "square")
    return [x * x for x in data]


@assay.stage(inputs=["doubled", "squared"], outputs=["combined"], cachers=[JsonCacher])
def combine(record, doubled, squared):
    note(record, "combine")
    return {"sum": sum(doubled) + sum(squared) + record.params.offset, "n": len(doubled)}


@assay.aggregate(inputs=["combined"], outputs=["summary"], cachers=[JsonCacher])
def summarize(record, records, combined):
    note(record, "summarize")
    return {r.params.name: value["sum"] for r, value in combined.items()}


def get_params():
    return [Params(name="a", scale=1), Params(name="b", scale=2)]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        load(record)
        double(record)
        square(record)
        combine(record)
    summarize(assay.Record(manager, None))
