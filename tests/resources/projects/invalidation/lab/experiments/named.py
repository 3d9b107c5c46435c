"""`record.params.name` is a parameter read; `record.name` is only a label."""

import logging

from experiments.chain import Params
from tracking import note

import assay
from assay.caching import JsonCacher

log = logging.getLogger(__name__)


@assay.stage(outputs=["count"], cachers=[JsonCacher])
def count(record):
    note(record, "count")
    return record.params.n


@assay.stage(inputs=["count"], outputs=["tag"], cachers=[JsonCacher])
def tag(record, count):
    note(record, "tag")
    return f"{record.params.name}:{count}"


@assay.stage(inputs=["count"], outputs=["doubled"], cachers=[JsonCacher])
def double(record, count):
    note(record, "double")
    log.info("doubling the count of %s", record.name)
    return 2 * count


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        count(record)
        tag(record)
        double(record)
