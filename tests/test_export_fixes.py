"""Exports of past runs: the run's own code, a README command that works, an export given
as a cache, secrets kept out of every run record, damaged sidecars, early failures."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from assay import run_experiment
from assay.store import RunStore
from conftest import copy_project, edit, run_cli
from git_helpers import GITIGNORE, git, init_repo

COMBINE = (
    '    return {"sum": sum(doubled) + sum(squared) + record.params.offset, "n": len(doubled)}'
)
CHANGED = COMBINE.replace("record.params.offset", "record.params.offset + 1")


@pytest.fixture(autouse=True)
def _no_outer_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def ok(result):
    assert result.code == 0, result
    return result


def exported(project: Path) -> Path:
    (folder,) = [p for p in (project / "data" / "runs").iterdir() if not p.name.startswith(".")]
    return folder


# -- the code of a past run ----------------------------------------------------------------


def test_an_export_after_an_edit_holds_the_run_s_code_and_reproduces_exactly(
    tmp_project: Path,
) -> None:
    """The export snapshotted today's code, its README named the run's commit, and
    reproduce called a reproducible run "not exact"."""
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "server.pem").write_text("old\n")
    git(tmp_project, "add", "--force", "server.pem")
    git(tmp_project, "commit", "-q", "-m", "a key, by mistake")
    module = tmp_project / "experiments" / "diamond.py"
    edit(module, '"""Make the numbers."""', '"""Make the numbers (the run\'s edit)."""')
    (tmp_project / "server.pem").write_text("SECRET-AT-THE-RUN\n")  # cut from the diff
    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project))
    as_run = module.read_text()
    edit(module, COMBINE, CHANGED)
    git(tmp_project, "commit", "-q", "-a", "-m", "later work")

    result = ok(run_cli("export", "full", "1", cwd=tmp_project))

    folder = exported(tmp_project)
    assert (folder / "code" / "experiments" / "diamond.py").read_text() == as_run
    assert not (folder / "code" / "server.pem").exists()
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] is True and section["same_as_run"] is True, section
    assert "NOT the run's code" not in result.text
    readme = (folder / "README.md").read_text()
    assert "rebuilt from git" in readme and "Warning" not in readme
    reproduced = run_cli("reproduce", folder, cwd=tmp_project)
    assert reproduced.code == 0 and "the reproduction is exact" in reproduced.text, reproduced


def test_an_export_of_a_run_whose_commit_is_gone_warns_everywhere(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project))
    edit(tmp_project / "experiments" / "diamond.py", COMBINE, CHANGED)
    git(tmp_project, "commit", "-q", "-a", "--amend", "-m", "history rewritten")
    git(tmp_project, "reflog", "expire", "--expire=now", "--all")
    git(tmp_project, "gc", "-q", "--prune=now")

    result = ok(run_cli("export", "full", "1", cwd=tmp_project))

    assert "NOT the run's code" in result.text and "is not in the repository" in result.text
    folder = exported(tmp_project)
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] is False and section["same_as_run"] is False
    assert "**Warning:**" in (folder / "README.md").read_text()
    reproduced = run_cli("reproduce", folder, cwd=tmp_project)
    assert reproduced.code == 1 and "not exact" in reproduced.text
    assert "may not be the run's code" in reproduced.text, reproduced


def test_a_project_in_a_subfolder_of_its_repository_records_and_exports_untracked_files(
    tmp_path: Path,
) -> None:
    """Its untracked files were hidden whole (``proj/`` was taken for a folder holding
    assay's outputs): the tree was called clean with an untracked module in it."""
    repo = tmp_path / "repo"
    project = copy_project("basic", repo)
    init_repo(repo, GITIGNORE)
    (project / "helper.py").write_text("K = 1\n")  # untracked
    ok(run_cli("run", "diamond", "-p", "two", cwd=project))
    (record,) = (project / "logs").glob("*.json")
    state = json.loads(record.read_text())["provenance"]["git"]
    assert state["untracked"] == ["basic/helper.py"] and state["dirty"] is True, state
    as_run = (project / "experiments" / "diamond.py").read_text()
    edit(project / "experiments" / "diamond.py", COMBINE, CHANGED)
    git(repo, "commit", "-q", "-a", "-m", "later work")

    ok(run_cli("export", "full", "1", cwd=project))

    code = exported(project) / "code"
    assert (code / "experiments" / "diamond.py").read_text() == as_run
    assert (code / "helper.py").read_text() == "K = 1\n"
    section = json.loads((code.parent / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] is True and section["same_as_run"] is False
    assert "helper.py" in section["note"] and "helper.py" in (code.parent / "README.md").read_text()


# -- the README's reproduce command --------------------------------------------------------


def test_the_readme_s_reproduce_commands_work_where_it_says(tmp_project: Path) -> None:
    """It said `assay reproduce RUN_ID`, which works only from data/runs/."""
    ok(run_cli("run", "diamond", "-p", "two", "--store-full", cwd=tmp_project))
    folder = exported(tmp_project)
    readme = (folder / "README.md").read_text()
    (command,) = [line.strip() for line in readme.splitlines() if "assay reproduce " in line
                  and "`" not in line]  # fmt: skip

    from_root = run_cli(*shlex.split(command)[1:], cwd=tmp_project)
    inside = run_cli("reproduce", ".", cwd=folder)

    assert "from the project folder" in readme and "`assay reproduce .`" in readme
    for result in (from_root, inside):
        assert result.code == 0 and "the reproduction is exact" in result.text, result


# -- an export given as the cache ----------------------------------------------------------


def test_an_export_folder_given_as_the_cache_means_its_cache_folder(
    tmp_project: Path, caplog
) -> None:
    """`--cache data/runs/RUN_ID` recomputed everything and wrote a cache among the
    export's files."""
    from assay.export.full import export_cache_of

    run_experiment("diamond", ["two"], project_root=tmp_project, command="t", store_full=True)
    folder = exported(tmp_project)
    before = sorted(p.name for p in folder.iterdir())

    cache = export_cache_of(str(folder))

    assert cache == str(folder / "cache")
    assert "is an exported run, not a cache" in caplog.text
    assert export_cache_of(str(tmp_project / "data" / "cache")) == str(
        tmp_project / "data" / "cache"
    )
    assert export_cache_of(None) is None
    (tmp_project / "calls.txt").unlink()
    manager = run_experiment("diamond", ["two"], project_root=tmp_project, cache_dir=cache)
    with RunStore(tmp_project / "assay.db") as store:
        stages = store.stages(manager.run_id)
    assert {s.status for s in stages} == {"cached"}
    assert not (tmp_project / "calls.txt").exists()
    assert sorted(p.name for p in folder.iterdir()) == before
    relative = folder.relative_to(tmp_project)  # as typed in the project folder
    result = run_cli("run", "diamond", "-p", "two", "--cache", str(relative), cwd=tmp_project)
    assert result.code == 0, result
    assert "is an exported run, not a cache" in result.text
    assert not (tmp_project / "calls.txt").exists()
    assert sorted(p.name for p in folder.iterdir()) == before


# -- secrets in the run record -------------------------------------------------------------


def test_changes_to_secret_files_are_in_no_record_of_the_run(tmp_project: Path) -> None:
    """They were cut from exports, but kept word for word in logs/RUN_ID.json and assay.db."""
    init_repo(tmp_project, GITIGNORE)
    for name in ("server.pem", ".env.local"):
        (tmp_project / name).write_text("old\n")
    git(tmp_project, "add", "--force", "server.pem", ".env.local")
    git(tmp_project, "commit", "-q", "-m", "secrets, by mistake")
    for name in ("server.pem", ".env.local"):
        (tmp_project / name).write_text("SUPERSECRET123\n")
    tracking = tmp_project / "tracking.py"
    tracking.write_text(tracking.read_text() + "# a visible change\n")

    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project))

    (record,) = (tmp_project / "logs").glob("*.json")
    diff = json.loads(record.read_text())["provenance"]["git"]["diff"]
    assert "a visible change" in diff and "SUPERSECRET" not in diff
    assert "may hold secrets were left out: .env.local, server.pem" in diff
    for path in [record, *tmp_project.glob("assay.db*")]:
        assert b"SUPERSECRET123" not in path.read_bytes(), path
    shown = ok(run_cli("show", "latest", cwd=tmp_project))
    assert "SUPERSECRET" not in shown.text


# -- a damaged export ----------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["unreadable", "gone"])
def test_an_exported_copy_without_a_readable_sidecar_is_damaged(
    tmp_project: Path, damage: str
) -> None:
    """It showed as "not exported", which the docs do not name, though the file was there."""
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t", store_full=True)
    folder = exported(tmp_project)
    (sidecar,) = [p for p in (folder / "cache" / "objects").rglob("squared.meta.json")
                  if json.loads(p.read_text())["key"] in _keys(folder, "a")]  # fmt: skip
    if damage == "unreadable":
        sidecar.write_text("{not json")
    else:
        sidecar.unlink()

    result = run_cli("reproduce", folder, cwd=tmp_project)

    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in result.stdout.splitlines() if line.startswith("│")]  # fmt: skip
    (row,) = [r for r in rows if r[1:4] == ["a", "square", "squared"]]
    assert row[0] == "damaged" and "not exported" not in result.text, result
    detail = "cannot be read" if damage == "unreadable" else "is gone from the export"
    assert detail in result.text, result


def _keys(folder: Path, param_set: str) -> set[str]:
    record = json.loads((folder / "run.json").read_text())
    return {s["key"] for s in record["stages"] if s["param_set"] == param_set}


# -- a run that fails before it begins -----------------------------------------------------


def test_show_says_a_run_that_failed_as_it_began_has_no_provenance_for_that_reason(
    tmp_project: Path,
) -> None:
    """It said "a run from before assay recorded it". Recorded as run_experiment records
    a run that cannot begin (its log file cannot be opened, ...): failed, no provenance."""
    with RunStore(tmp_project / "assay.db") as store:
        run = store.begin_run("diamond", command="assay run diamond")
        store.finish_run(run.id, "failed", error="The run could not begin: no room for its log")

    shown = ok(run_cli("show", "latest", cwd=tmp_project))

    assert "from before assay" not in shown.text, shown
    assert "not recorded: the run failed before it was captured" in shown.text, shown
