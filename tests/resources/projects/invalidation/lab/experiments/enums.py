"""A parameter that is an enum member: editing a member's value recomputes what reads it."""

import enum
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


class Optimizer(enum.Enum):
    ADAM = 0.001
    SGD = 0.1


@dataclass
class Params(assay.ExperimentParameters):
    optimizer: Optimizer = Optimizer.ADAM


@assay.stage(outputs=["rate"], cachers=[JsonCacher])
def rate(record):
    note(record, "rate")
    return record.params.optimizer.value


def get_params():
    return [Params(name="adam"), Params(name="sgd", optimizer=Optimizer.SGD)]


def run(param_sets, manager):
    for params in param_sets:
        rate(assay.Record(manager, params))
