"""The lineage of an artifact as a small clickable SVG graph.

Input is the :class:`assay.lineage.LineageNode` tree; each distinct artifact
becomes one box (output name, stage, parameter set) linking to its own
lineage page, with an edge from every input to what was made from it. The
artifact asked about is on the right, its inputs in columns to the left, by
distance. Drawn on the server as plain SVG (every label escaped), so the page
needs no script for it.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

BOX_W = 210
BOX_H = 50
COL_GAP = 60
ROW_GAP = 14
MARGIN = 10
CHAR_W = 6.6


def flatten(root: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """``(nodes, edges)``: each artifact once (at its largest depth), edges ``(from, to, input)``."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str, str]] = []

    def visit(node: Any, depth: int) -> None:
        entry = nodes.get(node.key)
        if entry is None:
            entry = nodes[node.key] = {
                "key": node.key,
                "output": node.output,
                "stage": node.stage or "",
                "param_set": node.param_set or "",
                "depth": depth,
                "problem": node.problem,
            }
        else:
            entry["depth"] = max(entry["depth"], depth)
        for item in node.inputs:
            if item.node is not None:
                edge = (item.node.key, node.key, item.name)
                if edge not in edges:
                    edges.append(edge)
                visit(item.node, depth + 1)

    visit(root, 0)
    return list(nodes.values()), edges


def render(root: Any, href: Any) -> str:
    """The SVG; ``href(key)`` gives the link of an artifact's page."""
    nodes, edges = flatten(root)
    deepest = max(n["depth"] for n in nodes)
    columns: dict[int, list[dict]] = {}
    for node in nodes:
        columns.setdefault(node["depth"], []).append(node)
    tallest = max(len(c) for c in columns.values())
    width = MARGIN * 2 + (deepest + 1) * BOX_W + deepest * COL_GAP
    height = MARGIN * 2 + tallest * BOX_H + (tallest - 1) * ROW_GAP
    place: dict[str, tuple[float, float]] = {}
    for depth, column in columns.items():
        x = MARGIN + (deepest - depth) * (BOX_W + COL_GAP)
        offset = (height - (len(column) * BOX_H + (len(column) - 1) * ROW_GAP)) / 2
        for i, node in enumerate(column):
            place[node["key"]] = (x, offset + i * (BOX_H + ROW_GAP))
    parts = [
        f'<svg class="lineage-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="lineage graph">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#777"/></marker></defs>',
    ]
    for source, target, name in edges:
        (x1, y1), (x2, y2) = place[source], place[target]
        x1, y1, x2, y2 = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        middle = (x1 + x2) / 2
        parts.append(
            f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},'
            f'{y2:.0f} {x2:.0f},{y2:.0f}" fill="none" stroke="#999" stroke-width="1.4" '
            f'marker-end="url(#arrow)"><title>input {escape(name)}</title></path>'
        )
    for node in nodes:
        x, y = place[node["key"]]
        focus = node["depth"] == 0
        fill = "#fff4d6" if focus else ("#fbdad7" if node["problem"] else "#dce9fb")
        stroke = "#d97b00" if focus else "#1f5fbf"
        title = (
            f"{node['output']} of stage {node['stage']} for {node['param_set']}\n"
            f"key {node['key']}" + (f"\n{node['problem']}" if node["problem"] else "")
        )
        parts.append(
            f'<a href="{escape(href(node["key"]), quote=True)}" class="artifact-node" '
            f'data-key="{escape(node["key"], quote=True)}"><title>{escape(title)}</title>'
            f'<rect x="{x}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2 if focus else 1.2}"/>'
            f'<text x="{x + 8}" y="{y + 20:.0f}" font-size="13" font-weight="600">'
            f"{escape(_fit(node['output'], BOX_W - 16, 7.6))}</text>"
            f'<text x="{x + 8}" y="{y + 38:.0f}" font-size="11" fill="#555">'
            f"{escape(_fit(node['stage'] + ' · ' + node['param_set'], BOX_W - 16, CHAR_W))}"
            "</text></a>"
        )
    parts.append("</svg>")
    return "".join(parts)


def lineage_href(key: str) -> str:
    """The dashboard page of an artifact."""
    return "/lineage?key=" + quote(key, safe="")


def _fit(text: str, width: float, char_w: float) -> str:
    most = max(3, int(width / char_w))
    return text if len(text) <= most else text[: most - 1] + "\u2026"
