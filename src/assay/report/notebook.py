"""Showing reportables and DAGs inline in Jupyter (``_repr_html_`` / ``_repr_svg_``).

A notebook cell has no report folder beside it, so a reportable's files are
rendered into a temporary folder and inlined as ``data:`` URLs. This happens
only here; report pages always link their files.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from assay.report.collect import as_text, dag_of

_LINK = re.compile(r"""\b(src|href)=(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def inline_html(reportable: Any) -> str:
    """A reportable's HTML with its rendered files inlined, titled with its name."""
    saved = reportable.path
    with tempfile.TemporaryDirectory(prefix="assay-") as folder:
        try:
            reportable.path = folder
            reportable.render()
            body = as_text(reportable.html())
        finally:
            reportable.path = saved
        body = _LINK.sub(lambda match: _inline(match, folder), body)
    title = html.escape(str(reportable.name or type(reportable).__name__))
    stage = f" <small>({html.escape(reportable.stage)})</small>" if reportable.stage else ""
    return f'<div class="assay-reportable"><strong>{title}</strong>{stage}{body}</div>'


def _inline(match: re.Match, folder: str) -> str:
    attribute, quote, url = match.groups()
    target = unquote(html.unescape(url))
    path = Path(target if os.path.isabs(target) else os.path.join(folder, target))
    try:
        inside = path.resolve().is_relative_to(Path(folder).resolve())
    except (OSError, ValueError):
        inside = False
    if not inside or not path.is_file():
        return match.group(0)
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"{attribute}={quote}data:{kind};base64,{data}{quote}"


class NotebookHTML:
    """HTML that Jupyter shows when it is a cell's value or given to ``display()``: what
    the manager's ``display_*`` methods return (IPython is not needed to make one)."""

    def __init__(self, text: str):
        self.data = text

    def _repr_html_(self) -> str:
        return self.data

    def __str__(self) -> str:
        return self.data


def record_html(record: Any) -> str:
    """A record's reportables, one after another (Jupyter's display of a ``Record``)."""
    return reportables_html(record.reportables, f"Record {record.name}")


def reportables_html(reportables: list, title: str) -> str:
    """``reportables`` one after another under ``title``, their files inlined."""
    parts = [f'<div class="assay-record"><h4>{html.escape(title)}</h4>']
    if not reportables:
        parts.append("<p><em>No reportables yet.</em></p>")
    for reportable in reportables:
        try:
            parts.append(inline_html(reportable))
        except Exception as exc:  # one broken reportable must not hide the others
            name = html.escape(str(reportable.name))
            parts.append(
                f"<p><strong>{name}</strong>: could not be shown ({html.escape(repr(exc))})</p>"
            )
    parts.append("</div>")
    return "".join(parts)


def info_html(manager: Any) -> str:
    """What the report's header says about a run: experiment, run, status, git commit,
    parameter sets and notes (so far, for a manager in a notebook)."""
    info = manager.run_info
    sets = dict.fromkeys(r.name for r in manager.records if r.params is not None)
    rows = [
        ("experiment", manager.experiment_name),
        ("run", f"{info.id} (number {info.number})" if info else "not recorded"),
        ("status", info.status if info else None),
        ("started", info.started if info else None),
        ("host", info.host if info else None),
        ("git commit", manager.git_commit_hash or None),
        ("parameter sets", ", ".join(sets) or None),
        ("stage runs", len(manager.plan.nodes)),
        ("notes", manager.notes),
    ]
    cells = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>"
        for label, value in rows
        if value is not None
    )
    return f'<table class="assay-info">{cells}</table>'


def dag_svg(manager: Any) -> str:
    """The DAG of a manager's plan so far, as SVG (Jupyter's display of a manager or plan)."""
    from assay.report.dag import render_svg

    run_info = getattr(manager, "run_info", None)
    status = getattr(run_info, "status", None)
    dag = dag_of(manager, run_status=status, run_error=getattr(run_info, "error", None))
    return render_svg(dag["records"], dag["nodes"], title=f"DAG of {manager.experiment_name}")
