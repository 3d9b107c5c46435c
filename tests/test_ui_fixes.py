"""The dashboard, fixed: the files it reads on its own stay inside their folders, a runs
query with a value it cannot use says so, and the live panel says where "done" comes from.

The project is ``ui_helpers.make_project``'s (three real runs); the dashboard is
``assay ui`` in its own process (``ui_helpers.Server``), asked over HTTP. Run 1 is
marked ``running`` in the run store, with this test's process as its process (alive),
as a run still going looks to the dashboard.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from html import unescape
from pathlib import Path

import pytest

from assay.store import RunStore
from ui_helpers import SECRET, Server, make_project

LEAKED = "LEAKED-FROM-OUTSIDE-THE-PROJECT"
"""In files outside the project that symlinks inside it point to: never in a response."""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("ui-fixes"))
    db = sqlite3.connect(root / "assay.db")
    with db:
        (config,) = db.execute("SELECT config_json FROM runs WHERE number = 1").fetchone()
        db.execute(
            "UPDATE runs SET status = 'running', ended = NULL, host = ?, config_json = ?"
            " WHERE number = 1",
            (socket.gethostname(), json.dumps({**json.loads(config), "process_id": os.getpid()})),
        )
    db.close()
    (root.parent / "outside").mkdir()
    return root


@pytest.fixture(scope="module")
def server(project: Path):
    with Server(project) as running:
        yield running


@pytest.fixture(scope="module")
def run_ids(project: Path) -> dict[int, str]:
    with RunStore(project / "assay.db") as store:
        return {run.number: run.id for run in store.list_runs()}


def get(server: Server, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(server.base + path, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


@contextmanager
def replaced_by_symlink(path: Path, target: Path):
    """``path`` is a symlink to ``target`` (outside the project) until the block ends."""
    saved = path.with_name(path.name + ".saved")
    if path.exists():
        path.rename(saved)
    path.symlink_to(target)
    try:
        yield
    finally:
        path.unlink()
        if saved.exists():
            saved.rename(path)


# -- files the dashboard reads on its own ---------------------------------------------------


def test_a_log_symlinked_out_of_the_project_is_not_shown(server, project, run_ids):
    """/log/N refused it, but /api/runs/N/progress showed its last 40 lines."""
    run_id = run_ids[2]
    with replaced_by_symlink(project / "logs" / f"{run_id}.log", project.parent / "secret.txt"):
        status, text = get(server, f"/api/runs/{run_id}/progress")
        assert status == 200 and SECRET not in text
        assert json.loads(text)["log_tail"] == []
        assert get(server, f"/log/{run_id}")[0] == 404
        status, page = get(server, f"/runs/{run_id}/")
        assert status == 200 and SECRET not in page
        assert f"/log/{run_id}" not in page  # no link to a log that would be refused


def test_files_of_a_running_run_symlinked_out_of_the_project_are_not_read(server, project, run_ids):
    """Its log, its progress file, a stage folder and a sidecar, each a symlink out."""
    run_id = run_ids[1]
    outside = project.parent / "outside"
    (outside / "progress.json").write_text(
        json.dumps({"done": 99, "total": 999, "current": [LEAKED]})
    )
    (outside / "run.log").write_text(LEAKED + "\n")
    sidecar = {"run_id": run_id, "stage": LEAKED, "param_set": LEAKED, "created": "x"}
    (outside / "stage").mkdir(exist_ok=True)
    (outside / "stage" / "out.meta.json").write_text(json.dumps(sidecar))
    objects = project / "data" / "cache" / "objects" / "zz"
    objects.mkdir(parents=True, exist_ok=True)
    (objects / ("zz" + "0" * 62)).symlink_to(outside / "stage", target_is_directory=True)
    (objects / ("zz" + "1" * 62)).mkdir()
    (objects / ("zz" + "1" * 62) / "out.meta.json").symlink_to(outside / "stage/out.meta.json")
    logs = project / "logs"
    with (
        replaced_by_symlink(logs / f"{run_id}.log", outside / "run.log"),
        replaced_by_symlink(logs / f"{run_id}.progress.json", outside / "progress.json"),
    ):
        status, text = get(server, f"/api/runs/{run_id}/progress")
        assert status == 200 and LEAKED not in text, text
        data = json.loads(text)
        assert data["running"] and data["log_tail"] == []
        assert data["done"] != 99 and data["total"] != 999
        assert data["source"] == ["cache sidecars"]
        status, page = get(server, f"/runs/{run_id}/")
        assert status == 200 and LEAKED not in page


def test_a_run_record_symlinked_out_of_the_reports_folder_is_not_read(server, project, run_ids):
    """The run page read ``reports/RUN_ID/run.json`` wherever a symlink took it."""
    run_id = run_ids[2]
    record_file = project / "reports" / run_id / "run.json"
    record = json.loads(record_file.read_text())
    record["nodes"][0]["stage"] = LEAKED
    foreign = project.parent / "outside" / "run.json"
    foreign.write_text(json.dumps(record))
    with replaced_by_symlink(record_file, foreign):
        status, page = get(server, f"/runs/{run_id}/")
    assert status == 200 and LEAKED not in page
    assert "make_data" in page  # the page is made from the run store instead


# -- runs queries with values the dashboard cannot use -------------------------------------


@pytest.mark.parametrize(
    ("query", "message", "total"),
    [
        ("status=bogus", "No run has the status 'bogus'", 3),
        ("sort=bogus", "Cannot sort by 'bogus'", 3),
        ("order=up", "order= takes asc or desc, not 'up'", 3),
        ("sort=metric:acuracy", "No run logged a metric named 'acuracy'", 3),
        ("experiment=swep", "No run of an experiment named 'swep'", 0),
        ("param=epochs>=abc", "compares 'epochs', which holds numbers, with 'abc'", 0),
        ("param=model<3", "compares 'model', which holds text, with the number 3", 0),
        ("param=epochs==4", "'epochs==4' is not FIELD=VALUE", 3),
        ("param=epochs=", "'epochs=' is not FIELD=VALUE", 3),
        ("param=model=forest, epochs>=5", "holds more than one condition: a box takes one", 0),
    ],
)
def test_a_runs_query_with_an_unusable_value_says_so(server, query, message, total):
    """These returned every run or none, with no word of why (``errors`` empty)."""
    name, _, value = query.partition("=")
    encoded = urllib.parse.urlencode({name: value})
    status, text = get(server, f"/api/runs?{encoded}")
    assert status == 200, text
    data = json.loads(text)
    assert len(data["errors"]) == 1 and message in data["errors"][0], data["errors"]
    assert data["total"] == total
    status, page = get(server, f"/runs?{encoded}")
    assert status == 200 and message in unescape(page)


def test_usable_comparisons_of_text_and_numbers_say_nothing(server):
    for query in ('param=model>="m"', "param=epochs>=5", "sort=metric:accuracy&order=asc",
                  'param=model="forest, epochs>=5"'):  # fmt: skip
        pairs = [tuple(part.split("=", 1)) for part in query.split("&")]
        status, text = get(server, "/api/runs?" + urllib.parse.urlencode(pairs))
        assert status == 200 and json.loads(text)["errors"] == [], (query, text)


# -- the live panel's note -----------------------------------------------------------------


def test_the_live_panel_says_where_done_comes_from(server, project, run_ids):
    """It always said "read from the cache's sidecars", even from the progress file."""
    run_id = run_ids[1]
    status, page = get(server, f"/runs/{run_id}/")
    assert status == 200 and 'id="live-note"' in page
    assert "read from the cache&#39;s sidecars" in page and "as the run reports" not in page
    progress_file = project / "logs" / f"{run_id}.progress.json"
    progress_file.write_text(json.dumps({"done": 5, "total": 20, "current": ["train [a]"]}))
    try:
        status, page = get(server, f"/runs/{run_id}/")
        data = json.loads(get(server, f"/api/runs/{run_id}/progress")[1])
    finally:
        progress_file.unlink()
    assert status == 200 and "cache&#39;s sidecars" not in page
    assert f"as the run reports them (in its progress file, logs/{run_id}.progress.json)" in (
        unescape(page)
    )
    assert data["done"] == 5 and "progress file" in data["done_note"]
    finished = json.loads(get(server, f"/api/runs/{run_ids[2]}/progress")[1])
    assert finished["done_note"] == "Every stage run of the run, from the run store."


def test_the_live_panel_says_nothing_runs_when_the_progress_file_says_so(server, project, run_ids):
    """Stage runs sent to a Dask cluster whose workers have not joined yet: the panel said
    "not reported by the engine" beside the queued count the engine had just reported."""
    run_id = run_ids[1]
    status, page = get(server, f"/runs/{run_id}/")
    assert status == 200 and "not reported by the engine" in page  # no progress file
    progress_file = project / "logs" / f"{run_id}.progress.json"
    progress_file.write_text(json.dumps({"done": 0, "total": 6, "current": [], "queued": 2}))
    try:
        status, page = get(server, f"/runs/{run_id}/")
        data = json.loads(get(server, f"/api/runs/{run_id}/progress")[1])
    finally:
        progress_file.unlink()
    assert status == 200 and "not reported by the engine" not in page
    assert "none at the moment" in page and "(2 more sent to workers" in page
    assert data["current"] == [] and "progress file" in data["source"]
