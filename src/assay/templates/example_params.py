"""Parameter sets for experiments/example.py: `assay run example -p example`.

A parameter file is plain Python: build the sets however you like and return
them from get_params(). Another file can import this one and modify its sets.
"""

from experiments.example import Params

import assay


def get_params():
    """Four sets: every combination of two learning rates and two epoch counts."""
    base = Params(name="line", noise=0.5)
    return assay.grid(base, learning_rate=[0.01, 0.1], epochs=[20, 200])
