"""The two parameter sets of experiments/diamond.py, from a parameter file."""

from experiments.diamond import Params


def get_params():
    return [
        Params(name="a", scale=1),
        Params(name="b", scale=2),
    ]
