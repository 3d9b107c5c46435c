"""An experiment written for Curifactory 0.20, run by assay: only the imports changed.

It began as ``import curifactory as cf`` with ``curifactory.caching`` and
``curifactory.reporting``; those three lines now name ``assay``, and nothing
else was touched. Its ``run()`` reads its stages' results, to print the best
model and to return the comparison table, which Curifactory allows with
``--no-dag`` and assay always does. Run it from examples/from-curifactory::

    assay run wine -p models                # 5 models on scikit-learn's wine data
    assay run wine -p models --parallel 2   # the same, on 2 worker processes

Stages, for each parameter set: load_data -> train_model -> score_model; then
the aggregate stage compare_models tabulates every set's test accuracy. The
data is scikit-learn's bundled copy of the UCI wine table (nothing is
downloaded); sets with the same seed and test size share one split.
"""

from dataclasses import dataclass

import pandas as pd
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import assay as cf
from assay.caching import JsonCacher, PickleCacher
from assay.reporting import DFReporter, JsonReporter


@dataclass
class Params(cf.ExperimentParameters):
    model_type: str = "knn"
    n_neighbors: int = 5
    max_depth: int = None  # None: a field Curifactory (and assay) leaves out of the hash
    seed: int = 1
    test_size: float = 0.25


@cf.stage(None, ["x_train", "x_test", "y_train", "y_test"], [PickleCacher] * 4)
def load_data(record):
    data = load_wine()
    return tuple(
        train_test_split(
            data.data,
            data.target,
            test_size=record.params.test_size,
            random_state=record.params.seed,
            stratify=data.target,
        )
    )


@cf.stage(["x_train", "y_train"], ["model"], [PickleCacher])
def train_model(record, x_train, y_train):
    params = record.params
    if params.model_type == "knn":
        model = make_pipeline(StandardScaler(), KNeighborsClassifier(params.n_neighbors))
    elif params.model_type == "tree":
        model = DecisionTreeClassifier(max_depth=params.max_depth, random_state=params.seed)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return model.fit(x_train, y_train)


@cf.stage(["model", "x_test", "y_test"], ["accuracy"], [JsonCacher])
def score_model(record, model, x_test, y_test):
    accuracy = round(float(model.score(x_test, y_test)), 4)
    record.report(JsonReporter({"accuracy": accuracy}, name="accuracy"))
    return accuracy


@cf.aggregate(["accuracy"], ["table"], [JsonCacher])
def compare_models(record, records, accuracy):
    table = {r.params.name: value for r, value in accuracy.items()}
    frame = pd.DataFrame({"model": list(table), "accuracy": list(table.values())})
    record.report(DFReporter(frame.sort_values("accuracy", ascending=False), name="models"))
    return table


def run(param_sets, manager):
    records = []
    for param_set in param_sets:
        record = cf.Record(manager, param_set)
        records.append(score_model(train_model(load_data(record))))
    comparison = compare_models(cf.Record(manager, None), records)

    best = max(records, key=lambda r: r.state["accuracy"])
    print(f"Best model: {best.params.name} ({best.state['accuracy']:.1%} test accuracy)")
    return comparison.state["table"]
