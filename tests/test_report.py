"""Static HTML reports of real runs: content, failures, --no-report, `assay report`, the index.

The runs use ``tests/resources/projects/reporting`` (``showcase``: every
built-in reportable; ``evil``: hostile text everywhere) and ``basic``
(``flaky``: a stage that fails or is interrupted on demand). Pages are read
back and checked for what a researcher would look for, not only for
existence.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

import assay
from assay.errors import StageFailed
from assay.report.build import build_run_page
from assay.store import RunStore
from conftest import copy_project, run_cli

# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def reporting(tmp_path: Path) -> Path:
    return copy_project("reporting", tmp_path)


def run(root: Path, experiment: str, **options):
    return assay.run_experiment(experiment, [], project_root=root, **options)


def page_of(manager) -> tuple[Path, str]:
    path = manager.config.reports_dir / manager.run_id / "index.html"
    return path, path.read_text()


def section(html: str, name: str) -> str:
    """The HTML of ``<section id="NAME">``."""
    match = re.search(rf'<section[^>]*id="{name}".*?</section>', html, re.DOTALL)
    assert match, f"no section {name!r}"
    return match.group(0)


def metadata(html: str) -> dict[str, str]:
    """The metadata block as {label: text}."""
    block = section(html, "metadata")
    pairs = re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", block, re.DOTALL)
    return {unescape(k): unescape(re.sub(r"<[^>]+>", "", v)).strip() for k, v in pairs}


def table_rows(html: str) -> list[list[str]]:
    """Every body row of the first table in ``html``, as cell texts."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.DOTALL)
    assert body
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.DOTALL):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.DOTALL)
        rows.append([unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def header(html: str) -> list[str]:
    head = re.search(r"<thead>(.*?)</thead>", html, re.DOTALL)
    assert head
    return [unescape(c) for c in re.findall(r"<th>(.*?)</th>", head.group(1))]


def links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'(?:src|href)="([^"#]+)"', html)]


# -- a completed run ----------------------------------------------------------------------


def test_a_run_report_shows_metadata_parameters_reportables_dag_and_artifacts(reporting: Path):
    manager = run(reporting, "showcase", notes="first try")
    path, html = page_of(manager)
    run_dir = path.parent
    info = manager.run_info

    meta = metadata(html)
    assert meta["Run"] == f"1 · {info.id}"
    assert meta["Experiment"] == "showcase"
    assert meta["Status"] == "completed"
    assert meta["Host"] == info.host and meta["User"] == info.user
    assert meta["Python"] == info.python
    assert meta["Command"] == info.command
    assert meta["Git commit"].endswith("is not in a git repository")  # a tmp folder
    assert meta["Notes"] == "first try"
    assert meta["Started"] == info.started.replace("T", " ").split(".")[0] + " UTC"
    assert meta["Duration"].endswith(" s")
    assert meta["Stage runs"] == "7 executed"
    assert meta["Log"] == f"../../logs/{info.id}.log"
    assert (run_dir / meta["Log"]).is_file()

    params = section(html, "parameters")
    with RunStore(manager.config.store_path) as store:
        hashes = {p.name: p.hash for p in store.param_sets(info.id)}
    assert header(params) == ["#", "name", "hash", "scale", "label"]  # n is the same in both
    assert table_rows(params) == [
        ["0", "one", hashes["one"][:12], "1.0", "plain"],
        ["1", "two", hashes["two"][:12], "2.0", "doubled"],
    ]

    reportables = section(html, "reportables")
    records = re.findall(r'<span class="record-name">(.*?)</span>', reportables)
    assert records == ["one", "two", "aggregate"]
    titles = re.findall(r"<h4>(.*?) <span", reportables)
    assert titles.count("curve") == 2 and titles.count("bars") == 2
    assert "table plain" in titles and "table doubled" in titles and "totals" in titles
    assert len(titles) == 15
    assert "&#34;total&#34;: 30.0" in reportables or "&quot;total&quot;: 30.0" in reportables
    assert re.search(r"<td>16\.0000</td>", reportables)  # the DataFrame, float_prec=4
    assert "\\begin{tabular}" in reportables
    assert '<p class="trusted-html">written by the stage</p>' in reportables
    assert re.findall(r'<h3 class="group-name">(.*?)</h3>', reportables) == [
        "tables", "plain", "tables", "doubled",
    ]  # fmt: skip
    files = [link for link in links(reportables) if link.startswith("files/")]
    assert len(files) == 8  # 2 x (curve, latex.tex, bars, image)
    for link in files:
        data = (run_dir / link).read_bytes()
        assert data.startswith(b"\x89PNG") if link.endswith(".png") else b"tabular" in data
    assert reportables.count('loading="lazy"') == 6

    dag = section(html, "dag")
    assert dag.count('<g class="stage') == 7
    assert dag.count('<g class="record"') == 3
    assert dag.count('<g class="artifact"') == 7
    assert dag.count("status-executed") == 7
    assert "aggregate of 2 records" in dag
    assert dag.count('marker-end="url(#assay-arrow)"') == 6  # 2 x 2 chain edges + 2 into totals
    assert (run_dir / "dag.svg").read_text().startswith("<svg")

    artifacts = section(html, "artifacts")
    rows = table_rows(artifacts)
    assert [r[:3] for r in rows] == [
        ["one", "make", "series"], ["one", "tabulate", "table"], ["one", "draw", "drawn"],
        ["two", "make", "series"], ["two", "tabulate", "table"], ["two", "draw", "drawn"],
        ["aggregate", "totals", "totals"],
    ]  # fmt: skip
    assert {r[5] for r in rows} == {"computed"}
    assert all(r[3].startswith("data/cache/objects/") for r in rows)
    for link in links(artifacts):
        assert (run_dir / link).is_file(), link

    record = json.loads((run_dir / "run.json").read_text())
    assert record["format"] == "assay-run-record/1"
    assert len(record["nodes"]) == 7 and len(record["reportables"]) == 15
    assert record["records"][2] == {
        "id": 2, "label": "aggregate", "params": None, "aggregate": True, "joins": [0, 1],
    }  # fmt: skip


def test_a_report_never_shows_a_file_outside_its_folder_that_its_record_names(
    reporting: Path,
):
    """A run.json edited (a shared or copied project) to point a reportable elsewhere."""
    manager = run(reporting, "showcase")
    run_dir = page_of(manager)[0].parent
    (reporting / "secret.txt").write_text("SECRET-TEXT")
    outside = reporting.parent / "outside.html"
    outside.write_text("OUTSIDE-TEXT")
    record = json.loads((run_dir / "run.json").read_text())
    record["reportables"][0]["fragment"] = "../../secret.txt"
    record["reportables"][1]["fragment"] = str(outside)
    (run_dir / "run.json").write_text(json.dumps(record))

    assert run_cli("report", "1", cwd=reporting).code == 0
    html = (run_dir / "index.html").read_text()
    assert "SECRET-TEXT" not in html and "OUTSIDE-TEXT" not in html
    assert "is outside the run" in html  # said instead


ODD_NAMES = """
import assay
from assay.caching import JsonCacher
from experiments.diamond import Params


@assay.stage(outputs=["résultat #1?"], cachers=[JsonCacher])
def make(record):
    return 1


@assay.stage(outputs=["never"], cachers=[JsonCacher])
def fail(record):
    raise ValueError("no")


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        fail(make(assay.Record(manager, params)))
"""


def test_links_to_outputs_with_odd_names_work_and_a_failed_stage_links_nothing(
    tmp_project: Path,
):
    """A '#', '?', space or accent in a name stays in the link (percent-encoded); a stage
    that failed has no file to link to."""
    from urllib.parse import unquote

    from starlette.testclient import TestClient

    from assay.config import ProjectConfig
    from assay.ui import LOCAL_HOSTS, create_app

    (tmp_project / "experiments" / "odd#1.py").write_text(ODD_NAMES)
    with pytest.raises(StageFailed):
        run(tmp_project, str(tmp_project / "experiments" / "odd#1.py"))
    with RunStore(tmp_project / "assay.db") as store:
        info = store.get_run("latest")
        key = next(a.key for a in store.artifacts(info.id) if a.name == "résultat #1?")
    run_dir = tmp_project / "reports" / info.id
    html = (run_dir / "index.html").read_text()
    artifacts = section(html, "artifacts")
    hrefs = links(artifacts)
    assert len(hrefs) == 1 and "%23" in hrefs[0] and "%3F" in hrefs[0]
    assert (run_dir / unquote(hrefs[0])).is_file()
    assert len(table_rows(artifacts)) == 2  # the failed stage's output: listed, not linked
    log = next(h for h in links(html) if h.endswith(".log"))
    assert (run_dir / unquote(log)).is_file()
    assert info.id.startswith("odd_1-")  # run ids keep to safe characters
    index = (tmp_project / "reports" / "index.html").read_text()
    assert f'href="{info.id}/index.html"' in index

    app = create_app(ProjectConfig.load(tmp_project), allowed_hosts=list(LOCAL_HOSTS))
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    assert client.get("/lineage", params={"key": key}).status_code == 200
    page = client.get(f"/runs/{info.number}/")
    assert page.status_code == 200
    assert client.get(next(h for h in links(page.text) if h.startswith("/log/"))).status_code == 200


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_the_report_shows_the_git_commit_and_a_dirty_marker(tmp_project: Path):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_project), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    commit = git("rev-parse", "HEAD")
    manager = run(tmp_project, "diamond")
    assert metadata(page_of(manager)[1])["Git commit"].startswith(commit)
    assert "dirty" not in metadata(page_of(manager)[1])["Git commit"]
    (tmp_project / "experiments" / "diamond.py").write_text(
        (tmp_project / "experiments" / "diamond.py").read_text() + "\n# edited\n"
    )
    manager = run(tmp_project, "diamond")
    shown = metadata(page_of(manager)[1])["Git commit"]
    assert shown.startswith(commit) and "* dirty (uncommitted changes)" in shown


def test_the_iris_example_report(tmp_path: Path):
    """The report of the README's example: scores per set, the leaderboard table, the DAG."""
    pytest.importorskip("sklearn")
    root = tmp_path / "iris"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "iris", root)
    manager = assay.run_experiment("iris", ["quick"], project_root=root)
    path, html = page_of(manager)
    assert metadata(html)["Experiment"] == "iris"
    params = section(html, "parameters")
    assert header(params) == ["#", "name", "hash", "model", "n_estimators", "max_depth"]
    assert [r[1] for r in table_rows(params)] == ["quick-logistic", "quick-forest"]
    reportables = section(html, "reportables")
    names = re.findall(r'<span class="record-name">(.*?)</span>', reportables)
    assert names == ["quick-logistic", "quick-forest", "aggregate"]
    scores = {r.record.name: r.data for r in manager.reportables if r.name == "scores"}
    for record_scores in scores.values():
        assert f"&#34;accuracy&#34;: {record_scores['accuracy']}" in reportables or (
            f"&quot;accuracy&quot;: {record_scores['accuracy']}" in reportables
        )
    leaderboard = reportables[reportables.index("<h4>leaderboard") :]
    assert [row[1] for row in table_rows(leaderboard)] == list(
        manager.records[-1].state["leaderboard"]["param_set"]
    )
    dag = section(html, "dag")
    assert dag.count('<g class="stage') == 9 and "aggregate of 2 records" in dag
    artifacts = section(html, "artifacts")
    assert len(table_rows(artifacts)) == 2 * (1 + 4 + 1 + 1) + 1
    # The paper's deep DAG view: each artifact's data type, in the table and on hover.
    assert header(artifacts)[6] == "type"
    types = {(row[0], row[2]): row[6] for row in table_rows(artifacts)}
    assert types[("quick-logistic", "iris")] == "pandas.DataFrame"
    assert types[("quick-logistic", "model")] == "sklearn.pipeline.Pipeline"
    assert types[("quick-forest", "model")] == "sklearn.ensemble.RandomForestClassifier"
    assert types[("aggregate", "leaderboard")] == "pandas.DataFrame"
    assert "type: sklearn.pipeline.Pipeline" in dag


def test_a_reused_run_reports_cached_stages_and_their_restored_reportables(reporting: Path):
    run(reporting, "showcase")
    manager = run(reporting, "showcase")
    path, html = page_of(manager)
    assert metadata(html)["Stage runs"] == "7 reused from the cache"
    assert section(html, "dag").count("status-cached") == 7
    assert {r[5] for r in table_rows(section(html, "artifacts"))} == {"reused"}
    reportables = section(html, "reportables")
    assert len(re.findall(r"<h4>", reportables)) == 15
    for link in links(reportables):
        assert (path.parent / link).is_file()


UNCACHED_REPORTER = """
import assay
from assay.caching import JsonCacher
from assay.reporting import JsonReporter
from experiments.diamond import Params


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    return list(range(record.params.n))


@assay.stage(inputs=["data"], outputs=["metrics"])  # no cacher: not executed once final is cached
def evaluate(record, data):
    record.report(JsonReporter({"total": sum(data)}, name="evaluation"))
    return {"total": sum(data)}


@assay.stage(inputs=["metrics"], outputs=["final"], cachers=[JsonCacher])
def finalize(record, metrics):
    return metrics["total"] * 2


def get_params():
    return [Params(name="a", n=3)]


def run(param_sets, manager):
    for params in param_sets:
        finalize(evaluate(load(assay.Record(manager, params))))
"""


@pytest.mark.parametrize("parallel", [None, 2], ids=["serial", "parallel"])
def test_a_stage_without_cached_outputs_still_reports_when_it_need_not_execute(
    tmp_project: Path, parallel
):
    (tmp_project / "experiments" / "uncached.py").write_text(UNCACHED_REPORTER)
    run(tmp_project, "uncached", parallel=parallel)
    manager = run(tmp_project, "uncached", parallel=parallel)

    evaluate = next(n for n in manager.plan.nodes if n.spec.name == "evaluate")
    assert evaluate.status == "unneeded"
    assert [r.name for r in manager.reportables] == ["evaluation"]
    assert "evaluation" in section(page_of(manager)[1], "reportables")
    assert run_cli("cache", "gc", cwd=tmp_project).code == 0  # the latest run's: kept
    assert [r.name for r in run(tmp_project, "uncached").reportables] == ["evaluation"]


def test_a_failing_run_gets_a_report_that_shows_the_failed_stage_and_error(tmp_project: Path):
    (tmp_project / "fail.flag").touch()
    with pytest.raises(StageFailed):
        run(tmp_project, "flaky")
    with RunStore(tmp_project / "assay.db") as store:
        info = store.get_run("latest")
    html = (tmp_project / "reports" / info.id / "index.html").read_text()
    failure = section(html, "failure")
    assert "The run failed" in failure
    assert "<code>second</code>" in failure and "<code>a</code>" in failure
    assert "ValueError: second cannot handle 1" in failure
    assert metadata(html)["Status"] == "failed"
    dag = section(html, "dag")
    assert dag.count("status-failed") == 1 and dag.count("status-not-run") == 4
    assert re.search(r'<g class="stage status-failed"><title>second — a\n', dag)
    index = (tmp_project / "reports" / "index.html").read_text()
    assert table_rows(index)[0][3] == "failed"


def test_an_interrupted_run_gets_a_report(tmp_project: Path):
    (tmp_project / "interrupt.flag").touch()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_project, "flaky")
    with RunStore(tmp_project / "assay.db") as store:
        info = store.get_run("latest")
    html = (tmp_project / "reports" / info.id / "index.html").read_text()
    assert "The run was interrupted" in section(html, "failure")
    assert "Interrupted by the user" in section(html, "failure")
    assert section(html, "dag").count("status-interrupted") == 1


@pytest.mark.parametrize("flag", ["fail", "interrupt"])
def test_a_stopped_run_claims_no_reuse_of_outputs_it_did_not_make(tmp_project: Path, flag):
    """Outputs of stages that failed, were interrupted or never ran are in the cache from an
    earlier run, but this run neither computed nor reused them."""
    run(tmp_project, "flaky")
    (tmp_project / f"{flag}.flag").touch()
    with pytest.raises((StageFailed, KeyboardInterrupt)):
        run(tmp_project, "flaky", overwrite=True)
    with RunStore(tmp_project / "assay.db") as store:
        info = store.get_run("latest")
        # the run store (lineage, `assay show`) claims no more than the page
        recorded = {(a.param_set, a.stage, a.action) for a in store.artifacts(info.id)}
    assert recorded == {("a", "first", "computed")}
    html = (tmp_project / "reports" / info.id / "index.html").read_text()
    stopped = "stage failed" if flag == "fail" else "interrupted"
    rows = {(r[0], r[1]): r[5] for r in table_rows(section(html, "artifacts"))}
    assert rows == {
        ("a", "first"): "computed",
        ("a", "second"): f"not made ({stopped})",
        ("a", "third"): "not made (not run)",
        ("b", "first"): "not made (not run)",
        ("b", "second"): "not made (not run)",
        ("b", "third"): "not made (not run)",
    }
    record = json.loads((tmp_project / "reports" / info.id / "run.json").read_text())
    second = next(n for n in record["nodes"] if n["stage"] == "second" and n["record"] == 0)
    assert second["outputs"][0]["path"]  # the earlier run's copy: still shown where it is


# -- the command line ---------------------------------------------------------------------


def test_assay_run_prints_the_report_path_and_no_report_skips_it(tmp_project: Path):
    result = run_cli("run", "diamond", "--no-report", cwd=tmp_project)
    assert result.code == 0, result
    assert "Report:" not in result.output
    assert not (tmp_project / "reports").exists()

    result = run_cli("run", "diamond", cwd=tmp_project)
    assert result.code == 0, result
    with RunStore(tmp_project / "assay.db") as store:
        latest = store.get_run("latest")
    assert f"Report: reports/{latest.id}/index.html" in result.text
    assert (tmp_project / "reports" / latest.id / "index.html").is_file()
    rows = table_rows((tmp_project / "reports" / "index.html").read_text())
    assert rows[0][1] == latest.id
    assert rows[1][1].endswith("(no report)")  # the --no-report run is listed, unlinked


def test_run_experiment_report_false_writes_nothing(tmp_project: Path):
    run(tmp_project, "diamond", report=False)
    assert not (tmp_project / "reports").exists()


def test_assay_report_rebuilds_a_page_from_its_run_record(reporting: Path):
    manager = run(reporting, "showcase")
    path, original = page_of(manager)
    path.unlink()
    (path.parent / "dag.svg").unlink()
    result = run_cli("report", cwd=reporting)
    assert result.code == 0, result
    assert f"reports/{manager.run_id}/index.html" in result.text
    assert "reports/index.html" in result.text
    rebuilt = path.read_text()
    strip = lambda text: re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "", text)  # noqa: E731
    assert strip(rebuilt) == strip(original)
    assert (path.parent / "dag.svg").is_file()


def test_assay_report_makes_a_page_from_the_run_store_for_a_run_without_one(tmp_project: Path):
    run(tmp_project, "diamond", report=False)
    result = run_cli("report", "1", cwd=tmp_project)
    assert result.code == 0, result
    with RunStore(tmp_project / "assay.db") as store:
        info = store.get_run(1)
    html = (tmp_project / "reports" / info.id / "index.html").read_text()
    assert "rebuilt from the run store" in html
    assert metadata(html)["Stage runs"] == "9 executed"
    assert [r[1] for r in table_rows(section(html, "parameters"))] == ["a", "b"]
    dag = section(html, "dag")
    assert dag.count('<g class="stage') == 9
    # load -> double, square -> combine for a and b, and both combines -> summarize:
    assert dag.count('marker-end="url(#assay-arrow)"') == 2 * 4 + 2
    assert "aggregate of 2 records" in dag
    artifacts = section(html, "artifacts")
    assert len(table_rows(artifacts)) == 9
    assert {row[6] for row in table_rows(artifacts)} <= {"list", "int", "dict", "float"}


DAMAGED_RECORDS = [
    '{"broken',
    "[]",
    '{"run": {}}',
    "null",
    '{"format": "assay-run-record/1", "run": {}, "param_sets": [], "records": [],'
    ' "nodes": [{"stage": "load"}], "reportables": []}',
]


@pytest.mark.parametrize("damaged", DAMAGED_RECORDS)
def test_assay_report_makes_a_page_from_the_run_store_when_the_run_record_is_damaged(
    tmp_project: Path, damaged: str
):
    """A run.json that is not JSON or not a run record gave a traceback: it is now treated
    as missing, with a warning naming it, and kept aside rather than overwritten."""
    manager = run(tmp_project, "diamond")
    run_dir = tmp_project / "reports" / manager.run_id
    (run_dir / "run.json").write_text(damaged)

    result = run_cli("report", "1", cwd=tmp_project)

    assert result.code == 0, result
    assert "Traceback" not in result.output
    assert f"{manager.run_id}/run.json is damaged" in result.text
    assert "made from the run store instead" in result.text
    assert (run_dir / "run.json.damaged").read_text() == damaged  # nothing lost
    assert json.loads((run_dir / "run.json").read_text())["source"] == "store"
    html = (run_dir / "index.html").read_text()
    assert "rebuilt from the run store" in html
    assert metadata(html)["Stage runs"] == "9 executed"


def test_assay_report_all_and_the_index_lists_runs_newest_first(tmp_project: Path):
    run(tmp_project, "diamond")
    (tmp_project / "fail.flag").touch()
    with pytest.raises(StageFailed):
        run(tmp_project, "flaky")
    (tmp_project / "fail.flag").unlink()
    run(tmp_project, "flaky", notes="after the fix")
    index_path = tmp_project / "reports" / "index.html"
    rows = table_rows(index_path.read_text())
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("3", "flaky", "completed"), ("2", "flaky", "failed"), ("1", "diamond", "completed"),
    ]  # fmt: skip
    assert rows[0][6] == "2 a, b" and rows[0][7] == "after the fix"
    hrefs = re.findall(r'<a href="([^"]+/index.html)">', index_path.read_text())
    assert len(hrefs) == 3 and all((index_path.parent / h).is_file() for h in hrefs)

    for page in (tmp_project / "reports").glob("*/index.html"):
        page.unlink()
    result = run_cli("report", "--all", cwd=tmp_project)
    assert result.code == 0, result
    assert len(list((tmp_project / "reports").glob("*/index.html"))) == 3


def test_assay_report_explains_a_project_without_runs(tmp_project: Path):
    result = run_cli("report", cwd=tmp_project)
    assert result.code == 1
    assert "no experiment has run in this project yet" in result.text
    assert "Traceback" not in result.output


# -- escaping -----------------------------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag of a page, with its attributes, as a browser would parse it."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def _no_foreign_markup(html: str) -> None:
    """No script, event handler or element that came from user text."""
    elements = _Elements(html).found
    assert not re.search(r"<\s*script", html, re.IGNORECASE)
    assert [tag for tag, _ in elements if tag in ("script", "iframe", "object", "embed")] == []
    assert [(t, a) for t, a in elements if any(name.startswith("on") for name in a)] == []
    assert [a for t, a in elements if t == "img" and a.get("src") == "x"] == []


def test_every_user_string_is_escaped(reporting: Path):
    manager = run(reporting, "evil", notes="<script>alert('notes')</script>")
    path, html = page_of(manager)
    _no_foreign_markup(html)
    escaped = "&lt;script&gt;"
    assert escaped in section(html, "parameters")  # names and values
    assert escaped in metadata(html).get("Notes", "").replace("<", "&lt;").replace(">", "&gt;")
    reportables = section(html, "reportables")
    assert re.search(r"<h4>&lt;script&gt;", reportables)  # reportable names
    assert re.search(r'<h3 class="group-name">&lt;script&gt;', reportables)  # groups
    assert re.search(r"<td>&lt;script&gt;", reportables)  # DataFrame cells
    assert re.search(r"<th>&lt;script&gt;", reportables)  # column and index labels
    assert "shout&lt;script&gt;" in section(html, "dag")  # the stage's name
    assert "evil&lt;script&gt;" in section(html, "dag")  # record labels
    assert "shout&lt;script&gt;" in section(html, "artifacts")
    for page in (path.parent / "reportables").glob("*.html"):
        _no_foreign_markup(page.read_text())
    _no_foreign_markup((path.parent / "dag.svg").read_text())
    index = (reporting / "reports" / "index.html").read_text()
    _no_foreign_markup(index)
    assert "evil&lt;script&gt;" in index and "&lt;script&gt;alert(&#39;notes&#39;)" in index

    with pytest.raises(StageFailed):
        run(reporting, "evil", overrides=["explode=True"])
    with RunStore(reporting / "assay.db") as store:
        failed = store.get_run("latest")
    html = (reporting / "reports" / failed.id / "index.html").read_text()
    _no_foreign_markup(html)
    assert "exploded on &lt;script&gt;" in section(html, "failure")


# -- big runs -----------------------------------------------------------------------------


def synthetic_record(run_dir: Path, n_sets: int = 100, n_reportables: int = 1000) -> dict:
    """A run record like a real one's, with ``n_sets`` x 3 stages, an aggregate and fragments."""
    fragments = run_dir / "reportables"
    fragments.mkdir(parents=True)
    records, nodes, reportables = [], [], []
    for i in range(n_sets):
        records.append({"id": i, "label": f"set-{i:03d}", "params": f"set-{i:03d}",
                        "aggregate": False, "joins": []})  # fmt: skip
        for j, stage in enumerate(("load", "fit", "score")):
            index = len(nodes)
            nodes.append({
                "index": index, "stage": stage, "record": i, "status": "executed", "reason": "",
                "key": f"{index:032x}", "started": None, "duration_s": 0.5, "error": None,
                "aggregate": False, "joins": [], "deps": [index - 1] if j else [],
                "inputs": [[index - 1, "out"]] if j else [],
                "outputs": [{"name": "out", "cacher": "PickleCacher", "path": f"data/cache/{index}.pkl",
                             "size": 1000, "cached": True, "action": "computed"}],
            })  # fmt: skip
    records.append({"id": n_sets, "label": "aggregate", "params": None, "aggregate": True,
                    "joins": list(range(n_sets))})  # fmt: skip
    nodes.append({
        "index": len(nodes), "stage": "compare", "record": n_sets, "status": "executed",
        "reason": "", "key": "f" * 32, "started": None, "duration_s": 1.0, "error": None,
        "aggregate": True, "joins": list(range(n_sets)), "deps": [3 * i + 2 for i in range(n_sets)],
        "inputs": [[3 * i + 2, "out"] for i in range(n_sets)], "outputs": [],
    })  # fmt: skip
    row = "".join(f"<tr><td>{k}</td><td>{k * 0.5:.4f}</td></tr>" for k in range(20))
    for n in range(n_reportables):
        body = f'<table class="assay-table"><tbody>{row}</tbody></table>'
        if n == 0:
            body = "<pre>" + "x" * 1_200_000 + "</pre>"  # too big to inline
        (fragments / f"{n}.html").write_text(body)
        reportables.append({"index": n, "name": f"metrics {n}", "qualified_name": f"m{n}",
                            "group": "scores" if n % 2 else None, "stage": "score",
                            "record": n % n_sets, "type": "DFReporter",
                            "fragment": f"reportables/{n}.html", "size": len(body), "error": None})  # fmt: skip
    values = [{"name": f"set-{i:03d}", "seed": i, "model": "forest", "depth": i % 7}
              for i in range(n_sets)]  # fmt: skip
    return {
        "format": "assay-run-record/1", "source": "run",
        "run": {"number": 12, "id": "big-0012-20260101T000000", "experiment": "big",
                "status": "completed", "started": "2026-01-01T00:00:00.000Z",
                "ended": "2026-01-01T01:00:00.000Z", "host": "h", "user": "u", "platform": "p",
                "python": "CPython 3.11", "command": "assay run big", "notes": None,
                "param_names": [v["name"] for v in values], "error": None, "config": {},
                "duration_s": 3600.0},
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True, "branch": "main"},
        "project_root": str(run_dir.parent.parent), "log": None,
        "param_sets": [{"name": v["name"], "hash": f"{i:032x}", "cls": "experiments.big.Params",
                        "values": v} for i, v in enumerate(values)],
        "records": records, "nodes": nodes, "reportables": reportables, "failure": None,
    }  # fmt: skip


def test_a_run_with_100_parameter_sets_and_1000_reportables_renders_and_stays_usable(
    tmp_path: Path,
):
    run_dir = tmp_path / "reports" / "big-0012-20260101T000000"
    record = synthetic_record(run_dir)
    start = time.perf_counter()
    page = build_run_page(run_dir, record)
    elapsed = time.perf_counter() - start
    html = page.read_text()
    assert elapsed < 30  # a few seconds in practice; generous for slow machines
    assert len(html) < 8_000_000
    assert len(re.findall(r'<details class="record"', html)) == 100
    assert " open>" not in re.sub(r'<details class="artifacts".*?>', "", html)  # all folded
    assert len(re.findall(r'<article class="reportable"', html)) == 1000
    assert "x" * 1_200_000 not in html  # the big fragment is linked, not inlined
    assert 'href="reportables/0.html"' in html
    biggest_inline = max(len(m) for m in re.findall(r"<svg.*?</svg>", html, re.DOTALL))
    assert biggest_inline < 1_000_000
    assert section(html, "dag").count('<g class="stage') == 301
    meta = metadata(html)
    assert meta["Git commit"].startswith("0123456789abcdef0123456789abcdef01234567")
    assert "dirty" in meta["Git commit"]
    assert meta["Duration"] == "1 h 0 min"
    assert header(section(html, "parameters")) == ["#", "name", "hash", "seed", "depth"]


def test_compiled_templates_are_kept_and_a_cache_that_cannot_be_written_costs_nothing(
    tmp_path: Path,
):
    """The templates compile once into the bytecode cache; a bad cache folder is skipped."""
    import jinja2

    from assay.report.build import HERE, make_environment, template_cache

    def compile_all(cache) -> None:
        env = make_environment(cache)
        for name in env.loader.list_templates():
            env.get_template(name)

    folder = tmp_path / "compiled"
    folder.mkdir()
    compile_all(template_cache(str(folder)))
    first = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert len(first) == len(jinja2.FileSystemLoader(str(HERE / "templates")).list_templates())
    time.sleep(0.01)
    compile_all(template_cache(str(folder)))  # loaded, not compiled and written again
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == first

    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    compile_all(template_cache(str(not_a_folder)))  # neither read nor written: no error


def test_the_index_and_report_all_take_every_run_not_the_newest_50(tmp_path: Path):
    """reports/index.html listed the 50 newest runs and `assay report --all` rebuilt only
    theirs: both read the run store with list_runs()'s default limit."""
    project = copy_project("basic", tmp_path)
    assert run_cli("run", "diamond", "-p", "two", cwd=project).code == 0
    with RunStore(project / "assay.db") as store:
        for _ in range(51):
            run = store.begin_run("diamond", command="assay run diamond")
            store.finish_run(run.id, "completed")
    first = next((project / "reports").glob("diamond-0001-*"))
    shutil.rmtree(first)

    result = run_cli("report", "--all", cwd=project)

    assert result.code == 0, result
    assert (first / "index.html").exists()
    index = (project / "reports" / "index.html").read_text()
    assert all(f"diamond-{n:04d}-" in index for n in (1, 2, 52)), index
