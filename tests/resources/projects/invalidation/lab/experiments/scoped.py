"""Globals that a lambda parameter or a method of the same name hid from the fingerprint,
and a lambda in a parameter that calls a helper through its module."""

from dataclasses import dataclass, field

import lib.scoped as scoped_lib
from lib.scoped import Model, score
from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    fn: object = field(default=lambda x: scoped_lib.score(x) * 2)


@assay.stage(outputs=["ranked"], cachers=[JsonCacher])
def ranked(record):
    note(record, "ranked")
    values = [score(v) for v in range(3)]
    return sorted(values, key=lambda score: -score)


@assay.stage(outputs=["normal"], cachers=[JsonCacher])
def normal(record):
    note(record, "normal")
    return Model().normalize(10)


@assay.stage(outputs=["applied"], cachers=[JsonCacher])
def applied(record):
    note(record, "applied")
    return record.params.fn(1)


def get_params():
    return [Params(name="s")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        ranked(record)
        normal(record)
        applied(record)
