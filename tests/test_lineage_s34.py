"""The run store and its queries as a researcher meets them (session 34).

- ``assay lineage EXPERIMENT/SET/STAGE/OUTPUT`` with a parameter set (or ``--prefix``)
  whose name holds a ``/``, as ``assay cache ls`` lists it;
- ``assay compare`` with a run still going on, or killed before it recorded its stages:
  its artifacts and metrics are not in the run store yet, so they are not "only in A".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay import run_experiment
from assay.compare import compare_runs
from assay.lineage import lineage
from assay.store import RunStore
from conftest import run_cli

TRACEBACK = "Traceback (most recent call last)"

SLASHED = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["number"], cachers=[JsonCacher])
def make(record):
    return record.params.n


@assay.stage(inputs=["number"], outputs=["double"], cachers=[JsonCacher])
def twice(record, number):
    return number * 2


def get_params():
    return [Params(name="model/small", n=1), Params(name="model/large", n=5)]


def run(param_sets, manager):
    for params in param_sets:
        twice(make(assay.Record(manager, params)))
"""


@pytest.fixture
def slashed(tmp_project: Path, monkeypatch) -> Path:
    (tmp_project / "experiments" / "lineage_s34_slashed.py").write_text(SLASHED)
    run_experiment("lineage_s34_slashed", project_root=tmp_project, command="assay run")
    monkeypatch.chdir(tmp_project)
    return tmp_project


def test_lineage_by_name_takes_a_parameter_set_whose_name_has_a_slash(slashed: Path) -> None:
    """`assay cache ls` lists the set as model/large; `assay lineage
    lineage_s34_slashed/model/large/twice/double` said it could not tell which artifact
    that is (five parts), though the set's by-name folder (model_large) was found."""
    listed = run_cli("cache", "ls", "-e", "lineage_s34_slashed", cwd=slashed)
    assert "model/large" in listed.text, listed

    tree = lineage("lineage_s34_slashed/model/large/twice/double")
    assert (tree.param_set, tree.stage, tree.output) == ("model/large", "twice", "double")
    assert tree.params["n"] == 5
    assert tree.inputs[0].node.stage == "make"
    assert lineage("lineage_s34_slashed/model_large/twice/double").key == tree.key

    result = run_cli("lineage", "lineage_s34_slashed/model/small/make/number", cwd=slashed)
    assert result.code == 0, result
    assert "parameter set model/small: n=1" in result.text, result


def test_lineage_by_name_takes_a_prefix_with_a_slash(slashed: Path) -> None:
    run_experiment(
        "lineage_s34_slashed", project_root=slashed, command="assay run", prefix="team/alice"
    )
    tree = lineage("team/alice/model/small/make/number")
    assert (tree.param_set, tree.stage, tree.output) == ("model/small", "make", "number")


def test_lineage_by_name_with_too_many_parts_still_says_what_it_takes(slashed: Path) -> None:
    result = run_cli("lineage", "lineage_s34_slashed/model/medium/twice/double", cwd=slashed)
    assert result.code == 1, result
    assert TRACEBACK not in result.output
    assert "No cached artifact matches" in result.text, result


# -- compare with a run that has not recorded its stages -----------------------------------

HOLDING = """
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["held"], cachers=[JsonCacher])
def hold(record):
    root = Path(record.manager.config.root)
    (root / f"holding-{record.name}.txt").touch()
    deadline = time.monotonic() + 60
    while not (root / "release.flag").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    record.log_metric("score", record.params.n / 2)
    return record.params.n


def get_params():
    return [Params(name="a", n=1), Params(name="b", n=2)]


def run(param_sets, manager):
    for params in param_sets:
        hold(assay.Record(manager, params))
"""


def start_run(root: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
    return subprocess.Popen(
        [sys.executable, "-m", "assay", "run", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(proc: subprocess.Popen, path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)


def test_compare_with_a_running_then_killed_run_does_not_call_every_artifact_only_in_a(
    tmp_project: Path,
) -> None:
    """A run records its stages, artifacts and metrics when it ends: `assay compare 1
    latest` while run 2 went on (or after it was killed) listed every artifact and metric
    of run 1 as "only in A", as if run 2 had made none."""
    (tmp_project / "experiments" / "lineage_s34_holding.py").write_text(HOLDING)
    (tmp_project / "release.flag").touch()
    first = run_cli("run", "lineage_s34_holding", cwd=tmp_project)
    assert first.code == 0, first
    (tmp_project / "release.flag").unlink()
    for held in tmp_project.glob("holding-*.txt"):
        held.unlink()

    proc = start_run(tmp_project, "lineage_s34_holding", "--overwrite")
    try:
        wait_for(proc, tmp_project / "holding-a.txt")
        running = run_cli("compare", "1", "2", cwd=tmp_project)
        with RunStore(tmp_project / "assay.db") as store:
            diff = compare_runs(store, 1, 2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()

    assert running.code == 0, running
    assert "only in A" not in running.text, running
    assert "Run B is still running" in running.text, running
    assert diff.unrecorded == ["B"] and not diff.artifacts and not diff.identical

    killed = run_cli("compare", "1", "2", cwd=tmp_project)
    assert killed.code == 0, killed
    assert "interrupted" in killed.text  # the status row: settled as killed
    assert "only in A" not in killed.text, killed
    assert "Run B recorded no stages" in killed.text, killed

    reversed_ = run_cli("compare", "2", "1", cwd=tmp_project)
    assert "only in B" not in reversed_.text and "Run A recorded no stages" in reversed_.text


def test_compare_of_two_finished_runs_still_lists_one_sided_artifacts(tmp_project: Path) -> None:
    (tmp_project / "experiments" / "lineage_s34_holding.py").write_text(HOLDING)
    (tmp_project / "release.flag").touch()
    assert run_cli("run", "lineage_s34_holding", cwd=tmp_project).code == 0
    assert run_cli("run", "lineage_s34_holding", "--names", "a", cwd=tmp_project).code == 0
    with RunStore(tmp_project / "assay.db") as store:
        diff = compare_runs(store, 1, 2)
    assert diff.unrecorded == []
    assert [(c.param_set, c.what) for c in diff.artifacts] == [("b", "only in A")]


# -- assay why after assay cache gc ---------------------------------------------------------


def test_why_after_gc_names_the_run_that_computed_what_gc_removed(tmp_project: Path) -> None:
    """`assay cache gc` removes an entry and its by-name link; `assay why` then said every
    stage run of it was "never computed for this parameter set", though the run store
    records the run that computed it."""
    assert run_cli("run", "diamond", "-p", "two", cwd=tmp_project).code == 0
    gc = run_cli("cache", "gc", "--older-than", "0", cwd=tmp_project)
    assert gc.code == 0 and "Removed" in gc.text, gc

    why = run_cli("why", "diamond", "-p", "two", cwd=tmp_project)

    assert why.code == 0, why
    assert "never computed" not in why.text, why
    lines = [line for line in why.output.splitlines() if line.startswith("executes")]
    assert lines and all("the one run 1 computed was removed from the cache" in line
                         for line in lines), why  # fmt: skip


def test_why_still_says_never_computed_for_new_parameter_values(tmp_project: Path) -> None:
    assert run_cli("run", "diamond", "-p", "two", cwd=tmp_project).code == 0
    why = run_cli("why", "diamond", "-p", "two", "--set", "scale=9", cwd=tmp_project)
    assert why.code == 0, why
    assert "removed from the cache" not in why.text, why


# -- assay ls with a limit beyond SQLite's integers -----------------------------------------


def test_ls_with_a_limit_beyond_sqlite_integers_lists_every_run(tmp_project: Path) -> None:
    """`assay ls -n 99999999999999999999` ended in a traceback (OverflowError: Python int
    too large to convert to SQLite INTEGER)."""
    assert run_cli("run", "diamond", "-p", "two", cwd=tmp_project).code == 0
    assert run_cli("run", "diamond", "-p", "two", cwd=tmp_project).code == 0

    result = run_cli("ls", "-n", "9" * 25, cwd=tmp_project)

    assert result.code == 0, result
    assert TRACEBACK not in result.output
    assert "runs shown" not in result.text  # both are
    with RunStore(tmp_project / "assay.db") as store:
        assert [r.number for r in store.list_runs(limit=10**30)] == [2, 1]
        assert store.list_runs(limit=5, offset=2**70) == []


# -- a moved project whose run store cannot be read ----------------------------------------


def test_a_moved_project_with_an_unreadable_run_store_still_loads_and_traces_artifacts(
    tmp_project: Path, tmp_path: Path, monkeypatch
) -> None:
    """The run store only says whether a moved project's artifacts are its own (to warn
    about another project's); one written by a newer assay (or damaged) made
    `assay.load(...)` by name and `assay lineage` fail with its error, though the cache
    holds the artifact and its record."""
    import shutil
    import sqlite3

    import assay

    run_experiment("diamond", ["two"], project_root=tmp_project, command="assay run diamond")
    moved = tmp_path / "moved"
    shutil.move(tmp_project, moved)
    db = sqlite3.connect(moved / "assay.db")
    db.execute("PRAGMA user_version = 99")  # as a newer assay would leave it
    db.commit()
    db.close()
    monkeypatch.chdir(moved)

    assert assay.load("combined", param_set="a", experiment="diamond") is not None
    tree = lineage("diamond/a/combine/combined")
    assert tree.stage == "combine" and [i.name for i in tree.inputs] == ["doubled", "squared"]
    shown = run_cli("lineage", "diamond/a/combine/combined", cwd=moved)
    assert shown.code == 0, shown
    assert TRACEBACK not in shown.output
    refused = run_cli("ls", cwd=moved)  # what needs the run store still says why it cannot
    assert refused.code == 1 and "newer version of assay" in refused.text, refused


# -- lineage of what the cache no longer holds ---------------------------------------------


def test_lineage_names_the_run_that_made_an_artifact_the_cache_no_longer_holds(
    tmp_project: Path, monkeypatch
) -> None:
    """Lineage answers "which run made this artifact" from the run store too: an upstream
    artifact removed from the cache (gc, by hand) was shown as "no longer in the cache"
    alone, and `assay lineage KEY` of a removed artifact said only "No artifact with key",
    though the run store records the run, stage and parameter set that made it."""
    import shutil

    run_experiment("diamond", ["two"], project_root=tmp_project, command="assay run diamond")
    monkeypatch.chdir(tmp_project)
    tree = lineage("diamond/a/double/doubled")
    data = tree.inputs[0].node
    shutil.rmtree(Path(data.path))

    after = lineage("diamond/a/double/doubled").inputs[0].node
    assert after.problem == "no longer in the cache"
    assert (after.key, after.stage, after.param_set) == (data.key, "load", "a")
    assert after.run["number"] == 1 and after.checksum == data.checksum
    assert after.params["name"] == "a"

    by_key = lineage(data.key)
    assert (by_key.stage, by_key.run["number"], by_key.problem) == (
        "load", 1, "no longer in the cache"
    )  # fmt: skip
    shown = run_cli("lineage", data.key, cwd=tmp_project)
    assert shown.code == 0, shown
    assert "no longer in the cache" in shown.text and "stage load" in shown.text, shown
    assert "run 1 (diamond-0001-" in shown.text, shown

    unknown = run_cli("lineage", "0123456789abcdef0123456789abcdef.model", cwd=tmp_project)
    assert unknown.code == 1 and "No artifact with key" in unknown.text, unknown


# -- a read-only run store whose latest runs are in its write-ahead log ---------------------


@contextlib.contextmanager
def unwritable(path: Path):
    """``path`` made a file this process may not write: immutable for root (who may write
    anything else), else without write permission."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("root, without chattr to make a file unwritable")
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"this filesystem has no immutable files: {made.stderr!r}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def test_a_read_only_store_shows_the_runs_its_write_ahead_log_still_holds(
    tmp_project: Path,
) -> None:
    """While a process has the run store open (a dashboard, a notebook) or after one was
    killed, the latest runs are in assay.db-wal, not yet in assay.db. A store one may not
    write was read as immutable, which reads assay.db alone: `assay ls` / `show` / `compare`
    in a colleague's project left out those runs ("No run 2")."""
    import sqlite3

    assert run_cli("run", "diamond", "-p", "two", cwd=tmp_project).code == 0
    holder = sqlite3.connect(tmp_project / "assay.db")  # keeps the log from being merged
    try:
        holder.execute("SELECT count(*) FROM runs").fetchall()
        second = run_cli("run", "diamond", "-p", "two", "--set", "scale=5", cwd=tmp_project)
        assert second.code == 0, second
        assert (tmp_project / "assay.db-wal").stat().st_size > 0

        with unwritable(tmp_project / "assay.db"):
            listed = run_cli("ls", cwd=tmp_project)
            shown = run_cli("show", "2", cwd=tmp_project)
            compared = run_cli("compare", "1", "2", cwd=tmp_project)
            with RunStore(tmp_project / "assay.db") as store:
                newest = store.get_run("latest")
                assert store.read_only
    finally:
        holder.close()

    assert newest.number == 2 and "scale=5" in newest.config["overrides"]
    assert listed.code == 0 and "scale=5" in listed.text, listed
    assert shown.code == 0 and "Run 2" in shown.text, shown
    assert compared.code == 0 and "scale" in compared.text, compared


# -- assay why after an aggregate failed ----------------------------------------------------

FAILING_AGGREGATE = """
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["number"], cachers=[JsonCacher])
def make(record):
    return record.params.n


@assay.aggregate(inputs=["number"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, number):
    if (Path(record.manager.config.root) / "fail.flag").exists():
        raise ValueError("total refuses")
    return sum(number.values())


def get_params():
    return [Params(name="one", n=1), Params(name="two", n=2)]


def run(param_sets, manager):
    for params in param_sets:
        make(assay.Record(manager, params))
    total(assay.Record(manager, None))
"""


def test_why_says_an_aggregate_s_last_attempt_failed(tmp_project: Path) -> None:
    """A stage run whose last attempt failed is said to have failed there (run N); an
    aggregate was said to be "never computed for these parameter sets together"."""
    (tmp_project / "experiments" / "lineage_s34_aggfail.py").write_text(FAILING_AGGREGATE)
    (tmp_project / "fail.flag").touch()
    failed = run_cli("run", "lineage_s34_aggfail", cwd=tmp_project)
    assert failed.code == 1 and "total refuses" in failed.text, failed

    why = run_cli("why", "lineage_s34_aggfail", cwd=tmp_project)
    assert why.code == 0, why
    assert "total [aggregate]: no cached artifact: its last attempt, in run 1, failed" in why.text

    other_sets = run_cli("why", "lineage_s34_aggfail", "--names", "one", cwd=tmp_project)
    assert "never computed for these parameter sets together" in other_sets.text, other_sets


def test_compare_with_a_dry_cache_run_says_why_its_artifacts_are_missing(
    tmp_project: Path,
) -> None:
    """A run with --dry-cache caches (and records) none of the artifacts it computes:
    `assay compare` listed each as "only in A" with nothing to say why."""
    assert run_cli("run", "diamond", "-p", "two", cwd=tmp_project).code == 0
    dry = run_cli("run", "diamond", "-p", "two", "--dry-cache", "--overwrite", cwd=tmp_project)
    assert dry.code == 0, dry

    result = run_cli("compare", "1", "2", cwd=tmp_project)

    assert result.code == 0, result
    assert "dry_cache" in result.text and "only in A" in result.text, result
    assert "Run B ran with --dry-cache: the artifacts it computed were not cached" in result.text
    with RunStore(tmp_project / "assay.db") as store:
        diff = compare_runs(store, 1, 2)
    assert ("dry_cache", False, True) in diff.settings and diff.unrecorded == []
    again = run_cli("compare", "1", "1", cwd=tmp_project)
    assert "dry-cache" not in again.text


# -- assay cache gc after a --dry-cache run -------------------------------------------------

BRANCHES = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def add_one(record):
    return record.params.n + 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def add_ten(record):
    return record.params.n + 10


@assay.stage(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
def total(record, x):
    return x * 2


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for params in param_sets:
        record = assay.Record(manager, params)
        copy = record.make_copy()
        total(add_one(record))
        total(add_ten(copy))
"""


def test_gc_after_a_dry_cache_run_keeps_what_the_run_before_it_used(tmp_project: Path) -> None:
    """gc keeps, unlinked, what the latest completed run used (the branch of a record that
    one by-name link cannot point at). A later run with --dry-cache (it writes nothing)
    became that latest run: gc then removed the branch, and the next run recomputed it."""
    (tmp_project / "experiments" / "lineage_s34_branches.py").write_text(BRANCHES)
    assert run_cli("run", "lineage_s34_branches", cwd=tmp_project).code == 0
    trial = run_cli("run", "lineage_s34_branches", "--set", "n=5", "--dry-cache", cwd=tmp_project)
    assert trial.code == 0, trial

    gc = run_cli("cache", "gc", cwd=tmp_project)

    assert gc.code == 0 and "Removed 0 entries" in gc.text, gc
    again = run_cli("run", "lineage_s34_branches", cwd=tmp_project)
    assert again.code == 0 and "4 cached" in again.text, again
