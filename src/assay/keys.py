"""Cache keys: the one place that decides when a stage's cached outputs still hold.

A stage run's key is built in two steps.

The **base** covers everything known before the stage runs:

- the stage's name;
- the fingerprint of its code *and of everything it uses* — project helpers,
  module constants, package versions (:mod:`assay.codeprint`);
- the keys of its upstream artifacts, by input name (a change upstream flows
  downstream), or the hash of a value passed in directly;
- its outputs and their cachers;
- for aggregates, the hashes and names of the records they combine.

The **key** adds the values of the parameter fields the stage *read* while it
ran (:mod:`assay.tracking`): ``key = hash(base, {field: value hash})``. Which
fields a stage reads is learned on its first run and remembered per base in
the cache's read index, so later runs can compute the key before running the
stage. A stage that changes nothing but an unread parameter keeps its key; a
grid over a parameter only a late stage reads shares every early stage.

Add a new ingredient here and nowhere else. The ingredients are written into
every artifact's sidecar, so ``assay why`` can say which one changed.
"""

from __future__ import annotations

import re
from typing import Any

import xxhash

KEY_SCHEME = "assay-key-2"
"""Bump to invalidate every cache on purpose (a changed ingredient format)."""

ALL = "*"
"""The read set of a stage keyed on its whole parameter set."""


def _digest(value: Any) -> str:
    # Every ingredient is made of strings, None, tuples and lists, whose repr()
    # is exact and stable; that keeps keys cheap to compute for every stage run.
    return xxhash.xxh3_128_hexdigest(repr(value).encode())


def stage_base(
    *,
    stage: str,
    code: str,
    params: Any,
    upstream: list[tuple],
    outputs: list[tuple[str, str | None]],
) -> str:
    """The base of a stage run's key: everything but the parameter fields it reads.

    Args:
        stage: the stage's name.
        code: the code fingerprint (:meth:`assay.codeprint.Fingerprinter.fingerprint`).
        params: what of the parameters is known in advance: ``None`` for a
            record with parameters (their fields enter through the read set),
            or for aggregates the aggregated records' hashes and names.
        upstream: ``(input name, [record hash,] artifact key or value hash)``
            tuples, in a stable order.
        outputs: ``(output name, cacher identity digest or None)`` per output
            (see :func:`outputs_identity`).
    """
    return _digest((KEY_SCHEME, stage, code, params, upstream, outputs))


def read_key(base: str, fields: list[tuple[str, str]]) -> str:
    """The key of a stage run that read ``fields`` (``(name, value hash)``, sorted)."""
    return _digest((base, fields))


def outputs_identity(names: list[str], cachers: list) -> list[tuple[str, str | None]]:
    """``(output name, digest of its cacher's identity)`` per output."""
    from assay.hashing import hash_value

    return [
        (name, hash_value(c.identity()) if c is not None else None)
        for name, c in zip(names, cachers)
    ]


def artifact_key(stage_run_key: str, output: str) -> str:
    """The key of one output: its stage run's key and its name, readable at a glance."""
    return f"{stage_run_key}.{output}"


def split_artifact_key(key: str) -> tuple[str, str]:
    """``(stage run key, output name)`` of an artifact's key. The stage run key has no
    dot, and an output's name may have some (``"scores.v2"``)."""
    stage_key, _, output = key.partition(".")
    return stage_key, output


REPORTABLES = "_reportables"
"""The entry beside a stage run's artifacts that keeps its reportables (not an output:
no stage may declare an output of that name)."""

HAND_SET = "_state"
"""The entry beside a stage run's artifacts that keeps the plain values its code put in
``record.state`` by hand, given back when the stage run is reused (not an output)."""

OWN_ENTRIES = frozenset({REPORTABLES, HAND_SET})
"""The names of the entries assay keeps beside a stage run's artifacts."""

EVERY_FIELD = "fields:*"
"""Among a stage's reads: it read the parameter set wholesale (``dataclasses.asdict``,
``vars``, ``==``...), so its key covers every field the set has when the key is made,
one added to the class since the read index was written too."""

STATE_READ = "state:"
"""How a stage's read of an undeclared ``record.state`` entry is named among its reads
(``state:data``); no field name has a colon."""


def is_artifact_key(text: str, longest_output: int | None = None) -> bool:
    """Whether ``text`` is an artifact's key: ``<stage run key>.<output>``, where the output
    is any name a stage may declare (not starting with '.', no '/', '\\' or NUL), so never
    a path out of its stage's folder; ``longest_output`` caps the name's length."""
    match = _ARTIFACT_KEY.match(text)
    return match is not None and (longest_output is None or len(match[1]) <= longest_output)


_ARTIFACT_KEY = re.compile(r"^[0-9a-f]{16,64}\.([^./\\\x00][^/\\\x00]*)$")
