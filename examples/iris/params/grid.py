"""Six configurations: three regularization strengths, three forest depths.

`assay run iris -p grid`. Other parameter files import LOGISTIC and FOREST
from here and adjust them (see quick.py).
"""

from dataclasses import replace

from experiments.iris import Params

import assay

BASE = Params(name="iris", seed=42, test_size=0.3)
"""What every configuration shares: the split."""

LOGISTIC = replace(BASE, name="logistic", model="logistic")
FOREST = replace(BASE, name="forest", model="random_forest", n_estimators=100)


def get_params():
    return assay.grid(LOGISTIC, C=[0.1, 1.0, 10.0]) + assay.grid(FOREST, max_depth=[1, 3, None])
