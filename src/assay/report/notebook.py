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


def record_html(record: Any) -> str:
    """A record's reportables, one after another (Jupyter's display of a ``Record``)."""
    name = html.escape(str(record.name))
    parts = [f'<div class="assay-record"><h4>Record {name}</h4>']
    if not record.reportables:
        parts.append("<p><em>No reportables yet.</em></p>")
    for reportable in record.reportables:
        try:
            parts.append(inline_html(reportable))
        except Exception as exc:  # one broken reportable must not hide the others
            title = html.escape(str(reportable.name))
            parts.append(
                f"<p><strong>{title}</strong>: could not be shown ({html.escape(repr(exc))})</p>"
            )
    parts.append("</div>")
    return "".join(parts)


def dag_svg(manager: Any) -> str:
    """The DAG of a manager's plan so far, as SVG (Jupyter's display of a manager or plan)."""
    from assay.report.dag import render_svg

    run_info = getattr(manager, "run_info", None)
    status = getattr(run_info, "status", None)
    dag = dag_of(manager, run_status=status, run_error=getattr(run_info, "error", None))
    return render_svg(dag["records"], dag["nodes"], title=f"DAG of {manager.experiment_name}")
