"""`deterministic=False`: the stage executes every time, and so does its downstream."""

import random

from tracking import note

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["noise"], cachers=[JsonCacher], deterministic=False)
def sample(record):
    note(record, "sample")
    return [x + random.random() for x in range(record.params.n)]


@assay.stage(inputs=["noise"], outputs=["mean"], cachers=[JsonCacher])
def average(record, noise):
    note(record, "average")
    return sum(noise) / len(noise)


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        sample(record)
        average(record)
