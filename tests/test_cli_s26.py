"""The command line as a new user meets it: tab completion, --debug where it is put,
Ctrl-C on commands that run nothing, paths that open from the current folder, flags
that cannot go together, and what ls, show and compare tell.

Every test drives the real ``assay`` command in a subprocess (completion through
click's ``_ASSAY_COMPLETE`` protocol, as bash calls it) on a copy of a test project.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.store import RunStore
from conftest import copy_project, free_port, run_cli

ASSAY = Path(sys.executable).parent / "assay"


def complete(line: str, cwd: Path) -> list[str]:
    """What bash's completion gets for the last word of ``line`` (``"assay show "``: an
    empty word): ``["plain,latest", "file,params/", ...]``. Nothing goes to stderr."""
    words = shlex.split(line)
    current = len(words) if line.endswith(" ") else len(words) - 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COMP_WORDS=line, COMP_CWORD=str(current), _ASSAY_COMPLETE="bash_complete")
    proc = subprocess.run([ASSAY], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return [line for line in proc.stdout.splitlines() if line]  # no candidates: one "\n"


def runs_in(root: Path) -> list:
    with RunStore(root / "assay.db") as store:
        return store.list_runs(limit=None)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    """The basic project after `assay run diamond -p two` (not to be changed by tests)."""
    root = copy_project("basic", tmp_path_factory.mktemp("ran"))
    result = run_cli("run", "diamond", "-p", "two", "-q", cwd=root)
    assert result.code == 0, result
    return root


# -- F3: tab completion ----------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["assay show ", "assay compare 1 ", "assay report ", "assay export notebook "],
)
def test_run_arguments_complete_run_numbers_and_latest(ran: Path, line: str):
    assert complete(line, ran) == ["plain,latest", "plain,1"]


def test_a_run_id_completes_from_its_start(ran: Path):
    run_id = runs_in(ran)[0].id
    assert complete("assay show diam", ran) == [f"plain,{run_id}"]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("assay run experiments/dia", "file,experiments/dia"),
        ("assay run ../basic/experiments/x.py", "file,../basic/experiments/x.py"),
        ("assay run diamond -p params/", "file,params/"),
        ("assay why diamond -p ./", "file,./"),
    ],
)
def test_what_looks_like_a_path_completes_as_a_file(ran: Path, line: str, expected: str):
    assert complete(line, ran) == [expected]


def test_names_still_complete_from_the_project_folders(ran: Path):
    assert complete("assay run dia", ran) == ["plain,diamond"]
    assert complete("assay run diamond -p t", ran) == ["plain,three", "plain,two"]


def test_set_names_and_stages_complete_from_the_experiment_s_runs(ran: Path):
    assert complete("assay run diamond -n ", ran) == ["plain,a", "plain,b"]
    stages = complete("assay run diamond --overwrite-stage ", ran)
    assert {"plain,load", "plain,double", "plain,combine", "plain,summarize"} <= set(stages)
    assert complete("assay run lazy -n ", ran) == []  # no runs of it


def test_lineage_completes_artifacts_level_by_level(ran: Path):
    assert complete("assay lineage diamond/a/comb", ran) == ["plain,diamond/a/combine/combined"]
    every = complete("assay lineage ", ran)
    assert "plain,diamond/b/double/doubled" in every
    assert complete("assay lineage ./data/", ran) == ["file,./data/"]


def test_experiment_filters_complete(ran: Path):
    assert complete("assay ls -e d", ran) == ["plain,diamond"]
    assert complete("assay cache ls -e ", ran) == ["plain,diamond"]


def test_completion_offers_nothing_rather_than_a_traceback(tmp_path: Path):
    (tmp_path / "assay.toml").write_text("this is not toml [\n")
    for line in ("assay show ", "assay run ", "assay run x -n ", "assay lineage "):
        assert complete(line, tmp_path) == []  # and nothing on stderr


# -- F5: --debug after the command -------------------------------------------------------


def test_debug_after_the_command_shows_the_traceback(bad_project: Path):
    plain = run_cli("run", "raising_run", cwd=bad_project)
    debug = run_cli("run", "raising_run", "--debug", cwd=bad_project)

    assert plain.code == 1 and "most recent call last" not in plain.output, plain
    assert debug.code == 1 and "Traceback (most recent call last)" in debug.output, debug
    assert "KeyError" in debug.output, debug


def test_debug_and_mistyped_options_are_not_taken_for_a_run(ran: Path):
    shown = run_cli("show", "--debug", cwd=ran)
    assert shown.code == 0 and "Run 1" in shown.text, shown

    for args in (["show", "--bogus"], ["compare", "1", "--nope"], ["report", "--al"]):
        result = run_cli(*args, cwd=ran)
        assert result.code == 2 and "No such option" in result.text, result
        assert "No run" not in result.text, result
    assert run_cli("show", "-1", cwd=ran).code == 0  # a run counted back is still one


# -- F4: Ctrl-C on commands that run nothing --------------------------------------------


def interrupted(args: list[str], cwd: Path, ready) -> subprocess.CompletedProcess:
    """Start ``assay ARGS``, press Ctrl-C once ``ready()`` holds, and wait for its end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", TERM="dumb")
    proc = subprocess.Popen(
        [ASSAY, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready(proc):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("command", ["why", "params"])
def test_ctrl_c_while_loading_says_nothing_was_changed(tmp_project: Path, command: str):
    marker = tmp_project / "importing.txt"
    (tmp_project / "experiments" / "slow_import.py").write_text(
        "import time\nfrom pathlib import Path\n"
        f"Path({str(marker)!r}).touch()\ntime.sleep(60)\n"
        "def run(param_sets, manager):\n    pass\n"
    )

    result = interrupted([command, "slow_import"], tmp_project, lambda _: marker.exists())

    assert result.returncode == 130, result
    assert "Interrupted. Nothing was changed: this command only reads." in result.stderr
    assert "cached" not in result.stderr and "same command" not in result.stderr, result


def test_ctrl_c_stops_the_dashboard_quietly(tmp_project: Path):
    pytest.importorskip("uvicorn")
    port = free_port()
    seen: list[str] = []

    def serving(proc) -> bool:
        seen.append(proc.stdout.readline())
        return "http://" in seen[-1]

    result = interrupted(["ui", "--port", str(port)], tmp_project, serving)

    assert result.returncode == 0, result
    assert "Dashboard stopped." in result.stdout, result
    assert "Interrupted" not in result.stderr and "cached" not in result.stderr, result


def test_an_interrupted_run_says_once_that_its_stages_stay_cached(tmp_project: Path):
    (tmp_project / "interrupt.flag").touch()

    result = run_cli("run", "flaky", "--no-report", cwd=tmp_project)

    assert result.code == 130, result
    assert result.text.count("cached") == 1, result
    assert "Run the same command again to continue where it stopped." in result.text, result


# -- F6, F17: paths that open from here --------------------------------------------------


def printed_paths(text: str, label: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(label)]


def test_paths_printed_in_a_sub_folder_open_from_there(ran: Path, tmp_path: Path):
    here = ran / "notebooks"
    here.mkdir(exist_ok=True)

    notebook = run_cli("export", "notebook", "-o", "mine.ipynb", cwd=here)
    assert printed_paths(notebook.stdout, "Notebook") == ["mine.ipynb"], notebook
    assert (here / "mine.ipynb").is_file()

    rebuilt = run_cli("report", "1", cwd=here)
    assert rebuilt.code == 0, rebuilt
    for line in rebuilt.stdout.splitlines():
        assert (here / line).is_file(), rebuilt
    at_root = run_cli("report", "1", cwd=ran)
    assert at_root.stdout.splitlines()[-1] == os.path.join("reports", "index.html"), at_root


def test_show_names_the_run_s_log_and_report(ran: Path):
    result = run_cli("show", "1", cwd=ran)
    run_id = runs_in(ran)[-1].id

    assert printed_paths(result.stdout, "Log") == [f"logs/{run_id}.log"], result
    assert printed_paths(result.stdout, "Report") == [f"reports/{run_id}/index.html"], result


# -- F15: the command as typed ------------------------------------------------------------


def test_python_dash_m_assay_is_recorded_as_typed(tmp_project: Path):
    result = run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project)
    assert result.code == 0, result

    command = runs_in(tmp_project)[0].command
    assert shlex.split(command) == [sys.executable, "-m", "assay", "run", "diamond", "-p",
                                    "two", "-q"]  # fmt: skip


# -- F10: flags that cannot go together ----------------------------------------------------


@pytest.mark.parametrize(
    "args, said",
    [
        (["run", "diamond", "--executor", "serial", "--parallel", "2"], "--executor serial"),
        (["run", "diamond", "--dask-address", "tcp://h:8786"], "--executor dask"),
        (["run", "diamond", "--set", "n=1", "--set", "n=2"], "--set gives n twice"),
        (["why", "diamond", "--set", "n=1", "--set", "n=2"], "--set gives n twice"),
        (["params", "diamond", "--set", "n=1", "--set", "n=2"], "--set gives n twice"),
        (["run", "diamond", "--dry", "--paths"], "give one"),
        (["report", "1", "--all"], "--all rebuilds the report of every run"),
    ],
)
def test_flags_that_cannot_go_together_are_a_usage_error(ran: Path, args: list, said: str):
    result = run_cli(*args, cwd=ran)

    assert result.code == 2, result
    assert said in result.text, result


def test_a_dry_run_says_which_flags_do_nothing(ran: Path):
    result = run_cli("run", "diamond", "-p", "two", "--dry", "--store-full", "--notes", "x",
                     cwd=ran)  # fmt: skip

    assert result.code == 0, result
    assert "--dry only plans" in result.text and "--notes, --store-full do nothing" in result.text


def test_params_picks_sets_as_run_does(ran: Path):
    result = run_cli("params", "diamond", "-p", "two", "-n", "b", cwd=ran)

    assert result.code == 0 and "1 parameter set(s)" in result.text, result
    assert run_cli("params", "diamond", "-p", "two", "-i", "-1", cwd=ran).text == result.text


# -- F13, F14: ls and compare ------------------------------------------------------------------


def test_ls_says_how_many_runs_it_hides_and_which_experiments_have_runs(tmp_project: Path):
    for _ in range(2):
        assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0

    listed = run_cli("ls", "-n", "1", cwd=tmp_project)
    assert "1 of 2 runs shown; -n 0 shows all" in listed.text, listed
    assert "runs shown" not in run_cli("ls", cwd=tmp_project).text

    unknown = run_cli("ls", "-e", "diamnd", cwd=tmp_project)
    assert unknown.code == 0 and "There are runs of: diamond" in unknown.text, unknown


def test_compare_says_a_run_is_itself_and_tells_notes_and_one_sided_artifacts(
    tmp_project: Path,
):
    assert run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project).code == 0
    only_a = run_cli("run", "diamond", "-p", "two", "-n", "a", "--notes", "a alone", "-q",
                     cwd=tmp_project)  # fmt: skip
    assert only_a.code == 0, only_a

    same = run_cli("compare", "latest", "-1", cwd=tmp_project)
    assert same.code == 0 and "RUN A and RUN B are the same run, 2" in same.text, same

    result = run_cli("compare", "1", "2", cwd=tmp_project)
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    assert ["setting", "notes", "-", "a alone"] in rows, result
    assert ["artifact only in A", "b / combine / combined"] in [row[:2] for row in rows], result
    assert "1 artifact(s) changed, 4 only in A, 4 identical." in result.text, result


# -- F20: help -----------------------------------------------------------------------------


def test_help_shows_optional_runs_and_the_short_cache_option(ran: Path):
    assert "assay show [OPTIONS] [RUN]" in run_cli("show", "--help", cwd=ran).text
    assert "[RUN]" in run_cli("export", "full", "--help", cwd=ran).text
    for command in (["lineage"], ["cache", "ls"], ["cache", "verify"], ["cache", "gc"]):
        assert "-c, --cache" in run_cli(*command, "--help", cwd=ran).text
