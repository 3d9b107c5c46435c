"""The chain of `chain.py` for every set, then an aggregate over every set's `final`."""

from experiments import chain
from tracking import note

import assay
from assay.caching import JsonCacher


@assay.aggregate(inputs=["final"], outputs=["finals"], cachers=[JsonCacher])
def collect(record, records, final):
    note(record, "collect")
    return {r.name: value for r, value in final.items()}


def get_params():
    return chain.get_params()


def run(param_sets, manager):
    chain.run(param_sets, manager)
    collect(assay.Record(manager, None))
