"""A run() written the way Curifactory allows: it reads its stages' results while it
runs, to print them, to branch on them and to return them. assay executes what is
planned so far at each such read, then plans on.

    raw (no cacher) -> load -> [read "data": train only sets with more than 2 values]
    train -> model; score (no cacher, reads raw and model) read set by set;
    best (aggregate over the trained records) read at the end.
"""

import gc
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["raw"])
def raw(record):
    note(record, "raw")
    return list(range(record.params.n))


@assay.stage(inputs=["raw"], outputs=["data"], cachers=[JsonCacher])
def load(record, raw):
    note(record, "load")
    return [x * 2 for x in raw]


@assay.stage(inputs=["data"], outputs=["model"], cachers=[JsonCacher])
def train(record, data):
    note(record, "train")
    return sum(data)


@assay.stage(inputs=["raw", "model"], outputs=["score"])
def score(record, raw, model):
    note(record, "score")
    return {"score": model / len(raw), "collecting": gc.isenabled()}


@assay.aggregate(inputs=["model"], outputs=["best"], cachers=[JsonCacher])
def best(record, records, model):
    note(record, "best")
    return max(model.values())


def get_params():
    return [Params(name="short", n=2), Params(name="mid", n=3), Params(name="long", n=5)]


def run(param_sets, manager):
    trained = []
    for params in param_sets:
        record = load(raw(assay.Record(manager, params)))
        print(f"{params.name}: {len(record.state['data'])} values")
        if len(record.state["data"]) > 2:
            trained.append(train(record))
    scores = {r.params.name: score(r).state["score"] for r in trained}
    chosen = best(assay.Record(manager, None), trained)
    return {"scores": scores, "best": chosen.state["best"]}
