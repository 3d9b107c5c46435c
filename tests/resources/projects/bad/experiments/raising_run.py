"""An experiment whose run() itself raises (a typo, a missing key) after planning a stage."""

from experiments.good import get_params, load  # noqa: F401

import assay


def pick(results, name):
    return results[name]


def run(param_sets, manager):
    records = [assay.Record(manager, params) for params in param_sets]
    for record in records:
        load(record)
    return pick({}, "best")
