"""What ``record.state`` holds while a stage runs: what the stages called before it made.

    first (x, y) -> middle (x -> z) -> last (z -> x, reusing the name)

Each stage returns what it saw, so a test can read it from the cache. ``middle``
also looks at ``y``, which it does not declare as an input: a serial run shows it,
a worker process cannot (it gets only declared inputs) and says so.
"""

from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["x", "y"], cachers=[JsonCacher, JsonCacher])
def first(record):
    note(record, "first")
    seen = {
        "keys": sorted(record.state.keys()),
        "has_y": "y" in record.state,
        "y_or_default": record.state.get("y", "absent"),
        "len": len(record.state),
    }
    return seen, record.params.n


@assay.stage(inputs=["x"], outputs=["z"], cachers=[JsonCacher])
def middle(record, x):
    note(record, "middle")
    return {
        "keys": sorted(record.state),
        "has_y": "y" in record.state,
        "y": record.state["y"],
        "has_z": "z" in record.state,
    }


@assay.stage(inputs=["z"], outputs=["x"], cachers=[JsonCacher])
def last(record, z):
    note(record, "last")
    return {"earlier_x": record.state["x"]}


def get_params():
    return [Params(name="only", n=7)]


def run(param_sets, manager):
    for params in param_sets:
        last(middle(first(assay.Record(manager, params))))
