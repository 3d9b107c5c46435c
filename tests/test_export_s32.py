"""Exports taken elsewhere: a run.json that points outside the export, and packages that
differ between the run and its reproduction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import copy_project, run_cli
from git_helpers import GITIGNORE, init_repo
from test_export import _no_outer_repository, exported, ok  # noqa: F401 (an autouse fixture)


@pytest.fixture
def export_elsewhere(tmp_path: Path) -> Path:
    """An export of the ``repro`` project's run, copied away; the project deleted."""
    project = copy_project("repro", tmp_path)
    init_repo(project, GITIGNORE)
    ok(run_cli("run", "tables", "-p", "small", "--store-full", cwd=project))
    elsewhere = tmp_path / "elsewhere" / "export"
    shutil.copytree(exported(project), elsewhere, symlinks=True)
    shutil.rmtree(project)
    return elsewhere


def _edit_record(folder: Path, change) -> None:
    record = json.loads((folder / "run.json").read_text())
    change(record)
    (folder / "run.json").write_text(json.dumps(record))


@pytest.mark.parametrize("code", ["outside", "../../outside", "code/../../../outside"])
def test_reproduce_copies_only_the_export_s_own_code_folder(
    export_elsewhere: Path, tmp_path: Path, code: str
) -> None:
    """run.json's export.files.code was followed: "/etc" copied all of /etc into the
    reproduction's folder and ran whatever it found there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("not part of the export\n")
    given = str(outside) if code == "outside" else code
    _edit_record(export_elsewhere, lambda r: r["export"]["files"].update(code=given))
    workdir = tmp_path / "work"

    result = run_cli("reproduce", export_elsewhere, "--workdir", workdir, cwd=tmp_path)

    assert result.code == 0 and "the reproduction is exact" in result.text, result
    assert not (workdir / "private.txt").exists()


def test_reproduce_refuses_a_code_folder_that_links_out_of_the_export(
    export_elsewhere: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("not part of the export\n")
    shutil.rmtree(export_elsewhere / "code")
    (export_elsewhere / "code").symlink_to(outside, target_is_directory=True)
    workdir = tmp_path / "work"

    result = run_cli("reproduce", export_elsewhere, "--workdir", workdir, cwd=tmp_path)

    assert result.code != 0 and "Traceback" not in result.text, result
    assert "no code snapshot" in result.text and "link out of the export" in result.text, result
    assert not (workdir / "private.txt").exists()


def test_reproduce_names_the_packages_that_differ_from_the_run_s(
    export_elsewhere: Path, tmp_path: Path
) -> None:
    """A colleague's environment with another numpy: reproduce said nothing about it."""

    def other_environment(record: dict) -> None:
        packages = record["provenance"]["packages"]
        packages["numpy"] = "1.0.0"
        packages["long-gone-package"] = "0.1"

    _edit_record(export_elsewhere, other_environment)

    result = run_cli("reproduce", export_elsewhere, cwd=tmp_path)

    assert result.code == 0, result
    text = " ".join(result.text.split())
    assert "2 package(s) differ from the run's" in text, result
    assert "numpy 1.0.0 → " in text and "long-gone-package 0.1 → not installed" in text


def test_reproduce_in_the_same_environment_names_no_packages(
    export_elsewhere: Path, tmp_path: Path
) -> None:
    result = run_cli("reproduce", export_elsewhere, cwd=tmp_path)

    assert result.code == 0 and "the reproduction is exact" in result.text, result
    assert "differ from the run's" not in result.text


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda r: r.pop("run"), "it has no run with an id"),
        (lambda r: r.pop("artifacts"), "it has no list of artifacts"),
        (lambda r: r["artifacts"][0].pop("stage"), "an artifact lacks its key"),
    ],
)
def test_reproduce_of_a_damaged_run_json_says_so(
    export_elsewhere: Path, tmp_path: Path, change, said: str
) -> None:
    """A run.json cut down by hand (or by a bad merge) gave a KeyError traceback."""
    _edit_record(export_elsewhere, change)

    result = run_cli("reproduce", export_elsewhere, cwd=tmp_path)

    assert result.code != 0 and "Traceback" not in result.text, result
    text = " ".join(result.text.split())
    assert "is a damaged run record" in text and said in text, result
    assert not (export_elsewhere / "reproductions").exists() or not any(
        (export_elsewhere / "reproductions").iterdir()
    )


def test_store_full_include_takes_the_files_asked_for_outside_git(tmp_project: Path) -> None:
    """Outside git, --store-full-include was ignored (run.json still listed the pattern
    under included_on_request), so the data file the stage read was not in the export."""
    (tmp_project / "data" / "raw").mkdir(parents=True)
    (tmp_project / "data" / "raw" / "values.csv").write_text("x\n1\n")
    (tmp_project / "inputs").mkdir()
    (tmp_project / "inputs" / "table.csv").write_text("y\n2\n")
    (tmp_project / "inputs" / "other.csv").write_text("not asked for\n")

    ok(run_cli("run", "diamond", "-p", "two", "--store-full",
               "--store-full-include", "data/raw/*.csv", "--store-full-include", "table.csv",
               cwd=tmp_project))  # fmt: skip

    code = exported(tmp_project) / "code"
    assert (code / "data" / "raw" / "values.csv").read_text() == "x\n1\n"
    assert (code / "inputs" / "table.csv").read_text() == "y\n2\n"
    assert not (code / "inputs" / "other.csv").exists()
    assert (code / "experiments" / "diamond.py").is_file()


@pytest.mark.parametrize("reuse", [False, True])
def test_reproduce_refuses_a_link_in_the_code_snapshot_that_leads_out_of_it(
    export_elsewhere: Path, tmp_path: Path, reuse: bool
) -> None:
    """code/data linking to another folder had the re-run write its cache there."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (export_elsewhere / "code" / "data").symlink_to(victim, target_is_directory=True)

    options = ["--reuse"] if reuse else []
    result = run_cli("reproduce", export_elsewhere, *options, cwd=tmp_path)

    assert result.code != 0 and "Traceback" not in result.text, result
    text = " ".join(result.text.split())
    assert "links out of it" in text and "code/data" in text, result
    assert list(victim.iterdir()) == []


def test_reproduce_into_a_relative_workdir(export_elsewhere: Path, tmp_path: Path) -> None:
    """`--workdir again` put the re-run's run store, logs and cache in again/again/, and
    reproduce called every artifact of an exact reproduction missing."""
    result = run_cli("reproduce", export_elsewhere, "--workdir", "again", cwd=tmp_path)

    assert result.code == 0 and "the reproduction is exact" in result.text, result
    assert (tmp_path / "again" / "assay.db").is_file()
    assert not (tmp_path / "again" / "again").exists()
