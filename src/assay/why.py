"""``assay why``: for every stage run of a planned run, why it executes or is reused.

A stage that will execute is compared with the artifact last filed under its
name (``data/cache/by-name/EXPERIMENT/PARAMETER-SET/STAGE``): what differs
in its ingredients is the reason — its code or a helper it uses (with a
short diff), a module constant, a package version, a parameter it reads
(old → new), an upstream artifact, its cachers — or there is no earlier
artifact at all, or a flag forces it. A stage that is reused names the run
that produced its artifact.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.cache import link_label
from assay.keys import EVERY_FIELD

_DIFF_LINES = 12


@dataclass
class Explanation:
    """Why one stage run of a plan executes, is reused, or is skipped."""

    stage: str
    param_set: str
    status: str
    """``run``, ``cached``, ``shared`` (made by an earlier stage run of this run) or
    ``unneeded``."""
    reasons: list[str] = field(default_factory=list)
    """One line per reason."""
    details: list[str] = field(default_factory=list)
    """Extra lines (diffs) supporting the reasons."""


def explain(manager: Any) -> list[Explanation]:
    """Explain every stage run of a manager whose plan has been decided (e.g. a dry run)."""
    own, stopped = own_runs(manager), stopped_runs(manager)
    with _ComputedBefore(manager.config.store_path) as computed:
        return [_explain(manager, node, own, stopped, computed) for node in manager.plan.nodes]


def _explain(
    manager: Any,
    node: Any,
    own: Callable[[str, str], bool],
    stopped: Callable[[Any], tuple[int, str] | None],
    computed: Callable[[Any], int | None] = lambda node: None,
) -> Explanation:
    found = Explanation(node.spec.name, node.record_label, node.status)
    if node.status == "cached":
        first = node.outputs[0] if node.outputs else None
        meta = first and (first.meta or manager.cache.read_meta(node.key, first.name))
        found.reasons.append(_produced_by(meta, made_in_project(manager, meta, own)))
        return found
    if node.status == "unneeded":
        found.reasons.append("nothing that executes needs its outputs")
        return found
    if node.status == "executed":  # already, because run() read a result while it planned
        found.reasons.append(f"{node.reason} (while run() was planned: it read a result)")
        return found
    other = manager.runner.shared_earlier(node)
    if other is not None:
        found.status = "shared"
        found.reasons.append(
            f"same inputs as {other.spec.name} [{other.record_label}], "
            "which executes earlier in this run"
        )
        return found
    if node.forced or not node.outputs or node.volatile or manager.runner.waits_for_state(node):
        found.reasons.append(node.reason)
        return found
    running_deps = [d for d in node.deps if d.status == "run"]
    damaged = next(
        filter(None, (manager.runner.damaged.get((node.key, a.name)) for a in node.outputs)), None
    )
    previous = _previous(manager, node)
    if previous is None:
        if damaged:  # the run has thrown what was left of the entry away
            found.reasons.append(f"its cached artifact cannot be reused: {damaged}")
        elif _linked(manager, node):
            found.reasons.append(
                "no cached artifact: the one last made for this parameter set was removed "
                "from the cache"
            )
        elif stopped(node):
            run, status = stopped(node)
            found.reasons.append(
                f"no cached artifact: its last attempt, in run {run}, "
                f"{'failed' if status == 'failed' else 'was interrupted'}"
            )
        elif (number := computed(node)) is not None:  # gc removed it, and its by-name link
            found.reasons.append(
                f"no cached artifact: the one run {number} computed was removed from the "
                "cache since (by assay cache gc or verify --remove, or by hand)"
            )
        elif node.spec.is_aggregate:
            found.reasons.append(
                "no cached artifact: it was never computed for these parameter sets together "
                f"(its folder, {link_label(node)}, is named after them)"
            )
        else:
            found.reasons.append("no cached artifact: it was never computed for this parameter set")
        if running_deps:
            found.reasons.append(_upstream_line(running_deps))
        return found
    before = previous.get("ingredients") or {}
    _compare_code(manager, node, before, found)
    _compare_params(node, before, found)
    _compare_upstream(node, before, running_deps, found)
    if before.get("outputs") is not None and [list(o) for o in node.identities] != [
        list(o) for o in before["outputs"]
    ]:
        found.reasons.append("its outputs or their cachers changed")
    if damaged and not found.reasons:
        found.reasons.append(f"its cached artifact cannot be reused: {damaged}")
    if not found.reasons:
        found.reasons.append(
            "no cached artifact with these ingredients (it was removed from the cache, "
            "or was never computed with them)"
        )
    return found


def _previous(manager: Any, node: Any) -> dict | None:
    """The sidecar of the artifact last filed under this stage and parameter set's name."""
    if not node.outputs:
        return None
    cache = manager.cache
    key = cache.linked_key(manager.prefix, link_label(node), node.spec.name)
    if not key:
        return None
    found = cache.read_meta(key, node.outputs[0].name)
    if found is None:  # outputs renamed since: any of that stage run's sidecars tells
        found = next(filter(None, (cache.read_meta(key, o) for o in cache.outputs_of(key))), None)
    return found


def _linked(manager: Any, node: Any) -> bool:
    """Whether a ``by-name`` link for this stage and parameter set points to an entry."""
    return bool(node.outputs) and bool(
        manager.cache.linked_key(manager.prefix, link_label(node), node.spec.name)
    )


def own_runs(manager: Any) -> Callable[[str, str], bool]:
    """``own(run_id, key)``: whether the manager's run store has the run that made an
    artifact (see :func:`assay.loading.own_run`); one per plan shown."""
    from assay.loading import own_run

    return own_run(manager.config.store_path)


def stopped_runs(manager: Any) -> Callable[[Any], tuple[int, str] | None]:
    """``stopped(node)``: ``(run number, status)`` of the last run of the experiment in
    which that stage run (its stage, for its parameter set) was attempted, if it failed
    or was interrupted there; else ``None``. An aggregate's stage row does not say which
    parameter sets it combined: it counts when the run used the ones it combines. The run
    store is read on the first question, once per plan shown."""
    from assay.errors import RunStoreError
    from assay.store import RunStore

    found: list[dict] = []
    sets_of_run: dict[int, set[str]] = {}

    def stopped(node: Any) -> tuple[int, str] | None:
        if not found:
            path = Path(manager.config.store_path)
            try:
                if path.is_file():
                    with RunStore(path) as store:
                        found.append(store.stopped_stage_runs(manager.experiment_name))
                        for run, _ in found[0].values():
                            sets_of_run[run] = set(store.get_run(run).param_names)
                else:
                    found.append({})
            except RunStoreError:  # unreadable: the other reasons stand
                found[:] = [{}]
        done = found[0].get((node.record_label or "", node.spec.name))
        if done is None or not node.spec.is_aggregate:
            return done
        combined = {record.name for record in node.records or []}
        return done if sets_of_run.get(done[0]) == combined else None

    return stopped


class _ComputedBefore:
    """``computed(node)``: the number of the last run of the run store at ``store_path``
    that computed the artifacts of this stage run (the same key), or ``None`` (no run did,
    its key waits for an upstream stage, or the run store cannot be read). Asked only of
    stage runs the cache has nothing for: ``assay cache gc`` removes an entry and its
    by-name link, and the run store is then what remembers it was made. The run store is
    opened on the first question; use as a context manager to close it."""

    def __init__(self, store_path: Any) -> None:
        self._path = Path(store_path)
        self._store: Any = None

    def __enter__(self) -> _ComputedBefore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._store is not None:
            self._store.close()

    def __call__(self, node: Any) -> int | None:
        from assay.errors import RunStoreError
        from assay.store import RunStore

        if not node.outputs or not node.key or not self._path.is_file():
            return None
        if self._store is None:
            self._store = RunStore(self._path)
        try:
            runs = self._store.find_artifact_runs(f"{node.key}.{node.outputs[0].name}")
        except RunStoreError:  # unreadable: the other reasons stand
            return None
        numbers = [run.run_number for run in runs if run.action == "computed"]
        return numbers[-1] if numbers else None


def made_in_project(manager: Any, meta: dict | None, own: Callable[[str, str], bool]) -> str | None:
    """The folder of the other project (sharing the cache) whose run made the artifact
    ``meta`` describes: its run number is not one of this project's runs. ``None`` when
    this project made it (also from a former folder, see :func:`assay.cache.made_elsewhere`)."""
    from assay.cache import made_elsewhere

    return made_elsewhere(meta, manager.config.root, own) if meta else None


def _produced_by(meta: dict | None, elsewhere: str | None = None) -> str:
    """Which run made a reused artifact (the line is labelled "reused" already)."""
    if not meta:
        return "from the cache (its record there names no run)"
    run = meta.get("run_number")
    when = meta.get("created", "")
    if run is None:
        return f"artifact made {when} outside a recorded run (a notebook)"
    of = f" of the project {elsewhere} (sharing the cache)" if elsewhere else ""
    return f"artifact made by run {run}{of} ({meta.get('run_id')}, {when})"


def _compare_code(manager: Any, node: Any, before: dict, found: Explanation) -> None:
    old = before.get("code_parts") or {}
    new = node.code_parts
    if before.get("code") == node.code:
        return
    for name in sorted(set(old) | set(new)):
        old_digest = old.get(name)
        part = new.get(name)
        new_digest = part["digest"] if part else None
        if old_digest == new_digest:
            continue
        kind = (part or {}).get("kind", "code")
        if part is None:
            found.reasons.append(f"it no longer uses {name}")
            continue
        if old_digest is None:
            found.reasons.append(f"it now uses {_kind_word(kind)} {name}")
            continue
        old_text = manager.cache.code_text(old_digest)
        if kind == "package":
            found.reasons.append(
                f"package version changed: {old_text or '?'} -> {part.get('version')}"
            )
        elif kind == "value" and old_text == part.get("value"):
            found.reasons.append(
                f"constant {name} changed where its text does not show it: code it holds, "
                "data its text leaves out, or how this version of assay hashes it"
            )
        elif kind in ("value", "version"):
            found.reasons.append(
                f"{_kind_word(kind)} {name} changed: {old_text or '?'} -> {part.get('value')}"
            )
        else:
            found.reasons.append(f"its code changed: {_kind_word(kind)} {name}")
            if old_text is not None:
                found.details.extend(_diff(old_text, part.get("source", ""), name))


def _kind_word(kind: str) -> str:
    return {
        "function": "function",
        "class": "class",
        "value": "constant",
        "package": "package",
    }.get(kind, kind)


def _diff(old: str, new: str, name: str) -> list[str]:
    lines = list(
        difflib.unified_diff(
            old.splitlines(),
            new.splitlines(),
            f"{name} (before)",
            f"{name} (now)",
            lineterm="",
            n=1,
        )
    )
    if len(lines) > _DIFF_LINES:
        lines = lines[:_DIFF_LINES] + [f"... ({len(lines) - _DIFF_LINES} more diff lines)"]
    return lines


def _compare_params(node: Any, before: dict, found: Explanation) -> None:
    old_reads = before.get("reads")
    params = node.record.params
    if node.spec.is_aggregate:
        _compare_combined(node, before.get("params"), found)
        return
    old_class, new_class = before.get("params"), json.loads(json.dumps(node.params_part))
    if old_class != new_class and params is not None:
        gained = isinstance(new_class, list) and not isinstance(old_class, list)
        found.reasons.append(
            f"its parameter class {type(params).__qualname__} "
            + ("now has methods, properties or constants of its own, which stages may use: "
               "keys of such a class's stages cover the ones they use"
               if gained else "changed (renamed, or no longer has methods of its own)")
        )  # fmt: skip
    if params is None or not isinstance(old_reads, dict):
        if old_reads == "*" and params is not None and before.get("code") == node.code:
            found.reasons.append(
                "a parameter, or the code of its parameter class, changed (the stage is "
                "keyed on all of them)"
            )
        return
    from assay.plan import describe_read
    from assay.tracking import code_attributes

    methods = code_attributes(type(params))
    for name, old_value in sorted(old_reads.items()):
        if name == EVERY_FIELD:
            _compare_fields(describe_read(node, name), old_value, found)
            continue
        if name not in methods and not hasattr(params, name):
            found.reasons.append(f"parameter {name} no longer exists")
            continue
        now = describe_read(node, name)
        if now == old_value:
            continue
        if name in methods:
            found.reasons.append(f"{type(params).__qualname__}.{name}, which it uses, changed")
        else:
            found.reasons.append(f"a parameter it reads changed: {name} {old_value} -> {now}")


def _compare_fields(now: str, before: Any, found: Explanation) -> None:
    """A stage that read its parameter set wholesale (``asdict``, ``vars``): the fields
    (not ``None``) it has or has no longer since (their values are compared as reads)."""
    if not isinstance(before, str) or now == before:
        return
    old, new = set(before.split(", ")), set(now.split(", "))
    for change, names in (("now has", new - old), ("no longer has", old - new)):
        if names:
            found.reasons.append(
                f"it reads the whole parameter set, which {change} fields "
                + ", ".join(sorted(names))
            )


def _compare_combined(node: Any, old: Any, found: Explanation) -> None:
    """An aggregate is keyed on every parameter set it combines (hash and name) and on
    the code of their classes' methods: which of them changed."""
    new = node.params_part
    if not (isinstance(old, list) and len(old) >= 2 and isinstance(new, list)):
        return
    before = {name: digest for digest, name in old[1]}
    now = {name: digest for digest, name in new[1]}
    changed = sorted(n for n in now.keys() & before.keys() if now[n] != before[n])
    if changed:
        found.reasons.append(
            f"parameter set(s) it combines changed: {', '.join(changed)} (an aggregate is "
            "keyed on all of their fields)"
        )
    if old[2:] != json.loads(json.dumps(new[2:])):  # as the sidecar has it: lists
        found.reasons.append("the code of a parameter class it combines changed")


def _compare_upstream(node: Any, before: dict, running: list, found: Explanation) -> None:
    if running:
        found.reasons.append(_upstream_line(running))
        return
    old = {tuple(item[:-1]): item[-1] for item in before.get("upstream") or []}
    for item in node.upstream:
        last = item[-1]
        key = last.key if hasattr(last, "node") else last
        label = item[0]
        if tuple(item[:-1]) in old and old[tuple(item[:-1])] != key:
            found.reasons.append(_changed_input(node, label, made_upstream=hasattr(last, "node")))


def _changed_input(node: Any, label: str, made_upstream: bool) -> str:
    """The line for an input whose key or value changed: an upstream stage's output, or a
    value the experiment passes to the stage itself (nothing upstream changed then)."""
    if made_upstream:
        return f"its input {label!r} changed upstream"
    if label == "*args":
        return "a value passed to it as a positional argument changed"
    if label in node.kwargs:
        return f"the value passed to it as argument {label!r} changed"
    return f"the value of its input {label!r} in record.state changed (no stage made it)"


def _upstream_line(running: list) -> str:
    names = sorted({f"{d.spec.name} [{d.record_label}]" for d in running})
    return "an upstream stage executes first: " + ", ".join(names)
