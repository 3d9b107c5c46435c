"""What assay prints, as a new user meets it: paths that open from a sub-folder, runs that
differ only by --set told apart in `assay ls`, a run still going on in `assay show`,
metrics only one run logged in `assay compare`, `assay why` without doubled words, and
the position `assay params` gives a set picked with -n / -i.

The commands run in a subprocess (``run_cli``) on a copy of the ``basic`` test project.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from conftest import edit, run_cli
from test_cli_s26 import printed_paths


def cells(text: str, column: int) -> list[list[str]]:
    """The lines of one column of the table rich printed, grouped by table row (a row
    starts where the first column is not empty)."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        parts = [part.strip() for part in line.split("│")[1:-1]]
        if parts[0]:
            rows.append([])
        if parts[column]:
            rows[-1].append(parts[column])
    return rows


# -- F6: the paths a run prints open from where it ran -------------------------------------


def test_a_run_in_a_sub_folder_prints_paths_that_open_from_there(tmp_project: Path):
    here = tmp_project / "notebooks"
    here.mkdir()

    result = run_cli("run", "diamond", "-p", "two", cwd=here)
    assert result.code == 0, result

    for label in ("Log", "Report"):
        (path,) = printed_paths(result.stdout, label)
        assert (here / path).is_file(), result  # outside the current folder: absolute
    paths = run_cli("run", "diamond", "-p", "two", "--paths", cwd=here)
    folders = [line.split()[-1] for line in paths.stdout.splitlines()]
    assert folders and all((here / folder).is_dir() for folder in folders), paths


# -- F13: assay ls ---------------------------------------------------------------------------

LONG_NAMES = """
from experiments.diamond import Params


def get_params():
    return [Params(name=f"line-learning_rate=0.0{i}-epochs=20", scale=i) for i in range(1, 6)]
"""


def test_ls_shows_the_overrides_and_whole_names(tmp_project: Path):
    (tmp_project / "params" / "long.py").write_text(LONG_NAMES)
    for offset in (1, 2):
        ran = run_cli("run", "diamond", "-p", "long", "--set", f"offset={offset}", "-q",
                      cwd=tmp_project)  # fmt: skip
        assert ran.code == 0, ran
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="80", NO_COLOR="1", TERM="dumb")  # rich's width when piped
    listed = subprocess.run([sys.executable, "-m", "assay", "ls"], cwd=tmp_project, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert listed.returncode == 0, listed

    runs = cells(listed.stdout, 5)  # the parameter sets, newest run first
    assert [" ".join(lines).split("--set")[-1].split() for lines in runs] == [
        ["offset=2"],
        ["offset=1"],
    ], listed.stdout
    for lines in runs:
        text = "".join(lines).split("--set")[0]  # a name folded over lines, joined again
        for i in range(1, 4):
            assert f"line-learning_rate=0.0{i}-epochs=20" in text, listed.stdout
        assert "…" not in text and "(+2 more)" in text, listed.stdout


# -- F17: assay show of a run still going on ------------------------------------------------

HOLDING = """
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher

GO = Path(__file__).resolve().parent.parent / "go.flag"


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["first"], cachers=[JsonCacher])
def first(record):
    return record.params.n


@assay.stage(inputs=["first"], outputs=["held"], cachers=[JsonCacher])
def hold(record, first):
    deadline = time.monotonic() + 120  # never left running by a failed test
    while not GO.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return first + 1


@assay.stage(inputs=["held"], outputs=["last"], cachers=[JsonCacher])
def last(record, held):
    return held + 1


def get_params():
    return [Params(name="only")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        first(record)
        hold(record)
        last(record)
"""


def test_show_of_a_running_run_shows_its_stages_so_far(tmp_project: Path):
    (tmp_project / "experiments" / "holding.py").write_text(HOLDING)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    running = subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "holding", "-q"], cwd=tmp_project, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_stage(tmp_project / "logs", "hold [only]", running)
        shown = run_cli("show", "latest", cwd=tmp_project)
    finally:
        (tmp_project / "go.flag").touch()
        output, _ = running.communicate(timeout=120)
    assert running.returncode == 0, output

    assert shown.code == 0 and "running" in shown.stdout.splitlines()[0], shown
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in shown.stdout.splitlines()]
    assert ["only", "first", "executed"] in rows and ["only", "hold", "running"] in rows, shown
    assert "Of 3 stage run(s) to execute: 1 done, 1 running, 1 pending." in shown.text, shown


def wait_for_stage(logs: Path, stage_run: str, process: subprocess.Popen) -> None:
    """Until the run's progress file names ``stage_run`` as running."""
    deadline = time.monotonic() + 60
    while True:
        for progress in logs.glob("*.progress.json"):
            try:
                if stage_run in json.loads(progress.read_text()).get("current", []):
                    return
            except (OSError, ValueError):  # being replaced right now
                pass
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)


# -- F14: metrics only one run logged ---------------------------------------------------------

SCORED = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    extra: bool = False


@assay.stage(outputs=["score"], cachers=[JsonCacher])
def evaluate(record):
    record.log_metric("score", 0.5)
    if record.params.extra:
        record.log_metric("extra", 1.0)
    return 0.5


def get_params():
    return [Params(name="a"), Params(name="b")]


def run(param_sets, manager):
    for params in param_sets:
        evaluate(assay.Record(manager, params))
"""


def test_compare_counts_metrics_only_one_run_logged_apart(tmp_project: Path):
    from assay.metrics import compare_metrics

    (tmp_project / "experiments" / "scored.py").write_text(SCORED)
    assert run_cli("run", "scored", "-q", cwd=tmp_project).code == 0
    second = run_cli("run", "scored", "-n", "a", "--set", "extra=True", "-q", cwd=tmp_project)
    assert second.code == 0, second

    changes = compare_metrics(tmp_project / "assay.db", 1, 2)
    assert {(c.param_set, c.name): (c.only_in, c.changed) for c in changes} == {
        ("a", "score"): (None, False),
        ("b", "score"): ("A", False),
        ("a", "extra"): ("B", False),
    }
    result = run_cli("compare", "1", "2", cwd=tmp_project)
    assert result.code == 0, result
    assert "0 of 1 metric(s) differ, 1 only in A, 1 only in B." in result.text, result


def test_a_metric_logged_as_nan_is_told_from_one_not_logged():
    from assay.cli_output import print_metric_changes
    from assay.metrics import MetricChange

    console = Console(file=io.StringIO(), width=200)
    print_metric_changes(
        console,
        [MetricChange("a", "fit", "loss", None, 1.0), MetricChange("a", "fit", "f1", None, 1.0,
                                                                   only_in="B")],
    )  # fmt: skip
    rows = [
        [c.strip() for c in line.split("│")[1:-1]] for line in console.file.getvalue().splitlines()
    ]

    assert ["a", "fit", "loss", "nan", "1", "-"] in rows
    assert ["a", "fit", "f1", "-", "1", "-"] in rows
    assert "1 of 1 metric(s) differ, 1 only in B." in console.file.getvalue()


# -- F16: assay why without doubled words ---------------------------------------------------

TWINS = """
from experiments.good import Params


def get_params():
    return [Params(name="alpha"), Params(name="twin")]
"""


def test_why_says_reused_and_shared_once(bad_project: Path):
    (bad_project / "params" / "twins.py").write_text(TWINS)  # the same but their names
    assert run_cli("run", "good", "-p", "twins", "-q", cwd=bad_project).code == 0

    said = run_cli("why", "good", "-p", "twins", "--set", "seed=5", cwd=bad_project).text

    assert "reused load [alpha]: artifact made by run 1 (" in said, said
    assert ("shared train [twin]: same inputs as train [alpha], which executes earlier in "
            "this run") in said, said  # fmt: skip
    assert "reused: " not in said


BRANCHY = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    model: str = "logistic"
    C: float = 1.0
    depth: int = 3


@assay.stage(outputs=["fitted"], cachers=[JsonCacher])
def train(record):
    p = record.params
    if p.model == "logistic":
        return {"C": p.C, "iterations": 1000}
    return {"depth": p.depth}


def get_params():
    return [Params(name=f"logistic-{c}", C=c) for c in (0.1, 1.0, 10.0)] + [
        Params(name="forest", model="forest")
    ]


def run(param_sets, manager):
    for params in param_sets:
        train(assay.Record(manager, params))
"""


def test_why_and_dry_after_an_edit_do_not_take_one_set_s_reads_for_all(tmp_project: Path):
    """``train`` reads (model, C) for the logistic sets, (model, depth) for the forest one.
    Once its code changed, each set was keyed with the fields the set run last had read
    (the forest's): the three logistic sets, which differ in C only, looked like one
    stage run ("shared", counted once by --dry) though the run executed all three."""
    experiment = tmp_project / "experiments" / "branchy.py"
    experiment.write_text(BRANCHY)
    assert run_cli("run", "branchy", "-q", cwd=tmp_project).code == 0
    edit(experiment, '"iterations": 1000', '"iterations": 1001')

    said = run_cli("why", "branchy", cwd=tmp_project).text
    dry = run_cli("run", "branchy", "--dry", cwd=tmp_project).text
    ran = run_cli("run", "branchy", cwd=tmp_project).text

    assert "shared" not in said, said
    assert said.count("executes train [") == 4, said
    assert "4 to execute, 0 cached" in dry, dry
    assert ": 4 executed." in ran, ran


def test_a_missing_shared_file_is_said_missing_for_the_set_it_was_deleted_through(
    bad_project: Path,
):
    """The warning named only the set that made the entry ("parameter set 'alpha'"), not
    the one whose by-name folder the researcher had deleted the file from."""
    (bad_project / "params" / "twins.py").write_text(TWINS)
    assert run_cli("run", "good", "-p", "twins", "-q", cwd=bad_project).code == 0
    (bad_project / "data" / "cache" / "by-name" / "good" / "twin" / "train" / "total.json").unlink()

    said = run_cli("run", "good", "-p", "twins", "-n", "twin", cwd=bad_project)

    assert said.code == 0, said
    assert "Cached artifact 'total' of stage 'train' (parameter set 'alpha'): " in said.text
    assert "is missing. Parameter set 'twin' shares it. It is not reused" in said.text, said


COMBINED = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    value: int = 1
    unread: int = 0

    def doubled(self):
        return self.value * 2


@assay.stage(outputs=["score"], cachers=[JsonCacher])
def score(record):
    return record.params.value


@assay.aggregate(inputs=["score"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, score):
    return sum(score.values())


def get_params():
    return [Params(name="x"), Params(name="y", value=2)]


def run(param_sets, manager):
    for params in param_sets:
        score(assay.Record(manager, params))
    total(assay.Record(manager, None))
"""


def test_why_says_what_changed_in_the_parameter_sets_an_aggregate_combines(tmp_project: Path):
    """It said "no cached artifact with these ingredients (it was removed from the cache, or
    was never computed with them)", as if the cache had lost something."""
    experiment = tmp_project / "experiments" / "combined.py"
    experiment.write_text(COMBINED)
    assert run_cli("run", "combined", "-q", cwd=tmp_project).code == 0

    unread = run_cli("why", "combined", "--set", "unread=5", cwd=tmp_project).text
    edit(experiment, "return self.value * 2", "return self.value * 3")
    method = run_cli("why", "combined", cwd=tmp_project).text
    renamed = run_cli("why", "combined", "-n", "x", cwd=tmp_project).text

    assert ("executes total [aggregate]: parameter set(s) it combines changed: x, y (an "
            "aggregate is keyed on all of their fields)") in unread, unread  # fmt: skip
    assert "reused score [x]" in unread and "1 of 3 stage runs execute" in unread, unread
    assert "the code of a parameter class it combines changed" not in unread, unread
    assert ("executes total [aggregate]: the code of a parameter class it combines "
            "changed") in method, method  # fmt: skip
    assert ("executes total [aggregate]: no cached artifact: it was never computed for "
            "these parameter sets together (its folder, aggregate-") in renamed, renamed  # fmt: skip
    for said in (unread, method, renamed):
        assert "with these ingredients" not in said, said


def test_explain_says_executed_once_for_a_stage_run_while_run_is_planned(tmp_project: Path):
    assert run_cli("run", "reads_results", "-q", cwd=tmp_project).code == 0

    said = run_cli("run", "reads_results", "--explain", cwd=tmp_project).text

    assert ("executed score [mid]: output(s) ['score'] have no cacher (while run() was planned: "
            "it read a result)") in said, said  # fmt: skip


# -- assay params -n / -i: the set's position in the file -------------------------------------


def test_params_numbers_a_picked_set_by_its_position_in_the_file(tmp_project: Path):
    from assay.cli_output import print_params
    from conftest import load_experiment_module

    sets = load_experiment_module(tmp_project, "diamond").get_params()
    console = Console(file=io.StringIO(), width=200)

    print_params(console, sets[1:], indices=[1])

    rows = [
        [c.strip() for c in line.split("│")[1:-1]] for line in console.file.getvalue().splitlines()
    ]
    assert [row[:2] for row in rows if row] == [["1", "b"]], console.file.getvalue()


@pytest.mark.parametrize("picked", [["-n", "b"], ["-i", "-1"], ["-i", "1"]])
def test_assay_params_numbers_a_picked_set_as_i_takes_it(tmp_project: Path, picked: list):
    """`assay params -i -1` numbered the set it picked 0 (its place among those picked)."""
    result = run_cli("params", "diamond", "-p", "two", *picked, cwd=tmp_project)

    assert result.code == 0, result
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    assert [row[:2] for row in rows if row] == [["1", "b"]], result


# -- where a run's stages ran ----------------------------------------------------------------


def test_show_and_the_report_say_where_the_stages_ran(tmp_project: Path):
    """Only the command line told it, and nothing for runs started from Python."""
    for args in ([], ["--parallel", "2"]):
        ran = run_cli("run", "diamond", "-p", "two", "--overwrite", *args, cwd=tmp_project)
        assert ran.code == 0, ran
    shown = {ref: run_cli("show", ref, cwd=tmp_project).text for ref in ("latest", "1")}
    assert "executed on one process (serial)" in shown["1"], shown["1"]
    assert "executed on 2 local worker processes" in shown["latest"], shown["latest"]
    report = sorted((tmp_project / "reports").glob("diamond-0002-*/index.html"))[0].read_text()
    assert "Executed on" in report and "2 local worker processes" in report
    assert "no stage executed" not in shown["latest"] + report

    cached = run_cli("run", "diamond", "-p", "two", "--parallel", "2", cwd=tmp_project)
    assert cached.code == 0, cached
    said = run_cli("show", "latest", cwd=tmp_project).text
    assert ("2 local worker processes, asked for; no stage executed (all cached)") in " ".join(
        said.split()
    ), said


@pytest.mark.parametrize("stop", ["fail", "interrupt"])
def test_a_run_whose_only_stage_to_run_stopped_did_not_take_all_from_the_cache(
    tmp_project: Path, stop: str
):
    """`first` cached, `second` failing (or Ctrl-C): show and the report said "no stage
    executed (all cached)", as they did for a run still going on, or killed."""
    (tmp_project / "fail.flag").touch()
    assert run_cli("run", "flaky", cwd=tmp_project).code != 0  # first executes, second fails
    (tmp_project / "fail.flag").unlink()
    (tmp_project / f"{stop}.flag").touch()
    assert run_cli("run", "flaky", cwd=tmp_project).code != 0  # first cached, second stops

    said = " ".join(run_cli("show", "latest", cwd=tmp_project).text.split())
    assert "executed on one process (serial)" in said, said
    assert "no stage executed" not in said, said
    report = sorted((tmp_project / "reports").glob("flaky-0002-*/index.html"))[0].read_text()
    assert "Executed on" in report and "no stage executed" not in report


def test_a_run_going_on_is_not_said_to_have_taken_all_from_the_cache():
    from assay.run_record import executed_on, stages_ran

    assert stages_ran("running", []) and stages_ran("interrupted", ["cached"])
    assert not stages_ran("completed", ["cached", "skipped"])
    assert executed_on({"executor": "serial"}, stages_ran("running", [])) == (
        "one process (serial)"
    )


def test_a_run_on_an_existing_dask_cluster_names_its_address():
    from assay.run_record import executed_on

    assert executed_on({"executor": "dask", "dask_address": "tcp://h:8786"}) == (
        "the Dask cluster at tcp://h:8786"
    )
    assert executed_on({"executor": "dask", "parallel": 2}) == "a local Dask cluster"


def test_a_command_typed_outside_the_project_says_where_it_was_typed(tmp_project: Path):
    """Its relative paths were shown with nothing to say what they are relative to."""
    sub = tmp_project / "notes"
    sub.mkdir()
    ran = run_cli("run", "../experiments/diamond.py", "-p", "two", cwd=sub)
    assert ran.code == 0, ran
    said = run_cli("show", cwd=tmp_project).text
    assert f"typed in {sub}" in said, said
    report = sorted((tmp_project / "reports").glob("diamond-0001-*/index.html"))[0].read_text()
    assert "Typed in" in report and str(sub) in report
    again = run_cli("run", "diamond", "-p", "two", cwd=tmp_project)
    assert again.code == 0 and "typed in" not in run_cli("show", cwd=tmp_project).text


PLAIN_PARAMS = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    return record.params.n


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    make(assay.Record(manager, param_sets[0]))
"""


def test_why_says_the_parameter_class_now_has_methods_of_its_own(tmp_project: Path):
    """Keys of a class with methods cover the ones a stage uses: the first method changes
    every key of the class's stages, and why said "no cached artifact with these
    ingredients (it was removed from the cache ...)"."""
    experiment = tmp_project / "experiments" / "plain_params.py"
    experiment.write_text(PLAIN_PARAMS)
    assert run_cli("run", "plain_params", "-q", cwd=tmp_project).code == 0
    edit(
        experiment,
        "    n: int = 1\n",
        "    n: int = 1\n\n    def twice(self):\n        return 2 * self.n\n",
    )

    said = run_cli("why", "plain_params", cwd=tmp_project).text

    assert "executes make [p]: its parameter class Params now has methods" in said, said
    assert "with these ingredients" not in said, said


OBJECT_FIELD = """
from dataclasses import dataclass, field

import assay
from assay.caching import JsonCacher


class Scaler:
    def __init__(self, k):
        self.k = k


@dataclass
class Params(assay.ExperimentParameters):
    scaler: Scaler = field(default_factory=lambda: Scaler(3))


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def scale(record):
    return 2 * record.params.scaler.k


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    scale(assay.Record(manager, param_sets[0]))
"""


def test_why_names_an_object_field_whose_repr_shows_nothing(tmp_project: Path):
    """``Scaler(3)`` and ``Scaler(4)`` both read ``<Scaler object>``: why said "no cached
    artifact with these ingredients (it was removed from the cache ...)"."""
    experiment = tmp_project / "experiments" / "object_field.py"
    experiment.write_text(OBJECT_FIELD)
    assert run_cli("run", "object_field", "-q", cwd=tmp_project).code == 0
    edit(experiment, "Scaler(3)", "Scaler(4)")

    said = run_cli("why", "object_field", cwd=tmp_project).text

    assert "executes scale [p]: a parameter it reads changed: scaler <" in said, said
    assert "with these ingredients" not in said, said


def test_why_says_a_stage_run_s_last_attempt_failed_or_was_interrupted(tmp_project: Path):
    """`assay why` said "it was never computed" for a stage whose last attempt failed."""
    (tmp_project / "fail.flag").write_text("")
    assert run_cli("run", "flaky", cwd=tmp_project).code != 0  # run 1: second fails

    failed = run_cli("why", "flaky", cwd=tmp_project)

    assert "second [a]: no cached artifact: its last attempt, in run 1, failed" in failed.text
    (tmp_project / "fail.flag").unlink()
    (tmp_project / "interrupt.flag").write_text("")
    assert run_cli("run", "flaky", cwd=tmp_project).code != 0  # run 2: second interrupted
    (tmp_project / "interrupt.flag").unlink()

    interrupted = run_cli("why", "flaky", cwd=tmp_project)

    assert "its last attempt, in run 2, was interrupted" in interrupted.text, interrupted
    assert run_cli("run", "flaky", cwd=tmp_project).code == 0
    assert "last attempt" not in run_cli("why", "flaky", cwd=tmp_project).text
