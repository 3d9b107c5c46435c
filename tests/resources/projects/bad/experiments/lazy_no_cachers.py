"""make has a Lazy output but no cachers: an error when run() calls it."""

from experiments.good import get_params  # noqa: F401

import assay


@assay.stage(outputs=[assay.Lazy("big")])
def make(record):
    return list(range(10))


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
