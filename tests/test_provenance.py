"""Every run records its provenance: git state, packages, conda, the full run record.

Runs happen in real temporary git repositories (clean, dirty, untracked files,
detached HEAD, no commit yet), outside any repository, and with no git at all;
none of these may crash a run, and each must be recorded as it is.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

import pytest

from assay import run_experiment
from assay.cache import CacheStore
from assay.compare import compare_runs
from assay.config import ProjectConfig
from assay.errors import ProjectError, StageFailed
from assay.provenance import Provenance, capture, capture_git, conda_info, installed_packages
from assay.run_record import FORMAT, read_run_record, record_path
from assay.store import _SCHEMA, SCHEMA_VERSION, RunStore
from conftest import edit, run_cli
from git_helpers import GITIGNORE, git, init_repo


@pytest.fixture(autouse=True)
def _no_outer_repository(tmp_path, monkeypatch):
    """git must not find a repository above the test's folder."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def run(project: Path, *args: str, **options):
    return run_experiment(
        "diamond", ["two"], project_root=project, command="assay run diamond -p two", **options
    )


def recorded(project: Path, run_id: str) -> dict:
    with RunStore(project / "assay.db") as store:
        return store.provenance(run_id)


# -- git states ----------------------------------------------------------------------------


def test_a_clean_tree_records_the_full_commit_and_branch(tmp_project: Path) -> None:
    commit = init_repo(tmp_project, GITIGNORE)
    manager = run(tmp_project)
    git_state = recorded(tmp_project, manager.run_id)["git"]
    assert len(commit) == 40 and git_state["commit"] == commit  # never shortened
    assert git_state["branch"] == "main" and not git_state["detached"]
    assert git_state["dirty"] is False and git_state["diff"] == "" and git_state["error"] is None
    assert git_state["root"] == str(tmp_project.resolve())
    run_info = manager.run_info
    assert (run_info.git_commit, run_info.git_branch, run_info.git_dirty) == (commit, "main", False)
    # The second run writes the cache, logs and store again: still clean.
    assert recorded(tmp_project, run(tmp_project).run_id)["git"]["dirty"] is False


def test_a_dirty_tree_records_the_diff_of_uncommitted_changes(tmp_project: Path) -> None:
    commit = init_repo(tmp_project, GITIGNORE)
    edit(tmp_project / "experiments" / "diamond.py", "return [2 * x for x in data]",
         "return [2 * x + 0 for x in data]")  # fmt: skip
    (tmp_project / "params" / "two.py").write_text(
        (tmp_project / "params" / "two.py").read_text() + "# staged too\n"
    )
    git(tmp_project, "add", "params/two.py")
    manager = run(tmp_project)
    state = recorded(tmp_project, manager.run_id)["git"]
    assert state["commit"] == commit and state["dirty"] is True
    assert sorted(state["modified"]) == ["experiments/diamond.py", "params/two.py"]
    assert "-    return [2 * x for x in data]" in state["diff"]
    assert "+    return [2 * x + 0 for x in data]" in state["diff"]
    assert "+# staged too" in state["diff"]
    assert manager.run_info.git_dirty is True


def test_untracked_files_make_the_tree_dirty_but_assay_outputs_do_not(tmp_project: Path) -> None:
    # Only calls.txt is ignored: the cache, logs, reports and run store are untracked files.
    init_repo(tmp_project, "calls.txt\n")
    first = run(tmp_project)
    assert recorded(tmp_project, first.run_id)["git"]["dirty"] is False
    second = run(tmp_project)
    state = recorded(tmp_project, second.run_id)["git"]
    assert state["dirty"] is False and state["untracked"] == []
    (tmp_project / "experiments" / "helper.py").write_text("X = 1\n")
    state = recorded(tmp_project, run(tmp_project).run_id)["git"]
    assert state["dirty"] is True
    assert state["untracked"] == ["experiments/helper.py"] and state["modified"] == []


def test_a_detached_head_records_the_commit_without_a_branch(tmp_project: Path) -> None:
    first = init_repo(tmp_project, GITIGNORE)
    (tmp_project / "notes.md").write_text("later\n")
    git(tmp_project, "add", "notes.md")
    git(tmp_project, "commit", "-q", "-m", "second")
    git(tmp_project, "checkout", "-q", "--detach", first)
    manager = run(tmp_project)
    state = recorded(tmp_project, manager.run_id)["git"]
    assert state["commit"] == first and state["detached"] is True and state["branch"] is None
    assert state["dirty"] is False
    result = run_cli("show", "latest", cwd=tmp_project)
    assert result.code == 0 and f"{first} on" not in result.output and "detached" in result.output


def test_a_repository_without_commits_and_a_folder_outside_git(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE, commit=False)
    state = recorded(tmp_project, run(tmp_project).run_id)["git"]
    assert state["commit"] is None and state["dirty"] is True and state["error"] is None
    assert "experiments/" in state["untracked"]

    outside = tmp_project.parent / "outside"
    tmp_project.rename(outside)
    (outside / ".git").rename(outside / "not-git")
    manager = run(outside)
    state = recorded(outside, manager.run_id)["git"]
    assert state["commit"] is None and "not in a git repository" in state["error"]
    assert manager.run_info.status == "completed" and manager.run_info.git_dirty is None


def test_the_report_of_a_run_in_a_repository_without_commits_says_so(tmp_project: Path):
    """The report said "Git commit: not recorded" where `assay show` says what git's state
    was: a repository without commits."""
    init_repo(tmp_project, GITIGNORE, commit=False)
    manager = run(tmp_project)
    shown = run_cli("show", "latest", cwd=tmp_project)
    assert "a git repository without commits" in shown.text
    page = tmp_project / "reports" / manager.run_id / "index.html"
    for _ in range(2):  # as the run wrote it, then as `assay report` rebuilds it
        row = re.search(r"<dt>Git commit</dt>\s*<dd>(.*?)</dd>", page.read_text(), re.DOTALL)
        assert row and "a git repository without commits" in row.group(1), row
        assert run_cli("report", "latest", cwd=tmp_project).code == 0
    (page.parent / "run.json").unlink()  # made from the run store and the metadata file
    assert run_cli("report", "latest", cwd=tmp_project).code == 0
    assert "a git repository without commits" in page.read_text()


def test_git_is_found_from_a_subfolder_a_worktree_a_link_and_git_dir(tmp_path: Path) -> None:
    """Where ``.git`` is not in the project folder itself, git is still asked."""
    repo = tmp_path / "repo"
    (repo / "analysis").mkdir(parents=True)
    (repo / "analysis" / "notes.md").write_text("x\n")
    commit = init_repo(repo)
    git(repo, "worktree", "add", "-q", str(tmp_path / "tree"))  # its .git is a file
    (tmp_path / "link").symlink_to(repo / "analysis")
    plain = tmp_path / "plain"
    plain.mkdir()
    for folder in (repo / "analysis", tmp_path / "tree", tmp_path / "link"):
        state = capture_git(folder)
        assert state.error is None and state.commit == commit, folder
    assert "not in a git repository" in capture_git(plain).error
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GIT_DIR", str(repo / ".git"))
        assert capture_git(plain).commit == commit


def test_outside_any_repository_no_git_process_is_started(tmp_path: Path, monkeypatch) -> None:
    """git would only say it found no repository; its processes would cost the run CPU."""
    import shutil

    started = tmp_path / "started.txt"
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {started}\nexec {shutil.which("git")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{Path(shutil.which('git')).parent}")
    plain, repo = tmp_path / "plain", tmp_path / "repo"
    plain.mkdir()
    repo.mkdir()
    (repo / "notes.md").write_text("x\n")
    state = capture_git(plain)
    assert "not in a git repository" in state.error and not started.exists()
    init_repo(repo)
    assert capture_git(repo).error is None and started.exists()  # the wrapper is used


def test_without_git_installed_the_run_records_why(tmp_project: Path, monkeypatch) -> None:
    init_repo(tmp_project, GITIGNORE)
    empty = tmp_project.parent / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    manager = run(tmp_project)
    assert manager.run_info.status == "completed"
    state = recorded(tmp_project, manager.run_id)["git"]
    assert state["commit"] is None and "git is not installed" in state["error"]


def test_credentials_in_the_remote_url_are_not_recorded(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    git(tmp_project, "remote", "add", "origin", "https://alice:s3cret@example.org/lab/study.git")
    state = capture_git(tmp_project)
    assert state.remote == "https://example.org/lab/study.git"


# -- environment ---------------------------------------------------------------------------


def test_installed_packages_are_recorded_with_their_versions(tmp_project: Path) -> None:
    manager = run(tmp_project)
    prov = recorded(tmp_project, manager.run_id)
    assert prov["packages"]["click"] == metadata.version("click")
    assert prov["packages"]["xxhash"] == metadata.version("xxhash")
    assert prov["packages"]["assay"] == metadata.version("assay")
    assert prov["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert prov["python_executable"] == sys.executable
    packages, _ = installed_packages()
    assert len(packages) == len({d.metadata["Name"].lower() for d in metadata.distributions()})


def test_every_kind_of_installed_distribution_folder_is_read(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    (site / "Plain_Name-1.0.dist-info").mkdir(parents=True)
    odd = site / "odd-name-2.0.post1-extra.dist-info"  # more dashes: METADATA says
    odd.mkdir()
    (odd / "METADATA").write_text("Metadata-Version: 2.1\nName: Odd.Name\nVersion: 2.0\n\nText")
    (site / "eggy.egg-info").mkdir()
    (site / "eggy.egg-info" / "PKG-INFO").write_text("Name: eggy\nVersion: 0.3\n")
    (site / "flat.egg-info").write_text("Name: flat\nVersion: 4\n")  # a file, not a folder
    mine = site / "mine-0.1.dist-info"
    mine.mkdir()
    (mine / "direct_url.json").write_text(
        json.dumps({"url": "file:///src/mine", "dir_info": {"editable": True}})
    )
    (site / "broken.egg-info").mkdir()  # no PKG-INFO: left out, never a failure
    odd_url = site / "odd_url-1.0.dist-info"  # a direct_url.json that is no JSON object
    odd_url.mkdir()
    (odd_url / "direct_url.json").write_text('["editable"]')
    monkeypatch.setattr(sys, "path", [str(site)])

    packages, editable = installed_packages()

    assert packages == {"eggy": "0.3", "flat": "4", "mine": "0.1", "odd-name": "2.0",
                        "odd-url": "1.0", "plain-name": "1.0"}  # fmt: skip
    assert editable == {"mine": "file:///src/mine"}


def test_an_active_conda_environment_is_recorded(tmp_path: Path, monkeypatch) -> None:
    prefix = tmp_path / "envs" / "study"
    (prefix / "conda-meta").mkdir(parents=True)
    for name in ("numpy-1.26.4-py311h64a7726_0.json", "python-dateutil-2.9.0-pyhd8ed1ab_0.json",
                 "history"):  # fmt: skip
        (prefix / "conda-meta" / name).write_text("{}")
    monkeypatch.setenv("CONDA_PREFIX", str(prefix))
    monkeypatch.setenv("CONDA_DEFAULT_ENV", "study")
    conda = conda_info()
    assert conda.name == "study" and conda.prefix == str(prefix)
    assert conda.packages == {"numpy": "1.26.4", "python-dateutil": "2.9.0"}
    monkeypatch.delenv("CONDA_PREFIX")
    monkeypatch.delenv("CONDA_DEFAULT_ENV")
    assert conda_info() is None


def test_provenance_round_trips_through_json(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    prov = capture(tmp_project)
    again = Provenance.from_dict(json.loads(json.dumps(prov.to_dict())))
    assert again == prov
    assert prov.capture_s < 5


# -- the run record beside the log -----------------------------------------------------------


def test_the_run_record_beside_the_log_holds_everything(tmp_project: Path) -> None:
    commit = init_repo(tmp_project, GITIGNORE)
    manager = run(tmp_project, overrides=["offset=2"], names=["a"])
    config = ProjectConfig.load(tmp_project)
    path = record_path(config, manager.run_id)
    assert path == tmp_project / "logs" / f"{manager.run_id}.json"
    assert path.with_suffix(".log").exists()
    record = read_run_record(path)
    assert record["format"] == FORMAT
    run_info = record["run"]
    assert run_info["status"] == "completed" and run_info["git_commit"] == commit
    assert run_info["command"] == "assay run diamond -p two"
    assert run_info["config"]["overrides"] == ["offset=2"]
    assert run_info["config"]["param_files"] == ["two"] and run_info["config"]["names"] == ["a"]
    assert {"host", "user", "platform", "python", "started", "ended", "number"} <= set(run_info)
    assert record["provenance"]["git"]["commit"] == commit
    assert [p["name"] for p in record["param_sets"]] == ["a"]
    assert record["param_sets"][0]["values"]["offset"] == 2 and record["param_sets"][0]["hash"]
    assert all(s["duration_s"] is not None for s in record["stages"] if s["status"] == "executed")
    assert {a["name"] for a in record["artifacts"]} == {"data", "doubled", "squared",
                                                       "combined", "summary"}  # fmt: skip
    assert all(a["checksum"] and a["key"] for a in record["artifacts"])


def test_failed_and_reused_runs_write_their_record_too(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "fail.flag").write_text("")
    with pytest.raises(StageFailed):
        run_experiment("flaky", project_root=tmp_project, command="assay run flaky")
    with RunStore(tmp_project / "assay.db") as store:
        failed = store.get_run("latest")
    record = read_run_record(tmp_project / "logs" / f"{failed.id}.json")
    assert record["run"]["status"] == "failed" and "second cannot handle" in record["run"]["error"]
    assert record["provenance"]["git"]["dirty"] is True  # fail.flag is untracked
    statuses = {s["stage"]: s["status"] for s in record["stages"] if s["param_set"] == "a"}
    assert statuses["first"] == "executed" and statuses["second"] == "failed"

    (tmp_project / "fail.flag").unlink()
    run(tmp_project)
    reused = run(tmp_project)
    record = read_run_record(tmp_project / "logs" / f"{reused.run_id}.json")
    assert {a["action"] for a in record["artifacts"]} == {"reused"}
    assert all(a["checksum"] for a in record["artifacts"])


@pytest.mark.parametrize("again", [False, True], ids=["stages-run", "all-cached"])
def test_a_parallel_run_records_its_provenance_too(tmp_project: Path, again: bool) -> None:
    # On worker processes, the provenance is captured while the first stages run (or, if
    # the workers are not needed, at once).
    commit = init_repo(tmp_project, GITIGNORE)
    manager = run(tmp_project, parallel=2)
    if again:
        manager = run(tmp_project, parallel=2)
        assert {n.status for n in manager.plan.nodes} == {"cached"}
    provenance = recorded(tmp_project, manager.run_id)
    assert provenance["git"]["commit"] == commit and provenance["git"]["dirty"] is False
    assert provenance["packages"]["pytest"] == metadata.version("pytest")


def test_a_run_that_stops_while_it_is_planned_records_its_provenance(bad_project: Path) -> None:
    with pytest.raises(ProjectError, match="sys.exit"):
        run_experiment("exiting", project_root=bad_project, command="assay run exiting")
    with RunStore(bad_project / "assay.db") as store:
        stopped = store.get_run("latest")
        provenance = store.provenance(stopped.id)
    assert stopped.status == "failed"
    assert provenance["packages"]["pytest"] == metadata.version("pytest")
    assert "not in a git repository" in provenance["git"]["error"]


# -- the run store -------------------------------------------------------------------------


def test_a_version_1_run_store_is_upgraded_and_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "assay.db"
    old_schema = _SCHEMA.split("CREATE TABLE IF NOT EXISTS provenance")[0]
    for column in ("git_commit       TEXT", "git_branch       TEXT", "git_dirty        INTEGER"):
        old_schema = old_schema.replace(f",\n    {column}", "")
    assert "git_commit" not in old_schema
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO runs (id, experiment, status, started, host, user, platform, python,"
            " command, param_names_json, config_json) VALUES ('old-0001', 'old', 'completed',"
            " '2025-01-01T00:00:00.000Z', 'h', 'u', 'p', 'CPython 3.11', 'c', '[]', '{}')"
        )
        db.execute("PRAGMA user_version = 1")
    db.close()
    with RunStore(path) as store:
        old = store.get_run("latest")
        assert old.id == "old-0001" and old.git_commit is None and old.git_dirty is None
        assert store.provenance(old.id) is None
        new = store.begin_run("new", command="c")
        updated = store.record_provenance(new.id, {"git": {"commit": "a" * 40, "dirty": True}})
        assert updated.git_commit == "a" * 40 and updated.git_dirty is True
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()


# -- show and compare ----------------------------------------------------------------------


def test_show_prints_the_commit_dirty_flag_and_packages(tmp_project: Path) -> None:
    commit = init_repo(tmp_project, GITIGNORE)
    (tmp_project / "params" / "extra.py").write_text("X = 1\n")
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    result = run_cli("show", "latest", cwd=tmp_project)
    assert result.code == 0, result
    assert commit in result.text and "dirty: uncommitted changes" in result.text
    assert "0 modified, 1 untracked" in result.text
    assert f"{len(installed_packages()[0])} installed" in result.text


def test_compare_prints_parameters_code_packages_and_artifacts(tmp_project: Path) -> None:
    first_commit = init_repo(tmp_project, GITIGNORE)
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    edit(tmp_project / "experiments" / "diamond.py", "return [x * x for x in data]",
         "return [x * x + 1 for x in data]")  # fmt: skip
    git(tmp_project, "commit", "-q", "-am", "square differently")
    second_commit = git(tmp_project, "rev-parse", "HEAD")
    edit(tmp_project / "params" / "two.py", 'name="a", scale=1', 'name="a", scale=1, n=4')
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    with RunStore(tmp_project / "assay.db") as store:
        prov = store.provenance(store.get_run(2).id)
        prov["packages"]["click"] = "0.0.1"
        prov["packages"]["made-up-package"] = "1.0"
        store.record_provenance(store.get_run(2).id, prov)
        diff = compare_runs(store, 1, 2)
    assert ("a", "n", 3, 4) in diff.params and not diff.sets_only_a
    assert diff.code["commit"] == (first_commit, second_commit)
    assert diff.code["dirty"] == (False, True)
    assert diff.packages.added == {"made-up-package": "1.0"}
    assert diff.packages.changed == {"click": (metadata.version("click"), "0.0.1")}
    changed = {(c.param_set, c.stage, c.what) for c in diff.artifacts}
    assert ("b", "square", "key") in changed and ("a", "load", "key") in changed
    assert ("b", "load", "key") not in changed and diff.same_artifacts >= 2
    assert not diff.identical

    result = run_cli("compare", "1", "2", cwd=tmp_project)
    assert result.code == 0, result
    for text in ("a: n", first_commit, second_commit, "made-up-package", "click", "0.0.1",
                 "artifact key", "square"):  # fmt: skip
        assert text in result.output, text
    same = run_cli("compare", "2", "2", cwd=tmp_project)
    assert "No differences" in same.text


def test_compare_names_the_stage_code_that_changed_without_git(tmp_project: Path) -> None:
    """Outside git, compare used to say "0 in code" although a stage's code had changed."""
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    edit(tmp_project / "experiments" / "diamond.py", "return [x * x for x in data]",
         "return [x * x + 1 for x in data]")  # fmt: skip
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0

    with RunStore(tmp_project / "assay.db") as store:
        diff = compare_runs(store, 1, 2, cache=CacheStore(tmp_project / "data" / "cache"))
        assert compare_runs(store, 1, 2).stage_code == diff.stage_code  # the run store tells
    ((name, before, after),) = diff.stage_code["square"]
    assert name == "experiments.diamond.square" and before and after and before != after
    assert set(diff.stage_code) == {"square"}  # downstream stages changed key, not code

    result = run_cli("compare", "1", "2", cwd=tmp_project)
    assert result.code == 0, result
    assert "stage code" in result.text and "experiments.diamond.square" in result.text
    assert "1 stage(s) with other code (not in a git repository)" in result.text, result.text


def test_compare_reports_a_changed_checksum_under_the_same_key(tmp_project: Path) -> None:
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    assert run_cli("run", "diamond", "-p", "two", "-q", "--overwrite-stage", "load",
                   cwd=tmp_project).code == 0  # fmt: skip
    with RunStore(tmp_project / "assay.db") as store:
        artifacts = store.artifacts(store.get_run(2).id)
        key = next(a.key for a in artifacts if a.stage == "load" and a.param_set == "a")
        with sqlite3.connect(tmp_project / "assay.db") as db:
            db.execute("UPDATE artifacts SET checksum = 'f00d' WHERE run = 2 AND key = ?", (key,))
        db.close()
        diff = compare_runs(store, 1, 2)
    assert [(c.param_set, c.stage, c.what, c.b) for c in diff.artifacts] == [
        ("a", "load", "checksum", "f00d")
    ]
