"""Classify iris flowers with two model families and rank every configuration.

Run from examples/iris (or a copy of it)::

    assay run iris -p grid     # 6 configurations: 3 logistic regressions, 3 random forests
    assay run iris -p quick    # 2 configurations, derived from grid's
    assay run iris             # the single default set of get_params() below

Stages, for each parameter set: load_data -> split -> train -> evaluate; then
the aggregate stage leaderboard ranks every set by macro F1. The data is
scikit-learn's bundled copy of Fisher's iris table, so nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import assay
from assay.caching import JsonCacher, PandasCsvCacher, PandasParquetCacher, PickleCacher
from assay.reporting import DFReporter, JsonReporter

MODELS = ("logistic", "random_forest")


@dataclass
class Params(assay.ExperimentParameters):
    """One configuration of the iris experiment."""

    model: str = "logistic"
    """The model family: "logistic" or "random_forest"."""
    seed: int = 42
    """Seed of the train/test split and of the random forest."""
    test_size: float = 0.3
    """Share of the flowers held out for evaluation."""
    C: float = 1.0
    """Logistic regression: inverse regularization strength (smaller = stronger)."""
    n_estimators: int = 100
    """Random forest: number of trees."""
    max_depth: int | None = None
    """Random forest: maximum tree depth (None: grow until the leaves are pure)."""

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {self.model!r}")


@assay.stage(inputs=None, outputs=["iris"], cachers=[PandasParquetCacher])
def load_data(record):
    """The 150 flowers: four measurements and the species (column "target")."""
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].astype("int64")
    return frame


@assay.stage(
    inputs=["iris"],
    outputs=["x_train", "x_test", "y_train", "y_test"],
    cachers=[PickleCacher] * 4,
)
def split(record, iris):
    """A stratified train/test split, reproducible from the seed."""
    params = record.params
    features = iris.drop(columns="target")
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        iris["target"],
        test_size=params.test_size,
        random_state=params.seed,
        stratify=iris["target"],
    )
    return x_train, x_test, y_train, y_test


@assay.stage(inputs=["x_train", "y_train"], outputs=["model"], cachers=[PickleCacher])
def train(record, x_train, y_train):
    """Fit the model family the parameter set names, with its hyper-parameters."""
    params = record.params
    if params.model == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(C=params.C, max_iter=1000))
    else:
        model = RandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            random_state=params.seed,
        )
    return model.fit(x_train, y_train)


@assay.stage(inputs=["model", "x_test", "y_test"], outputs=["scores"], cachers=[JsonCacher])
def evaluate(record, model, x_test, y_test):
    """Accuracy and macro-averaged F1 on the held-out flowers."""
    predicted = model.predict(x_test)
    scores = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 4),
    }
    record.report(JsonReporter(scores, name="scores"))
    return scores


@assay.aggregate(inputs=["scores"], outputs=["leaderboard"], cachers=[PandasCsvCacher])
def leaderboard(record, records, scores):
    """One row per parameter set, best macro F1 first."""
    rows = [{"param_set": r.params.name, "model": r.params.model, **s} for r, s in scores.items()]
    table = pd.DataFrame(rows).sort_values(
        ["f1_macro", "accuracy", "param_set"], ascending=[False, False, True]
    )
    table = table.reset_index(drop=True)
    record.report(DFReporter(table, name="leaderboard"))
    return table


def get_params():
    """Used without a parameter file (`assay run iris`): one logistic regression."""
    return [Params(name="default")]


def run(param_sets, manager):
    """Each parameter set through the four stages, then one leaderboard over them all."""
    for params in param_sets:
        evaluate(train(split(load_data(assay.Record(manager, params)))))
    leaderboard(assay.Record(manager, None))
