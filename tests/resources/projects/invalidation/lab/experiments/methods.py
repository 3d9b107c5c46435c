"""Stages that use a method, a property and a class constant of their parameter class.

Each stage is keyed on the code of what it calls (and what that calls: `halve`), not on
the rest of the class: editing one recomputes only the stages that use it.
"""

from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


def halve(x):
    return x / 2


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1
    other: int = 1
    SCALE = 3

    def schedule(self):
        return [self.lr, halve(self.lr)]

    @property
    def doubled(self):
        return self.lr * 2


@assay.stage(outputs=["schedule"], cachers=[JsonCacher])
def plan(record):
    note(record, "plan")
    return record.params.schedule()


@assay.stage(outputs=["scaled"], cachers=[JsonCacher])
def scale(record):
    note(record, "scale")
    return record.params.doubled * record.params.SCALE


@assay.stage(outputs=["other"], cachers=[JsonCacher])
def plain(record):
    note(record, "plain")
    return record.params.other


def get_params():
    return [Params(name="m")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        plan(record)
        scale(record)
        plain(record)
