"""The built-in reportables, one by one, and their display in Jupyter.

Each must escape the text it shows, write the files its HTML refers to into
``path`` during ``render()``, survive pickling (reused stages restore them
from the cache), and display inline in a notebook with its files as data URLs.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

import assay
from assay.reporting import (
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
    Reportable,
)

PAYLOAD = "<script>alert(1)</script>"


def rendered(reportable: Reportable, folder: Path) -> str:
    """Render as a report does: files into ``folder``, then HTML with a relative path."""
    folder.mkdir(parents=True, exist_ok=True)
    reportable.path = str(folder)
    reportable.render()
    reportable.path = folder.name
    html = reportable.html()
    return "\n".join(html) if isinstance(html, list) else html


def figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1, 2], [0, 1, 4])
    return fig


def test_json_reporter_escapes_keys_and_values(tmp_path: Path):
    html = rendered(JsonReporter({PAYLOAD: [PAYLOAD, 1.5]}), tmp_path / "j")
    assert "<script" not in html and "&lt;script&gt;" in html and "1.5" in html


def test_df_reporter_escapes_and_truncates_long_tables(tmp_path: Path):
    frame = pd.DataFrame(
        {PAYLOAD: [PAYLOAD] * 3, "x": [0.123456, 1.0, 2.5]}, index=[PAYLOAD, "b", "c"]
    )
    html = rendered(DFReporter(frame, name="t"), tmp_path / "d")
    assert "<script" not in html
    assert html.count("&lt;script&gt;") == 5  # column, index, three cells
    assert "0.1235" in html  # float_prec=4, as in Curifactory
    assert "0.12" in rendered(DFReporter(frame, float_format=".2f"), tmp_path / "e")
    assert "12.3%" in rendered(DFReporter(frame, float_format="{:.1%}"), tmp_path / "f")

    big = pd.DataFrame({"i": range(1000)})
    reporter = DFReporter(big, max_rows=200)
    html = rendered(reporter, tmp_path / "g")
    assert html.count("<tr") == 201  # header + 200 rows
    assert "The first 200 of 1,000 rows (1 column)" in html
    restored = pickle.loads(pickle.dumps(reporter))
    assert len(restored.df) == 200 and restored.total_rows == 1000
    assert "The first 200 of 1,000 rows" in rendered(restored, tmp_path / "h")
    assert "<table" in rendered(DFReporter(big["i"].head(3)), tmp_path / "series")


def test_latex_table_reporter_shows_and_saves_the_table(tmp_path: Path):
    frame = pd.DataFrame({"a": [1, 2], "b": [PAYLOAD, "x"]})
    reporter = LatexTableReporter(frame, name="table 1", caption="Results")
    html = rendered(reporter, tmp_path / "l")
    assert "\\begin{tabular}" in html and "<script" not in html
    tex = (tmp_path / "l" / "table_1.tex").read_text()
    assert "\\caption{Results}" in tex
    assert 'href="l/table_1.tex"' in html


def test_figure_reporter_saves_the_figure_at_once_and_links_it(tmp_path: Path):
    fig = figure()
    reporter = FigureReporter(fig, name=f"loss {PAYLOAD}")
    fig.clear()  # the user may reuse or close the figure: the report keeps what was drawn
    html = rendered(reporter, tmp_path / "files 1")
    files = list((tmp_path / "files 1").iterdir())
    assert len(files) == 1 and files[0].read_bytes().startswith(b"\x89PNG")
    assert f'src="files%201/{files[0].name}"' in html
    assert 'loading="lazy"' in html and "<script" not in html and 'alt="loss &lt;script&gt;' in html
    restored = pickle.loads(pickle.dumps(reporter))  # no figure inside: cheap, no matplotlib
    assert not hasattr(restored, "fig") and restored.data == reporter.data

    svg = FigureReporter(figure(), name="vector", kwargs={"format": "svg"})
    html = rendered(svg, tmp_path / "svg")
    assert (tmp_path / "svg" / "vector.svg").read_text().lstrip().startswith("<?xml")
    assert 'src="svg/vector.svg"' in html
    dpi = FigureReporter(figure(), name="dpi", dpi=20)  # Curifactory's **kwargs to savefig
    assert len(dpi.data) < len(FigureReporter(figure(), dpi=200).data)


@pytest.mark.parametrize(
    ("y", "x"),
    [
        ([1, 4, 9], None),
        ([1, 4, 9], [1, 2, 3]),
        ({"train": [3, 2, 1], "test": [4, 3, 3]}, None),
        ({"train": [3, 2, 1]}, {"train": [10, 20, 30]}),
    ],
)
def test_line_plot_reporter_draws_lists_and_dicts(tmp_path: Path, y, x):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    reporter = LinePlotReporter(y, x=x, name="curve", title="loss", xlabel="epoch")
    assert plt.get_fignums() == before  # pyplot's figures are left alone
    rendered(reporter, tmp_path / "p")
    assert (tmp_path / "p" / "curve.png").read_bytes().startswith(b"\x89PNG")


def test_image_reporter_copies_the_image(tmp_path: Path):
    source = tmp_path / "picture one.png"
    buffer = io.BytesIO()
    figure().savefig(buffer, format="png")
    source.write_bytes(buffer.getvalue())
    reporter = ImageReporter(source, name="confusion", alt=PAYLOAD)
    source.unlink()  # read at once: the report does not need the original
    html = rendered(reporter, tmp_path / "i")
    assert (tmp_path / "i" / "confusion.png").read_bytes() == buffer.getvalue()
    assert 'alt="&lt;script&gt;' in html and "<script" not in html
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(ValueError, match="does not look like an image"):
        ImageReporter(text)


def test_html_reporter_is_inserted_as_written(tmp_path: Path):
    assert rendered(HTMLReporter("<b>bold</b>"), tmp_path / "h") == "<b>bold</b>"
    assert rendered(HTMLReporter(["<p>", "x", "</p>"]), tmp_path / "h") == "<p>\nx\n</p>"


def test_reportables_display_inline_in_a_notebook():
    html = FigureReporter(figure(), name="loss")._repr_html_()
    assert 'src="data:image/png;base64,iVBOR' in html and "<strong>loss</strong>" in html
    assert "&lt;script&gt;" in JsonReporter({"a": PAYLOAD}, name=PAYLOAD)._repr_html_()


def test_records_and_managers_display_inline(tmp_project: Path, monkeypatch):
    monkeypatch.chdir(tmp_project)
    sys.path.insert(0, str(tmp_project))
    from experiments.diamond import Params, combine, double, load, square

    manager = assay.ArtifactManager("notebook", project_root=tmp_project)
    record = assay.Record(manager, Params(name="nb"))
    combine(square(double(load(record))))
    record.report(JsonReporter({"note": PAYLOAD}, name="note"))
    html = record._repr_html_()
    assert "Record nb" in html and "&lt;script&gt;" in html and "<script" not in html
    svg = manager._repr_svg_()
    assert svg.startswith("<svg") and svg.count('<g class="stage') == 4
    assert manager.plan._repr_svg_() == svg


def test_curifactorys_notebook_display_methods_show_the_run(tmp_project: Path, monkeypatch):
    """A Curifactory notebook calls ``manager.display_info()``, ``display_*_reportables``
    and ``display_stage_graph()``; they were AttributeErrors."""
    monkeypatch.chdir(tmp_project)
    sys.path.insert(0, str(tmp_project))
    from experiments.diamond import Params, combine, double, load, square

    manager = assay.ArtifactManager("notebook", notes=PAYLOAD, project_root=tmp_project)
    sets = [Params(name="a"), Params(name="b", n=4), Params(name="a2")]  # a2: a's hash
    records = [assay.Record(manager, params) for params in sets]
    for record in records[:2]:
        combine(square(double(load(record))))
        record.report(JsonReporter({"set": record.name}, name="set", group="sets"))
    records[0].report(FigureReporter(figure(), name="loss"))

    info = manager.display_info()._repr_html_()
    assert "<th>experiment</th><td>notebook</td>" in info
    assert "<td>a, b, a2</td>" in info and "&lt;script&gt;" in info and "<script" not in info
    every = manager.display_all_reportables()._repr_html_()
    assert every.count('class="assay-reportable"') == 3 and "data:image/png;base64" in every
    only_b = manager.display_record_reportables(records[1])._repr_html_()
    assert only_b.count('class="assay-reportable"') == 1 and "&quot;b&quot;" in only_b
    assert manager.display_group_reportables("sets")._repr_html_().count("<strong>set") == 2
    assert "No reportables yet" in manager.display_stage_reportables("square")._repr_html_()
    assert "<strong>loss</strong>" in manager.display_reportable(manager.reportables[-1]).data
    assert str(manager.display_stage_graph()).startswith("<svg")
    assert manager.get_reportable_groups() == ["sets", None]
    assert [r.name for r in manager.get_grouped_reportables()["sets"]] == ["set", "set"]
    assert [r.name for r in manager.get_ungrouped_reportables()] == ["loss"]
    assert [p.name for p in manager.get_all_param_sets()] == ["a", "b"]


def test_import_assay_does_not_import_jinja2_or_matplotlib():
    code = (
        "import sys, assay, assay.reporting; "
        "print([m for m in ('jinja2', 'matplotlib', 'assay.report') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


FIGURE_IN_A_NOTEBOOK = [
    "%matplotlib inline\nimport assay, matplotlib.pyplot as plt\n"
    "from assay.reporting import FigureReporter",
    "manager = assay.ArtifactManager('fig', project_root=ROOT)",
    "@assay.stage(outputs=['n'])\ndef plot(record):\n    fig, ax = plt.subplots()\n"
    "    ax.plot([1, 2, 3])\n    record.report(FigureReporter(fig, name='line'))\n    return 3",
    "record = plot(assay.Record(manager, assay.ExperimentParameters(name='p')))\nrecord",
]


def test_a_pyplot_figure_reported_in_a_notebook_shows_once(tmp_path: Path, monkeypatch):
    """Under ``%matplotlib inline`` the figure a stage reported stayed open in pyplot, and
    the notebook showed it at the end of the cell besides the record's display: twice."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    cells = [c.replace("ROOT", repr(str(tmp_path))) for c in FIGURE_IN_A_NOTEBOOK]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )  # fmt: skip
    client.execute()
    outputs = notebook.cells[-1].outputs
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    shown = [o for o in outputs if "<img" in o.get("data", {}).get("text/html", "")]
    assert not pictures and len(shown) == 1, outputs


def test_a_figure_reported_in_a_script_stays_open_in_pyplot():
    """Outside a notebook's inline backend nothing is closed: a script may go on with it."""
    done = subprocess.run(
        [sys.executable, "-c",
         "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
         "from assay.reporting import FigureReporter\n"
         "fig, ax = plt.subplots(); FigureReporter(fig); print(plt.get_fignums())"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.split() == ["[1]"], done.stdout + done.stderr
