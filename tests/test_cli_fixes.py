"""What `assay run` and `run_experiment` say and leave behind in less common cases.

Each test drives the real command line (``python -m assay`` in a subprocess) or
``run_experiment`` on a copy of a test project: the option an error names, what
a failed ``--dry-cache`` run says it kept, an unusable runs folder with
``--store-full``, the log of a run that failed before its first stage, and
``assay why --cache``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import assay
from assay.store import RunStore
from conftest import Calls, run_cli


def latest_run(root: Path):
    with RunStore(root / "assay.db") as store:
        return store.get_run("latest")


def test_an_index_out_of_range_names_global_indices_too(tmp_project: Path):
    """`--global-indices 7` said "--indices 7 is out of range": an option not given."""
    result = run_cli("run", "diamond", "-p", "two", "--global-indices", "7", cwd=tmp_project)

    assert result.code == 1, result
    assert "--global-indices" in result.text, result
    assert "there are 2 parameter sets (0 to 1)" in result.text, result


def test_a_failed_dry_cache_run_does_not_say_its_stages_are_cached(tmp_project: Path):
    """--dry-cache writes nothing, yet a failure said "Stages that finished are cached ...
    run the same command again to continue"."""
    (tmp_project / "fail.flag").touch()

    result = run_cli("run", "flaky", "--dry-cache", "--no-report", cwd=tmp_project)

    assert result.code == 1, result
    assert "second cannot handle" in result.text, result
    assert "are cached" not in result.text and "to continue" not in result.text, result
    assert "--dry-cache wrote nothing to the cache" in result.text, result
    assert "-m assay run flaky --dry-cache --no-report" in result.text
    assert not (tmp_project / "data" / "cache" / "by-name").exists()


def test_a_dry_run_whose_run_raises_says_nothing_was_executed(bad_project: Path):
    result = run_cli("run", "raising_run", "--dry", cwd=bad_project)

    assert result.code == 1, result
    assert "Error: KeyError: 'best'" in result.text, result
    assert "are cached" not in result.text, result
    assert "Nothing was executed or written (--dry)" in result.text, result


def test_an_interrupted_dry_cache_run_does_not_say_its_stages_stay_cached(tmp_project: Path):
    (tmp_project / "interrupt.flag").touch()

    result = run_cli("run", "flaky", "--dry-cache", "--no-report", cwd=tmp_project)

    assert result.code == 130, result
    assert "Interrupted." in result.text, result
    assert "cached;" not in result.text and "stay cached" not in result.text, result
    assert "--dry-cache wrote nothing to the cache" in result.text, result


@pytest.mark.parametrize("option", ["--store-full", "--notebook"])
def test_a_runs_folder_that_is_a_file_stops_an_exporting_run_before_it_runs(
    tmp_project: Path, calls: Calls, option: str
):
    """It ran every stage, recorded the run completed, then failed: "Choose another path
    with -o", an option `assay run` does not have."""
    (tmp_project / "data").mkdir()
    (tmp_project / "data" / "runs").write_text("not a folder\n")

    result = run_cli("run", "diamond", "-p", "two", option, cwd=tmp_project)

    assert result.code == 1, result
    assert "setting runs_dir" in result.text and "Nothing was run" in result.text, result
    assert " -o" not in result.text, result
    assert calls.take() == []
    assert not (tmp_project / "assay.db").exists()


def test_a_failed_run_with_store_full_says_it_was_not_exported(tmp_project: Path):
    (tmp_project / "fail.flag").touch()

    result = run_cli("run", "flaky", "--store-full", "--no-report", cwd=tmp_project)

    assert result.code == 1, result
    assert "Run 1 failed, so --store-full exported nothing" in result.text, result
    assert "`assay export full 1` exports it as it is" in result.text, result
    assert not (tmp_project / "data" / "runs").exists() or not any(
        (tmp_project / "data" / "runs").iterdir()
    )
    run = latest_run(tmp_project)
    log = (tmp_project / "logs" / f"{run.id}.log").read_text()
    assert "--store-full exported nothing" in log

    exported = run_cli("export", "full", "1", cwd=tmp_project)
    assert exported.code == 0, exported
    assert (tmp_project / "data" / "runs" / run.id / "run.json").is_file()


SELF_REFERENCING = """
from dataclasses import dataclass, field

import assay
from assay.caching import PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    items: list = field(default_factory=list)


@assay.stage(inputs=None, outputs=["x"], cachers=[PickleCacher])
def make(record):
    return 1


def get_params():
    params = Params(name="loop")
    params.items.append(params.items)  # a list that contains itself: no hash
    return [params]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
"""


def test_a_run_that_fails_before_its_first_stage_has_a_log_and_a_record(tmp_project: Path):
    """A parameter set that cannot be hashed failed the run in the run store, but left no
    logs/RUN_ID.log nor logs/RUN_ID.json, and the command printed no Log: line."""
    (tmp_project / "experiments" / "selfref.py").write_text(SELF_REFERENCING)

    result = run_cli("run", "selfref", cwd=tmp_project)

    assert result.code == 1, result
    assert "Parameter set 'loop' cannot be hashed" in result.text, result
    run = latest_run(tmp_project)
    assert run.status == "failed" and "cannot be hashed" in run.error
    log = tmp_project / "logs" / f"{run.id}.log"
    assert "cannot be hashed" in log.read_text()
    assert f"Log: logs/{run.id}.log" in result.text, result
    assert (tmp_project / "logs" / f"{run.id}.json").is_file()


def test_run_experiment_names_the_keyword_of_an_option_spelled_as_on_the_command_line(
    tmp_project: Path,
):
    with pytest.raises(TypeError, match=r"'no_log'.*--no-log` is log_file=False"):
        assay.run_experiment("diamond", ["two"], project_root=tmp_project, no_log=True)
    with pytest.raises(TypeError, match=r"'set'.*overrides="):
        assay.run_experiment("diamond", ["two"], project_root=tmp_project, set=["n=4"])
    assert not (tmp_project / "assay.db").exists()


def test_why_takes_the_cache_folder_a_run_used(tmp_project: Path):
    """Runs made with `assay run --cache DIR` could be explained only through
    ASSAY_CACHE_DIR: `assay why` had no --cache."""
    assert run_cli("run", "diamond", "-p", "two", "--cache", "elsewhere", cwd=tmp_project).code == 0

    with_cache = run_cli("why", "diamond", "-p", "two", "--cache", "elsewhere", cwd=tmp_project)
    without = run_cli("why", "diamond", "-p", "two", cwd=tmp_project)

    assert with_cache.code == 0, with_cache
    assert "0 of 9 stage runs execute." in with_cache.text, with_cache
    assert "9 of 9 stage runs execute." in without.text, without


def test_a_run_started_by_python_dash_c_records_that_command(tmp_project: Path):
    """The recorded command was "-c" (sys.argv under `python -c`)."""
    code = "import assay; assay.run_experiment('diamond', ['two'], report=False)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_project, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr

    assert shlex.split(latest_run(tmp_project).command) == [sys.executable, "-c", code]


@pytest.mark.parametrize(
    ("flag", "instead"),
    [("--print-params", "`assay params EXPERIMENT -p FILE`"), ("--map", "`assay run ... --dry`"),
     ("--no-color", "NO_COLOR=1"), ("--parallel-safe", "leave it out")],
)  # fmt: skip
def test_a_curifactory_only_flag_says_what_assay_has_instead(
    tmp_project: Path, flag: str, instead: str
):
    """It said "No such option" (or "Did you mean '--parallel'?" for --parallel-safe)."""
    result = run_cli("run", "diamond", "-p", "two", flag, cwd=tmp_project)

    assert result.code == 2, result
    assert f"{flag} is an option of Curifactory's `experiment` command" in result.stderr
    assert instead in result.stderr, result.stderr
    assert not (tmp_project / "assay.db").exists()  # nothing ran


def test_an_unknown_flag_of_no_tool_still_gets_click_s_suggestion(tmp_project: Path):
    result = run_cli("run", "diamond", "--verbos", cwd=tmp_project)

    assert result.code == 2 and "No such option" in result.stderr, result


@pytest.mark.parametrize(
    ("option", "command"), [("--docker", "docker"), ("--notebook", "notebook")]
)
def test_a_failed_run_with_docker_or_notebook_names_that_export(
    tmp_project: Path, option: str, command: str
):
    """--docker was said to be --store-full (with `assay export full N`), and --notebook
    alone said nothing: the command line wrote those exports itself, after the run."""
    (tmp_project / "fail.flag").touch()

    result = run_cli("run", "flaky", option, "--no-report", cwd=tmp_project)

    assert result.code == 1, result
    assert f"Run 1 failed, so {option} exported nothing" in result.text, result
    assert f"`assay export {command} 1` exports it as it is" in result.text, result
    assert "--store-full" not in result.text, result


def test_a_completed_run_with_notebook_and_store_full_names_what_it_wrote(tmp_project: Path):
    result = run_cli(
        "run", "diamond", "-p", "two", "--store-full", "--notebook", "--no-report",
        cwd=tmp_project,
    )  # fmt: skip

    assert result.code == 0, result
    run = latest_run(tmp_project)
    assert f"Exported to: data/runs/{run.id}" in result.text, result
    notebook = f"data/runs/{run.id}/{run.id}.ipynb"
    assert f"Notebook: {notebook}" in result.text, result
    assert (tmp_project / notebook).is_file()
