"""Two names that make the same folder name (the slash becomes an underscore)."""

from experiments.good import Params


def get_params():
    return [Params(name="x/y"), Params(name="x_y", seed=2)]
