"""A parameter file without get_params()."""

from experiments.good import Params

SETS = [Params(name="one")]
