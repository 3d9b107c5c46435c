"""Parameter sets whose `fn` field holds a lambda, a partial and a closure."""

import functools

from experiments.lambdas import FnParams


def power(x, exponent):
    return x**exponent


def make_adder(step):
    def add(x):
        return x + step

    return add


def get_params():
    return [
        FnParams(name="lam", fn=lambda x: x * 2),
        FnParams(name="part", fn=functools.partial(power, exponent=2)),
        FnParams(name="clo", fn=make_adder(3)),
    ]
