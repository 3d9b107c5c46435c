"""A grid over `offset`, which only the last stage of the chain reads."""

from experiments.chain import Params

import assay


def get_params():
    return assay.grid(Params(name="g"), offset=[0, 1, 2])
