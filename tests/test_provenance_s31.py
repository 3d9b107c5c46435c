"""Provenance and the run store from the command line, as a researcher meets them:
real git repositories, real run stores, ``python -m assay`` in a subprocess."""

from __future__ import annotations

import os
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


SPLIT = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 4


@assay.stage(inputs=None, outputs=["raw"], cachers=[JsonCacher])
def load(record):
    return list(range(record.params.n))


@assay.stage(inputs=["raw"], outputs=["train", "test"], cachers=[JsonCacher, JsonCacher])
def split(record, raw):
    return raw[:-1], raw[-1:]


@assay.stage(inputs=["train", "test"], outputs=["score"], cachers=[JsonCacher])
def evaluate(record, train, test):
    return {"score": sum(train) - sum(test)}


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    record = assay.Record(manager, param_sets[0])
    evaluate(split(load(record)))
"""


def test_lineage_draws_a_stage_run_with_two_used_outputs_once(tmp_project: Path) -> None:
    (tmp_project / "experiments" / "split.py").write_text(SPLIT)
    run_experiment("split", project_root=tmp_project)

    shown = run_cli("lineage", "split/p/evaluate/score", cwd=tmp_project)
    assert shown.code == 0, shown.output
    # train and test come from one run of split: its stage, and load behind it, once
    assert shown.output.count("stage split") == 1, shown.output
    assert shown.output.count("stage load") == 1, shown.output
    assert "made as shown above" in shown.output


def test_a_git_file_naming_a_missing_repository_says_which(tmp_project: Path) -> None:
    """A worktree (or submodule) whose repository was moved away: its ``.git`` file
    names a folder that is gone. The run goes on; the record says what git found."""
    gone = tmp_project.parent / "moved-away" / "worktrees" / "proj"
    (tmp_project / ".git").write_text(f"gitdir: {gone}\n")
    run_id = run(tmp_project)

    with RunStore(tmp_project / "assay.db") as store:
        error = store.provenance(run_id)["git"]["error"]
    assert error.startswith(f"{tmp_project} is not in a git repository")
    assert str(gone) in error  # the folder the .git file names, not only "no repository"


def test_untracked_files_beside_the_cache_make_the_tree_dirty(tmp_project: Path) -> None:
    """Without a .gitignore for data/, git lists data/ whole (it holds data/cache): the
    researcher's own untracked data/raw/input.csv in it is work a checkout would lack."""
    init_repo(tmp_project, "calls.txt\n__pycache__/\n.env\n")  # data/ is not ignored
    clean = run(tmp_project)  # makes data/cache, logs/, assay.db: assay's, never dirty
    (tmp_project / "data" / "raw").mkdir(parents=True)
    (tmp_project / "data" / "raw" / "input.csv").write_text("x,y\n1,2\n")
    (tmp_project / "data" / "README.md").write_text("where the data came from\n")
    with_input = run(tmp_project)

    with RunStore(tmp_project / "assay.db") as store:
        before, after = store.provenance(clean)["git"], store.provenance(with_input)["git"]
    assert before["dirty"] is False and before["untracked"] == []
    assert after["dirty"] is True
    assert sorted(after["untracked"]) == ["data/README.md", "data/raw/"]  # a folder whole


def test_untracked_files_named_like_assay_outputs_make_the_tree_dirty(tmp_project: Path) -> None:
    """``logs_parser.py`` is not in ``logs/``, nor ``reports.md`` in ``reports/``."""
    init_repo(tmp_project, "calls.txt\n__pycache__/\n.env\n")  # assay's outputs not ignored
    (tmp_project / "logs_parser.py").write_text("def parse(line):\n    return line\n")
    (tmp_project / "reports.md").write_text("# what the runs showed\n")
    run_id = run(tmp_project)
    run(tmp_project)  # the run store now has its -wal / -shm files beside it, perhaps

    with RunStore(tmp_project / "assay.db") as store:
        first, second = (store.provenance(r)["git"] for r in (run_id, store.get_run(-1).id))
    assert first["dirty"] is True
    assert sorted(first["untracked"]) == ["logs_parser.py", "reports.md"]
    assert sorted(second["untracked"]) == ["logs_parser.py", "reports.md"]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs to give a folder away"
)
def test_a_repository_another_user_owns_records_how_to_let_git_read_it(
    tmp_project: Path,
) -> None:
    """In a container, or on a shared disk, git refuses a repository another user owns
    ("dubious ownership"); its advice is the part a researcher needs."""
    init_repo(tmp_project, GITIGNORE)
    os.chown(tmp_project, 65534, -1)  # nobody
    os.chown(tmp_project / ".git", 65534, -1)
    run_id = run(tmp_project)

    with RunStore(tmp_project / "assay.db") as store:
        error = store.provenance(run_id)["git"]["error"]
    assert "dubious ownership" in error
    assert "git config --global --add safe.directory" in error


def test_compare_names_untracked_files_only_one_run_had(tmp_project: Path) -> None:
    """Both trees dirty, the same diff (none): the new untracked file is still a change."""
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "helper.py").write_text("SCALE = 1\n")
    first = run(tmp_project)
    (tmp_project / "prepare_data.py").write_text("print('prepared')\n")
    second = run(tmp_project)

    with RunStore(tmp_project / "assay.db") as store:
        diff = compare_runs(store, first, second)
    assert diff.code == {"untracked": (None, "prepare_data.py")}
    assert not diff.identical

    shown = run_cli("compare", first, second, cwd=tmp_project)
    assert "No differences" not in shown.text
    assert "prepare_data.py" in shown.text and "git untracked differ" in shown.text
