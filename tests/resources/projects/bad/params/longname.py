"""A parameter-set name too long for the folder its results are filed under."""

from experiments.good import Params


def get_params():
    return [Params(name="short"), Params(name="x" * 300)]
