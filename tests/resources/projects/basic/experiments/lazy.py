"""Lazy outputs: dropped from memory once cached, reloaded where needed.

make_big -> Lazy("big") -> total          (per parameter set)
make_blob -> Lazy("blob", resolve=False) -> inspect_blob
owners(every record's big)               (aggregate)
"""

from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    size: int = 3


@assay.stage(outputs=[assay.Lazy("big")], cachers=[PickleCacher])
def make_big(record):
    note(record, "make_big")
    return {"owner": record.params.name, "values": list(range(record.params.size))}


@assay.stage(inputs=["big"], outputs=["total"], cachers=[JsonCacher])
def total(record, big):
    note(record, "total")
    return sum(big["values"])


@assay.stage(outputs=[assay.Lazy("blob", resolve=False)], cachers=[PickleCacher])
def make_blob(record):
    note(record, "make_blob")
    return ["blob of", record.params.name]


@assay.stage(inputs=["blob"], outputs=["blob_info"], cachers=[JsonCacher])
def inspect_blob(record, blob):
    note(record, "inspect_blob")
    value = blob.load() if isinstance(blob, assay.Lazy) else blob  # a list under --ignore-lazy
    return {"type": type(blob).__name__, "loaded": value}


@assay.aggregate(inputs=["big"], outputs=["owners"], cachers=[JsonCacher])
def owners(record, records, big):
    note(record, "owners")
    return {r.params.name: value["owner"] for r, value in big.items()}


def get_params():
    return [Params(name="small", size=3), Params(name="large", size=5)]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        total(make_big(record))
        inspect_blob(make_blob(record))
    owners(assay.Record(manager, None))
