"""explode raises: the run fails after load has been cached."""

from experiments.good import get_params, load  # noqa: F401

import assay
from assay.caching import JsonCacher


@assay.stage(inputs=["data"], outputs=["result"], cachers=[JsonCacher])
def explode(record, data):
    return helper(data)


def helper(data):
    raise ValueError(f"cannot handle {len(data)} numbers")


def run(param_sets, manager):
    for params in param_sets:
        explode(load(assay.Record(manager, params)))
