"""A stage that reads its parameters wholesale (`dataclasses.asdict`) beside one that does not."""

import dataclasses

from experiments.chain import load
from tracking import note

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["fields"], cachers=[JsonCacher])
def snapshot(record):
    note(record, "snapshot")
    values = dataclasses.asdict(record.params)
    return {"n": values["n"], "unused": values["unused"]}


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        load(record)
        snapshot(record)
