"""The picture of a run's DAG, as SVG drawn by this module (no Graphviz, no JavaScript).

Input is the plain run record (its ``records`` and ``nodes``, see
:mod:`assay.report.collect`). The layout is layered, left to right:

- a stage run's *column* is its depth in the DAG (stages without inputs are
  at depth 0, every other one a column right of its deepest input);
- each record gets a horizontal *band* (a labelled box), so a parameter set's
  pipeline reads as one line; an aggregate's band comes where the aggregate
  record was first used (usually last) and says how many records it joins;
- inside a band, stage runs of the same column are stacked;
- a stage run is a box with its outputs as small labelled *artifact* pills
  (cache path, size and whether it was computed or reused in the tooltip);
  edges go from the artifact pill to the stage that reads it.

Stage runs are styled by what happened to them (executed, cached, not
needed, failed, interrupted, not run) with a legend on top. Text widths are
estimated from character counts (no font metrics are available without a
browser), labels too long for their box are shortened with an ellipsis, and
the full text is always in the tooltip.

Why hand-made SVG: SPEC section 6 requires a picture that renders after a
plain ``pip install``. Graphviz needs a system binary; the pure-Python layout
libraries either pull in heavy dependencies or are unmaintained; JavaScript
layout would need a script in the page (and a library committed or fetched).
Layered placement of records × stages is simple enough to do exactly here,
the result is a static file that any browser (and Jupyter) shows, and it
scales linearly with the number of stage runs.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from assay.humanize import format_size

STATUS_STYLES: dict[str, dict[str, str]] = {
    "executed": {"fill": "#dcf3d8", "stroke": "#2e7d32", "label": "executed"},
    "cached": {"fill": "#dce9fb", "stroke": "#1f5fbf", "label": "reused from the cache"},
    "unneeded": {"fill": "#f1f1f1", "stroke": "#9e9e9e", "label": "not needed", "dash": "4 3"},
    "failed": {"fill": "#fbdad7", "stroke": "#c62828", "label": "failed", "width": "2.5"},
    "interrupted": {"fill": "#ffe8c4", "stroke": "#d97b00", "label": "interrupted"},
    "not run": {"fill": "#ffffff", "stroke": "#b0b0b0", "label": "not run", "dash": "2 3"},
    "skipped": {"fill": "#f1f1f1", "stroke": "#9e9e9e", "label": "skipped", "dash": "4 3"},
}
"""Fill and outline of a stage run by its status (also used by the page's CSS)."""

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

# Geometry, in SVG pixels.
MARGIN = 12
LEGEND_H = 30
STAGE_CHAR_W = 7.8  # 12px, semibold (DejaVu Sans, the widest common fallback)
PILL_CHAR_W = 6.4  # 10.5px
NODE_MIN_W = 110
NODE_MAX_W = 230
HEADER_H = 24
PILL_H = 16
PILL_GAP = 3
NODE_PAD = 6
STACK_GAP = 10
COL_GAP = 56
BAND_LABEL_H = 20
BAND_PAD = 10
BAND_GAP = 8
MAX_PILLS = 6


_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 forbids (even escaped): one of them makes the whole SVG unreadable."""


def _xml(text: str) -> str:
    """``text`` escaped for SVG (text and attribute values); a control character that XML
    cannot hold (ESC, NUL, ...) is shown as its symbol (U+241B for ESC), anything else
    XML forbids as U+FFFD."""
    return html.escape(_NOT_IN_XML.sub(_symbol, text), quote=True)


def _symbol(match: re.Match) -> str:
    code = ord(match.group(0))
    return chr(0x2400 + code) if code < 0x20 else "\ufffd"


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def overlaps(self, other: Box) -> bool:
        """Whether the two boxes share any area (touching edges do not count)."""
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )


@dataclass
class Layout:
    """Where everything goes; :func:`render_svg` draws it, tests inspect it."""

    width: float = 0
    height: float = 0
    bands: dict[int, Box] = field(default_factory=dict)
    nodes: dict[int, Box] = field(default_factory=dict)
    pills: dict[tuple[int, str], Box] = field(default_factory=dict)
    hidden: dict[int, int] = field(default_factory=dict)
    """Node index -> number of outputs not drawn (shown as "+N more")."""
    columns: list[float] = field(default_factory=list)
    column_of: dict[int, int] = field(default_factory=dict)
    """Node index -> its column."""
    band_of: dict[int, int] = field(default_factory=dict)
    """Node index -> its record's band."""
    column_widths: list[float] = field(default_factory=list)


def depths(nodes: list[dict]) -> dict[int, int]:
    """Each stage run's column: 0 without inputs, else one more than its deepest input."""
    by_index = {n["index"]: n for n in nodes}
    depth: dict[int, int] = {}

    def of(index: int, trail: frozenset = frozenset()) -> int:
        if index in depth:
            return depth[index]
        node = by_index[index]
        parents = _parents(node)
        found = 0
        for parent in parents:
            if parent in by_index and parent not in trail and parent != index:
                found = max(found, of(parent, trail | {index}) + 1)
        depth[index] = found
        return found

    for node in nodes:  # plan order is topological, so recursion stays shallow
        of(node["index"])
    return depth


def _parents(node: dict) -> list[int]:
    return list(dict.fromkeys([*node.get("deps", []), *(i for i, _ in node.get("inputs", []))]))


def _shown_outputs(node: dict) -> tuple[list[dict], int]:
    outputs = node.get("outputs") or []
    if len(outputs) <= MAX_PILLS:
        return outputs, 0
    return outputs[: MAX_PILLS - 1], len(outputs) - (MAX_PILLS - 1)


def _node_height(node: dict) -> float:
    shown, hidden = _shown_outputs(node)
    rows = len(shown) + (1 if hidden else 0)
    if not rows:
        return HEADER_H + 4
    return HEADER_H + rows * (PILL_H + PILL_GAP) - PILL_GAP + NODE_PAD


def layout(records: list[dict], nodes: list[dict]) -> Layout:
    """Place bands, stage boxes and artifact pills (see the module's docs)."""
    result = Layout()
    if not nodes:
        result.width, result.height = 2 * MARGIN + legend_width(nodes), 2 * MARGIN + LEGEND_H + 30
        return result
    depth = depths(nodes)
    n_columns = max(depth.values()) + 1
    widths = [float(NODE_MIN_W)] * n_columns
    for node in nodes:
        shown, _ = _shown_outputs(node)
        wanted = max(
            [(len(node["stage"]) + 2 * bool(node.get("aggregate"))) * STAGE_CHAR_W + 20]
            + [len(o["name"]) * PILL_CHAR_W + 24 for o in shown]
        )
        column = depth[node["index"]]
        widths[column] = min(NODE_MAX_W, max(widths[column], wanted))
    x = MARGIN + BAND_PAD
    columns = []
    for width in widths:
        columns.append(x)
        x += width + COL_GAP
    total_width = max(x - COL_GAP + BAND_PAD + MARGIN, legend_width(nodes) + 2 * MARGIN)
    result.columns, result.column_widths = columns, widths

    band_order: list[int] = []
    members: dict[int, list[dict]] = {}
    for node in nodes:
        rid = node["record"]
        if rid not in members:
            band_order.append(rid)
            members[rid] = []
        members[rid].append(node)

    y = MARGIN + LEGEND_H
    for rid in band_order:
        stack = [0.0] * n_columns
        top = y + BAND_LABEL_H
        for node in members[rid]:
            column = depth[node["index"]]
            height = _node_height(node)
            box = Box(columns[column], top + stack[column], widths[column], height)
            stack[column] += height + STACK_GAP
            result.nodes[node["index"]] = box
            result.column_of[node["index"]] = column
            result.band_of[node["index"]] = rid
            shown, hidden = _shown_outputs(node)
            pill_y = box.y + HEADER_H
            for output in shown:
                pill = Box(box.x + 8, pill_y, box.w - 16, PILL_H)
                result.pills[(node["index"], output["name"])] = pill
                pill_y += PILL_H + PILL_GAP
            if hidden:
                result.hidden[node["index"]] = hidden
        inner = max(stack) - STACK_GAP
        band = Box(MARGIN, y, total_width - 2 * MARGIN, BAND_LABEL_H + inner + BAND_PAD)
        result.bands[rid] = band
        y = band.bottom + BAND_GAP
    result.width = total_width
    result.height = y - BAND_GAP + MARGIN
    return result


def _fit(text: str, width: float, char_w: float) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels (estimated)."""
    room = max(1, int(width / char_w))
    return text if len(text) <= room else text[: max(1, room - 1)] + "\u2026"


def _attrs(style: dict[str, str], outline: str | None = None) -> str:
    parts = [f'fill="{style["fill"]}" stroke="{outline or style["stroke"]}"']
    parts.append(f'stroke-width="{style.get("width", "1.3")}"')
    if style.get("dash"):
        parts.append(f'stroke-dasharray="{style["dash"]}"')
    return " ".join(parts)


def render_svg(records: list[dict], nodes: list[dict], title: str = "") -> str:
    """The DAG as a standalone SVG document (also fine inline in HTML)."""
    lay = layout(records, nodes)
    by_record = {r["id"]: r for r in records}
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="assay-dag" '
        f'width="{lay.width:.0f}" height="{lay.height:.0f}" '
        f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" font-family="{_xml(FONT)}" '
        f'role="img" aria-label="{_xml(title or "DAG of the run")}">',
        '<defs><marker id="assay-arrow" viewBox="0 0 8 8" refX="7" refY="4" '
        'markerWidth="7" markerHeight="7" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#7d8590"/></marker></defs>',
        f'<rect width="{lay.width:.0f}" height="{lay.height:.0f}" fill="#ffffff"/>',
    ]
    if title:
        out.append(f"<title>{_xml(title)}</title>")
    out.append(_legend(nodes))
    if not nodes:
        out.append(
            f'<text x="{MARGIN}" y="{MARGIN + LEGEND_H + 16}" font-size="12" fill="#555">'
            "No stage ran.</text></svg>"
        )
        return "".join(out)

    # Bands (one per record).
    for rid, band in lay.bands.items():
        record = by_record.get(rid, {"label": str(rid), "aggregate": False, "joins": []})
        label = str(record.get("label"))
        if record.get("aggregate"):
            joined = [str(by_record[j]["label"]) for j in record.get("joins", []) if j in by_record]
            joins = f"aggregate of {len(joined)} record{'' if len(joined) == 1 else 's'}"
            text = joins if label == "aggregate" else f"{label} \u2014 {joins}"
            tip = f"{label}: aggregate of {', '.join(joined) or 'no records'}"
            fill, stroke = "#f6f1fb", "#b9a3d6"
        else:
            text = tip = f"{label}"
            fill, stroke = "#f7f8fa", "#d5d9e0"
        out.append(
            f'<g class="record"><title>{_xml(tip)}</title>'
            f'<rect x="{band.x:.1f}" y="{band.y:.1f}" width="{band.w:.1f}" height="{band.h:.1f}" '
            f'rx="6" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{band.x + 8:.1f}" y="{band.y + 14:.1f}" font-size="11.5" '
            f'font-weight="600" fill="#4a5160">{_xml(_fit(text, band.w - 16, 6.6))}</text></g>'
        )

    # Edges, under the boxes: artifact pill -> consumer's left side.
    incoming: dict[int, list[tuple[float, float, int, str]]] = {}
    for node in nodes:
        target = node["index"]
        seen: set[tuple[int, str]] = set()
        sources = [(i, name) for i, name in node.get("inputs", [])]
        covered = {i for i, _ in sources}
        sources += [(i, "") for i in node.get("deps", []) if i not in covered]
        for producer, name in sources:
            if (producer, name) in seen or producer not in lay.nodes:
                continue
            seen.add((producer, name))
            start = _edge_start(lay, producer, name)
            incoming.setdefault(target, []).append((start[1], start[0], producer, name))
    out.append('<g class="edges" fill="none" stroke="#8a919c" stroke-width="1.2">')
    for target, sources in incoming.items():
        box = lay.nodes[target]
        sources.sort()
        count = len(sources)
        for i, (y1, x1, producer, _name) in enumerate(sources):
            y2 = box.y + (HEADER_H / 2 if count == 1 else 6 + (box.h - 12) * (i + 0.5) / count)
            out.append(
                f'<path d="{_edge_path(lay, producer, target, x1, y1, box.x - 1, y2)}" '
                'marker-end="url(#assay-arrow)" opacity="0.85"/>'
            )
    out.append("</g>")

    # Stage runs and their artifacts.
    for node in nodes:
        out.append(_node_svg(node, lay, by_record))
    out.append("</svg>")
    return "".join(out)


def _edge_path(
    lay: Layout, producer: int, target: int, x1: float, y1: float, x2: float, y2: float
) -> str:
    """An edge's path: a plain curve to the next column, else along a lane.

    An edge that skips columns would pass behind the stage boxes between its
    ends; instead it drops into the free strip at the bottom of the producer's
    band, runs along it, and rises to its target in the gap before the
    target's column (gaps never hold boxes).
    """
    span = lay.column_of.get(target, 0) - lay.column_of.get(producer, 0)
    if span <= 1:
        bend = max(18.0, (x2 - x1) / 2)
        return f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    lane = lay.bands[lay.band_of[producer]].bottom - BAND_PAD / 2
    half, quarter = COL_GAP / 2, COL_GAP / 4
    return (
        f"M{x1:.1f},{y1:.1f} C{x1 + quarter:.1f},{y1:.1f} {x1 + quarter:.1f},{lane:.1f} "
        f"{x1 + half:.1f},{lane:.1f} L{x2 - half:.1f},{lane:.1f} "
        f"C{x2 - quarter:.1f},{lane:.1f} {x2 - quarter:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    )


def _edge_start(lay: Layout, producer: int, name: str) -> tuple[float, float]:
    pill = lay.pills.get((producer, name))
    if pill is not None:
        return pill.right, pill.y + pill.h / 2
    box = lay.nodes[producer]
    if lay.hidden.get(producer):  # among the "+N more" outputs
        return box.right - 8, box.bottom - NODE_PAD - PILL_H / 2
    return box.right, box.y + HEADER_H / 2


def _node_svg(node: dict, lay: Layout, by_record: dict) -> str:
    box = lay.nodes[node["index"]]
    status = node.get("status") or "not run"
    style = STATUS_STYLES.get(status, STATUS_STYLES["not run"])
    record = by_record.get(node["record"], {}).get("label", "")
    tip = [f"{node['stage']} \u2014 {record}", f"status: {style['label']}"]
    if node.get("duration_s") is not None:
        tip[-1] += f" in {node['duration_s']:.3f} s"
    if node.get("reason"):
        tip.append(f"why: {node['reason']}")
    if node.get("aggregate"):
        joined = [str(by_record[j]["label"]) for j in node.get("joins", []) if j in by_record]
        tip.append(f"joins {len(joined)} record(s): {', '.join(joined[:12])}")
        if len(joined) > 12:
            tip[-1] += ", \u2026"
    if node.get("key"):
        tip.append(f"key: {node['key']}")
    if node.get("error"):
        tip.append(f"error: {node['error'][:500]}")
    glyph = "\u03a3 " if node.get("aggregate") else ""
    parts = [
        f'<g class="stage status-{_xml(status.replace(" ", "-"))}">'
        f"<title>{_xml(chr(10).join(tip))}</title>"
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="5" '
        f"{_attrs(style)}/>"
        f'<text x="{box.x + 8:.1f}" y="{box.y + 16:.1f}" font-size="12" font-weight="600" '
        f'fill="#1f2328">{_xml(_fit(glyph + node["stage"], box.w - 14, STAGE_CHAR_W))}</text>'
        "</g>"
    ]
    shown, hidden = _shown_outputs(node)
    for output in shown:
        pill = lay.pills[(node["index"], output["name"])]
        detail = [output["name"]]
        if output.get("type"):
            detail.append(f"type: {output['type']}")
        if output.get("path"):
            detail.append(str(output["path"]))
        if output.get("size") is not None:
            detail.append(format_size(output["size"]) or "size unknown")
        detail.append(str(output.get("action") or ""))
        if output.get("cacher"):
            detail.append(f"cacher: {output['cacher']}")
        dashed = "" if output.get("cached") else ' stroke-dasharray="3 2"'
        parts.append(
            f'<g class="artifact"><title>{_xml(chr(10).join(d for d in detail if d))}</title>'
            f'<rect x="{pill.x:.1f}" y="{pill.y:.1f}" width="{pill.w:.1f}" height="{pill.h:.1f}" '
            f'rx="8" fill="#ffffff" stroke="{style["stroke"]}" stroke-width="1"{dashed}/>'
            f'<text x="{pill.x + 8:.1f}" y="{pill.y + 11.5:.1f}" font-size="10.5" fill="#3a3f47">'
            f"{_xml(_fit(output['name'], pill.w - 14, PILL_CHAR_W))}</text></g>"
        )
    if hidden:
        y = box.bottom - NODE_PAD - PILL_H + 11.5
        names = ", ".join(o["name"] for o in node["outputs"][len(shown) :])
        parts.append(
            f"<g><title>{_xml(names)}</title>"
            f'<text x="{box.x + 16:.1f}" y="{y:.1f}" font-size="10.5" fill="#555">'
            f"+{hidden} more</text></g>"
        )
    return "".join(parts)


_LEGEND_ORDER = ("executed", "cached", "unneeded", "failed", "interrupted", "not run", "skipped")
_LEGEND_ARTIFACT = "artifact (hover for its cache path)"


def _legend_statuses(nodes: list[dict]) -> list[str]:
    present = {n.get("status") for n in nodes}
    return [s for s in _LEGEND_ORDER if s in present or s in ("executed", "cached")]


def legend_width(nodes: list[dict]) -> float:
    """How wide the legend is drawn (the picture is at least this wide)."""
    labels = [STATUS_STYLES[s]["label"] for s in _legend_statuses(nodes)]
    return sum(28 + len(label) * 6.4 + 18 for label in labels) + 32 + len(_LEGEND_ARTIFACT) * 6.4


def _legend(nodes: list[dict]) -> str:
    shown = _legend_statuses(nodes)
    x = float(MARGIN)
    y = MARGIN + 4
    parts = ['<g class="legend" font-size="11.5" fill="#333">']
    for status in shown:
        style = STATUS_STYLES[status]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="22" height="14" rx="3" {_attrs(style)}/>'
            f'<text x="{x + 28:.1f}" y="{y + 11:.1f}">{_xml(style["label"])}</text>'
        )
        x += 28 + len(style["label"]) * 6.4 + 18
    parts.append(
        f'<rect x="{x:.1f}" y="{y + 1:.1f}" width="26" height="12" rx="6" fill="#fff" '
        f'stroke="#666"/><text x="{x + 32:.1f}" y="{y + 11:.1f}">{_LEGEND_ARTIFACT}</text></g>'
    )
    return "".join(parts)
