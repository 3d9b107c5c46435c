"""show has no outputs but cachers=[]: an error when run() calls it."""

from experiments.good import get_params  # noqa: F401

import assay


@assay.stage(inputs=None, outputs=None, cachers=[])
def show(record):
    print(record.params)


def run(param_sets, manager):
    for params in param_sets:
        show(assay.Record(manager, params))
