"""An experiment whose run() calls sys.exit() after planning a stage for each set."""

import sys

from experiments.good import get_params, load  # noqa: F401

import assay


def run(param_sets, manager):
    for params in param_sets:
        load(assay.Record(manager, params))
    sys.exit("no more for today")
