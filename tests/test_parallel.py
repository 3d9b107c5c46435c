"""Stage runs on other processes: ``--parallel N`` and ``--executor dask``.

Every test uses real worker processes: a process pool (workers forked, as
from a single-threaded process on Linux, or spawned), or a
``distributed.LocalCluster`` whose workers are separate processes. Most run
the ``scaled`` experiment of ``tests/resources/projects/basic`` (four
parameter sets through ``prepare -> fit -> evaluate -> wait``, then the
aggregate ``leaderboard``; see its docstring for the flag files that make a
stage fail, kill its worker, or wait). Each of its stages notes
``stage:set:pid`` in ``pids.txt``, so a test can tell which process ran it.

A parallel run must leave exactly what a serial run leaves: the
``serial`` fixture runs the experiment once, serially, in its own project
copy; the tests compare artifacts byte for byte, sidecars, statuses,
reportables and values with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import assay
from assay.errors import AssayError, StageFailed
from assay.remote import RemoteStageError
from assay.runner import Observer, WorkerLost
from assay.store import RunStore
from conftest import (
    Calls,
    copy_project,
    edit,
    forget_project_modules,
    free_port,
    local_cluster,
    run_cli,
    run_outside_test,
)

SETS = ("a", "b", "c", "d")
SCALED = sorted(
    [f"{stage}:{p}" for p in SETS for stage in ("prepare", "fit", "evaluate", "wait")]
    + ["leaderboard:aggregate"]
)
"""Every stage run of the ``scaled`` experiment."""

REMOTE = [
    pytest.param({"parallel": 2}, id="process"),
    pytest.param({"executor": "dask", "parallel": 2}, id="dask", marks=pytest.mark.slow),
]
"""The executors that run stages elsewhere, with two workers each (this test process runs
a single thread, so the process pool's workers are forked)."""
SPAWNED = pytest.param({"parallel": 2, "start_method": "spawn"}, id="process-spawned")
"""The process pool with workers spawned, as on macOS and Windows or beside other threads."""

CLI_REMOTE = [
    pytest.param(["--parallel", "2"], id="process"),
    pytest.param(["--executor", "dask", "--parallel", "2"], id="dask", marks=pytest.mark.slow),
]
"""The command line's options for :data:`REMOTE`."""


VOLATILE_META = {"run_id", "created", "write", "duration_s", "project"}  # project: its folder
"""Sidecar fields that differ between any two runs."""


# -- helpers ------------------------------------------------------------------------------


def run(root: Path, experiment: str = "scaled", start_method: str | None = None, **options: Any):
    """Run ``experiment`` from Python; ``start_method`` sets ``ASSAY_START_METHOD`` meanwhile."""
    if start_method is None:
        return assay.run_experiment(experiment, [], project_root=root, **options)
    os.environ["ASSAY_START_METHOD"] = start_method
    try:
        return assay.run_experiment(experiment, [], project_root=root, **options)
    finally:
        del os.environ["ASSAY_START_METHOD"]


def cache_files(root: Path) -> dict[str, Any]:
    """Every file under ``data/cache/objects`` (and ``by-name`` link), comparable across copies.

    Artifact files map to their sha256, sidecars to their content without
    the fields that name the run or its timing, links to their targets.
    """
    cache = root / "data" / "cache"
    found: dict[str, Any] = {}
    for path in sorted((cache / "objects").rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(cache))
        if path.name.endswith(".meta.json"):
            meta = json.loads(path.read_text())
            found[name] = {k: v for k, v in meta.items() if k not in VOLATILE_META}
        else:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted((cache / "by-name").rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(cache))] = os.readlink(path)
    return found


def statuses(manager) -> dict[str, str]:
    return {f"{n.spec.name}:{n.record_label}": n.status for n in manager.plan.nodes}


def reportables(manager) -> list[tuple[str, str, str, Any]]:
    return [(r.qualified_name, r.stage, r.record.name, r.data) for r in manager.reportables]


def values(manager) -> dict[str, dict[str, Any]]:
    """Every record's state, read as a researcher would (loading from the cache)."""
    return {r.name: dict(r.state.items()) for r in manager.records}


def stage_rows(root: Path, run_ref: int | str = "latest") -> dict[str, str]:
    with RunStore(root / "assay.db") as store:
        info = store.get_run(run_ref)
        return {f"{s.stage}:{s.param_set}": s.status for s in store.stages(info.id)}


def worker_pids(root: Path) -> dict[str, int]:
    """``{"stage:set": pid}`` of the last execution of each stage run."""
    pids = {}
    for line in (root / "pids.txt").read_text().splitlines():
        stage, param_set, pid = line.split(":")
        pids[f"{stage}:{param_set}"] = int(pid)
    return pids


def assert_ran_elsewhere(root: Path) -> None:
    """Stages ran in at least two processes, none of them this one."""
    pids = set(worker_pids(root).values())
    assert os.getpid() not in pids
    assert len(pids) >= 2, pids


class Progress(Observer):
    """Notes the stage runs a progress display hears of."""

    def __init__(self):
        self.started: list[str] = []
        self.finished: list[str] = []

    def stage_started(self, node) -> None:
        self.started.append(f"{node.spec.name}:{node.record_label}")

    def stage_finished(self, node) -> None:
        self.finished.append(f"{node.spec.name}:{node.record_label}")


@dataclass
class Outcome:
    files: dict[str, Any]
    statuses: dict[str, str]
    reportables: list
    values: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Outcome:
    """The ``scaled`` experiment run serially once, in a project copy of its own."""
    root = copy_project("basic", tmp_path_factory.mktemp("serial"))

    def serially() -> Outcome:
        manager = run(root)
        return Outcome(cache_files(root), statuses(manager), reportables(manager), values(manager))

    outcome = run_outside_test(serially)
    assert set(outcome.statuses.values()) == {"executed"}
    assert set(worker_pids(root).values()) == {os.getpid()}
    return outcome


# -- the same results as a serial run -----------------------------------------------------


@pytest.mark.parametrize("options", [*REMOTE, SPAWNED])
def test_a_parallel_run_leaves_what_a_serial_run_leaves_byte_for_byte(
    tmp_project: Path, calls: Calls, serial: Outcome, options
):
    progress = Progress()
    manager = run(tmp_project, observer=progress, **options)

    assert sorted(calls.take()) == SCALED
    assert_ran_elsewhere(tmp_project)
    assert sorted(progress.started) == sorted(progress.finished) == SCALED
    files = cache_files(tmp_project)
    assert any(name.endswith("model.pkl") for name in files)  # the Lazy output is cached
    assert any(name.endswith("_reportables.pkl") for name in files)
    assert files == serial.files
    assert statuses(manager) == serial.statuses
    assert reportables(manager) == serial.reportables
    for record in manager.records:
        assert record.reportables == [r for r in manager.reportables if r.record is record]
    assert values(manager) == serial.values
    assert manager.records[-1].state["ranking"] == ["c", "b", "a", "d"]

    with RunStore(tmp_project / "assay.db") as store:
        (only,) = store.list_runs()
        assert only.status == "completed"
        assert only.config["executor"] == options.get("executor", "process")
        assert stage_rows(tmp_project) == dict.fromkeys(SCALED, "executed")
        artifacts = store.artifacts(only.id)
    sidecars = {  # a stage's reportables are cached beside its outputs, but are no artifact
        k: v for k, v in files.items() if k.endswith(".meta.json") and "_reportables" not in k
    }
    assert len(artifacts) == len(sidecars)
    by_key = {f"{m['key']}.{m['output']}": m for m in sidecars.values()}
    for artifact in artifacts:
        meta = by_key[artifact.key]
        assert (artifact.checksum, artifact.size) == (meta["files"][0]["checksum"], meta["size"])
        assert artifact.action == "computed"


@pytest.mark.parametrize("options", REMOTE)
def test_a_run_that_reads_its_results_while_planned_leaves_what_a_serial_run_leaves(
    tmp_path: Path, tmp_project: Path, options
):
    """Its stages run on the workers, read by read, with the same results as in series."""
    alone = copy_project("basic", tmp_path / "serial")
    expected = run_outside_test(lambda: run(alone, "reads_results"))
    progress = Progress()

    manager = run(tmp_project, "reads_results", observer=progress, **options)

    assert manager.results == expected.results
    assert cache_files(tmp_project) == cache_files(alone)
    assert statuses(manager) == statuses(expected)
    ran = sorted(f"{n.spec.name}:{n.record_label}" for n in manager.plan.nodes)
    assert sorted(progress.started) == sorted(progress.finished) == ran
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == "completed"
    said = (tmp_project / "logs" / f"{manager.run_id}.log").read_text()
    assert "then called stage 'raw' for 'mid'" in said  # parallelism lost: said so


READS_AT_THE_END = """
import os, time
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    index: int = 0

@assay.stage(None, ["pid"], [JsonCacher])
def where(record):
    time.sleep(0.2)
    return [record.params.index, os.getpid()]

def get_params():
    return [Params(name=f"s{i}", index=i) for i in range(4)]

def run(param_sets, manager):
    records = [where(assay.Record(manager, params)) for params in param_sets]
    return sorted({record.state["pid"][1] for record in records})
"""


def test_a_run_that_reads_results_after_calling_every_stage_runs_them_all_on_the_workers(
    tmp_project: Path,
):
    (tmp_project / "experiments" / "at_the_end.py").write_text(READS_AT_THE_END)

    manager = run(tmp_project, "at_the_end", parallel=2)

    assert len(manager.results) == 2 and os.getpid() not in manager.results
    said = (tmp_project / "logs" / f"{manager.run_id}.log").read_text()
    assert "the stage runs called so far execute now" in said
    assert "then called stage" not in said  # nothing was called after the read


@pytest.mark.parametrize("options", [pytest.param({}, id="serial"), *REMOTE[:1]])
def test_under_overwrite_a_key_shared_by_parameter_sets_is_computed_once(
    tmp_project: Path, calls: Calls, options
):
    """Twins (same values, other names) share every key. Rewriting an entry while a twin's
    consumer reads it used to fail a ``--parallel --overwrite`` run."""
    from conftest import load_experiment_module

    Params = load_experiment_module(tmp_project, "diamond").Params
    twins = [Params(name="a"), Params(name="twin"), Params(name="b", scale=2)]
    run(tmp_project, "diamond", param_sets=twins)
    fresh = sorted(calls.take())
    assert "load:twin" not in fresh and "square:twin" not in fresh  # a's, reused

    manager = run(tmp_project, "diamond", param_sets=twins, overwrite=True, **options)

    # What a run from an empty cache computes (whichever twin's turn came first):
    assert Counter(c.split(":")[0] for c in calls.take()) == Counter(c.split(":")[0] for c in fresh)
    executed = [n.key for n in manager.plan.nodes if n.status == "executed"]
    assert len(executed) == len(set(executed)) == len(fresh)
    assert manager.run_info.status == "completed"
    assert manager.records[-1].state["summary"] == {"a": 11, "twin": 11, "b": 32}


def test_unnamed_reportables_are_numbered_as_in_a_serial_run(tmp_path: Path):
    numbered = []
    for options in ({}, {"parallel": 2}):
        root = copy_project("basic", tmp_path / str(len(numbered)))
        (root / "unnamed.flag").touch()
        numbered.append([r.qualified_name for r in run(root, **options).reportables])
        forget_project_modules()

    assert numbered[0] == numbered[1]


def test_dry_cache_values_travel_back_instead_of_through_the_cache(
    tmp_project: Path, calls: Calls, serial: Outcome
):
    manager = run(tmp_project, parallel=2, dry_cache=True)

    assert sorted(calls.take()) == SCALED
    assert_ran_elsewhere(tmp_project)
    assert not (tmp_project / "data" / "cache" / "objects").exists()
    assert statuses(manager) == serial.statuses
    assert values(manager) == serial.values
    assert reportables(manager) == serial.reportables


@pytest.mark.parametrize("parallel", [None, 2], ids=["serial", "parallel"])
def test_a_reportable_that_cannot_be_pickled_costs_a_warning_not_the_others(
    tmp_project: Path, parallel
):
    """It cannot travel back from a worker, nor be cached for a later run that reuses the
    stage, as it is: a copy of what it shows does both (it was left out), and the stage's
    other reportables are kept as they are."""
    (tmp_project / "unpicklable-report.flag").touch()
    kept = sorted([f"{s}_evaluate_{n}" for s in SETS for n in ("owner", "score", "lock")])
    kept.append("(Aggregate)_leaderboard_best")

    manager = run(tmp_project, parallel=parallel)

    assert manager.run_info.status == "completed"
    log = (tmp_project / "logs" / f"{manager.run_id}.log").read_text()
    assert "WARNING assay: Reportable 'lock' of stage 'evaluate' (a) cannot be" in log
    assert sorted(r.qualified_name for r in manager.reportables) == sorted(kept)
    reused = run(tmp_project)
    assert sorted(r.qualified_name for r in reused.reportables) == sorted(kept)
    copies = [r for r in reused.reportables if type(r).__name__ == "ReportableCopy"]
    assert len(copies) == len(SETS) and all("_thread.lock" in r.html() for r in copies)


# -- through the command line -------------------------------------------------------------


def test_cli_parallel_run_then_a_rerun_executes_nothing(tmp_project: Path, calls: Calls):
    first = run_cli("run", "scaled", "--parallel", "2", cwd=tmp_project)

    assert first.code == 0, first
    assert "completed" in first.text and "17 executed" in first.text, first
    assert sorted(calls.take()) == SCALED
    assert_ran_elsewhere(tmp_project)

    again = run_cli("run", "scaled", "--parallel", "2", cwd=tmp_project)

    assert again.code == 0, again
    assert calls.take() == []
    assert set(stage_rows(tmp_project).values()) == {"cached", "skipped"}
    assert "13 cached, 4 not needed" in again.text, again


MODULES_SEEN = """
import os, sys
from dataclasses import dataclass
import assay

@dataclass
class Params(assay.ExperimentParameters):
    index: int = 0

@assay.stage(None, ["seen"])
def look(record):
    with open("seen.txt", "a") as out:
        out.write(f"{os.getpid()} {'assay.cli' in sys.modules}\\n")
    return record.params.index

def get_params():
    return [Params(name=f"s{i}", index=i) for i in range(4)]

def run(param_sets, manager):
    for params in param_sets:
        look(assay.Record(manager, params))
"""


@pytest.mark.parametrize("how", REMOTE)
def test_workers_of_the_assay_command_do_not_import_the_command_line_again(
    tmp_project: Path, how: dict
):
    """A spawned worker runs its parent's main script again, unless told otherwise: for the
    `assay` script (pip's wrapper) that is the whole command line, in every worker. (A
    forked worker has it already, at no cost: spawning is what this is about.)"""
    (tmp_project / "experiments" / "seen.py").write_text(MODULES_SEEN)
    script = Path(sys.executable).with_name("assay")
    options = [f"--{k}={v}" for k, v in how.items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["ASSAY_START_METHOD"] = "spawn"
    done = subprocess.run(
        [str(script), "run", "seen", *options], cwd=tmp_project, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    seen = (tmp_project / "seen.txt").read_text().split("\n")[:-1]
    assert len(seen) == 4  # in workers: the main process has imported it
    assert {line.split()[1] for line in seen} == {"False"}, seen


# -- failures -----------------------------------------------------------------------------


def test_a_killed_worker_fails_the_run_cleanly_and_a_rerun_completes_from_the_cache(
    tmp_project: Path, calls: Calls
):
    kill = tmp_project / "kill-b.flag"
    kill.touch()

    result = run_cli("run", "scaled", "--parallel", "2", cwd=tmp_project)

    assert result.code != 0, result
    assert "Traceback" not in result.output, result
    for fragment in ("worker process stopped", "run the same command again"):
        assert fragment in result.text, result
    assert not kill.exists()  # evaluate:b did kill its worker
    first = stage_rows(tmp_project)
    with RunStore(tmp_project / "assay.db") as store:
        failed = store.get_run("latest")
        assert failed.status == "failed"
        assert "worker process stopped" in failed.error
    calls.take()

    rerun = run_cli("run", "scaled", "--parallel", "2", cwd=tmp_project)

    assert rerun.code == 0, rerun
    second = stage_rows(tmp_project)
    finished = [s for s, status in first.items() if status == "executed"]
    assert finished, first
    for stage_run in finished:
        name = stage_run.split(":")[1]
        if stage_run.startswith("prepare:") and first[f"fit:{name}"] != "executed":
            continue  # prepare has no cacher: it runs again when fit must
        assert second[stage_run] in ("cached", "skipped"), (stage_run, first, second)
    resumed = calls.take()
    assert "evaluate:b" in resumed
    assert not set(resumed) & {s for s in finished if not s.startswith("prepare")}
    assert assay.load("ranking", param_set="aggregate", project_root=tmp_project) == list("cbad")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("allowed_failures", "expected"), [(3, "retried"), (0, "failed")], ids=["retry", "no-retry"]
)
def test_a_killed_dask_worker_is_retried_or_fails_cleanly(
    tmp_project: Path, calls: Calls, allowed_failures: int, expected: str
):
    """Dask reschedules a task whose worker died, up to ``allowed-failures`` times."""
    import dask

    (tmp_project / "kill-b.flag").touch()

    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        try:
            manager = run(tmp_project, executor="dask", parallel=2)
            outcome = "retried"
        except WorkerLost as exc:
            outcome = "failed"
            # Every task on the dead worker fails with it, so the stage named may be another.
            assert "worker process stopped" in str(exc) and "KilledWorker" in str(exc)
            assert "run the same command again" in str(exc)

    assert outcome == expected
    assert calls.take().count("evaluate:b") == (2 if outcome == "retried" else 1)
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == ("completed" if outcome == "retried" else "failed")
    if outcome == "failed":
        first = stage_rows(tmp_project)
        manager = run(tmp_project)  # serially: the cache is the same wherever stages run
        finished = {s for s, status in first.items() if status == "executed"}
        assert not set(calls.take()) & {s for s in finished if not s.startswith("prepare")}
    assert manager.records[-1].state["ranking"] == list("cbad")


@pytest.mark.parametrize(
    "options, stopped",
    [
        pytest.param("parallel=2", "A worker process stopped", id="spawned-processes"),
        pytest.param(
            "executor='dask', parallel=2",
            "Could not start or reach the Dask cluster (a local cluster)",
            id="dask-local-cluster",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_a_script_without_a_main_guard_is_told_how_to_fix_it(
    tmp_project: Path, options: str, stopped: str
):
    """Spawned workers import the script again; unguarded, each would start a run (a Dask
    local cluster's workers each started a cluster of their own, and the run hung).

    (Forked workers do not, but a script must run wherever workers are spawned.)"""
    script = tmp_project / "go.py"
    script.write_text(f"import assay\nassay.run_experiment('diamond', {options})\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["ASSAY_START_METHOD"] = "spawn"

    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_project, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip

    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("assay.") and stopped in last, proc.stderr[-3000:]
    assert 'if __name__ == "__main__":' in last, last
    # What each starting worker said, on the terminal too:
    assert "run_experiment() was called by a worker process while it started" in proc.stderr
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == "failed"


@pytest.mark.parametrize(
    ("main_file", "advised"),
    [
        ("/home/me/study/train.py", True),
        (str(Path(assay.__file__).parent / "__main__.py"), False),  # python -m assay
        ("/home/me/.venv/bin/assay", False),  # the console script
        (None, False),  # python -c, a notebook
    ],
)
def test_the_main_guard_advice_is_given_to_scripts_only(monkeypatch, main_file, advised):
    """`assay run` whose Dask worker was killed was told to guard "a script of your own"."""
    import types

    from assay.runner import main_guard_advice

    main = types.ModuleType("__main__")
    if main_file is not None:
        main.__file__ = main_file
    monkeypatch.setitem(sys.modules, "__main__", main)

    advice = main_guard_advice()

    assert bool(advice) == advised
    if advised:
        assert advice.startswith(" If train.py does not call run_experiment() under `if __name__")


def test_parameter_fields_that_cannot_be_pickled_are_named_before_anything_runs(
    tmp_project: Path, calls: Calls
):
    assert len(run(tmp_project, "unsendable", dry_cache=True).plan.nodes) == 3  # fine serially
    calls.take()

    with pytest.raises(AssayError) as info:
        run(tmp_project, "unsendable", parallel=2)

    message = str(info.value)
    for fragment in (
        "parameter set 'lambda', field 'transform'",
        "parameter set 'locked', field 'guard'",
        "<lambda>",
        "lock",
        "nothing was run",
        "picklable",
    ):
        assert fragment in message, message
    assert "'plain'" not in message
    assert calls.take() == []
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == "failed"


def test_a_stage_failing_in_a_worker_shows_its_traceback_and_how_to_resume(
    tmp_project: Path, calls: Calls
):
    (tmp_project / "fail-c.flag").touch()

    result = run_cli("run", "scaled", "--parallel", "2", cwd=tmp_project)

    assert result.code == 1, result
    for fragment in (
        "Stage 'evaluate' failed for parameter set 'c'",
        "ValueError: evaluate refuses parameter set c",
        'scaled.py", line',
        "in evaluate",
        'raise ValueError(f"evaluate refuses parameter set {name}")',
        "-m assay run scaled --parallel 2",
    ):
        assert fragment in result.text, result
    assert "/assay/" not in result.output.replace("projects/basic", ""), result
    assert "^^^" not in result.output, result  # the rebuilt frames carry no column marks
    log = next((tmp_project / "logs").glob("*.log")).read_text()
    assert 'raise ValueError(f"evaluate refuses parameter set {name}")' in log

    forget_project_modules()
    with pytest.raises(StageFailed) as info:
        run(tmp_project, parallel=2)

    assert (info.value.stage, info.value.record_name) == ("evaluate", "c")
    assert isinstance(info.value, ValueError)  # `except ValueError` catches it, as serially
    original = info.value.original
    assert isinstance(original, RemoteStageError) and original.kind == "ValueError"
    assert "evaluate refuses parameter set c" in original.traceback_text
    assert info.value.__cause__ is original


LOCKING = """
import threading
from dataclasses import dataclass
import assay

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1

@assay.stage(outputs=["lock"])
def make_lock(record):
    return threading.Lock()

def get_params():
    return [Params(name="locked")]

def run(param_sets, manager):
    for params in param_sets:
        make_lock(assay.Record(manager, params))
"""


@pytest.mark.parametrize("options", REMOTE)
def test_an_output_that_cannot_travel_back_from_a_worker_is_named(tmp_project: Path, options):
    """It said the stage "could not run in a worker" and to check the project's paths."""
    (tmp_project / "experiments" / "locking.py").write_text(LOCKING)
    assert run(tmp_project, "locking").records[0].state["lock"] is not None  # fine serially

    with pytest.raises(StageFailed) as caught:
        run(tmp_project, "locking", **options)

    message = str(caught.value)
    assert "'make_lock' for parameter set 'locked'" in message, message
    assert "output(s) 'lock' cannot be sent back" in message and "cacher" in message, message
    assert "could not run in a worker" not in message


@pytest.mark.parametrize("options", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_the_run_log_keeps_the_cause_of_a_stage_failure(tmp_project: Path, options: list[str]):
    """From a worker, the log had only the outer exception's frames, not its cause."""
    edit(
        tmp_project / "experiments" / "scaled.py",
        '        raise ValueError(f"evaluate refuses parameter set {name}")',
        "        try:\n            {}['missing_key']\n        except KeyError as cause:\n"
        '            raise ValueError(f"evaluate refuses parameter set {name}") from cause',
    )
    (tmp_project / "fail-c.flag").touch()

    assert run_cli("run", "scaled", *options, cwd=tmp_project).code == 1

    log = next((tmp_project / "logs").glob("*.log")).read_text()
    for fragment in ("KeyError: 'missing_key'", "direct cause of the following exception",
                     "ValueError: evaluate refuses parameter set c"):  # fmt: skip
        assert fragment in log, log


@pytest.mark.parametrize("options", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_a_stage_that_calls_sys_exit_fails_like_one_that_raises(
    tmp_project: Path, calls: Calls, options: list[str]
):
    (tmp_project / "exit-c.flag").touch()

    result = run_cli("run", "scaled", *options, cwd=tmp_project)

    assert result.code == 1, result
    said = "Stage 'evaluate' failed for parameter set 'c': it called sys.exit('evaluate gives up on c')"
    assert said in result.text, result
    assert "in evaluate" in result.text, result
    assert "could not run in a worker" not in result.text, result
    with RunStore(tmp_project / "assay.db") as store:
        failed = store.get_run("latest")
    assert (failed.status, failed.error) == ("failed", said)
    finished = {s for s, status in stage_rows(tmp_project).items() if status == "executed"}
    calls.take()
    (tmp_project / "exit-c.flag").unlink()
    assert run_cli("run", "scaled", *options, cwd=tmp_project).code == 0
    again = calls.take()
    assert "evaluate:c" in again
    cached = {s for s in finished if not s.startswith("prepare:")}  # prepare has no cacher
    assert cached and not cached & set(again), "finished stages stay cached"


def test_a_state_entry_a_stage_did_not_declare_is_named_in_a_worker(tmp_project: Path):
    """A serial run shows it (tests/test_engine.py); a worker gets only declared inputs, and
    says which to declare rather than answering "absent" and so computing something else."""
    result = run_cli("run", "statewise", "--parallel", "2", cwd=tmp_project)

    assert result.code == 1, result
    for fragment in (
        "Stage 'middle' failed for parameter set 'only'",
        "record.state['y'] is not an input of this stage",
        "Declare it: @stage(inputs=[..., 'y'])",
    ):
        assert fragment in result.text, result


@pytest.mark.parametrize("options", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_a_run_goes_on_when_its_console_output_is_closed(tmp_project: Path, options: list[str]):
    """``assay run ... | head`` or a pager quit early: the run completes, the log has it all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "scaled", *options],
        cwd=tmp_project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # before the run writes anything: every write meets a broken pipe
    process.stderr.close()

    assert process.wait(timeout=120) == 0
    with RunStore(tmp_project / "assay.db") as store:
        done = store.get_run("latest")
    assert done.status == "completed", done.error
    log = (tmp_project / "logs" / f"{done.id}.log").read_text()
    for name in SETS:
        assert f"printed while evaluating {name}" in log, log
    assert run_cli("run", "scaled", *options, cwd=tmp_project).code == 0


@pytest.mark.parametrize("options", [*REMOTE, SPAWNED])
def test_worker_logs_and_prints_end_up_in_the_run_log(tmp_project: Path, options):
    manager = run(tmp_project, **options)

    log = (tmp_project / "logs" / f"{manager.run_id}.log").read_text()
    for name in SETS:
        assert f"INFO    experiments.scaled: evaluating {name} in a worker" in log, log
        assert f"printed while evaluating {name}" in log, log


TALKING = """
import logging, sys, warnings
from dataclasses import dataclass
import assay

log = logging.getLogger("talking")

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 0

@assay.stage(None, ["said"])
def talk(record):
    name = record.params.name
    print(f"to stdout from {name}")
    print(f"to stderr from {name}", file=sys.stderr)
    warnings.warn(f"warned about {name}")
    try:
        {}[f"missing {name}"]
    except KeyError:
        log.exception("caught while talking about %s", name)
    log.warning("where %s is", name, stack_info=True)
    return name

def get_params():
    return [Params(name=f"s{i}", n=i) for i in range(2)]

def run(param_sets, manager):
    for params in param_sets:
        talk(assay.Record(manager, params))
"""


@pytest.mark.parametrize("options", [pytest.param([], id="serial"), *CLI_REMOTE])
def test_worker_tracebacks_stderr_and_warnings_come_out_as_in_a_serial_run(
    tmp_project: Path, options: list[str]
):
    """From a worker, ``log.exception``'s traceback was dropped, and what a stage wrote to
    stderr (``warnings.warn`` too) came out on the main process's stdout."""
    (tmp_project / "experiments" / "talking.py").write_text(TALKING)

    result = run_cli("run", "talking", *options, cwd=tmp_project)

    assert result.code == 0, result
    log = next((tmp_project / "logs").glob("*.log")).read_text()
    for name in ("s0", "s1"):
        assert f"to stdout from {name}" in result.stdout, result
        assert f"to stderr from {name}" in result.stderr, result
        assert f"UserWarning: warned about {name}" in result.stderr, result
        assert f"ERROR: caught while talking about {name}" in result.stderr, result
        for said in (f"to stderr from {name}", f"warned about {name}", "caught while"):
            assert said not in result.stdout, result
        # The run's log has the traceback and the stack; the console the line, as serially.
        for fragment in (f"ERROR   talking: caught while talking about {name}\nTraceback",
                         f"KeyError: 'missing {name}'", f"WARNING talking: where {name} is\n"
                         "Stack (most recent call last):", f"to stderr from {name}"):  # fmt: skip
            assert fragment in log, log
        assert f"KeyError: 'missing {name}'" not in result.output, result
    assert 'in talk\n    {}[f"missing {name}"]' in log, log


DIVERGING = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher
from assay.reporting import JsonReporter

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 0

@assay.stage(None, ["model"], [JsonCacher])
def train(record):
    record.log_metric("loss", 0.5, step=0)
    record.report(JsonReporter({"partial": True}, name="partial"))
    raise RuntimeError("diverged")

def get_params():
    return [Params(name="only")]

def run(param_sets, manager):
    for params in param_sets:
        train(assay.Record(manager, params))
"""


@pytest.mark.parametrize("options", [pytest.param({}, id="serial"), *REMOTE])
def test_metrics_and_reportables_of_a_stage_that_then_fails_are_kept(tmp_project: Path, options):
    """A serial run keeps them for the failed run (its report, the run store's metrics);
    from a worker they were lost with the failure."""
    from assay.metrics import read_metrics

    (tmp_project / "experiments" / "diverging.py").write_text(DIVERGING)

    with pytest.raises(StageFailed, match="diverged"):
        run(tmp_project, "diverging", **options)

    with RunStore(tmp_project / "assay.db") as store:
        failed = store.get_run("latest")
    assert failed.status == "failed"
    rows = read_metrics(tmp_project / "assay.db", [failed.number])
    assert [(r.param_set, r.stage, r.name, r.value, r.step) for r in rows] == [
        ("only", "train", "loss", 0.5, 0)
    ]
    report = json.loads((tmp_project / "reports" / failed.id / "run.json").read_text())
    assert "only_train_partial" in json.dumps(report), report


@pytest.mark.parametrize("options", REMOTE)
def test_values_put_in_the_state_by_hand_reach_later_stages_on_workers(tmp_project: Path, options):
    """A worker got only declared inputs, and what a stage put in ``record.state`` by hand
    stayed in its worker: later stages silently saw nothing, under the serial run's key."""
    expected = {"one": {"hand": 10, "seen": True}, "two": {"hand": 20, "seen": True}}
    expected_summary = {"one": {"b": 2, "hand": 10}, "two": {"b": 3, "hand": 20}}

    for _ in ("executed", "reused"):  # what a reused stage put by hand comes back with it
        manager = run(tmp_project, "handset", **options)

        for record in manager.records[:2]:
            assert record.state["total"] == expected[record.name]
            assert record.state["doubled"] == expected[record.name]["hand"] * 2
            # measure has outputs, but its code puts "size" in the state: sized waits for it
            assert record.state["sized"] == record.params.n * 3
        assert manager.records[-1].state["summary"] == expected_summary
    assert sorted(s for s, status in statuses(manager).items() if status == "executed") == [
        "source:one",
        "source:two",
    ]


def test_an_aggregate_reading_an_undeclared_entry_on_a_worker_is_told_to_declare_it(
    tmp_project: Path,
):
    """It silently saw the entry as absent (and cached that under the serial run's key)."""
    edit(tmp_project / "experiments" / "handset.py", 'r.state.get("hand", "MISSING")',
         'r.state.get("a", "MISSING")')  # fmt: skip

    with pytest.raises(StageFailed, match="'a'") as caught:
        run(tmp_project, "handset", parallel=2)

    assert "summary" in str(caught.value) and "input" in str(caught.value), caught.value


GUARDED = """
import threading
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 0

@assay.stage(None, ["a"], [JsonCacher])
def first(record):
    record.state["guard"] = threading.Lock()
    record.state["note"] = "hi"
    return {"a": 1}

@assay.stage(["a", "guard", "note"], ["b"], [JsonCacher])
def second(record, a, guard, note):
    return {"guard": type(guard).__name__, "note": note}

def get_params():
    return [Params(name="only")]

def run(param_sets, manager):
    for params in param_sets:
        second(first(assay.Record(manager, params)))
"""


@pytest.mark.parametrize("options", REMOTE)
def test_an_unpicklable_value_put_in_the_state_by_hand_is_named_when_a_worker_needs_it(
    tmp_project: Path, options
):
    """It said that no earlier stage put ``guard`` there (``first`` did, in its worker)."""
    (tmp_project / "experiments" / "guarded.py").write_text(GUARDED)
    assert run(tmp_project, "guarded").records[0].state["b"]["guard"] == "lock"  # serially

    with pytest.raises(AssayError) as caught:
        run(tmp_project, "guarded", overwrite=True, **options)

    message = str(caught.value)
    for fragment in ("Stage 'second' for parameter set 'only' takes input 'guard'",
                     "stage 'first' put in record.state by hand", "_thread.lock",
                     "cannot be pickled", "Run without --parallel",
                     "make 'guard' an output of 'first' with a cacher"):  # fmt: skip
        assert fragment in message, message
    assert "did not put it there" not in message, message


CHANGED_IN_RUN = """
from dataclasses import dataclass
from pathlib import Path
import assay
from assay.caching import JsonCacher

CONFIG = {"scale": 1}
SEEN = []

@dataclass
class Params(assay.ExperimentParameters):
    i: int = 1

@assay.stage(None, ["v"], [JsonCacher])
def work(record):
    SEEN.append(record.params.name)  # state the stage keeps (not configuration): fine
    return record.params.i * CONFIG["scale"]

def get_params():
    return [Params(name=f"p{i}", i=i) for i in range(1, 5)]

def run(param_sets, manager):
    if (Path(__file__).parent.parent / "change.flag").exists():
        CONFIG["scale"] = 10  # after import: workers import the module themselves
    for params in param_sets:
        work(assay.Record(manager, params))
"""


@pytest.mark.parametrize("options", REMOTE)
def test_a_module_value_that_run_changed_stops_the_run_instead_of_filing_wrong_results(
    tmp_project: Path, options
):
    """Workers computed with the import-time value, under the key of the main process's
    (which holds the changed value): a later serial run reused their wrong results."""
    (tmp_project / "experiments" / "changed.py").write_text(CHANGED_IN_RUN)
    manager = run(tmp_project, "changed", **options)  # values as imported: no complaint
    assert [r.state["v"] for r in manager.records] == [1, 2, 3, 4]
    forget_project_modules()
    (tmp_project / "change.flag").touch()

    with pytest.raises(AssayError) as caught:
        run(tmp_project, "changed", **options)

    message = " ".join(str(caught.value).split())
    for fragment in ("Stage 'work' for parameter set", "module-level value "
                     "experiments.changed.CONFIG, which is {'scale': 10} in the main process "
                     "but {'scale': 1} in the worker", "a value changed after import (in run(), for instance) does not reach them",
                     "Set the value when the module is imported", "a parameter or a stage "
                     "argument"):  # fmt: skip
        assert fragment in message, message
    forget_project_modules()
    assert [r.state["v"] for r in run(tmp_project, "changed").records] == [10, 20, 30, 40]


@pytest.mark.parametrize("options", REMOTE)
def test_ignore_lazy_holds_on_workers(tmp_project: Path, options):
    manager = run(tmp_project, "lazy", ignore_lazy=True, **options)

    assert manager.records[0].state["blob_info"]["type"] == "list"


@pytest.mark.slow
def test_a_fully_cached_run_on_a_local_dask_cluster_prints_nothing_from_its_workers(
    tmp_project: Path,
):
    """An all-cached run stops the cluster while its workers still import the project (the
    warm-up): they used to warn on the terminal about the tasks they cancelled."""
    options = ("run", "scaled", "--executor", "dask", "--parallel", "2", "--no-report")
    assert run_cli(*options, cwd=tmp_project).code == 0

    again = run_cli(*options, cwd=tmp_project)

    assert again.code == 0 and "cached" in again.stdout, again.output
    assert "distributed" not in again.output and "Cancelled" not in again.output, again.output


@pytest.mark.slow
def test_the_workers_of_a_local_dask_cluster_are_told_to_keep_quiet_before_it_stops():
    """A worker's heartbeat that meets the scheduler as it closes logged an ERROR with a
    traceback on the researcher's terminal, after a run that went well (seen in CI). The
    workers of the cluster a run starts are quietened before it is stopped."""
    import logging

    from assay.executor import get_executor

    executor = get_executor("dask", workers=1)
    assert executor.submit(sum, [1, 2]).result(timeout=60) == 3
    client, levels = executor.client, {}
    close = client.close

    def look_then_close(*args: Any, **kwargs: Any) -> Any:
        del client.close  # once: Client.__del__ closes it again
        levels.update(client.run(lambda: logging.getLogger("distributed").level))
        return close(*args, **kwargs)

    client.close = look_then_close
    executor.shutdown()

    assert list(levels.values()) == [logging.CRITICAL]


@pytest.mark.slow
def test_dask_runs_stage_runs_in_the_order_they_were_submitted(tmp_project: Path):
    """As a process pool does: a run's first parameter set first (Dask ranks tasks sent
    within 100 ms of each other alike, and ran the last set first)."""
    run(tmp_project, executor="dask", parallel=1)

    order = list(worker_pids(tmp_project))
    # (Later stages go out as their inputs come back, several at a time: their order
    # is the runner's, depth first.)
    assert [s for s in order if s.startswith("prepare:")] == [f"prepare:{p}" for p in SETS]


@pytest.mark.slow
def test_a_local_dask_cluster_starts_while_another_holds_the_dashboard_port(tmp_project: Path):
    """With ``filterwarnings = error``, Dask's "Port 8787 is already in use" would fail this."""
    taken = socket.socket()
    try:
        taken.bind(("", 8787))
        taken.listen()
    except OSError:
        pass  # another Dask cluster holds it already: the same situation
    try:
        manager = run(tmp_project, "nocacher", executor="dask", parallel=1)
    finally:
        taken.close()

    assert statuses(manager) == dict.fromkeys(
        ["source:one", "process:one", "announce:one"], "executed"
    )


def _checks(server) -> dict:
    """How often (ms) ``server`` checks its event loop, takes system statistics and reads its
    memory use, and whether it takes profiles."""
    callbacks = server.periodic_callbacks
    every = {name: callbacks[name].callback_time for name in ("tick", "monitor", "memory_monitor")
             if name in callbacks}  # fmt: skip
    return {**every, "profile": "profile" in callbacks}


@pytest.mark.slow
def test_the_local_cluster_leaves_the_cores_to_the_stages():
    """The local cluster's processes check their event loops 5 times a second, not 50, read
    their memory use twice a second, not 10 times, take system statistics every 2 s, not
    every 0.5 s, and take no profiles (see ``LOCAL_CLUSTER_CONFIG``)."""
    from assay.executor import get_executor

    executor = get_executor("dask", workers=2)
    try:
        executor._ready()
        client = executor.client
        on_workers = client.run(lambda dask_worker: _checks(dask_worker))
        on_nannies = client.run(lambda dask_worker: _checks(dask_worker), nanny=True)
        on_scheduler = client.run_on_scheduler(lambda dask_scheduler: _checks(dask_scheduler))
        pids = client.run(os.getpid)
    finally:
        executor.shutdown()

    assert len(set(pids.values()) | {os.getpid()}) == 3  # worker processes of their own
    worker = {"tick": 200, "monitor": 2000, "memory_monitor": 500, "profile": False}
    assert list(on_workers.values()) == [worker, worker]
    assert [n["memory_monitor"] for n in on_nannies.values()] == [500, 500]
    assert on_scheduler == {"tick": 200, "monitor": 2000, "profile": False}


@pytest.mark.slow
def test_the_local_cluster_listens_on_this_machine_only():
    """Its scheduler's HTTP server (health, worker pages) listened on every interface."""
    import psutil

    from assay.executor import get_executor

    executor = get_executor("dask", workers=1)
    try:
        executor._ready()
        pids = [os.getpid(), *executor.client.run(os.getpid).values()]
        listening = [
            (pid, c.laddr.ip, c.laddr.port)
            for pid in pids
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
    finally:
        executor.shutdown()

    assert len(listening) >= 3  # the scheduler, its HTTP server, the worker
    assert [entry for entry in listening if entry[1] != "127.0.0.1"] == []


def test_the_cluster_settings_docs_advise_are_those_of_the_local_cluster():
    """docs/scaling.md's settings file and environment variables say what the code does."""
    import dask.config
    import yaml

    from assay.executors.dask import LOCAL_CLUSTER_CONFIG

    docs = (Path(__file__).parents[1] / "docs" / "scaling.md").read_text()
    section = docs.split("### Settings for CPU-bound stages", 1)[1].split("\n### ", 1)[0]
    settings_file = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    exports = section.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    environment = dask.config.collect_env(
        dict(line.removeprefix("export ").split("=", 1) for line in exports)
    )

    for key, value in LOCAL_CLUSTER_CONFIG.items():
        assert dask.config.get(key, config=settings_file) == value, key
        assert dask.config.get(key, config=environment) == value, key
    assert len(exports) == len(LOCAL_CLUSTER_CONFIG)


@contextmanager
def existing_dask_cluster(folder: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """An existing Dask cluster, as an HPC site runs one: ``dask scheduler`` and a
    ``dask worker`` with two worker processes, each a command of its own, started in
    ``folder`` (outside the project, as a site's workers are); yields its address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = ["--no-dashboard"]
    with open(folder / "dask.log", "wb") as output:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(port), *quiet],
            stdout=output, stderr=subprocess.STDOUT, cwd=folder,
        )  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
             "--nthreads", "1", "--local-directory", str(folder / "dask-space"), *quiet],
            stdout=output, stderr=subprocess.STDOUT, cwd=folder, env=env,
        )  # fmt: skip
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """The address of an :func:`existing_dask_cluster` for this test."""
    with existing_dask_cluster(tmp_path) as address:
        yield address


@pytest.mark.slow
def test_an_existing_dask_cluster_runs_the_stages_and_keeps_running(
    tmp_project: Path, calls: Calls, serial: Outcome, dask_cluster: str
):
    result = run_cli("run", "scaled", "--executor", "dask", "--dask-address", dask_cluster,
                     cwd=tmp_project, timeout=240)  # fmt: skip

    assert result.code == 0, result
    assert sorted(calls.take()) == SCALED
    assert_ran_elsewhere(tmp_project)
    assert cache_files(tmp_project) == serial.files
    from distributed import Client

    with Client(dask_cluster, timeout=30) as client:  # assay left the cluster as it was
        assert len(client.scheduler_info()["workers"]) == 2

    again = run_cli("run", "scaled", "--executor", "dask", "--dask-address", dask_cluster,
                    cwd=tmp_project, timeout=240)  # fmt: skip

    assert again.code == 0 and "13 cached, 4 not needed" in again.text, again
    assert calls.take() == []


@pytest.mark.slow
def test_an_existing_clusters_workers_run_the_edited_code_not_what_they_imported_before(
    tmp_project: Path, dask_cluster: str
):
    def score_of_a() -> float:
        return assay.load("score", param_set="a", stage="evaluate", project_root=tmp_project)

    first = run_cli("run", "scaled", "--executor", "dask", "--dask-address", dask_cluster,
                    cwd=tmp_project, timeout=240)  # fmt: skip
    assert first.code == 0 and score_of_a() == 3.0, first
    # The workers keep experiments.scaled and tracking imported; both files change.
    edit(tmp_project / "tracking.py", "def flag(", "SCALE = 10\n\n\ndef flag(")
    scaled = tmp_project / "experiments" / "scaled.py"
    edit(scaled, "from tracking import flag, note", "from tracking import SCALE, flag, note")
    edit(scaled, "weight * i for i", "weight * i * SCALE for i")

    again = run_cli("run", "scaled", "--executor", "dask", "--dask-address", dask_cluster,
                    cwd=tmp_project, timeout=240)  # fmt: skip

    assert again.code == 0, again
    assert score_of_a() == 30.0


@pytest.mark.slow
def test_an_existing_clusters_workers_import_again_a_helper_taken_from_its_package(
    tmp_project: Path, dask_cluster: str
):
    """``experiments/`` has no ``__init__.py``; ``from experiments import shared_helpers``
    took the module the workers had imported before the edit off the package: the stage
    ran the old code and its result was cached under the new code's key."""
    experiments = tmp_project / "experiments"
    (experiments / "from_package.py").write_text(FROM_THE_PACKAGE)
    (experiments / "shared_helpers.py").write_text("def factor():\n    return 1\n")
    command = ["run", "from_package", "--executor", "dask", "--dask-address", dask_cluster]

    def values() -> list:
        return [
            assay.load("scaled", param_set=f"s{n}", project_root=tmp_project) for n in range(1, 7)
        ]

    assert run_cli(*command, cwd=tmp_project, timeout=240).code == 0
    assert values() == [1, 2, 3, 4, 5, 6]
    edit(experiments / "shared_helpers.py", "return 1", "return 7")

    again = run_cli(*command, cwd=tmp_project, timeout=240)

    assert again.code == 0, again
    assert values() == [7, 14, 21, 28, 35, 42]


OUTSIDE_HELPER = """
from dataclasses import dataclass

from labscale import factor

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["scaled"], cachers=[JsonCacher])
def scale(record):
    return record.params.n * factor()


def get_params():
    return [Params(name=f"s{n}", n=n) for n in range(1, 7)]


def run(param_sets, manager):
    for params in param_sets:
        scale(assay.Record(manager, params))
"""

FROM_THE_PACKAGE = OUTSIDE_HELPER.replace(
    "from labscale import factor", "from experiments import shared_helpers"
).replace("* factor()", "* shared_helpers.factor()")
"""The same experiment, its helper a module of ``experiments/`` (a folder without
``__init__.py``) taken from the package: ``from experiments import shared_helpers``."""


@pytest.mark.slow
def test_an_existing_clusters_workers_run_an_edited_helper_from_outside_the_project(
    tmp_project: Path, tmp_path: Path
):
    """Code outside the project that keys follow by source (a folder on ``PYTHONPATH``
    here; a library installed with ``pip install -e`` is the same case): the workers kept
    the first run's copy imported, and must not run it under the edited code's key."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "labscale.py").write_text("def factor():\n    return 2\n")
    (tmp_project / "experiments" / "outside.py").write_text(OUTSIDE_HELPER)
    path = {"PYTHONPATH": str(checkout)}

    def scaled() -> list[int]:
        return [
            assay.load("scaled", param_set=f"s{n}", project_root=tmp_project) for n in range(1, 7)
        ]

    with existing_dask_cluster(tmp_path, {**os.environ, **path}) as address:
        command = ("run", "outside", "--executor", "dask", "--dask-address", address)
        first = run_cli(*command, cwd=tmp_project, env=path, timeout=240)
        assert first.code == 0 and scaled() == [2, 4, 6, 8, 10, 12], first
        edit(checkout / "labscale.py", "return 2", "return 3")

        again = run_cli(*command, cwd=tmp_project, env=path, timeout=240)

    assert again.code == 0 and "6 executed" in again.text, again
    assert scaled() == [3, 6, 9, 12, 15, 18]


@pytest.mark.slow
def test_workers_that_kept_another_assay_imported_run_nothing_and_say_to_restart_them(
    tmp_project: Path, tmp_path: Path, calls: Calls
):
    # The workers import a copy of assay with one file edited, as after an upgrade.
    other = tmp_path / "other-assay"
    shutil.copytree(Path(assay.__file__).parent, other / "assay",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    with open(other / "assay" / "humanize.py", "a") as handle:
        handle.write("\n# a later version\n")
    env = {**os.environ, "PYTHONPATH": str(other)}
    with existing_dask_cluster(tmp_path, env) as address:
        result = run_cli("run", "scaled", "--executor", "dask", "--dask-address", address,
                         cwd=tmp_project, timeout=240)  # fmt: skip

    assert result.code != 0 and "Traceback" not in result.output, result
    assert "runs another assay than the main process" in result.text, result
    assert str(other / "assay") in result.text
    assert "restart the cluster's workers" in result.text
    assert calls.take() == []
    assert cache_files(tmp_project) == {}


@pytest.mark.slow
def test_stages_on_an_existing_cluster_read_relative_paths_from_where_the_run_started(
    tmp_project: Path, calls: Calls, dask_cluster: str
):
    (tmp_project / "numbers").mkdir()
    for name, number in (("a", 41), ("b", 9)):
        (tmp_project / "numbers" / f"{name}.txt").write_text(str(number))

    result = run_cli("run", "relative", "--executor", "dask", "--dask-address", dask_cluster,
                     cwd=tmp_project, timeout=240)  # fmt: skip

    assert result.code == 0, result
    assert sorted(calls.take()) == ["read:a", "read:b"]
    assert assay.load("number", param_set="a", project_root=tmp_project) == 42
    assert assay.load("number", param_set="b", project_root=tmp_project) == 10


def test_a_fully_cached_run_does_not_wait_for_an_unreachable_dask_address(
    tmp_project: Path, calls: Calls
):
    """It needed no worker, but waited out Dask's connect timeout (30 s by default) before
    it said "completed"."""
    assert run_cli("run", "scaled", "--no-report", cwd=tmp_project).code == 0
    calls.take()
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there

    result = run_cli(
        "run", "scaled", "--executor", "dask", "--dask-address", address, "--no-report",
        cwd=tmp_project, timeout=100,
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "600s"},  # the old wait: a timeout
    )  # fmt: skip

    assert result.code == 0 and "13 cached, 4 not needed" in result.text, result
    assert calls.take() == []


@pytest.mark.slow
def test_an_unreachable_dask_address_is_named_and_nothing_runs(tmp_project: Path, calls: Calls):
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")

    proc = subprocess.run(
        [sys.executable, "-m", "assay", "run", "scaled", "--executor", "dask",
         "--dask-address", address],
        cwd=tmp_project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and "Traceback" not in text, text
    assert f"Could not start or reach the Dask cluster ({address})" in text, text
    assert "--dask-address" in text
    assert calls.take() == []


def test_workers_started_early_stop_at_once_when_everything_is_cached(
    tmp_project: Path, calls: Calls
):
    run(tmp_project, "diamond")
    calls.take()
    before = set(descendants(os.getpid()))

    manager = run(tmp_project, "diamond", parallel=2)

    assert {n.status for n in manager.plan.nodes} == {"cached"}
    assert calls.take() == []
    import psutil

    def workers() -> list[str]:
        found = []
        for pid in set(descendants(os.getpid())) - before:
            try:
                command = " ".join(psutil.Process(pid).cmdline())
            except psutil.Error:
                continue
            if alive(pid) and "resource_tracker" not in command:  # multiprocessing's own
                found.append(command)
        return found

    deadline = time.monotonic() + 10
    while workers():
        assert time.monotonic() < deadline, f"worker processes outlived the run: {workers()}"
        time.sleep(0.05)


# -- how workers start --------------------------------------------------------------------

START_METHOD = """
import threading, time
from assay.executors.process import start_method
print(start_method())
threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
print(start_method())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")
@pytest.mark.parametrize(
    ("chosen", "expected"), [(None, ["fork", "spawn"]), ("spawn", ["spawn"] * 2)]
)
def test_workers_are_forked_only_from_a_single_threaded_process(
    chosen: str | None, expected: list[str]
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    if chosen:
        env["ASSAY_START_METHOD"] = chosen

    done = subprocess.run(
        [sys.executable, "-c", START_METHOD], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.stdout.split() == expected, done.stdout + done.stderr


def test_an_unknown_start_method_is_named_and_nothing_runs(tmp_project: Path, calls: Calls):
    result = run_cli(
        "run", "scaled", "--parallel", "2", cwd=tmp_project, env={"ASSAY_START_METHOD": "vfork"}
    )

    assert result.code != 0, result
    assert "Traceback" not in result.text, result
    assert "ASSAY_START_METHOD='vfork'" in result.text and "spawn" in result.text, result
    assert calls.take() == []
    assert not (tmp_project / "data" / "cache").exists()


def test_parallel_with_the_serial_executor_is_refused_not_ignored(tmp_project: Path, calls: Calls):
    """The run went serially without a word, and was recorded with ``parallel: 2``."""
    result = run_cli("run", "scaled", "--executor", "serial", "--parallel", "2", cwd=tmp_project)

    assert result.code != 0 and "Traceback" not in result.text, result
    assert "--parallel 2 asks for worker processes, but --executor serial" in result.text, result
    assert calls.take() == []


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_more_workers_than_usable_cores_gets_a_warning_in_the_run_and_its_log(
    tmp_project: Path, calls: Calls
):
    """`--parallel 16` on a laptop, or inside `taskset` or a batch job's allocation, started
    16 workers without a word."""
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(everything)})  # what the command inherits
    try:
        fits = run_cli("run", "scaled", "--parallel", "1", cwd=tmp_project)
        crowded = run_cli("run", "scaled", "--parallel", "2", "--overwrite", cwd=tmp_project)
    finally:
        os.sched_setaffinity(0, everything)

    assert fits.code == 0 and "CPU core" not in fits.text, fits
    assert crowded.code == 0, crowded
    warning = "--parallel 2 starts 2 worker processes, but this process may use 1 CPU core"
    assert warning in crowded.text, crowded
    (log_file,) = sorted((tmp_project / "logs").glob("*.log"))[-1:]
    assert warning in " ".join(log_file.read_text().split())
    assert sorted(calls.take()) == sorted(SCALED * 2)


DRAWS = """
import logging, sys
from dataclasses import dataclass
import numpy as np
import assay

@dataclass
class Params(assay.ExperimentParameters):
    index: int = 0

@assay.stage(None, ["draw"])
def draw(record):
    logging.getLogger("draws").warning("drawing for %s", record.params.name)
    forked = sys.modules["__main__"].__name__ == "__main__"  # spawned: "__mp_main__"
    return [float(np.random.random()), forked]

def get_params():
    return [Params(name=f"s{i}", index=i) for i in range(4)]

def run(param_sets, manager):
    for params in param_sets:
        draw(assay.Record(manager, params))
"""

SCRIPT_WITH_LOGGING_AND_NUMPY = """
import json, logging
import numpy as np
import assay

if __name__ == "__main__":
    logging.basicConfig(filename="script.log")
    np.random.seed(7)  # every copy of this process would start from here
    manager = assay.run_experiment("draws", parallel=2, report=False)
    print(json.dumps([r.state["draw"] for r in manager.records]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")
def test_forked_workers_neither_share_random_numbers_nor_the_scripts_log_handlers(
    tmp_project: Path,
):
    """A forked worker starts as a spawned one would: fresh numpy random numbers, and its
    logs travel back with its result instead of going to the script's handlers too."""
    (tmp_project / "experiments" / "draws.py").write_text(DRAWS)
    (tmp_project / "go.py").write_text(SCRIPT_WITH_LOGGING_AND_NUMPY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    # numpy without BLAS threads, as clusters often set it: the script stays single-threaded,
    # so its workers are forked (with BLAS threads they would be spawned).
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

    done = subprocess.run(
        [sys.executable, "go.py"], cwd=tmp_project, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    draws = json.loads(done.stdout.splitlines()[-1])
    assert all(forked for _, forked in draws), draws
    assert len({value for value, _ in draws}) == 4, draws
    lines = (tmp_project / "script.log").read_text().splitlines()
    for name in ("s0", "s1", "s2", "s3"):
        assert lines.count(f"WARNING:draws:drawing for {name}") == 1, lines


# -- Ctrl-C -------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, and theirs."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with dask[distributed]
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, frontier = [], [pid]
        while frontier:
            children = [p for p, parent in parents.items() if parent in frontier]
            found += children
            frontier = children
        return found
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, waiting to be reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def signalled_run(
    root: Path,
    args: list[str],
    flag: str,
    sent: signal.Signals,
    whole_group: bool,
    before: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen, str, str, list[int]]:
    """``assay run ARGS`` in its own process group, sent ``sent`` (to the whole group, as
    a terminal's Ctrl-C, or to the main process only) once the file ``flag`` appears in
    ``root`` (after ``before()``); the process, its output and its workers' pids."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
    proc = subprocess.Popen([sys.executable, "-m", "assay", "run", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (root / flag).exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        if before is not None:
            before()
        workers = descendants(proc.pid)
        if whole_group:
            os.killpg(proc.pid, sent)
        else:
            proc.send_signal(sent)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):  # also when the test failed before reading
            pipe.close()
    return proc, stdout, stderr, workers


@pytest.mark.parametrize(
    ("whole_group", "how", "sent"),
    [
        pytest.param(True, ["--parallel", "2"], signal.SIGINT, id="ctrl-c"),
        pytest.param(False, ["--parallel", "2"], signal.SIGINT, id="kill-main-only"),
        pytest.param(False, ["--parallel", "2"], signal.SIGTERM, id="sigterm"),
        pytest.param(True, ["--executor", "dask", "--parallel", "2"], signal.SIGINT,
                     id="dask-ctrl-c", marks=pytest.mark.slow),
        pytest.param(False, ["--executor", "dask", "--parallel", "2"], signal.SIGTERM,
                     id="dask-sigterm", marks=pytest.mark.slow),
    ],
)  # fmt: skip
def test_ctrl_c_stops_the_workers_records_interrupted_and_keeps_the_cache(
    tmp_project: Path, calls: Calls, whole_group: bool, how: list[str], sent: signal.Signals
):
    """A terminal's Ctrl-C signals the whole process group; ``kill -INT`` only the main one;
    SIGTERM (a batch job's time limit, ``kill``) too stops the run as Ctrl-C does."""
    slow = tmp_project / "slow.flag"
    slow.touch()
    proc, stdout, stderr, workers = signalled_run(
        tmp_project, ["scaled", *how], "waiting.txt", sent, whole_group
    )
    assert workers

    sigterm = sent == signal.SIGTERM
    assert proc.returncode == (143 if sigterm else 130), stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert "distributed." not in stderr  # no Dask worker's notes on what it cancelled
    assert ("Stopped by SIGTERM" if sigterm else "Interrupted") in stderr
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if alive(p)]
    with RunStore(tmp_project / "assay.db") as store:
        interrupted = store.get_run("latest")
        assert interrupted.status == "interrupted"
        assert ("SIGTERM" in interrupted.error) == sigterm
    first = stage_rows(tmp_project)
    finished = {s for s, status in first.items() if status == "executed"}
    waited = (tmp_project / "waiting.txt").read_text().split()[0]  # its wait was running
    assert {f"fit:{waited}", f"evaluate:{waited}"} <= finished, first
    calls.take()

    slow.unlink()
    rerun = run_cli("run", "scaled", "--parallel", "2", cwd=tmp_project)

    assert rerun.code == 0, rerun
    second = stage_rows(tmp_project)
    assert all(second[s] in ("cached", "skipped") for s in finished), (first, second)
    assert not set(calls.take()) & {s for s in finished if not s.startswith("prepare")}
    assert second[f"wait:{waited}"] == "executed"


HALF_SAVED = """
import os
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import PickleCacher


class SlowPickle(PickleCacher):
    \"\"\"Writes half of its file, says so in saving.txt, then waits for the run to stop.\"\"\"

    def save(self, obj):
        with open(self.get_path(), "wb") as handle:
            handle.write(b"half a pickle")
            handle.flush()
            Path("saving.tmp").write_text(self.get_path())
            os.replace("saving.tmp", "saving.txt")  # whole: the test reads it once it is there
            time.sleep(60)


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["big"], cachers=[SlowPickle])
def make(record):
    time.sleep(2)  # the run's own deferred work (provenance) is done before the signal
    return list(range(record.params.n))


def get_params():  # one save under way: a second set's, racing it, made the test flaky
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
"""


@pytest.mark.parametrize(
    ("whole_group", "sent"),
    [pytest.param(True, signal.SIGINT, id="ctrl-c"), pytest.param(False, signal.SIGTERM, id="sigterm")],
)  # fmt: skip
def test_a_worker_stopped_while_it_saves_leaves_no_temporary_file(
    tmp_project: Path, whole_group: bool, sent: signal.Signals
):
    """The run stops its workers with SIGTERM: they used to die on the spot, leaving the
    half-written file of a save under way in the cache until gc removed it an hour later."""
    (tmp_project / "experiments" / "half_saved.py").write_text(HALF_SAVED)
    half: list[Path] = []

    def under_way() -> None:  # the save has written half a file under a temporary name
        half.append(Path((tmp_project / "saving.txt").read_text()))
        assert ".tmp-" in half[0].name and half[0].exists()

    proc, stdout, stderr, workers = signalled_run(
        tmp_project, ["half_saved", "--parallel", "2"], "saving.txt", sent, whole_group,
        before=under_way,
    )  # fmt: skip

    assert proc.returncode == (143 if sent == signal.SIGTERM else 130), stdout + stderr
    assert "Traceback" not in stdout + stderr
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if alive(p)]
    cache = tmp_project / "data" / "cache"
    assert not half[0].exists()
    assert [p for p in cache.rglob("*") if ".tmp-" in p.name] == []
    assert [p for p in cache.rglob("*.pkl")] == []  # nothing half-saved passes for saved


def test_a_worker_deaf_to_sigterm_while_it_saves_is_killed_and_its_half_file_removed(
    tmp_project: Path,
):
    """A save deep in C code (or one that ignores SIGTERM) outlives the grace period and is
    killed: its half-written file stayed in the cache until gc removed it an hour later."""
    deaf = HALF_SAVED.replace(
        "    def save(self, obj):\n",
        "    def save(self, obj):\n        import signal\n\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n",
    )
    (tmp_project / "experiments" / "half_saved.py").write_text(deaf)
    half: list[Path] = []

    def under_way() -> None:
        half.append(Path((tmp_project / "saving.txt").read_text()))
        assert ".tmp-" in half[0].name and half[0].exists()

    proc, stdout, stderr, workers = signalled_run(
        tmp_project, ["half_saved", "--parallel", "2"], "saving.txt", signal.SIGTERM,
        whole_group=False, before=under_way,
    )  # fmt: skip

    assert proc.returncode == 143, stdout + stderr
    assert not [p for p in workers if alive(p)]
    cache = tmp_project / "data" / "cache"
    assert not half[0].exists()
    assert [p for p in cache.rglob("*") if ".tmp-" in p.name] == []
    writer = half[0].name.split(".tmp-")[1].split("-")[0]  # the killed worker's pid
    assert not list((cache / "writing").glob(f"{writer}-*"))


def test_a_worker_stopped_inside_a_del_method_exits_quietly_and_leaves_no_temporary_file(
    tmp_project: Path,
):
    """SIGTERM's unwinding that lands in a ``__del__`` cannot be raised there: Python
    printed "Exception ignored in: ..." with a traceback through assay's code into the
    run's output, and the stage went on running until the run killed the worker."""
    lingering = HALF_SAVED.replace(
        "            time.sleep(60)\n",
        "            Lingering()\n            Path('went-on.txt').touch()\n            time.sleep(60)\n",
    ).replace(
        "class SlowPickle(",
        "class Lingering:\n    def __del__(self):\n        time.sleep(60)\n\n\nclass SlowPickle(",
    )
    assert lingering.count("Lingering") == 2 and "went-on" in lingering
    (tmp_project / "experiments" / "half_saved.py").write_text(lingering)
    half: list[Path] = []

    def under_way() -> None:
        half.append(Path((tmp_project / "saving.txt").read_text()))
        time.sleep(0.3)  # the save is now inside Lingering.__del__

    proc, stdout, stderr, workers = signalled_run(
        tmp_project, ["half_saved", "--parallel", "2"], "saving.txt", signal.SIGTERM,
        whole_group=False, before=under_way,
    )  # fmt: skip

    assert proc.returncode == 143, stdout + stderr
    assert "Exception ignored" not in stderr and "Traceback" not in stdout + stderr, stderr
    assert not (tmp_project / "went-on.txt").exists()  # the stage stopped where it was
    assert not [p for p in workers if alive(p)]
    cache = tmp_project / "data" / "cache"
    assert not half[0].exists()
    assert [p for p in cache.rglob("*") if ".tmp-" in p.name] == []


COUNTER = """
import assay
from assay.caching import JsonCacher

COUNT = [0]


@assay.stage(outputs=["n"], cachers=[JsonCacher])
def count(record):
    COUNT[0] += 1
    return record.params.name


def get_params():
    return [assay.ExperimentParameters(name=n) for n in ("a", "b")]


def run(param_sets, manager):
    for params in param_sets:
        count(assay.Record(manager, params))
"""


@pytest.mark.slow
def test_a_cluster_that_served_a_run_runs_the_next_despite_what_its_stages_left(
    tmp_project: Path,
):
    """A stage that counts its calls in a module-level list left [2] in the workers of an
    existing cluster; the next run, whose main process has [0], was refused as if run()
    had changed the value (the benchmark's warm cluster met it)."""
    (tmp_project / "experiments" / "counter.py").write_text(COUNTER)
    with local_cluster() as cluster:
        address = cluster.scheduler_address
        options = {"executor": "dask", "dask_address": address}
        assert [r.state["n"] for r in run(tmp_project, "counter", **options).records] == ["a", "b"]
        forget_project_modules()
        again = run(tmp_project, "counter", overwrite=True, **options)
    assert [r.state["n"] for r in again.records] == ["a", "b"]
    log = (tmp_project / "logs" / f"{again.run_id}.log").read_text()
    assert "imported its module in an earlier run" in log, log


TWO_AGGREGATES = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


@assay.stage(outputs=["o"], cachers=[JsonCacher])
def make(record):
    return record.params.seed


@assay.aggregate(inputs=["o"], outputs=["listed"], cachers=[JsonCacher])
def listed(record, records, o):
    return sorted(o.values())


@assay.aggregate(inputs=["o"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, o):
    return sum(v for v in o.values() if v is not None)


def get_params():
    return [Params(name="p0", seed=1), Params(name="p1", seed=2)]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
    listed(assay.Record(manager, None))  # records not given: every other record of the run
    return total(assay.Record(manager, None)).state["total"]  # listed's record among them
"""


@pytest.mark.parametrize("options", REMOTE)
def test_a_second_aggregate_over_every_other_record_runs_in_a_worker(tmp_project: Path, options):
    """Its input records include the first aggregate's: rebuilt in the worker as a plain
    record, it hashed otherwise, and the run stopped ("another cache key in the worker")."""
    (tmp_project / "experiments" / "twoagg.py").write_text(TWO_AGGREGATES)

    manager = run(tmp_project, "twoagg", **options)

    assert manager.results == 3
    assert run(tmp_project, "twoagg").plan.nodes[-1].status == "cached"  # the serial key


def test_parameter_sets_of_a_class_from_a_file_outside_the_project_reach_every_worker(
    tmp_project: Path, tmp_path: Path
):
    """Only the workers the warm-up reached could unpickle them: about one run in three
    stopped with "could not run in a worker"."""
    outside = tmp_path / "elsewhere" / "other-sets.py"
    outside.parent.mkdir()
    outside.write_text(
        "from dataclasses import dataclass\n\nimport assay\n\n\n@dataclass\n"
        "class Mine(assay.ExperimentParameters):\n    n: int = 1\n\n\n"
        "def get_params():\n    return [Mine(name=f's{i}', n=i) for i in range(6)]\n"
    )
    (tmp_project / "experiments" / "anyp.py").write_text(
        "import assay\nfrom assay.caching import JsonCacher\n\n\n"
        "@assay.stage(outputs=['x'], cachers=[JsonCacher])\ndef double(record):\n"
        "    return record.params.n * 2\n\n\ndef run(param_sets, manager):\n"
        "    for params in param_sets:\n        double(assay.Record(manager, params))\n"
    )
    for _ in range(8):
        shutil.rmtree(tmp_project / "data" / "cache", ignore_errors=True)
        result = run_cli("run", "anyp", "-p", outside, "--parallel", "2", cwd=tmp_project)
        assert result.code == 0 and "6 executed" in result.text, result
