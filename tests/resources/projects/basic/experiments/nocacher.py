"""A stage without a cacher feeding a cached one, and a stage without outputs.

source (no cacher) -> process (cached) -> announce (no outputs: always runs)
"""

from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    size: int = 4


@assay.stage(outputs=["raw"])
def source(record):
    note(record, "source")
    return list(range(record.params.size))


@assay.stage(inputs=["raw"], outputs=["processed"], cachers=[PickleCacher])
def process(record, raw):
    note(record, "process")
    return sum(raw)


@assay.stage(inputs=["processed"])
def announce(record, processed):
    note(record, "announce")
    print(f"processed={processed}")


def get_params():
    return [Params(name="one")]


def run(param_sets, manager):
    for params in param_sets:
        announce(process(source(assay.Record(manager, params))))
