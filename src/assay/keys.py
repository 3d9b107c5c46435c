"""Cache keys: the one place that decides when a stage's cached outputs still hold.

A stage run's key is the stable hash of its *ingredients*:

- the stage's name;
- a fingerprint of its code (the function's syntax tree, so comments,
  docstrings and formatting do not count);
- the parameter values that matter to it (today: the parameter set's hash;
  for aggregates, the hashes of every record aggregated);
- the keys of its upstream artifacts, by input name (so a change upstream
  flows downstream), or the hash of a value passed in directly;
- its outputs and their cachers.

Add a new ingredient here and nowhere else. The ingredient list is written
into every artifact's sidecar, so ``assay why`` can later say which one
changed.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import xxhash

from assay.hashing import hash_value

KEY_SCHEME = "assay-key-1"
"""Bump to invalidate every cache on purpose (a changed ingredient format)."""

_FINGERPRINTS: dict[Callable, str] = {}


def code_fingerprint(func: Callable) -> str:
    """A hash of a function's code that ignores comments, docstrings and layout.

    Falls back to the compiled code when the source cannot be read (a
    function typed into an interactive prompt).
    """
    cached = _FINGERPRINTS.get(func)
    if cached is not None:
        return cached
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
        _strip_docstrings(tree)
        fingerprint = hash_value(("ast", ast.dump(tree, annotate_fields=False)))
    except (OSError, TypeError, SyntaxError):
        code = func.__code__
        fingerprint = hash_value(("code", code.co_code, repr(code.co_consts), code.co_names))
    _FINGERPRINTS[func] = fingerprint
    return fingerprint


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def stage_key(
    *,
    stage: str,
    code: str,
    params: Any,
    upstream: list[tuple],
    outputs: list[tuple[str, dict | None]],
) -> tuple[str, dict]:
    """The cache key of one stage run, and the ingredients it was made from.

    Args:
        stage: the stage's name.
        code: :func:`code_fingerprint` of its function.
        params: the parameter hash(es) that matter: a string, ``None``, or for
            aggregates a sorted list of the aggregated records' hashes.
        upstream: ``(input name, [record hash,] artifact key or value hash)``
            tuples, in a stable order.
        outputs: ``(output name, cacher identity digest or None)`` per output
            (see :func:`outputs_identity`).
    """
    ingredients = {
        "scheme": KEY_SCHEME,
        "stage": stage,
        "code": code,
        "params": params,
        "upstream": upstream,
        "outputs": outputs,
    }
    # Every ingredient is made of strings, None, tuples and lists, whose repr()
    # is exact and stable; that keeps the key cheap to compute for every stage run.
    text = repr((KEY_SCHEME, stage, code, params, upstream, outputs))
    return xxhash.xxh3_128_hexdigest(text.encode()), ingredients


def outputs_identity(names: list[str], cachers: list) -> list[tuple[str, str | None]]:
    """``(output name, digest of its cacher's identity)`` per output."""
    return [
        (name, hash_value(c.identity()) if c is not None else None)
        for name, c in zip(names, cachers)
    ]


def artifact_key(stage_run_key: str, output: str) -> str:
    """The key of one output: its stage run's key and its name, readable at a glance."""
    return f"{stage_run_key}.{output}"
