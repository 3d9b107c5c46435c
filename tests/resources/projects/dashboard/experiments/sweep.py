"""A small grid search for the dashboard tests: every kind of artifact, and metrics.

    make_data -> train -> evaluate -> plot       (per parameter set)
    leaderboard(every record's scores)           (aggregate)

``make_data`` writes JSON, a CSV table and a numpy array; ``train`` a pickled
"model" and a loss curve (``log_metric`` with steps); ``evaluate`` JSON scores
and the metrics ``accuracy`` and ``f1``; ``plot`` a PNG it draws itself. The
numbers are deterministic functions of the parameters.

``WAIT_FOR`` (an environment variable naming a file) makes ``train`` print a
line and wait until that file exists: the tests use it to watch a run that is
still going.
"""

import os
import struct
import time
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

import assay
from assay.caching import JsonCacher, NumpyCacher, PandasCsvCacher, PathRef, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1
    epochs: int = 4
    model: str = "linear"


@assay.stage(
    outputs=["rows", "table", "matrix"], cachers=[JsonCacher, PandasCsvCacher, NumpyCacher]
)
def make_data(record):
    rows = [{"x": i, "y": 2 * i + 1} for i in range(12)]
    matrix = np.arange(12, dtype=np.float64).reshape(3, 4)
    return rows, pd.DataFrame(rows), matrix


@assay.stage(inputs=["rows", "matrix"], outputs=["model"], cachers=[PickleCacher])
def train(record, rows, matrix):
    params = record.params
    waiting = os.environ.get("WAIT_FOR")
    if waiting:
        print(f"training {params.name}: waiting for {waiting}", flush=True)
        deadline = time.time() + 60
        while not os.path.exists(waiting) and time.time() < deadline:
            time.sleep(0.05)
    loss = 1.0
    for epoch in range(params.epochs):
        loss *= 1 - params.lr
        record.log_metric("loss", round(loss, 6), step=epoch)
    return {
        "kind": params.model,
        "weight": params.lr * len(rows) + float(matrix.sum()),
        "loss": loss,
    }


@assay.stage(inputs=["model"], outputs=["scores"], cachers=[JsonCacher])
def evaluate(record, model):
    params = record.params
    bonus = 0.05 if params.model == "tree" else 0.0
    accuracy = round(0.6 + params.lr + bonus, 4)
    record.log_metric("accuracy", accuracy)
    record.log_metric("f1", round(accuracy - 0.02, 4))
    return {"accuracy": accuracy, "model": model["kind"]}


@assay.stage(inputs=["scores"], outputs=["figure"], cachers=[PathRef(extension=".png")])
def plot(record, scores):
    path = record.get_path("figure.png")
    shade = int(255 * scores["accuracy"]) % 256
    with open(path, "wb") as handle:
        handle.write(_png(8, 8, (shade, 80, 160)))
    return path


@assay.aggregate(inputs=["scores"], outputs=["leaderboard"], cachers=[JsonCacher])
def leaderboard(record, records, scores):
    rows = [{"param_set": r.params.name, **s} for r, s in scores.items()]
    return sorted(rows, key=lambda row: -row["accuracy"])


def get_params():
    return [Params(name="base")]


def run(param_sets, manager):
    for params in param_sets:
        plot(evaluate(train(make_data(assay.Record(manager, params)))))
    leaderboard(assay.Record(manager, None))


def _png(width, height, rgb):
    """A tiny one-colour PNG, without an imaging library."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
