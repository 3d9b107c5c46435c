"""Parameter sets named with numbers instead of text."""

from experiments.good import Params


def get_params():
    return [Params(name=1), Params(name=2, seed=2)]
