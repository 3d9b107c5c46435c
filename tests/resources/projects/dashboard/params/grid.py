"""Four sets: two learning rates x two models."""

from experiments.sweep import Params

import assay


def get_params():
    return assay.grid(Params(name="g"), lr=[0.1, 0.2], model=["linear", "tree"])
