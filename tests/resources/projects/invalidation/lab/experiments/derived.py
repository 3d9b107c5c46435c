"""Attributes of a parameter set that are not fields: one set in __post_init__, and a
functools.cached_property computed before the stage runs. Each is made from fields."""

import functools
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    k: int = 2

    def __post_init__(self):
        self.steps = self.k * 10

    @functools.cached_property
    def scaled(self):
        return self.k * 100


@assay.stage(outputs=["steps"], cachers=[JsonCacher])
def steps(record):
    note(record, "steps")
    return record.params.steps


@assay.stage(outputs=["scaled"], cachers=[JsonCacher])
def scaled(record):
    note(record, "scaled")
    return record.params.scaled


def get_params():
    return [Params(name="two", k=2), Params(name="seven", k=7)]


def run(param_sets, manager):
    for params in param_sets:
        print(params.name, "scaled", params.scaled)  # computed before the stage runs
        record = assay.Record(manager, params)
        steps(record)
        scaled(record)
