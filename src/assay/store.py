"""The run store: every run's provenance in one SQLite file, ``assay.db``.

Each time an experiment runs, assay writes down what happened in the run
store, which lives in the project root. You can look at it through the command
line (``assay ls``, ``assay show 7``, ``assay lineage KEY``), in the dashboard,
or from Python::

    from assay.store import RunStore

    with RunStore("assay.db") as store:
        for run in store.list_runs(experiment="iris", status="completed", limit=5):
            print(run.number, run.id, run.duration_s)
        latest = store.get_run("latest")
        for stage in store.stages(latest.id):
            print(stage.param_set, stage.stage, stage.status)

``"assay.db"`` is relative to the current folder: from another folder than the
project's (a ``notebooks/`` folder), open
``RunStore(ProjectConfig.load().store_path)``. Reading a store file that does
not exist raises :class:`~assay.errors.RunStoreError` (it is not created empty).

What is kept, as plain records (dataclasses you can print, compare and turn
into JSON with :func:`dataclasses.asdict`):

- :class:`RunInfo`: one run (number, id, status, times, host, command, ...);
- :class:`ParamSetInfo`: each parameter set the run used, with its hash;
- :class:`StageRunInfo`: each stage of each parameter set and what happened
  to it (executed, taken from the cache, failed, skipped);
- :class:`ArtifactInfo`: each artifact the run computed or reused, with its
  cache key and checksum;
- the run's provenance (git commit, dirty flag and diff, installed packages,
  conda; see :mod:`assay.provenance`), through :meth:`RunStore.provenance`.

Several runs, in several processes, may write to one store at the same time:
the file is in SQLite's WAL mode, writers wait up to 30 s for each other, and
run numbers are handed out inside a write lock, so they are unique and
consecutive.
"""

from __future__ import annotations

import getpass
import json
import logging
import numbers
import os
import platform
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from assay.compat import names_curifactory_has
from assay.errors import RunStoreError
from assay.humanize import format_size

log = logging.getLogger(__name__)

__all__ = [
    "ARTIFACT_ACTIONS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "STAGE_STATUSES",
    "ArtifactInfo",
    "ArtifactRun",
    "ParamSetInfo",
    "RunInfo",
    "RunStore",
    "StageRunInfo",
]

SCHEMA_VERSION = 2
"""Version of the table layout, kept in the file's ``PRAGMA user_version``.

Version 2 added the git columns of ``runs`` and the ``provenance`` table; a
version-1 store is upgraded in place the first time it is opened."""

RUN_STATUSES = ("running", "completed", "failed", "interrupted")
"""What a run's ``status`` can be; all but ``"running"`` are final."""

STAGE_STATUSES = ("executed", "cached", "failed", "interrupted", "skipped")
"""What a stage's ``status`` can be in a run (see :mod:`assay.run_record`)."""

STOPPED = ("failed", "interrupted")
"""Stage run statuses of an attempt that cached nothing."""

ARTIFACT_ACTIONS = ("computed", "reused")
"""Whether a run computed an artifact or took it from the cache."""

STAGE_CODE = "stage_code"
"""The part of a run's provenance that says which code each stage ran with (see
:meth:`RunStore.record_stage_code`)."""

BUSY_TIMEOUT_S = 30.0
"""How long a writer waits for another process's write to finish."""

_FINAL_STATUSES = RUN_STATUSES[1:]
_TABLES = ("runs", "param_sets", "stages", "artifacts", "provenance")
_V1_TABLES = _TABLES[:4]
_SUGGESTIONS = 5  # runs listed when a reference matches nothing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    number           INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    experiment       TEXT NOT NULL,
    status           TEXT NOT NULL,
    started          TEXT NOT NULL,
    ended            TEXT,
    host             TEXT NOT NULL,
    user             TEXT NOT NULL,
    platform         TEXT NOT NULL,
    python           TEXT NOT NULL,
    command          TEXT NOT NULL,
    notes            TEXT,
    param_names_json TEXT NOT NULL,
    error            TEXT,
    config_json      TEXT NOT NULL,
    git_commit       TEXT,
    git_branch       TEXT,
    git_dirty        INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment, number);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, number);

CREATE TABLE IF NOT EXISTS param_sets (
    run         INTEGER NOT NULL REFERENCES runs (number),
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    cls         TEXT NOT NULL,
    values_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS param_sets_by_run ON param_sets (run);

CREATE TABLE IF NOT EXISTS stages (
    run        INTEGER NOT NULL REFERENCES runs (number),
    param_set  TEXT,
    stage      TEXT NOT NULL,
    status     TEXT NOT NULL,
    key        TEXT,
    started    TEXT,
    duration_s REAL
);
CREATE INDEX IF NOT EXISTS stages_by_run ON stages (run);

CREATE TABLE IF NOT EXISTS artifacts (
    run       INTEGER NOT NULL REFERENCES runs (number),
    key       TEXT NOT NULL,
    name      TEXT NOT NULL,
    stage     TEXT NOT NULL,
    param_set TEXT,
    path      TEXT NOT NULL,
    checksum  TEXT,
    size      INTEGER,
    action    TEXT NOT NULL,
    cacher    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_by_run ON artifacts (run);
CREATE INDEX IF NOT EXISTS artifacts_by_key ON artifacts (key);

CREATE TABLE IF NOT EXISTS provenance (
    run       INTEGER PRIMARY KEY REFERENCES runs (number),
    data_json TEXT NOT NULL
);
"""

_MIGRATE_1_TO_2 = """
ALTER TABLE runs ADD COLUMN git_commit TEXT;
ALTER TABLE runs ADD COLUMN git_branch TEXT;
ALTER TABLE runs ADD COLUMN git_dirty INTEGER;
CREATE TABLE IF NOT EXISTS provenance (
    run       INTEGER PRIMARY KEY REFERENCES runs (number),
    data_json TEXT NOT NULL
)
"""

_RUN_COLUMN_NAMES = (
    "number", "id", "experiment", "status", "started", "ended", "host", "user", "platform",
    "python", "command", "notes", "param_names_json", "error", "config_json",
    "git_commit", "git_branch", "git_dirty",
)  # fmt: skip
_RUN_COLUMNS = ", ".join(_RUN_COLUMN_NAMES)


# ---------------------------------------------------------------------------
# Records


@dataclass
class RunInfo:
    """One run of an experiment, as recorded in the run store.

    Returned by :meth:`RunStore.begin_run`, :meth:`RunStore.get_run` and
    :meth:`RunStore.list_runs`. Example::

        run = store.get_run("latest")
        print(f"run {run.number} of {run.experiment}: {run.status}, {run.duration_s} s")
    """

    id: str
    """Readable unique id: experiment, zero-padded number, UTC start, e.g.
    ``"iris-0007-20261125T184512"``."""
    number: int
    """Sequential number within the project, starting at 1 and never reused."""
    experiment: str
    """Name of the experiment that ran, e.g. ``"iris"``."""
    status: str
    """``"running"``, ``"completed"``, ``"failed"`` or ``"interrupted"``."""
    started: str
    """Start time, ISO 8601 in UTC to the millisecond, e.g. ``"2026-11-25T18:45:12.345Z"``."""
    ended: str | None
    """End time in the same format, or ``None`` while the run is (or was left) running."""
    host: str
    """Name of the machine the run ran on."""
    user: str
    """Login name of the person who started the run."""
    platform: str
    """Operating system, e.g. ``"Linux-6.5.0-x86_64-with-glibc2.35"``."""
    python: str
    """Python implementation and version, e.g. ``"CPython 3.11.7"``."""
    command: str
    """The exact command line that started the run."""
    notes: str | None
    """Free text given with ``--notes``, if any."""
    param_names: list[str]
    """Names of the parameter sets the run used, in order."""
    error: str | None
    """One-paragraph message saying why a failed or interrupted run stopped."""
    config: dict[str, Any]
    """Free-form settings of the run: flags, ``--set`` overrides, cache folder, ..."""
    git_commit: str | None = None
    """The full git commit of the project's code (40 hex digits), if it is in git."""
    git_branch: str | None = None
    """The checked-out branch, or ``None`` (detached HEAD, no git)."""
    git_dirty: bool | None = None
    """Whether the code differed from ``git_commit`` (see :meth:`RunStore.provenance`
    for the diff), or ``None`` if unknown."""

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, or ``None`` if the run has not ended."""
        if self.ended is None:
            return None
        return (_parse_stamp(self.ended) - _parse_stamp(self.started)).total_seconds()

    # Curifactory's manager.run_info is a dict: its keys read the same values here.
    _CURIFACTORY_KEYS = {
        "reference": "id",
        "experiment_name": "experiment",
        "run_number": "number",
        "timestamp": "started",
        "commit": "git_commit",
        "workdir_dirty": "git_dirty",
        "status": "status",
        "cli": "command",
        "hostname": "host",
        "notes": "notes",
        "error": "error",
    }

    def __getitem__(self, key: str) -> Any:
        """``run_info["reference"]`` and Curifactory's other keys (``experiment_name``,
        ``run_number``, ``timestamp``, ``commit``, ``status``, ``cli``, ``hostname``,
        ``notes``, ``param_files``): code written for Curifactory's dict keeps working."""
        if key == "param_files":
            return list(self.config.get("param_files") or [])
        try:
            return getattr(self, self._CURIFACTORY_KEYS[key])
        except KeyError:
            known = ", ".join(sorted([*self._CURIFACTORY_KEYS, "param_files"]))
            raise KeyError(
                f"{key!r}: a run's record has no such entry. The keys of Curifactory's "
                f"run_info it answers to: {known}; or use its attributes (run_info.id, "
                ".number, .experiment, .started, .config, ...)."
            ) from None

    def get(self, key: str, default: Any = None) -> Any:
        """``run_info.get(key, default)``, as on Curifactory's dict."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self._CURIFACTORY_KEYS or key == "param_files"


@dataclass
class ParamSetInfo:
    """One parameter set a run used, with the hash that identifies it.

    Example: ``ParamSetInfo("trees_100", "3f1c...", "experiments.iris.Params",
    {"seed": 42, "n_trees": 100})``.
    """

    name: str
    """The set's label (``params.name``); not part of its identity."""
    hash: str
    """The set's stable hash, as used in cache keys."""
    cls: str
    """Qualified name of the parameter class, e.g. ``"experiments.iris.Params"``."""
    values: dict[str, Any]
    """Field values as JSON-friendly data. Values JSON cannot hold are stored as
    their ``repr()``."""


@dataclass
class StageRunInfo:
    """What happened to one stage of one parameter set during a run.

    Example: ``StageRunInfo("trees_100", "train", "cached", key="train-9a0b...")``.
    """

    param_set: str | None
    """Name of the parameter set, or ``None`` for an aggregate stage."""
    stage: str
    """The stage's name."""
    status: str
    """``"executed"``, ``"cached"`` (outputs taken from the cache), ``"failed"`` (it
    raised), ``"interrupted"`` (stopped with the run: executing, or sent to a worker,
    when another stage failed or the run was interrupted) or ``"skipped"`` (not
    needed, or not reached)."""
    key: str | None = None
    """Cache key of the stage's outputs, if it has any."""
    started: str | None = None
    """When the stage began executing (ISO 8601 UTC), or ``None`` if it did not run."""
    duration_s: float | None = None
    """How long it executed, in seconds, or ``None`` if it did not run."""


@dataclass
class ArtifactInfo:
    """One artifact a run computed or took from the cache.

    Example: ``ArtifactInfo("train-9a0b...", "model", "train", "trees_100",
    "data/cache/iris/trees_100/train/model.pkl", "xxh3:5e1f...", 20480,
    "computed", "assay.caching.PickleCacher")``.
    """

    key: str
    """The artifact's cache key."""
    name: str
    """The output's name, as declared in the stage's ``outputs``."""
    stage: str
    """The stage that produces it."""
    param_set: str | None
    """Name of the parameter set, or ``None`` for an aggregate stage's output."""
    path: str
    """Where the artifact lives in the cache (a path or URL)."""
    checksum: str | None
    """Checksum of the cached file(s), if known."""
    size: int | None
    """Size in bytes, if known."""
    action: str
    """``"computed"`` by this run, or ``"reused"`` from the cache."""
    cacher: str
    """Qualified name of the cacher that saves and loads it."""


class ArtifactRun(NamedTuple):
    """A run that computed or reused an artifact (see :meth:`RunStore.find_artifact_runs`)."""

    run_number: int
    """The run's number."""
    run_id: str
    """The run's id."""
    action: str
    """``"computed"`` or ``"reused"``."""


# ---------------------------------------------------------------------------
# The store


class RunStore:
    """The project's run store, a SQLite file (``assay.db`` in the project root).

    Creating a ``RunStore`` touches nothing; the file is opened (and created
    with empty tables if it does not exist) on first use, so a store can be
    handed to worker processes, which each open their own connection. Use it
    as a context manager, or call :meth:`close`, to release the file::

        with RunStore(project_root / "assay.db") as store:
            run = store.begin_run("iris", command="assay run iris")
            ...
            store.finish_run(run.id, "completed")

    Every problem with the file (not a SQLite database, written by a newer
    assay, locked for too long, ...) raises :class:`~assay.errors.RunStoreError`
    naming the file and what to do.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        """Location of the SQLite file."""
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._inherited: list[sqlite3.Connection] = []
        self.read_only = False
        """Whether the store is only read (you cannot write to its file or its folder: a
        colleague's project, a read-only share; or its disk is full); recording a run
        then fails clearly."""
        self._unwritable: RunStoreError | None = None
        """Why the store is only read when that is not a matter of permissions."""
        self._depth = 0

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        RunStore.__init__(self, state["path"])

    def close(self) -> None:
        """Close the connection to the file. The store reopens it if used again."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- runs ----------------------------------------------------------------

    def begin_run(
        self,
        experiment: str,
        *,
        command: str,
        notes: str | None = None,
        param_names: Iterable[str] = (),
        config: dict[str, Any] | None = None,
        started: datetime | None = None,
    ) -> RunInfo:
        """Record the start of a run and give it the next run number.

        The host, user, platform and Python version are filled in from the
        current process; ``started`` defaults to now (a naive datetime is read
        as local time). The run is recorded as ``"running"`` until
        :meth:`finish_run` is called. Numbers are unique and consecutive even
        when several processes start runs at the same moment.

        Example::

            run = store.begin_run("iris", command="assay run iris -p small",
                                  param_names=["trees_10", "trees_100"],
                                  config={"overrides": {"n_trees": 500}})
            run.number, run.id   # (7, "iris-0007-20261125T184512")
        """
        if not isinstance(experiment, str) or not experiment:
            raise RunStoreError(
                f"Cannot record a run without an experiment name (got {experiment!r})."
            )
        moment = _utc(started)
        names = list(param_names)
        settings = dict(config or {})
        settings["process_id"] = os.getpid()  # see settle_abandoned_runs
        fields = (
            experiment,
            "running",
            _stamp(moment),
            socket.gethostname(),
            _user(),
            _platform(),
            f"{platform.python_implementation()} {platform.python_version()}",
            command,
            notes,
            _dumps(names),
            _dumps(settings),
        )
        with self._writing() as db:
            # AUTOINCREMENT keeps the highest number ever given in sqlite_sequence,
            # so a number is never reused even if its run were deleted.
            (last,) = db.execute(
                "SELECT MAX(n) FROM (SELECT MAX(number) AS n FROM runs"
                " UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'runs')"
            ).fetchone()
            number = (last or 0) + 1
            run_id = f"{safe_id_part(experiment)}-{number:04d}-{moment.strftime('%Y%m%dT%H%M%S')}"
            db.execute(
                "INSERT INTO runs (number, id, experiment, status, started, host, user,"
                " platform, python, command, notes, param_names_json, config_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (number, run_id, *fields),
            )
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE number = ?", (number,))
            return _run_from_row(row.fetchone())

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        ended: datetime | None = None,
    ) -> RunInfo:
        """Record how a run ended and return its updated record.

        ``status`` is ``"completed"``, ``"failed"`` or ``"interrupted"``; give
        ``error`` (one paragraph) for the last two. ``ended`` defaults to now.

        Example: ``store.finish_run(run.id, "failed", error="Stage 'train' ...")``.
        """
        if status not in _FINAL_STATUSES:
            raise RunStoreError(
                f"Cannot finish run {run_id!r} with status {status!r}: "
                f"expected one of {', '.join(_FINAL_STATUSES)}."
            )
        with self._noting_unrecorded(run_id), self._writing() as db:
            number = self._number(db, run_id)
            db.execute(
                "UPDATE runs SET status = ?, ended = ?, error = ? WHERE number = ?",
                (status, _stamp(_utc(ended)), error, number),
            )
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE number = ?", (number,))
            return _run_from_row(row.fetchone())

    @contextmanager
    def _noting_unrecorded(self, run_id: str) -> Iterator[None]:
        """If what a run did cannot be written (a full disk, a store another process kept
        locked), leave an empty marker file
        beside the store, which fits where nothing else does: when the run is settled
        later (:meth:`settle_abandoned_runs`), it is said why it was not recorded
        instead of blaming a kill."""
        try:
            yield
        except RunStoreError as exc:
            cause = exc.__cause__
            unwritable = self._unwritable is not None or (
                isinstance(cause, sqlite3.Error) and (_cannot_write(cause) or _locked(cause))
            )
            number = _run_number_of(run_id)
            if unwritable and number is not None:
                with suppress(OSError):
                    self._unrecorded_marker(number).touch()
            raise

    def _unrecorded_marker(self, number: int) -> Path:
        return self.path.with_name(f".{self.path.name}.unrecorded-{number}")

    def settle_abandoned_runs(self) -> list[int]:
        """Record as interrupted the runs left ``running`` by a process of this machine
        that has ended without saying so (killed with SIGKILL or for lack of memory, a
        power cut); return their numbers. Runs of other machines are left as they are."""
        host = socket.gethostname()
        if not self.path.exists():
            return []  # a new store: no run yet
        with self._reading() as db:
            rows = db.execute(
                "SELECT number, host, config_json FROM runs WHERE status = 'running'"
            ).fetchall()
        gone: list[int] = []
        if self.read_only:
            return gone  # only its owner can settle them (or: the disk is full)
        for number, run_host, config_json in rows:
            try:
                pid = json.loads(config_json).get("process_id")
            except (ValueError, AttributeError):
                continue
            if run_host == host and isinstance(pid, int) and not _process_alive(pid):
                gone.append(number)
        if not gone:
            return gone
        markers = {number: self._unrecorded_marker(number) for number in gone}
        try:
            with self._writing() as db:
                for number in gone:
                    db.execute(
                        "UPDATE runs SET status = 'interrupted', error = ? "
                        "WHERE number = ? AND status = 'running'",
                        (_UNRECORDED if markers[number].exists() else _ABANDONED, number),
                    )
        except RunStoreError:
            return []  # cannot be written now (a full disk): settled another time
        for marker in markers.values():
            marker.unlink(missing_ok=True)
        return gone

    def get_run(self, ref: int | str) -> RunInfo:
        """Find one run from the way a person refers to it.

        ``ref`` may be the run number (``7`` or ``"7"``), the full id, the start
        of an id that only one run has (``"iris-0007"``), ``"latest"`` or
        ``"-1"`` for the newest run, ``"-2"`` for the one before, and so on.
        A reference that matches nothing raises
        :class:`~assay.errors.RunStoreError` listing the most recent runs.
        """
        with self._reading() as db:
            return _run_from_row(self._resolve(db, ref))

    def computed_in(self, run_id: str, key: str) -> bool:
        """Whether the run with this full id computed the artifact with this key
        (``STAGE-RUN-KEY.OUTPUT``). Run ids are only unique within one store: another
        project's run may have the same id, not the same artifacts."""
        with self._reading() as db:
            row = db.execute(
                "SELECT 1 FROM artifacts JOIN runs ON runs.number = artifacts.run"
                " WHERE runs.id = ? AND artifacts.key = ? AND artifacts.action = 'computed'",
                (run_id, key),
            ).fetchone()
        return row is not None

    def list_runs(
        self,
        *,
        experiment: str | None = None,
        status: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[RunInfo]:
        """Return runs, newest first, optionally of one experiment and/or status.

        ``limit=None`` returns them all; ``offset`` skips that many of the
        newest, for paging. Example: the second page of failed runs of iris
        is ``store.list_runs(experiment="iris", status="failed", limit=20, offset=20)``.
        """
        where, args = _run_filter(experiment, status)
        # Beyond SQLite's integers (assay ls -n 99999999999999999999): as many as there are.
        args += [-1 if limit is None else _within_int64(limit), _within_int64(offset)]
        with self._reading() as db:
            rows = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY number DESC LIMIT ? OFFSET ?",
                args,
            ).fetchall()
        return [_run_from_row(row) for row in rows]

    def count_runs(self, *, experiment: str | None = None, status: str | None = None) -> int:
        """How many runs :meth:`list_runs` would give without a limit (without reading them)."""
        where, args = _run_filter(experiment, status)
        with self._reading() as db:
            return db.execute(f"SELECT count(*) FROM runs {where}", args).fetchone()[0]

    def experiments(self) -> list[str]:
        """The names of the experiments the store has runs of, sorted."""
        with self._reading() as db:
            rows = db.execute("SELECT DISTINCT experiment FROM runs ORDER BY experiment").fetchall()
        return [row[0] for row in rows]

    # -- what a run did ------------------------------------------------------

    def set_param_names(self, run_id: str, names: Iterable[str]) -> None:
        """Change the names of the parameter sets a run lists (a notebook session's run,
        recorded again after more sets were used)."""
        with self._writing() as db:
            db.execute(
                "UPDATE runs SET param_names_json = ? WHERE id = ?", (_dumps(list(names)), run_id)
            )

    def forget_details(self, run_id: str) -> None:
        """Remove a run's parameter sets, stage runs, artifacts and metrics, to record
        them again (a notebook session's run, reported once more after more stages)."""
        with self._writing() as db:
            number = self._number(db, run_id)
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            for table in ("param_sets", "stages", "artifacts", "metrics"):
                if table in tables:
                    db.execute(f"DELETE FROM {table} WHERE run = ?", (number,))

    def record_param_sets(self, run_id: str, sets: Iterable[ParamSetInfo]) -> None:
        """Add the parameter sets a run used, in one write (cheap for 10,000 sets)."""
        rows = [(s.name, s.hash, s.cls, _dumps(s.values)) for s in sets]
        self._append(
            run_id,
            "INSERT INTO param_sets (run, name, hash, cls, values_json) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def record_stages(self, run_id: str, stages: Iterable[StageRunInfo]) -> None:
        """Add what happened to stages during a run, in one write.

        May be called several times per run (say, once per finished parameter
        set); earlier rows are never rewritten.
        """
        stages = list(stages)
        # Labels only for the rows that are wrong: a run of 10,000 sets has 50,000 rows.
        labels = [(f"{s.param_set}/{s.stage}", s.status) for s in stages if s.status not in _STAGE]
        _check_choices("stage rows", "status", labels, STAGE_STATUSES)
        rows = [(s.param_set, s.stage, s.status, s.key, s.started, s.duration_s) for s in stages]
        self._append(
            run_id,
            "INSERT INTO stages (run, param_set, stage, status, key, started, duration_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def record_artifacts(self, run_id: str, artifacts: Iterable[ArtifactInfo]) -> None:
        """Add the artifacts a run computed or reused, in one write."""
        artifacts = list(artifacts)
        wrong = [(a.key, a.action) for a in artifacts if a.action not in _ACTION]
        _check_choices("artifacts", "action", wrong, ARTIFACT_ACTIONS)
        rows = [
            (a.key, a.name, a.stage, a.param_set, a.path, a.checksum, a.size, a.action, a.cacher)
            for a in artifacts
        ]
        self._append(
            run_id,
            "INSERT INTO artifacts (run, key, name, stage, param_set, path, checksum, size,"
            " action, cacher) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def record_provenance(self, run_id: str, provenance: dict[str, Any]) -> RunInfo:
        """Keep a run's provenance (see :mod:`assay.provenance`); return the updated run.

        ``provenance`` is :meth:`assay.provenance.Provenance.to_dict` output. Its
        git commit, branch and dirty flag also go into the run's own row, so
        :class:`RunInfo` carries them.
        """
        git = provenance.get("git") or {}
        dirty = git.get("dirty") if git.get("error") is None else None
        with self._writing() as db:
            number = self._number(db, run_id)
            db.execute(
                "UPDATE runs SET git_commit = ?, git_branch = ?, git_dirty = ? WHERE number = ?",
                (git.get("commit"), git.get("branch"), dirty, number),
            )
            kept = self._provenance_in(db, number).get(STAGE_CODE)
            if kept is not None and STAGE_CODE not in provenance:
                provenance = {**provenance, STAGE_CODE: kept}
            db.execute(
                "INSERT OR REPLACE INTO provenance (run, data_json) VALUES (?, ?)",
                (number, _dumps(provenance)),
            )
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE number = ?", (number,))
            return _run_from_row(row.fetchone())

    def record_stage_code(self, run_id: str, code: dict[str, dict[str, str]]) -> None:
        """Keep, in a run's provenance (``"stage_code"``), the code each stage ran with:
        ``{stage: {function or constant: digest}}``, as its artifacts' sidecars record it.

        ``assay compare`` reads it there, as ``assay cache gc`` removes the sidecars of
        older runs' artifacts. A run without recorded provenance (its capture failed)
        keeps none: a provenance of stage code alone would pass for one without git or
        packages (``compare`` then reads the sidecars).
        """
        with self._writing() as db:
            number = self._number(db, run_id)
            data = self._provenance_in(db, number)
            if not data:
                return
            data[STAGE_CODE] = {**(data.get(STAGE_CODE) or {}), **code}
            db.execute(
                "INSERT OR REPLACE INTO provenance (run, data_json) VALUES (?, ?)",
                (number, _dumps(data)),
            )

    @staticmethod
    def _provenance_in(db: sqlite3.Connection, number: int) -> dict[str, Any]:
        row = db.execute("SELECT data_json FROM provenance WHERE run = ?", (number,)).fetchone()
        data = _loads(row[0], {}, f"provenance of run {number}") if row else {}
        return data if isinstance(data, dict) else {}

    def provenance(self, run: int | str) -> dict[str, Any] | None:
        """The provenance recorded for a run, or ``None`` (runs before it existed).

        ``run`` is any reference :meth:`get_run` takes (``7``, an id, ``"latest"``, ...),
        as are those of :meth:`param_sets`, :meth:`stages` and :meth:`artifacts`.
        """
        rows = self._rows_of(run, "SELECT data_json FROM provenance")
        return _loads(rows[0][0], {}, f"provenance of run {run}") if rows else None

    def known_checksums(self, keys: Iterable[str]) -> dict[str, tuple[str, int | None]]:
        """``{key: (checksum, size)}`` for the artifact keys any earlier run recorded."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, tuple[str, int | None]] = {}
        with self._reading() as db:
            for start in range(0, len(keys), 500):
                batch = keys[start : start + 500]
                marks = ", ".join("?" * len(batch))
                for key, checksum, size in db.execute(
                    f"SELECT key, checksum, size FROM artifacts WHERE key IN ({marks})"
                    " AND checksum IS NOT NULL",
                    batch,
                ):
                    found[key] = (checksum, size)
        return found

    def recorded_outputs(
        self, stage_keys: Iterable[str]
    ) -> dict[str, dict[str, tuple[str, str | None, set]]]:
        """``{stage run key: {output: (stage, parameter set, paths)}}``: the outputs that
        runs recorded for these stage runs, each with its stage, a parameter set that
        used it, and the paths of its (first) file."""
        found: dict[str, dict[str, tuple[str, str | None, set]]] = {}
        with self._reading() as db:
            for stage_key in dict.fromkeys(stage_keys):
                # Artifact keys are "STAGE_KEY.OUTPUT": a range of the index ('/' follows '.').
                for name, stage, param_set, path in db.execute(
                    "SELECT name, stage, param_set, path FROM artifacts"
                    " WHERE key >= ? AND key < ? ORDER BY run",
                    (f"{stage_key}.", f"{stage_key}/"),
                ):
                    outputs = found.setdefault(stage_key, {})
                    outputs.setdefault(name, (stage, param_set, set()))[2].add(path)
        return found

    def param_sets(self, run: int | str) -> list[ParamSetInfo]:
        """The parameter sets recorded for a run (a number, id, ...), in the order recorded."""
        rows = self._rows_of(run, "SELECT name, hash, cls, values_json FROM param_sets")
        return [
            ParamSetInfo(name, h, cls, _loads(values, {}, f"values of parameter set {name!r}"))
            for name, h, cls, values in rows
        ]

    def stages(self, run: int | str) -> list[StageRunInfo]:
        """The stage records of a run (a number, id, ...), in the order recorded."""
        rows = self._rows_of(
            run, "SELECT param_set, stage, status, key, started, duration_s FROM stages"
        )
        return [StageRunInfo(*row) for row in rows]

    def artifacts(self, run: int | str) -> list[ArtifactInfo]:
        """The artifacts of a run (a number, id, ...), in the order recorded."""
        rows = self._rows_of(
            run,
            "SELECT key, name, stage, param_set, path, checksum, size, action, cacher"
            " FROM artifacts",
        )
        return [ArtifactInfo(*row) for row in rows]

    def find_artifact_runs(self, key: str) -> list[ArtifactRun]:
        """Which runs computed or reused the artifact with this cache key, oldest first.

        Example: ``[(3, "iris-0003-...", "computed"), (7, "iris-0007-...", "reused")]``.
        """
        with self._reading() as db:
            rows = db.execute(
                "SELECT DISTINCT runs.number, runs.id, artifacts.action"
                " FROM artifacts JOIN runs ON runs.number = artifacts.run"
                " WHERE artifacts.key = ? ORDER BY runs.number, artifacts.action",
                (key,),
            ).fetchall()
        return [ArtifactRun(*row) for row in rows]

    def last_recorded(self, key: str) -> tuple[ArtifactRun, ArtifactInfo] | None:
        """The run that last computed the artifact with this cache key (or, if no run of
        the store computed it, last reused it) and what it recorded of it; ``None`` if no
        run did. What remains of an artifact removed from the cache since."""
        with self._reading() as db:
            row = db.execute(
                "SELECT runs.number, runs.id, artifacts.action, artifacts.key, artifacts.name,"
                " artifacts.stage, artifacts.param_set, artifacts.path, artifacts.checksum,"
                " artifacts.size, artifacts.action, artifacts.cacher"
                " FROM artifacts JOIN runs ON runs.number = artifacts.run"
                " WHERE artifacts.key = ?"
                " ORDER BY artifacts.action = 'computed' DESC, runs.number DESC LIMIT 1",
                (key,),
            ).fetchone()
        return None if row is None else (ArtifactRun(*row[:3]), ArtifactInfo(*row[3:]))

    def stopped_stage_runs(self, experiment: str) -> dict[tuple[str, str], tuple[int, str]]:
        """Stage runs of ``experiment`` whose last attempt failed or was interrupted:
        ``(parameter set, stage)`` -> ``(run number, status)`` (for ``assay why``: such a
        stage run cached nothing, and may have no key, which it learns as it runs)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT stages.param_set, stages.stage, stages.run, stages.status"
                " FROM stages JOIN runs ON runs.number = stages.run WHERE runs.experiment = ?"
                " AND stages.status IN ('executed', 'cached', 'failed', 'interrupted')"
                " ORDER BY stages.run",
                (experiment,),
            ).fetchall()
        last = {(param_set or "", stage): (run, status) for param_set, stage, run, status in rows}
        return {where: done for where, done in last.items() if done[1] in STOPPED}

    # -- internals -----------------------------------------------------------

    def _append(self, run_id: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` for one run with a single executemany in one transaction."""
        with self._noting_unrecorded(run_id), self._writing() as db:
            number = self._number(db, run_id)
            db.executemany(sql, ((number, *row) for row in rows))

    def _rows_of(self, run: int | str, select: str) -> list[tuple[Any, ...]]:
        """Rows of one run (any reference :meth:`get_run` takes) from a per-run table."""
        with self._reading() as db:
            number = self._resolve(db, run)[0]
            return db.execute(f"{select} WHERE run = ? ORDER BY rowid", (number,)).fetchall()

    def _number(self, db: sqlite3.Connection, run_id: str) -> int:
        row = db.execute("SELECT number FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunStoreError(
                f"No run with id {run_id!r} in the run store {self.path}. This needs a full "
                "run id; find one from a number, prefix or 'latest' with get_run()."
            )
        return row[0]

    def _resolve(self, db: sqlite3.Connection, ref: int | str) -> tuple[Any, ...]:
        if isinstance(ref, numbers.Integral) and not isinstance(ref, bool):
            ref = int(ref)  # a numpy or pandas integer too: a column of run numbers
        text = str(ref).strip() if isinstance(ref, (int, str)) else ""
        if text.lower() == "latest":
            text = "-1"
        select = f"SELECT {_RUN_COLUMNS} FROM runs"
        row = None
        if text[:1] == "-" and _is_number(text[1:]) and text[1:].strip("0"):  # -1, -2, ...
            back = _as_int64(text[1:])  # None: more runs back than SQLite can count
            if back is not None:
                query = f"{select} ORDER BY number DESC LIMIT 1 OFFSET ?"
                row = db.execute(query, (back - 1,)).fetchone()
        elif _is_number(text):
            number = _as_int64(text)  # None: beyond any run number SQLite can hold
            if number is not None:
                row = db.execute(f"{select} WHERE number = ?", (number,)).fetchone()
        elif text:
            row = db.execute(f"{select} WHERE id = ?", (text,)).fetchone()
            if row is None:
                matches = db.execute(
                    f"{select} WHERE substr(id, 1, length(?)) = ? ORDER BY number DESC LIMIT ?",
                    (text, text, _SUGGESTIONS + 1),
                ).fetchall()
                if len(matches) > 1:
                    shown = ", ".join(m[1] for m in matches[:_SUGGESTIONS])
                    more = ", ..." if len(matches) > _SUGGESTIONS else ""
                    raise RunStoreError(
                        f"Run reference {ref!r} is ambiguous: it starts the ids of several runs "
                        f"({shown}{more}). Give more of the id, or the run number."
                    )
                row = matches[0] if matches else None
        if row is None:
            raise self._no_such_run(db, ref)
        return row

    def _no_such_run(self, db: sqlite3.Connection, ref: object) -> RunStoreError:
        recent = db.execute(
            "SELECT number, id, status, started FROM runs ORDER BY number DESC LIMIT ?",
            (_SUGGESTIONS,),
        ).fetchall()
        if not recent:
            return RunStoreError(
                f"No run {ref!r}: the run store {self.path} has no runs yet. "
                "Start one with `assay run EXPERIMENT`."
            )
        listing = "\n".join(
            f"  {number:>5}  {run_id}  {status}  {started}"
            for number, run_id, status, started in recent
        )
        return RunStoreError(
            f"No run {ref!r} in the run store {self.path}. The most recent runs are:\n"
            f"{listing}\n"
            f"Refer to a run by its number (e.g. {recent[0][0]}), its id or a unique start of "
            "it, or by 'latest', -1, -2, ..."
        )

    @contextmanager
    def _reading(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection, under this store's thread lock, with SQLite errors explained.

        Unless ``create`` (a write), a store file that does not exist is not made: asking
        an empty new file would answer "no runs" for the project's runs elsewhere."""
        with self._lock:
            if not create and self.path.parent.is_dir() and not self.path.exists():
                raise self._missing()
            db = self._connection()
            self._depth += 1
            try:
                yield db
            except sqlite3.Error as exc:
                raise self._explain(exc) from exc
            finally:
                self._depth -= 1
                if self._unwritable is not None and not self._depth:
                    self.close()  # its lock keeps every other process out: held no longer

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds SQLite's write lock from its start."""
        with self._reading(create=True) as db:
            if self._unwritable is not None:
                raise self._unwritable
            if self.read_only:
                raise RunStoreError(
                    f"The run store {self.path} cannot be written to (permission denied), so "
                    "no run can be recorded in it. Run from a project folder you can write to "
                    "(or ask its owner to); reading it (assay ls, show, compare) works."
                )
            with _transaction(db):
                yield db

    def _missing(self) -> RunStoreError:
        where = self.path.absolute()
        return RunStoreError(
            f"No run store at {where}: no run has been recorded there. A run store is "
            "the project's assay.db, which `assay run` creates in the project folder: from "
            "another folder (a notebooks/ subfolder), open the project's with "
            "RunStore(ProjectConfig.load().store_path) (from assay.config import "
            "ProjectConfig), or give the path to its assay.db."
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            # Opened before this process was forked: SQLite must not close it here.
            self._inherited.append(self._conn)
        self._conn, self._pid = None, os.getpid()
        if not self.path.parent.is_dir():
            raise RunStoreError(
                f"Cannot open the run store {self.path}: the folder {self.path.parent} "
                "does not exist. Run assay from the project root, or create the folder."
            )
        self._unwritable = None
        self.read_only = self.path.is_file() and not (
            os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK | os.X_OK)
        )
        if self.read_only:
            return self._read_only_connection()
        try:
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._explain(exc) from exc
        try:
            _set_wal(db)
            # With WAL, NORMAL never corrupts the file; a power cut can lose the last
            # commits, not a crashed process. FULL syncs the disk at every commit.
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            self._prepare(db)
        except sqlite3.OperationalError as exc:
            db.close()
            if _cannot_write(exc):
                return self._reading_only(self._explain(exc))
            raise self._explain(exc) from exc
        except sqlite3.DatabaseError as exc:
            db.close()
            raise RunStoreError(
                f"{self.path} is not an assay run store: SQLite cannot read it ({exc}). "
                "If it holds something else, move it away (assay creates a new, empty run "
                "store there on the next run) or configure a different run store path."
            ) from exc
        except BaseException:
            db.close()
            raise
        self._conn = db
        return db

    def _reading_only(self, why: RunStoreError) -> sqlite3.Connection:
        """A connection that reads a store whose disk is full (or failing): opening it as
        usual fails, since SQLite must write the shared-memory index beside it (WAL mode).

        In exclusive locking mode SQLite keeps that index in memory and reads what the
        write-ahead log holds too. No other process can use the store meanwhile, which
        on a full disk none can anyway. Writing raises ``why``: ``assay ls``, ``show``
        and ``cache gc`` work, a run fails with the reason.
        """
        try:
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error:
            raise why from None
        try:
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            if not self._check_schema(db):  # new or old tables: they would need writing
                raise why
        except sqlite3.Error:
            db.close()
            raise why from None
        except BaseException:
            db.close()
            raise
        self.read_only, self._unwritable, self._conn = True, why, db
        return db

    def _read_only_connection(self) -> sqlite3.Connection:
        """A store we may not write (WAL mode would need to write its shared-memory file
        beside it): opened as immutable, or, while a write-ahead log beside it holds runs
        not yet copied into it, read-only (see :func:`read_only_modes`)."""
        from urllib.parse import quote

        uri = f"file:{quote(str(self.path.resolve()))}"
        modes = read_only_modes(self.path)
        for mode in modes:
            db = sqlite3.connect(
                f"{uri}?{mode}",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                current = self._check_schema(db)
                break
            except sqlite3.DatabaseError as exc:
                db.close()
                if mode == modes[-1]:
                    raise self._explain(exc) from exc
            except BaseException:
                db.close()
                raise
        if not current:
            db.close()
            raise RunStoreError(
                f"The run store {self.path} is read-only and was written by an older assay: "
                "it needs upgrading, which needs write access. Open it once with write access."
            )
        self._conn = db
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Check the file holds a run store we can read; create the tables in a new one,
        or upgrade a version-1 store (adding the git columns and the provenance table)."""
        if self._check_schema(db):
            return
        with _transaction(db):  # another process may be creating the tables right now
            if not self._check_schema(db):
                (version,) = db.execute("PRAGMA user_version").fetchone()
                script = _MIGRATE_1_TO_2 if version == 1 else _SCHEMA
                # One statement at a time: executescript() would commit our transaction.
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_schema(self, db: sqlite3.Connection) -> bool:
        """True if the tables are there, False if the database is empty; else raise."""
        with _one_view(db):  # not the version from before another process made the tables
            (version,) = db.execute("PRAGMA user_version").fetchone()
            tables = {
                name
                for (name,) in db.execute(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            }
        if version > SCHEMA_VERSION:
            raise RunStoreError(
                f"The run store {self.path} was written by a newer version of assay (schema "
                f"version {version}; this assay reads up to {SCHEMA_VERSION}). Upgrade assay "
                "(pip install -U assay) to use it."
            )
        if version == 0 and not tables:
            return False
        if version == 1 and all(t in tables for t in _V1_TABLES):
            return False  # an older layout: _prepare upgrades it
        missing = [t for t in _TABLES if t not in tables]
        if version == SCHEMA_VERSION and not missing:
            return True
        found = ", ".join(sorted(tables)) or "none"
        raise RunStoreError(
            f"{self.path} is a SQLite database but not an assay run store (schema version "
            f"{version}, tables: {found}; missing: {', '.join(missing) or 'none'}). Move it "
            "away (assay creates a new run store there on the next run) or configure a "
            "different run store path."
        )

    def _explain(self, exc: sqlite3.Error) -> RunStoreError:
        if "locked" in str(exc) or "busy" in str(exc):
            return RunStoreError(
                f"The run store {self.path} is locked ({exc}): another process kept it busy "
                f"for more than {BUSY_TIMEOUT_S:.0f} s, or its filesystem does not support "
                "SQLite's locks (some network filesystems). Try again, check that no stuck "
                "assay process keeps it open, or keep the run store on a local disk."
            )
        elsewhere = "set store_path in assay.toml (or ASSAY_STORE_PATH) to a file elsewhere"
        if self.path.is_dir():
            return RunStoreError(
                f"The run store {self.path} is a folder, not a SQLite file ({exc}). Move the "
                f"folder away (assay creates a new run store there on the next run), or "
                f"{elsewhere}."
            )
        if "disk is full" in str(exc) or "disk I/O error" in str(exc):
            free = _free_space(self.path.parent)
            if free is not None and free < _NEARLY_FULL:
                why = f"the disk holding it is full ({exc}; {format_size(free)} free)"
            else:
                why = (
                    f"{exc}: the disk holding it may be full (or a quota reached), failing, "
                    f"or not writable"
                )
            return RunStoreError(
                f"The run store {self.path} could not be written: {why}. Make room on that "
                f"disk, or {elsewhere}; then run the same command again."
            )
        if _damaged(exc):
            return RunStoreError(
                f"The run store {self.path} is damaged ({_first_line(exc)}): SQLite cannot "
                "read its runs. Move it away (assay creates a new, empty run store there on "
                "the next run) or set store_path in assay.toml (or ASSAY_STORE_PATH) to a "
                "file elsewhere. Neither the cache nor the runs' records in logs/ "
                "(RUN_ID.json) are affected."
            )
        return RunStoreError(f"The run store {self.path} could not be used: {exc}.")


# ---------------------------------------------------------------------------
# Helpers


def _damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file's pages or text are broken (a bad copy, a crash on
    a disk that lies about writes): no retry helps."""
    text = str(exc)
    return "malformed" in text or "Could not decode to UTF-8" in text


def _first_line(exc: sqlite3.Error) -> str:
    """The start of SQLite's message, without the broken text it may quote."""
    text = str(exc)
    if "Could not decode to UTF-8" in text:
        return text.split(" with text ", 1)[0]
    return text.splitlines()[0] if text else type(exc).__name__


_NEARLY_FULL = 1 << 20
"""Free bytes below which a disk counts as full: SQLite needs room for its journal too."""


def _free_space(folder: Path) -> int | None:
    """The free bytes on the disk of ``folder`` (``None``: cannot tell)."""
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def read_only_modes(path: Path) -> tuple[str, ...]:
    """How to open the store at ``path`` that we may not write, best first (SQLite URI
    parameters). ``immutable=1`` reads the file alone; while a write-ahead log beside it
    (``assay.db-wal``) holds what is not yet in the file (the latest runs: a process that
    has the store open, a dashboard or a notebook, or one that was killed, keeps them
    there), ``mode=ro`` reads that too, building its index in memory where it cannot
    write the shared-memory file. Immutable is the fallback when that fails (no
    ``-shm`` file and none can be made)."""
    try:
        pending = path.with_name(f"{path.name}-wal").stat().st_size > 0
    except OSError:
        pending = False
    return ("mode=ro", "immutable=1") if pending else ("immutable=1",)


def _run_filter(experiment: str | None, status: str | None) -> tuple[str, list]:
    """The ``WHERE`` clause (and its arguments) picking runs of ``experiment`` with
    ``status`` (either may be ``None``: any)."""
    if status is not None and status not in RUN_STATUSES:
        raise RunStoreError(
            f"Unknown run status {status!r}: expected one of {', '.join(RUN_STATUSES)}."
        )
    conditions, args = [], []
    for column, value in (("experiment", experiment), ("status", status)):
        if value is not None:
            conditions.append(f"{column} = ?")
            args.append(value)
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), args


def _run_from_row(row: tuple[Any, ...]) -> RunInfo:
    values = dict(zip(_RUN_COLUMN_NAMES, row))
    what = f"run {values.get('number')}'s"
    values["param_names"] = _loads(values.pop("param_names_json"), [], f"{what} set names")
    values["config"] = _loads(values.pop("config_json"), {}, f"{what} settings")
    if isinstance(values["config"], dict):
        values["config"].pop("process_id", None)  # the store's own bookkeeping
    if values["git_dirty"] is not None:
        values["git_dirty"] = bool(values["git_dirty"])
    return RunInfo(**values)


def _loads(text: Any, fallback: Any, what: str) -> Any:
    """A JSON column's value, or ``fallback`` (with a warning naming ``what``) if it is
    damaged (edited by hand, or by a failing disk): one bad entry must not stop ``assay
    ls`` and the others from showing every run."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        log.warning("Part of the run store is damaged (not JSON), shown as empty: %s.", what)
        return fallback


def _set_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL mode, waiting while another process holds the lock this needs.

    SQLite answers "database is locked" at once, without its busy timeout, when
    several processes open a new run store at the same moment.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def _one_view(db: sqlite3.Connection) -> Iterator[None]:
    """Reads that all see the file as it was at the first of them (a read transaction).

    Each statement outside a transaction sees the file as it is then: between two
    of them, another process can commit (make the tables, say).
    """
    if db.in_transaction:  # the caller's transaction gives that already
        yield
        return
    db.execute("BEGIN")
    try:
        yield
    finally:
        if db.in_transaction:  # a failed read may have ended it
            db.execute("COMMIT")  # nothing was written: this only ends the read


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Hold SQLite's write lock from the start; commit on success, else roll back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


_STAGE, _ACTION = frozenset(STAGE_STATUSES), frozenset(ARTIFACT_ACTIONS)


def _check_choices(
    what: str, attribute: str, items: list[tuple[str, str]], allowed: tuple[str, ...]
) -> None:
    """Raise once, naming every item whose ``attribute`` is not one of ``allowed`` (if any)."""
    bad = [f"{label}: {value!r}" for label, value in items if value not in allowed]
    if bad:
        more = ", ..." if len(bad) > _SUGGESTIONS else ""
        raise RunStoreError(
            f"{len(bad)} {what} have an unknown {attribute} ({', '.join(bad[:_SUGGESTIONS])}"
            f"{more}); expected one of {', '.join(allowed)}. Nothing was recorded."
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False)


def _utc(moment: datetime | None) -> datetime:
    return datetime.now(timezone.utc) if moment is None else moment.astimezone(timezone.utc)


def safe_id_part(text: str) -> str:
    """The experiment's name as it goes into run ids, which name folders and files and are
    written into exported notebooks and Dockerfiles: letters, digits and ``_.+-`` kept,
    anything else (spaces, quotes, braces, line breaks) replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text) or "_"


def _stamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. ``2026-11-25T18:45:12.345Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_stamp(text: str) -> datetime:
    # datetime.fromisoformat only accepts a trailing "Z" from Python 3.11 on.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


_INT64_MAX = 2**63 - 1
"""The largest integer SQLite stores (a larger one raises OverflowError when bound)."""


def _as_int64(text: str) -> int | None:
    """The digits ``text`` as an int, or ``None`` if SQLite cannot hold it."""
    if len(text.lstrip("0")) > len(str(_INT64_MAX)):
        return None  # also keeps int() from refusing thousands of digits
    value = int(text)
    return value if value <= _INT64_MAX else None


def _within_int64(value: int) -> int:
    """``value`` brought into the integers SQLite binds (a larger one raises
    OverflowError); as a limit or offset of runs, any beyond it means the same."""
    return max(-_INT64_MAX, min(int(value), _INT64_MAX))


def _platform() -> str:
    """``Linux-6.5.0-x86_64``: like ``platform.platform()`` without its slow subprocess."""
    uname = os.uname() if hasattr(os, "uname") else None
    if uname is None:  # Windows
        return f"{platform.system()}-{platform.release()}-{platform.machine()}"
    return f"{uname.sysname}-{uname.release}-{uname.machine}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):  # no login name, e.g. in some containers
        return "unknown"


_ABANDONED = (
    "The run's process ended without recording the end of the run: it was killed (kill -9, "
    "out of memory, a batch job's hard limit), the machine stopped, or the run store could "
    "not be written at its end (a full disk). Stages that finished stay cached."
)

_UNRECORDED = (
    "The run ended, but what it did could not be recorded: the run store could not be "
    "written (its disk was full or failing, or another process kept it locked), so its "
    "stages and artifacts are not listed "
    "here; its log may say more. Stages that finished stay cached: run the same command "
    "again to record a run that reuses them."
)


def _cannot_write(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because it cannot write beside the store (a full disk)."""
    return "disk I/O error" in str(exc) or "disk is full" in str(exc)


def _locked(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because another process kept the store locked past the wait."""
    return "locked" in str(exc) or "busy" in str(exc)


def _run_number_of(run_id: str) -> int | None:
    """The number in a run id (``iris-0007-20261125T184512``: 7), if it has one."""
    match = re.search(r"-(\d+)-\d{8}T\d{6}$", run_id)
    return int(match.group(1)) if match else None


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie does not)."""
    if os.name == "nt":  # signal 0 would be a Ctrl-C there: assume it does
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): os.kill said it exists
        return True


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
