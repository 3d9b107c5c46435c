"""Two different stage functions with the same name, both called on each record; run()
then reads a result (which would execute what is planned so far)."""

from experiments.good import get_params, load  # noqa: F401

import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["other"], cachers=[JsonCacher])
def load(record):  # noqa: F811 - the clash is the point
    return 1


def run(param_sets, manager):
    from experiments import good

    for params in param_sets:
        record = assay.Record(manager, params)
        good.load(record)
        load(record)
        print(len(record.state["data"]))
