"""Reports as researchers use them (session 33): a real project whose experiment reports
from its stages and from ``run()``, run twice through the command line."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

import assay
from conftest import on_sys_path, run_cli

REPORTS_FROM_RUN = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from assay.reporting import JsonReporter


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def first(record):
    record.report(JsonReporter({"in": "first"}, name="from first"))
    record.log_metric("accuracy", 0.9)
    return {"x": 1}


@assay.stage(inputs=["x"], outputs=["y"], cachers=[JsonCacher])
def second(record, x):
    record.report(JsonReporter({"in": "second"}, name="from second"))
    return {"y": 1}


def get_params():
    return [Params(name="p1")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        record.report(JsonReporter({"where": "run"}, name="before any stage"))
        first(record)
        record.report(JsonReporter({"where": "run"}, name="after first"))
        second(record)
"""


def _project(tmp_path: Path, experiment: str, text: str) -> Path:
    root = tmp_path / "project"
    (root / "experiments").mkdir(parents=True)
    (root / "assay.toml").write_text("")
    (root / "experiments" / f"{experiment}.py").write_text(text)
    return root


def _reported(root: Path, run_number: int) -> list[tuple[str, str]]:
    """(name, stage) of every reportable in the run's ``run.json``, in the page's order."""
    (run_dir,) = (root / "reports").glob(f"*-{run_number:04d}-*")
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return [(r["name"], r["stage"]) for r in record["reportables"]]


def test_a_reused_stage_keeps_its_reportables_and_metrics_when_run_reports_too(
    tmp_path: Path,
):
    """Reporting from ``run()`` after a stage call attached the reportable to that stage
    run before it ran: it was cached with the stage, and a run reusing the stage found its
    reportables "already there" and restored none. The second run's report lost the
    stage's own reportables and metrics (and the run store its metrics), and the one
    reported before any stage."""
    root = _project(tmp_path, "report_s33_from_run", REPORTS_FROM_RUN)
    for _ in range(2):
        result = run_cli("run", "report_s33_from_run", cwd=root)
        assert result.code == 0, result.output

    expected = [
        ("from first", "first"),
        ("metrics", "first"),
        ("after first", "first"),
        ("from second", "second"),
        ("before any stage", ""),
    ]
    assert _reported(root, 1) == expected
    assert _reported(root, 2) == expected  # every stage reused from the cache

    with sqlite3.connect(root / "assay.db") as db:
        rows = db.execute("SELECT run, stage, name, value, reused FROM metrics ORDER BY run")
        assert list(rows) == [(1, "first", "accuracy", 0.9, 0), (2, "first", "accuracy", 0.9, 1)]


WITHOUT_SUPER_INIT = '''
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from assay.reporting import Reportable


class Note(Reportable):
    """A reportable of one's own whose __init__ forgets super().__init__()."""

    def __init__(self, text):
        self.text = text

    def html(self):
        return f"<p>{self.text}</p>"


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def first(record):
    record.report(Note("hello"))
    return {"x": 1}


def get_params():
    return [assay.ExperimentParameters(name="p1")]


def run(param_sets, manager):
    for params in param_sets:
        first(assay.Record(manager, params))
'''


def test_a_reportable_whose_init_skips_reportables_says_to_call_super_init(tmp_path: Path):
    """The stage failed with "'Note' object has no attribute 'name'", which does not say
    that the reportable's __init__ must call Reportable's."""
    root = _project(tmp_path, "report_s33_no_super", WITHOUT_SUPER_INIT)
    result = run_cli("run", "report_s33_no_super", cwd=root)
    assert result.code == 1
    text = " ".join(result.output.split())
    assert "Note is not set up as a reportable" in text
    assert "must call super().__init__(name=name, group=group)" in text


FAILS_IN_A_NOTEBOOK = """
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def explode(record):
    raise ValueError("the <b>input</b> is empty")
"""


def test_a_notebook_sessions_report_says_why_its_stage_failed(tmp_path: Path, monkeypatch):
    """A notebook's report of a failed stage said only "Stage 'explode' failed for
    parameter set 'nb'.": a session has no log, and its report left out the error."""
    root = _project(tmp_path, "report_s33_notebook", FAILS_IN_A_NOTEBOOK)
    monkeypatch.chdir(root)
    with on_sys_path(root, "experiments"):
        from experiments.report_s33_notebook import explode

        manager = assay.ArtifactManager("report_s33_nb", project_root=root)
        with pytest.raises(ValueError):
            explode(assay.Record(manager, assay.ExperimentParameters(name="nb")))
        page = manager.generate_report().read_text(encoding="utf-8")

    failure = re.search(r'<section class="failure".*?</section>', page, re.DOTALL).group(0)
    assert "Stage &#39;explode&#39; failed for parameter set &#39;nb&#39;: ValueError: " in failure
    assert "the &lt;b&gt;input&lt;/b&gt; is empty" in failure


def test_a_line_plot_whose_x_lacks_a_line_says_which():
    """x given as a dict without one of y's lines failed the stage with "KeyError: 'test'"."""
    from assay.reporting import LinePlotReporter

    with pytest.raises(
        ValueError, match=r"x has no values for the line 'test' \(its keys: 'train'\)"
    ):
        LinePlotReporter({"train": [3, 2], "test": [4, 3]}, x={"train": [1, 2]}, name="loss")


ONLY_REPORTS = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from assay.reporting import JsonReporter


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def first(record):
    return {"x": 1}


def get_params():
    return [Params(name="fitted"), Params(name="summary", a=2)]


def run(param_sets, manager):
    first(assay.Record(manager, param_sets[0]))
    summary = assay.Record(manager, param_sets[1])
    summary.report(JsonReporter({"only": "reported"}, name="notes on the sweep"))
"""


def test_a_record_that_only_reports_is_named_in_the_report(tmp_path: Path):
    """A record on which no stage ran had its reportables under "Not attached to a
    record" instead of its parameter set's name."""
    root = _project(tmp_path, "report_s33_only_reports", ONLY_REPORTS)
    result = run_cli("run", "report_s33_only_reports", cwd=root)
    assert result.code == 0, result.output
    (page,) = (root / "reports").glob("*-0001-*/index.html")
    html = page.read_text(encoding="utf-8")

    section = re.search(r'<details class="record".*?</details>', html, re.DOTALL).group(0)
    assert '<span class="record-name">summary</span>' in section
    assert "notes on the sweep" in section
    assert "Not attached to a record" not in html
    assert "1 stage run, 1 record<" in html  # the DAG has one band: the stage's record
