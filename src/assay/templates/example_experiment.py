"""An example experiment: fit a straight line to noisy data, with nothing but Python.

Run it from the project folder::

    assay run example -p example    # the 4 parameter sets of params/example.py
    assay run example               # the one set of get_params() below

Run it twice: the second run finds every result in the cache and executes
nothing. Change a stage's code and run again: that stage and the ones after
it recompute, the others stay cached.

Each parameter set goes through three stages, make_data -> fit -> evaluate,
and the aggregate stage compare puts every set's scores side by side. fit and
evaluate log metrics (a loss curve, the test error), which the report shows.

Then look at what the runs did::

    assay ls             # the runs so far
    assay show latest    # one run: its command, parameter sets and stages
    assay compare 1 2    # how two runs differ, metrics included
    assay ui             # a dashboard of runs and metrics (pip install 'assay[ui]')

and load a result in Python (after `assay run example`, which runs the set named
"default"): ``assay.load("scores", experiment="example",
param_set="default")``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher, PickleCacher
from assay.reporting import JsonReporter

TRUE_SLOPE = 2.5
TRUE_INTERCEPT = -1.0


@dataclass
class Params(assay.ExperimentParameters):
    """Everything that can vary between runs of this experiment."""

    seed: int = 0
    """Seed of the random numbers: the same seed gives the same data."""
    n_points: int = 200
    """How many (x, y) points to make."""
    noise: float = 1.0
    """Standard deviation of the noise added to y."""
    test_fraction: float = 0.25
    """Share of the points kept aside to score the fitted line."""
    learning_rate: float = 0.05
    """Step size of gradient descent."""
    epochs: int = 100
    """How many gradient-descent steps to take."""


@assay.stage(inputs=None, outputs=["train", "test"], cachers=[PickleCacher, PickleCacher])
def make_data(record):
    """Points on the line y = 2.5 x - 1, with noise, split into train and test."""
    params = record.params
    rng = random.Random(params.seed)
    points = []
    for _ in range(params.n_points):
        x = rng.uniform(-3.0, 3.0)
        points.append((x, TRUE_SLOPE * x + TRUE_INTERCEPT + rng.gauss(0.0, params.noise)))
    n_test = max(1, int(len(points) * params.test_fraction))
    return points[n_test:], points[:n_test]


@assay.stage(inputs=["train"], outputs=["model"], cachers=[PickleCacher])
def fit(record, train):
    """Fit slope and intercept by gradient descent on the mean squared error."""
    params = record.params
    slope = intercept = 0.0
    n = len(train)
    for epoch in range(params.epochs):
        residuals = [(slope * x + intercept - y, x) for x, y in train]
        record.log_metric("train_mse", sum(r * r for r, _ in residuals) / n, step=epoch)
        slope -= params.learning_rate * 2.0 / n * sum(r * x for r, x in residuals)
        intercept -= params.learning_rate * 2.0 / n * sum(r for r, _ in residuals)
    return {"slope": slope, "intercept": intercept}


@assay.stage(inputs=["model", "test"], outputs=["scores"], cachers=[JsonCacher])
def evaluate(record, model, test):
    """Score the line on the test points: mean squared error and R²."""
    predictions = [model["slope"] * x + model["intercept"] for x, _ in test]
    actual = [y for _, y in test]
    mean = sum(actual) / len(actual)
    squared_error = sum((p - y) ** 2 for p, y in zip(predictions, actual))
    total = sum((y - mean) ** 2 for y in actual)
    scores = {
        "mse": round(squared_error / len(actual), 4),
        "r2": round(1.0 - squared_error / total, 4),
        "slope": round(model["slope"], 4),
        "intercept": round(model["intercept"], 4),
    }
    record.log_metric("test_mse", scores["mse"])
    record.log_metric("r2", scores["r2"])
    record.report(JsonReporter(scores, name="scores"))
    return scores


@assay.aggregate(inputs=["scores"], outputs=["leaderboard"], cachers=[JsonCacher])
def compare(record, records, scores):
    """Every parameter set's scores in one table, best (lowest error) first."""
    rows = [{"param_set": r.params.name, **s} for r, s in scores.items()]
    rows.sort(key=lambda row: row["mse"])
    record.report(JsonReporter(rows, name="leaderboard"))
    return rows


def get_params():
    """The parameter sets used when no parameter file is given (`assay run example`)."""
    return [Params(name="default")]


def run(param_sets, manager):
    """Chain the stages on one record per parameter set, then compare them all."""
    for params in param_sets:
        evaluate(fit(make_data(assay.Record(manager, params))))
    compare(assay.Record(manager, None))
