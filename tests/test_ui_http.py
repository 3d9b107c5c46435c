"""The dashboard over HTTP (Starlette's test client): pages, JSON API, previews, and its defences.

One project with three real runs (see ``ui_helpers.make_project``) serves
every test of this module. The security tests try what an attacker would:
paths that climb out of the served folders (``..``, absolute, URL-encoded,
through a symlink), parameter-set names that are HTML, other methods, a
foreign ``Host`` header, a missing token; and check that each fails.
"""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

import assay
from assay.config import ProjectConfig
from assay.store import RunStore
from assay.ui import LOCAL_HOSTS, create_app
from assay.ui.files import PICKLE_NOTE, Folders, Refused, preview
from ui_helpers import SECRET, make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="module")
def client(project: Path) -> TestClient:
    app = create_app(ProjectConfig.load(project), allowed_hosts=list(LOCAL_HOSTS))
    return TestClient(app, base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def runs(project: Path) -> dict:
    with RunStore(project / "assay.db") as store:
        return {run.number: run for run in store.list_runs()}


def artifact_key(project: Path, run: int, name: str, param_set: str | None = None) -> str:
    with RunStore(project / "assay.db") as store:
        for art in store.artifacts(store.get_run(run).id):
            if art.name == name and (param_set is None or art.param_set == param_set):
                return art.key
    raise AssertionError(f"no artifact {name} in run {run}")


def tags(html: str) -> list[tuple[str, list]]:
    """Every start tag of a page with its attributes, as a browser's parser sees them."""
    found: list[tuple[str, list]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collector().feed(html)
    return found


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


# -- runs ---------------------------------------------------------------------------------


def test_runs_api_lists_every_run_with_git_state_and_metrics(client):
    data = client.get("/api/runs").json()
    assert data["total"] == 3
    assert [r["number"] for r in data["runs"]] == [3, 2, 1]
    first, second = data["runs"][2], data["runs"][1]
    assert first["git_commit"] and re.fullmatch(r"[0-9a-f]{40}", first["git_commit"])
    assert first["git_dirty"] is False and second["git_dirty"] is True
    assert second["notes"] == "longer training"
    assert first["param_names"] == [
        "g-lr=0.1-model=linear", "g-lr=0.1-model=tree", "g-lr=0.2-model=linear",
        "g-lr=0.2-model=tree",
    ]  # fmt: skip
    assert first["metrics"]["accuracy"] == {"min": 0.7, "max": 0.85, "n": 4, "stepped": False}
    assert data["metric_names"][:2] == ["accuracy", "f1"]  # single values before curves
    assert first["duration_s"] > 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=completed", [3, 2, 1]),
        ("experiment=sweep&per_page=1&page=2", [2]),
        ("q=LONGER", [2]),
        ("q=pwned", [3]),
        ("param=epochs%3D6", [2]),
        ("param=epochs%3D4&param=model%3Dtree", [1]),
        ("param=lr%3E%3D0.3", [3]),
        ("param=model!%3Dlinear&param=lr%3C0.1", [3]),
        ("sort=metric:accuracy&order=desc", [3, 2, 1]),
        ("sort=number&order=asc", [1, 2, 3]),
        ("sort=duration&order=asc&status=failed", []),
    ],
)
def test_runs_filter_sort_and_page_in_sql(client, query, expected):
    data = client.get(f"/api/runs?{query}").json()
    assert [r["number"] for r in data["runs"]] == expected, data
    assert data["errors"] == []


def test_a_malformed_parameter_filter_is_reported_not_fatal(client):
    data = client.get("/api/runs?param=nonsense").json()
    assert data["total"] == 3
    assert "not FIELD=VALUE" in data["errors"][0]
    page = client.get("/runs?param=nonsense")
    assert page.status_code == 200 and "not FIELD=VALUE" in unescape(page.text)


def test_runs_page_shows_the_table(client, runs):
    page = client.get("/runs")
    assert page.status_code == 200
    text = text_of(page.text)
    for run in runs.values():
        assert run.id in text
    assert "*dirty" in text and runs[1].git_commit[:7] in text
    assert "accuracy" in text and "0.7 – 0.85" in text
    assert 'name="run" value="2"' in page.text  # pick runs to compare


# -- one run ------------------------------------------------------------------------------


def test_run_page_shows_the_report_metrics_and_lineage_links(client, runs):
    assert client.get("/runs/1", follow_redirects=False).headers["location"] == (
        f"/runs/{runs[1].id}/"
    )
    page = client.get(f"/runs/{runs[2].id}/")
    assert page.status_code == 200
    html = page.text
    for section in ("metadata", "parameters", "reportables", "dag", "artifacts", "metrics"):
        assert f'id="{section}"' in html, section
    assert "<svg" in html and 'class="stage' in html  # the report's DAG picture
    assert "/lineage?key=" in html
    metrics = re.search(r'<section id="metrics">.*?</section>', html, re.DOTALL).group(0)
    assert "accuracy" in metrics and "0.85" in metrics
    assert f"/log/{runs[2].id}" in html
    log = client.get(f"/log/{runs[2].id}")
    assert log.status_code == 200 and "Run 2" in log.text


def test_progress_of_a_finished_run_comes_from_the_run_store(client, runs):
    data = client.get(f"/api/runs/{runs[1].id}/progress").json()
    assert data["running"] is False and data["status"] == "completed"
    assert data["done"] == data["total"] == 17
    assert any("Run 1" in line for line in data["log_tail"])


def test_progress_of_a_running_run_reads_sidecars_log_and_progress_file(project, runs, tmp_path):
    """A run left "running": finished stage runs come from its sidecars, the rest from files."""
    from assay.ui import live

    config = ProjectConfig.load(project)
    running = runs[1].__class__(**{**runs[1].__dict__, "status": "running", "ended": None})
    with RunStore(project / "assay.db") as store:
        info = live.progress(running, config, store)
        assert info["running"] and info["done"] == 14  # stage runs of run 1 that wrote outputs
        stages = {"make_data", "train", "evaluate", "plot", "leaderboard"}
        assert info["finished"] and {f["stage"] for f in info["finished"]} <= stages
        assert info["total"] == 17 and info["total_source"] == "as many as run 2 had"
        progress_file = config.logs_dir / f"{running.id}.progress.json"
        progress_file.write_text(json.dumps({"done": 5, "total": 20, "current": ["train [a]"]}))
        try:
            info = live.progress(running, config, store)
        finally:
            progress_file.unlink()
    assert (info["done"], info["total"], info["current"]) == (5, 20, ["train [a]"])


# -- compare, sweep -----------------------------------------------------------------------


def test_compare_two_runs_highlights_differences(client):
    page = client.get("/compare?run=1&run=2")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="(differs|same)">(.*?)</tr>', page.text, re.DOTALL)
    differing = [text_of(cells).split() for kind, cells in rows if kind == "differs"]
    assert ["g-lr=0.1-model=linear", "epochs", "4", "6"] in differing
    assert ["g-lr=0.1-model=linear", "lr", "0.1", "0.1"] not in differing
    assert any(r[:3] == ["g-lr=0.2-model=tree", "train", "loss"] for r in differing)
    same = [text_of(cells).split() for kind, cells in rows if kind == "same"]
    assert any(r[1:3] == ["make_data", "matrix"] for r in same)  # same bytes in both runs
    assert any(r[1:3] == ["train", "model"] for r in differing)  # epochs changed the model
    data = client.get("/api/compare?run=1&run=2").json()
    loss = next(s for s in data["series"] if s["metric"] == "loss")
    assert sorted(len(line["x"]) for line in loss["lines"]) == [4] * 4 + [6] * 4


def test_compare_parameter_sets_of_one_run(client):
    data = client.get("/api/compare?set=1:g-lr=0.1-model=linear&set=1:g-lr=0.2-model=tree").json()
    assert data["labels"] == ["run 1 · g-lr=0.1-model=linear", "run 1 · g-lr=0.2-model=tree"]
    fields = {tuple(r["label"]): r for r in data["params"]}
    assert fields[("", "lr")]["differs"] and not fields[("", "epochs")]["differs"]
    accuracy = next(r for r in data["metrics"] if r["label"][2] == "accuracy")
    assert accuracy["cells"] == [0.7, 0.85]
    bad = client.get("/api/compare?set=1:nope&set=oops").json()
    assert len(bad["errors"]) == 2 and "no parameter set 'nope'" in bad["errors"][0]


def test_sweep_gives_each_parameter_set_once_with_its_values(client):
    data = client.get("/api/sweep?experiment=sweep&metric=accuracy&x=lr&color=model").json()
    assert data["metric"] == "accuracy" and data["x"] == "lr" and data["color"] == "model"
    assert {f["name"] for f in data["fields"]} == {"lr", "epochs", "model"}
    assert len(data["points"]) == 10  # 4 + 4 (epochs=6) + 2 hostile sets, once each
    assert (
        len(client.get("/api/sweep?experiment=sweep&metric=accuracy&all=1").json()["points"]) == 10
    )
    best = max(data["points"], key=lambda p: p["value"])
    assert best["params"]["lr"] == 0.3
    page = client.get("/sweep?experiment=sweep&metric=loss")
    assert page.status_code == 200 and 'id="sweep-table"' in page.text


def sweep_ranking(client, query: str) -> list[float]:
    """The metric's values in the sweep page's "Best first" table, top to bottom."""
    html = client.get(f"/sweep?experiment=sweep&{query}").text
    table = html.split('id="sweep-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>.*?</tr>", table, re.DOTALL)
    return [float(re.findall(r'<td class="num">([^<]+)</td>', row)[0]) for row in rows]


def test_sweep_ranks_a_loss_lowest_first_and_can_be_told_otherwise(client):
    """The "Best first" table put the highest value first for every metric: for a loss, the worst."""
    assert client.get("/api/sweep?experiment=sweep&metric=loss").json()["best"] == "lowest"
    assert client.get("/api/sweep?experiment=sweep&metric=accuracy").json()["best"] == "highest"
    losses = sweep_ranking(client, "metric=loss")
    assert len(losses) == 10 and losses == sorted(losses)
    accuracies = sweep_ranking(client, "metric=accuracy")
    assert accuracies == sorted(accuracies, reverse=True)
    assert sweep_ranking(client, "metric=loss&best=highest") == sorted(losses, reverse=True)
    assert sweep_ranking(client, "metric=loss&best=nonsense") == losses  # ignored, as x= is
    assert "(lowest loss first)" in client.get("/sweep?experiment=sweep&metric=loss").text


# -- lineage and previews -----------------------------------------------------------------


def test_lineage_page_links_upstream_and_previews_the_image(client, project):
    key = artifact_key(project, 1, "figure", "g-lr=0.2-model=tree")
    page = client.get(f"/lineage?key={key}")
    assert page.status_code == 200
    html = page.text
    graph = re.search(r"<svg class=\"lineage-graph\".*?</svg>", html, re.DOTALL).group(0)
    linked = set(re.findall(r'data-key="([^"]+)"', graph))
    assert {k.rsplit(".", 1)[1] for k in linked} == {"figure", "scores", "model", "rows", "matrix"}
    scores = next(k for k in linked if k.endswith(".scores"))
    assert f"/lineage?key={scores}" in graph
    assert "run 1" in text_of(html) and "g-lr=0.2-model=tree" in html
    image = re.search(r'<img class="preview-image" src="([^"]+)"', html).group(1)
    served = client.get(unescape(image))
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert (
        served.content.startswith(b"\x89PNG")
        and "sandbox" in served.headers["content-security-policy"]
    )
    upstream = client.get(f"/lineage?key={scores}").text
    assert "accuracy" in upstream and '"model": "tree"' in unescape(upstream)  # JSON preview
    assert "Metrics the stage logged" in upstream


def test_previews_of_tables_arrays_and_pickles(client, project):
    table = client.get(f"/lineage?key={artifact_key(project, 1, 'table')}").text
    assert '<table class="preview-table">' in table and "12 rows" in table
    array = text_of(client.get(f"/lineage?key={artifact_key(project, 1, 'matrix')}").text)
    assert "(3, 4)" in array and "float64" in array and "5.5" in array  # shape, dtype, mean
    model_key = artifact_key(project, 1, "model")
    model = client.get(f"/lineage?key={model_key}").text
    assert PICKLE_NOTE in model
    raw = client.get(f"/artifact/{model_key}/model.pkl")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment")


def test_previews_never_unpickle_and_survive_bad_files(tmp_path):
    objects = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "objects.npy", objects, allow_pickle=True)
    shown = preview(tmp_path / "objects.npy", "objects.npy")
    assert shown.kind == "pickle" and PICKLE_NOTE in shown.note
    (tmp_path / "broken.json").write_text("{not json")
    assert preview(tmp_path / "broken.json", "broken.json").kind == "error"
    import pandas as pd

    pd.DataFrame({"a": range(50), "b": ["x"] * 50}).to_parquet(tmp_path / "t.parquet")
    table = preview(tmp_path / "t.parquet", "t.parquet")
    assert table.kind == "table" and table.columns == ["a", "b"]
    assert len(table.rows) == 20 and table.total_rows == 50 and table.truncated
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01")
    assert preview(tmp_path / "blob.bin", "blob.bin").kind == "binary"


# -- security -----------------------------------------------------------------------------


def test_paths_outside_the_served_folders_are_refused(client, project, runs):
    run_id = runs[1].id
    key = artifact_key(project, 1, "scores")
    outside = project.parent / "secret.txt"
    # A symlink inside the report folder that points out of it.
    link = project / "reports" / run_id / "files" / "escape"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    (project / "reports" / run_id / "up").symlink_to(project.parent, target_is_directory=True)
    attempts = [
        f"/runs/{run_id}/../../assay.db",
        f"/runs/{run_id}/%2e%2e/%2e%2e/assay.db",
        f"/runs/{run_id}/..%2f..%2f..%2fsecret.txt",
        f"/runs/{run_id}/%2Fetc%2Fpasswd",
        f"/runs/{run_id}//etc/passwd",
        f"/runs/{run_id}/files/escape",
        f"/runs/{run_id}/up/secret.txt",
        f"/runs/{run_id}/..%5c..%5csecret.txt",
        f"/artifact/{key}/../../../../../secret.txt",
        f"/artifact/{key}/%2e%2e%2f%2e%2e%2fassay.db",
        f"/artifact/{key}/%2Fetc%2Fpasswd",
        "/artifact/..%2f..%2fsecret.txt/x",
        "/lineage?key=../../secret.txt",
        "/lineage?key=%2Fetc%2Fpasswd",
        "/api/lineage?key=..%2F..%2Fsecret.txt",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2f..%2fexperiment.py",
        "/static/%2Fetc%2Fpasswd",
        "/log/..%2f..%2fsecret",
        "/log/%2Fetc%2Fpasswd",
        f"/runs/{run_id}/{'a' * 300}",  # too long a name for the file system: was a 500
        f"/static/{'a' * 300}",
        f"/artifact/{key}/{'a' * 300}",
        f"/runs/{run_id}/{'a/' * 3000}x",
    ]
    for url in attempts:
        response = client.get(url)
        assert response.status_code in (400, 403, 404), (url[:80], response.status_code)
        assert SECRET not in response.text and "root:x:" not in response.text, url
    folders = Folders.of(ProjectConfig.load(project))
    for bad in ("../secret.txt", "/etc/passwd", "a/../../x", "~/x", "a\\..\\b", "x\x00y", ""):
        with pytest.raises(Refused):
            folders.resolve("reports", bad)
    assert folders.resolve("reports", f"{run_id}/run.json").is_file()


def test_html_in_parameter_set_names_is_shown_not_run(client, project, runs):
    key = artifact_key(project, 3, "scores", "<script>window.__pwned=1</script>")
    pages = [
        "/runs",
        f"/runs/{runs[3].id}/",
        "/compare?run=1&run=3",
        "/compare?set=3:%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E&set=1:g-lr=0.1-model=tree",
        "/sweep?experiment=sweep&metric=accuracy",
        f"/lineage?key={key}",
        "/runs?q=%3Cscript%3E",
        "/compare?run=%3Cscript%3Ealert(1)%3C%2Fscript%3E&run=1",
    ]
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.text
        assert "<script>window" not in html and "<script>alert" not in html, url
        assert 'onerror="window' not in html and "<b>bold</b>" not in html, url
        for tag, attributes in tags(html):
            names = [name for name, _ in attributes]
            assert not any(name.startswith("on") for name in names), (url, tag, attributes)
            if tag == "script":  # only our own files, never inline
                assert re.fullmatch(r"/static/[a-z/.]+", dict(attributes).get("src") or ""), url
            assert tag not in ("img", "b") or "pwned" not in str(attributes), url
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in client.get("/runs").text


def test_every_response_carries_the_security_headers(client, runs):
    for url in ("/runs", f"/runs/{runs[1].id}/", "/api/runs", "/static/ui.css", "/nope"):
        headers = client.get(url).headers
        policy = headers["content-security-policy"]
        script = re.search(r"script-src ([^;]+)", policy).group(1)
        assert script.strip() == "'self'" and "unsafe" not in script, url
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"


def test_read_only_local_and_token_protected(project):
    config = ProjectConfig.load(project)
    local = TestClient(
        create_app(config, allowed_hosts=list(LOCAL_HOSTS)), base_url="http://localhost:1"
    )
    assert local.get("/runs").status_code == 200
    assert local.post("/runs").status_code == 405
    assert local.delete("/api/runs").status_code == 405
    rebinding = TestClient(
        create_app(config, allowed_hosts=list(LOCAL_HOSTS)), base_url="http://evil.example"
    )
    assert rebinding.get("/api/runs").status_code == 400
    guarded = TestClient(create_app(config, token="s3cret-token"), base_url="http://10.1.2.3:1")
    refused = guarded.get("/api/runs")
    assert refused.status_code == 403 and "token" in refused.text
    assert guarded.get("/api/runs?token=wrong").status_code == 403
    allowed = guarded.get("/runs?token=s3cret-token")
    assert allowed.status_code == 200
    assert (
        "HttpOnly" in allowed.headers["set-cookie"]
        and "SameSite=Strict" in allowed.headers["set-cookie"]
    )
    assert guarded.get("/api/runs").status_code == 200  # the cookie now
    guarded.cookies.clear()
    assert guarded.get("/api/runs").status_code == 403


def test_a_project_without_runs_says_so(tmp_path):
    config = ProjectConfig.load(tmp_path)
    client = TestClient(create_app(config), base_url="http://127.0.0.1")
    page = client.get("/runs")
    assert page.status_code == 200 and "No run store yet" in page.text
    assert client.get("/api/runs").json()["total"] == 0
    assert client.get("/runs/1/").status_code == 404
    assert not (tmp_path / "assay.db").exists()  # the dashboard created nothing


def test_without_the_ui_extra_the_message_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    from assay.errors import AssayError
    from assay.ui import serve

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(AssayError, match=r"pip install 'assay\[ui\]' \(uvicorn not installed\)"):
        serve(str(tmp_path))


def test_comparing_a_run_that_does_not_exist_lists_the_recent_runs(client, runs):
    """The error said "The most recent runs are:" and then nothing (only its first line)."""
    errors = client.get("/api/compare?run=1&run=999").json()["errors"]
    assert len(errors) == 1 and errors[0].startswith("No run '999'"), errors
    assert all(runs[n].id in errors[0] for n in (1, 2, 3)), errors
    page = text_of(client.get("/compare?run=1&run=999").text)
    assert "The most recent runs are: 3 " in page and runs[1].id in page


def test_a_filter_on_a_parameter_no_run_has_is_reported(client):
    """`seedd=3` matched no run and said nothing: a typo looked like an empty result."""
    data = client.get("/api/runs?param=lrr%3D0.1&param=epochs%3D4").json()
    assert data["total"] == 0
    assert len(data["errors"]) == 1, data["errors"]
    assert "No run has a parameter named 'lrr'" in data["errors"][0]
    assert "Did you mean 'lr'?" in data["errors"][0]
    page = client.get("/runs?param=lrr%3D0.1")
    assert "No run has a parameter named 'lrr'" in unescape(page.text)


# -- numbers out of range, too many filters, damaged records ------------------------------

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/runs/{HUGE}/",
        f"/runs/{HUGE}",
        f"/runs/-{HUGE}/",
        f"/log/{HUGE}",
        f"/api/runs/{HUGE}/progress",
        f"/api/runs/-{HUGE}/progress",
        f"/runs/{'9' * 5000}/",
    ],
)
def test_a_run_number_beyond_sqlite_is_not_found_not_a_server_error(client, path):
    response = client.get(path)
    assert response.status_code == 404, response.text[:500]
    assert "No run '" in text_of(response.text)


@pytest.mark.parametrize(
    ("query", "same_as"),
    [
        (f"page={HUGE}", "page=1000"),
        ("page=9223372036854775807", "page=1000"),
        ("page=9223372036854775807&per_page=500", "page=1000"),
        (f"page={'9' * 5000}", "page=1000"),
        (f"param=epochs%3D{HUGE}", "param=epochs%3D1000000"),
        (f"param=epochs%3D{'9' * 400}", "param=epochs%3D1000000"),
        (f"param=epochs%3E%3D-{HUGE}", "param=epochs%3E%3D-1000000"),
        (f"param=epochs%3E-{'9' * 400}", "param=epochs%3E-1000000"),
        (f"param=epochs%3C{HUGE}", "param=epochs%3C1000000"),
    ],
)
def test_out_of_range_numbers_in_the_runs_query_answer_normally(client, query, same_as):
    """As a number in range beyond every value: a page past the last, a bound beyond all."""
    for path in ("/api/runs", "/runs"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 200, (path, response.text[:500])
    data = client.get(f"/api/runs?{query}").json()
    expected = client.get(f"/api/runs?{same_as}").json()
    assert (data["total"], data["runs"]) == (expected["total"], expected["runs"])
    assert data["total"] == (0 if "%3D" in query and "%3E" not in query else 3)


def test_comparing_runs_beyond_sqlite_lists_the_recent_runs(client, runs):
    for query in (f"run={HUGE}", f"set={HUGE}:x", f"run=1&run=-{HUGE}"):
        response = client.get(f"/api/compare?{query}")
        assert response.status_code == 200, response.text[:500]
        (error,) = response.json()["errors"]
        assert error.startswith("No run '") and runs[3].id in error
        assert client.get(f"/compare?{query}").status_code == 200


def test_too_many_parameter_filters_get_a_clear_400(client):
    """1,100 filters made SQLite give up ("Expression tree is too large"): a 500."""
    many = "&".join(["param=epochs%3D4"] * 1100)
    response = client.get(f"/api/runs?{many}")
    assert response.status_code == 400
    assert "Too many parameter filters: 1100" in response.json()["error"]
    page = client.get(f"/runs?{many}")
    assert page.status_code == 400 and "Too many parameter filters" in text_of(page.text)
    allowed = client.get("/api/runs?" + "&".join(["param=epochs%3D6"] * 100))
    assert allowed.status_code == 200
    assert [r["number"] for r in allowed.json()["runs"]] == [2]


@pytest.mark.parametrize(
    "path", ["/runs/999/", "/runs/nope/", "/log/999", "/api/runs/nope/progress"]
)
def test_a_run_that_does_not_exist_lists_the_recent_runs(client, runs, path):
    """The message ended with "The most recent runs are:" and nothing after it."""
    response = client.get(path)
    assert response.status_code == 404
    text = response.json()["error"] if path.startswith("/api/") else text_of(response.text)
    text = " ".join(text.split())
    assert "The most recent runs are: 3 " in text, text
    assert all(runs[n].id in text for n in (1, 2, 3)), text
    assert "Refer to a run by its number" in text


DAMAGED_RECORDS = [
    '{"broken',
    "[]",
    '{"run": {}}',
    '{"format": "assay-run-record/1", "run": [], "param_sets": [], "records": [],'
    ' "nodes": [], "reportables": []}',
    '{"format": "assay-run-record/1", "run": {}, "param_sets": [], "records": [],'
    ' "nodes": [{"stage": "load"}], "reportables": []}',
]


@pytest.mark.parametrize("damaged", DAMAGED_RECORDS)
def test_a_damaged_run_record_is_shown_from_the_run_store(tmp_path, caplog, damaged):
    """A reports/RUN/run.json that is not a run record gave a 500; the page is now made
    from the run store, as for a run without one, and the file is left as it is."""
    from conftest import copy_project

    root = copy_project("basic", tmp_path)
    manager = assay.run_experiment("diamond", [], project_root=root)
    record = root / "reports" / manager.run_id / "run.json"
    record.write_text(damaged)
    app = create_app(ProjectConfig.load(root), allowed_hosts=list(LOCAL_HOSTS))
    client = TestClient(app, base_url="http://127.0.0.1:8000")

    with caplog.at_level("WARNING", logger="assay"):
        page = client.get(f"/runs/{manager.run_id}/")

    assert page.status_code == 200, page.text[:2000]
    assert "rebuilt from the run store" in page.text
    assert page.text.count('<g class="stage') == 9
    assert f"{record} is damaged" in caplog.text
    assert record.read_text() == damaged  # the dashboard changes nothing
