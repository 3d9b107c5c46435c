"""A stage that compares its parameter set with another one (`==`)."""

from experiments.chain import Params
from tracking import note

import assay
from assay.caching import JsonCacher

REFERENCE = Params(name="a", n=3, factor=2)


@assay.stage(outputs=["is_reference"], cachers=[JsonCacher])
def compare(record):
    note(record, "compare")
    return record.params == REFERENCE


def run(param_sets, manager):
    for params in param_sets:
        compare(assay.Record(manager, params))
