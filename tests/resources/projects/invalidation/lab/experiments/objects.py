"""Stages that reach code through objects (see lib/objects.py), one way each."""

from dataclasses import dataclass, field

from lib.objects import CFG, SCALE, Base, Model, One, Opt, fast
from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    model: Model = field(default_factory=Model)
    opt: Opt = Opt.SGD

    def weight(self):
        return 3


def stage(name):
    return assay.stage(outputs=[name], cachers=[JsonCacher])


@stage("constant")
def constant(record):
    note(record, "constant")
    return CFG.apply(10)


@stage("nested")
def nested(record):
    note(record, "nested")
    return record.params.model.fit(10)


@stage("rate")
def rate(record):
    note(record, "rate")
    return record.params.opt.lr()


@stage("bound")
def bound(record):
    note(record, "bound")
    return SCALE(10)


@stage("decorated")
def decorated(record):
    note(record, "decorated")
    return fast(10)


@stage("one")
def one(record):
    note(record, "one")
    return One().value()


@stage("spawned")
def spawned(record):
    note(record, "spawned")
    return Base().spawn().value()


@assay.aggregate(outputs=["weights"], cachers=[JsonCacher])
def weights(record, records):
    note(record, "weights")
    return sum(r.params.weight() for r in records)


STAGES = (constant, nested, rate, bound, decorated, one, spawned)


def get_params():
    return [Params(name="o")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        for each in STAGES:
            each(record)
    weights(assay.Record(manager, None))
