"""Aggregates with and without explicit records.

score (x, y, z) -> collect(all records)   and   collect([x, y])
"""

from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    value: int = 1


@assay.stage(outputs=["score"], cachers=[JsonCacher])
def score(record):
    note(record, "score")
    return record.params.value * 10


@assay.aggregate(inputs=["score"], outputs=["scores"], cachers=[JsonCacher])
def collect(record, records, score):
    note(record, "collect")
    if not all(isinstance(r, assay.Record) for r in score):
        raise TypeError(f"aggregate inputs must be keyed by Record, got {list(score)}")
    return sorted([r.params.name, value] for r, value in score.items())


def get_params():
    return [Params(name="x", value=1), Params(name="y", value=2), Params(name="z", value=3)]


def run(param_sets, manager):
    records = [score(assay.Record(manager, params)) for params in param_sets]
    everything = collect(assay.Record(manager, None))
    first_two = collect(assay.Record(manager, None), records[:2])
    return {"all": everything, "first_two": first_two}
