"""Tests of the run store (``assay.store``) on real SQLite files."""

from __future__ import annotations

import multiprocessing
import pickle
import platform
import socket
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from assay.errors import RunStoreError
from assay.store import (
    SCHEMA_VERSION,
    ArtifactInfo,
    ArtifactRun,
    ParamSetInfo,
    RunInfo,
    RunStore,
    StageRunInfo,
)

T0 = datetime(2026, 11, 25, 18, 45, 12, tzinfo=timezone.utc)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "assay.db"


@pytest.fixture
def store(db_path: Path):
    with RunStore(db_path) as store:
        yield store


def begin(store: RunStore, experiment: str = "iris", minutes: int = 0, **kwargs) -> RunInfo:
    """Start a run at a fixed time, so ids are predictable."""
    kwargs.setdefault("command", f"assay run {experiment}")
    return store.begin_run(experiment, started=T0 + timedelta(minutes=minutes), **kwargs)


# -- runs ---------------------------------------------------------------------


def test_begin_run_fills_in_the_record_and_it_survives_reopening(db_path: Path) -> None:
    with RunStore(db_path) as store:
        run = store.begin_run(
            "iris",
            command="assay run iris -p small --set n_trees=500",
            notes="first try",
            param_names=["trees_10", "trees_100"],
            config={"overrides": {"n_trees": 500}, "cache": "data/cache", "dry": False},
            started=T0,
        )

    assert run.id == "iris-0001-20261125T184512"
    assert run.number == 1
    assert run.experiment == "iris"
    assert run.status == "running"
    assert run.started == "2026-11-25T18:45:12.000Z"
    assert run.ended is None and run.duration_s is None and run.error is None
    assert run.host == socket.gethostname()
    assert run.user
    assert run.platform.startswith(platform.system()) and platform.machine() in run.platform
    assert run.python.endswith(platform.python_version())
    assert run.command == "assay run iris -p small --set n_trees=500"
    assert run.notes == "first try"
    assert run.param_names == ["trees_10", "trees_100"]
    assert run.config == {"overrides": {"n_trees": 500}, "cache": "data/cache", "dry": False}

    with RunStore(db_path) as reopened:
        assert reopened.get_run(1) == run


def test_started_is_converted_to_utc(store: RunStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    run = store.begin_run("iris", command="c", started=datetime(2026, 1, 2, 3, 4, 5, 0, plus_two))
    assert run.started == "2026-01-02T01:04:05.000Z"
    assert run.id.endswith("-20260102T010405")


def test_finish_run_records_status_end_and_error(store: RunStore) -> None:
    run = begin(store)
    finished = store.finish_run(
        run.id, "failed", error="Stage 'train' raised ValueError.", ended=T0 + timedelta(seconds=90)
    )

    assert finished.status == "failed"
    assert finished.ended == "2026-11-25T18:46:42.000Z"
    assert finished.duration_s == 90.0
    assert finished.error == "Stage 'train' raised ValueError."
    assert store.get_run(run.id) == finished


def test_finish_run_rejects_a_status_that_is_not_final(store: RunStore) -> None:
    run = begin(store)
    with pytest.raises(RunStoreError, match="'done'.*completed, failed, interrupted"):
        store.finish_run(run.id, "done")
    assert store.get_run(run.id).status == "running"


def test_finish_run_of_an_unknown_run_is_an_error(store: RunStore) -> None:
    with pytest.raises(RunStoreError, match="No run with id 'iris-0042'"):
        store.finish_run("iris-0042", "completed")


def test_numbers_are_sequential_and_never_reused(store: RunStore, db_path: Path) -> None:
    numbers = [begin(store, experiment, i).number for i, experiment in enumerate("abcab")]
    assert numbers == [1, 2, 3, 4, 5]
    assert store.get_run(4).id == "a-0004-20261125T184812"

    # Even if the newest run disappears from the file, its number stays taken.
    with sqlite3.connect(db_path) as other:
        other.execute("DELETE FROM runs WHERE number = 5")
    other.close()
    assert begin(store).number == 6


def _begin_runs(path: str, barrier, count: int) -> None:
    """Worker for the multiprocess test: start ``count`` runs as fast as possible."""
    barrier.wait()
    with RunStore(path) as store:
        numbers = [store.begin_run("race", command="race").number for _ in range(count)]
    assert numbers == sorted(set(numbers)), numbers


def test_numbers_are_unique_when_processes_start_runs_at_once(db_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [
        context.Process(target=_begin_runs, args=(str(db_path), barrier, 25)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]

    with RunStore(db_path) as store:
        runs = store.list_runs(limit=None)
    assert sorted(run.number for run in runs) == list(range(1, 101))
    assert len({run.id for run in runs}) == 100


def test_a_store_another_process_makes_while_this_one_looks_is_recognised(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema version and the tables are read in one view of the file. Read one after
    the other, the tables that another process made in between came with version 0, and
    the new store was refused as "not an assay run store" (two runs starting at once)."""
    import assay.store

    real_connect, made = sqlite3.connect, []

    def make_it_in_between(statement: str) -> None:
        if "sqlite_master" in statement and not made:
            made.append(True)
            with RunStore(db_path) as other:  # the other process: a connection of its own
                other.settle_abandoned_runs()

    def connect(*args, **kwargs):
        connection = real_connect(*args, **kwargs)
        if not made:
            connection.set_trace_callback(make_it_in_between)
        return connection

    monkeypatch.setattr(assay.store.sqlite3, "connect", connect)
    with RunStore(db_path) as store:
        assert store.begin_run("race", command="race").number == 1
    assert made


def test_threads_can_share_one_store(store: RunStore) -> None:
    def start_runs() -> None:
        for _ in range(10):
            run = store.begin_run("threads", command="t")
            store.record_stages(run.id, [stage_row(run.number)])

    threads = [threading.Thread(target=start_runs) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    runs = store.list_runs(limit=None)
    assert sorted(run.number for run in runs) == list(range(1, 81))
    assert all(store.stages(run.id) == [stage_row(run.number)] for run in runs)


def test_store_uses_wal_and_records_its_schema_version(store: RunStore, db_path: Path) -> None:
    begin(store)
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert other.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        other.close()


def test_store_can_be_pickled_for_worker_processes(store: RunStore) -> None:
    run = begin(store)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.path == store.path
    assert copy.get_run("latest") == run
    copy.close()


# -- finding runs ---------------------------------------------------------------


@pytest.fixture
def three_runs(store: RunStore) -> list[RunInfo]:
    return [begin(store, "iris", 0), begin(store, "iris", 1), begin(store, "mnist", 2)]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (2, 2),
        ("2", 2),
        ("0002", 2),
        ("iris-0002-20261125T184612", 2),
        ("iris-0002", 2),
        ("mnist", 3),
        ("latest", 3),
        ("LATEST", 3),
        ("-1", 3),
        (-1, 3),
        ("-2", 2),
        ("-3", 1),
    ],
)
def test_get_run_understands_every_kind_of_reference(
    store: RunStore, three_runs: list[RunInfo], ref: int | str, expected: int
) -> None:
    assert store.get_run(ref) == three_runs[expected - 1]


@pytest.mark.parametrize("ref", [4, "0", "-4", "iris-0009", "cifar", "", "-0", 2.0])
def test_unknown_run_reference_lists_recent_runs(
    store: RunStore, three_runs: list[RunInfo], ref: object
) -> None:
    with pytest.raises(RunStoreError) as caught:
        store.get_run(ref)  # type: ignore[arg-type]
    message = str(caught.value)
    assert f"No run {ref!r}" in message
    assert str(store.path) in message
    for run in three_runs:
        assert run.id in message
    assert "'latest', -1, -2" in message


def test_ambiguous_prefix_names_the_candidates(store: RunStore, three_runs: list[RunInfo]) -> None:
    with pytest.raises(RunStoreError, match="ambiguous") as caught:
        store.get_run("iris-000")
    assert three_runs[0].id in str(caught.value)
    assert three_runs[1].id in str(caught.value)


def test_get_run_in_an_empty_store_says_there_are_no_runs(store: RunStore, db_path: Path) -> None:
    db_path.touch()  # an empty file: the tables are made as it is opened
    with pytest.raises(RunStoreError, match="has no runs yet.*assay run EXPERIMENT"):
        store.get_run("latest")


def test_reading_a_store_that_does_not_exist_does_not_make_an_empty_one(
    tmp_path: Path, monkeypatch
) -> None:
    """RunStore("assay.db") from a notebooks/ folder made an empty assay.db there and
    answered that there were no runs, for a project with runs one folder up."""
    begin(RunStore(tmp_path / "assay.db"))
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    store = RunStore("assay.db")

    for query in (store.list_runs, lambda: store.get_run("latest"), lambda: store.stages(-1)):
        with pytest.raises(RunStoreError, match="No run store at .*notebooks.*ProjectConfig"):
            query()
    assert not (tmp_path / "notebooks" / "assay.db").exists()
    assert store.settle_abandoned_runs() == []
    assert [run.number for run in RunStore(tmp_path / "assay.db").list_runs()] == [1]


def test_a_numpy_integer_is_a_run_number(store: RunStore, three_runs: list[RunInfo]) -> None:
    """A run number from a numpy array or a pandas column was "No run np.int64(2)"."""
    numpy = pytest.importorskip("numpy")

    assert store.get_run(numpy.int64(2)) == three_runs[1]
    assert store.get_run(numpy.int32(-1)) == three_runs[2]
    assert store.stages(numpy.int64(1)) == store.stages(1)
    with pytest.raises(RunStoreError, match="No run"):
        store.get_run(True)


def test_prefix_is_not_a_pattern(store: RunStore) -> None:
    begin(store, "my_exp")
    with pytest.raises(RunStoreError, match="No run"):
        store.get_run("my%")
    assert store.get_run("my_e").experiment == "my_exp"


def test_list_runs_filters_orders_newest_first_and_pages(store: RunStore) -> None:
    for i in range(6):
        run = begin(store, "iris" if i % 2 == 0 else "mnist", i)
        if i in (0, 3, 4):
            store.finish_run(run.id, "completed")

    assert [r.number for r in store.list_runs()] == [6, 5, 4, 3, 2, 1]
    assert [r.number for r in store.list_runs(experiment="iris")] == [5, 3, 1]
    assert [r.number for r in store.list_runs(status="completed")] == [5, 4, 1]
    assert [r.number for r in store.list_runs(status="running")] == [6, 3, 2]
    both = store.list_runs(experiment="iris", status="completed")
    assert [r.number for r in both] == [5, 1]
    assert store.list_runs(experiment="cifar") == []

    assert [r.number for r in store.list_runs(limit=2)] == [6, 5]
    assert [r.number for r in store.list_runs(limit=2, offset=2)] == [4, 3]
    assert [r.number for r in store.list_runs(limit=None, offset=4)] == [2, 1]
    # counted and named without reading the runs (`assay ls` on a store of 30,000 runs)
    assert store.count_runs() == 6 and store.count_runs(experiment="iris", status="completed") == 2
    assert store.count_runs(experiment="cifar") == 0
    assert store.experiments() == ["iris", "mnist"]


def test_list_runs_rejects_an_unknown_status(store: RunStore) -> None:
    with pytest.raises(RunStoreError, match="'complete'.*running, completed, failed"):
        store.list_runs(status="complete")


# -- what a run did ---------------------------------------------------------------


def param_set(i: int) -> ParamSetInfo:
    values = {"seed": i, "n_trees": 10 * i, "layers": [i, i + 1], "opt": {"lr": 0.1}}
    return ParamSetInfo(f"set_{i}", f"{i:032x}", "experiments.iris.Params", values)


def stage_row(i: int, status: str = "executed") -> StageRunInfo:
    return StageRunInfo(f"set_{i}", "train", status, f"train-{i:08x}", T0.isoformat(), 0.5 * i)


def artifact(i: int, action: str = "computed", key: str | None = None) -> ArtifactInfo:
    return ArtifactInfo(
        key=key or f"train-{i:08x}",
        name="model",
        stage="train",
        param_set=f"set_{i}",
        path=f"data/cache/iris/set_{i}/train/model.pkl",
        checksum=f"xxh3:{i:016x}",
        size=1000 + i,
        action=action,
        cacher="assay.caching.PickleCacher",
    )


def test_records_round_trip_in_insertion_order(store: RunStore, db_path: Path) -> None:
    run = begin(store)
    sets = [param_set(i) for i in (3, 1, 2)]
    stages = [
        stage_row(3),
        StageRunInfo(None, "compare", "cached", key="compare-1"),
        stage_row(1, "failed"),
        StageRunInfo("set_2", "plot", "skipped"),
    ]
    artifacts = [artifact(3), artifact(1, "reused"), artifact(2)]
    aggregate = ArtifactInfo("cmp-1", "table", "compare", None, "p", None, None, "computed", "c")

    store.record_param_sets(run.id, sets[:2])
    store.record_param_sets(run.id, sets[2:])
    store.record_stages(run.id, stages[:1])
    store.record_stages(run.id, stages[1:])
    store.record_artifacts(run.id, artifacts)
    store.record_artifacts(run.id, [aggregate])

    with RunStore(db_path) as reopened:
        assert reopened.param_sets(run.id) == sets
        assert reopened.stages(run.id) == stages
        assert reopened.artifacts(run.id) == artifacts + [aggregate]


def test_records_of_one_run_stay_with_that_run(store: RunStore) -> None:
    first, second = begin(store), begin(store, minutes=1)
    store.record_param_sets(first.id, [param_set(1)])
    store.record_stages(second.id, [stage_row(2)])
    store.record_artifacts(second.id, [artifact(2)])

    assert store.param_sets(first.id) == [param_set(1)]
    assert store.param_sets(second.id) == []
    assert store.stages(first.id) == []
    assert store.stages(second.id) == [stage_row(2)]
    assert store.artifacts(first.id) == []
    assert store.artifacts(second.id) == [artifact(2)]


def test_what_a_run_recorded_is_read_by_any_reference_to_it(store: RunStore) -> None:
    """`store.provenance(6)` said "No run with id 6": the readers took only full ids,
    while get_run, the CLI and the docs take numbers, prefixes and 'latest'."""
    first, second = begin(store), begin(store, minutes=1)
    store.record_provenance(second.id, {"git": {"commit": "abc"}})
    store.record_stages(second.id, [stage_row(2)])
    store.record_artifacts(second.id, [artifact(2)])
    store.record_param_sets(second.id, [param_set(2)])
    for ref in (second.id, 2, "2", "latest", -1, "-1", second.id[:10]):
        assert store.provenance(ref) == {"git": {"commit": "abc"}}, ref
        assert store.stages(ref) == [stage_row(2)]
        assert store.artifacts(ref) == [artifact(2)]
        assert store.param_sets(ref) == [param_set(2)]
    assert store.provenance(first.number) is None and store.stages("-2") == []


def test_values_json_cannot_hold_are_stored_as_their_repr(store: RunStore) -> None:
    run = begin(store)
    store.record_param_sets(run.id, [ParamSetInfo("p", "h", "C", {"data": Path("x.csv")})])
    assert store.param_sets(run.id)[0].values == {"data": repr(Path("x.csv"))}


def test_recording_for_an_unknown_run_is_an_error(store: RunStore) -> None:
    begin(store)
    with pytest.raises(RunStoreError, match="No run with id 'iris-0001'.*get_run"):
        store.record_stages("iris-0001", [stage_row(1)])
    with pytest.raises(RunStoreError, match="No run 'nope' in the run store"):
        store.stages("nope")


def test_bad_statuses_are_all_named_and_nothing_is_recorded(store: RunStore) -> None:
    run = begin(store)
    rows = [stage_row(1), stage_row(2, "done"), stage_row(3, "ok")]
    with pytest.raises(RunStoreError, match="2 stage rows.*set_2/train: 'done'.*set_3/train: 'ok'"):
        store.record_stages(run.id, rows)
    with pytest.raises(RunStoreError, match="1 artifacts.*'made'"):
        store.record_artifacts(run.id, [artifact(1), artifact(2, "made")])
    assert store.stages(run.id) == []
    assert store.artifacts(run.id) == []


def test_find_artifact_runs_lists_producers_and_reusers(store: RunStore) -> None:
    runs = [begin(store, minutes=i) for i in range(3)]
    store.record_artifacts(runs[0].id, [artifact(1, key="shared"), artifact(2)])
    store.record_artifacts(runs[2].id, [artifact(1, "reused", key="shared")])

    assert store.find_artifact_runs("shared") == [
        ArtifactRun(1, runs[0].id, "computed"),
        ArtifactRun(3, runs[2].id, "reused"),
    ]
    assert store.find_artifact_runs(artifact(2).key) == [(1, runs[0].id, "computed")]
    assert store.find_artifact_runs("unknown") == []


def test_a_large_run_is_recorded_with_one_transaction_per_call(store: RunStore) -> None:
    run = begin(store)
    sets = [param_set(i) for i in range(2_000)]
    stages = [stage_row(i % 2_000, "cached" if i % 3 else "executed") for i in range(10_000)]

    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    store.record_param_sets(run.id, sets)
    store.record_stages(run.id, stages)
    store._connection().set_trace_callback(None)

    transactions = [s for s in statements if s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))]
    assert transactions == ["BEGIN IMMEDIATE", "COMMIT"] * 2
    assert not [s for s in statements if s.startswith(("UPDATE", "DELETE"))]
    assert store.param_sets(run.id) == sets
    assert store.stages(run.id) == stages


# -- files that are not (our) run stores ---------------------------------------------


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(db_path: Path) -> None:
    garbage = b"\x00not a database\xff" * 400
    db_path.write_bytes(garbage)
    store = RunStore(db_path)
    with pytest.raises(RunStoreError, match="not an assay run store") as caught:
        store.list_runs()
    assert str(db_path) in str(caught.value)
    assert "move it away" in str(caught.value)
    assert db_path.read_bytes() == garbage


def test_a_sqlite_file_of_another_program_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as other:
        other.execute("CREATE TABLE customers (name TEXT)")
    other.close()
    with RunStore(db_path) as store, pytest.raises(RunStoreError) as caught:
        store.get_run("latest")
    message = str(caught.value)
    assert str(db_path) in message and "not an assay run store" in message
    assert "customers" in message and "runs" in message


def test_a_store_from_a_newer_assay_is_refused(db_path: Path) -> None:
    with RunStore(db_path) as store:
        begin(store)
    with sqlite3.connect(db_path) as other:
        other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    other.close()
    with RunStore(db_path) as store, pytest.raises(RunStoreError) as caught:
        store.list_runs()
    assert "newer version of assay" in str(caught.value)
    assert "pip install -U assay" in str(caught.value)


def test_a_missing_folder_is_reported_not_created(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "assay.db"
    with pytest.raises(RunStoreError, match="does not exist"):
        RunStore(path).list_runs()
    assert not path.parent.exists()


def test_closing_releases_the_file_and_the_store_reopens_on_use(store: RunStore) -> None:
    run = begin(store)
    store.close()
    assert store._conn is None
    assert store.get_run(1) == run


def test_a_run_whose_process_was_killed_is_recorded_as_interrupted_when_next_read(
    tmp_path: Path,
):
    """kill -9 (or the kernel's out-of-memory killer) leaves no chance to record the end:
    the next reader on the same machine notices the process is gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import copy_project, run_cli

    project = copy_project("basic", tmp_path)
    (project / "slow.flag").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "scaled"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (project / "waiting.txt").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    with RunStore(project / "assay.db") as store:
        assert store.settle_abandoned_runs() == []  # alive: left alone
        assert store.get_run("latest").status == "running"
    process.send_signal(signal.SIGKILL)
    process.wait()
    with RunStore(project / "assay.db") as store:  # a run of another machine: left alone
        store.begin_run("elsewhere", command="assay run elsewhere")
        with sqlite3.connect(project / "assay.db") as db:
            db.execute("UPDATE runs SET host = 'node17' WHERE experiment = 'elsewhere'")

    listing = run_cli("ls", cwd=project)

    assert listing.code == 0, listing
    with RunStore(project / "assay.db") as store:
        killed = store.get_run(1)
        assert killed.status == "interrupted"
        assert "process ended without recording the end of the run" in killed.error
        assert store.get_run("latest").status == "running"  # node17's


@pytest.mark.parametrize(
    "ref",
    [
        "99999999999999999999999",
        10**23,
        "9223372036854775808",
        "-9223372036854775809",
        "-99999999999999999999999",
        "9" * 5000,
        "-" + "9" * 5000,
    ],
)
def test_a_run_number_beyond_sqlite_is_no_such_run(
    store: RunStore, three_runs: list[RunInfo], ref: object
) -> None:
    """int(text) was bound as it was: SQLite raised OverflowError (a traceback)."""
    with pytest.raises(RunStoreError, match="No run") as caught:
        store.get_run(ref)  # type: ignore[arg-type]
    assert three_runs[2].id in str(caught.value)
    with pytest.raises(RunStoreError, match="No run"):
        store.get_run("9223372036854775807")  # the largest SQLite holds: asked, not found
    with pytest.raises(RunStoreError, match="No run"):
        store.get_run("-9223372036854775807")


def test_assay_show_and_compare_of_a_run_number_beyond_sqlite_say_no_such_run(
    tmp_path: Path,
) -> None:
    from conftest import copy_project, run_cli

    project = copy_project("basic", tmp_path)
    assert run_cli("run", "diamond", "--no-report", cwd=project).code == 0
    for args in (("show", "99999999999999999999999"), ("compare", "1", "-" + "9" * 30)):
        result = run_cli(*args, cwd=project)
        assert result.code != 0
        assert "Traceback" not in result.output and "OverflowError" not in result.output
        assert "No run '" in result.text and "The most recent runs are:" in result.text
