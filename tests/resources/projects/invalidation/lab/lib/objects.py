"""Code reached through objects: methods of dataclass and enum values, a bound method held
as a constant, a decorator applied by a call, and classes that refer to each other."""

import enum
import functools
from dataclasses import dataclass


@dataclass
class Cfg:
    k: int = 2

    def apply(self, x):
        return x * self.k


CFG = Cfg(3)


@dataclass
class Model:
    depth: int = 2

    def fit(self, x):
        return x * self.depth


class Opt(enum.Enum):
    SGD = "sgd"
    ADAM = "adam"

    def lr(self):
        return 0.1 if self is Opt.SGD else 0.01


@dataclass
class Scaler:
    k: int = 2

    def apply(self, x):
        return x * self.k


SCALE = Scaler(k=2).apply


def twice(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return fn(x) * 2

    return wrapper


def base(x):
    return x + 1


fast = twice(base)


class Base:
    def spawn(self):
        return One()

    def value(self):
        return 0


class One(Base):
    def value(self):
        return 1
