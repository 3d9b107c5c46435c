"""The runs table's parameter filters, written as a researcher writes them.

Real runs (``python -m assay run``) of a project whose parameters have unicode names,
text with ``=`` in it and empty text, and a run store holding parameter names with a
backslash, a dot, a tab or NUL (as a store written by other code may); the dashboard is
asked through its ASGI application, on the real SQLite file.
"""

from __future__ import annotations

import subprocess
import sys
import unicodedata
import urllib.parse
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from assay.config import ProjectConfig
from assay.store import ParamSetInfo, RunStore
from assay.ui import LOCAL_HOSTS, create_app, queries
from test_ui_dashperf_s32 import grow
from ui_helpers import subprocess_env

TRAIN = """
from dataclasses import dataclass, field
import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1
    größe: int = 3
    ratio: str = "a=b"
    note: str = ""
    weights: dict = field(default_factory=lambda: {"a\\\\b": 1, "x.y": 2})


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def fit(record):
    record.log_metric("accuracy", record.params.lr)
    return {"lr": record.params.lr}


def get_params():
    return [Params(name="small"), Params(name="big", lr=0.5, größe=7, ratio="x==y", note="n")]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
"""


def client_for(root: Path) -> TestClient:
    app = create_app(ProjectConfig.load(root), allowed_hosts=list(LOCAL_HOSTS))
    return TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False)


def ask(client: TestClient, *filters: str, extra: str = "") -> tuple[int, dict]:
    query = "&".join("param=" + urllib.parse.quote(f) for f in filters)
    response = client.get(f"/api/runs?{query}{extra}")
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dashfilter")
    (root / "experiments").mkdir()
    (root / "experiments" / "train.py").write_text(TRAIN, encoding="utf-8")
    for names in ("small", "big"):
        subprocess.run(
            [sys.executable, "-m", "assay", "run", "train", "--names", names],
            cwd=root, env=subprocess_env(), check=True, capture_output=True,
        )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def client(project: Path) -> TestClient:
    return client_for(project)


@pytest.mark.parametrize(
    ("written", "runs"),
    [
        ("größe=7", [2]),
        (unicodedata.normalize("NFD", "größe") + "=7", [2]),  # as macOS may type it
        ("größe<5", [1]),
        ('note=""', [1]),
        ('note!=""', [2]),
        ("ratio=a=b", [1]),
        ('ratio="a=b"', [1]),
        ('ratio="x==y"', [2]),
        ("weights={'a\\\\b': 1, 'x.y': 2}", [2, 1]),  # a dict: its text, as compare shows it
    ],
)
def test_a_filter_on_unicode_names_empty_values_and_equals_signs_matches(client, written, runs):
    status, found = ask(client, written)
    assert status == 200, found
    assert [r["number"] for r in found["runs"]] == runs, found
    assert found["errors"] == [] and found["total"] == len(runs)


@pytest.mark.parametrize(
    ("written", "runs"),
    [("lr=.5", [2]), ("lr=+.5", [2]), ("lr<1_000", [2, 1]), ("ratio='x==y'", [2]),
     ("note=''", [1]), ("lr='0.1'", [1]), ("lr=.1", [1])],
)  # fmt: skip
def test_a_value_written_as_python_writes_it_matches_as_in_set(client, written, runs):
    # .5, 1_000 and 'text' (as --set reads them) were read as text and matched nothing
    status, found = ask(client, written)
    assert status == 200, found
    assert [r["number"] for r in found["runs"]] == runs, found
    assert found["errors"] == [] and found["total"] == len(runs)


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("l\x00r=0.1", "No run has a parameter named 'l\\x00r'"),
        ("lr\\=0.1", "No run has a parameter named 'lr\\\\'"),
        ('"lr"=0.1', "write the name bare, as in lr=0.1"),
        ("lr==0.1", "is not FIELD=VALUE"),
        ("note='', lr=0.1", "holds more than one condition"),
        ("note=", "is not FIELD=VALUE"),
        ("x" * 5000 + "=1", "No run has a parameter named 'xxx"),
    ],
)
def test_a_filter_that_names_no_parameter_is_said_so_not_a_broken_store(client, written, said):
    status, found = ask(client, written)
    assert status == 200, found
    assert any(said in error for error in found["errors"]), found["errors"]


def test_many_filters_at_once_match_every_condition_and_one_more_than_allowed_says_why(
    client,
):
    many = [f"lr>={i / 1000}" for i in range(99)] + ["größe=7"]
    status, found = ask(client, *many)
    assert status == 200 and [r["number"] for r in found["runs"]] == [2], found
    response = client.get("/api/runs?" + "&".join(["param=lr%3E0"] * 101))
    assert response.status_code == 400 and "at most 100" in response.json()["error"]


ODD_NAMES = {
    "backslash": "a\\b",
    "dot": "x.y",
    "tab": "c\tz",
    "line break": "c\nz",
    "NUL": "n\x00l",
    "unicode": "naïve",
}


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory) -> Path:
    """A project whose run store names parameters with odd characters (runs 1 and 2 hold 1
    and 2 under each name, run 3 holds none of them)."""
    root = tmp_path_factory.mktemp("odd-names")
    with RunStore(root / "assay.db") as store:
        for value in (1, 2, None):
            run = store.begin_run("odd", command="assay run odd", param_names=["p"])
            values = {"name": "p"} if value is None else {n: value for n in ODD_NAMES.values()}
            store.record_param_sets(run.id, [ParamSetInfo("p", "h", "Params", values)])
            store.finish_run(run.id, "completed")
    return root


@pytest.mark.parametrize("name", list(ODD_NAMES.values()), ids=list(ODD_NAMES))
def test_a_filter_on_a_name_with_an_odd_character_matches_exactly_its_runs(odd_store, name):
    client = client_for(odd_store)
    for written, runs in [(f"{name}=2", [2]), (f"{name}=1", [1]), (f"{name}>=1", [2, 1])]:
        status, found = ask(client, written)
        assert status == 200, found
        assert [r["number"] for r in found["runs"]] == runs, written
        assert found["errors"] == [], written


def test_a_page_past_the_last_still_counts_the_filtered_runs(client):
    status, found = ask(client, "lr>0", extra="&per_page=1&page=5")
    assert status == 200 and found["runs"] == [] and found["total"] == 2
    status, found = ask(client, "lr>0", extra="&per_page=1&page=2")
    assert [r["number"] for r in found["runs"]] == [1] and found["total"] == 2


def steps(db, work) -> int:
    """How many steps (of 100 SQLite instructions) ``work()`` takes on ``db``."""
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0

    db.set_progress_handler(count, 100)
    try:
        work()
    finally:
        db.set_progress_handler(None, 100)
    return counted[0]


@pytest.mark.parametrize("written", ["lr>=0.2", "lr>=5"])  # runs found, and none
def test_a_filtered_page_reads_the_parameter_sets_once(project, tmp_path, written):
    # the page counted its runs in one pass over every parameter set, then read them
    # all again for the runs it shows
    store = tmp_path / "big.db"
    grow(project / "assay.db", store, 2000)
    db = queries.connect(store)
    try:
        one_pass = steps(db, lambda: db.execute(
            "SELECT COUNT(*) FROM param_sets p WHERE json_extract(p.values_json, '$.\"lr\"') >= 0.2"
        ).fetchone())  # fmt: skip
        query = queries.RunQuery(params=[written])
        page = steps(db, lambda: queries.list_runs(db, query))
    finally:
        db.close()
    assert page < 1.5 * one_pass, (page, one_pass)
