"""Outputs that a cacher does not give back exactly as the stage returned them.

JSON turns the integer keys of ``make``'s dictionary into strings and its tuples
into lists. ``describe`` pickles what it was handed: the same bytes whether
``make`` ran just before it in this process, in another worker, or in an earlier
run, since a stage always gets its inputs as the cache holds them.
"""

from dataclasses import dataclass

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["pairs"], cachers=[JsonCacher])
def make(record):
    return {i: (i, i * record.params.n) for i in range(3)}


@assay.stage(inputs=["pairs"], outputs=["seen"], cachers=[PickleCacher])
def describe(record, pairs):
    return {
        "keys": [type(key).__name__ for key in pairs],
        "values": [type(value).__name__ for value in pairs.values()],
        "pairs": pairs,
    }


def get_params():
    return [Params(name="three"), Params(name="four", n=4)]


def run(param_sets, manager):
    for params in param_sets:
        describe(make(assay.Record(manager, params)))
