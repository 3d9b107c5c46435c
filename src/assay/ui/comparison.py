"""Side by side: two or more runs, or parameter sets of runs, as columns.

A column is a whole run (``?run=3&run=7``) or one parameter set of a run
(``?set=3:trees_10&set=7:trees_10``). For each column the run store gives the
parameter values, the metrics' final values and curves, and the artifacts'
keys and checksums; rows where the columns differ are marked.

With whole runs, rows are labelled by parameter set (matched by name across
runs); with parameter sets, the sets' own fields are compared directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import AssayError
from assay.metrics import read_metrics
from assay.params import item_by_item_as_in

MAX_COLUMNS = 12
"""At most this many runs or parameter sets side by side."""


@dataclass
class Column:
    """One compared thing: a run, or one parameter set of a run."""

    run: Any
    """The run's :class:`~assay.store.RunInfo`."""
    param_set: str | None
    """The parameter set's name, or ``None`` for the whole run."""

    @property
    def label(self) -> str:
        text = f"run {self.run.number}"
        return f"{text} · {self.param_set}" if self.param_set is not None else text


def columns_from(store: Any, runs: list[str], sets: list[str]) -> tuple[list[Column], list[str]]:
    """Columns for ``?run=REF`` and ``?set=RUN:NAME`` values; problems as messages."""
    columns: list[Column] = []
    errors: list[str] = []
    for ref in runs:
        try:
            columns.append(Column(store.get_run(ref.strip()), None))
        except AssayError as exc:
            errors.append(one_line(exc))
    columns.sort(key=lambda c: c.run.number)  # oldest first, whatever order they were ticked in
    for entry in sets:
        ref, sep, name = entry.partition(":")
        if not sep or not name:
            errors.append(f"{entry!r} is not RUN:PARAMETER-SET (e.g. 3:trees_10).")
            continue
        try:
            run = store.get_run(ref.strip())
        except AssayError as exc:
            errors.append(one_line(exc))
            continue
        if name not in run.param_names:
            errors.append(f"Run {run.number} has no parameter set {name!r}.")
            continue
        columns.append(Column(run, name))
    unique: dict[tuple, Column] = {}  # a run asked for twice (3 and latest) is one column
    for column in columns:
        unique.setdefault((column.run.number, column.param_set), column)
    columns = list(unique.values())
    if len(columns) > MAX_COLUMNS:
        errors.append(f"Only the first {MAX_COLUMNS} of {len(columns)} are compared.")
        columns = columns[:MAX_COLUMNS]
    return columns, errors


def one_line(exc: BaseException) -> str:
    """An error message on one line, for a page: the indented lines of a listing in it
    (the most recent runs, after "No run '999'") joined by semicolons, not dropped."""
    head, *rest = str(exc).splitlines() or [""]
    listed = [" ".join(line.split()) for line in rest if line[:1].isspace()]
    after = [line.strip() for line in rest if line.strip() and not line[:1].isspace()]
    if listed:
        head += " " + "; ".join(listed) + "."
    elif head.endswith(":"):  # a listing's lead-in with nothing listed: drop it
        head = head[: head.rfind(". ") + 1] if ". " in head else head[:-1] + "."
    return " ".join([head, *after])


def compare(store: Any, store_path: Path, columns: list[Column]) -> dict[str, Any]:
    """Parameter, metric and artifact rows over the columns (see the module docs)."""
    whole_runs = any(c.param_set is None for c in columns)
    params = _item_by_item([_param_cells(store, c, whole_runs) for c in columns])
    metric_rows = read_metrics(store_path, {c.run.number for c in columns})
    metrics = [_metric_cells(metric_rows, c, whole_runs) for c in columns]
    artifacts = [_artifact_cells(store, c, whole_runs) for c in columns]
    return {
        "labels": [c.label for c in columns],
        "whole_runs": whole_runs,
        "params": _rows(params),
        "metrics": _rows(metrics),
        "artifacts": _rows(
            artifacts, same=lambda cells: len({c and c["checksum"] for c in cells}) == 1
        ),
        "series": _series(metric_rows, columns, whole_runs),
    }


def _param_cells(store: Any, column: Column, whole_runs: bool) -> dict[tuple, Any]:
    cells: dict[tuple, Any] = {}
    for info in store.param_sets(column.run.id):
        if column.param_set is not None and info.name != column.param_set:
            continue
        label = info.name if whole_runs else ""
        for name, value in info.values.items():
            if name != "name":
                cells[(label, name)] = value
    return cells


def _item_by_item(per_column: list[dict[tuple, Any]]) -> list[dict[tuple, Any]]:
    """Each column's parameter cells with a list of dataclasses that a run from before
    ``describe`` showed them item by item recorded as one repr read back item by item,
    where the other columns show it so (see :func:`~assay.params.item_by_item_as_in`)."""
    shown = []
    for at, cells in enumerate(per_column):
        others = [key for i, c in enumerate(per_column) if i != at for key in c]
        by_label: dict[str, dict[str, Any]] = {}
        for (label, name), value in cells.items():
            by_label.setdefault(label, {})[name] = value
        shown.append({
            (label, name): value
            for label, values in by_label.items()
            for name, value in item_by_item_as_in(
                values, [name for other, name in others if other == label]
            ).items()
        })  # fmt: skip
    return shown


def _metric_cells(rows: list, column: Column, whole_runs: bool) -> dict[tuple, Any]:
    cells: dict[tuple, Any] = {}
    for row in rows:
        if row.run != column.run.number:
            continue
        if column.param_set is not None and row.param_set != column.param_set:
            continue
        cells[(row.param_set if whole_runs else "", row.stage, row.name)] = row.value
    return cells


def _artifact_cells(store: Any, column: Column, whole_runs: bool) -> dict[tuple, Any]:
    cells: dict[tuple, Any] = {}
    for art in store.artifacts(column.run.id):
        if column.param_set is not None and art.param_set != column.param_set:
            continue
        label = (art.param_set or "aggregate") if whole_runs else ""
        cells[(label, art.stage, art.name)] = {
            "key": art.key, "checksum": art.checksum, "size": art.size, "action": art.action
        }  # fmt: skip
    return cells


def _rows(per_column: list[dict[tuple, Any]], same=None) -> list[dict[str, Any]]:
    """One row per label any column has: ``{"label", "cells", "differs"}``, in first-seen order."""
    labels = dict.fromkeys(label for cells in per_column for label in cells)
    rows = []
    for label in labels:
        cells = [column.get(label) for column in per_column]
        if same is not None:
            differs = not same(cells)
        else:
            differs = len({json.dumps(c, sort_keys=True, default=repr) for c in cells}) > 1
        rows.append({"label": list(label), "cells": cells, "differs": differs})
    return rows


def _series(rows: list, columns: list[Column], whole_runs: bool) -> list[dict[str, Any]]:
    """Curves to overlay: one chart per metric logged with steps, one line per column and set."""
    charts: dict[str, dict[tuple, dict]] = {}
    for column in columns:
        for row in rows:
            if row.run != column.run.number or row.step is None:
                continue
            if column.param_set is not None and row.param_set != column.param_set:
                continue
            name = column.label + (f" · {row.param_set}" if whole_runs else "")
            if row.stage:
                name += f" ({row.stage})"
            line = charts.setdefault(row.name, {}).setdefault(
                (column.label, row.param_set, row.stage), {"name": name, "x": [], "y": []}
            )
            line["x"].append(row.step)
            line["y"].append(row.value)
    return [{"metric": metric, "lines": list(lines.values())} for metric, lines in charts.items()]
