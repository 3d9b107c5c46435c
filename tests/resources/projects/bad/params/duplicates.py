"""Two parameter sets share the name 'same'."""

from experiments.good import Params


def get_params():
    return [Params(name="same", seed=1), Params(name="other", seed=2), Params(name="same", seed=3)]
