"""A report rebuilt from the run store shows the metrics the store keeps.

``assay run --no-report`` then ``assay report`` made a page that said no stage
reported anything, though the run store holds every metric the run's stages
logged (``assay compare`` shows them). The page now shows them, one table per
stage run, and a second ``assay report`` makes it again from the store.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import one_experiment_project, run_cli

EXPERIMENT = """
from dataclasses import dataclass

import assay


@dataclass
class Params(assay.ExperimentParameters):
    rate: float = 0.5


@assay.stage(None, ["model"])
def fit(record):
    for step in range(3):
        record.log_metric("loss", 1.0 / (step + 1) + record.params.rate, step=step)
    record.log_metric("accuracy", 0.75)
    return record.params.rate


def get_params():
    return [Params(name="slow", rate=0.5), Params(name="fast", rate=0.25)]


def run(param_sets, manager):
    return [fit(assay.Record(manager, p)) for p in param_sets]
"""


def page_text(root: Path) -> str:
    (page,) = root.glob("reports/metrics_store_s34-*/index.html")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text()))


def test_report_rebuilt_from_the_store_shows_its_metrics(tmp_path: Path) -> None:
    root = one_experiment_project(tmp_path, "metrics_store_s34", EXPERIMENT)
    ran = run_cli("run", "metrics_store_s34", "--no-report", cwd=root)
    assert ran.code == 0, ran

    for _ in range(2):  # the second time from the run.json the first one wrote
        rebuilt = run_cli("report", cwd=root)
        assert rebuilt.code == 0, rebuilt
        text = page_text(root)
        assert "Reportables 2" in text, text
        assert "No stage reported anything" not in text
        assert "loss 0.833333" in text and "loss 0.583333" in text  # last values, per set
        assert text.count("accuracy 0.75") == 2
        assert "it keeps the metrics only" in text
