"""A chain whose stages each depend on one kind of thing, so a test can tell them apart.

    load -> transform  (lib.features.scale, imported by name; reads `factor` inside it)
         -> enrich     (lib.features.shift through `import lib.features as f`; SHIFT)
         -> fit        (the project class lib.models.Model; the constant RATE)
         -> pack       (the installed package tinypkg)
    transform, enrich, fit, pack -> combine (the helper `total` of this module)
    combine -> report  (reads the late parameter `offset`)

Every stage notes `stage:set` in calls.txt when it really executes.
"""

from dataclasses import dataclass, field

import lib.features as f
import tinypkg
from lib.features import scale
from lib.models import Model
from tracking import flag, note

import assay
from assay.caching import JsonCacher

RATE = 2
"""The model's rate (a module-level constant read by `fit`)."""

TITLE = "Scores"  # read by no stage


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3
    factor: int = 2
    offset: int = 0
    unused: int = 0
    workers: int = field(default=1, metadata={"hash": False})
    verbose: bool = False
    hash_representations: dict = assay.set_hash_functions(verbose=None)


def total(values):
    return sum(values)


def title():
    return TITLE


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    note(record, "load")
    return [i + 1 for i in range(record.params.n)]


@assay.stage(inputs=["data"], outputs=["scaled"], cachers=[JsonCacher])
def transform(record, data):
    """Scale the data by the set's factor."""
    note(record, "transform")
    return scale(data, record.params)


@assay.stage(inputs=["data"], outputs=["shifted"], cachers=[JsonCacher])
def enrich(record, data):
    note(record, "enrich")
    return f.shift(data)


@assay.stage(inputs=["data"], outputs=["predicted"], cachers=[JsonCacher])
def fit(record, data):
    note(record, "fit")
    model = Model(RATE, jobs=record.params.workers)
    return model.predict(data)


@assay.stage(inputs=["data"], outputs=["packed"], cachers=[JsonCacher])
def pack(record, data):
    note(record, "pack")
    return [tinypkg.triple(x) for x in data]


@assay.stage(
    inputs=["scaled", "shifted", "predicted", "packed"], outputs=["combined"], cachers=[JsonCacher]
)
def combine(record, scaled, shifted, predicted, packed):
    note(record, "combine")
    return total(scaled) + total(shifted) + total(predicted) + total(packed)


@assay.stage(inputs=["combined"], outputs=["final"], cachers=[JsonCacher])
def report(record, combined):
    if flag(record, "interrupt-" + record.name):
        raise KeyboardInterrupt
    note(record, "report")
    if record.params.verbose:
        print(f"final score of {record.name}: {combined + record.params.offset}")
    return combined + record.params.offset


def get_params():
    return [Params(name="a", n=3, factor=2), Params(name="b", n=4, factor=3, offset=5)]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        for step in (load, transform, enrich, fit, pack, combine, report):
            step(record)
