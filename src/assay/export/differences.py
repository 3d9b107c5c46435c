"""How two versions of an artifact differ, said in a few words.

Used by ``assay reproduce`` when an artifact did not come out byte-identical::

    >>> describe_difference(np.zeros((3, 2)), np.ones((3, 2)))
    'array: 6 of 6 values differ (max abs diff 1)'
    >>> describe_difference({"acc": 0.91, "f1": 0.9}, {"acc": 0.93, "f1": 0.9})
    "JSON: 1 value differs: acc (0.91 → 0.93)"

Tables (pandas DataFrame / Series), arrays (numpy) and JSON-like values
(dicts, lists, numbers, strings) get a description of what differs; anything
else is described by its type and, when it is equal in memory although its
bytes differ, says so (a pickle of equal objects can differ byte-wise).
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

__all__ = ["describe_difference", "values_equal"]

_SHOWN = 5  # differing keys or columns named in a description


def describe_difference(old: Any, new: Any) -> str:
    """A short sentence on how ``new`` differs from ``old`` (the exported version)."""
    for check in (_pandas, _numpy, _json, _objects):
        said = check(old, new)
        if said is not None:
            return said
    if type(old) is not type(new):
        return f"type changed: {type(old).__name__} → {type(new).__name__}"
    try:
        if old == new:
            return f"{type(old).__name__}: equal values, but the saved bytes differ"
    except Exception:  # comparison not defined or ambiguous
        pass
    return f"{type(old).__name__}: contents differ"


# -- tables ---------------------------------------------------------------------------------


def _pandas(old: Any, new: Any) -> str | None:
    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(old, (pd.DataFrame, pd.Series)):
        return None
    if not isinstance(new, (pd.DataFrame, pd.Series)):
        return f"type changed: {type(old).__name__} → {type(new).__name__}"
    if isinstance(old, pd.Series) or isinstance(new, pd.Series):
        old, new = (
            old.to_frame() if old.ndim == 1 else old,
            new.to_frame() if new.ndim == 1 else new,
        )
    parts = []
    if old.shape != new.shape:
        parts.append(f"shape {old.shape} → {new.shape}")
    added = [str(c) for c in new.columns if c not in old.columns]
    removed = [str(c) for c in old.columns if c not in new.columns]
    if added:
        parts.append(f"columns added: {_names(added)}")
    if removed:
        parts.append(f"columns removed: {_names(removed)}")
    common = [c for c in old.columns if c in new.columns]
    changed_types = [str(c) for c in common if old[c].dtype != new[c].dtype]
    if changed_types:
        parts.append(f"dtype changed in: {_names(changed_types)}")
    if len(old) == len(new) and common:
        a = old[common].reset_index(drop=True)
        b = new[common].reset_index(drop=True)
        both_missing = a.isna() & b.isna()
        try:
            unequal = (a != b) & ~both_missing
        except (TypeError, ValueError):
            unequal = None
        if unequal is not None:
            count = int(unequal.to_numpy().sum())
            columns = [str(c) for c in common if bool(unequal[c].any())]
            if count:
                detail = f"{count} of {a.size} cells differ (in {_names(columns)})"
                biggest = _max_abs(a[[c for c in common if unequal[c].any()]],
                                   b[[c for c in common if unequal[c].any()]])  # fmt: skip
                if biggest is not None:
                    detail += f", max abs diff {biggest:.6g}"
                parts.append(detail)
        if not old.index.equals(new.index):
            parts.append("index differs")
    if not parts:
        return "table: equal values, but the saved bytes differ"
    return "table: " + "; ".join(parts)


def _max_abs(a: Any, b: Any) -> float | None:
    try:
        import numpy as np

        x = a.select_dtypes("number").to_numpy(dtype=float)
        y = b[a.select_dtypes("number").columns].to_numpy(dtype=float)
        if x.size == 0:
            return None
        return float(np.nanmax(np.abs(x - y)))
    except Exception:
        return None


# -- arrays ---------------------------------------------------------------------------------


def _numpy(old: Any, new: Any) -> str | None:
    np = sys.modules.get("numpy")
    if np is None or not isinstance(old, np.ndarray):
        return None
    if not isinstance(new, np.ndarray):
        return f"type changed: ndarray → {type(new).__name__}"
    parts = []
    if old.shape != new.shape:
        parts.append(f"shape {old.shape} → {new.shape}")
    if old.dtype != new.dtype:
        parts.append(f"dtype {old.dtype} → {new.dtype}")
    if old.shape == new.shape:
        try:
            unequal = old != new
            if old.dtype.kind in "fc" and new.dtype.kind in "fc":
                unequal &= ~(np.isnan(old) & np.isnan(new))
            count = int(np.count_nonzero(unequal))
        except (TypeError, ValueError):
            count = -1
        if count > 0:
            detail = f"{count} of {old.size} values differ"
            if old.dtype.kind in "biufc" and new.dtype.kind in "biufc":
                diff = np.abs(old.astype(float) - new.astype(float))
                detail += f" (max abs diff {float(np.nanmax(diff)):.6g})"
            parts.append(detail)
    if not parts:
        return "array: equal values, but the saved bytes differ"
    return "array: " + "; ".join(parts)


# -- other objects (models, estimators, ...) -------------------------------------------------


def _objects(old: Any, new: Any) -> str | None:
    """Objects with attributes: which attributes differ (a fitted model, a custom class)."""
    if type(old) is not type(new) or not hasattr(old, "__dict__") or isinstance(old, type):
        return None
    a, b = vars(old), vars(new)
    differing = [
        str(k) for k in dict.fromkeys([*a, *b]) if not _same(a.get(k, _GONE), b.get(k, _GONE))
    ]
    name = type(old).__name__
    if not differing:
        return f"{name}: equal attributes, but the saved bytes differ"
    return f"{name}: attributes differ: {_names(differing)}"


_GONE = object()


def values_equal(old: Any, new: Any) -> bool:
    """Whether two loaded values are equal all the way down (arrays, tables, attributes).

    Two pickles of equal objects can differ byte for byte (pickle shares
    repeated objects by identity), so this is asked when checksums differ.
    """
    return _same(old, new)


def _same(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two loaded values are equal, looking inside containers, arrays and objects."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
    if np is not None and isinstance(a, np.ndarray):
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if pd is not None and isinstance(a, (pd.DataFrame, pd.Series, pd.Index)):
        return bool(a.equals(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, (set, frozenset)):
        return _same_members(a, b, depth)
    if hasattr(a, "__dict__") and not isinstance(a, type) and depth < 8:
        return _same(vars(a), vars(b), depth + 1)
    try:
        return pickle.dumps(a) == pickle.dumps(b)  # values already loaded and verified
    except Exception:
        try:
            return bool(a == b)
        except Exception:
            return False


def _same_members(a: set | frozenset, b: set | frozenset, depth: int) -> bool:
    """Whether two sets hold equal members. Their order, and so their pickles, depends on
    the order the members were added in and on the process's string hashing: compared
    by bytes, two equal sets came out "different" in one reproduction and not the next."""
    if len(a) != len(b):
        return False
    if a == b:
        return True
    # Members without an equality of their own (objects that compare by identity) are
    # paired up by value; a set that large is unusual, and is said to differ.
    if len(a) > 1000:
        return False
    unmatched = list(b)
    for x in a:
        match = next((i for i, y in enumerate(unmatched) if _same(x, y, depth + 1)), None)
        if match is None:
            return False
        del unmatched[match]
    return True


# -- JSON-like values ------------------------------------------------------------------------


def _json(old: Any, new: Any) -> str | None:
    plain = (dict, list, tuple, str, int, float, bool, type(None))
    if not isinstance(old, plain) or not isinstance(new, plain):
        return None
    differences: list[str] = []
    _walk("", old, new, differences)
    if not differences:
        return "JSON: equal values, but the saved bytes differ"
    count = len(differences)
    shown = "; ".join(differences[:_SHOWN]) + (" ..." if count > _SHOWN else "")
    return f"JSON: {count} value{'s differ' if count > 1 else ' differs'}: {shown}"


def _walk(path: str, old: Any, new: Any, out: list[str]) -> None:
    if len(out) > 100:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{where} removed")
            else:
                _walk(where, old[key], new[key], out)
        for key in new:
            if key not in old:
                out.append(f"{path}.{key} added" if path else f"{key} added")
        return
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        if len(old) != len(new):
            out.append(f"{path or 'list'} has {len(new)} items instead of {len(old)}")
            return
        for index, (a, b) in enumerate(zip(old, new)):
            _walk(f"{path}[{index}]", a, b, out)
        return
    if old != new and not (old != old and new != new):  # NaN equals NaN here
        out.append(f"{path or 'value'} ({_short(old)} → {_short(new)})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _names(names: list[str]) -> str:
    return ", ".join(names[:_SHOWN]) + (
        f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    )
