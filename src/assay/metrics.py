"""Scalar metrics: ``record.log_metric(name, value, step=None)`` and where they are kept.

A stage logs numbers it wants to compare across runs::

    @assay.stage(inputs=["model", "x_test", "y_test"], outputs=["scores"])
    def evaluate(record, model, x_test, y_test):
        for epoch, loss in enumerate(history):
            record.log_metric("loss", loss, step=epoch)    # a curve
        record.log_metric("accuracy", accuracy)            # one number
        ...

Where they go:

- into the stage run, as one :class:`Metrics` reportable (so the run's report
  shows them, as a table with a small curve per stepped metric). Reportables
  are cached with the stage's outputs, so a later run that takes the stage
  from the cache gets its metrics back, exactly like its other reportables,
  and a stage that runs in a worker process sends them back with them;
- into the run store, at the end of the run, in one write: the ``metrics``
  table of ``assay.db`` (created here, ``CREATE TABLE IF NOT EXISTS``), one
  row per logged value::

      run        the run's number
      param_set  the parameter set's name ("aggregate" for an aggregate stage)
      stage      the stage that logged it
      name       the metric's name
      value      the number (NULL for NaN)
      step       the step given, or NULL
      key        the stage run's cache key
      reused     1 if the run took the stage from the cache (the value was
                 logged when it executed in an earlier run)

``assay compare`` shows how the final values differ between two runs, and the
dashboard (``assay ui``) tabulates, compares and plots them. Read them with
:func:`read_metrics` or plain SQL.
"""

from __future__ import annotations

import html
import logging
import math
import numbers
import operator
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.reporting import Reportable

log = logging.getLogger("assay")

__all__ = [
    "MetricChange",
    "MetricRow",
    "Metrics",
    "compare_metrics",
    "final_values",
    "log_metric",
    "read_metrics",
    "record_run_metrics",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
    run       INTEGER NOT NULL,
    param_set TEXT,
    stage     TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     REAL,
    step      INTEGER,
    key       TEXT,
    reused    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run);
DROP INDEX IF EXISTS metrics_by_name;
CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics (name, run, param_set, stage, value)
"""
"""``metrics_by_series`` finds a metric's rows, run by run and series by series, with their
values (the dashboard sorts runs by a metric's final values from it alone); it replaced
``metrics_by_name (name, run)``, which stores made before have until a run writes metrics."""

MAX_NAME = 200
"""The longest metric name accepted."""

STEP_RANGE = (-(2**63), 2**63 - 1)
"""The steps accepted: what an SQLite INTEGER holds."""

_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MetricRow:
    """One logged value, as the run store keeps it (see the module docs)."""

    run: int
    """The run's number."""
    param_set: str | None
    """The parameter set's name (``"aggregate"`` for an aggregate stage)."""
    stage: str
    """The stage that logged it."""
    name: str
    """The metric's name."""
    value: float | None
    """The value (``None`` for NaN)."""
    step: int | None = None
    """The step given to ``log_metric``, or ``None``."""
    key: str | None = None
    """The cache key of the stage run that logged it."""
    reused: bool = False
    """Whether the run took the stage from the cache."""


# -- logging ------------------------------------------------------------------------------


class Metrics(Reportable):
    """The metrics one stage run logged, shown in the report as a table.

    Made by the first ``record.log_metric`` of a stage run; later calls add to
    it. ``entries`` holds ``(name, value, step)`` in the order logged. A metric
    logged with steps gets a small line chart (inline SVG, no script).
    """

    def __init__(self, name: str = "metrics", group: str | None = "metrics"):
        super().__init__(name=name, group=group)
        self.entries: list[tuple[str, float, int | None]] = []

    def add(self, name: str, value: float, step: int | None) -> None:
        """Add one value (already checked by :func:`log_metric`)."""
        self.entries.append((name, value, step))

    def series(self) -> dict[str, list[tuple[int | None, float]]]:
        """``{name: [(step, value), ...]}`` in the order logged."""
        found: dict[str, list[tuple[int | None, float]]] = {}
        for name, value, step in self.entries:
            found.setdefault(name, []).append((step, value))
        return found

    def html(self) -> str:
        series = self.series()
        stepped = {
            name: len(points) > 1 or points[0][0] is not None for name, points in series.items()
        }
        curves = any(stepped.values())
        rows = []
        for name, points in series.items():
            cells = f'<td>{html.escape(name)}</td><td class="num">{_number(points[-1][1])}</td>'
            if curves:
                values = [v for _, v in points if not math.isnan(v)]
                shown = stepped[name] and values
                spread = (
                    f"{min(values):.4g} \u2013 {max(values):.4g} ({len(points)})" if shown else ""
                )
                finite = sum(1 for v in values if math.isfinite(v))  # what a curve can draw
                chart = _sparkline(points) if stepped[name] and finite > 1 else ""
                cells += f'<td class="nowrap">{html.escape(spread)}</td><td>{chart}</td>'
            rows.append(f"<tr>{cells}</tr>")
        head = "<th>metric</th><th>last value</th>"
        if curves:
            head += "<th>range (values)</th><th>curve</th>"
        return (
            f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows)
            + "</tbody></table>"
        )


def log_metric(record: Any, name: str, value: Any, step: int | None = None) -> None:
    """Log a scalar metric on ``record`` (what ``record.log_metric`` does).

    Called inside a stage, the value belongs to that stage run; outside any
    stage, to the record's last stage run (or to the record alone). Raises
    ``TypeError`` / ``ValueError`` for a name that is not a short string, a
    value that is not a real number (or too large for a float), or a step that
    is not an integer the run store can keep (64 bits: from -2**63 to 2**63 - 1).
    NaN is kept as "no value" (NULL) in the run store; infinities are kept as such.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ValueError(
            f"A metric's name must be a non-empty string of at most {MAX_NAME} characters, "
            f"got {name!r}."
        )
    number = _as_float(name, value)
    if step is not None:
        try:
            step = operator.index(step)
        except TypeError:
            raise TypeError(
                f"The step of metric {name!r} must be an integer (or None), got "
                f"{type(step).__name__} {step!r}."
            ) from None
        if not STEP_RANGE[0] <= step <= STEP_RANGE[1]:
            raise ValueError(
                f"The step of metric {name!r} is {_short(step)}: the run store keeps steps "
                "as 64-bit integers, from -2**63 to 2**63 - 1. Log a smaller step (an "
                "epoch or iteration count)."
            )
    node = record._last_node()
    if record._node is not None:
        owner = record._node.reportables
    else:  # outside any stage: beside the record's last stage run, or the record's own
        owner = node.reported_after if node is not None else record.reportables
    metrics = next((r for r in owner if type(r) is Metrics), None)
    if metrics is None:
        metrics = Metrics()
        record.report(metrics)
    metrics.add(name, number, step)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(
            f"Metric {name!r} must be a real number, got {type(value).__name__} {value!r}. "
            "Log each number of a structure separately, or report it with record.report(...)."
        )
    try:
        if isinstance(value, numbers.Real):
            return float(value)
        item = getattr(value, "item", None)  # numpy / torch scalars, one-element arrays
        return float(item() if callable(item) else value)
    except OverflowError:  # an int (or Fraction) beyond any float
        raise ValueError(
            f"Metric {name!r} is {_short(value)}, too large for a floating-point number "
            "(the run store keeps metrics as 64-bit floats, up to about 1.8e308)."
        ) from None
    except (TypeError, ValueError):
        raise TypeError(
            f"Metric {name!r} must be a real number, got {type(value).__name__} {value!r}."
        ) from None


def _short(value: Any) -> str:
    """A number as text, its middle left out if it is very long."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return text if len(text) <= 60 else f"{text[:25]}...{text[-25:]} ({len(text)} characters)"


# -- the run store ------------------------------------------------------------------------


def record_run_metrics(store: Any, manager: Any) -> int:
    """Write every metric of a run that ended into the run store, in one write.

    Called by :func:`assay.run_experiment` before the run is marked finished.
    Stage runs taken from the cache first get their cached reportables (and
    with them their metrics) back. A problem is logged as a warning and does
    not fail the run. Returns the number of rows written.
    """
    try:
        manager.runner.restore_reportables(manager.plan.nodes)
    except Exception as exc:  # the metrics of executed stages are still written
        log.debug("Cached metrics not restored: %s", exc)
    rows = []
    run_number = manager.run_number
    seen: set[int] = set()
    for node in manager.plan.nodes:
        for reportable in (*node.reportables, *node.reported_after):
            if type(reportable) is Metrics and id(reportable) not in seen:
                seen.add(id(reportable))
                reused = node.status == "cached" and reportable in node.reportables
                for name, value, step in reportable.entries:
                    rows.append(
                        (run_number, node.record_label, node.spec.name, name,
                         _finite_or_nan(value), step, node.key, int(reused))
                    )  # fmt: skip
    for reportable in manager.reportables:  # logged outside any stage
        if type(reportable) is Metrics and id(reportable) not in seen:
            record = reportable.record
            label = record.name if record is not None else None
            for name, value, step in reportable.entries:
                rows.append((run_number, label, "", name, _finite_or_nan(value), step, None, 0))
    kept = [r for r in rows if r[5] is None or STEP_RANGE[0] <= r[5] <= STEP_RANGE[1]]
    if len(kept) < len(rows):  # logged by an older assay, which let such steps through
        log.warning(
            "%d metric value(s) of run %s have a step beyond a 64-bit integer and are left "
            "out of the run store. They are still in the run's report.",
            len(rows) - len(kept),
            manager.run_id,
        )
        rows = kept
    if not rows:
        return 0
    try:
        write_rows(Path(store.path), rows)
    except (sqlite3.Error, OSError, OverflowError) as exc:
        log.warning(
            "The metrics of run %s could not be written to the run store %s: %s. They are "
            "still in the run's report.",
            manager.run_id,
            store.path,
            exc,
        )
        return 0
    return len(rows)


def write_rows(path: Path, rows: list[tuple]) -> None:
    """Insert metric rows ``(run, param_set, stage, name, value, step, key, reused)``.

    One transaction, one ``executemany``; creates the table on first use. The
    run store's own tables must exist already (they do once a run has begun).
    """
    db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            ensure_schema(db)
            db.executemany(
                "INSERT INTO metrics (run, param_set, stage, name, value, step, key, reused)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        db.close()


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the ``metrics`` table and its indexes if they are missing."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def has_table(db: sqlite3.Connection) -> bool:
    """Whether the run store behind ``db`` has a ``metrics`` table (no run logged any)."""
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metrics'"
    ).fetchone()
    return row is not None


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the run store (it is never written through it)."""
    from assay.store import read_only_modes

    path = Path(path).resolve()
    # mode=ro still writes WAL's shared-memory file beside the store: where nobody may
    # write (a colleague's project), it is opened as the run store opens it then.
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    *first, last = ("mode=ro",) if writable else read_only_modes(path)
    for mode in first:
        try:
            return _opened(path, mode)
        except sqlite3.Error:  # cannot read its write-ahead log: the file alone
            continue
    return _opened(path, last)


def _opened(path: Path, mode: str) -> sqlite3.Connection:
    """A query-only connection to the store at ``path`` opened with the URI parameter
    ``mode``, checked by a first read."""
    db = sqlite3.connect(
        f"{path.as_uri()}?{mode}", uri=True, timeout=_BUSY_TIMEOUT_S, check_same_thread=False
    )
    try:
        db.execute("PRAGMA query_only = ON")
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except BaseException:
        db.close()
        raise
    return db


def read_metrics(path: str | Path, runs: Iterable[int]) -> list[MetricRow]:
    """Every metric row of the given runs (by number), in the order logged."""
    numbers_ = sorted({int(r) for r in runs})
    if not numbers_ or not Path(path).exists():
        return []
    db = connect_readonly(path)
    try:
        if not has_table(db):
            return []
        found = []
        for start in range(0, len(numbers_), 500):
            batch = numbers_[start : start + 500]
            marks = ", ".join("?" * len(batch))
            found += db.execute(
                "SELECT run, param_set, stage, name, value, step, key, reused FROM metrics"
                f" WHERE run IN ({marks}) ORDER BY run, rowid",
                batch,
            ).fetchall()
    finally:
        db.close()
    return [MetricRow(*row[:7], reused=bool(row[7])) for row in found]


def final_values(rows: Iterable[MetricRow]) -> dict[tuple, float | None]:
    """``{(run, param_set, stage, name): value}``: the last value logged of each series."""
    last: dict[tuple, float | None] = {}
    for row in rows:
        last[(row.run, row.param_set, row.stage, row.name)] = row.value
    return last


@dataclass(frozen=True)
class MetricChange:
    """A metric's final value in run A and run B (``None``: not logged there, or NaN)."""

    param_set: str | None
    stage: str
    name: str
    a: float | None
    b: float | None
    only_in: str | None = None
    """``"A"`` or ``"B"`` when only that run logged the metric, ``None`` when both did."""

    @property
    def changed(self) -> bool:
        """Whether both runs logged the metric and its values differ (two NaNs count as
        the same value). A metric only one run logged is not "changed": see ``only_in``."""
        return self.only_in is None and self.a != self.b and not _both_nan(self.a, self.b)

    @property
    def delta(self) -> float | None:
        """B's value minus A's: 0 when they are the same, ``None`` when either is missing or
        the difference is not a number (infinity minus infinity, or a NaN)."""
        if self.a is None or self.b is None:
            return None
        if not self.changed:
            return 0.0
        difference = self.b - self.a
        return None if math.isnan(difference) else difference


def _both_nan(a: float | None, b: float | None) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def compare_metrics(path: str | Path, run_a: int, run_b: int) -> list[MetricChange]:
    """The final value of every metric in two runs, matched by parameter set, stage and name."""
    last = final_values(read_metrics(path, [run_a, run_b]))
    labels = dict.fromkeys(k[1:] for k in last)
    return [_change(last, label, run_a, run_b) for label in labels]


def _change(last: dict[tuple, float | None], label: tuple, run_a: int, run_b: int) -> MetricChange:
    in_a, in_b = (run_a, *label) in last, (run_b, *label) in last
    only_in = None if in_a and in_b else "A" if in_a else "B"
    return MetricChange(*label, last.get((run_a, *label)), last.get((run_b, *label)), only_in)


# -- helpers ------------------------------------------------------------------------------


def _finite_or_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _number(value: float) -> str:
    return html.escape(f"{value:.6g}")


def _thinned(drawn: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points of a polyline worth drawing at one pixel's width: of consecutive points
    that fall in the same pixel column, the first, the lowest, the highest and the last.

    A metric logged at every one of 100,000 steps draws the same line from a few hundred
    points, instead of making the metrics table too large to show in the page."""
    thinned: list[tuple[float, float]] = []
    column: list[tuple[float, float]] = []
    for point in drawn:
        if column and round(point[0]) != round(column[0][0]):
            thinned += _column_extremes(column)
            column = []
        column.append(point)
    return thinned + _column_extremes(column)


def _column_extremes(column: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The first, lowest, highest and last of ``column``'s points, in their order."""
    if len(column) <= 4:
        return column
    indices = range(len(column))
    lowest = min(indices, key=lambda i: column[i][1])
    highest = max(indices, key=lambda i: column[i][1])
    return [column[i] for i in sorted({0, lowest, highest, len(column) - 1})]


def _sparkline(points: list[tuple[int | None, float]], width: int = 100, height: int = 28) -> str:
    """A small SVG line of a metric over its steps (or over the order logged)."""
    data = [
        (float(step if step is not None else i), v)
        for i, (step, v) in enumerate(points)
        if math.isfinite(v)
    ]
    xs, ys = [x for x, _ in data], [y for _, y in data]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (width - 4) / ((x1 - x0) or 1)
    sy = (height - 4) / ((y1 - y0) or 1)
    drawn = [(2 + (x - x0) * sx, height - 2 - (y - y0) * sy) for x, y in data]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in _thinned(drawn))
    return (
        f'<svg class="sparkline" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' role="img"><polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" '
        f'points="{path}"/></svg>'
    )
