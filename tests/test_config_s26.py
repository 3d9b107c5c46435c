"""What the command line shows of user-given names, how assay finds and reads its
settings, and what ``assay init`` does in a folder that is not empty."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

import assay
from assay.cli_output import ProgressObserver, print_init, printable, shown
from assay.config import ProjectConfig, unknown_variables
from assay.errors import ConfigError
from assay.metrics import read_metrics
from assay.project import project_root_for
from assay.scaffold import init_project
from conftest import copy_project, run_cli

ODD_NAMES = """
from experiments.diamond import Params


def get_params():
    return [
        Params(name="lower", scale=1),
        Params(name="x[/b]", scale=2),
        Params(name="esc\\x1b[31mRED\\x1b[0m", scale=3),
    ]
"""


def fails(result, *fragments: str):
    assert result.code not in (0, None), result
    assert "Traceback" not in result.output, result
    for fragment in fragments:
        assert fragment in result.text, f"{fragment!r} not in the message:\n{result}"
    return result


# -- user-given names on the terminal -------------------------------------------------------


def test_the_progress_bar_shows_parameter_set_names_as_written(tmp_project: Path):
    """`[lower]` was read as rich markup and vanished; `x[/b]` made rich raise MarkupError
    (a traceback over the terminal); an ESC in a name reached the terminal."""
    (tmp_project / "params" / "odd.py").write_text(ODD_NAMES)
    manager = assay.run_experiment("diamond", ["odd"], project_root=tmp_project)
    screen = io.StringIO()
    observer = ProgressObserver(Console(file=screen, force_terminal=True, width=200))
    try:
        for node in [n for n in manager.plan.nodes if n.spec.name == "double"]:
            observer.stage_started(node)
            observer.progress.refresh()
            observer.stage_finished(node)
    finally:
        observer.close()
    drawn = screen.getvalue()
    assert "double [lower]" in drawn
    assert "double [x[/b]]" in drawn
    assert "double [esc\\x1b[31mRED\\x1b[0m]" in drawn
    assert "\x1b[31mRED" not in drawn


def test_ls_show_and_params_print_no_terminal_control_sequences(tmp_project: Path):
    """A name or note with ESC ... sequences recoloured (or retitled) the terminal."""
    (tmp_project / "params" / "odd.py").write_text(ODD_NAMES)
    note = "title\x1b]0;PWNED\x07 done"
    assert run_cli("run", "diamond", "-p", "odd", "--notes", note, cwd=tmp_project).code == 0
    for command in (["ls"], ["show", "latest"], ["params", "diamond", "-p", "odd"]):
        result = run_cli(*command, cwd=tmp_project)
        assert result.code == 0, result
        assert "\x1b" not in result.output and "\x07" not in result.output, command
        assert "esc\\x1b[31mRED" in result.text.replace(" ", ""), (command, result)
    shown_run = run_cli("show", "latest", cwd=tmp_project)
    assert "title\\x1b]0;PWNED\\x07 done" in shown_run.stdout
    assert "lower" in shown_run.stdout and "x[/b]" in shown_run.stdout


def test_printable_keeps_text_and_shows_control_characters_as_escapes():
    assert printable("a\tb\nc [x] é σ²") == "a\tb\nc [x] é σ²"
    assert printable("\x1b[2J\r\x07\x7f\x9b") == "\\x1b[2J\\x0d\\x07\\x7f\\x9b"
    assert shown("[bold]x\x1b") == "\\[bold]x\\x1b"


def test_a_dry_cache_run_says_that_nothing_was_cached(tmp_project: Path):
    result = run_cli("run", "diamond", "--dry-cache", cwd=tmp_project)
    assert result.code == 0, result
    assert "executed (--dry-cache: nothing was written to the cache)." in result.text
    assert "--dry-cache" not in run_cli("run", "diamond", cwd=tmp_project).text


# -- settings -------------------------------------------------------------------------------


def test_assay_toml_with_settings_at_the_top_and_under_tool_assay_is_refused(tmp_path: Path):
    """Once [tool.assay] was there, every top-level setting was ignored without a word."""
    settings = tmp_path / "assay.toml"
    settings.write_text('reports_dir = "r"\n[tool.assay]\ncache_dir = "c"\n')
    with pytest.raises(ConfigError) as raised:
        ProjectConfig.load(tmp_path)
    message = str(raised.value)
    assert f"{settings} has settings both at its top level (reports_dir)" in message
    assert "under [tool.assay] (cache_dir)" in message

    settings.write_text('cache_dr = "x"\n[tool.assay]\ncache_dir = "c"\n')  # a typo, too
    with pytest.raises(ConfigError, match=r"top level \(cache_dr\)"):
        ProjectConfig.load(tmp_path)

    settings.write_text('[tool.assay]\ncache_dir = "c"\nreports_dir = "r"\n')  # one place: fine
    config = ProjectConfig.load(tmp_path)
    assert (config.cache_dir, config.reports_dir) == (tmp_path / "c", tmp_path / "r")

    settings.write_text('reports_dr = "r"\n[tool.other]\nx = 1\n')
    with pytest.raises(ConfigError, match=r"reports_dr \(did you mean reports_dir\?\)"):
        ProjectConfig.load(tmp_path)


def test_a_missing_experiments_folder_names_the_setting_that_points_there(tmp_project: Path):
    """It said "run assay from the project's root" of a folder named in assay.toml."""
    (tmp_project / "assay.toml").write_text('experiments_dir = "nowhere"\n')
    result = fails(
        run_cli("run", "diamond", cwd=tmp_project),
        f"There is no folder {tmp_project / 'nowhere'}, which the setting experiments_dir names",
        f'experiments_dir = "nowhere" in {tmp_project / "assay.toml"}',
        "correct the setting, or create the folder",
    )
    assert "run assay from the project's root" not in result.text


def test_a_run_store_path_set_to_a_folder_names_the_setting(tmp_project: Path):
    """It advised to "move the folder away": here, the project's experiments/."""
    result = fails(
        run_cli("ls", cwd=tmp_project, env={"ASSAY_STORE_PATH": "experiments"}),
        f"The run store path {tmp_project / 'experiments'} (setting store_path, from the "
        "environment variable ASSAY_STORE_PATH=experiments) is a folder",
        'Set store_path to a file path, such as "assay.db"',
    )
    assert "Move the folder away" not in result.text
    assert (tmp_project / "experiments" / "diamond.py").is_file()


def test_an_unknown_assay_environment_variable_is_said_once_with_the_likely_name(
    tmp_project: Path,
):
    """ASSAY_CACHEDIR (a typo) was ignored without a word; the cache went elsewhere."""
    env = {"ASSAY_CACHEDIR": str(tmp_project / "elsewhere"), "ASSAY_CACHE_OPTIONS": "{}"}
    result = run_cli("run", "diamond", "-q", cwd=tmp_project, env=env)
    assert result.code == 0, result
    line = "assay ignores the environment variable ASSAY_CACHEDIR, unknown to it (did you mean ASSAY_CACHE_DIR?)."
    assert result.stderr.count(line) == 1, result
    assert "ASSAY_CACHE_OPTIONS, unknown to it (cache_options is set in assay.toml" in result.text
    assert unknown_variables({"ASSAY_CACHE_DIR": "x", "ASSAY_START_METHOD": "spawn"}) == []


# -- where a run by path runs ------------------------------------------------------------------


def test_an_experiment_of_a_project_run_by_path_from_no_project_runs_in_its_project(
    tmp_path: Path, caplog
):
    """It made a new project (assay.db, data/, logs/) in the current folder, and `-p` with
    the project's parameter file failed: `experiments` was not importable."""
    project = copy_project("basic", tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    experiment = str(project / "experiments" / "diamond.py")
    with caplog.at_level(logging.WARNING, logger="assay"):
        root = project_root_for(experiment, start=elsewhere)
    assert root == project
    assert (
        f"The current folder is in no assay project: {experiment} runs in its own project, {project}"
        in caplog.text
    )
    manager = assay.run_experiment(
        experiment, [str(project / "params" / "two.py")], project_root=root
    )
    assert manager.run_info.status == "completed"
    assert (project / "assay.db").is_file() and list(elsewhere.iterdir()) == []

    caplog.clear()
    other = copy_project("bad", tmp_path)  # a project of its own: it stays the one used
    with caplog.at_level(logging.WARNING, logger="assay"):
        assert project_root_for(experiment, start=other) is None
    assert (
        f"{experiment} belongs to the project {project} but runs in the project of the current folder, {other}"
        in caplog.text
    )
    assert project_root_for("diamond", start=elsewhere) is None  # a name: found as before


# -- assay init ---------------------------------------------------------------------------------


def _init(folder: Path, given: str) -> str:
    screen = io.StringIO()
    print_init(Console(file=screen, width=300), init_project(folder), given)
    return " ".join(screen.getvalue().split())


def test_init_in_a_folder_with_files_of_its_own_says_what_it_kept_and_added(
    tmp_path: Path, monkeypatch
):
    """It skipped the user's experiments/example.py without a word, wrote a parameter file
    that imports what that file lacks, suggested a command that failed, and left an
    existing .gitignore without data/, reports/, assay.db."""
    folder = tmp_path / "existing"
    (folder / "experiments").mkdir(parents=True)
    (folder / "experiments" / "example.py").write_text("x = 1\n")
    (folder / ".gitignore").write_text("data/raw\nlogs")
    monkeypatch.chdir(folder)

    said = _init(Path("."), ".")
    assert "kept experiments/example.py (it was there: left as it is)" in said
    assert "added data/ reports/ assay.db* __pycache__/ to .gitignore" in said
    assert "The example was not installed: experiments/example.py was there already" in said
    assert "Next:" not in said and "-p example" not in said
    assert not (folder / "params" / "example.py").exists()
    assert (folder / "experiments" / "example.py").read_text() == "x = 1\n"
    ignored = (folder / ".gitignore").read_text().splitlines()
    assert ignored[:2] == ["data/raw", "logs"] and "logs/" not in ignored
    assert {"data/", "reports/", "assay.db*", "__pycache__/"} <= set(ignored)

    again = _init(Path("."), ".")
    assert "added" not in again and "created" not in again  # nothing is added twice


def test_init_again_nested_and_with_a_dash_name(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = _init(Path("study"), "study")
    assert first.endswith("Next: assay run example -p example (after cd study)")
    assert "already" not in first and "Note:" not in first
    assert _init(Path("study"), "study").startswith(
        "study is an assay project already: nothing to add."
    )

    nested = _init(Path("study/sub"), "study/sub")
    assert (
        f"Note: {tmp_path / 'study' / 'sub'} is inside the assay project {tmp_path / 'study'}."
        in nested
    )

    dashed = _init(Path("-weird"), "-weird")
    assert dashed.endswith("(after cd ./-weird)")
    monkeypatch.chdir(tmp_path / "-weird")
    assert _init(Path("."), ".") == (
        "This folder is an assay project already: nothing to add. "
        "Next: assay run example -p example"
    )


def test_the_init_example_logs_metrics_that_compare_and_the_dashboard_show(tmp_path: Path):
    init_project(tmp_path / "study")
    manager = assay.run_experiment("example", ["example"], project_root=tmp_path / "study")
    assert manager.run_info.status == "completed"
    rows = read_metrics(tmp_path / "study" / "assay.db", [manager.run_info.number])
    names = {(row.stage, row.name) for row in rows}
    assert names == {("fit", "train_mse"), ("evaluate", "test_mse"), ("evaluate", "r2")}
    curve = [r.value for r in rows if r.name == "train_mse" and r.param_set == rows[0].param_set]
    assert len(curve) >= 20 and curve[-1] < curve[0]  # a falling loss curve per set


def test_init_again_in_a_project_of_an_older_init_or_edited_example(tmp_path: Path, monkeypatch):
    """An example from an older `assay init` (or edited, as it invites) was said to be "not
    installed", and an appended `logs/` overrode the user's own `!logs/`."""
    from assay.scaffold import init_project

    folder = tmp_path / "older"
    init_project(folder)
    example = folder / "experiments" / "example.py"
    example.write_text(example.read_text() + "\n# my edit\n")
    (folder / ".gitignore").write_text("*.pyc\n!logs/\n")

    done = init_project(folder)

    assert done.example == "assay run example -p example"
    assert "logs/" not in done.ignore_lines
    assert (folder / ".gitignore").read_text().count("logs/") == 1
