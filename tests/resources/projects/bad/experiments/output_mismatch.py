"""fit declares two outputs but returns one value."""

from experiments.good import get_params  # noqa: F401

import assay
from assay.caching import JsonCacher, PickleCacher


@assay.stage(outputs=["model", "score"], cachers=[PickleCacher, JsonCacher])
def fit(record):
    print(f"fitting {record.params.name}")  # kept in the run's output and log
    return {"weights": [1, 2]}


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
