"""A cacher that dies halfway through writing (crash.flag: os._exit, raise.flag: an error).

produce (HalfWritingCacher) -> consume
"""

import os
import pickle
from dataclasses import dataclass

from tracking import flag, note

import assay
from assay.caching import JsonCacher, PickleCacher


class HalfWritingCacher(PickleCacher):
    def save(self, obj):
        data = pickle.dumps(obj)
        with open(self.get_path(), "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            if flag(self.record, "crash"):
                os._exit(3)
            if flag(self.record, "raise"):
                raise OSError("the disk went away")
            handle.write(data[len(data) // 2 :])
        return self.get_path()


@dataclass
class Params(assay.ExperimentParameters):
    size: int = 50


@assay.stage(outputs=["payload"], cachers=[HalfWritingCacher])
def produce(record):
    note(record, "produce")
    return {"numbers": list(range(record.params.size))}


@assay.stage(inputs=["payload"], outputs=["length"], cachers=[JsonCacher])
def consume(record, payload):
    note(record, "consume")
    return len(payload["numbers"])


def get_params():
    return [Params(name="only")]


def run(param_sets, manager):
    for params in param_sets:
        consume(produce(assay.Record(manager, params)))
