"""The runs table stays quick on a big run store (``benchmarks/ui_runs_table.py`` times it).

No timings here: the work SQLite does is counted in its own steps (a progress handler
called every 100 virtual-machine instructions), and the plan of the metric sort is read
from ``EXPLAIN QUERY PLAN``, on a run store made by real runs and then grown in SQL.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assay.ui import queries
from ui_helpers import subprocess_env

TRAIN = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1
    model: str = "tree"


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def fit(record):
    for epoch in range(3):
        record.log_metric("loss", record.params.lr / (epoch + 1), step=epoch)
    record.log_metric("accuracy", 0.5 + record.params.lr)
    return {"lr": record.params.lr}


def get_params():
    return [Params(name="slow"), Params(name="fast", lr=0.3, model="linear")]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
"""


def run_train(root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "assay", "run", "train"],
        cwd=root, env=subprocess_env(), check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dashperf")
    (root / "experiments").mkdir()
    (root / "experiments" / "train.py").write_text(TRAIN)
    run_train(root)
    return root


def grow(source: Path, target: Path, runs: int) -> None:
    """A copy of the run store at ``source`` with ``runs`` more runs, each a copy of run 1
    (its row, parameter sets and metrics), as a store that has been used for months."""
    db = sqlite3.connect(source)
    target.write_bytes(db.serialize())
    db.close()
    db = sqlite3.connect(target)
    columns = [row[1] for row in db.execute("PRAGMA table_info(runs)")]
    copied = ", ".join("?" if c == "number" else "id || ?" if c == "id" else c for c in columns)
    (last,) = db.execute("SELECT MAX(number) FROM runs").fetchone()
    for number in range(last + 1, last + runs + 1):
        db.execute(
            f"INSERT INTO runs ({', '.join(columns)}) SELECT {copied} FROM runs WHERE number = 1",
            [number if c == "number" else f"-{number}" for c in columns if c in ("number", "id")],
        )
        for table in ("param_sets", "metrics"):
            names = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            rest = ", ".join(names[1:])
            db.execute(
                f"INSERT INTO {table} (run, {rest}) SELECT ?, {rest} FROM {table} WHERE run = 1",
                (number,),
            )
    db.commit()
    db.close()


def checking_work(store: Path, query: queries.RunQuery) -> int:
    """How many steps SQLite takes to find what the parameter filters' messages say."""
    db = queries.connect(store)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    db.set_progress_handler(count, 100)
    try:
        queries.unknown_parameters(db, query.params)
        queries.mismatched_types(db, query)
    finally:
        db.close()
    return steps[0]


def test_a_parameter_filter_is_checked_without_reading_every_parameter_set(project, tmp_path):
    # checking that lr and model exist and hold numbers and text read every set of every
    # run at every request (~90 ms of a filtered page with 10,000 runs)
    query = queries.RunQuery(params=["lr>=0.2", "model=tree", "model>=m"])
    small, big = tmp_path / "small.db", tmp_path / "big.db"
    grow(project / "assay.db", small, 20)
    grow(project / "assay.db", big, 2000)
    assert checking_work(big, query) <= checking_work(small, query) + 5

    db = queries.connect(big)
    try:
        found = queries.list_runs(db, query)
        assert found["total"] == 0 and found["errors"] == []  # lr=0.3 is "linear"
        assert queries.list_runs(db, queries.RunQuery(params=["lr>=0.2"]))["total"] == 2001
        said = queries.list_runs(db, queries.RunQuery(params=["lrr>=0.2", "lr>=abc", "model<3"]))
    finally:
        db.close()
    assert said["total"] == 0
    assert [message.split(",")[0] for message in said["errors"]] == [
        "No run has a parameter named 'lrr'",
        "Parameter filter 'lr>=abc' compares 'lr'",
        "Parameter filter 'model<3' compares 'model'",
    ]


def indexes(store: Path) -> set[str]:
    db = sqlite3.connect(store)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()


def test_sorting_by_a_metric_reads_its_final_values_from_one_index(project, tmp_path):
    # the final value of each series was found by sorting the metric's rows and then
    # looking each one up again (~100 ms with 10,000 runs, against ~30 for the peak)
    store = tmp_path / "big.db"
    grow(project / "assay.db", store, 200)
    db = queries.connect(store)
    try:
        query = queries.RunQuery(sort="metric:loss")
        join, args, order = queries._order(db, query)
        plan = [
            row[3]
            for row in db.execute(
                f"EXPLAIN QUERY PLAN SELECT runs.number FROM runs {join} ORDER BY {order}", args
            )
        ]
    finally:
        db.close()
    reads = [step for step in plan if " metrics " in f"{step} "]
    assert reads and all("COVERING INDEX metrics_by_series" in step for step in reads), plan


def test_a_store_made_before_gets_the_metrics_index_at_its_next_run(project, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(project, root)
    store = root / "assay.db"
    assert "metrics_by_series" in indexes(store) and "metrics_by_name" not in indexes(store)
    db = sqlite3.connect(store)
    db.execute("DROP INDEX metrics_by_series")
    db.execute("CREATE INDEX metrics_by_name ON metrics (name, run)")  # as it was made then
    db.commit()
    db.close()
    run_train(root)
    assert "metrics_by_series" in indexes(store) and "metrics_by_name" not in indexes(store)
