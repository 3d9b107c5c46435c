"""Plain values put in ``record.state`` by hand, read by later stages and by an aggregate,
and entries an aggregate reads from its records without declaring them: what a worker
shows the stages must be what a serial run shows them.

    source (puts "hand") -> total (reads "hand", declares nothing)
                         -> doubled (declares "hand" as an input: no stage outputs it)
    first -> a -> second (a -> b)
    measure (-> m, and puts "size" by hand, after a while) -> sized (reads "size")
    summary (aggregate over b; looks at each record's "a" and "hand")
"""

import time
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage()
def source(record):
    note(record, "source")
    record.state["hand"] = record.params.n * 10


@assay.stage(outputs=["total"], cachers=[JsonCacher])
def total(record):
    note(record, "total")
    return {"hand": record.state.get("hand", "MISSING"), "seen": "hand" in record.state}


@assay.stage(inputs=["hand"], outputs=["doubled"], cachers=[JsonCacher])
def doubled(record, hand):
    note(record, "doubled")
    return hand * 2


@assay.stage(outputs=["a"], cachers=[JsonCacher])
def first(record):
    note(record, "first")
    return record.params.n


@assay.stage(inputs=["a"], outputs=["b"], cachers=[JsonCacher])
def second(record, a):
    note(record, "second")
    return a + 1


@assay.stage(outputs=["m"], cachers=[JsonCacher])
def measure(record):
    note(record, "measure")
    time.sleep(0.5)  # a later stage that did not wait for this one would not see "size"
    record.state["size"] = record.params.n * 3
    return record.params.n


@assay.stage(outputs=["sized"], cachers=[JsonCacher])
def sized(record):
    note(record, "sized")
    return record.state.get("size", "MISSING")


@assay.aggregate(inputs=["b"], outputs=["summary"], cachers=[JsonCacher])
def summary(record, records, b):
    note(record, "summary")
    return {
        r.params.name: {"b": value, "hand": r.state.get("hand", "MISSING")}
        for r, value in b.items()
    }


def get_params():
    return [Params(name="one", n=1), Params(name="two", n=2)]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        source(record)
        total(record)
        doubled(record)
        second(first(record))
        sized(measure(record))
    summary(assay.Record(manager, None))
