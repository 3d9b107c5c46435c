"""A stage that reads a file by a relative path, as researchers' stages often do.

    read   (per set: the number in ``numbers/NAME.txt``, plus one)

The path is relative to the folder ``assay run`` was started in; a worker,
wherever it was started, must resolve it the same way.
"""

from dataclasses import dataclass
from pathlib import Path

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    pass


@assay.stage(outputs=["number"], cachers=[JsonCacher])
def read(record):
    note(record, "read")
    return int(Path("numbers", f"{record.params.name}.txt").read_text()) + 1


def get_params():
    return [Params(name="a"), Params(name="b")]


def run(param_sets, manager):
    for params in param_sets:
        read(assay.Record(manager, params))
