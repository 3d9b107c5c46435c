"""The command line and the configuration given bad input, as a researcher meets it.

Each test drives the real command line (``python -m assay`` in a subprocess) on a copy
of a test project: an empty ``--cache`` or blank ``ASSAY_*`` variable, a run store or
cache folder given with a new folder or ``..``, mistyped paths, ``assay init`` where a
file is in the way, ``--store-full-include`` alone, files put in the cache by hand, and
a cache setting that names a file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import run_cli

TRACEBACK = "Traceback (most recent call last)"


def files_under(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "command",
    [
        ["run", "diamond", "--cache", ""],
        ["why", "diamond", "--cache", ""],
        ["cache", "ls", "--cache", ""],
        ["cache", "gc", "--cache", "", "--older-than", "0"],
        ["cache", "verify", "--remove", "--cache", " "],
        ["lineage", "diamond/a/b/c", "--cache", ""],
    ],
    ids=["run", "why", "cache-ls", "cache-gc", "cache-verify", "lineage"],
)
def test_an_empty_cache_option_is_refused_not_taken_for_the_current_folder(
    tmp_project: Path, command: list
):
    """`assay run X --cache ""` made the project folder the cache (objects/, by-name/,
    code/ ... written among experiments/ and params/), and `cache gc --cache ""` or `cache
    verify --remove --cache ""` went through the project folder as if it were a cache."""
    assert run_cli("run", "diamond", cwd=tmp_project).code == 0
    before = files_under(tmp_project)

    result = run_cli(*command, cwd=tmp_project)

    assert result.code == 1, result
    assert "--cache was given an empty folder name" in result.text, result
    assert "leave --cache out" in result.text, result
    assert TRACEBACK not in result.output, result
    assert files_under(tmp_project) == before


def test_an_empty_cache_folder_given_to_a_manager_is_refused(tmp_project: Path):
    """`ArtifactManager(cache_path="")` (or `run_experiment(cache_dir="")`) made the
    project folder the cache, as `--cache ""` did."""
    import assay
    from assay.errors import ConfigError

    with pytest.raises(ConfigError, match="The cache folder is empty"):
        assay.ArtifactManager("cli_s33", cache_path="", project_root=tmp_project)
    assert not (tmp_project / "objects").exists()


def test_a_run_store_setting_in_a_new_folder_is_made_as_the_other_folders_are(
    tmp_project: Path,
):
    """`store_path = "db/assay.db"` stopped every run: "the folder db does not exist. Run
    assay from the project root, or create the folder" (from the project root), while
    logs_dir, reports_dir and cache_dir in new folders are made."""
    (tmp_project / "assay.toml").write_text('store_path = "db/assay.db"\n')

    result = run_cli("run", "diamond", cwd=tmp_project)

    assert result.code == 0, result
    assert (tmp_project / "db" / "assay.db").is_file()
    assert not (tmp_project / "assay.db").exists()
    listed = run_cli("ls", cwd=tmp_project)
    assert listed.code == 0 and "diamond" in listed.text, listed


def test_a_run_store_folder_that_cannot_be_made_names_its_setting(tmp_project: Path):
    (tmp_project / "db").write_text("a file where the folder should be\n")

    result = run_cli("run", "diamond", cwd=tmp_project, env={"ASSAY_STORE_PATH": "db/x.db"})

    assert result.code == 1, result
    assert "is a file, not a folder" in result.text, result
    assert "ASSAY_STORE_PATH=db/x.db" in result.text, result
    assert TRACEBACK not in result.output, result
    assert (tmp_project / "db").is_file() and not list(tmp_project.rglob("*.db"))


@pytest.mark.parametrize(
    "args, meant",
    [
        (["run", "experiments/diamnd.py"], "Did you mean experiments/diamond.py?"),
        (["why", "./experiments/daimond"], "Did you mean experiments/diamond.py?"),
        (["run", "diamond", "-p", "params/tow.py"], "Did you mean params/two.py?"),
    ],
    ids=["run", "why-without-py", "param-file"],
)
def test_a_mistyped_path_suggests_the_file_it_probably_means(
    tmp_project: Path, args: list, meant: str
):
    """A mistyped name got "Did you mean 'diamond'?", the same typo in a path (as the shell
    completes them) only "does not exist"."""
    result = run_cli(*args, cwd=tmp_project)

    assert result.code == 1, result
    assert "does not exist" in result.text and meant in result.text, result
    assert not (tmp_project / "assay.db").exists()


@pytest.mark.parametrize("blocking", ["experiments", "logs", "data"])
def test_init_where_a_file_stands_for_a_folder_says_so_and_makes_nothing(
    tmp_path: Path, blocking: str
):
    """A file named `logs` (or `experiments`, `data`) in the folder: `assay init` said
    "File exists: logs." and stopped with experiments/, params/, data/ and reports/ made
    but no assay.toml and no example."""
    folder = tmp_path / "my stüdy"
    folder.mkdir()
    (folder / blocking).write_text("my notes\n")

    result = run_cli("init", cwd=folder)

    assert result.code == 1, result
    assert f"{blocking} is a file" in result.text and "Nothing was created" in result.text
    assert TRACEBACK not in result.output, result
    assert files_under(folder) == [blocking]
    assert (folder / blocking).read_text() == "my notes\n"


def test_store_full_include_without_an_export_is_a_usage_error(tmp_project: Path):
    """`assay run X --store-full-include 'data/*.csv'` without --store-full ran, exported
    nothing and said nothing: the researcher believed the files were kept with the run."""
    result = run_cli("run", "diamond", "--store-full-include", "*.csv", cwd=tmp_project)

    assert result.code == 2, result
    assert "add --store-full" in result.text, result
    assert not (tmp_project / "assay.db").exists()

    kept = run_cli("run", "diamond", "-s", "--store-full-include", "*.csv", cwd=tmp_project)
    assert kept.code == 0, kept
    assert list((tmp_project / "data" / "runs").iterdir())


def test_cache_gc_leaves_files_put_in_the_cache_by_hand_and_says_nothing_of_them(
    tmp_project: Path,
):
    """A file or folder of one's own in data/cache/objects/ab/: `cache gc` said "Removed
    .../objects/no/notes.txt" (a path that never existed: the name taken for a stage
    run's key) and "Removed 1 entry", and left the file where it was."""
    assert run_cli("run", "diamond", cwd=tmp_project).code == 0
    objects = tmp_project / "data" / "cache" / "objects"
    (objects / "ab").mkdir(exist_ok=True)
    (objects / "ab" / "notes.txt").write_text("mine\n")
    (objects / "cd" / "mine").mkdir(parents=True)
    for path in (objects / "ab" / "notes.txt", objects / "cd" / "mine"):
        os.utime(path, (time.time() - 7200, time.time() - 7200))  # not a write going on
    before = files_under(objects)

    result = run_cli("cache", "gc", cwd=tmp_project)

    assert result.code == 0, result
    assert "objects/no/" not in result.text and "objects/mi/" not in result.text, result
    assert "Removed 0 entries" in result.text, result
    assert files_under(objects) == before
    assert run_cli("cache", "verify", cwd=tmp_project).code == 0


@pytest.mark.parametrize("how", ["setting", "option"])
def test_a_cache_folder_given_with_dot_dot_keeps_its_files_as_its_own(tmp_project: Path, how):
    """`cache_dir = "../shared-cache"` (or `--cache ../shared-cache`): every sidecar
    recorded its files by absolute path, as a path_override's are, so `cache verify`
    called each file "without a record" and `export full` copied none of them ("outside
    the cache")."""
    shared = tmp_project.parent / "shared cäche"
    option = []
    if how == "setting":
        (tmp_project / "assay.toml").write_text('cache_dir = "../shared cäche"\n')
    else:
        option = ["--cache", "../shared cäche"]
    assert run_cli("run", "diamond", *option, cwd=tmp_project).code == 0

    sidecars = list((shared / "objects").rglob("*.meta.json"))
    assert sidecars
    for sidecar in sidecars:
        for file in json.loads(sidecar.read_text())["files"]:
            assert not Path(file["path"]).is_absolute(), file
    verified = run_cli("cache", "verify", *option, cwd=tmp_project)
    assert verified.code == 0 and "without a record" not in verified.text, verified
    exported = run_cli("export", "full", "latest", "-o", "../out", cwd=tmp_project)
    assert exported.code == 0 and "outside the cache" not in exported.text, exported
    assert list((tmp_project.parent / "out" / "cache" / "objects").rglob("*.meta.json"))


def test_a_blank_environment_variable_is_refused_as_a_blank_setting_is(tmp_project: Path):
    """`ASSAY_CACHE_DIR=" "` made a cache folder named " " in the project (the same value
    in assay.toml is refused)."""
    result = run_cli("run", "diamond", cwd=tmp_project, env={"ASSAY_CACHE_DIR": " "})

    assert result.code == 1, result
    assert "ASSAY_CACHE_DIR holds only blanks" in result.text, result
    assert not (tmp_project / " ").exists() and not (tmp_project / "assay.db").exists()


@pytest.mark.parametrize("command", [["why", "diamond"], ["run", "diamond", "--dry"]])
def test_a_plan_with_a_file_for_the_cache_folder_names_the_setting(tmp_project: Path, command):
    """`cache_dir` naming a file: `assay run` said so, but `assay why` and `run --dry` ended
    in "NotADirectoryError ... (raised in run(), experiments/diamond.py line N)", blaming
    the experiment's code."""
    (tmp_project / "notes.txt").write_text("mine\n")
    (tmp_project / "assay.toml").write_text('cache_dir = "notes.txt"\n')

    result = run_cli(*command, cwd=tmp_project)

    assert result.code == 1, result
    assert "is a file, not a folder" in result.text and "cache_dir" in result.text, result
    assert "NotADirectoryError" not in result.text and "raised in run()" not in result.text
    assert (tmp_project / "notes.txt").read_text() == "mine\n"
