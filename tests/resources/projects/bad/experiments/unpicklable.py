"""make_scorer returns a lambda, which PickleCacher cannot save; prepare works fine."""

from experiments.good import get_params  # noqa: F401

import assay
from assay.caching import PickleCacher


@assay.stage(outputs=["numbers"], cachers=[PickleCacher])
def prepare(record):
    return [1, 2, 3]


@assay.stage(inputs=["numbers"], outputs=["scorer"], cachers=[PickleCacher])
def make_scorer(record, numbers):
    return lambda x: x * len(numbers)


def run(param_sets, manager):
    for params in param_sets:
        make_scorer(prepare(assay.Record(manager, params)))
