"""A stage that derives a variant of its parameters with `dataclasses.replace`."""

import dataclasses

from lib.features import scale
from tracking import note

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["doubled"], cachers=[JsonCacher])
def vary(record):
    note(record, "vary")
    variant = dataclasses.replace(record.params, factor=2 * record.params.factor)
    return scale([1, 2], variant)


def run(param_sets, manager):
    for params in param_sets:
        vary(assay.Record(manager, params))
