"""Reports as researchers use them (session 31): reportables written the way Curifactory's
documentation shows, reports rebuilt after the cache was cleaned, ..."""

from __future__ import annotations

import re
from pathlib import Path

import assay
from conftest import run_cli

CURIFACTORY_STYLE = '''
import os

import assay as cf
from assay.caching import JsonCacher


class Note(cf.reporting.Reportable):
    """A reportable written as Curifactory's documentation shows: its file is named
    after ``qualified_name``, in ``self.path``."""

    def render(self):
        with open(os.path.join(self.path, f"{self.qualified_name}.txt"), "w") as handle:
            handle.write("note")

    def html(self):
        return f"<a href='{self.path}/{self.qualified_name}.txt'>note</a>"


@cf.stage(None, ["out"], [JsonCacher])
def draw(record):
    record.report(Note(name="train/test loss"))
    record.report(Note(name="run #1 (50%)?"))
    record.report(Note())
    return {"a": 1}


def get_params():
    return [cf.ExperimentParameters(name="../../../../outside")]


def run(argsets, manager):
    for argset in argsets:
        draw(cf.Record(manager, argset))
'''


def _project(tmp_path: Path, experiment: str, text: str) -> Path:
    root = tmp_path / "project"
    (root / "experiments").mkdir(parents=True)
    (root / "assay.toml").write_text("")
    (root / "experiments" / f"{experiment}.py").write_text(text)
    return root


def _links(page: str) -> list[str]:
    return re.findall(r"""(?:href|src)=['"]([^'"#]*)""", page)


def test_a_curifactory_style_reportable_names_its_files_inside_the_report(tmp_path: Path):
    root = _project(tmp_path, "notes", CURIFACTORY_STYLE)
    result = run_cli("run", "notes", cwd=root)
    assert result.code == 0, result.output
    run_dir = next((root / "reports").glob("notes-*"))
    written = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*_draw_*.txt")]
    assert written and all(p.startswith(f"project/reports/{run_dir.name}/files/") for p in written)
    page = (run_dir / "index.html").read_text()
    assert "could not be shown" not in page
    notes = [link for link in _links(page) if link.endswith(".txt")]
    assert len(notes) == 3
    for link in notes:  # each link, as a browser reads it, names the file written
        assert (run_dir / link).is_file(), link


CHAIN = """
import assay
from assay.caching import JsonCacher


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["first"], [JsonCacher])
def make(record):
    return {"n": 1}


@assay.stage(["first"], ["second"], [JsonCacher])
def double(record, first):
    return {"n": first["n"] * 2}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        double(make(assay.Record(manager, params)))
"""


def _artifact_cells(page: str) -> list[str]:
    return re.findall(r'<td class="path">(.*?)</td>', page, re.S)


def test_artifacts_in_a_cache_at_a_url_are_shown_not_linked_as_local_files(tmp_path: Path):
    root = _project(tmp_path, "chain", CHAIN)
    url = f"memory://lab-{tmp_path.name}/cache"
    (root / "assay.toml").write_text(f'cache_dir = "{url}"\n')
    manager = assay.run_experiment("chain", [], project_root=root)
    page = (root / "reports" / manager.run_id / "index.html").read_text()
    cells = [c for c in _artifact_cells(page) if "objects/" in c]
    assert len(cells) == 2
    for cell in cells:  # the URL, as text: no link into the project to a "memory:" folder
        assert "href" not in cell and url in cell, cell


def test_a_report_rebuilt_after_cache_gc_links_no_removed_file(tmp_path: Path):
    root = _project(tmp_path, "chain", CHAIN)
    assert run_cli("run", "chain", cwd=root).code == 0
    assert run_cli("cache", "gc", "--older-than", "0", cwd=root).code == 0
    result = run_cli("report", cwd=root)
    assert result.code == 0, result.output
    run_dir = next((root / "reports").glob("chain-*"))
    page = (run_dir / "index.html").read_text()
    cells = [c for c in _artifact_cells(page) if "objects/" in c]
    assert len(cells) == 2
    for cell in cells:
        assert "href" not in cell and "no longer in the cache" in cell
    for link in _links(page):  # what is still linked is there
        assert (run_dir / link).exists(), link


UNDECODABLE = """
import assay
from assay.caching import JsonCacher
from assay.reporting import JsonReporter


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["files"], [JsonCacher])
def scan(record):
    name = b"caf\\xe9.csv".decode("utf-8", "surrogateescape")  # as os.listdir gives it
    record.report(JsonReporter({"file": name}, name=name, group=name))
    return [name.encode("utf-8", "surrogateescape").decode("latin-1")]


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        scan(assay.Record(manager, params))
"""


def test_a_file_name_that_is_not_utf8_in_a_reportable_does_not_lose_the_report(
    tmp_path: Path,
):
    root = _project(tmp_path, "scan", UNDECODABLE)
    result = run_cli("run", "scan", cwd=root)
    assert result.code == 0, result.output
    assert "could not be written" not in result.output
    run_dir = next((root / "reports").glob("scan-*"))
    page = (run_dir / "index.html").read_text(encoding="utf-8")
    assert "caf" in page and "could not be shown" not in page
    assert run_cli("report", cwd=root).code == 0


def test_a_report_rebuilt_in_a_moved_project_links_its_cache_files(tmp_path: Path):
    root = _project(tmp_path, "chain", CHAIN)
    assert run_cli("run", "chain", cwd=root).code == 0
    moved = root.rename(tmp_path / "moved")
    result = run_cli("report", cwd=moved)
    assert result.code == 0, result.output
    run_dir = next((moved / "reports").glob("chain-*"))
    page = (run_dir / "index.html").read_text()
    cells = [c for c in _artifact_cells(page) if "objects/" in c]
    assert len(cells) == 2 and all("href" in cell for cell in cells)
    for link in _links(page):
        assert (run_dir / link).exists(), link


COUNTS = """
import numpy as np

import assay
from assay.caching import JsonCacher
from assay.reporting import JsonReporter


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["counts"], [JsonCacher])
def count(record):
    labels, counts = np.unique(np.array([3, 1, 3, 2]), return_counts=True)
    per_class = dict(zip(labels, counts.tolist()))  # numpy integers as keys
    record.report(JsonReporter(per_class, name="per class"))
    record.report(JsonReporter({("lr", 0.1): 0.93, ("lr", 0.01): 0.95}, name="grid"))
    return {str(k): v for k, v in per_class.items()}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        count(assay.Record(manager, params))
"""


def test_json_reporter_shows_dicts_keyed_by_numpy_numbers_and_tuples(tmp_path: Path):
    root = _project(tmp_path, "counts", COUNTS)
    manager = assay.run_experiment("counts", [], project_root=root)
    page = (root / "reports" / manager.run_id / "index.html").read_text()
    assert "could not be shown" not in page
    assert "&quot;3&quot;: 2" in page  # class 3 was seen twice
    assert "(&#x27;lr&#x27;, 0.1)&quot;: 0.93" in page


UNPICKLABLE = """
import assay
from assay.caching import JsonCacher
from assay.reporting import Reportable


class Params(assay.ExperimentParameters):
    pass


class Formula(Reportable):
    def __init__(self, function, name=None):
        super().__init__(name=name)
        self.function = function

    def html(self):
        return f"<p>f(2) = {self.function(2)}</p>"


@assay.stage(None, ["out"], [JsonCacher])
def make(record):
    record.report(Formula(lambda x: x * 21, name="formula"))
    return {"a": 1}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
"""


def test_a_reuse_of_a_stage_whose_reportables_could_not_be_cached_warns_only_once(
    tmp_path: Path,
):
    root = _project(tmp_path, "formula", UNPICKLABLE)
    first = run_cli("run", "formula", cwd=root)
    assert first.code == 0 and "cannot be cached" in first.output, first.output
    second = run_cli("run", "formula", cwd=root)
    assert second.code == 0, second.output
    assert "WARNING" not in second.output  # the first run said it; nothing is damaged


PDF_FIGURE = """
import assay
from assay.caching import JsonCacher
from assay.reporting import FigureReporter
from matplotlib.figure import Figure


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["out"], [JsonCacher])
def draw(record):
    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1], [1, 0])
    record.report(FigureReporter(figure, name="for the paper", format="pdf"))
    return {"a": 1}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        draw(assay.Record(manager, params))
"""


def test_a_figure_saved_as_pdf_is_linked_not_shown_as_a_broken_image(tmp_path: Path):
    root = _project(tmp_path, "paper", PDF_FIGURE)
    manager = assay.run_experiment("paper", [], project_root=root)
    run_dir = root / "reports" / manager.run_id
    page = (run_dir / "index.html").read_text()
    assert not re.search(r"<img[^>]*\.pdf", page)
    (link,) = [link for link in _links(page) if link.endswith(".pdf")]
    assert (run_dir / link).read_bytes().startswith(b"%PDF")


STYLED = """
import pandas as pd

import assay
from assay.caching import JsonCacher
from assay.reporting import DFReporter


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["out"], [JsonCacher])
def tabulate(record):
    frame = pd.DataFrame({"accuracy": [0.91, 0.95]}, index=["a", "b"])
    record.report(DFReporter(frame.style.highlight_max(), name="best"))
    return {"a": 1}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        tabulate(assay.Record(manager, params))
"""


def test_df_reporter_given_a_styler_says_what_to_pass_instead(tmp_path: Path):
    root = _project(tmp_path, "styled", STYLED)
    result = run_cli("run", "styled", cwd=root)
    assert result.code == 1
    assert "has no len()" not in result.output
    assert "DFReporter" in result.output and "Styler" in result.output
    assert "HTMLReporter(styler.to_html())" in result.output.replace("\n", "")


DIVERGED = """
import assay
from assay.caching import JsonCacher


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["model"], [JsonCacher])
def train(record):
    for epoch in range(3):
        record.log_metric("loss", float("inf"), step=epoch)  # diverged from the start
    record.log_metric("accuracy", 0.5)
    return {"a": 1}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        train(assay.Record(manager, params))
"""


def test_the_metrics_table_shows_a_metric_that_was_never_finite(tmp_path: Path):
    root = _project(tmp_path, "diverged", DIVERGED)
    manager = assay.run_experiment("diverged", [], project_root=root)
    page = (root / "reports" / manager.run_id / "index.html").read_text()
    assert "could not be shown" not in page
    assert "<td>loss</td>" in page and "<td>accuracy</td>" in page


NOT_A_REPORTABLE = """
from matplotlib.figure import Figure

import assay
from assay.caching import JsonCacher


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["out"], [JsonCacher])
def draw(record):
    figure = Figure()
    figure.subplots().plot([1, 2])
    record.report(figure)
    return {"a": 1}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        draw(assay.Record(manager, params))
"""


def test_reporting_a_figure_itself_says_to_wrap_it_in_a_figure_reporter(tmp_path: Path):
    root = _project(tmp_path, "bare", NOT_A_REPORTABLE)
    result = run_cli("run", "bare", cwd=root)
    assert result.code == 1
    text = " ".join(result.output.split())
    assert "has no attribute" not in text
    assert "record.report() takes a reportable" in text and "FigureReporter(figure)" in text


OVERRIDDEN = """
import assay
from assay.caching import JsonCacher


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["summary"], [JsonCacher(path_override="results/summary.json")])
def summarize(record):
    return {"x": 1}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        summarize(assay.Record(manager, params))
"""


def test_an_output_saved_at_a_path_override_is_linked_where_it_is(tmp_path: Path):
    root = _project(tmp_path, "overridden", OVERRIDDEN)
    assert run_cli("run", "overridden", cwd=root).code == 0
    run_dir = next((root / "reports").glob("overridden-*"))
    page = (run_dir / "index.html").read_text()
    (cell,) = [c for c in _artifact_cells(page) if "summary.json" in c]
    assert '<a href="../../results/summary.json">results/summary.json</a>' in cell
    (run_dir / "run.json").unlink()  # made again from the run store
    assert run_cli("report", cwd=root).code == 0
    page = (run_dir / "index.html").read_text()
    (cell,) = [c for c in _artifact_cells(page) if "summary.json" in c]
    assert '<a href="../../results/summary.json">results/summary.json</a>' in cell


AXES = """
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import assay
from assay.caching import JsonCacher
from assay.reporting import FigureReporter


class Params(assay.ExperimentParameters):
    pass


@assay.stage(None, ["out"], [JsonCacher])
def draw(record):
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    record.report(FigureReporter(ax, name="curve"))
    return {"a": 1}


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        draw(assay.Record(manager, params))
"""


def test_figure_reporter_given_axes_says_to_pass_their_figure(tmp_path: Path):
    root = _project(tmp_path, "axes", AXES)
    result = run_cli("run", "axes", cwd=root)
    assert result.code == 1
    text = " ".join(result.output.split())
    assert "has no attribute 'savefig'" not in text
    assert "FigureReporter(ax.figure)" in text
