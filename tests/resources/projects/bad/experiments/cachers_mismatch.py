"""fit declares two outputs but one cacher: an error when run() calls it."""

from experiments.good import get_params  # noqa: F401

import assay
from assay.caching import PickleCacher


@assay.stage(outputs=["model", "score"], cachers=[PickleCacher])
def fit(record):
    return {"weights": [1, 2]}, 0.5


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
