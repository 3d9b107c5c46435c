"""The dashboard and notebook sessions as a researcher meets them (session 34).

Projects here are made in a temporary folder and run with ``python -m assay run``
(or in this process, as a notebook would); the dashboard is ``python -m assay ui``
in a process of its own, asked over HTTP or driven by headless Chromium.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import edit, run_cli
from ui_helpers import Server

GROWING = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    lr: float = 0.1


@assay.stage(outputs=["score"], cachers=[JsonCacher])
def fit(record):
    score = round(record.params.lr * 10 + len(vars(record.params)), 3)
    record.log_metric("score", score)
    return score


def get_params():
    return [Params(name=f"lr={lr}", lr=lr) for lr in (0.1, 0.2, 0.3)]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
"""


@pytest.fixture(scope="module")
def grown(tmp_path_factory) -> Path:
    """A project whose parameter class gained a field (``batch``) after its first run:
    the first run's sets have no ``batch`` at all, the second's have one."""
    root = tmp_path_factory.mktemp("ui-s34-grown")
    (root / "experiments").mkdir()
    module = root / "experiments" / "ui_grow34.py"
    module.write_text(GROWING)
    first = run_cli("run", "ui_grow34", cwd=root)
    assert first.code == 0, first
    edit(module, "    lr: float = 0.1\n", "    lr: float = 0.1\n    batch: int = 32\n")
    edit(module, "(0.1, 0.2, 0.3)]", "(0.1, 0.2, 0.3)] + [Params(name='big', lr=0.1, batch=64)]")
    second = run_cli("run", "ui_grow34", cwd=root)
    assert second.code == 0, second
    return root


def drawn(page, selector: str, errors: list[str]) -> None:
    """Wait until the plot at ``selector`` says it is drawn, or a script failed."""
    deadline = time.monotonic() + 60
    while page.get_attribute(selector, "data-drawn") is None and not errors:
        assert time.monotonic() < deadline, f"{selector} was never drawn"
        page.wait_for_timeout(100)


@pytest.mark.slow
@pytest.mark.parametrize("query", ["x=lr", "x=lr&color=batch", "x=batch&color=lr"])
def test_a_sweep_over_runs_before_and_after_a_new_parameter_field_is_drawn(grown, browser, query):
    """Sets of the older run lack the field added since: the plots treat it as missing
    (they stopped at JSON.parse(undefined) and drew nothing, or only the scatter)."""
    with Server(grown) as server:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(f"{server.base}/sweep?experiment=ui_grow34&all=1&{query}")
            drawn(page, "#sweep-parallel", errors)
            assert errors == []
            assert page.get_attribute("#sweep-scatter", "data-drawn") == "7"
            assert page.get_attribute("#sweep-parallel", "data-drawn") == "7"
            ticks = page.locator("#sweep-parallel text.tick").all_inner_texts()
            assert "undefined" not in ticks
            assert errors == []
        finally:
            page.close()


# -- run_experiment from a notebook ------------------------------------------------------

NOTEBOOK_CELL = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Square(assay.ExperimentParameters):
    side: int = 2


@assay.stage(outputs=["area"], cachers=[JsonCacher])
def area(record):
    return record.params.side ** 2


def get_params():
    return [Square(name="two"), Square(name="three", side=3)]


def run(param_sets, manager):
    for params in param_sets:
        area(assay.Record(manager, params))
"""


@pytest.fixture
def notebook_module(tmp_path, monkeypatch):
    """The code of a notebook cell, in a module with no file (as a notebook's ``__main__``
    and a ``types.ModuleType`` made in one are), in an empty project folder."""
    import sys
    import types

    module = types.ModuleType("ui_cell34")
    monkeypatch.setitem(sys.modules, "ui_cell34", module)  # a dataclass looks itself up
    exec(compile(NOTEBOOK_CELL, "<cell>", "exec"), module.__dict__)
    (tmp_path / "experiments").mkdir()
    monkeypatch.chdir(tmp_path)
    return module


def test_run_experiment_takes_a_module_without_a_file(notebook_module, tmp_path):
    """``run_experiment(module)`` of a notebook's code stopped with AttributeError
    ``__file__`` (naming the experiment, reading its get_params)."""
    import assay
    from assay.store import RunStore

    manager = assay.run_experiment(notebook_module, project_root=tmp_path)
    assert [r.state["area"] for r in manager.records] == [4, 9]
    with RunStore(tmp_path / "assay.db") as store:
        run = store.get_run("latest")
    assert (run.experiment, run.status) == ("ui_cell34", "completed")


def test_a_module_without_a_file_and_without_get_params_is_named(notebook_module, tmp_path):
    import assay
    from assay.errors import AssayError

    del notebook_module.get_params
    with pytest.raises(AssayError, match="module ui_cell34"):
        assay.run_experiment(notebook_module, project_root=tmp_path)


def test_workers_that_cannot_import_notebook_code_are_refused_before_anything_runs(
    notebook_module, tmp_path, monkeypatch
):
    """Stages and parameter classes typed into a notebook pickle by name, so the check of
    what travels passed them, and every stage failed on a spawned worker ("Can't get
    attribute 'area' on <module '__main__'>") with advice about the project folder."""
    import assay
    from assay.errors import AssayError

    monkeypatch.setenv("ASSAY_START_METHOD", "spawn")  # as in Jupyter, which runs threads
    with pytest.raises(AssayError) as caught:
        assay.run_experiment(notebook_module, project_root=tmp_path, parallel=2)
    message = str(caught.value)
    assert "nothing was run" in message
    assert "stage function 'area'" in message and "Square" in message
    assert "ui_cell34" in message and "notebook" in message
    assert not list((tmp_path / "data" / "cache").rglob("*.json"))


def test_forked_workers_still_run_notebook_code(notebook_module, tmp_path, monkeypatch):
    """A forked worker is a copy of this process, notebook code included: not refused."""
    import assay

    monkeypatch.setenv("ASSAY_START_METHOD", "fork")
    manager = assay.run_experiment(notebook_module, project_root=tmp_path, parallel=2)
    assert [r.state["area"] for r in manager.records] == [4, 9]


def test_a_session_that_reran_a_set_name_with_new_values_records_the_new_values(
    notebook_module, tmp_path, caplog
):
    """In a notebook one edits a cell's values and runs it again under the same name: the
    session's run kept the first values beside the metrics and results of the last, so
    the dashboard showed side=2 with the area of side=5."""
    import logging

    import assay
    from assay.store import RunStore

    square = notebook_module.Square
    manager = assay.ArtifactManager("ui_session34", project_root=tmp_path)
    notebook_module.area(assay.Record(manager, square(name="mine", side=2)))
    notebook_module.area(assay.Record(manager, square(name="other", side=3)))
    latest = notebook_module.area(assay.Record(manager, square(name="mine", side=5)))
    assert latest.state["area"] == 25
    with caplog.at_level(logging.WARNING, logger="assay"):
        manager.generate_report()
    with RunStore(tmp_path / "assay.db") as store:
        sets = {s.name: s for s in store.param_sets(manager.run_id)}
        run = store.get_run(manager.run_id)
    assert run.param_names == ["mine", "other"]
    assert sets["mine"].hash == manager.params_hash(latest.params)
    assert sets["mine"].values["side"] == 5
    assert "'mine'" in caplog.text and "side" in caplog.text


# -- a project that has not run yet -------------------------------------------------------


def test_the_sweep_page_of_a_project_without_runs_says_so(tmp_path):
    """The Sweep link of the navigation answered 404 "Not found" before the first run,
    where the runs page says that nothing has run yet."""
    import json
    import urllib.error
    import urllib.request

    (tmp_path / "experiments").mkdir()
    with Server(tmp_path) as server:
        for path in ("/sweep", "/api/sweep"):
            try:
                with urllib.request.urlopen(server.base + path, timeout=30) as response:
                    status, body = response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read().decode()
            assert status == 200, (path, body[:300])
        assert json.loads(body)["experiments"] == []
        with urllib.request.urlopen(server.base + "/sweep", timeout=30) as response:
            assert "No runs yet" in response.read().decode()


# -- a module edited after a notebook imported it -----------------------------------------

EDITED = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    return record.params.a * 10
"""


def test_the_advice_for_a_module_edited_after_import_is_one_that_works(tmp_path, monkeypatch):
    """The refusal said to reload the module, or that ``%autoreload 2`` does it: a reload
    leaves the names a notebook imported with ``from ... import`` as they were (refused
    again), and autoreload only follows edits made after it was turned on, so neither
    helped. It names the import to run again, and when autoreload helps."""
    import importlib
    import sys

    import assay
    from assay.errors import ProjectError

    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "ui_edit34.py").write_text(EDITED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {}
    exec("from experiments.ui_edit34 import Params, make", namespace)  # a notebook cell
    manager = assay.ArtifactManager("ui_edit34", project_root=tmp_path)
    namespace["make"](assay.Record(manager, namespace["Params"](name="one", a=2)))
    imported = {n: m for n, m in sys.modules.items() if n.split(".")[0] == "experiments"}
    edit(tmp_path / "experiments" / "ui_edit34.py", "* 10\n", "* 100\n")
    sys.modules.update(imported)  # the session keeps what it imported

    with pytest.raises(ProjectError) as caught:
        namespace["make"](assay.Record(manager, namespace["Params"](name="one", a=2)))
    message = " ".join(str(caught.value).split())
    assert "importlib.reload(experiments.ui_edit34)" in message
    assert "from experiments.ui_edit34 import make" in message
    assert "edits made after" in message

    importlib.reload(sys.modules["experiments.ui_edit34"])
    with pytest.raises(ProjectError):  # the name the cell imported is the old function
        namespace["make"](assay.Record(manager, namespace["Params"](name="one", a=2)))
    exec("from experiments.ui_edit34 import Params, make", namespace)  # as the message says
    record = namespace["make"](assay.Record(manager, namespace["Params"](name="one", a=2)))
    assert record.state["x"] == 200


# -- lineage of what a notebook session made -----------------------------------------------


def test_lineage_names_the_recorded_notebook_session_that_made_an_artifact(
    notebook_module, tmp_path
):
    """A session's artifacts are saved before ``generate_report()`` gives it a run number,
    so their sidecars name no run: the lineage page and ``assay lineage`` said "made
    outside a recorded run" beside "Runs that used it: run 1 computed"."""
    from starlette.testclient import TestClient

    import assay
    from assay.config import ProjectConfig
    from assay.lineage import lineage
    from assay.ui import LOCAL_HOSTS, create_app

    manager = assay.ArtifactManager("ui_session34", project_root=tmp_path)
    notebook_module.area(assay.Record(manager, notebook_module.Square(name="mine", side=4)))
    manager.generate_report()
    (node,) = [n for n in manager.plan.nodes if n.spec.name == "area"]
    key = f"{node.key}.area"

    config = ProjectConfig.load(tmp_path)
    found = lineage(key, config=config)
    assert found.run is not None and found.run["number"] == manager.run_info.number
    assert found.params is not None and found.params["side"] == 4

    app = create_app(config, allowed_hosts=list(LOCAL_HOSTS))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        page = client.get("/lineage", params={"key": key})
    assert page.status_code == 200
    assert "made outside a recorded run" not in page.text
    assert f"run {manager.run_info.number} · {manager.run_info.id}" in page.text
