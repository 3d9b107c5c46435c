"""A stage that calls two module-level lambdas (each is keyed on its own code), and a
function from a table of partials (keyed on what that function calls)."""

import functools
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher

INCREMENT = lambda x: x + 1  # noqa: E731
DOUBLE = lambda x: x * 2  # noqa: E731


def _plus(x, k):
    return x + k


def _add(x, k):
    return _plus(x, k)


TABLE = {"add": functools.partial(_add, k=5)}


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["both"], cachers=[JsonCacher])
def both(record):
    note(record, "both")
    return [INCREMENT(record.params.n), DOUBLE(record.params.n), TABLE["add"](record.params.n)]


def get_params():
    return [Params(name="t")]


def run(param_sets, manager):
    for params in param_sets:
        both(assay.Record(manager, params))
