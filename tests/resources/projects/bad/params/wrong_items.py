"""get_params() returns a list whose second item is not a parameter set."""

from experiments.good import Params


def get_params():
    return [Params(name="one"), {"name": "two", "seed": 2}]
