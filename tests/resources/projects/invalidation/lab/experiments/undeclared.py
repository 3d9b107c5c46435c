"""Curifactory style: a stage reads `record.state["data"]` without declaring it as an
input, and another reads a value `run()` put in the state by hand."""

from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    note(record, "load")
    return [1, 2, 3]


@assay.stage(outputs=["total"], cachers=[JsonCacher])
def total(record):
    note(record, "total")
    return sum(record.state["data"])


@assay.stage(outputs=["scaled"], cachers=[JsonCacher])
def scaled(record):
    note(record, "scaled")
    return record.state["factor"] * record.params.n


def get_params():
    return [Params(name="u")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        record.state["factor"] = 2
        total(load(record))
        scaled(record)
