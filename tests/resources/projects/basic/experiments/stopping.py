"""Stage runs that a stop abandons: executing in a worker, or waiting for one.

    work -> finish        (per parameter set: a, b, c), then the aggregate ``tally``

In a worker process, ``work`` writes ``working-NAME.txt`` and then sleeps until
the run stops it (at most 60 s). With two workers, ``work`` for ``a`` and ``b``
execute at once and ``c``'s waits for a free worker. Flags (files in the project
root):

- ``fail-NAME.flag``: ``work`` raises a ``ValueError`` for parameter set NAME,
  once another set's ``work`` is executing (in a worker; at most 60 s later).

In the main process (a serial run) nothing waits.
"""

import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

from tracking import flag, note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    value: int = 1


def _in_a_worker() -> bool:
    return multiprocessing.parent_process() is not None


def _until(done, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


@assay.stage(outputs=["worked"], cachers=[JsonCacher])
def work(record):
    note(record, "work")
    root = Path(record.manager.config.root)
    name = record.name
    if flag(record, f"fail-{name}"):
        if _in_a_worker():
            _until(lambda: any(p.name != f"working-{name}.txt" for p in root.glob("working-*")))
        raise ValueError(f"work refuses parameter set {name}")
    (root / f"working-{name}.txt").touch()
    if _in_a_worker():
        _until(lambda: False)
    return record.params.value


@assay.stage(inputs=["worked"], outputs=["finished"], cachers=[JsonCacher])
def finish(record, worked):
    note(record, "finish")
    return worked + 1


@assay.aggregate(inputs=["finished"], outputs=["total"], cachers=[JsonCacher])
def tally(record, records, finished):
    note(record, "tally")
    return sum(finished.values())


def get_params():
    return [Params(name="a", value=1), Params(name="b", value=2), Params(name="c", value=3)]


def run(param_sets, manager):
    for params in param_sets:
        finish(work(assay.Record(manager, params)))
    tally(assay.Record(manager, None))
