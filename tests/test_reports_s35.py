"""Reportables as researchers use them (session 35): real projects run through the
command line, and the reportables' own contracts."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from assay.metrics import Metrics
from assay.reporting import DFReporter, LinePlotReporter, Reportable, ReportableCopy
from conftest import one_experiment_project, run_cli


def _run_record(root: Path, run_number: int) -> dict:
    """The ``run.json`` of run ``run_number`` of the project at ``root``."""
    (run_dir,) = (root / "reports").glob(f"*-{run_number:04d}-*")
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))


def _fragment(root: Path, run_number: int, name: str) -> str:
    """The HTML the run's page shows for the reportable called ``name`` (one only)."""
    (run_dir,) = (root / "reports").glob(f"*-{run_number:04d}-*")
    record = _run_record(root, run_number)
    (entry,) = [r for r in record["reportables"] if r["name"] == name]
    assert entry["error"] is None, entry
    return (run_dir / entry["fragment"]).read_text(encoding="utf-8")


# -- DFReporter(max_rows=None) ----------------------------------------------------------

ALL_ROWS = """
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
import pytest

import assay
from assay.caching import JsonCacher
from assay.metrics import Metrics
from assay.reporting import DFReporter, LinePlotReporter, Reportable, ReportableCopy


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def scores(record):
    table = pd.DataFrame({"fold": range(300), "score": [0.5] * 300})
    record.report(DFReporter(table, name="every fold", max_rows=None))
    return {"x": 1}


def get_params():
    return [Params(name="p1")]


def run(param_sets, manager):
    for params in param_sets:
        scores(assay.Record(manager, params))
"""


def test_a_table_reported_with_max_rows_none_is_cached_and_shown_again(tmp_path: Path):
    """``max_rows=None`` (pandas' "no limit") showed the table, but the reportable could
    not be pickled (``len(df) > None``): it was not cached, so the next run reusing the
    stage lost it, and a --parallel or Dask worker could not send it back at all."""
    root = one_experiment_project(tmp_path, "reports_s35_all_rows", ALL_ROWS)
    for run_number in (1, 2):
        result = run_cli("run", "reports_s35_all_rows", cwd=root)
        assert result.code == 0, result
        assert "cannot be cached" not in result.output, result
        html = _fragment(root, run_number, "every fold")
        assert html.count("<tr") == 300 + 1  # the header's row and every fold's
        assert "The first" not in html


def test_max_rows_none_keeps_every_row_through_pickling():
    table = pd.DataFrame({"a": range(500)})
    reporter = pickle.loads(pickle.dumps(DFReporter(table, max_rows=None)))
    assert len(reporter.df) == 500
    assert reporter.html().count("<tr") == 500 + 1


# -- a metric logged at every step ------------------------------------------------------

EVERY_STEP = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def train(record):
    for step in range(120_000):
        record.log_metric("loss", 1.0 / (step + 1), step=step)
    record.log_metric("accuracy", 0.9)
    return {"x": 1}


def get_params():
    return [Params(name="p1")]


def run(param_sets, manager):
    for params in param_sets:
        train(assay.Record(manager, params))
"""


def _polyline(html: str) -> list[tuple[float, float]]:
    (points,) = re.findall(r'<polyline[^>]* points="([^"]*)"', html)
    return [tuple(map(float, pair.split(","))) for pair in points.split()]


def test_a_metric_logged_at_every_step_keeps_the_metrics_table_in_the_page(tmp_path: Path):
    """The curve of a metric drew a point per step: a loss logged at each of 120,000
    steps made the metrics table 1.2 MB, and the run's page showed only "Too large to
    show inline" with a link, instead of the table. The 100-pixel curve needs a few
    hundred points."""
    root = one_experiment_project(tmp_path, "reports_s35_every_step", EVERY_STEP)
    result = run_cli("run", "reports_s35_every_step", cwd=root)
    assert result.code == 0, result
    (run_dir,) = (root / "reports").glob("*-0001-*")
    page = (run_dir / "index.html").read_text(encoding="utf-8")
    assert "Too large to show inline" not in page
    assert page.count('class="metrics"') == 1
    points = _polyline(_fragment(root, 1, "metrics"))
    assert 100 <= len(points) <= 400
    assert points[0] == (2.0, 2.0) and points[-1] == (98.0, 26.0)  # 1.0 at first, ~0 at last


def test_a_thinned_curve_keeps_a_spike_and_the_ends():
    metrics = Metrics()
    for step in range(50_000):
        metrics.add("loss", 100.0 if step == 31_337 else 1.0 + (step % 2), step)
    points = _polyline(metrics.html())
    assert len(points) <= 400
    assert min(y for _, y in points) == 2.0  # the spike reaches the top
    assert max(y for _, y in points) == 26.0  # the lowest values, the bottom
    assert points[0][0] == 2.0 and points[-1][0] == 98.0


# -- LinePlotReporter ------------------------------------------------------------------


def _svg_text(reporter: LinePlotReporter) -> str:
    return reporter.data.decode("utf-8")


def test_a_line_whose_label_starts_with_an_underscore_is_in_the_legend():
    """matplotlib leaves a label starting with "_" out of a legend made from the axes:
    ``LinePlotReporter({"_baseline": ..., "model": ...})`` showed a legend without the
    baseline (and warned of no labelled artists when it was the only line)."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # legend text kept as text
        reporter = LinePlotReporter(
            {"_baseline": [1, 1, 1], "model": [3, 2, 1]},
            name="loss",
            savefig_kwargs={"format": "svg"},
        )
    svg = _svg_text(reporter)
    assert ">_baseline<" in svg and ">model<" in svg


def test_a_dict_entry_of_several_columns_keeps_its_label_on_its_first_line_only():
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        reporter = LinePlotReporter(
            {"folds": np.zeros((4, 2)), "mean": [1, 2, 3, 4]},
            name="curves",
            savefig_kwargs={"format": "svg"},
        )
    svg = _svg_text(reporter)
    assert svg.count(">folds<") == 1 and svg.count(">mean<") == 1


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"y": [1, 2, 3], "x": [0, 1]}, "LinePlotReporter 'acc': 3 y values but 2 x values"),
        (
            {"y": {"train": [1, 2], "test": [1, 2, 3]}, "x": [0, 1]},
            "LinePlotReporter 'acc', line 'test': 3 y values but 2 x values",
        ),
        (
            {"y": {"train": [1, 2, 3]}, "x": {"train": [0, 1]}},
            "LinePlotReporter 'acc', line 'train': 3 y values but 2 x values",
        ),
    ],
)
def test_x_and_y_of_different_lengths_name_the_reportable_and_the_line(arguments, says):
    """matplotlib's "x and y must have same first dimension" named neither the reportable
    nor which of a dict's lines was short."""
    with pytest.raises(ValueError, match=re.escape(says)):
        LinePlotReporter(**arguments, name="acc")


def test_nan_values_and_an_x_per_line_still_draw():
    reporter = LinePlotReporter(
        {"a": [1.0, np.nan, 3.0], "b": [2.0, 2.0]}, x={"a": [0, 1, 2], "b": [0, 2]}, name="n"
    )
    assert reporter.data.startswith(b"\x89PNG")


# -- DFReporter of a wide frame ---------------------------------------------------------


def test_a_wide_table_shows_its_first_columns_and_says_how_many_there_are():
    """Only rows were capped: a confusion matrix of 1,000 classes made a 5 MB table, too
    large to show in the page, and the whole of it was pickled with the stage."""
    wide = pd.DataFrame(
        np.arange(5 * 1000).reshape(5, 1000), columns=[f"c{i}" for i in range(1000)]
    )
    reporter = DFReporter(wide, name="confusion")
    for shown in (reporter, pickle.loads(pickle.dumps(reporter))):
        html = shown.html()
        assert "<th>c99</th>" in html and "<th>c100</th>" not in html
        assert "The first 100 of 1,000 columns." in html
        assert len(html) < 20_000
    assert pickle.loads(pickle.dumps(reporter)).df.shape == (5, 100)
    every = DFReporter(wide, name="all", max_cols=None).html()
    assert "<th>c999</th>" in every and "columns." not in every


def test_a_table_cut_both_ways_says_both():
    big = pd.DataFrame(np.zeros((300, 150)))
    restored = pickle.loads(pickle.dumps(DFReporter(big, name="big")))
    html = restored.html()
    assert "The first 200 of 300 rows (150 columns)." in html
    assert "The first 100 of 150 columns." in html


def test_a_table_cached_before_max_cols_existed_is_still_shown():
    reporter = DFReporter(pd.DataFrame(np.zeros((3, 120))), name="old")
    del reporter.__dict__["max_cols"], reporter.__dict__["total_columns"]  # an older pickle
    html = pickle.loads(pickle.dumps(reporter)).html()
    assert html.count("<th>") == 3 + 120 + 1  # every column it kept, as before


# -- a reportable that cannot be pickled ------------------------------------------------

UNPICKLABLE = """
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher
from assay.reporting import Reportable


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


class Formula(Reportable):
    def __init__(self, function, name=None):
        super().__init__(name=name)
        self.function = function

    def render(self):
        Path(self.path, "values.txt").write_text(f"f(2) = {self.function(2)}")

    def html(self):
        return (
            f"<p>f(2) = {self.function(2)} for n={self.record.params.n}</p>"
            f'<a href="{self.path}/values.txt">values</a>'
        )


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    n = record.params.n
    record.report(Formula(lambda x: x * 21 * n, name="formula"))
    return {"x": n}


def get_params():
    return [Params(name="one"), Params(name="two", n=2)]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
"""


def _formulas(root: Path, run_number: int) -> list[tuple[str, str, str]]:
    """(type, HTML, the file it links) of each "formula" reportable of the run."""
    (run_dir,) = (root / "reports").glob(f"*-{run_number:04d}-*")
    found = []
    for entry in _run_record(root, run_number)["reportables"]:
        assert entry["error"] is None, entry
        html = (run_dir / entry["fragment"]).read_text(encoding="utf-8")
        (link,) = re.findall(r'href="([^"]+)"', html)
        found.append((entry["type"], html, (run_dir / link).read_text(encoding="utf-8")))
    return found


def test_a_reportable_that_cannot_be_pickled_is_shown_by_workers_and_on_reuse(tmp_path: Path):
    """A custom reportable holding a lambda could be neither sent back from a --parallel
    worker nor cached: the parallel run's report lacked it (a serial run showed it), and
    so did the report of every later run reusing the stage. What it shows is now kept."""
    root = one_experiment_project(tmp_path, "reports_s35_formula", UNPICKLABLE)
    first = run_cli("run", "reports_s35_formula", "--parallel", "2", cwd=root)
    assert first.code == 0, first
    assert "cannot be sent back from the worker as it is" in first.text
    again = run_cli("run", "reports_s35_formula", cwd=root)
    assert again.code == 0 and "2 cached" in again.text, again
    assert "WARNING" not in again.output, again
    expected = [
        ("Formula", "<p>f(2) = 42 for n=1</p>", "f(2) = 42"),
        ("Formula", "<p>f(2) = 84 for n=2</p>", "f(2) = 84"),
    ]
    for run_number in (1, 2):
        shown = [
            (kind, html.split("<a")[0], text) for kind, html, text in _formulas(root, run_number)
        ]
        assert shown == expected, run_number


def test_a_copy_raises_the_error_the_reportable_raised():
    class Broken(Reportable):
        def __init__(self):
            super().__init__(name="broken")
            self.function = lambda: 1

        def html(self):
            raise KeyError("no such column")

    copy = ReportableCopy(Broken())
    assert pickle.loads(pickle.dumps(copy)).kind == "Broken"
    with pytest.raises(RuntimeError, match="KeyError: 'no such column'"):
        copy.html()


# -- html() returning bytes -------------------------------------------------------------

SVG_BYTES = """
from dataclasses import dataclass
import io

import assay
from assay.caching import JsonCacher
from assay.reporting import Reportable


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


class Drawing(Reportable):
    def html(self):
        buffer = io.BytesIO()
        buffer.write('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'.encode())
        buffer.write('<title>\u00e9t\u00e9</title></svg>'.encode())
        return buffer.getvalue()


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def draw(record):
    record.report(Drawing(name="drawing"))
    return {"x": 1}


def get_params():
    return [Params(name="p1")]


def run(param_sets, manager):
    for params in param_sets:
        draw(assay.Record(manager, params))
"""


def test_html_given_as_bytes_is_shown_as_html(tmp_path: Path):
    """A custom html() returning the bytes of an SVG buffer showed ``b'<svg ...'`` as text
    in the report (and the accents as ``\\xc3\\xa9``)."""
    root = one_experiment_project(tmp_path, "reports_s35_svg_bytes", SVG_BYTES)
    result = run_cli("run", "reports_s35_svg_bytes", cwd=root)
    assert result.code == 0, result
    html = _fragment(root, 1, "drawing")
    assert html.startswith("<svg ") and "<title>\u00e9t\u00e9</title>" in html


# -- a reportable whose html() raises ---------------------------------------------------

BROKEN = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher
from assay.reporting import JsonReporter, Reportable


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


class Broken(Reportable):
    def html(self):
        raise KeyError(f"column {self.record.params.a}")


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def evaluate(record):
    record.report(Broken(name="confusion"))
    record.report(JsonReporter({"fine": True}, name="fine"))
    return {"x": record.params.a}


def get_params():
    return [Params(name="small"), Params(name="large", a=2)]


def run(param_sets, manager):
    for params in param_sets:
        evaluate(assay.Record(manager, params))
"""


def test_a_reportable_that_cannot_be_rendered_is_named_with_its_parameter_set(tmp_path: Path):
    """The warning said "Reportable 'confusion' of stage 'evaluate' could not be rendered"
    once per parameter set, the same each time: which set's was it?"""
    root = one_experiment_project(tmp_path, "reports_s35_broken", BROKEN)
    result = run_cli("run", "reports_s35_broken", cwd=root)
    assert result.code == 0, result
    for name, value in (("small", 1), ("large", 2)):
        assert (
            f"Reportable 'confusion' of stage 'evaluate' ({name}) could not be rendered: "
            f"KeyError: 'column {value}'"
        ) in result.text, result
    record = _run_record(root, 1)
    errors = [r["error"] for r in record["reportables"] if r["name"] == "confusion"]
    assert errors == ["KeyError: 'column 1'", "KeyError: 'column 2'"]
    (run_dir,) = (root / "reports").glob("*-0001-*")
    page = (run_dir / "index.html").read_text(encoding="utf-8")
    assert page.count("This reportable could not be shown: KeyError") == 2
    assert page.count("&#34;fine&#34;: true") + page.count("&quot;fine&quot;: true") == 2
