"""`version=` takes a stage's code out of its key: edits do not recompute, a new version does."""

from tracking import note

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["base"], cachers=[JsonCacher], version="1")
def make(record):
    note(record, "make")
    return [1, 2, 3]


@assay.stage(inputs=["base"], outputs=["total"], cachers=[JsonCacher])
def add(record, base):
    note(record, "add")
    return sum(base)


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        make(record)
        add(record)
