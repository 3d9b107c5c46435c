"""Every shape a stage run must keep when it executes in a worker process.

    prepare (no cacher) -> fit (Lazy "model") -> evaluate (reportables) -> wait   (per set)
    leaderboard(every record's score)                      (aggregate, with a reportable)

``evaluate`` logs and prints, so the run's log shows whether worker output
came back. Flags (files in the project root) make one run misbehave:

- ``fail-NAME.flag``: ``evaluate`` raises a ``ValueError`` for parameter set NAME;
- ``exit-NAME.flag``: ``evaluate`` calls ``sys.exit(...)`` for parameter set NAME;
- ``kill-NAME.flag``: ``evaluate`` removes the flag and kills its own worker
  process (SIGKILL) for NAME — once; in the main process it raises instead, so a
  test cannot kill pytest;
- ``unnamed.flag``: ``evaluate`` also reports a reportable without a name;
- ``unpicklable-report.flag``: ``evaluate`` also reports one holding a lock;
- ``slow.flag``: ``wait`` sleeps until the flag is removed (writes
  ``waiting.txt`` first), so a test can interrupt a run at a known point.

Besides ``calls.txt``, every stage appends ``stage:parameter-set:pid`` to
``pids.txt``: which process executed it. In a worker process, ``fit`` waits
(up to 20 s) until another process has noted a stage too, so a parallel run
really spreads over at least two workers, however slowly they start.
"""

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tracking import flag, note

import assay
from assay.caching import JsonCacher, PickleCacher
from assay.reporting import JsonReporter

log = logging.getLogger("experiments.scaled")


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 4
    weight: float = 1.0


def noted(record, stage):
    note(record, stage)
    root = Path(record.manager.config.root)
    with open(root / "pids.txt", "a") as handle:
        handle.write(f"{stage}:{record.name}:{os.getpid()}\n")


@assay.stage(outputs=["raw"])
def prepare(record):
    noted(record, "prepare")
    return [record.params.weight * i for i in range(record.params.n)]


def another_process_noted(root):
    lines = (root / "pids.txt").read_text().splitlines()
    return any(line.rsplit(":", 1)[1] != str(os.getpid()) for line in lines)


@assay.stage(inputs=["raw"], outputs=[assay.Lazy("model")], cachers=[PickleCacher])
def fit(record, raw):
    noted(record, "fit")
    root = Path(record.manager.config.root)
    deadline = time.monotonic() + 20
    while multiprocessing.parent_process() is not None and time.monotonic() < deadline:
        if another_process_noted(root):
            break
        time.sleep(0.01)
    return {"coefficients": [x / 2 for x in raw], "owner": record.params.name}


@assay.stage(inputs=["model"], outputs=["score", "details"], cachers=[JsonCacher, PickleCacher])
def evaluate(record, model):
    noted(record, "evaluate")
    name = record.params.name
    if flag(record, f"fail-{name}"):
        raise ValueError(f"evaluate refuses parameter set {name}")
    if flag(record, f"exit-{name}"):
        sys.exit(f"evaluate gives up on {name}")
    if flag(record, f"kill-{name}"):
        if multiprocessing.parent_process() is None:
            raise RuntimeError("kill flag set, but this is not a worker process")
        (Path(record.manager.config.root) / f"kill-{name}.flag").unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    log.info("evaluating %s in a worker", name)
    print(f"printed while evaluating {name}")
    score = sum(model["coefficients"])
    record.report(JsonReporter({"score": score}, name="score"))
    record.report(JsonReporter({"owner": model["owner"]}, name="owner"))
    if flag(record, "unnamed"):
        record.report(JsonReporter({"unnamed": True}))
    if flag(record, "unpicklable-report"):
        record.report(JsonReporter({"lock": threading.Lock()}, name="lock"))
    return score, {"n": len(model["coefficients"]), "owner": model["owner"]}


@assay.stage(inputs=["score"], outputs=["waited"], cachers=[JsonCacher])
def wait(record, score):
    noted(record, "wait")
    root = Path(record.manager.config.root)
    if (root / "slow.flag").exists():
        with open(root / "waiting.txt", "a") as handle:
            handle.write(f"{record.name}\n")
        while (root / "slow.flag").exists():
            time.sleep(0.05)
    return score


@assay.aggregate(inputs=["score"], outputs=["ranking"], cachers=[JsonCacher])
def leaderboard(record, records, score):
    noted(record, "leaderboard")
    ranking = sorted(((value, r.params.name) for r, value in score.items()), reverse=True)
    record.report(JsonReporter({"best": ranking[0][1]}, name="best"))
    return [name for _, name in ranking]


def get_params():
    return [
        Params(name="a", weight=1.0),
        Params(name="b", weight=2.0),
        Params(name="c", weight=3.0, n=6),
        Params(name="d", weight=0.5),
    ]


def run(param_sets, manager):
    for params in param_sets:
        wait(evaluate(fit(prepare(assay.Record(manager, params)))))
    return leaderboard(assay.Record(manager, None))
