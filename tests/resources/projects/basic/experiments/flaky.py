"""A chain whose middle stage fails or is interrupted while a flag file exists.

first -> second -> third      (interrupt.flag: KeyboardInterrupt, fail.flag: ValueError)
"""

from dataclasses import dataclass

from tracking import flag, note

import assay
from assay.caching import PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    value: int = 1


@assay.stage(outputs=["first_out"], cachers=[PickleCacher])
def first(record):
    note(record, "first")
    return record.params.value


@assay.stage(inputs=["first_out"], outputs=["second_out"], cachers=[PickleCacher])
def second(record, first_out):
    note(record, "second")
    if flag(record, "interrupt"):
        raise KeyboardInterrupt
    if flag(record, "fail"):
        raise ValueError(f"second cannot handle {first_out}")
    return first_out + 1


@assay.stage(inputs=["second_out"], outputs=["third_out"], cachers=[PickleCacher])
def third(record, second_out):
    note(record, "third")
    return second_out * 2


def get_params():
    return [Params(name="a", value=1), Params(name="b", value=10)]


def run(param_sets, manager):
    for params in param_sets:
        third(second(first(assay.Record(manager, params))))
