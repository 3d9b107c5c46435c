"""Live progress of a run that is still going, from what it has written so far.

The run store learns a run's stages only when it ends, so while a run is
``running`` the dashboard reads what the run leaves on disk as it goes:

1. ``logs/<run_id>.progress.json``, which a running ``assay run`` keeps up to
   date (``{"total": 17, "done": 5, "current": ["train [g-lr=0.1]"], "queued": 3}``, see
   :class:`assay.runner.ProgressFile`); it is read first, and the sources below
   fill in what it lacks (a run of an older assay wrote none);
2. the cache: every output a stage run saves gets a sidecar naming the run
   (``run_id``), so the sidecars of this run, found in the stage folders
   modified since it started, are the stage runs it has finished, with their
   stage, parameter set and time;
3. the log, ``logs/<run_id>.log``: its last lines (what stages print and log);
4. the run store: the number of stage runs of the newest finished run of the
   same experiment with the same parameter sets, as the expected total.

Stage runs reused from the cache write nothing, so until the run ends "done"
counts the stage runs that executed; the page says so.

Every file is found through :meth:`assay.ui.files.Folders.inside`, like a path
from a request: a log, progress file or sidecar that a symlink takes out of its
folder is read as missing.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from assay.run_record import run_log_path
from assay.ui.files import Folders

LOG_LINES = 40
"""Lines of the log tail shown."""

LOG_BYTES = 64_000
"""At most this many bytes are read from the end of the log."""

DONE_NOTES = {
    "run store": "Every stage run of the run, from the run store.",
    "progress file": (
        'Until the run ends, "done" counts the stage runs that executed, on every worker, as '
        "the run reports them (in its progress file, logs/{run_id}.progress.json); stages "
        "reused from the cache are not counted."
    ),
    "cache sidecars": (
        'Until the run ends, "done" counts the stage runs that executed and saved outputs, '
        "read from the cache's sidecars: the run keeps no progress file "
        "(logs/{run_id}.progress.json). Stages reused from the cache are counted when the "
        "run ends."
    ),
}
"""What the panel says of "done", by where the number came from."""


def progress(run: Any, config: Any, store: Any) -> dict[str, Any]:
    """What the run page's live panel shows (JSON-able)."""
    folders = Folders.of(config)
    logs = run_log_path(config, run).parent  # where the run writes (ASSAY_LOGS_DIR ...)
    info: dict[str, Any] = {
        "id": run.id,
        "number": run.number,
        "status": run.status,
        "running": run.status == "running",
        "started": run.started,
        "ended": run.ended,
        "elapsed_s": _elapsed(run),
        "done": None,
        "total": None,
        "total_source": None,
        "current": [],
        "queued": 0,
        "finished": [],
        "log_tail": log_tail(folders.inside(logs, f"{run.id}.log")),
        "source": [],
        "done_note": None,
    }
    if not info["running"]:  # the run store has every stage run now
        stages = _stages(store, run)
        info.update(done=len(stages), total=len(stages), total_source="the run store")
        info["done_note"] = DONE_NOTES["run store"]
        return info
    engine = _progress_file(folders.inside(logs, f"{run.id}.progress.json"))
    if engine:
        info["source"].append("progress file")
        for name in ("done", "total", "current", "queued"):
            if engine.get(name) is not None:
                info[name] = engine[name]
        if engine.get("total") is not None:
            info["total_source"] = "the engine's plan"
    finished = finished_stage_runs(folders, run)
    info["finished"] = finished[-10:]
    if info["done"] is None:
        info["source"].append("cache sidecars")
        info["done"] = len(finished)
        info["done_note"] = DONE_NOTES["cache sidecars"].format(run_id=run.id)
    else:
        info["done_note"] = DONE_NOTES["progress file"].format(run_id=run.id)
    if info["total"] is None:
        info["total"], info["total_source"] = expected_total(store, run)
    if not isinstance(info["current"], list):
        info["current"] = [str(info["current"])]
    if not isinstance(info["queued"], int):
        info["queued"] = 0
    return info


def log_tail(path: Path | None, lines: int = LOG_LINES) -> list[str]:
    """The last ``lines`` lines of a log file (reading at most :data:`LOG_BYTES`)."""
    if path is None:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - LOG_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    if size > LOG_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return list(deque(text.splitlines(), maxlen=lines))


def finished_stage_runs(folders: Folders, run: Any) -> list[dict[str, Any]]:
    """The stage runs ``run`` executed so far: their sidecars in the cache, oldest first."""
    since = _epoch(run.started) - 2.0
    found: dict[str, dict[str, Any]] = {}
    try:
        prefixes = list(os.scandir(folders.roots["cache"] / "objects"))
    except OSError:
        return []
    for prefix in prefixes:
        if not prefix.is_dir(follow_symlinks=False):
            continue
        try:
            stage_folders = list(os.scandir(prefix.path))
        except OSError:
            continue
        for folder in stage_folders:
            try:
                if folder.stat(follow_symlinks=False).st_mtime < since:
                    continue
                entries = [e for e in os.scandir(folder.path) if e.name.endswith(".meta.json")]
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(("_", ".")):
                    continue
                sidecar = f"objects/{prefix.name}/{folder.name}/{entry.name}"
                meta = _read_json(folders.inside("cache", sidecar))
                if not meta or meta.get("run_id") != run.id:
                    continue
                found.setdefault(
                    folder.name,
                    {
                        "stage": meta.get("stage"),
                        "param_set": meta.get("param_set"),
                        "created": meta.get("created"),
                        "key": f"{meta.get('key')}.{meta.get('output')}",
                    },
                )
    return sorted(found.values(), key=lambda m: str(m["created"]))


def expected_total(store: Any, run: Any) -> tuple[int | None, str | None]:
    """Stage runs of the newest finished run of the same experiment and parameter sets."""
    try:
        previous = store.list_runs(experiment=run.experiment, status="completed", limit=20)
        for other in previous:
            if other.number != run.number and other.param_names == run.param_names:
                return len(store.stages(other.id)), f"as many as run {other.number} had"
    except Exception:  # the estimate is optional
        return None, None
    return None, None


def _stages(store: Any, run: Any) -> list:
    try:
        return store.stages(run.id)
    except Exception:  # the panel shows what it can
        return []


def _progress_file(path: Path | None) -> dict | None:
    data = _read_json(path)
    return data if isinstance(data, dict) else None


def _read_json(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _elapsed(run: Any) -> float | None:
    try:
        end = _epoch(run.ended) if run.ended else time.time()
        return round(end - _epoch(run.started), 1)
    except (TypeError, ValueError):
        return None
