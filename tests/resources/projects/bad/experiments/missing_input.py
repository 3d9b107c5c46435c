"""fit needs 'data', but run() never calls load_data (the stage that makes it)."""

from experiments.good import get_params  # noqa: F401

import assay
from assay.caching import JsonCacher, PickleCacher


@assay.stage(outputs=["data"], cachers=[PickleCacher])
def load_data(record):
    return [1, 2, 3]


@assay.stage(inputs=["data"], outputs=["fitted"], cachers=[JsonCacher])
def fit(record, data):
    return sum(data)


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
