"""Two parameter sets of experiments/tables.py."""

from experiments.tables import Params


def get_params():
    return [Params(name="small", rows=3), Params(name="wide", rows=5, scale=2.0)]
