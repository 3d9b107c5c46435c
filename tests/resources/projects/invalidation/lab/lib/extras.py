"""Helpers that stages of experiments/reach.py reach in less direct ways."""

import functools


def offset_of(x):
    return x + 1


@functools.cache
def lookup(x):
    return x * 10


def logged(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


@logged
def cube(x):
    return x**3


def negate(x):
    return -x


OPS = {"negate": negate}


def halve(x):
    return x / 2


class Builder:
    @classmethod
    def make(cls, x):
        return x + 7

    @staticmethod
    def twice(x):
        return 2 * x
