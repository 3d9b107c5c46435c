"""Provenance and the run store from the command line, as a researcher meets them:
real git repositories, real run stores, ``python -m assay`` in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay import run_experiment
from assay.compare import compare_runs
from assay.store import RunStore
from conftest import run_cli
from git_helpers import GITIGNORE, init_repo


@pytest.fixture(autouse=True)
def _no_outer_repository(tmp_path, monkeypatch):
    """git must not find a repository above the test's folder."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def run(project: Path) -> str:
    manager = run_experiment(
        "diamond", ["two"], project_root=project, command="assay run diamond -p two"
    )
    return manager.run_id


def test_compare_with_a_run_whose_git_state_is_unknown_does_not_call_it_clean(
    tmp_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "notes.txt").write_text("work in progress\n")  # untracked: dirty
    dirty = run(tmp_project)
    no_git = tmp_path / "no-git-here"
    no_git.mkdir()
    monkeypatch.setenv("PATH", str(no_git))  # `git` is not on PATH for the second run
    unknown = run(tmp_project)

    with RunStore(tmp_project / "assay.db") as store:
        diff = compare_runs(store, dirty, unknown)
    assert diff.code["dirty"] == (True, None)  # not (True, False): B's tree was never seen
    assert diff.code["state"][0] == "recorded"
    assert "git is not installed" in diff.code["state"][1]

    monkeypatch.undo()
    shown = run_cli("compare", dirty, unknown, cwd=tmp_project)
    assert shown.code == 0, shown.output
    assert "git is not installed" in shown.text
    assert "False" not in shown.output


@pytest.mark.parametrize("command", [["show", "latest"], ["ls"], ["compare", "1", "2"]])
def test_a_damaged_run_store_says_so_and_what_to_do(tmp_project: Path, command: list) -> None:
    run(tmp_project)
    run(tmp_project)
    store = tmp_project / "assay.db"
    for leftover in tmp_project.glob("assay.db-*"):
        leftover.unlink()
    data = bytearray(store.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # every page but the first is garbage
    store.write_bytes(bytes(data))

    shown = run_cli(*command, cwd=tmp_project)
    assert shown.code != 0
    assert "Traceback" not in shown.output
    assert f"The run store {store} is damaged" in shown.text
    assert "Move it away" in shown.text
