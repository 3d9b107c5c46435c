"""``record.log_metric``: kept in the run store, restored with cached stages, in reports and compare.

Real runs of the dashboard project's ``sweep`` experiment (see its module
docstring): ``train`` logs ``loss`` once per epoch (with steps), ``evaluate``
logs ``accuracy`` and ``f1``.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import assay
from assay.metrics import MetricChange, Metrics, compare_metrics, read_metrics
from assay.store import RunStore
from conftest import copy_project, run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project("dashboard", tmp_path)


def rows(root: Path, run: int) -> list[tuple]:
    db = sqlite3.connect(root / "assay.db")
    try:
        return db.execute(
            "SELECT param_set, stage, name, value, step, key, reused FROM metrics WHERE run = ?"
            " ORDER BY rowid",
            (run,),
        ).fetchall()
    finally:
        db.close()


def test_metrics_are_stored_once_per_run_with_their_stage_and_key(project: Path):
    manager = assay.run_experiment("sweep", ["grid"], project_root=project)
    found = rows(project, manager.run_number)
    assert len(found) == 4 * (4 + 2)  # 4 sets x (4 losses + accuracy + f1)
    linear = [r for r in found if r[0] == "g-lr=0.1-model=linear"]
    assert [(r[1], r[2], r[4]) for r in linear] == [
        ("train", "loss", 0), ("train", "loss", 1), ("train", "loss", 2), ("train", "loss", 3),
        ("evaluate", "accuracy", None), ("evaluate", "f1", None),
    ]  # fmt: skip
    assert [r[3] for r in linear[:4]] == [0.9, 0.81, 0.729, 0.6561]
    with RunStore(project / "assay.db") as store:
        keys = {(s.param_set, s.stage): s.key for s in store.stages(manager.run_id)}
    assert all(r[5] == keys[(r[0], r[1])] for r in found)
    assert {r[6] for r in found} == {0}


def test_a_stage_taken_from_the_cache_brings_its_metrics_back(project: Path):
    first = assay.run_experiment("sweep", ["grid"], project_root=project)
    second = assay.run_experiment("sweep", ["grid"], project_root=project)
    assert all(n.status == "cached" for n in second.plan.nodes)
    again = rows(project, second.run_number)
    assert [r[:6] for r in again] == [r[:6] for r in rows(project, first.run_number)]
    assert {r[6] for r in again} == {1}  # marked: logged when the stage executed earlier
    page = (second.config.reports_dir / second.run_id / "index.html").read_text()
    assert '<table class="metrics">' in page and "0.85" in page


def test_a_new_process_that_takes_every_stage_from_the_cache_records_its_metrics(
    project: Path,
):
    """In ``assay run``, nothing imports the metrics module but the cached reportables that
    hold metrics; the run must still find and record them."""
    for _ in range(2):
        done = run_cli("run", "sweep", "-p", "grid", "--no-report", cwd=project)
        assert done.code == 0, str(done)
    first, second = rows(project, 1), rows(project, 2)
    assert len(second) == len(first) == 4 * (4 + 2)
    assert [r[:6] for r in second] == [r[:6] for r in first]
    assert {r[6] for r in first} == {0} and {r[6] for r in second} == {1}


FAILS_AFTER_A_METRIC = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    fail: int = 0


@assay.stage(outputs=["score"], cachers=[JsonCacher])
def score(record):
    record.log_metric("accuracy", 0.9)
    return 1


@assay.stage(inputs=["score"], outputs=["checked"], cachers=[JsonCacher])
def check(record, score):
    if record.params.fail:
        raise RuntimeError("asked to fail")
    return score


def get_params():
    return [Params(name="one")]


def run(param_sets, manager):
    for params in param_sets:
        check(score(assay.Record(manager, params)))
"""


def test_a_failed_run_records_the_metrics_of_the_stages_it_took_from_the_cache(
    project: Path,
):
    (project / "experiments" / "fails.py").write_text(FAILS_AFTER_A_METRIC)
    assert run_cli("run", "fails", "--no-report", cwd=project).code == 0
    failed = run_cli("run", "fails", "--set", "fail=1", "--no-report", cwd=project)
    assert failed.code != 0 and "asked to fail" in failed.output
    assert [(r[1], r[2], r[3], r[6]) for r in rows(project, 2)] == [("score", "accuracy", 0.9, 1)]


def test_the_static_report_shows_metrics_and_curves(project: Path):
    manager = assay.run_experiment(
        "sweep", ["grid"], names=["g-lr=0.2-model=tree"], project_root=project
    )
    page = (manager.config.reports_dir / manager.run_id / "index.html").read_text()
    assert page.count('<table class="metrics">') == 2  # train's and evaluate's
    assert '<td class="nowrap">0.4096 \u2013 0.8 (4)</td>' in page
    assert '<svg class="sparkline"' in page and "<polyline" in page
    assert '<td>accuracy</td><td class="num">0.85</td>' in page


def test_metrics_come_back_from_worker_processes(project: Path, tmp_path: Path):
    serial = copy_project("dashboard", tmp_path / "serial")
    expected = rows(serial, assay.run_experiment("sweep", ["grid"], project_root=serial).run_number)
    manager = assay.run_experiment("sweep", ["grid"], parallel=2, project_root=project)
    assert manager.runner.executor.remote
    assert len(expected) == 4 * (4 + 2)
    assert rows(project, manager.run_number) == expected  # the same rows, in the same order


def test_log_metric_checks_its_arguments():
    manager = assay.ArtifactManager("notebook")
    record = assay.Record(manager, None)
    record.log_metric("ok", np.float32(0.5), step=np.int64(3))
    record.log_metric("nan", float("nan"))
    record.log_metric("one", np.array([2.0]))
    (metrics,) = [r for r in record.reportables if type(r) is Metrics]
    assert metrics.entries[0] == ("ok", 0.5, 3) and math.isnan(metrics.entries[1][1])
    assert metrics.entries[2] == ("one", 2.0, None)
    with pytest.raises(TypeError, match="must be a real number"):
        record.log_metric("bad", "0.5")
    with pytest.raises(TypeError, match="must be a real number"):
        record.log_metric("bad", {"a": 1})
    with pytest.raises(TypeError, match="must be an integer"):
        record.log_metric("bad", 1.0, step=1.5)
    with pytest.raises(ValueError, match="non-empty string"):
        record.log_metric("", 1.0)
    assert len(metrics.entries) == 3


def test_assay_compare_shows_metric_changes(project: Path):
    assay.run_experiment("sweep", ["grid"], project_root=project)
    assay.run_experiment("sweep", ["grid"], overrides=["epochs=6"], project_root=project)
    changes = {(c.param_set, c.name): c for c in compare_metrics(project / "assay.db", 1, 2)}
    loss = changes[("g-lr=0.1-model=linear", "loss")]
    assert (loss.a, round(loss.b, 6), loss.changed) == (0.6561, 0.531441, True)
    assert not changes[("g-lr=0.1-model=linear", "accuracy")].changed
    result = run_cli("compare", "1", "2", cwd=project)
    assert result.code == 0, result
    assert "metrics (final values)" in result.text and "0.531441" in result.text
    assert "4 of 12 metric(s) differ." in result.text


@pytest.mark.parametrize(
    ("a", "b", "changed", "delta"),
    [
        (1.0, 1.5, True, 0.5),
        (math.inf, math.inf, False, 0.0),
        (math.nan, math.nan, False, 0.0),
        (math.inf, -math.inf, True, -math.inf),
        (1.0, math.nan, True, None),
        (None, 2.0, True, None),
    ],
)
def test_a_metric_change_treats_infinities_and_nans_as_values(a, b, changed, delta):
    change = MetricChange("s", "train", "loss", a, b)
    assert change.changed is changed
    assert change.delta == delta


def test_a_store_without_metrics_reads_as_none(tmp_path: Path):
    assert read_metrics(tmp_path / "missing.db", [1]) == []
    manager = assay.run_experiment(
        "diamond", [], project_root=copy_project("basic", tmp_path)
    )  # logs no metric: no table
    assert read_metrics(manager.config.store_path, [1]) == []


BIG_STEP = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    step: int = 0


@assay.stage(outputs=["done"], cachers=[JsonCacher])
def train(record):
    record.log_metric("loss", 0.5, step=record.params.step)
    return 1


def get_params():
    return [Params(name="one")]


def run(param_sets, manager):
    for params in param_sets:
        train(assay.Record(manager, params))
"""


def test_a_step_beyond_64_bits_is_refused_where_it_is_logged(project: Path):
    """``step=2**70`` was accepted, and the run then crashed at its end with SQLite's
    OverflowError (a traceback): it is refused at the call, naming the metric."""
    (project / "experiments" / "bigstep.py").write_text(BIG_STEP)
    result = run_cli("run", "bigstep", "--set", f"step={2**70}", cwd=project)
    assert result.code != 0
    assert "OverflowError" not in result.output and "Traceback (most recent" not in result.output
    assert "The step of metric 'loss' is 1180591620717411303424" in result.text
    assert "64-bit integers" in result.text
    for step in (2**63 - 1, -(2**63)):  # the extremes are kept
        done = run_cli("run", "bigstep", "--set", f"step={step}", cwd=project)
        assert done.code == 0, done
    assert [r[4] for r in rows(project, 2)] == [2**63 - 1]
    assert [r[4] for r in rows(project, 3)] == [-(2**63)]

    record = assay.Record(assay.ArtifactManager("notebook"), None)
    for step in (2**63, -(2**63) - 1, np.uint64(2**64 - 1)):
        with pytest.raises(ValueError, match="step of metric 'm' is"):
            record.log_metric("m", 1.0, step=step)
    with pytest.raises(ValueError, match="Metric 'm' is .* too large for a floating-point"):
        record.log_metric("m", 10**400)
    with pytest.raises(ValueError, match=r"Metric 'm' is an integer of about \d+ digits"):
        record.log_metric("m", 10**5000)
    record.log_metric("m", 2**70)  # a large int is a float like any other
    (metrics,) = [r for r in record.reportables if type(r) is Metrics]
    assert metrics.entries == [("m", float(2**70), None)]


NON_FINITE = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1


@assay.stage(outputs=["done"], cachers=[JsonCacher])
def train(record):
    for step, loss in enumerate([1.0, float("inf"), float("-inf"), float("nan")]):
        record.log_metric("loss", loss, step=step)
    record.log_metric("accuracy", float("inf"))
    return 1


def get_params():
    return [Params(name="one"), Params(name="two", lr=0.2)]


def run(param_sets, manager):
    for params in param_sets:
        train(assay.Record(manager, params))
"""


def test_infinite_and_nan_metrics_are_kept_and_the_dashboard_serves_them(project: Path):
    """inf is kept as such (NaN as NULL); the dashboard's JSON, which cannot hold inf,
    gave a 500 (ValueError: Out of range float values are not JSON compliant)."""
    from starlette.testclient import TestClient

    from assay.config import ProjectConfig
    from assay.ui import LOCAL_HOSTS, create_app

    (project / "experiments" / "nonfinite.py").write_text(NON_FINITE)
    for _ in range(2):
        assert run_cli("run", "nonfinite", "--overwrite", cwd=project).code == 0
    found = [(r[0], r[2], r[3], r[4]) for r in rows(project, 1) if r[0] == "one"]
    assert found == [
        ("one", "loss", 1.0, 0), ("one", "loss", math.inf, 1), ("one", "loss", -math.inf, 2),
        ("one", "loss", None, 3), ("one", "accuracy", math.inf, None),
    ]  # fmt: skip

    app = create_app(ProjectConfig.load(project), allowed_hosts=list(LOCAL_HOSTS))
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    for path in (
        "/api/runs", "/api/runs?sort=metric:accuracy", "/runs", "/runs/1/",
        "/api/compare?run=1&run=2", "/compare?run=1&run=2", "/api/compare?set=1:one&set=1:two",
        "/api/sweep?experiment=nonfinite&metric=accuracy", "/sweep?experiment=nonfinite",
    ):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    data = client.get("/api/runs").json()
    assert data["runs"][0]["metrics"]["accuracy"] == {
        "min": None, "max": None, "n": 2, "stepped": False,
    }  # fmt: skip
    assert "inf" in client.get("/runs").text  # the page shows what JSON cannot
