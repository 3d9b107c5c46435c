"""Building the HTML pages from plain run records (never from live objects).

- :func:`build_run_page` turns ``reports/<run_id>/run.json`` and the
  reportables' HTML fragments beside it into ``reports/<run_id>/index.html``
  (and ``dag.svg``);
- :func:`build_index` lists every run of the run store, newest first, in
  ``reports/index.html``.

Pages are rendered with Jinja2 with autoescaping on: every string from the
run record (names, parameter values, paths, errors) is escaped. Reportable
fragments are the one exception: they are HTML already, made by each
reportable's ``html()``, which escapes its own text.

The pages need no server, network or script: sections fold with
``<details>``, the DAG is inline SVG with native tooltips, and the CSS is
inlined so a report folder can be copied anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from assay.errors import AssayError
from assay.humanize import format_duration, format_size
from assay.report.collect import FORMAT, FRAGMENT_LIMIT
from assay.report.dag import STATUS_STYLES, render_svg

HERE = Path(__file__).parent

log = logging.getLogger("assay")

INLINE_SVG_LIMIT = 1_000_000
"""A DAG picture bigger than this (bytes) is linked (``dag.svg``) instead of inlined."""

OPEN_REPORTABLES = 20
"""Up to this many reportables in a run, every record's section starts unfolded."""

OPEN_ARTIFACTS = 60
"""Up to this many artifacts, the artifacts table starts unfolded."""


@lru_cache(maxsize=1)
def _environment() -> Any:
    return make_environment(template_cache())


def make_environment(bytecode_cache: Any = None) -> Any:
    """The report's Jinja2 environment: autoescaping, strict, with assay's filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=bytecode_cache,
    )
    env.filters.update(
        when=format_time, seconds=format_duration, size=format_size, value=format_value,
        url=format_url,
    )  # fmt: skip
    env.globals["css"] = _markup(_css())
    return env


def format_url(value: Any) -> str:
    """An ``href`` for a path: percent-encoded, so that a '#', '?', space or accent in an
    experiment's or output's name stays part of it. A URL with a scheme stays as it is, and
    so does the query of a dashboard route (``/lineage?key=...``, encoded when made)."""
    from urllib.parse import quote

    text = str(value)
    if "://" in text:
        return text
    path, mark, query = text.partition("?") if text.startswith("/") else (text, "", "")
    return quote(path, safe="/") + mark + query


def template_cache(directory: str | None = None) -> Any:
    """The templates, compiled once and kept between runs (a run's report costs ~0.1 s less).

    Jinja2's own per-user folder in the system's temporary folder unless
    ``directory`` is given; ``None`` when no safe folder can be had. A cache
    that cannot be written is skipped: the report is written regardless.
    """
    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except OSError:  # compiled afresh
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    try:
        return QuietCache(directory)
    except (OSError, RuntimeError):  # no folder of our own to keep it in
        return None


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)


@lru_cache(maxsize=1)
def _css() -> str:
    return (HERE / "static" / "report.css").read_text(encoding="utf-8")


# -- formatting ---------------------------------------------------------------------------


def format_time(stamp: str | None) -> str:
    """``2026-11-25T18:45:12.345Z`` -> ``2026-11-25 18:45:12 UTC``."""
    if not stamp:
        return ""
    text = str(stamp).replace("T", " ")
    if text.endswith("Z"):
        text = text[:-1].split(".")[0] + " UTC"
    return text


def format_value(value: Any) -> str:
    """A parameter value as text (strings as they are, the rest as Python shows them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


# -- the run page -------------------------------------------------------------------------


class DamagedRecord(AssayError):
    """A ``run.json`` that is not a run record: not JSON, or not shaped like one."""


_RECORD_LISTS = ("param_sets", "records", "nodes", "reportables")
_RECORD_OPTIONAL = {"git": dict, "failure": dict, "log": str, "source": str}


def load_record(run_dir: Path) -> dict:
    """The run record ``run_dir/run.json``.

    Raises :class:`DamagedRecord` (naming the file) if it is not JSON or not shaped like
    a run record (see :mod:`assay.report.collect`), and ``OSError`` if it cannot be read.
    """
    path = Path(run_dir) / "run.json"
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DamagedRecord(f"{path} is damaged: it is not JSON ({exc}).") from None
    problem = _record_problem(record)
    if problem:
        raise DamagedRecord(f"{path} is damaged: {problem}.")
    for name in _RECORD_OPTIONAL:
        record.setdefault(name, None)
    return record


def _record_problem(record: Any) -> str | None:
    """What makes ``record`` no run record, or ``None`` if it looks like one."""
    if not isinstance(record, dict):
        return f"it holds {type(record).__name__}, not a run record"
    if record.get("format") != FORMAT:
        return f"its format is {record.get('format')!r}, not {FORMAT!r}"
    if not isinstance(record.get("run"), dict):
        return "its 'run' entry is missing or not an object"
    for name in _RECORD_LISTS:
        items = record.get(name)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return f"its {name!r} entry is missing or not a list of objects"
    for name, kind in _RECORD_OPTIONAL.items():
        if record.get(name) is not None and not isinstance(record[name], kind):
            return f"its {name!r} entry is not {'an object' if kind is dict else 'text'}"
    return None


def read_record(run_dir: Path) -> dict | None:
    """The run record ``run_dir/run.json``; ``None`` if there is none, or (with a warning
    naming the file) if it is damaged, so the caller makes one from the run store."""
    try:
        return load_record(run_dir)
    except FileNotFoundError:
        return None
    except (DamagedRecord, OSError) as exc:
        log.warning("%s The report is made from the run store instead.", _sentence(exc))
        return None


def damage_errors() -> tuple[type[BaseException], ...]:
    """What building a page from a damaged run record raises (one that passed
    :func:`load_record`'s checks but has, say, a stage without a status)."""
    import jinja2

    return (KeyError, TypeError, ValueError, AttributeError, IndexError, jinja2.TemplateError)


def _sentence(exc: BaseException) -> str:
    if isinstance(exc, AssayError):
        return str(exc)
    return f"{getattr(exc, 'filename', None) or 'run.json'} cannot be read: {exc}."


def build_run_page(run_dir: str | os.PathLike, record: dict | None = None) -> Path:
    """Write ``run_dir/index.html`` (and ``dag.svg``) from ``run_dir/run.json``."""
    run_dir = Path(run_dir)
    record = record if record is not None else load_record(run_dir)
    context = run_context(record, run_dir)
    svg = context.pop("_svg")
    write_atomic(run_dir / "dag.svg", svg)
    page = _environment().get_template("run.html.j2").render(**context)
    path = run_dir / "index.html"
    write_atomic(path, page)
    return path


def run_context(record: dict, run_dir: Path) -> dict:
    """Everything the run page's template shows, computed from the run record."""
    run = record["run"]
    records = {r["id"]: r for r in record.get("records", [])}
    nodes = record.get("nodes", [])
    label = lambda rid: str(records[rid]["label"]) if rid in records else "(no record)"  # noqa: E731
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node["status"]] = counts.get(node["status"], 0) + 1
    title = f"Run {run.get('number')} of {run.get('experiment')}"
    svg = render_svg(record.get("records", []), nodes, title=f"DAG of {title}")
    failure = record.get("failure")
    if failure:
        failure = dict(
            failure,
            record_label=label(failure["record"]) if failure["record"] is not None else None,
        )
    return {
        "title": title,
        "run": run,
        "git": record.get("git"),
        "record": record,
        "failure": failure,
        "metadata": _metadata(record),
        "counts": [
            (status, counts[status], STATUS_STYLES.get(status, {}).get("label", status))
            for status in STATUS_STYLES
            if counts.get(status)
        ],
        "params": _params(record.get("param_sets", [])),
        "reportable_sections": _reportable_sections(record, run_dir, records),
        "reportables_total": len(record.get("reportables", [])),
        "dag_svg": _markup(svg) if len(svg) <= INLINE_SVG_LIMIT else None,
        "dag_size": len(svg),
        "n_nodes": len(nodes),
        "n_records": len({node["record"] for node in nodes}),  # the DAG's bands
        "artifacts": _artifacts(record, run_dir, label),
        "open_artifacts": OPEN_ARTIFACTS,
        "status_styles": STATUS_STYLES,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "version": _version(),
        "_svg": svg,
    }


def _metadata(record: dict) -> list[tuple[str, Any, str]]:
    """(label, value, kind) rows of the metadata block; kind: text, code, link, missing."""
    run = record["run"]
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    git = record.get("git")
    rows: list[tuple[str, Any, str]] = [
        ("Run", f"{run.get('number')} \u00b7 {run.get('id')}", "text"),
        ("Experiment", run.get("experiment"), "text"),
        ("Status", run.get("status"), "status"),
        ("Started", format_time(run.get("started")), "text"),
        ("Ended", format_time(run.get("ended")) or "not recorded", "text"),
        ("Duration", format_duration(run.get("duration_s")) or "not recorded", "text"),
        ("Host", run.get("host"), "text"),
        ("User", run.get("user"), "text"),
        ("Python", run.get("python"), "text"),
        ("Platform", run.get("platform"), "text"),
        ("Command", run.get("command"), "code"),
    ]
    if config.get("cwd"):  # the command's relative paths are relative to it
        rows.append(("Typed in", config["cwd"], "code"))
    if git and git.get("commit"):
        rows.append(("Git commit", git, "git"))
    elif git and git.get("error"):
        rows.append(("Git commit", f"unknown: {git['error']}", "missing"))
    elif git:  # what `assay show` says; uncommitted work is all there is
        rows.append(("Git commit", "a git repository without commits", "missing"))
    else:
        rows.append(("Git commit", "not recorded", "missing"))
    if config.get("overrides"):
        rows.append(("Overrides", " ".join(f"--set {o}" for o in config["overrides"]), "code"))
    if config.get("executor"):
        from assay.run_record import executed_on, stages_ran

        statuses = (n.get("status") for n in record.get("nodes", []))
        executed = stages_ran(run.get("status"), statuses)
        rows.append(("Executed on", executed_on(config, executed), "text"))
    if run.get("notes"):
        rows.append(("Notes", run["notes"], "text"))
    if config.get("cache_dir"):
        rows.append(("Cache", config["cache_dir"], "code"))
    if record.get("log"):
        rows.append(("Log", record["log"], "link"))
    elif config.get("interactive"):  # a notebook's or script's session: no log file
        rows.append(
            ("Log", "none (an interactive session: its output is in the notebook)", "missing")
        )
    else:
        rows.append(("Log", "not written (--no-log)", "missing"))
    return rows


def _params(param_sets: list[dict]) -> dict:
    """The parameter sets, the fields in which they differ, and every field."""
    values = [p.get("values") or {} for p in param_sets]
    order = list(dict.fromkeys(k for v in values for k in v if k != "name"))
    missing = object()
    differing = []
    if len(values) > 1:
        for key in order:
            seen = {json.dumps(v.get(key, missing), sort_keys=True, default=repr) for v in values}
            if len(seen) > 1:
                differing.append(key)
    return {"sets": param_sets, "differing": differing, "fields": order, "values": values}


def _reportable_sections(record: dict, run_dir: Path, records: dict) -> list[dict]:
    """Reportables by record (in the order records appear), grouped by ``group`` inside."""
    entries = record.get("reportables", [])
    total = len(entries)
    sections: dict[Any, dict] = {}
    for entry in entries:
        rid = entry.get("record")
        section = sections.get(rid)
        if section is None:
            owner = records.get(rid, {"label": "Not attached to a record"})
            section = sections[rid] = {
                "label": str(owner["label"]),
                "anchor": f"record-{rid if rid is not None else 'none'}",
                "aggregate": bool(owner.get("aggregate")),
                "groups": {},
                "count": 0,
                "open": total <= OPEN_REPORTABLES,
            }
        group = entry.get("group")
        section["groups"].setdefault(group, []).append(_reportable_item(entry, run_dir))
        section["count"] += 1
    result = []
    for section in sections.values():
        section["groups"] = [
            {"name": name, "items": items} for name, items in section["groups"].items()
        ]
        result.append(section)
    return result


def _reportable_item(entry: dict, run_dir: Path) -> dict:
    title = entry.get("name") or entry.get("qualified_name") or f"#{entry['index']}"
    item = {
        "title": title,
        "stage": entry.get("stage") or "",
        "type": entry.get("type") or "",
        "anchor": f"reportable-{entry['index']}",
        "error": entry.get("error"),
        "html": None,
        "link": None,
        "size": entry.get("size"),
    }
    path = (run_dir / str(entry["fragment"])).resolve()
    if not path.is_relative_to(run_dir.resolve()):  # a run.json edited to name another file
        item["error"] = f"Its HTML ({entry['fragment']}) is outside the run's report folder."
        return item
    try:
        size = path.stat().st_size
    except OSError:
        item["error"] = item["error"] or f"Its HTML ({entry['fragment']}) is missing."
        return item
    if size > FRAGMENT_LIMIT:
        item["link"] = entry["fragment"]
        item["size"] = size
    else:
        item["html"] = _markup(path.read_text(encoding="utf-8", errors="replace"))
    return item


def _artifacts(record: dict, run_dir: Path, label: Any) -> list[dict]:
    root = Path(record.get("project_root") or run_dir)
    rows = []
    for node in record.get("nodes", []):
        for output in node.get("outputs", []):
            path = output.get("path")
            href = _cache_link(path, root, run_dir) if path else None
            rows.append(
                {
                    "record": label(node["record"]),
                    "stage": node["stage"],
                    "name": output["name"],
                    "cacher": output.get("cacher") or "",
                    "type": output.get("type") or "",
                    "path": path or "",
                    "href": href,
                    "gone": bool(path) and href is None and "://" not in path,
                    "size": output.get("size"),
                    "action": output.get("action") or "",
                }
            )
    return rows


def _cache_link(path: str, root: Path, run_dir: Path) -> str | None:
    """The ``href`` of a cached file, relative to the run's page; ``None`` for a file in a
    cache at a URL (``s3://...``: no browser opens it from a page) and for a file no longer
    there (``assay cache gc`` removed it since the run)."""
    if "://" in path:
        return None
    target = Path(path) if Path(path).is_absolute() else root / path
    if not target.exists():
        return None
    try:
        return Path(os.path.relpath(target, run_dir)).as_posix()
    except ValueError:  # another drive
        return target.as_uri()


def _version() -> str:
    try:
        from assay import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return ""


# -- the index of runs --------------------------------------------------------------------


def build_index(reports_dir: str | os.PathLike, runs: list[Any]) -> Path:
    """Write ``reports_dir/index.html`` listing ``runs`` (run store RunInfos, newest first)."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in runs:
        has_page = (reports_dir / run.id / "index.html").exists()
        names = list(run.param_names or [])
        rows.append(
            {
                "number": run.number,
                "id": run.id,
                "experiment": run.experiment,
                "status": run.status,
                "started": format_time(run.started),
                "duration": format_duration(run.duration_s),
                "params": ", ".join(names[:6])
                + (f" and {len(names) - 6} more" if len(names) > 6 else ""),
                "n_params": len(names),
                "notes": run.notes or "",
                "href": f"{run.id}/index.html" if has_page else None,
            }
        )
    page = (
        _environment()
        .get_template("index.html.j2")
        .render(
            title="assay runs",
            rows=rows,
            generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            version=_version(),
        )
    )
    path = reports_dir / "index.html"
    write_atomic(path, page)
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, so readers never see half a page.

    A character UTF-8 cannot hold (half of a file name that was not UTF-8, as
    ``os.listdir`` gives it) is written as ``?`` rather than losing the page."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    temporary.write_text(text, encoding="utf-8", errors="replace")
    os.replace(temporary, path)


def write_record(run_dir: Path, record: dict) -> Path:
    """Write the run record as ``run_dir/run.json``."""
    path = Path(run_dir) / "run.json"
    write_atomic(path, json.dumps(record, indent=1, default=str, ensure_ascii=False))
    return path
