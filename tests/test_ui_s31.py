"""The dashboard on projects a researcher really has: damaged or newer run stores, and more.

Each test serves a real project with ``python -m assay ui`` (a separate process, as a
researcher starts it) and asks it over HTTP, as a browser would.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from assay.store import SCHEMA_VERSION, RunStore
from ui_helpers import Server, make_project, subprocess_env


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("ui-s31"))


@pytest.fixture(scope="module")
def server(project: Path):
    with Server(project) as running:
        yield running


def fetch(server: Server, path: str) -> tuple[int, str]:
    """The status and body of ``GET path``, errors included."""
    try:
        with urllib.request.urlopen(server.base + path, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def newer_store(path: Path) -> None:
    """A run store as a later assay, with a newer table layout, would leave it."""
    with RunStore(path) as store:
        run = store.begin_run("train", command="assay run train")
        store.finish_run(run.id, "completed")
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()


def damaged_store(path: Path) -> None:
    path.write_bytes(b"not a database, whatever it was " * 200)


@pytest.mark.parametrize(
    ("make", "message"),
    [(newer_store, "written by a newer version of assay"), (damaged_store, "SQLite cannot read")],
)
def test_an_unreadable_run_store_is_explained_on_every_page(tmp_path, make, message):
    make(tmp_path / "assay.db")
    before = (tmp_path / "assay.db").read_bytes()
    with Server(tmp_path) as server:
        for path in ("/runs", "/runs/1/", "/compare?run=1&run=2", "/sweep", "/log/1"):
            status, body = fetch(server, path)
            assert status == 503, (path, status, body[:200])
            assert message in body, path
            assert "Internal Server Error" not in body
        status, body = fetch(server, "/api/runs")
        assert status == 503 and message in json.loads(body)["error"]
        assert server.process.poll() is None  # still serving
    assert (tmp_path / "assay.db").read_bytes() == before  # left as it was


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sorting_by_a_curve_follows_its_final_values(server, order):
    # loss falls with every epoch: its first value is the largest, its last the one shown
    status, body = fetch(server, f"/api/runs?sort=metric:loss&order={order}")
    assert status == 200
    shown = [(run["number"], run["metrics"]["loss"]["max"]) for run in json.loads(body)["runs"]]
    expected = sorted(shown, key=lambda pair: pair[1], reverse=order == "desc")
    assert shown == expected


FLAGS = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    augment: bool = False
    depth: int | None = None


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def fit(record):
    record.log_metric("accuracy", 0.9 if record.params.augment else 0.8)
    return {"augment": record.params.augment}


def get_params():
    return [Params(name="plain"), Params(name="augmented", augment=True, depth=3)]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
"""


def test_a_filter_on_a_boolean_or_none_written_as_in_python_matches(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "flags.py").write_text(FLAGS)
    for names in ("plain", "augmented"):
        subprocess.run(
            [sys.executable, "-m", "assay", "run", "flags", "--names", names],
            cwd=tmp_path, env=subprocess_env(), check=True, capture_output=True,
        )  # fmt: skip
    with Server(tmp_path) as server:
        for written, runs in [
            ("augment=True", [2]),
            ("augment=False", [1]),
            ("augment!=True", [1]),
            ("depth=None", [1]),
            ("depth!=None", [2]),
        ]:
            status, body = fetch(server, "/api/runs?param=" + urllib.parse.quote(written))
            found = json.loads(body)
            assert status == 200 and [r["number"] for r in found["runs"]] == runs, written
            assert found["errors"] == [], written


def schema_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


@pytest.mark.slow
def test_the_live_panel_outlasts_a_moment_the_store_cannot_be_read(browser, tmp_path):
    store_path = tmp_path / "assay.db"
    with RunStore(store_path) as store:  # a run of this process: running while the test runs
        run = store.begin_run("train", command="assay run train")
    with Server(tmp_path) as server:
        page = browser.new_page()
        try:
            page.set_default_timeout(60_000)
            page.goto(f"{server.base}/runs/{run.id}/")
            assert page.locator("#live-status").inner_text() == "running"
            page.evaluate("() => { window.__same_page = true; }")
            progress = f"/api/runs/{run.id}/progress"
            with page.expect_response(lambda r: r.url.endswith(progress) and r.status == 503):
                schema_version(store_path, 99)  # as if a newer assay had it for a moment
            with page.expect_response(lambda r: r.url.endswith(progress) and r.ok):
                schema_version(store_path, SCHEMA_VERSION)
            assert page.evaluate("() => window.__same_page") is True  # not reloaded
            assert page.locator("#live-status").inner_text() == "running"
        finally:
            page.close()


@pytest.mark.parametrize("other", ['prefs={"theme": "dark"}', "greeting=hello world", 'a"b=1'])
def test_the_token_cookie_counts_beside_another_apps_cookie(project, other):
    # a browser sends every cookie of the host name, whichever app (port) set it
    with Server(project, "--host", "127.0.0.2") as elsewhere:
        token = elsewhere.url.split("?", 1)[1]
        with urllib.request.urlopen(f"{elsewhere.base}/api/runs?{token}") as first:
            cookie = first.headers["set-cookie"].split(";", 1)[0]
        request = urllib.request.Request(
            f"{elsewhere.base}/api/runs", headers={"Cookie": f"{other}; {cookie}"}
        )
        with urllib.request.urlopen(request) as response:
            assert json.load(response)["total"] == 3
        wrong = urllib.request.Request(
            f"{elsewhere.base}/api/runs", headers={"Cookie": f"{other}; {cookie}x"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong)
        assert refused.value.code == 403
        refused.value.close()


def test_the_search_finds_text_with_accented_capitals_as_it_is_shown(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "flags.py").write_text(FLAGS)
    for notes in ("Übung mit Ärger", "plain notes"):
        subprocess.run(
            [sys.executable, "-m", "assay", "run", "flags", "--notes", notes],
            cwd=tmp_path, env=subprocess_env(), check=True, capture_output=True,
        )  # fmt: skip
    with Server(tmp_path) as server:
        for searched in ("Übung", "übung", "ÄRGER", "mit är", "FLAGS"):
            status, body = fetch(server, "/api/runs?q=" + urllib.parse.quote(searched))
            found = [run["number"] for run in json.loads(body)["runs"]]
            assert status == 200 and found == ([2, 1] if searched == "FLAGS" else [1]), searched


def test_a_run_asked_for_twice_is_compared_once(server):
    status, body = fetch(server, "/api/compare?run=3&run=latest&run=1,3&set=1:g-lr=0.1-model=tree")
    assert status == 200
    assert json.loads(body)["labels"] == ["run 1", "run 3", "run 1 · g-lr=0.1-model=tree"]
    status, body = fetch(server, "/api/compare?" + "&".join(["run=1", "run=2", "run=3"] * 5))
    found = json.loads(body)
    assert found["labels"] == ["run 1", "run 2", "run 3"] and found["errors"] == []


WRITER = """
import sys, time
from pathlib import Path
log, stop = Path(sys.argv[1]), Path(sys.argv[2])
with open(log, "a") as handle:
    for line in range(200_000):  # at most about 20 MB
        if stop.exists():
            break
        handle.write(f"epoch {line}: still training " + "." * 70 + "\\n")
        handle.flush()
        time.sleep(0.0002)
"""


def test_the_log_of_a_run_that_is_still_writing_it_opens_whole(server, project, tmp_path):
    from ui_helpers import latest_run_id

    log = project / "logs" / f"{latest_run_id(project)}.log"
    before = log.read_bytes()
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(stop)])
    try:
        host, port = server.base.removeprefix("http://").split(":")
        for _ in range(5):
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("GET", "/log/latest")
            response = connection.getresponse()
            body = response.read()  # IncompleteRead if the length announced was not sent
            connection.close()
            assert response.status == 200
            assert len(body) == int(response.getheader("content-length"))
    finally:
        stop.write_text("stop")
        writer.wait(timeout=60)
        log.write_bytes(before)
