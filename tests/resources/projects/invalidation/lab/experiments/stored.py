"""A stage whose output is kept by the project's own cacher (``lib.storage``), a stage
that reads it, and a stage beside them that uses only assay's cachers."""

from dataclasses import dataclass

from lib.storage import NumbersCacher
from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["thirds"], cachers=[NumbersCacher])
def thirds(record):
    note(record, "thirds")
    return [i / 3 for i in range(1, record.params.n + 1)]


@assay.stage(inputs=["thirds"], outputs=["total"], cachers=[JsonCacher])
def total(record, thirds):
    note(record, "total")
    return sum(thirds)


@assay.stage(outputs=["count"], cachers=[JsonCacher])
def count(record):
    note(record, "count")
    return record.params.n


def get_params():
    return [Params(name="s")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        total(thirds(record))
        count(record)
