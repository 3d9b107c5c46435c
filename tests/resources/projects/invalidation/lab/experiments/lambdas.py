"""A parameter field holding a function (lambda, partial, closure): `apply` reads it."""

from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class FnParams(assay.ExperimentParameters):
    fn: object = None
    size: int = 3


@assay.stage(outputs=["numbers"], cachers=[JsonCacher])
def numbers(record):
    note(record, "numbers")
    return list(range(1, record.params.size + 1))


@assay.stage(inputs=["numbers"], outputs=["applied"], cachers=[JsonCacher])
def apply(record, numbers):
    note(record, "apply")
    return [record.params.fn(x) for x in numbers]


@assay.stage(inputs=["applied"], outputs=["summed"], cachers=[JsonCacher])
def add_up(record, applied):
    note(record, "add_up")
    return sum(applied)


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        numbers(record)
        apply(record)
        add_up(record)
