"""From live objects to plain records: the one part of reporting that sees a manager.

At the end of a run, :func:`collect_run` turns the manager (its plan, records
and reportables) and the run store's entry into a plain, JSON-able dict, the
*run record* kept as ``reports/<run_id>/run.json``. Every page is built from
such records only (see :mod:`assay.report.build`), so a report can be rebuilt
from disk long after the run's objects are gone. :func:`record_from_store`
makes a (poorer) run record from the run store alone, for runs that have none.

The run record (``"format": "assay-run-record/1"``)::

    run          the run store's RunInfo fields, plus duration_s
    git          {"commit", "dirty", "branch", "error"} if the run recorded them, else null
    param_sets   [{"name", "hash", "cls", "values": describe(params)}]
    records      [{"id", "label", "params", "aggregate", "joins": [record id]}]
    nodes        [{"index", "stage", "record", "status", "reason", "key", "started",
                   "duration_s", "error", "aggregate", "joins", "deps": [node index],
                   "inputs": [[node index, output name]],
                   "outputs": [{"name", "cacher", "path" (relative to the project root),
                                "size", "cached", "action"}]}]
    reportables  [{"index", "name", "qualified_name", "group", "stage", "record",
                   "type", "fragment", "size", "error"}]
    failure      {"stage", "record", "error"} or null
    log          path of the log relative to the report folder, or null
    source       "run" (written at the end of the run) or "store" (rebuilt)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from assay.cache import open_cache_at, recorded_cache
from assay.errors import AssayError
from assay.run_record import run_log_path, stage_status

log = logging.getLogger("assay")

FORMAT = "assay-run-record/1"

FRAGMENT_LIMIT = 1_000_000
"""Reportable HTML larger than this (bytes) is linked from the page, not inlined."""

NODE_STATUSES = ("executed", "cached", "unneeded", "failed", "interrupted", "not run")
"""How a stage run ends up in a report (``"skipped"`` too, for runs rebuilt from the store)."""


def collect_run(manager: Any, run_dir: Path, param_sets: list[dict]) -> dict:
    """The run record of a finished (or failed) run; writes its reportables' files.

    ``param_sets`` come from the run store (name, hash, cls, values). The
    reportables are rendered into ``run_dir/files/<n>/`` and their HTML into
    ``run_dir/reportables/<n>.html``.
    """
    run = run_info_dict(manager.run_info)
    dag = dag_of(manager, run_status=run.get("status"), run_error=run.get("error"))
    reportables = render_reportables(manager, run_dir, dag["_record_ids"])
    root = Path(manager.config.root)
    log_file = Path(manager.config.logs_dir) / f"{run['id']}.log"
    return {
        "format": FORMAT,
        "source": "run",
        "run": run,
        "git": git_info(run, log_file.with_suffix(".json")),
        "project_root": str(root),
        "log": _relative(log_file, run_dir) if log_file.exists() else None,
        "param_sets": param_sets,
        "records": dag["records"],
        "nodes": dag["nodes"],
        "reportables": reportables,
        "failure": failure_of(dag["nodes"], run),
    }


def run_info_dict(run_info: Any) -> dict:
    """A run store :class:`~assay.store.RunInfo` as a plain dict, with ``duration_s``."""
    data = dataclasses.asdict(run_info)
    data["duration_s"] = run_info.duration_s
    return data


def git_info(run: dict, metadata_file: Path | None = None) -> dict | None:
    """The git state a run recorded, or ``None`` if it recorded none.

    Looked for in the run-store entry (``git_commit``/``git_dirty`` fields, or a
    ``git`` dict in its ``provenance`` or ``config``), then in the run's
    metadata file beside its log (``logs/RUN_ID.json``). Returns
    ``{"commit", "dirty", "branch", "error"}``; ``error`` says why git's state
    is unknown (no git, not a repository). In a repository without commits,
    ``commit`` is ``None`` and ``branch`` names the (unborn) branch.
    """
    sources: list[dict] = [run]
    for name in ("provenance", "config"):
        if isinstance(run.get(name), dict):
            sources.append(run[name])
    if metadata_file is not None:
        try:
            data = json.loads(Path(metadata_file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            sources += [
                data,
                data.get("provenance") if isinstance(data.get("provenance"), dict) else {},
            ]
    for source in sources:
        nested = source.get("git") if isinstance(source.get("git"), dict) else {}
        git = {
            "commit": nested.get("commit") or source.get("git_commit"),
            "dirty": _first(nested.get("dirty"), source.get("git_dirty")),
            "branch": nested.get("branch") or source.get("git_branch"),
            "error": nested.get("error") or source.get("git_error"),
        }
        if git["commit"] or git["error"] or git["branch"]:
            return git  # a branch alone: a repository without commits (an unborn branch)
    return None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def failure_of(nodes: list[dict], run: dict) -> dict | None:
    """Where a failed or interrupted run stopped: the stage, the record, the error.

    A failed run names the stage that raised, not one that was executing elsewhere
    when it did (those are interrupted); an interrupted run names the stage it stopped
    only if it stopped one alone. Otherwise stage and record are ``None``.
    """
    status = run.get("status")
    if status not in ("failed", "interrupted"):
        return None
    culprits = [n for n in nodes if n["status"] == "failed"]
    if not culprits and status == "interrupted":
        stopped = [n for n in nodes if n["status"] == "interrupted"]
        culprits = stopped if len(stopped) == 1 else []
    first = culprits[0] if culprits else None
    return {
        "stage": first["stage"] if first else None,
        "record": first["record"] if first else None,
        "error": run.get("error") or "",
    }


def _node_error(status: str, run_status: str | None, run_error: str | None) -> str | None:
    """The run's error, on the stage runs it is about: the failed one, or every stage an
    interrupted run stopped (a failure elsewhere is not what stopped the others)."""
    if status == "failed" or (status == "interrupted" and run_status == "interrupted"):
        return run_error
    return None


# -- the DAG ------------------------------------------------------------------------------


def dag_of(manager: Any, run_status: str | None = None, run_error: str | None = None) -> dict:
    """The records and stage runs of a manager's plan, as plain dicts.

    Also usable on a notebook's manager, before or without a run-store entry.
    """
    from assay.plan import Artifact

    plan = manager.plan
    root = Path(manager.config.root)
    record_ids: dict[int, int] = {}
    records: list[dict] = []

    def record_id(record: Any) -> int:
        found = record_ids.get(id(record))
        if found is None:
            found = record_ids[id(record)] = len(records)
            params = record.params
            records.append(
                {
                    "id": found,
                    "label": record.name,
                    "params": params.name if params is not None else None,
                    "aggregate": bool(record.is_aggregate),
                    "joins": [],
                }
            )
        return found

    loaded = {id(a) for a in getattr(manager.runner, "loaded", [])}
    nodes = []
    for node in plan.nodes:
        rid = record_id(node.record)
        inputs: list[list] = []
        for value in node.inputs.values():
            values = value.values() if isinstance(value, dict) else (value,)
            for item in values:
                if type(item) is Artifact:
                    inputs.append([item.node.index, item.name])
        joins = [record_id(r) for r in node.records] if node.spec.is_aggregate else []
        if joins:
            records[rid]["joins"] = sorted(set(records[rid]["joins"]) | set(joins))
        status = _node_status(node.status, run_status)
        nodes.append(
            {
                "index": node.index,
                "stage": node.spec.name,
                "record": rid,
                "status": status,
                "reason": node.reason or "",
                "key": node.key,
                "started": node.started,
                "duration_s": node.duration,
                "error": _node_error(status, run_status, run_error),
                "aggregate": bool(node.spec.is_aggregate),
                "joins": joins,
                "deps": [dep.index for dep in node.deps],
                "inputs": inputs,
                "outputs": [_output(manager, node, a, root, loaded, status) for a in node.outputs],
            }
        )
    for reportable in manager.reportables:  # a record that only reported: no stage ran on it
        if reportable.record is not None:
            record_id(reportable.record)
    return {"records": records, "nodes": nodes, "_record_ids": record_ids}


def _node_status(status: str, run_status: str | None) -> str:
    if status == "running" or (status == "failed" and run_status == "interrupted"):
        return "interrupted"
    if status in ("run", "planned"):
        return "not run"
    return status


def _output(manager: Any, node: Any, artifact: Any, root: Path, loaded: set, status: str) -> dict:
    """One output of a stage run, and what this run did with it (``action``).

    ``computed`` only if the stage executed in this run; ``reused`` only if the run took
    it from the cache (the stage was cached, or not needed and its output is cached). A
    stage that failed, was interrupted or did not run made nothing: its output is "not
    made" by this run, even if the cache holds a copy from an earlier one (its path is
    still given).
    """
    cacher = artifact.cacher
    entry: dict[str, Any] = {
        "name": artifact.name,
        "cacher": type(cacher).__name__ if cacher is not None else None,
        "type": _type_of(artifact),
        "path": None,
        "size": None,
        "cached": bool(artifact.cached),
        "action": "not cached",
    }
    made = status in ("executed", "cached", "unneeded")
    if not made:
        entry["action"] = f"not made ({_NOT_MADE.get(status, status)})"
    if cacher is None:
        if made:
            entry["action"] = "not cached (no cacher)"
        return entry
    if not node.key or (not made and not artifact.cached):
        return entry  # its key depends on something that never ran, or it made no file
    cache = manager.cache
    meta = artifact.meta
    if meta is None and artifact.cached:
        meta = cache.read_meta(node.key, artifact.name)
    files = (meta or {}).get("files") or []
    entry["type"] = (meta or {}).get("type") or entry["type"]
    path = cache.where(node.key, files[0]["path"] if files and files[0].get("path") else None)
    entry["path"] = path if cache.remote else _relative(path, root)
    entry["size"] = (meta or {}).get("size")
    if not made:
        return entry
    if artifact.cached:
        computed = status == "executed" and (artifact.lazy or id(artifact) not in loaded)
        entry["action"] = "computed" if computed else "reused"
    elif status == "unneeded":
        entry["action"] = "not needed"
    return entry


_NOT_MADE = {"failed": "stage failed", "interrupted": "interrupted", "not run": "not run"}


def _type_of(artifact: Any) -> str | None:
    """The type of an output held in memory (a sidecar says it for a cached one)."""
    from assay.cache import type_name
    from assay.plan import MISSING

    return None if artifact.value is MISSING else type_name(artifact.value)


def _relative(path: Path | str, start: Path | str) -> str:
    """``path`` relative to ``start`` (POSIX separators), or absolute if on another drive."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:
        return Path(path).as_posix()


# -- reportables --------------------------------------------------------------------------


def ordered_reportables(manager: Any) -> list[tuple[Any, Any]]:
    """Every reportable of the run as ``(reportable, record)``, in the order they were made.

    Stage runs come in plan order (reused stages with the reportables restored
    from the cache), each followed by what ``run()`` reported after calling it;
    reportables added before a record's first stage follow.
    """
    seen: set[int] = set()
    ordered = []
    for node in manager.plan.nodes:
        for reportable in (*node.reportables, *node.reported_after):
            if id(reportable) not in seen:
                seen.add(id(reportable))
                ordered.append((reportable, node.record))
    for reportable in manager.reportables:
        if id(reportable) not in seen:
            seen.add(id(reportable))
            ordered.append((reportable, reportable.record))
    return ordered


def render_reportables(manager: Any, run_dir: Path, record_ids: dict[int, int]) -> list[dict]:
    """Render every reportable into ``run_dir``; describe each as a plain dict.

    A reportable whose ``render()`` or ``html()`` raises is reported as such in
    the page (with the error), not lost, and does not stop the report.
    """
    fragments, files = run_dir / "reportables", run_dir / "files"
    for folder in (fragments, files):
        shutil.rmtree(folder, ignore_errors=True)
    fragments.mkdir(parents=True, exist_ok=True)
    from assay.reporting import Reportable, reportable_kind

    entries = []
    for index, (reportable, record) in enumerate(ordered_reportables(manager)):
        folder = files / str(index)
        writes_files = type(reportable).render is not Reportable.render
        if writes_files:  # only then: folders cost time on some filesystems
            folder.mkdir(parents=True, exist_ok=True)
        error = None
        body = ""
        try:
            reportable.path = str(folder)
            reportable.render()
            reportable.rendered = True
            reportable.path = f"files/{index}"
            body = as_text(reportable.html())
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "Reportable %r of stage %r%s could not be rendered: %s",
                reportable.name,
                reportable.stage,
                f" ({_record_label(record)})" if record is not None else "",
                error,
            )
        finally:
            reportable.path = str(folder)
        if writes_files:
            try:
                folder.rmdir()  # nothing was written
            except OSError:
                pass
        data = body.encode("utf-8", "replace")
        if len(data) > FRAGMENT_LIMIT:  # opened on its own: make it a page of the run folder
            data = b'<!doctype html><meta charset="utf-8"><base href="../">\n' + data
        (fragments / f"{index}.html").write_bytes(data)
        rid = record_ids.get(id(record)) if record is not None else None
        entries.append(
            {
                "index": index,
                "name": _text(reportable.name),
                "qualified_name": _text(reportable.qualified_name),
                "group": _text(reportable.group),
                "stage": _text(reportable.stage),
                "record": rid,
                "type": reportable_kind(reportable),
                "fragment": f"reportables/{index}.html",
                "size": len(data),
                "error": error,
            }
        )
    return entries


def _record_label(record: Any) -> str:
    """How a warning names a record, as a stage run's ``record_label`` does: its parameter
    set's name, "aggregate", or "no parameters"."""
    if getattr(record, "params", None) is not None:
        return str(record.name)
    return "aggregate" if getattr(record, "is_aggregate", False) else "no parameters"


def as_text(html: Any) -> str:
    """``html()``'s result (a string, a list of lines, or ``None``) as one string; bytes
    (an SVG read from a buffer, say) are read as UTF-8, not shown as ``b'...'``."""
    if html is None:
        return ""
    if isinstance(html, (list, tuple)):
        return "\n".join(_line(line) for line in html)
    return _line(html)


def _line(text: Any) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", "replace")
    return str(text)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# -- from the run store alone -----------------------------------------------------------


def record_from_store(store: Any, run_info: Any, run_dir: Path, config: Any) -> dict:
    """A run record made from the run store (and the cache's sidecars, for the edges).

    For runs without a ``run.json`` (made with ``--no-report``, or by an older
    assay). Of the reportables, the run store keeps the metrics only.
    """
    run = run_info_dict(run_info)
    cache = open_cache_at(recorded_cache(run.get("config", {}).get("cache_dir"), config), config)
    stages = store.stages(run_info.id)
    artifacts = store.artifacts(run_info.id)
    labels: dict[str, int] = {}
    records: list[dict] = []
    nodes: list[dict] = []
    by_key: dict[str, int] = {}
    for index, row in enumerate(stages):
        label = row.param_set if row.param_set is not None else "aggregate"
        if label not in labels:
            labels[label] = len(records)
            records.append(
                {"id": labels[label], "label": label, "params": label, "aggregate": False}
            )
            records[-1]["joins"] = []
        status = stage_status(row.status, run.get("status"))
        nodes.append(
            {
                "index": index,
                "stage": row.stage,
                "record": labels[label],
                "status": status,
                "reason": "",
                "key": row.key,
                "started": row.started,
                "duration_s": row.duration_s,
                "error": _node_error(status, run.get("status"), run.get("error")),
                "aggregate": False,
                "joins": [],
                "deps": [],
                "inputs": [],
                "outputs": [],
            }
        )
        if row.key:
            by_key[row.key] = index
    for artifact in artifacts:
        stage_key, _, output = artifact.key.partition(".")
        index = by_key.get(stage_key)
        if index is None:
            continue
        nodes[index]["outputs"].append(
            {
                "name": artifact.name,
                "cacher": artifact.cacher.rsplit(".", 1)[-1],
                "path": artifact.path,
                "size": artifact.size,
                "cached": True,
                "action": artifact.action,
            }
        )
    _edges_from_sidecars(nodes, records, by_key, cache)
    log_file = run_log_path(config, run)
    return {
        "format": FORMAT,
        "source": "store",
        "run": run,
        "git": git_info(run, log_file.with_suffix(".json")),
        "project_root": str(config.root),
        "log": _relative(log_file, run_dir) if log_file.exists() else None,
        "param_sets": [dataclasses.asdict(p) for p in store.param_sets(run_info.id)],
        "records": records,
        "nodes": nodes,
        "reportables": store_metrics(store.path, run_info.number, run_dir, labels),
        "failure": failure_of(nodes, run),
    }


def store_metrics(path: Path, run: int, run_dir: Path, labels: dict[str, int]) -> list[dict]:
    """The metrics the run store keeps of ``run`` as reportables, one table per stage run
    (as the run showed them), rendered into ``run_dir``: the only reportables a report
    rebuilt from the run store can show."""
    from assay.metrics import Metrics, read_metrics

    tables: dict[tuple, Metrics] = {}
    for row in read_metrics(path, [run]):
        label = row.param_set if row.param_set is not None else "aggregate"
        table = tables.get((label, row.stage))
        if table is None:
            table = tables[(label, row.stage)] = Metrics()
        table.add(row.name, math.nan if row.value is None else row.value, row.step)
    fragments = run_dir / "reportables"
    shutil.rmtree(fragments, ignore_errors=True)
    if tables:
        fragments.mkdir(parents=True)
    entries = []
    for index, ((label, stage), table) in enumerate(tables.items()):
        data = table.html().encode("utf-8")
        (fragments / f"{index}.html").write_bytes(data)
        entries.append(
            {
                "index": index,
                "name": table.name,
                "qualified_name": table.name,
                "group": table.group,
                "stage": stage,
                "record": labels.get(label),
                "type": "Metrics",
                "fragment": f"reportables/{index}.html",
                "size": len(data),
                "error": None,
            }
        )
    return entries


def _edges_from_sidecars(nodes: list[dict], records: list[dict], by_key: dict, cache: Any):
    """Recover the DAG's edges from the upstream keys each artifact's sidecar lists."""
    for node in nodes:
        if not node["outputs"] or not node["key"]:
            continue
        meta = None
        for index, output in enumerate(node["outputs"]):
            try:
                found = cache.read_meta(node["key"], output["name"])
            except AssayError:  # a remote cache out of reach: a report without edges
                found = None
            output["type"] = (found or {}).get("type")
            if index == 0:
                meta = found
        if meta is None:
            continue
        upstream = (meta.get("ingredients") or {}).get("upstream") or []
        for entry in upstream:
            if not isinstance(entry, list) or len(entry) < 2:
                continue
            producer_key, _, produced = str(entry[-1]).partition(".")
            producer = by_key.get(producer_key)
            if producer is None or not produced:
                continue
            node["inputs"].append([producer, produced])
            if producer not in node["deps"]:
                node["deps"].append(producer)
            if len(entry) == 3:  # (input, record hash, key): an aggregate's input
                node["aggregate"] = True
                joined = nodes[producer]["record"]
                if joined not in node["joins"]:
                    node["joins"].append(joined)
        if node["aggregate"]:
            record = records[node["record"]]
            record["aggregate"] = True
            record["joins"] = sorted(set(record["joins"]) | set(node["joins"]))
