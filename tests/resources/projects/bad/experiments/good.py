"""A working experiment; the broken parameter files of this project import its Params."""

from dataclasses import dataclass

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 1
    size: int = 3


@assay.stage(outputs=["data"], cachers=[PickleCacher])
def load(record):
    return list(range(record.params.size))


@assay.stage(inputs=["data"], outputs=["total"], cachers=[JsonCacher])
def train(record, data):
    return sum(data) + record.params.seed


def get_params():
    return [Params(name="alpha"), Params(name="beta", seed=2)]


def run(param_sets, manager):
    for params in param_sets:
        train(load(assay.Record(manager, params)))
