"""Parameter sets whose fields cannot be pickled, so they cannot travel to workers.

    apply   (per set: uses the set's ``transform``)

``lambda`` holds a function defined inside ``get_params`` and ``locked`` a
``threading.Lock``; ``plain`` is fine. Serially every set runs; with
``--parallel`` the run must stop before anything executes.
"""

import threading
from dataclasses import dataclass, field
from typing import Any

from tracking import note

import assay
from assay.caching import JsonCacher


def identity(x):
    return x


@dataclass
class Params(assay.ExperimentParameters):
    transform: Any = identity
    guard: Any = field(default=None, metadata={"hash": False})


@assay.stage(outputs=["applied"], cachers=[JsonCacher])
def apply(record):
    note(record, "apply")
    return record.params.transform(3)


def get_params():
    return [
        Params(name="plain"),
        Params(name="lambda", transform=lambda x: x * 2),
        Params(name="locked", guard=threading.Lock()),
    ]


def run(param_sets, manager):
    for params in param_sets:
        apply(assay.Record(manager, params))
