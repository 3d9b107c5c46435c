"""The dashboard's read-only SQL over the run store (``assay.db``).

Every query runs on a connection opened with ``mode=ro`` and
``PRAGMA query_only``: the dashboard cannot change the store. Filtering,
sorting and paging happen in SQL (``LIMIT``/``OFFSET``, the store's indexes
on experiment, status and run number, and the ``metrics`` table's index on
name, run and series), so the runs table answers as fast with 10,000 runs as with 10.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import re
import sqlite3
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.metrics import connect_readonly, has_table

SORTS = {
    "number": "runs.number",
    "experiment": "runs.experiment",
    "status": "runs.status",
    "started": "runs.started",
    "duration": "duration",
}
"""Columns the runs table sorts by (also ``metric:NAME``: a metric's largest final value)."""

PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_PAGE = 1_000_000_000
"""Pages beyond this are shown as this one (empty): SQLite's OFFSET is a 64-bit integer."""
MAX_FILTERS = 100
"""At most this many parameter filters at once (SQLite limits an expression's size)."""
_INT64 = (-(2**63), 2**63 - 1)
KEY_METRICS = 4
"""How many metric columns the runs table shows."""

_FILTER = re.compile(r"^\s*([^=<>!\s][^=<>!]*?)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$")
_SEARCHED = ("runs.id", "runs.experiment", "runs.notes", "runs.param_names_json", "runs.command")
"""The columns the search text (``q``) is looked for in."""
_STATUSES = ("running", "completed", "failed", "interrupted")


class QueryError(ValueError):
    """A runs query that cannot be answered (the dashboard answers 400 with its message)."""


@dataclass
class RunQuery:
    """What the runs table shows: filters, order and page (parsed from the URL's query)."""

    experiment: str | None = None
    status: str | None = None
    q: str | None = None
    """Text searched in the id, experiment, notes, parameter-set names and command."""
    params: list[str] = field(default_factory=list)
    """Parameter filters such as ``lr=0.1``, ``model!=tree``, ``epochs>=10``: a run
    matches when one of its parameter sets satisfies every one."""
    sort: str = "number"
    order: str = "desc"
    page: int = 1
    per_page: int = PER_PAGE
    errors: list[str] = field(default_factory=list)
    """What was wrong with the query's values (each one was ignored); shown above the table."""

    @classmethod
    def parse(cls, args: Mapping[str, Any], multi: dict[str, list[str]]) -> RunQuery:
        """From query-string values (``multi``: every value of repeated keys).

        Raises :class:`QueryError` for more than :data:`MAX_FILTERS` parameter filters.
        """
        params = [p for p in multi.get("param", []) if p.strip()]
        if len(params) > MAX_FILTERS:
            raise QueryError(
                f"Too many parameter filters: {len(params)} (param=...) in one query; at most "
                f"{MAX_FILTERS} are allowed. Remove some, or narrow the runs by experiment, "
                "status or search text first."
            )
        errors = []
        sort = str(args.get("sort") or "number")
        if sort not in SORTS and not (sort.startswith("metric:") and len(sort) > 7):
            errors.append(
                f"Cannot sort by {sort!r}: sort= takes {', '.join(SORTS)} or metric:NAME. "
                "Sorted by number instead."
            )
            sort = "number"
        status = args.get("status") or None
        if status is not None and status not in _STATUSES:
            errors.append(
                f"No run has the status {status!r}: a status is one of "
                f"{', '.join(_STATUSES)}. The status filter is ignored."
            )
            status = None
        order = args.get("order") or "desc"
        if order not in ("asc", "desc"):
            errors.append(f"order= takes asc or desc, not {order!r}. Shown in desc order.")
            order = "desc"
        return cls(
            experiment=args.get("experiment") or None,
            status=status,
            q=(args.get("q") or "").strip() or None,
            params=params,
            sort=sort,
            order=order,
            page=min(MAX_PAGE, max(1, _int(args.get("page"), 1))),
            per_page=min(MAX_PER_PAGE, max(1, _int(args.get("per_page"), PER_PAGE))),
            errors=errors,
        )

    def as_params(self, **changes: Any) -> list[tuple[str, str]]:
        """This query as URL parameters, with ``changes`` (for links: sort, next page)."""
        values = {
            "experiment": self.experiment, "status": self.status, "q": self.q,
            "sort": self.sort, "order": self.order, "page": self.page,
            "per_page": self.per_page if self.per_page != PER_PAGE else None,
        }  # fmt: skip
        values.update(changes)
        pairs = [(k, str(v)) for k, v in values.items() if v not in (None, "")]
        pairs += [("param", p) for p in self.params]
        return pairs


def connect(store_path: Path) -> sqlite3.Connection:
    """A read-only connection (raises ``sqlite3.Error`` if the file cannot be opened), with
    ``fold(text)``: the text in lower case for searching, accented capitals too (SQLite's
    own ``lower`` folds A-Z only, so a search for "Übung" would miss the notes "Übung")."""
    db = connect_readonly(store_path)
    db.create_function("fold", 1, _fold, deterministic=True)
    return db


def _fold(text: str | None) -> str:
    return text.casefold() if isinstance(text, str) else ""


def run_columns(db: sqlite3.Connection) -> set[str]:
    """The columns of the ``runs`` table (older stores lack the git columns)."""
    return {row[1] for row in db.execute("PRAGMA table_info(runs)")}


def list_runs(db: sqlite3.Connection, query: RunQuery) -> dict[str, Any]:
    """One page of the runs table: ``{"total", "runs", "metric_names", "errors"}``."""
    where, args, errors = _conditions(query)
    errors = [
        *query.errors,
        *errors,
        *joined_conditions(query),
        *unknown_names(db, query),
        *mismatched_types(db, query),
    ]
    columns = run_columns(db)
    git = (
        "runs.git_commit, runs.git_dirty"
        if {"git_commit", "git_dirty"} <= columns
        else "NULL, NULL"
    )
    join, join_args, order_sql = _order(db, query)
    # With parameter filters, the page counts its runs as it reads them (one pass over the
    # parameter sets, not one for the count and one for the page); without, the count
    # is cheap and the page stops after its runs.
    counted = "COUNT(*) OVER ()" if query.params else "NULL"
    rows = db.execute(
        "SELECT runs.number, runs.id, runs.experiment, runs.status, runs.started, runs.ended,"
        " runs.notes, runs.param_names_json, runs.error, " + git + ","
        " (julianday(runs.ended) - julianday(runs.started)) * 86400.0 AS duration,"
        f" {counted} FROM runs {join} {where} ORDER BY {order_sql} LIMIT ? OFFSET ?",
        [*join_args, *args, query.per_page, (query.page - 1) * query.per_page],
    ).fetchall()
    if rows and rows[0][12] is not None:
        total = rows[0][12]
    elif query.params and query.page == 1:
        total = 0
    else:  # no parameter filter, or a page past the last
        (total,) = db.execute(f"SELECT COUNT(*) FROM runs {where}", args).fetchone()
    runs = [
        {
            "number": r[0],
            "id": r[1],
            "experiment": r[2],
            "status": r[3],
            "started": r[4],
            "ended": r[5],
            "notes": r[6],
            "param_names": _names(r[7]),
            "error": r[8],
            "git_commit": r[9],
            "git_dirty": None if r[10] is None else bool(r[10]),
            "duration_s": None if r[11] is None else round(r[11], 3),
        }  # fmt: skip
        for r in rows
    ]
    summary = metric_summary(db, [r["number"] for r in runs])
    names = _key_metric_names(summary, query)
    for run in runs:
        run["metrics"] = summary.get(run["number"], {})
    return {"total": total, "runs": runs, "metric_names": names, "errors": errors}


def _conditions(query: RunQuery) -> tuple[str, list, list[str]]:
    conditions: list[str] = []
    args: list[Any] = []
    errors: list[str] = []
    if query.experiment:
        conditions.append("runs.experiment = ?")
        args.append(query.experiment)
    if query.status:
        conditions.append("runs.status = ?")
        args.append(query.status)
    if query.q:
        searched = " || char(31) || ".join(  # one fold per run; char(31) is in no search
            f"coalesce({column}, '')" for column in _SEARCHED
        )
        conditions.append(f"instr(fold({searched}), ?)")
        args.append(_fold(query.q))
    tests = []
    for text in query.params:
        parsed = parse_filter(text)
        if parsed is None:
            errors.append(_malformed(text))
            continue
        path, operator, value = parsed
        if value is None:
            test = "json_type(p.values_json, ?) = 'null'"
            tests.append(test if operator == "=" else f"NOT {test}")
            args.append(path)
        elif operator in ("=", "!="):
            test = "(json_extract(p.values_json, ?) = ? OR CAST(json_extract(p.values_json, ?) AS TEXT) = ?)"
            tests.append(test if operator == "=" else f"NOT {test}")
            args += [path, value, path, str(value)]
        else:
            tests.append(f"json_extract(p.values_json, ?) {operator} ?")
            args += [path, value]
    if tests:
        conditions.append(
            "runs.number IN (SELECT p.run FROM param_sets p WHERE " + " AND ".join(tests) + ")"
        )
    return ("WHERE " + " AND ".join(conditions)) if conditions else "", args, errors


def _malformed(text: str) -> str:
    """Why the parameter filter ``text`` cannot be read (:func:`parse_filter` gave ``None``)."""
    match = _FILTER.match(text)
    if match and '"' in match.group(1):
        return (
            f"Parameter filter {text!r} has a double quote in the parameter's name: write "
            "the name bare, as in lr=0.1 (no parameter's name holds one; only a value may "
            'be quoted, as in model="tree"). The filter is ignored.'
        )
    return (
        f"Parameter filter {text!r} is not FIELD=VALUE (or !=, <, <=, >, >=): one "
        "operator, then a value, in double quotes if it is empty or starts with =, < "
        'or > (name="", name="=x"). The filter is ignored.'
    )


def unknown_names(db: sqlite3.Connection, query: RunQuery) -> list[str]:
    """A message for each name in ``query`` that no run has: an experiment, a metric to
    sort by, a parameter (see :func:`unknown_parameters`); more likely typos than questions."""
    messages = unknown_parameters(db, query.params)
    known = "SELECT 1 FROM runs WHERE experiment = ? LIMIT 1"
    if query.experiment and not db.execute(known, (query.experiment,)).fetchone():
        messages.append(
            f"No run of an experiment named {query.experiment!r}, so the filter on it matches "
            "nothing. " + _hint(query.experiment, experiments(db), "The experiments with runs")
        )
    metric = query.sort[7:] if query.sort.startswith("metric:") else None
    if metric and not (
        has_table(db)
        and db.execute("SELECT 1 FROM metrics WHERE name = ? LIMIT 1", (metric,)).fetchone()
    ):
        messages.append(
            f"No run logged a metric named {metric!r}, so sorting by it changes nothing. "
            + _hint(metric, metric_names(db), "The metrics runs logged")
        )
    return messages


def unknown_parameters(db: sqlite3.Connection, filters: list[str]) -> list[str]:
    """A message for each parameter filter on a name that no run's parameter sets have
    (``seedd=3``): it matches nothing, and is more likely a typo than a question."""
    names = [m.group(1) for f in filters if parse_filter(f) and (m := _FILTER.match(f))]
    unknown = [name for name in dict.fromkeys(names) if not _some_set_holds(db, field_path(name))]
    if not unknown:
        return []
    known = sorted(
        {
            row[0]
            for row in db.execute(
                "SELECT DISTINCT j.key FROM param_sets p, json_each(p.values_json) j"
                " WHERE json_valid(p.values_json) AND json_type(p.values_json) = 'object'"
            )
        }
    )
    return [
        f"No run has a parameter named {name!r}, so the filter on it matches nothing. "
        + _hint(name, known, "The parameters runs have")
        for name in unknown
    ]


def _hint(name: str, known: list[str], lead: str) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        return f"Did you mean {' or '.join(repr(n) for n in close)}?"
    if known:
        return f"{lead}: " + ", ".join(known[:12]) + (", ..." if len(known) > 12 else ".")
    return "No run has recorded any yet."


def joined_conditions(query: RunQuery) -> list[str]:
    """A message for each parameter filter that holds a second condition after a comma
    (``lr=0.1, epochs>=10``): the rest is read as part of the value, which then matches
    nothing, with no word said."""
    messages = []
    for text in dict.fromkeys(query.params):
        match, parsed = _FILTER.match(text), parse_filter(text)
        if match is None or parsed is None or parsed[2] != match.group(3):
            continue  # malformed (said elsewhere), or a number or a quoted text
        parts = [p.strip() for p in match.group(3).split(",")[1:]]
        if any(parse_filter(part) for part in parts):
            messages.append(
                f"Parameter filter {text!r} holds more than one condition: a box takes one "
                "(the rest is read as part of the value, which matches nothing). Put each "
                "in a box of its own: after Filter, a new empty box takes the next one."
            )
    return messages


def mismatched_types(db: sqlite3.Connection, query: RunQuery) -> list[str]:
    """A message for each ``<``, ``<=``, ``>``, ``>=`` filter that compares a parameter
    holding only numbers with text (``seed>=abc``), or only text with a number: SQLite puts
    every number before every text, so such a filter matches all or nothing, whatever the
    values."""
    messages = []
    for text in dict.fromkeys(query.params):
        parsed, match = parse_filter(text), _FILTER.match(text)
        if parsed is None or match is None or parsed[1] in ("=", "!="):
            continue
        path, operator, value = parsed
        name, raw = match.group(1), match.group(3)
        if isinstance(value, str) and _holds_only(db, path, _NUMBERS):
            messages.append(
                f"Parameter filter {text!r} compares {name!r}, which holds numbers, with "
                f"{raw!r}, which is not a number, so it matches all or nothing whatever the "
                f"values. Write a number, e.g. {name}{operator}3."
            )
        elif not isinstance(value, str) and _holds_only(db, path, ("text",)):
            messages.append(
                f"Parameter filter {text!r} compares {name!r}, which holds text, with the "
                f"number {raw}, so it matches all or nothing whatever the values. To compare "
                f'text, quote it: {name}{operator}"{raw}".'
            )
    return messages


_NUMBERS = ("integer", "real", "true", "false")
_KINDS = ("true", "false", "integer", "real", "text", "array", "object")
"""What ``json_type`` calls a JSON value other than null."""


def _holds_only(db: sqlite3.Connection, path: str, kinds: tuple[str, ...]) -> bool:
    """Whether the field at ``path`` holds a value of one of ``kinds`` (``json_type``'s
    names) in some run's parameter set, and nothing else but null in any. The other kinds
    are looked for first: when the filter is sound, the first set looked at has one."""
    others = tuple(kind for kind in _KINDS if kind not in kinds)
    return not _some_set_holds(db, path, others) and _some_set_holds(db, path, kinds)


def _some_set_holds(
    db: sqlite3.Connection, path: str, kinds: tuple[str, ...] | None = None
) -> bool:
    """Whether some run's parameter set has the field at ``path`` (``$."lr"``), holding a
    value of one of ``kinds`` if they are given. Stops at the first such set, so that
    checking a filter costs next to nothing when, as usual, its field is in recent runs."""
    test = "IS NOT NULL" if kinds is None else f"IN ({', '.join('?' * len(kinds))})"
    found = db.execute(
        "SELECT 1 FROM param_sets p WHERE json_valid(p.values_json)"
        " AND json_type(p.values_json) = 'object'"
        f" AND json_type(p.values_json, ?) {test} ORDER BY p.rowid DESC LIMIT 1",
        (path, *(kinds or ())),
    )
    return found.fetchone() is not None


_PYTHON_WORDS = {"True": "true", "False": "false", "None": "null"}
"""Booleans and ``None`` as a researcher writes them in Python (and in ``--set``), read as
JSON's."""


def parse_filter(text: str) -> tuple[str, str, Any] | None:
    """``"model.C>=0.5"`` -> ``('$."model.C"', ">=", 0.5)``; ``None`` if malformed."""
    match = _FILTER.match(text)
    if not match or '"' in match.group(1) or not match.group(3)[:1].strip("=<>"):
        return None  # no field, no value, or two operators (``seed==1``)
    name, operator, raw = match.groups()
    try:
        value = json.loads(_PYTHON_WORDS.get(raw, raw))
    except ValueError:
        value = _python_literal(raw)
    if isinstance(value, bool):
        value = int(value)
    elif isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        try:
            value = float(value)  # as SQLite's JSON functions read such a number
        except OverflowError:
            value = math.inf if value > 0 else -math.inf
    elif value is None and operator in ("=", "!="):
        pass  # lr=None: a field that holds None (JSON's null)
    elif not isinstance(value, (int, float, str)):
        value = raw
    return field_path(name), operator, value


def _python_literal(raw: str) -> Any:
    """``raw`` read as a number or a quoted text as Python writes them (``.1``, ``1.``,
    ``1_000``, ``'tree'``), as ``--set`` reads them; ``raw`` itself when it is neither."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw
    return value if type(value) in (int, float, str) else raw


def field_path(name: str) -> str:
    """The JSON path of the parameter ``name`` as the run store keys it: ``model.C`` ->
    ``$."model.C"``. The name is read as Python reads a field's name (NFKC: ``größe`` typed
    with a combining diaeresis is the field ``größe``), and written into the path as JSON
    writes it in the store, so that a backslash or a control character (even NUL) in it
    never makes the path one SQLite cannot read."""
    return "$." + json.dumps(unicodedata.normalize("NFKC", name), ensure_ascii=False)


def _order(db: sqlite3.Connection, query: RunQuery) -> tuple[str, list, str]:
    """``(join, its arguments, ORDER BY clause)``; newest first among equals."""
    direction = "ASC" if query.order == "asc" else "DESC"
    if query.sort.startswith("metric:"):
        if not has_table(db):
            return "", [], f"runs.number {direction}"
        # The largest of the run's final values (a curve's last step, not its peak): beside
        # max(rowid), SQLite gives the value of the row that has it, read from the index
        # metrics_by_series without sorting the rows or looking each one up again.
        join = (
            "LEFT JOIN (SELECT run, MAX(value) AS best FROM (SELECT run, value, MAX(rowid)"
            " FROM metrics WHERE name = ? GROUP BY run, param_set, stage)"
            " GROUP BY run) AS sorted_by ON sorted_by.run = runs.number"
        )
        order = f"sorted_by.best IS NULL, sorted_by.best {direction}, runs.number DESC"
        return join, [query.sort[7:]], order
    return "", [], f"{SORTS[query.sort]} {direction}, runs.number DESC"


def metric_summary(db: sqlite3.Connection, runs: list[int]) -> dict[int, dict[str, dict]]:
    """``{run: {metric: {"min", "max", "n", "stepped"}}}`` over each series' final value."""
    if not runs or not has_table(db):
        return {}
    marks = ", ".join("?" * len(runs))
    rows = db.execute(
        "SELECT m.run, m.name, MIN(m.value), MAX(m.value), COUNT(*), MAX(m.step IS NOT NULL)"
        f" FROM metrics m WHERE m.rowid IN (SELECT MAX(rowid) FROM metrics WHERE run IN ({marks})"
        " GROUP BY run, param_set, stage, name) GROUP BY m.run, m.name",
        runs,
    ).fetchall()
    found: dict[int, dict[str, dict]] = {}
    for run, name, low, high, count, stepped in rows:
        found.setdefault(run, {})[name] = {
            "min": low, "max": high, "n": count, "stepped": bool(stepped)
        }  # fmt: skip
    return found


def _key_metric_names(summary: dict[int, dict[str, dict]], query: RunQuery) -> list[str]:
    """The metric columns: single values first (accuracy), then curves (loss); most common."""
    counts: dict[str, list[int]] = {}
    for metrics in summary.values():
        for name, info in metrics.items():
            entry = counts.setdefault(name, [0, 0])
            entry[0] += 1
            entry[1] += int(info["stepped"])
    names = sorted(counts, key=lambda n: (counts[n][1] > 0, -counts[n][0], n))[:KEY_METRICS]
    if query.sort.startswith("metric:") and query.sort[7:] not in names:
        names = [query.sort[7:], *names[: KEY_METRICS - 1]]
    return names


def experiments(db: sqlite3.Connection) -> list[str]:
    """Every experiment with a run, by name."""
    return [row[0] for row in db.execute("SELECT DISTINCT experiment FROM runs ORDER BY 1")]


def metric_names(db: sqlite3.Connection, experiment: str | None = None) -> list[str]:
    """Names of the metrics logged (by runs of ``experiment``), by name."""
    if not has_table(db):
        return []
    if experiment is None:
        return [r[0] for r in db.execute("SELECT DISTINCT name FROM metrics ORDER BY 1")]
    return [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT m.name FROM metrics m JOIN runs ON runs.number = m.run"
            " WHERE runs.experiment = ? ORDER BY 1",
            (experiment,),
        )
    ]


def sweep_points(
    db: sqlite3.Connection, experiment: str, metric: str, all_runs: bool = False, limit: int = 5000
) -> list[dict[str, Any]]:
    """A metric's final value for each parameter set of an experiment's runs, with its values.

    One point per parameter set and run, newest runs first; unless ``all_runs``,
    a parameter set (by hash) met in several runs counts once, from its newest run.
    """
    if not has_table(db):
        return []
    rows = db.execute(
        "SELECT m.run, m.param_set, m.value, p.hash, p.values_json FROM metrics m"
        " JOIN runs ON runs.number = m.run"
        " JOIN param_sets p ON p.run = m.run AND p.name = m.param_set"
        " WHERE runs.experiment = ? AND m.name = ? AND m.rowid IN ("
        "   SELECT MAX(metrics.rowid) FROM metrics JOIN runs r ON r.number = metrics.run"
        "   WHERE r.experiment = ? AND metrics.name = ? GROUP BY metrics.run, metrics.param_set)"
        " ORDER BY m.run DESC LIMIT ?",
        (experiment, metric, experiment, metric, limit * 4),
    ).fetchall()
    points, seen = [], set()
    for run, param_set, value, params_hash, values in rows:
        if not all_runs and params_hash in seen:
            continue
        seen.add(params_hash)
        points.append(
            {
                "run": run,
                "param_set": param_set,
                "value": value,
                "hash": params_hash,
                "params": json.loads(values),
            }  # fmt: skip
        )
        if len(points) >= limit:
            break
    return points


def stage_metrics(db: sqlite3.Connection, run: int, stage_key: str) -> list[dict[str, Any]]:
    """The metrics a stage run (by cache key) logged, as recorded by run ``run``."""
    if not has_table(db):
        return []
    rows = db.execute(
        "SELECT name, value, step FROM metrics WHERE run = ? AND key = ? ORDER BY rowid",
        (run, stage_key),
    ).fetchall()
    found: dict[str, dict[str, Any]] = {}
    for name, value, step in rows:
        entry = found.setdefault(name, {"name": name, "value": value, "steps": 0})
        entry["value"] = value
        entry["steps"] += step is not None
    return list(found.values())


def _names(text: str | None) -> list[str]:
    try:
        names = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _int(value: Any, default: int) -> int:
    text = str(value).strip()
    if text.isascii() and text.lstrip("+-").isdigit() and len(text) > 30:
        return -(2**100) if text.startswith("-") else 2**100  # beyond every bound
    try:
        return int(text)
    except (TypeError, ValueError):
        return default
