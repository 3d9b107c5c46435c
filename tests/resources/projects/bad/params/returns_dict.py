"""get_params() returns a dict instead of a list."""

from experiments.good import Params


def get_params():
    return {"one": Params(name="one")}
