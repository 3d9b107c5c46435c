"""Exports of past runs: the run's own code, a README command that works, an export given
as a cache, secrets kept out of every run record, damaged sidecars, early failures."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from assay import run_experiment
from assay.store import RunStore
from conftest import copy_project, edit, run_cli
from git_helpers import GITIGNORE, git, init_repo
from notebook_helpers import execute_notebook
from test_export import _no_outer_repository, ok  # noqa: F401 (an autouse fixture)

COMBINE = (
    '    return {"sum": sum(doubled) + sum(squared) + record.params.offset, "n": len(doubled)}'
)
CHANGED = COMBINE.replace("record.params.offset", "record.params.offset + 1")


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
    readme = (folder / "README.md").read_text()
    assert "**Warning:**" in readme
    assert "the run's code (see" not in readme  # its file list said so, against the warning
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


# -- the recorded diff, whatever git's configuration ---------------------------------------


def _record(project: Path, number: int = 1) -> dict:
    (path,) = (project / "logs").glob(f"*-{number:04d}-*.json")
    return json.loads(path.read_text())


def test_secrets_are_cut_from_the_diff_whatever_the_user_s_git_configuration(
    tmp_project: Path,
) -> None:
    """With diff.noprefix the diff read `diff --git .env .env`: the secrets stayed in it
    (the cutter looked for ` b/`), and the run's code could not be rebuilt from it."""
    init_repo(tmp_project, GITIGNORE)
    for name in (".env", "credentials.json"):
        (tmp_project / name).write_text("old\n")
    git(tmp_project, "add", "--force", ".env", "credentials.json")
    git(tmp_project, "commit", "-q", "-m", "secrets, by mistake")
    for option, value in [("diff.noprefix", "true"), ("diff.mnemonicPrefix", "true"),
                          ("diff.relative", "true"), ("color.diff", "always"),
                          ("diff.external", "false")]:  # fmt: skip
        git(tmp_project, "config", option, value)
    for name in (".env", "credentials.json"):
        (tmp_project / name).write_text("SUPERSECRET123\n")
    module = tmp_project / "experiments" / "diamond.py"
    edit(module, '"""Make the numbers."""', '"""Make the numbers (the run\'s edit)."""')
    as_run = module.read_text()
    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project / "experiments"))

    diff = _record(tmp_project)["provenance"]["git"]["diff"]
    assert "SUPERSECRET" not in diff and "\x1b[" not in diff, diff
    assert "diff --git a/experiments/diamond.py b/experiments/diamond.py" in diff, diff
    assert "may hold secrets were left out: .env, credentials.json" in diff
    for path in tmp_project.glob("assay.db*"):
        assert b"SUPERSECRET123" not in path.read_bytes(), path
    edit(module, COMBINE, CHANGED)
    git(tmp_project, "commit", "-q", "-a", "-m", "later work")

    ok(run_cli("export", "full", "1", cwd=tmp_project))

    folder = exported(tmp_project)
    assert (folder / "code" / "experiments" / "diamond.py").read_text() == as_run
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] is True and section["same_as_run"] is True, section


def test_a_diff_section_whose_file_names_cannot_be_read_is_cut() -> None:
    """A diff recorded before (with diff.noprefix) kept every section it could not read."""
    from assay.provenance import without_secrets

    diff = (
        "diff --git .env .env\nindex 1..2 100644\n--- .env\n+++ .env\n@@ -1 +1 @@\n"
        "-old\n+SUPERSECRET123\n"
        "diff --git a/ok.py b/ok.py\nindex 3..4 100644\n--- a/ok.py\n+++ b/ok.py\n"
        "@@ -1 +1 @@\n-A = 1\n+A = 2\n"
    )

    cut = without_secrets(diff)

    assert "SUPERSECRET" not in cut and "+A = 2\n" in cut, cut
    assert "file names could not be read were left out: diff --git .env .env" in cut, cut


def test_a_diff_of_bytes_that_are_not_utf8_does_not_rebuild_the_run_s_code(
    tmp_project: Path,
) -> None:
    """The diff kept them as U+FFFD: the rebuilt file held other bytes than the run's,
    and the export said it was the run's code."""
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "conf.txt").write_bytes(b"header\n")
    git(tmp_project, "add", "conf.txt")
    git(tmp_project, "commit", "-q", "-m", "conf")
    (tmp_project / "conf.txt").write_bytes(b"header\ncaf\xe9\n")  # Latin-1
    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project))
    git(tmp_project, "commit", "-q", "-a", "-m", "later work")

    result = ok(run_cli("export", "full", "1", cwd=tmp_project))

    section = json.loads((exported(tmp_project) / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] is False and section["same_as_run"] is False, section
    assert "not UTF-8" in section["note"] and "NOT the run's code" in result.text


# -- which project, which files ------------------------------------------------------------


def test_an_export_from_a_copy_of_the_project_checks_the_copy_s_code(tmp_path: Path) -> None:
    """The copy's edits were taken as the run's code: the original folder, where the run
    recorded its git root, was the one compared with the run."""
    import shutil

    project = copy_project("basic", tmp_path)
    init_repo(project, GITIGNORE)
    ok(run_cli("run", "diamond", "-p", "two", cwd=project))
    as_run = (project / "experiments" / "diamond.py").read_text()
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    edit(copy / "experiments" / "diamond.py", COMBINE, CHANGED)

    ok(run_cli("export", "full", "1", cwd=copy))

    folder = exported(copy)
    assert (folder / "code" / "experiments" / "diamond.py").read_text() == as_run
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] is True and section["same_as_run"] is True, section


def test_an_export_of_a_project_no_longer_in_git_says_so(tmp_project: Path) -> None:
    """It said "the project is at commit None now"."""
    import shutil

    init_repo(tmp_project, GITIGNORE)
    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project))
    shutil.rmtree(tmp_project / ".git")

    result = ok(run_cli("export", "full", "1", cwd=tmp_project))

    section = json.loads((exported(tmp_project) / "run.json").read_text())["export"]["code"]
    assert section["same_as_run"] is False and "None" not in section["note"], section
    assert "git cannot tell which commit the project is at now" in result.text, result


def test_the_rebuild_takes_only_the_project_s_folder_and_leaves_the_repository_alone(
    tmp_path: Path,
) -> None:
    """`git archive` of the whole repository: .gitattributes export-subst changed the
    rebuilt files, export-ignore outside the project made the recorded diff fail to
    apply (and every file of the repository was unpacked)."""
    repo = tmp_path / "repo"
    project = copy_project("basic", repo)
    (repo / "other").mkdir()
    (repo / "other" / "notes.txt").write_text("notes\n")
    (project / "stamp.py").write_text('STAMP = "$Format:%H$"\n')
    (repo / ".gitattributes").write_text("other/** export-ignore\n*.py export-subst\n")
    init_repo(repo, GITIGNORE)
    (repo / "other" / "notes.txt").write_text("notes, changed at the run\n")
    module = project / "experiments" / "diamond.py"
    edit(module, '"""Make the numbers."""', '"""Make the numbers (the run\'s edit)."""')
    as_run = module.read_text()
    ok(run_cli("run", "diamond", "-p", "two", cwd=project))
    edit(module, COMBINE, CHANGED)
    git(repo, "stash", "-q")  # the user's own stash, to be kept as it is
    edit(module, COMBINE, CHANGED)
    git(repo, "add", str(module))
    (repo / "other" / "notes.txt").write_text("notes, uncommitted now\n")
    before = {
        "index": (repo / ".git" / "index").read_bytes(),
        "status": git(repo, "status", "--porcelain"),
        "stash": git(repo, "stash", "list"),
        "files": {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in
                  p.parts and "data" not in p.parts},
    }  # fmt: skip

    ok(run_cli("export", "full", "1", cwd=project))

    folder = exported(project)
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] is True and section["same_as_run"] is True, section
    assert (folder / "code" / "experiments" / "diamond.py").read_text() == as_run
    assert (folder / "code" / "stamp.py").read_text() == 'STAMP = "$Format:%H$"\n'
    assert not (folder / "code" / "other").exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["README.md", "cache", "code", "report", "requirements.txt", "run.json", "run.log"]
    )
    assert [p.name for p in (project / "data" / "runs").iterdir()] == [folder.name]
    assert (repo / ".git" / "index").read_bytes() == before["index"]
    assert git(repo, "status", "--porcelain") == before["status"]
    assert git(repo, "stash", "list") == before["stash"]
    assert {p: p.read_bytes() for p in before["files"]} == before["files"]


def test_an_untracked_folder_of_python_files_is_not_called_the_run_s_code(
    tmp_project: Path,
) -> None:
    """git lists an untracked folder as `mylib/`: only names ending in .py counted."""
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "mylib").mkdir()
    (tmp_project / "mylib" / "__init__.py").write_text("K = 1\n")
    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project))

    result = ok(run_cli("export", "full", "1", cwd=tmp_project))

    folder = exported(tmp_project)
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    assert section["same_as_run"] is False and "mylib/" in section["note"], section
    assert "**Warning:**" in (folder / "README.md").read_text(), result


def test_a_submodule_left_out_of_the_snapshot_is_named(tmp_path: Path) -> None:
    """Its code was missing from every snapshot, and the export called it the run's code."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "helpers.py").write_text("H = 1\n")
    init_repo(library)
    project = copy_project("basic", tmp_path)
    init_repo(project, GITIGNORE)
    git(project, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(project, "commit", "-q", "-m", "a submodule")
    ok(run_cli("run", "diamond", "-p", "two", cwd=project))

    result = ok(run_cli("export", "full", "1", cwd=project))

    folder = exported(project)
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    (reason,) = [item["reason"] for item in section["left_out"] if item["path"] == "lib/"]
    assert "submodule" in reason, section
    assert section["same_as_run"] is False and "lib/" in section["note"], section
    assert "submodule" in result.text and "lib/" in (folder / "README.md").read_text()


# -- aggregates in an export ---------------------------------------------------------------

SUBSETS = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(inputs=None, outputs=["data"], cachers=[JsonCacher])
def load(record):
    return list(range(record.params.n))


@assay.aggregate(inputs=["data"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, data):
    return sorted([r.name, sum(v)] for r, v in data.items())


def get_params():
    return [Params(name="a"), Params(name="b", n=4), Params(name="c", n=5)]


def run(param_sets, manager):
    records = [load(assay.Record(manager, p)) for p in param_sets]
    total(assay.Record(manager, None))
    total(assay.Record(manager, None), records=records[:1])
    total(assay.Record(manager, None), records=[])
"""


@pytest.mark.parametrize("links", ["kept", "gone"])
def test_an_export_files_each_aggregate_under_its_own_folder(tmp_project: Path, links: str) -> None:
    """All three were linked under plain `aggregate` (one link only)."""
    import shutil

    (tmp_project / "experiments" / "subsets.py").write_text(SUBSETS)
    ok(run_cli("run", "subsets", cwd=tmp_project))
    names = tmp_project / "data" / "cache" / "by-name" / "subsets"
    expected = sorted(p.name for p in names.iterdir() if p.name.startswith("aggregate"))
    assert len(expected) == 3, expected
    if links == "gone":  # from the sidecars, then
        for name in expected:
            shutil.rmtree(names / name)

    ok(run_cli("export", "full", "1", cwd=tmp_project))

    exported_names = exported(tmp_project) / "cache" / "by-name" / "subsets"
    found = sorted(p.name for p in exported_names.iterdir() if p.name.startswith("aggregate"))
    assert found == expected


BRANCHED = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["data"], cachers=[JsonCacher])
def load(record):
    return list(range(record.params.n))


@assay.stage(inputs=["data"], outputs=["data"], cachers=[JsonCacher])
def clean(record, data):
    return [x for x in data if x]


@assay.stage(inputs=["data"], outputs=["total"], cachers=[JsonCacher])
def total(record, data):
    return sum(data) + 100 * len(data)


@assay.aggregate(inputs=["total"], outputs=["all"], cachers=[JsonCacher])
def gather(record, records, total):
    return sorted(total.values())


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    for params in param_sets:
        record = load(assay.Record(manager, params))
        copy = record.make_copy()  # the same set, another chain: its own `total`
        records = [total(record), total(clean(copy))]
        gather(assay.Record(manager, None), records=records)
        gather(assay.Record(manager, None), records=records[:1])
"""


def _notebook_labels(notebook) -> tuple[list[str], list[str]]:
    """The labels of a notebook's ``ARTIFACTS`` table, and its artifacts' headings."""
    import ast

    (table,) = [c.source for c in notebook.cells if c.source.startswith("ARTIFACTS = ")]
    call = ast.parse(table.splitlines()[0]).body[0].value
    labels = list(json.loads(ast.literal_eval(call.args[0])))
    headings = [c.source for c in notebook.cells if c.source.startswith("### ")]
    return labels, headings


def test_the_notebook_of_a_run_with_one_output_made_twice_labels_each_apart(
    tmp_project: Path, monkeypatch
) -> None:
    """A `make_copy()` branch made `p / total / total` twice, and two aggregates
    `aggregate / gather / all`: ARTIFACTS kept one of each (the other could not be
    loaded by label), and their cells had the same heading."""
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    (tmp_project / "experiments" / "branched.py").write_text(BRANCHED)
    ok(run_cli("run", "branched", "-q", cwd=tmp_project))
    with RunStore(tmp_project / "assay.db") as store:
        run_id = store.get_run("latest").id
        artifacts = store.artifacts(run_id)
    keys = {(a.stage, a.key[:8]) for a in artifacts}
    assert len(artifacts) == 6 and len(keys) == 6, artifacts
    ok(run_cli("export", "notebook", "latest", cwd=tmp_project))
    path = tmp_project / "data" / "runs" / run_id / f"{run_id}.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    labels, headings = _notebook_labels(notebook)
    assert sorted(labels) == sorted(
        ["p / load / data", "p / clean / data"]
        + [f"p / total / total (key {key})" for stage, key in keys if stage == "total"]
        + [f"aggregate / gather / all (key {key})" for stage, key in keys if stage == "gather"]
    )
    assert len(headings) == 6 and len(set(headings)) == 6, headings

    again = tmp_project.parent / "again.ipynb"
    ok(run_cli("export", "notebook", "latest", "-o", again, cwd=tmp_project))
    assert _notebook_labels(nbformat.read(str(again), as_version=4))[0] == labels  # stable

    notebook.cells.append(nbformat.v4.new_code_cell("[load(label) for label in ARTIFACTS]"))
    text = execute_notebook(notebook, path.parent)  # raises CellExecutionError if a cell fails
    assert f"6 of 6 artifacts of {run_id} came out with the same key and checksum" in text
    last = notebook.cells[-1].outputs[-1]["data"]["text/plain"]
    assert last == "[[0, 1, 2], 303, [1, 2], 203, [203, 303], [303]]", last


# -- the run record file -------------------------------------------------------------------


def test_a_run_record_that_cannot_be_written_leaves_no_temporary_file(tmp_path: Path) -> None:
    from assay.run_record import write_json

    (tmp_path / "RUN.json").mkdir()  # in the way: the write fails as it ends
    with pytest.raises(OSError):
        write_json(tmp_path / "RUN.json", {"format": "x"})
    with pytest.raises(UnicodeEncodeError):  # fails while writing
        write_json(tmp_path / "OTHER.json", {"text": "\udcff"})

    assert sorted(p.name for p in tmp_path.iterdir()) == ["RUN.json"]


def test_cache_options_stay_out_of_exports_and_records(tmp_project: Path) -> None:
    """``cache_options`` (a URL cache's credentials) went into every export's code/
    (and so into Docker contexts and reproductions) and, uncommitted, into the git diff
    of every run record, where the docs say they are never written."""
    settings = tmp_project / "assay.toml"
    settings.write_text("# the project's settings\n")
    init_repo(tmp_project, GITIGNORE)
    settings.write_text(
        settings.read_text()
        + '[cache_options]\nkey = "AKIAEXAMPLE"\nsecret = "SUPERSECRET-CACHE"\n'
        + "[cache_options.client_kwargs]\nregion_name = 'SECRET-REGION'\n"
    )  # not committed: the run's diff holds it

    ok(run_cli("run", "diamond", "-p", "two", "--store-full", cwd=tmp_project))

    folder = exported(tmp_project)
    for path in [*folder.rglob("*"), *(tmp_project / "logs").glob("*"),
                 *tmp_project.glob("assay.db*")]:  # fmt: skip
        if path.is_file():
            data = path.read_bytes()
            assert b"SUPERSECRET-CACHE" not in data and b"SECRET-REGION" not in data, path
    exported_settings = (folder / "code" / "assay.toml").read_text()
    assert "# (left out by assay: it may hold credentials)" in exported_settings
    if sys.version_info >= (3, 11):  # still a valid settings file
        import tomllib

        assert tomllib.loads(exported_settings)["cache_options"] == {"client_kwargs": {}}
    record = json.loads((folder / "run.json").read_text())
    assert "may hold secrets were left out: assay.toml" in record["provenance"]["git"]["diff"]


def test_cache_options_are_left_out_of_settings_in_every_form() -> None:
    from assay.export.snapshot import without_cache_options

    text = (
        'cache_dir = "s3://bucket/cache"\n'
        'cache_options = { secret = "S1" }\n'
        'cache_options.key = "S2"\n'
        "[tool.assay.cache_options]\nsecret = 'S3'\n# a comment stays\n"
        "[tool.other]\nkeep = 1\n"
    )
    kept = without_cache_options(text)
    assert not any(secret in kept for secret in ("S1", "S2", "S3")), kept
    assert 'cache_dir = "s3://bucket/cache"' in kept and "keep = 1" in kept
    assert "# a comment stays" in kept


# -- an export made after the cache was cleaned ----------------------------------------------


def test_reproduce_checks_artifacts_gc_removed_before_the_export_against_run_json(
    tmp_project: Path,
) -> None:
    """After `assay cache gc`, an export holds no copies, and reproduce only said "no copy to
    compare", though run.json records each checksum and the docs say the detail tells whether
    the re-run made it with that checksum."""
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t")
    ok(run_cli("cache", "gc", "--older-than", "0", cwd=tmp_project))
    ok(run_cli("export", "full", "latest", cwd=tmp_project))
    folder = exported(tmp_project)
    assert json.loads((folder / "run.json").read_text())["export"]["artifacts"]["missing"]

    result = run_cli("reproduce", folder, cwd=tmp_project)

    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in result.stdout.splitlines() if line.startswith("│")]  # fmt: skip
    assert rows and all(r[0] == "not exported" for r in rows), result
    assert all(r[4].endswith("with the checksum run.json records") for r in rows), result
    assert result.code != 0, result  # still not an exact reproduction: nothing to compare


def test_an_export_that_reproduce_cannot_re_run_says_so_when_it_is_made(
    tmp_project: Path, tmp_path: Path
) -> None:
    """A run with a parameter file outside the project exported without a word, and its
    README told the colleague to `assay reproduce` it, which then refused."""
    outside = tmp_path / "elsewhere" / "my params.py"
    outside.parent.mkdir()
    outside.write_text((tmp_project / "params" / "two.py").read_text())
    result = ok(run_cli("run", "diamond", "-p", outside, "-q", "--store-full", cwd=tmp_project))

    assert "`assay reproduce` cannot re-run it" in result.text, result
    assert f"parameter file {outside}, which is outside the project" in result.text, result
    readme = (exported(tmp_project) / "README.md").read_text()
    assert "cannot re-run it" in readme and "assay reproduce ." not in readme, readme


def test_export_full_o_refuses_to_replace_another_run_s_export(tmp_project: Path) -> None:
    """`assay export full 2 -o FOLDER` over run 1's export replaced it without a word: run
    1's artifacts (gone from the cache since) were lost, and its notebook moved into run
    2's export."""
    for _ in range(2):
        run_experiment("diamond", ["two"], project_root=tmp_project, command="t", overwrite=True)
    target = tmp_project.parent / "shared export"
    ok(run_cli("export", "full", "1", "-o", target, cwd=tmp_project))
    ok(run_cli("export", "notebook", "1", "-o", target / "run1.ipynb", cwd=tmp_project))
    before = (target / "run.json").read_bytes()

    result = run_cli("export", "full", "2", "-o", target, cwd=tmp_project)

    assert result.code == 1, result
    with RunStore(tmp_project / "assay.db") as store:
        first, second = store.get_run(1).id, store.get_run(2).id
    assert f"holds the export of run {first}, not of run {second}" in result.text, result
    assert "Choose another folder with -o" in result.text, result
    assert (target / "run.json").read_bytes() == before and (target / "run1.ipynb").is_file()
    ok(run_cli("export", "full", "1", "-o", target, cwd=tmp_project))  # its own: replaced


def test_export_docker_leaves_another_run_s_context_and_no_half_written_one(
    tmp_project: Path, tmp_path: Path
) -> None:
    """`assay export docker 2 -o FOLDER` replaced run 1's build context silently (its run/
    may be the only export of run 1); a run the image cannot re-run (a parameter file
    outside the project) removed the context there and left one without a Dockerfile,
    which assay then refused to replace."""
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t")
    outside = tmp_path / "elsewhere" / "my params.py"
    outside.parent.mkdir()
    outside.write_text((tmp_project / "params" / "two.py").read_text())
    ok(run_cli("run", "diamond", "-p", outside, "-q", cwd=tmp_project))
    context = tmp_path / "context"
    ok(run_cli("export", "docker", "1", "--no-build", "-o", context, cwd=tmp_project))
    before = (context / "Dockerfile").read_text()

    for run in ("2", "latest"):
        result = run_cli("export", "docker", run, "--no-build", "-o", context, cwd=tmp_project)
        assert result.code == 1 and (context / "Dockerfile").read_text() == before, result
    assert "outside the project" in result.text, result
    with RunStore(tmp_project / "assay.db") as store:
        second = store.get_run(2).id
    result = run_cli("export", "docker", "2", "--no-build", "-o", tmp_path / "new", cwd=tmp_project)
    assert result.code == 1 and not (tmp_path / "new").exists(), result
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t")
    result = run_cli("export", "docker", "3", "--no-build", "-o", context, cwd=tmp_project)
    assert result.code == 1 and "holds the Docker build context of run" in result.text, result
    assert "Choose another folder with -o" in result.text and second not in result.text
    assert (context / "Dockerfile").read_text() == before
    ok(run_cli("export", "docker", "1", "--no-build", "-o", context, cwd=tmp_project))


def test_reproduce_of_an_interrupted_run_says_it_compares_only_what_the_run_made(
    tmp_project: Path,
) -> None:
    """The re-run of an interrupted run completes and made more than it; reproduce called
    that "exact" without saying that the run it reproduced had stopped halfway."""
    (tmp_project / "interrupt.flag").write_text("")
    run_cli("run", "flaky", "-q", cwd=tmp_project)
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == "interrupted"
    ok(run_cli("export", "full", "latest", cwd=tmp_project))

    result = run_cli("reproduce", exported(tmp_project), cwd=tmp_project)

    assert result.code == 0, result  # the flag is no part of the code: the re-run completes
    assert "The exported run was interrupted (it did not complete)" in result.text, result
    assert "only the 1 artifact(s) it made are compared" in result.text, result


def test_reproduce_says_what_to_give_it_when_it_is_not_an_export_folder(
    tmp_project: Path,
) -> None:
    """`assay reproduce 1` said only "Directory '1' does not exist", `.../run.json` "is a
    file", and the export's cache/ "has no run.json": none said what to give instead."""
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t", store_full=True)
    folder = exported(tmp_project)
    cases = {
        "1": "There is no folder 1: `assay reproduce` takes the folder of an exported run, "
        "not a run number or id. Export a run with `assay export full RUN`",
        folder / "run.json": f"is a file: give the export folder that holds it, {folder}.",
        folder / "cache": f"is inside the exported run {folder.resolve()}: give that folder",
    }
    for given, message in cases.items():
        result = run_cli("reproduce", given, cwd=tmp_project)
        assert result.code == 1 and message in " ".join(result.text.split()), result


def test_a_re_run_that_fails_names_what_the_snapshot_left_out(tmp_project: Path) -> None:
    """A stage reading a data file git ignores failed in the reproduction, and nothing said
    that the code snapshot had left data/ out, nor how to put it in."""
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "data" / "raw").mkdir(parents=True)
    (tmp_project / "data" / "raw" / "in.txt").write_text("1,2,3")
    (tmp_project / "experiments" / "reads.py").write_text(
        "from dataclasses import dataclass\nfrom pathlib import Path\n\nimport assay\n"
        "from assay.caching import JsonCacher\n\n\n@dataclass\n"
        "class Params(assay.ExperimentParameters):\n    pass\n\n\n"
        "@assay.stage(outputs=['nums'], cachers=[JsonCacher])\ndef load(record):\n"
        "    return Path('data/raw/in.txt').read_text().split(',')\n\n\n"
        "def get_params():\n    return [Params(name='r')]\n\n\n"
        "def run(param_sets, manager):\n    for p in param_sets:\n"
        "        load(assay.Record(manager, p))\n"
    )
    git(tmp_project, "add", "-A")
    git(tmp_project, "commit", "-qm", "reads")
    ok(run_cli("run", "reads", "-q", "--store-full", cwd=tmp_project))
    folder = exported(tmp_project)

    result = run_cli("reproduce", folder, cwd=tmp_project)

    assert result.code == 1, result
    text = " ".join(result.text.split())
    assert "The code snapshot left out data/ (ignored by git)" in text, result
    assert f"assay export full {folder.name} --include GLOB" in text, result


# -- artifacts shared by parameter sets that hash alike ------------------------------------


def test_an_artifact_shared_by_two_sets_is_exported_and_counted_once(tmp_project: Path) -> None:
    """With sets a and b made identical (--set scale=1), export.artifacts listed and counted
    their shared artifacts once per set: "9 no longer in the cache" for 7 distinct ones."""
    ok(run_cli("run", "diamond", "--set", "scale=1", "-q", cwd=tmp_project))
    ok(run_cli("export", "full", "latest", "-o", tmp_project / "copy", cwd=tmp_project))
    record = json.loads((tmp_project / "copy" / "run.json").read_text())
    keys = [a["key"] for a in record["artifacts"]]
    distinct = list(dict.fromkeys(keys))
    assert len(distinct) < len(keys), keys  # the sets share artifacts
    assert record["export"]["artifacts"]["copied"] == len(distinct), record["export"]
    ok(run_cli("cache", "gc", "--older-than", "0", cwd=tmp_project))

    result = ok(run_cli("export", "full", "latest", cwd=tmp_project))

    section = json.loads((exported(tmp_project) / "run.json").read_text())["export"]
    missing = section["artifacts"]["missing"]
    assert sorted(missing) == sorted(distinct), section
    text = " ".join(result.text.split())
    assert f"0 artifact(s) copied; not exported: {len(distinct)} no longer in the cache" in text


# -- a reproduction that fails, then runs again --------------------------------------------


def test_a_failed_reproduction_names_assay_reproduce_and_that_command_works_again(
    tmp_project: Path,
) -> None:
    """A failed reproduction said to run an internal `python -m assay run ... --overwrite`
    again, and `assay reproduce EXPORT --workdir D` again failed because D existed."""
    ok(run_cli("run", "flaky", "-q", "--store-full", cwd=tmp_project))
    folder = exported(tmp_project)
    (folder / "code" / "fail.flag").write_text("")  # the stage fails in the reproduction
    workdir = tmp_project / "again"
    relative = shlex.join(["assay", "reproduce", str(folder), "--workdir", str(workdir)])

    failed = run_cli("reproduce", folder, "--workdir", workdir, cwd=tmp_project)

    assert failed.code == 1, failed
    text = " ".join(failed.text.split())
    assert f"run the same command again to continue: {relative}" in text, failed
    assert "-m assay run" not in text and "--overwrite" not in text, failed
    (folder / "code" / "fail.flag").unlink()  # fixed
    (workdir / "notes.txt").write_text("mine")

    again = ok(run_cli("reproduce", folder, "--workdir", workdir, cwd=tmp_project))

    assert "6 identical: the reproduction is exact" in again.text, again
    assert not (workdir / "fail.flag").exists()  # the export's code, copied afresh
    assert (workdir / "notes.txt").read_text() == "mine"  # what assay did not copy stays
    other = tmp_project / "other"
    other.mkdir()
    (other / "keep.txt").write_text("keep")
    refused = run_cli("reproduce", folder, "--workdir", other, cwd=tmp_project)
    assert refused.code == 1 and "is not an earlier reproduction" in refused.text, refused
    assert (other / "keep.txt").read_text() == "keep"


def test_reusing_a_workdir_refuses_one_with_a_folder_linked_out_of_it(
    tmp_project: Path,
) -> None:
    """Re-running a reproduction removes the earlier attempt's copy of the code by the
    names it wrote down, and copies the code afresh: a folder of the workdir replaced by
    a link to another folder led both to the files there."""
    ok(run_cli("run", "flaky", "-q", "--store-full", cwd=tmp_project))
    folder = exported(tmp_project)
    (folder / "code" / "fail.flag").write_text("")
    workdir = tmp_project / "again"
    assert run_cli("reproduce", folder, "--workdir", workdir, cwd=tmp_project).code == 1
    (folder / "code" / "fail.flag").unlink()
    outside = tmp_project / "elsewhere"
    shutil.copytree(workdir / "experiments", outside)
    shutil.rmtree(workdir / "experiments")
    (workdir / "experiments").symlink_to(outside, target_is_directory=True)
    (outside / "mine.txt").write_text("mine")
    kept = {p.name: p.read_bytes() for p in outside.iterdir()}

    refused = run_cli("reproduce", folder, "--workdir", workdir, cwd=tmp_project)

    assert refused.code == 1 and "links out of it" in refused.text, refused
    assert "Remove the link, or give another --workdir" in " ".join(refused.text.split())
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == kept


# -- what an export made after gc holds ----------------------------------------------------


def test_the_docker_readme_and_the_report_say_which_artifacts_the_export_lacks(
    tmp_project: Path,
) -> None:
    """After `assay cache gc` the Docker README still said "everything comes from the run's
    cache" (0 artifacts copied), and the export's report linked to files it did not hold."""
    ok(run_cli("run", "diamond", "-q", cwd=tmp_project))
    objects = tmp_project / "data" / "cache" / "objects"
    (gone,) = [p for p in objects.glob("*/*") if (p / "data.pkl").exists()][:1]
    shutil.rmtree(gone)  # one stage run of the cache is lost

    ok(run_cli("export", "full", "latest", cwd=tmp_project))

    folder = exported(tmp_project)
    page = (folder / "report" / "index.html").read_text()
    links = re.findall(r'href="(\.\./cache/[^"]*)"', page)
    assert links and all((folder / "report" / link).exists() for link in links), links
    assert f"{gone.name}/data.pkl (not in this export)" in page
    readme = " ".join((folder / "README.md").read_text().split())
    assert "**Not in `cache/`:** of the run's artifacts, 1 no longer in" in readme, readme

    ok(run_cli("export", "docker", "1", "--no-build", "-o", tmp_project / "c1", cwd=tmp_project))
    readme = " ".join((tmp_project / "c1" / "README.md").read_text().split())
    assert "the image holds 8 of the run's 9 artifacts; the others are computed" in readme
    assert "Not in the image:** of the run's artifacts, 1 no longer in" in readme, readme
    ok(run_cli("run", "diamond", "-q", "--set", "offset=5", cwd=tmp_project))
    ok(run_cli("cache", "gc", "--older-than", "0", cwd=tmp_project))

    ok(run_cli("export", "docker", "2", "--no-build", "-o", tmp_project / "c2", cwd=tmp_project))

    readme = " ".join((tmp_project / "c2" / "README.md").read_text().split())
    record = json.loads((tmp_project / "c2" / "run" / "run.json").read_text())
    total = len({a["key"] for a in record["artifacts"]})  # (a's load was not needed: 8)
    assert record["export"]["artifacts"]["copied"] == 0, record["export"]
    assert "everything comes from the run's cache" not in readme, readme
    assert f"the image holds none of the run's {total} artifacts" in readme, readme
    assert f"Not in the image:** of the run's artifacts, {total} no longer in" in readme, readme


# -- the notebook of an export copied away from the project --------------------------------


def test_the_notebook_re_runs_a_copy_of_the_export_from_its_code(tmp_path: Path, monkeypatch):
    """In a copy of the export without the project, the notebook's re-run cell failed with
    "No experiment named 'diamond'": the code is in the export's code/, not beside it."""
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    project = copy_project("basic", tmp_path)
    ok(run_cli("run", "diamond", "-p", "two", "-q", "--store-full", "--notebook", cwd=project))
    export = exported(project)
    copy = tmp_path / "colleague" / "the run"
    shutil.copytree(export, copy, symlinks=True)
    notebook = nbformat.read(str(copy / f"{export.name}.ipynb"), as_version=4)

    text = execute_notebook(notebook, copy, timeout=300)  # raises CellExecutionError if one fails

    assert f"9 of 9 artifacts of {export.name} came out identical" in text, text
    (workdir,) = (copy / "reproductions").iterdir()  # the re-run's own folder
    assert (workdir / "assay.db").is_file()
    assert not (copy / "assay.db").exists() and not (copy / "code" / "assay.db").exists()
