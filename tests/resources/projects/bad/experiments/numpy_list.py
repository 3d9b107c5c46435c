"""make_array returns a list, which NumpyCacher cannot save."""

from experiments.good import get_params  # noqa: F401

import assay
from assay.caching import NumpyCacher


@assay.stage(outputs=["array"], cachers=[NumpyCacher])
def make_array(record):
    return [1.0, 2.0, 3.0]


def run(param_sets, manager):
    for params in param_sets:
        make_array(assay.Record(manager, params))
