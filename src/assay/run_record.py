"""A run's full record, as one JSON file beside its log: ``logs/RUN_ID.json``.

At the end of every run (completed, failed or interrupted) assay writes what
the run store knows about it into one self-describing file, so the record
travels with the log and can be read without assay::

    {
      "format": "assay-run/1",
      "run":         {number, id, experiment, status, started, ended, duration_s,
                      host, user, platform, python, command, notes, error, config,
                      git_commit, git_branch, git_dirty},
      "provenance":  {git: {commit, branch, detached, dirty, modified, untracked,
                            diff, remote, ...},
                      packages: {name: version}, editable, conda, python_*, capture_s},
      "param_sets":  [{name, hash, cls, values}],
      "stages":      [{param_set, stage, status, key, started, duration_s}],
      "artifacts":   [{key, name, stage, param_set, path, checksum, size, action, cacher}]
    }

A stage's ``status`` is ``executed``, ``cached``, ``failed`` (the stage raised: at most
one per run), ``interrupted`` (stopped with the run: executing, or sent to a worker, when
another stage failed or the run was interrupted) or ``skipped`` (not needed, or not
reached).

``run.config`` holds how the run was started (parameter files, ``--names``,
``--indices``, ``--set`` overrides, flags), which is what ``assay reproduce``
and ``assay export`` use to run it again. The same record can be rebuilt from
the run store at any time with :func:`build_run_record`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assay.errors import AssayError

log = logging.getLogger("assay")

__all__ = [
    "FORMAT",
    "build_run_record",
    "read_run_record",
    "record_path",
    "record_provenance",
    "refuse_unfinished",
    "logs_dir_setting",
    "run_log_path",
    "stage_status",
    "write_run_record",
]

FORMAT = "assay-run/1"
"""The ``format`` field of a run record."""


def record_path(config: Any, run_id: str) -> Path:
    """Where a run's record is kept: ``logs/RUN_ID.json``."""
    return Path(config.logs_dir) / f"{run_id}.json"


def logs_dir_setting(config: Any) -> str:
    """The run's logs folder as a run keeps it in its settings (``config["logs_dir"]``):
    relative to the project's folder when inside it (so it holds when the project moves),
    absolute otherwise."""
    folder = Path(config.logs_dir)
    try:
        return folder.relative_to(Path(config.root)).as_posix()
    except ValueError:
        return str(folder)


def run_log_path(config: Any, run: Any) -> Path:
    """Where the log of ``run`` (a :class:`~assay.store.RunInfo` or a record's ``run``
    dict) was written: ``RUN_ID.log`` in the logs folder the run recorded, which may not
    be the project's logs folder now (``ASSAY_LOGS_DIR`` or ``logs_dir`` set for that run
    only, or changed since). A run recorded before assay kept its logs folder, or whose
    log is not there any more, has it in the project's logs folder."""
    settings = (run.get("config") if isinstance(run, dict) else run.config) or {}
    run_id = run["id"] if isinstance(run, dict) else run.id
    current = Path(config.logs_dir) / f"{run_id}.log"
    recorded = settings.get("logs_dir")
    if not isinstance(recorded, str) or not recorded:
        return current
    kept = Path(config.root) / recorded / f"{run_id}.log"  # an absolute one stays as it is
    return kept if kept.exists() or not current.exists() else current


def stage_status(status: str, run_status: str | None = None) -> str:
    """How a stage row of the run store reads: its ``status``, or ``"interrupted"`` for a
    ``"failed"`` one of an interrupted run (how runs recorded before assay 0.1.0 kept the
    stage that Ctrl-C stopped)."""
    return "interrupted" if status == "failed" and run_status == "interrupted" else status


def build_run_record(store: Any, run_ref: int | str) -> dict[str, Any]:
    """The full record of a run, from the run store (see the module docs for its fields)."""
    run = store.get_run(run_ref)
    return {
        "format": FORMAT,
        "run": {**dataclasses.asdict(run), "duration_s": run.duration_s},
        "provenance": store.provenance(run.id),
        # The records hold plain JSON values already: a shallow copy is enough (and fast).
        "param_sets": [dict(vars(p)) for p in store.param_sets(run.id)],
        "stages": [dict(vars(s)) for s in store.stages(run.id)],
        "artifacts": [dict(vars(a)) for a in store.artifacts(run.id)],
    }


def refuse_unfinished(run: dict[str, Any], what: str) -> None:
    """Refuse to export a run that is still running (``what``: ``"full"``, ``"notebook"``
    or ``"docker"``, the ``assay export`` command): its artifacts, stage timings and
    outcome are only recorded as it ends, so an export made now would have none of them.

    The run store settles a run of this machine whose process is gone before the export
    reads it, so a run refused here is going on (or was left running on another machine).
    """
    if run.get("status") != "running":
        return
    import socket

    elsewhere = run.get("host") and run.get("host") != socket.gethostname()
    killed = (
        f" If it was stopped on {run['host']} without ending (killed), any assay command "
        "run there records it as interrupted."
        if elsewhere
        else ""
    )
    raise AssayError(
        f"Run {run['number']} ({run['id']}) is still running (started {run['started']} on "
        f"{run.get('host') or 'an unknown host'}): its artifacts, stage timings and outcome "
        f"are recorded as it ends, so an export made now would have none of them. Export it "
        f"once it has ended (`assay export {what} {run['number']}`; `assay ls` shows its "
        f"status).{killed}"
    )


def write_run_record(store: Any, config: Any, run_id: str) -> Path | None:
    """Write ``logs/RUN_ID.json`` (atomically). A problem is logged, never raised."""
    path = record_path(config, run_id)
    try:
        record = build_run_record(store, run_id)
        write_json(path, record)
    except (OSError, AssayError, TypeError, ValueError) as exc:
        log.warning("The run record %s could not be written: %s", path, exc)
        return None
    return path


def read_run_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read a run record (``logs/RUN_ID.json`` or an export's ``run.json``) and check it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AssayError(f"There is no run record at {path}.") from exc
    except (OSError, ValueError) as exc:
        raise AssayError(f"{path} is not a readable run record: {exc}.") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise AssayError(
            f"{path} is not an assay run record (format {found!r}, expected {FORMAT!r})."
        )
    problem = _record_problem(data)
    if problem:
        raise AssayError(
            f"{path} is a damaged run record: {problem}. Export the run again "
            "(`assay export full RUN` in its project), or use another copy of it."
        )
    return data


def _record_problem(data: dict) -> str | None:
    """What is missing from a run record that says it is one, or ``None``: a run with
    an id, and a list of artifacts, each with its key, parameter set, stage and name."""
    run = data.get("run")
    if not isinstance(run, dict) or not isinstance(run.get("id"), str):
        return "it has no run with an id"
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, list):
        return "it has no list of artifacts"
    for artifact in artifacts:
        named = isinstance(artifact, dict) and "param_set" in artifact
        if not named or not all(isinstance(artifact.get(f), str) for f in ("key", "stage", "name")):
            return f"an artifact lacks its key, parameter set, stage or name ({str(artifact)[:80]})"
    return _section_problem(data)


_SECTIONS = (
    (("run", "config"), dict),
    (("provenance",), dict),
    (("provenance", "git"), dict),
    (("provenance", "packages"), dict),
    (("stages",), list),
    (("param_sets",), list),
    (("export",), dict),
    (("export", "files"), dict),
    (("export", "artifacts"), dict),
    (("export", "artifacts", "missing"), list),
    (("export", "artifacts", "changed"), list),
    (("export", "artifacts", "external"), list),
    (("export", "code"), dict),
    (("export", "code", "left_out"), list),
)
"""The sections of a run record, and what each is when present (``null`` is as absent)."""


def _section_problem(data: dict) -> str | None:
    """Which section of a run record is not what a record holds there (``export`` a
    string, ``stages`` a dict, a stage no dict ...), or ``None``."""
    for path, kind in _SECTIONS:
        value: Any = data
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, kind):
            what = "an object" if kind is dict else "a list"
            return f"its {'.'.join(path)} is {type(value).__name__}, not {what}"
    for name in ("stages", "param_sets"):
        if any(not isinstance(item, dict) for item in data.get(name) or ()):
            return f"an item of its {name} is not an object"
    return None


def record_provenance(store: Any, run_info: Any, config: Any) -> Any:
    """Capture the provenance of a run that just started and keep it in the run store.

    Returns the updated :class:`~assay.store.RunInfo`. Capturing never fails a
    run: any problem is logged as a warning and the run goes on without it.
    """
    from assay.provenance import capture

    try:
        provenance = capture(config.root, ignore=assay_outputs(config))
        return store.record_provenance(run_info.id, provenance.to_dict())
    except Exception as exc:  # provenance is a record of the run, never a reason to stop it
        log.warning("The run's provenance (git, packages) could not be recorded: %s", exc)
        return run_info


def assay_outputs(config: Any) -> list[str]:
    """The folders and files assay writes in a project: never a reason to call its git
    working tree dirty."""
    return [
        str(path)
        for path in (
            config.cache_dir,
            config.runs_dir,
            config.reports_dir,
            config.logs_dir,
            config.store_path,
        )
    ]


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Indented for people to read; large records compact (json's fast C encoder).
    big = sum(len(v) for v in data.values() if isinstance(v, list)) > 2000
    try:
        temporary.write_text(
            json.dumps(data, indent=None if big else 1, default=str, ensure_ascii=False),
            encoding="utf-8",
        )
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a full disk, ...: no half-written file left
        raise


def executed_on(settings: dict, executed: bool = True) -> str:
    """Where a run's stages ran, from the settings it recorded: ``one process
    (serial)``, ``2 local worker processes``, ``a local Dask cluster`` or ``the Dask
    cluster at ADDRESS``; with ``executed=False``, that nothing ran there."""
    executor, workers = settings.get("executor"), settings.get("parallel")
    if executor == "dask":
        address = settings.get("dask_address")
        where = f"the Dask cluster at {address}" if address else "a local Dask cluster"
    elif executor == "process":
        where = f"{workers} local worker processes" if workers else "local worker processes"
    else:
        where = "one process (serial)" if executor == "serial" else str(executor)
    return where if executed else f"{where}, asked for; no stage executed (all cached)"


def stages_ran(run_status: str | None, stage_statuses: Iterable[str | None]) -> bool:
    """Whether a run's stages ran where it says (``executed`` for :func:`executed_on`).

    Only a run that completed with every stage taken from the cache ran none: a stage
    that failed or was interrupted ran too, and a run going on (or killed) has not
    recorded all its stages yet.
    """
    ran = ("executed", "failed", "interrupted")
    return run_status != "completed" or any(status in ran for status in stage_statuses)


def ignored_lazy(run: dict) -> bool:
    """Whether the run was made with ``--ignore-lazy``: as recorded, or for a run recorded
    before assay kept it, as its ``assay run`` command line says."""
    config = run.get("config") or {}
    if "ignore_lazy" in config:
        return bool(config["ignore_lazy"])
    try:
        words = shlex.split(run.get("command") or "")
    except ValueError:
        return False
    return words[:2] == ["assay", "run"] and "--ignore-lazy" in words
