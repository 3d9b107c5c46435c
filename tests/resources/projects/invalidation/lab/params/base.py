"""The two sets of experiments/chain.py, from a parameter file a test can edit."""

from experiments.chain import Params


def get_params():
    return [
        Params(name="a", n=3, factor=2),
        Params(name="b", n=4, factor=3, offset=5),
    ]
