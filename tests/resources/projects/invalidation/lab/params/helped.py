"""Parameter sets whose `fn` holds a function (plain, and in a partial) that calls a helper
and reads a constant: editing either recomputes the stages that call `fn`."""

import functools

from experiments.lambdas import FnParams

OFFSET = 1


def _square(x):
    return x * x


def squared_plus_offset(x):
    return _square(x) + OFFSET


def scaled_square(x, k):
    return _square(x) * k


def get_params():
    return [
        FnParams(name="h", fn=squared_plus_offset),
        FnParams(name="p", fn=functools.partial(scaled_square, k=2)),
    ]
