"""The plan of a run: which stage runs exist, what they consume, and their keys.

While an experiment's ``run(param_sets, manager)`` executes, each stage call
adds a :class:`StageNode` to the manager's :class:`Plan` instead of running
the stage, and puts one :class:`Artifact` per output into the record's state.
An ``Artifact`` is a handle: it knows its producing node (hence its cache key)
before any value exists. When ``run()`` returns the whole DAG is known, so
the runner can decide what to execute, what to load, and what to leave alone.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from assay.errors import MissingInputError, PlanStops
from assay.hashing import UnhashableError, hash_value
from assay.keys import artifact_key, stage_base
from assay.staging import Lazy, StageSpec, cycle_through, producers_of
from assay.tracking import code_attributes, held_code

log = logging.getLogger("assay")

if TYPE_CHECKING:
    from assay.record import Record

MISSING: Any = object()
"""Marks an artifact whose value is not in memory."""


class Artifact:
    """One output of one stage run: its value in memory, or where to load it from."""

    __slots__ = ("node", "name", "index", "value", "cacher", "cached", "meta", "spent", "_handle")

    def __init__(self, node: StageNode, name: str, index: int):
        self.node = node
        self.name = name
        self.index = index
        self.value: Any = MISSING
        self.cacher = None
        """This record's cacher instance for the output (``None``: not cached)."""
        self.cached = False
        """Whether a complete cache entry exists for it."""
        self.meta: dict | None = None
        """The cache sidecar, once read."""
        self.spent = False
        """Whether a stage that has run was given the value in memory (and may have
        changed it in place): the next read loads it from the cache again."""
        self._handle: Lazy | None = None

    @property
    def key(self) -> str:
        """The artifact's cache key: ``<stage run key>.<output name>``."""
        return artifact_key(self.node.key, self.name)

    @property
    def lazy(self) -> bool:
        """Whether the value is dropped from memory once cached."""
        plan = self.node.plan
        return plan.all_lazy or (self.node.spec.is_lazy(self.index) and not plan.ignore_lazy)

    def get(self) -> Any:
        """The value: from memory, from the cache, or by running what produces it."""
        if not self.node.spec.lazy_resolves(self.index) and not self.node.plan.ignore_lazy:
            return self.handle()  # whether or not the value is in memory
        runner = self.node.plan.runner
        if runner.handed is not None:  # a stage is about to run, or runs: it may change it
            runner.handed[id(self)] = self
        if self.spent:  # a stage that ran was given it: load it again (see value_of)
            self.value = MISSING
        if self.value is not MISSING:
            return self.value
        return runner.value_of(self)

    def handle(self) -> Lazy:
        """A :class:`~assay.Lazy` for this record's value (``resolve=False`` outputs)."""
        if self._handle is None:
            held = self.node.plan.runner.value_of(self, want_handle=True)
            handle = Lazy(self.name, resolve=False)
            if self.cached:
                handle.cacher = self.cacher
            else:  # nothing written (--dry-cache): it loads the value kept in memory
                handle._held = held
            self._handle = handle
        return self._handle

    def __repr__(self) -> str:
        record = self.node.record_label
        return f"<artifact {self.name!r} of stage {self.node.spec.name!r} for {record}>"


class StageNode:
    """One call of a stage on a record: a node of the run's DAG."""

    __slots__ = (
        "index",
        "plan",
        "spec",
        "record",
        "records",
        "args",
        "kwargs",
        "inputs",
        "state_inputs",
        "outputs",
        "deps",
        "consumers",
        "after",
        "followers",
        "key",
        "ingredients",
        "status",
        "error",
        "reason",
        "started",
        "duration",
        "reportables",
        "reported_after",
        "volatile",
        "cacheable",
        "upstream",
        "code",
        "code_parts",
        "params_part",
        "identities",
        "base",
        "reads",
        "tracks_reads",
        "forced",
        "shared_with",
        "stale",
        "hand_set",
    )

    def __init__(self, plan: Plan, spec: StageSpec, record: Record, records, args, kwargs):
        self.index = len(plan.nodes)
        self.plan = plan
        self.spec = spec
        self.record = record
        self.records = records
        self.args = args
        self.kwargs = kwargs
        self.inputs: dict[str, Any] = {}
        self.state_inputs: tuple[str, ...] = ()
        """Inputs no earlier stage outputs, that a stage before it (:attr:`after`) puts in
        ``record.state`` by hand when it runs: read then, and keyed by what they hold."""
        self.outputs = [Artifact(self, name, i) for i, name in enumerate(spec.output_names)]
        self.deps: list[StageNode] = []
        self.consumers: list[StageNode] = []
        self.after: tuple[StageNode, ...] = ()
        """Stages called before this one on its record(s) that work by side effect: those
        without outputs (a value put in ``record.state``, a file) and those whose code
        puts values in ``record.state`` by hand. On workers this one starts after them,
        as in a serial run. Not part of the key."""
        self.followers: tuple[StageNode, ...] = ()
        """The nodes that have this one in their ``after``."""
        self.key: str | None = None
        """The cache key; ``None`` while it depends on what has not run yet."""
        self.base: str | None = None
        """The key's base: everything but the parameter fields read (see :mod:`assay.keys`)."""
        self.reads: frozenset | str | None = None
        """The parameter fields the key covers (``"*"``: all of them)."""
        self.tracks_reads = False
        """Whether the key covers only the fields the stage reads (else all, or none)."""
        self.forced = False
        self.stale = False
        """An upstream key changed since this node's key was computed."""
        self.hand_set: dict | None = None
        """Executed, for a stage whose code writes ``record.state``: the plain values it
        put there by hand (kept beside its outputs, given back when it is reused)."""
        self.shared_with: StageNode | None = None
        """Planned: an earlier stage run of this run expected to have the same key."""
        self.upstream: list[tuple] = []
        self.code = ""
        self.code_parts: dict = {}
        self.params_part: Any = None
        self.identities: list = []
        self.ingredients: dict | None = None
        self.status = "planned"
        """``planned`` → ``cached`` / ``unneeded`` / ``executed`` / ``failed``."""
        self.error: str | None = None
        """Why it failed: the message of the error it raised (``None`` if it did not)."""
        self.reason = ""
        self.started: float | None = None
        self.duration: float | None = None
        self.reportables: list = []
        """What the stage reported while it ran (cached with its outputs)."""
        self.reported_after: list = []
        """What ``run()`` reported on the record outside any stage after calling this one:
        shown with it, but never cached with it (the next run reports them again)."""
        self.cacheable = False
        self.volatile: list[str] = []
        """What could not be hashed; a volatile stage run always executes and is not cached."""

    @property
    def record_label(self) -> str:
        """The parameter set's name, or ``aggregate`` for an aggregate without one and the
        stages called on its record after it."""
        if self.record.params is not None:
            return self.record.name  # a label: reading it is no parameter read
        return (
            "aggregate" if self.spec.is_aggregate or self.record.is_aggregate else "no parameters"
        )

    def __repr__(self) -> str:
        return f"<stage {self.spec.name!r} for {self.record_label} ({self.status})>"


class Plan:
    """Every stage run of one manager, in the order the experiment called them."""

    def __init__(self, runner: Any, all_lazy: bool = False, ignore_lazy: bool = False):
        self.runner = runner
        self.all_lazy = all_lazy
        self.ignore_lazy = ignore_lazy
        self.nodes: list[StageNode] = []

    def add(
        self,
        spec: StageSpec,
        record: Record,
        args: tuple,
        kwargs: dict,
        records: list | None,
        cachers: list,
        code: tuple[str, dict],
        state_inputs: tuple[str, ...] = (),
    ) -> StageNode:
        """Plan one stage call: bind its inputs, make its outputs, gather its key's parts.

        ``state_inputs``: inputs the planner found set by hand only when the stage runs
        (a worker re-plans the stage with its state in place: it binds them the same way).
        """
        node = StageNode(self, spec, record, records, args, kwargs)
        node.upstream = _bind_inputs(node, state_inputs)
        for artifact, cacher in zip(node.outputs, cachers):
            artifact.cacher = cacher
        node.cacheable = bool(cachers) and None not in cachers
        node.identities = spec.output_identities(cachers)
        node.code, node.code_parts = code
        params = record.params
        if spec.is_aggregate:
            node.params_part = [
                record.get_hash(),
                sorted((r.get_hash(), r.name) for r in records),
            ]
            # Its reads are not tracked: every method, property or constant of its records'
            # parameter classes counts (`sum(r.params.weight() for r in records)`).
            classes = {type(r.params) for r in records if r.params is not None}
            methods = sorted(
                (cls.__qualname__, name, self.runner.attribute_code(cls, name))
                for cls in classes
                for name in code_attributes(cls)
            )
            if methods:
                node.params_part.append(methods)
        else:
            node.params_part = type(params).__qualname__ if params is not None else None
            if params is not None and code_attributes(type(params)):
                # Methods it calls are keyed too (tracking.code_attributes); keys made
                # before assay did so could not know which, so they are not reused.
                node.params_part = [node.params_part, "methods keyed"]
            node.tracks_reads = (
                params is not None
                and params.hash is None
                and not any(_keyed_on_all(c) for c in cachers)
            )
        if args:
            node.upstream.append(
                ("*args", [_value_hash(a, node, "a positional argument") for a in args])
            )
        if not spec.deterministic:
            # A fresh key every time: nothing downstream reuses results of an earlier draw.
            node.upstream.append(("non-deterministic", os.urandom(16).hex()))
        for dep in node.deps:
            dep.consumers.append(node)
        if record._barrier is not None or records or record._copied_after:
            barriers = {id(n): n for n in record._copied_after}
            for other in (record, *(records or ())):
                if other._barrier is not None:
                    barriers[id(other._barrier)] = other._barrier
            node.after = tuple(barriers.values())  # few stages have any: mostly empty tuples
            for barrier in node.after:
                if barrier.followers:
                    barrier.followers.append(node)  # type: ignore[attr-defined]
                else:  # a list once it has any: many copies may follow one stage run
                    barrier.followers = [node]  # type: ignore[assignment]
        if not spec.outputs or spec.sets_state:
            record._barrier = node  # what its record's later stages start after
        self.nodes.append(node)
        return node

    @staticmethod
    def base_of(node: StageNode) -> str | None:
        """The base of ``node``'s key, or ``None`` while an upstream key is unknown."""
        upstream = []
        for item in node.upstream:
            last = item[-1]
            if type(last) is Artifact:
                if last.node.key is None:
                    return None
                item = (*item[:-1], artifact_key(last.node.key, last.name))
            upstream.append(item)
        return stage_base(
            stage=node.spec.name,
            code=node.code,
            params=node.params_part,
            upstream=upstream,
            outputs=node.identities,
        )

    def _repr_svg_(self) -> str:
        """Jupyter's display: the DAG picture (see :mod:`assay.report.dag`)."""
        from assay.report.notebook import dag_svg

        return dag_svg(self.runner.manager)


def ingredients_of(node: StageNode) -> dict:
    """What went into a stage run's key, for its artifacts' sidecars and ``assay why``."""
    from assay.keys import KEY_SCHEME

    params = node.record.params
    reads: Any = node.reads
    if isinstance(reads, frozenset) and params is not None:
        reads = {f: describe_read(node, f) for f in sorted(reads)}
    upstream = []
    for item in node.upstream:
        last = item[-1]
        if type(last) is Artifact:
            item = (*item[:-1], last.key)
        upstream.append(list(item))
    return {
        "scheme": KEY_SCHEME,
        "base": node.base,
        "stage": node.spec.name,
        "code": node.code,
        "code_parts": {name: part["digest"] for name, part in node.code_parts.items()},
        "params": node.params_part,
        "reads": reads,
        "upstream": upstream,
        "outputs": node.identities,
    }


def describe_read(node: StageNode, name: str) -> str:
    """How a sidecar shows a parameter the stage read: the field's value (with the
    representation it is hashed through, if it has one of its own), or for a method
    (property, constant) of the parameter class, the digest of its code."""
    from assay.keys import EVERY_FIELD, STATE_READ

    if name == EVERY_FIELD:  # it read the whole set: the fields it has (not None)
        return ", ".join(sorted(k for k, v in node.record.field_hashes().items() if v is not None))
    if name.startswith(STATE_READ):
        try:
            value = node.record.state._visible(name[len(STATE_READ) :], node)
        except KeyError:
            return "<absent>"
        return f"<artifact {value.key}>" if type(value) is Artifact else short_repr(value)
    params = node.record.params
    cls = type(params)
    if name in code_attributes(cls):
        return f"<code {node.plan.runner.attribute_code(cls, name)[:16]}>"
    record = node.record
    if name not in record.field_hashes() and not hasattr(params, name):
        return "<absent>"  # `getattr(params, "dropout", 0.5)` on a set without the field
    shown = record.field_hashes() and record._shown.get(name)
    value = getattr(params, name, None)
    text = short_repr(value)
    text = f"{text} (hashed as {shown})" if shown else text
    held = record._held.get(name)
    if held:  # functions or classes: what they do is their code, not their repr
        text += f" (code {node.plan.runner.held_code(None, held)[:12]})"
    if not callable(value) and _ADDRESS.search(repr(value)):
        # `<Scaler object>` tells no two objects apart: their digest does (a function is
        # told by its name and code above)
        text += f" #{(record.field_hashes().get(name) or '?')[:8]}"
    return text


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` without memory addresses (``<function f at 0x7f...>`` reads
    ``<function f>``: another in every process), cut to ``limit`` characters (for
    sidecars and messages)."""
    text = _ADDRESS.sub("", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bind_inputs(node: StageNode, state_inputs: tuple[str, ...] = ()) -> list[tuple]:
    """Take the node's inputs from its record's state; return the upstream ingredients.

    An input that no earlier stage outputs, on a record where an earlier stage puts
    values in ``record.state`` by hand (one without outputs, or whose code writes the
    state), is taken from the state when the stage runs (:attr:`StageNode.state_inputs`),
    as a serial run in Curifactory (``--no-dag``) takes it.
    """
    spec, record, kwargs = node.spec, node.record, node.kwargs
    upstream: list[tuple] = []
    deps: dict[int, StageNode] = {}
    for name in spec.inputs:
        if name in kwargs:
            continue
        if spec.is_aggregate:
            per_record = {}
            for other in node.records:
                if dict.__contains__(other.state, name):  # everything planned so far
                    value = dict.__getitem__(other.state, name)
                    per_record[other] = value
                    upstream.append(
                        (
                            name,
                            other.get_hash(),
                            *_as_value(value, node),
                            _ingredient(value, node, name, deps),
                        )
                    )
            node.inputs[name] = per_record
            if not per_record and node.records:
                _warn_no_record_holds(node, name)
            continue
        if name in state_inputs or (
            not dict.__contains__(record.state, name) and record._barrier is not None
        ):
            node.state_inputs += (name,)
            continue
        if not dict.__contains__(record.state, name):
            if spec.suppress_missing_inputs:
                continue
            raise _missing_input(node, name)
        value = dict.__getitem__(record.state, name)
        node.inputs[name] = value
        upstream.append((name, *_as_value(value, node), _ingredient(value, node, name, deps)))
    for name in sorted(kwargs):
        upstream.append((name, _value_hash(kwargs[name], node, f"argument {name!r}")))
    node.deps = list(deps.values())
    return upstream


def upstream_of(node: StageNode) -> set[int]:
    """The ids of the stage runs whose outputs ``node``'s key covers: the producers of its
    inputs, theirs, and so on."""
    seen: set[int] = set()
    todo = list(node.deps)
    while todo:
        dep = todo.pop()
        if id(dep) not in seen:
            seen.add(id(dep))
            todo.extend(getattr(dep, "deps", ()))  # one run elsewhere has none here
    return seen


def _warn_no_record_holds(node: StageNode, name: str) -> None:
    """An aggregate input that none of the records it combines holds: most likely a typo
    (``inputs=["scroes"]``); the aggregate gets an empty dict, which it may well take for
    "no results" and cache."""
    held = sorted({k for r in node.records for k in dict.keys(r.state)})
    close = difflib.get_close_matches(name, held, n=1)
    log.warning(
        "Aggregate %r: none of the %d record(s) it combines holds %r, so it gets an empty "
        "dict for it.%s",
        node.spec.name,
        len(node.records),
        name,
        f" Did you mean {close[0]!r}?" if close else f" They hold: {', '.join(held) or 'nothing'}.",
    )


def _as_value(value: Any, node: StageNode) -> tuple[str, ...]:
    """A mark for an input the stage gets as a value where it would get a handle: a
    ``Lazy(..., resolve=False)`` output under ``--ignore-lazy``. The stage may well compute
    something else from the value than from the handle, so the two runs share no key (runs
    without the flag keep theirs)."""
    if (
        node.plan.ignore_lazy
        and isinstance(value, Artifact)
        and not value.node.spec.lazy_resolves(value.index)
    ):
        return ("its value, not a handle (--ignore-lazy)",)
    return ()


def _ingredient(value: Any, node: StageNode, name: str, deps: dict[int, StageNode]) -> Any:
    if isinstance(value, Artifact):
        deps[id(value.node)] = value.node
        return value  # its key is read when the base is computed (it may not be known yet)
    return _value_hash(value, node, f"input {name!r}")


def _keyed_on_all(cacher: Any) -> bool:
    """Cachers that need the stage's folder before it runs, or name files by parameters."""
    if cacher is None:
        return False
    if getattr(cacher, "writes_in_place", False):
        return True
    return "{params" in str(cacher.path_override or "")


def _argument_hint(what: str) -> str:
    """The advice that follows "cannot hash" for a value passed to a stage (``what``:
    ``argument 'lock'``): a parameter set's ways (``metadata={'hash': ...}``) do not
    apply to it."""
    return (
        "Without a hash this stage run is not cached: it executes on every run. To have it "
        f"cached, pass as {what} what identifies the object instead (a file's path, not the "
        "open file; a client's settings, not the client) and make the object inside the "
        "stage, or define `__assay_hash__(self)` on its class to return what identifies it."
    )


def _value_hash(value: Any, node: StageNode, what: str) -> str:
    """Hash a value passed in directly, with the code of the functions it holds and what
    they call (``fn=fit``: editing a helper ``fit`` calls counts); if it cannot be hashed
    the run becomes volatile."""
    try:
        digest = hash_value(value, dict_order=True)
    except UnhashableError as exc:
        node.volatile.append(f"{what}{exc.path}: {exc.detail} {_argument_hint(what)}")
        return "volatile"
    except (TypeError, ValueError) as exc:
        node.volatile.append(f"{what}: {exc}")
        return "volatile"
    code = held_code(value)
    return node.plan.runner.held_code(digest, code) if code else digest


def missing_state_input(node: StageNode, name: str) -> MissingInputError:
    """The error for an input that the stages putting values in ``record.state`` by hand
    before this one did not put there when they ran."""
    setters = ", ".join(f"{n.spec.name} [{n.record_label}]" for n in node.after)
    return MissingInputError(
        f"Stage {node.spec.name!r} needs input {name!r}, but no earlier stage on the record "
        f"for parameter set {node.record_label!r} outputs it, and the stages before it that "
        f"put values in record.state by hand{f' ({setters})' if setters else ''} did not put "
        f"it there. Declare it among the outputs of the stage that makes it, set "
        f"record.state[{name!r}] in one of those stages, or pass it directly: "
        f"{node.spec.name}(record, {name}=...)."
    )


def _missing_input(node: StageNode, name: str) -> MissingInputError:
    available = sorted(dict.keys(node.record.state))
    could = producers_of(name)
    message = (
        f"Stage {node.spec.name!r} needs input {name!r}, but no earlier stage on the record "
        f"for parameter set {node.record_label!r} produced it"
    )
    message += f" (the record holds: {', '.join(available)})." if available else "."
    cycles = [cycle_through(node.spec.name, p) for p in sorted(set(could))]
    if could and all(cycles):
        shown = "; ".join(" -> ".join(c) for c in cycles if c)
        message += (
            f" Every stage that outputs {name!r} needs, itself or through the stages before "
            f"it, an output of {node.spec.name!r}: a cycle ({shown}), which no order of calls "
            f"can satisfy. A stage cannot take its own output: give the value it should start "
            f"from another name, or pass it directly: {node.spec.name}(record, {name}=...)."
        )
        return MissingInputError(message)
    if could:
        message += f" Stages that output {name!r}: {', '.join(sorted(set(could)))}; call one first."
    message += " Or pass it directly: " + f"{node.spec.name}(record, {name}=...)."
    return MissingInputError(message)


def plan_stops(artifact: Artifact) -> PlanStops:
    """Why a plan made without executing anything (``--dry``, ``--paths``, ``assay why``)
    stops where ``run()`` reads ``artifact``, which is not cached."""
    stage, name = artifact.node.spec.name, artifact.name
    if artifact.cacher is None:
        why = "which has no cacher and so is never cached"
        remedy = f"Give output {name!r} of stage {stage!r} a cacher to plan past it."
    else:
        why = "which is not cached"
        remedy = "Run the experiment once to plan past it."
    return PlanStops(
        f"The plan stops where run() reads {name!r} (output of stage {stage!r} for "
        f"{artifact.node.record_label!r}), {why}: what run() does next depends on the "
        f"value, and this plan executes nothing. {remedy}"
    )
