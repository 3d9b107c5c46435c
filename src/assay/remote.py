"""Running one stage run in another process: what travels there and back.

An executor that runs stages elsewhere (a process pool, a Dask cluster) gets a
:class:`StageTask` per stage run: plain, picklable data naming the stage (by
its importable decorated function), the parameter set, and each input — as a
reference to a cached artifact, or as a value when the producer has no
cacher. The worker rebuilds a record, re-plans the single stage call (its
cache key must come out the same as the planner's, which catches a worker
running other code), executes it with the very code a serial run uses, and
writes the outputs to the shared cache itself. Only what the caller cannot
read from the cache travels back: timings, sidecars, reportables (a failed
stage's too), log lines and printed output (replayed here by :func:`replay`),
and the values of outputs that have no cacher.
"""

from __future__ import annotations

import codecs
import importlib
import importlib.util
import io
import linecache
import logging
import os
import pickle
import socket
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay import worker_output
from assay.errors import (
    AssayError,
    CacheError,
    CorruptArtifactError,
    OutputSignatureError,
    StageFailed,
)
from assay.plan import Artifact, upstream_of

if TYPE_CHECKING:
    from assay.plan import StageNode


@dataclass
class InputRef:
    """One input value for a remote stage run: where to get it, and its key."""

    stage_wrapper: Any
    """The producing stage (for its Lazy settings)."""
    stage_key: str
    output: str
    index: int
    cacher: Any = None
    """Load it with this cacher from the cache ..."""
    value: Any = None
    """... or here is the value itself (its producer has no cacher)."""
    has_value: bool = False
    record: int = 0
    """For aggregates: which of ``StageTask.records`` the value belongs to."""


@dataclass
class StageTask:
    """Everything a worker needs to execute one stage run."""

    project_root: str
    module_name: str
    module_file: str | None
    stage_wrapper: Any
    params: Any
    params_hash: str | None
    records: list[tuple[Any, str | None, str | None]]
    """For an aggregate: each input record's parameters, hash, and (an aggregate's own
    record, which another aggregate over "every other record" takes too) its combo hash."""
    inputs: dict[str, Any]
    args: tuple
    kwargs: dict
    cachers: list
    expected_base: str
    return_values: list[str]
    provenance: dict
    experiment: str
    prefix: str
    cache_dir: str
    dry_cache: bool
    forced: bool = False
    code: tuple = ()
    """The planner's code fingerprint of the stage (digest, parts): module state a
    worker holds (a counter a stage bumps) must not give it another key."""
    nonce: Any = None
    """A non-deterministic stage's per-run key part, as the planner drew it."""
    label: str = ""
    not_sent: dict = field(default_factory=dict)
    """Names in the record's state that a serial run would show the stage, beside its
    inputs, that were not sent (see :func:`_state_for`): reading one in the worker raises
    :class:`NotSentToWorker`."""
    state: dict = field(default_factory=dict)
    """Plain values in the record's state (put there by hand, ``record.state["x"] = v``)
    that a serial run would show the stage: they travel with the task."""
    records_state: list = field(default_factory=list)
    """For an aggregate: ``(plain values, names not sent)`` of each of its records."""
    state_inputs: tuple = ()
    """Inputs the stage takes from what an earlier stage put in ``record.state`` by hand
    (:attr:`assay.plan.StageNode.state_inputs`): bound so in the worker too."""
    earlier: tuple = ()
    """The record's stage runs before this one (:class:`assay.record.EarlierRun`), whose
    folders ``record.get_path(..., stage_name=...)`` gives in the worker too."""
    records_earlier: list = field(default_factory=list)
    """For an aggregate: the same, for each of its records."""
    lazy: bool = False
    ignore_lazy: bool = False
    output_file: str | None = None
    """Where the worker also keeps what the stage prints and logs as it goes, if it runs
    on the run's machine (see :mod:`assay.worker_output`)."""
    scratch: str | None = None
    """Under ``--dry-cache``: the run's temporary folder for files stages write themselves
    (see :meth:`ArtifactManager.scratch_root`), which the main process removes."""
    checked_files: frozenset = frozenset()
    """Worker side: the project files found to be the main process's (set before running)."""
    param_files: tuple = ()
    """The run's parameter files, as given (``manager.parameter_files``)."""
    record_index: int = -1
    """The record's position in the main process's ``manager.records``."""
    record_stages: tuple = ()
    """``record.stages`` in the main process while this stage runs."""
    records_stages: list = field(default_factory=list)
    """For an aggregate: ``stages`` of each of its records."""
    claims: str | None = None
    """The name under which the run's processes claim the files ``path_override`` names
    (:attr:`assay.runner.Runner.claims_scope`)."""
    notes: str | None = None
    """The run's ``--notes`` (``manager.notes``)."""
    aggregated: tuple | None = None
    """For a stage called on an aggregate's record after the aggregate: that record's
    combo hash and its input records (as :attr:`records`), so that the record is the
    aggregate's there too (``record.get_hash()``, its ``by-name`` folder)."""
    run_line: str = ""
    """The command line that started the run (``manager.run_line``)."""


@dataclass
class StageResult:
    """What comes back from a worker."""

    key: str | None
    started: float
    duration: float
    status: str = "executed"
    reads: Any = None
    metas: dict[str, dict] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    reportables: bytes = b""
    """The stage's reportables (metrics too), pickled: those of a failed stage as well."""
    events: list[tuple[str, Any]] = field(default_factory=list)
    """What the stage logged and printed, in order: ``("log", LogLine)``, ``("stdout",
    text)``, ``("stderr", text)`` (:func:`replay` gives them to this process's logging
    and streams)."""
    forked_output: bool = False
    """Whether processes the stage forked printed or logged: their output is in the
    stage run's output file only (see :mod:`assay.worker_output`)."""
    error: dict | None = None
    state: dict = field(default_factory=dict)
    """Plain values the stage put in its record's state by hand, for later stages (and a
    :class:`NotPicklable` for each that could not travel)."""


@dataclass
class LogLine:
    """A log record of a worker, as it travels back: what handlers format."""

    level: int
    name: str
    message: str
    exc_text: str | None = None
    """The formatted traceback of ``log.exception(...)`` / ``exc_info=True``."""
    stack_info: str | None = None
    """The stack of ``stack_info=True``."""
    pathname: str = ""
    lineno: int = 0
    function: str | None = None


def replay(result: StageResult) -> None:
    """Main process: log and print what a stage did in its worker, in the order it did.

    Log lines go to their loggers here, with their tracebacks (``log.exception``) and
    stacks, so handlers show them as a serial run's (the run's log file the traceback,
    the console the line); printed text goes to this process's ``sys.stdout`` or
    ``sys.stderr``, the stream the stage wrote it to (``warnings.warn`` too).
    """
    replay_events(result.events)


def replay_events(events: Iterable[tuple[str, Any]]) -> None:
    """Main process: log and print ``events`` (see :func:`replay`)."""
    for kind, item in events:
        if kind == "log":
            _log_again(item)
        elif kind == "stderr":
            sys.stderr.write(item)
        else:
            sys.stdout.write(item)


def _log_again(line: LogLine) -> None:
    logger = logging.getLogger(line.name)
    if not logger.isEnabledFor(line.level):
        return
    record = logger.makeRecord(
        line.name,
        line.level,
        line.pathname,
        line.lineno,
        line.message,
        None,
        None,
        line.function,
        None,
        line.stack_info,
    )
    record.exc_text = line.exc_text
    logger.handle(record)


class RemoteStageError(Exception):
    """A stage's exception in a worker, with its original traceback.

    ``traceback_text`` is the worker's formatted traceback; ``frames`` (file,
    line, function) are also rebuilt into this exception's ``__traceback__``,
    so whatever shows tracebacks here (the command line, the run's log,
    ``--debug``) shows the lines of the stage's code that failed in the worker.
    """

    def __init__(self, kind: str, message: str, traceback_text: str, frames: Sequence[tuple] = ()):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.traceback_text = traceback_text
        self.frames = [tuple(f) for f in frames]
        self.__traceback__ = _rebuilt_traceback(self, self.frames)


def _pickled_exception(exc: BaseException) -> bytes | None:
    """The stage's exception, pickled to travel back with its attributes (``e.code``,
    ``e.returncode``); ``None`` if it cannot be pickled, or is large (it holds data)."""
    import copyreg
    import io

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    # Exceptions by their own __reduce__: a Dask worker has tblib's way registered for
    # every exception class (distributed does it when imported), which loses attributes
    # of some (UnicodeDecodeError's reason) and cannot rebuild others.
    pickler.dispatch_table = {
        kind: reducer
        for kind, reducer in copyreg.dispatch_table.items()
        if not (isinstance(kind, type) and issubclass(kind, BaseException))
    }
    try:
        pickler.dump(exc)
        data = buffer.getvalue()
        pickle.loads(data)
    except Exception:  # one whose __init__ takes other arguments than its args: see below
        try:
            data = pickle.dumps(_AsItIs(exc), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return None
    return data if len(data) <= 65536 else None


class _AsItIs:
    """Pickles ``exc`` as :func:`_exception_as_it_is` rebuilds it."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __reduce__(self) -> tuple:
        return _exception_as_it_is, (type(self.exc), self.exc.args, vars(self.exc))


def _exception_as_it_is(kind: type, args: tuple, attributes: dict) -> BaseException:
    """An exception of ``kind`` with ``args`` and ``attributes``, made without calling
    its ``__init__``.

    Python pickles an exception as a call of its class with its ``args``, which fails for
    a class whose ``__init__`` takes other arguments (``__init__(self, a, b)`` that
    passes a message on): its attributes (``e.a``) were lost on the way back from a
    worker, where a serial run keeps them.
    """
    exc = kind.__new__(kind, *args)
    exc.args = args
    exc.__dict__.update(attributes)
    return exc


def sent_exception(data: bytes | None) -> BaseException | None:
    """The exception a worker's stage raised, as :func:`_pickled_exception` sent it, if
    this process can rebuild it (its class importable here); else ``None``."""
    if data is None:
        return None
    try:
        exc = pickle.loads(data)
    except Exception:
        return None
    return exc if isinstance(exc, BaseException) else None


def exception_type(where: Sequence[str] | None) -> type | None:
    """The exception class a worker named as ``(module, qualified name)``, if the main
    process has that module imported (the stage's own module, the standard library...)."""
    if not where:
        return None
    module_name, qualname = where
    found: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _rebuilt_traceback(exc: BaseException, frames: list[tuple]) -> types.TracebackType | None:
    """A traceback whose entries point at ``frames``' files and lines (as jinja2 does)."""

    def reraise():
        raise exc.with_traceback(None)

    tb = None
    for filename, lineno, name in reversed(frames):
        if not lineno:
            continue
        # A call covering exactly the line's text (same indent, same length in bytes), so
        # tracebacks show the line without column marks under part of it.
        line = linecache.getline(filename, lineno)
        indent = len(line) - len(line.lstrip())
        call = "r(" + " " * max(len(line.strip().encode()) - 3, 0) + ")"
        if indent and lineno > 1:
            source = "\n" * (lineno - 2) + "if 1:\n" + " " * indent + call
        else:
            source = "\n" * (lineno - 1) + call
        try:
            code = compile(source, filename, "exec").replace(co_name=name)
            exec(code, {"__name__": "assay_remote_frame", "r": reraise})
        except BaseException as raised:
            entry = raised.__traceback__.tb_next if raised.__traceback__ else None
            if entry is None:
                continue
            tb = types.TracebackType(tb, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return tb


def make_task(node: StageNode, manager: Any) -> StageTask:
    """The task that lets a worker execute ``node``."""
    spec, record = node.spec, node.record
    module = sys.modules[spec.func.__module__]
    records: list[tuple[Any, str | None, str | None]] = []
    if spec.is_aggregate:
        records = _identities(node.records)
        index = {id(r): i for i, r in enumerate(node.records)}
    aggregated = None
    if record.is_aggregate and not spec.is_aggregate:
        aggregated = (record.combo_hash, _identities(record.input_records))
    plain, not_sent = _state_for(record, node)
    upstream = upstream_of(node)
    inputs: dict[str, Any] = {}
    for name, value in node.inputs.items():
        for item in value.values() if spec.is_aggregate else (value,):
            if isinstance(item, NotPicklable):
                raise item.refusal(node)
        if spec.is_aggregate:
            inputs[name] = [_ref(v, index[id(r)]) for r, v in value.items()]
        else:
            inputs[name] = _ref(value, 0)
    return StageTask(
        project_root=str(manager.config.root),
        module_name=module.__name__,
        module_file=getattr(module, "__file__", None),
        stage_wrapper=spec.wrapper,
        params=record.params,
        params_hash=record._hash,
        records=records,
        inputs=inputs,
        args=node.args,
        kwargs=node.kwargs,
        cachers=[_detached(a.cacher) for a in node.outputs],
        expected_base=node.base,
        code=(node.code, node.code_parts),
        # Values the cache will not hold come back, as a serial run keeps them in memory.
        return_values=[
            a.name for a in node.outputs if a.cacher is None or manager.dry_cache or node.volatile
        ],
        provenance=manager.provenance(node),
        experiment=manager.experiment_name,
        prefix=manager.prefix,
        cache_dir=manager.config.cache_location,
        dry_cache=manager.dry_cache,
        forced=node.forced,
        nonce=next((i for i in node.upstream if i[0] == "non-deterministic"), None),
        label=node.record_label,
        not_sent=not_sent,
        state=plain,
        records_state=[_state_for(r, node) for r in node.records] if spec.is_aggregate else [],
        state_inputs=node.state_inputs,
        earlier=_earlier_runs(record, node, upstream),
        records_earlier=[_earlier_runs(r, node, upstream) for r in node.records]
        if spec.is_aggregate
        else [],
        lazy=manager.lazy,
        ignore_lazy=manager.ignore_lazy,
        scratch=manager.scratch_root() if manager.dry_cache else None,
        param_files=tuple(manager.parameter_files),
        record_index=record.get_record_index(),
        record_stages=tuple(record._stages_until(node)),
        records_stages=[list(r.stages) for r in node.records] if spec.is_aggregate else [],
        notes=manager.notes,
        run_line=manager.run_line,
        aggregated=aggregated,
        claims=manager.runner.claims_scope,
    )


def _identities(records: list) -> list[tuple[Any, str | None, str | None]]:
    """What a worker makes ``records`` again from (:func:`_identified`): each one's
    parameters, hash and (an aggregate's record) combo hash."""
    return [(r.params, r._hash, r.combo_hash if r.is_aggregate else None) for r in records]


def _identified(manager: Any, params: Any, params_hash: Any, combo_hash: Any) -> Any:
    """A record of the worker's made from one of :func:`_identities`' entries."""
    from assay.record import Record

    other = Record(manager, None, hide=True)
    other.params, other._hash = params, params_hash
    if combo_hash is not None:  # an earlier aggregate's record: hashed as in the main process
        other.is_aggregate, other.combo_hash = True, combo_hash
    return other


def _earlier_runs(record: Any, node: StageNode, upstream: set[int]) -> tuple:
    """``record``'s stage runs before ``node`` (a copy's: its original's too), as
    :class:`assay.record.EarlierRun` (without a key, those that had not finished: their
    folder is not there yet); ``upstream``: :func:`assay.plan.upstream_of` ``node``."""
    from assay.record import EarlierRun

    return tuple(
        EarlierRun(
            n.spec.name, n.key if n.status in _FINISHED else None, n.status, id(n) in upstream
        )
        for n in (*record._copied_after, *record._nodes)
        if n.index < node.index
    )


_FINISHED = ("executed", "cached", "unneeded")
"""Statuses of a stage run whose folder is complete."""


def _state_for(record: Any, node: StageNode) -> tuple[dict, dict]:
    """What of ``record``'s state a serial run would show ``node`` beside its inputs: the
    plain values (sent along, if they can be pickled), and the rest: ``{name: why not
    sent}`` (empty for an earlier stage's output, which the stage must declare; else what
    the value is and why it cannot be pickled)."""
    plain, not_sent = {}, {}
    for name in record.state._names(running=node):
        if name in node.inputs:
            continue
        value = dict.__getitem__(record.state, name)
        if isinstance(value, NotPicklable):
            if name in node.state_inputs:
                raise value.refusal(node)
            not_sent[name] = (
                f"a {value.type} that stage {value.stage!r} put there in a worker process, "
                f"which cannot be pickled ({value.problem})"
            )
        elif type(value) is Artifact:
            not_sent[name] = ""
        else:
            problem = _pickling_problem(value)
            if problem is None:
                plain[name] = value
            else:
                cls = type(value)
                not_sent[name] = (
                    f"a {cls.__module__}.{cls.__qualname__}, which cannot be pickled ({problem})"
                )
    return plain, not_sent


def _picklable(value: Any) -> bool:
    return _pickling_problem(value) is None


def _pickling_problem(value: Any) -> str | None:
    """Why ``value`` cannot be pickled (``None``: it can)."""
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass(frozen=True, init=False)
class NotPicklable:
    """Stands in a record's state, in the main process, for a value that a stage running
    in a worker put there by hand and that cannot be pickled: the value stayed in that
    worker. A stage that takes it as input is refused before it is sent anywhere, with
    a message that says so (:func:`make_task`)."""

    stage: str
    name: str
    type: str
    problem: str

    def __init__(self, stage: str, name: str, value: Any, problem: str):
        cls = type(value)
        object.__setattr__(self, "stage", stage)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "type", f"{cls.__module__}.{cls.__qualname__}")
        object.__setattr__(self, "problem", problem)

    def __repr__(self) -> str:
        return (
            f"<not sent back: record.state[{self.name!r}], a {self.type} that stage "
            f"{self.stage!r} put there in a worker process, cannot be pickled>"
        )

    def refusal(self, node: StageNode) -> AssayError:
        """The error for ``node``, a stage that takes this value as input."""
        stage = node.spec.name
        return AssayError(
            f"Stage {stage!r} for parameter set {node.record_label!r} takes input "
            f"{self.name!r}, which stage {self.stage!r} put in record.state by hand, in a "
            f"worker process; but that value, a {self.type}, cannot be pickled "
            f"({self.problem}), so it cannot travel to the worker that runs {stage!r}. Run "
            f"without --parallel / --executor, put a value that can be pickled in "
            f"record.state[{self.name!r}], or make {self.name!r} an output of "
            f"{self.stage!r} with a cacher that can save it."
        )


def _ref(value: Any, record: int) -> Any:
    if type(value) is not Artifact:
        return value
    cacher = _detached(value.cacher) if value.cached else None
    return InputRef(
        stage_wrapper=value.node.spec.wrapper,
        stage_key=value.node.key,
        output=value.name,
        index=value.index,
        cacher=cacher,
        value=None if cacher is not None else value.value,
        has_value=cacher is None,
        record=record,
    )


def _detached(cacher: Any) -> Any:
    """A copy of a cacher without its record (records stay in the main process)."""
    if cacher is None:
        return None
    copy = object.__new__(type(cacher))
    copy.__dict__.update(cacher.__dict__)
    copy.record = None
    copy.metadata = None
    return copy


def is_worker_loss(exc: BaseException) -> bool:
    """Whether ``exc`` (from a task's future) says its worker died, not that the task failed.

    A process pool breaks when one of its processes dies; Dask gives up on a
    task whose workers died ``allowed-failures`` times (``KilledWorker``), and
    cancels the futures of a client that lost its scheduler.
    """
    from concurrent.futures import BrokenExecutor, CancelledError

    if isinstance(exc, (BrokenExecutor, CancelledError)):
        return True
    return type(exc).__name__ in ("KilledWorker", "CommClosedError")


def check_sendable(nodes: Iterable[StageNode], forked: bool = False) -> None:
    """Before a remote run starts, name every value of ``nodes`` that cannot travel.

    Parameter sets, stage arguments and stage functions are pickled for the
    workers; one that cannot be would fail the run halfway, after other stages
    ran. This checks them all first and raises one :class:`AssayError` that
    lists every offender (parameter set and field, or stage and argument).
    Functions and classes travel by name, so those typed into a notebook (a module
    without a file) are offenders too, unless the workers are ``forked`` copies of
    this process (see :func:`interactive_module`).
    """
    problems: list[str] = []
    seen: set[int] = set()

    def check(what: str, value: Any) -> None:
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            problems.append(f"{what} ({type(value).__name__}): {exc}")
            return
        module = None if forked else interactive_module(value)
        if module is not None:
            problems.append(
                f"{what} ({_defined_name(value)}): defined in {module}, which has no file "
                "(a notebook's code), so worker processes cannot import it"
            )

    for node in nodes:
        for record in [node.record, *(node.records or ())]:
            params = record.params
            if params is None or id(params) in seen:
                continue
            seen.add(id(params))
            check(f"parameter set {record.name!r}, class", type(params))
            fields = getattr(params, "__dataclass_fields__", None)
            if fields is None:
                check(f"parameter set {record.name!r}", params)
            for name in fields or ():
                check(f"parameter set {record.name!r}, field {name!r}", getattr(params, name))
        where = f"stage {node.spec.name!r} for {node.record_label!r}"
        for i, value in enumerate(node.args):
            check(f"{where}, argument {i}", value)
        for name, value in node.kwargs.items():
            check(f"{where}, argument {name!r}", value)
        if id(node.spec) not in seen:
            seen.add(id(node.spec))
            check(f"stage function {node.spec.name!r}", node.spec.wrapper)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise AssayError(
            f"{len(problems)} value(s) cannot be sent to worker processes, so nothing was run:\n"
            f"{listed}\nValues sent to workers must be picklable: use importable functions and "
            "classes (not lambdas, functions defined inside other functions, or objects defined "
            "in a notebook: move those into a module of experiments/), leave out locks, open "
            "files and connections, or run without --parallel / --executor."
        )


def interactive_module(value: Any) -> str | None:
    """The module a function or class (or an instance of a class) was defined in, if that
    module has neither a file nor an import spec: a notebook's ``__main__``, or a module
    made with ``types.ModuleType`` in one. Pickle stores such values by name, and a worker
    that did not fork from this process has nothing of that name to import."""
    target = value if isinstance(value, (type, types.FunctionType)) else type(value)
    name = getattr(target, "__module__", None)
    module = sys.modules.get(name) if isinstance(name, str) else None
    if module is None or getattr(module, "__file__", None) or module.__spec__ is not None:
        return None
    return f"module {name}"


def _defined_name(value: Any) -> str:
    target = value if isinstance(value, (type, types.FunctionType)) else type(value)
    return getattr(target, "__qualname__", type(value).__name__)


def check_shared_cache(cache: Any) -> None:
    """Refuse a cache that only this process can see, before a remote run starts.

    Workers write the artifacts of the stages they run into the cache themselves.
    A ``memory://`` cache lives inside one Python process: what a worker saves
    there stays in that worker, so the run would never see its stages' results.
    """
    fs = getattr(cache, "fs", None)
    if fs is None:
        return
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "memory" in protocols:
        raise AssayError(
            f"The cache {cache.url} is kept in this process's memory, which worker "
            "processes cannot reach: what they saved there would never come back, so "
            "nothing was run. Use a cache folder or a URL that every worker reaches "
            "(--cache DIR, file://..., s3://...), or run without --parallel / --executor."
        )


def check_picklable(task: StageTask) -> None:
    """Raise a clear error naming what in a task cannot travel to a worker."""
    try:
        pickle.dumps(task)
        return
    except Exception as whole:
        culprit = _find_unpicklable(task)
        stage = getattr(task.stage_wrapper, "__name__", "?")
        raise AssayError(
            f"Stage {stage!r} for parameter set {task.label!r} cannot be sent to a worker "
            f"process: {culprit or whole}. Values sent to workers must be picklable: use "
            "importable functions and classes (not lambdas or objects defined in a notebook), "
            "or run without --parallel."
        ) from whole


def _find_unpicklable(task: StageTask) -> str | None:
    candidates: list[tuple[str, Any]] = []
    params = task.params
    if params is not None and hasattr(params, "__dataclass_fields__"):
        for name in params.__dataclass_fields__:
            candidates.append((f"parameter field {name!r}", getattr(params, name)))
    candidates += [(f"input {k!r}", v) for k, v in task.inputs.items()]
    candidates += [(f"argument {k!r}", v) for k, v in task.kwargs.items()]
    candidates += [(f"cacher of output {i}", c) for i, c in enumerate(task.cachers)]
    candidates.append(("the stage function", task.stage_wrapper))
    for what, value in candidates:
        try:
            pickle.dumps(value)
        except Exception as exc:
            return f"{what} ({type(value).__name__}) cannot be pickled: {exc}"
    return None


# -- the worker side -------------------------------------------------------------------

_MANAGERS: dict[tuple, Any] = {}

_ONE_TASK_AT_A_TIME = threading.Lock()
"""Held while a worker process runs one of assay's tasks. A Dask worker may run several
threads (``dask worker`` without ``--nthreads 1``), but a task changes what the whole process
shares: its folder (:func:`_use_cwd`), ``sys.path`` and the imported modules (a task of
another project forgets this one's, :func:`worker_code.use_root`), ``sys.stdout`` and the
root logger's handlers, and this run's manager (:data:`_MANAGERS`). So another thread's
task waits until this one is done: the threads of one process run stages one after another."""


def import_machinery() -> None:
    """Import what stage runs need (fingerprints, managers, records).

    Workers do as they start; the main process does before it starts them, so
    that forked workers have it already (the run needs it to plan anyway).
    """
    import assay.codeprint
    import assay.manager
    import assay.record  # noqa: F401


def start_worker(identity: bool = True) -> int:
    """Worker side, as it starts: import what stage runs need, and remove this process's
    cache markers when it exits; returns its process id.

    With ``identity``, also take this worker's :func:`~assay.worker_code.assay_identity`
    now, close to when it imported assay (the run checks it before every task).
    """
    from assay import cache_writing
    from assay.worker_code import assay_identity

    cache_writing.close_at_worker_exit()
    import_machinery()
    if identity:
        assay_identity()
    return os.getpid()


def warm_up(
    module_name: str,
    module_file: str | None,
    root: str,
    sources: dict[str, str] | None = None,
    cwd: str | None = None,
) -> int:
    """Worker side, before the first task: import the project; returns its process id.

    A failure is left for the first real task to report, with its stage and
    parameter set.
    """
    from assay import worker_code

    with _ONE_TASK_AT_A_TIME:
        try:
            _use_cwd(cwd)
            _import_project(module_name, module_file, root, sources or {})
            worker_code.project_sources(root, sources or {})  # digested now, as imported
        except Exception:
            pass
    return os.getpid()


def run_task(assay_id: str, *args: Any) -> bytes:
    """Worker entry point: execute one pickled :class:`StageTask`, return a pickled result.

    ``assay_id`` is the main process's :func:`~assay.worker_code.assay_identity`
    (empty when the run started this worker itself: nothing to check). It comes
    first and the rest is taken as it comes, so that a worker which kept another
    version of assay imported says so, whatever the arguments of its ``run_task``;
    the rest are those of :func:`_run_task`.
    """
    from assay import worker_code

    try:
        worker_code.check_assay(assay_id)
        with _ONE_TASK_AT_A_TIME:
            return _run_task(*args)
    except AssayError as exc:  # assay's own: a cache it cannot write, other code here...
        return _raising(_told_where(exc, existing_cluster=bool(assay_id)))


def _told_where(exc: AssayError, existing_cluster: bool) -> AssayError:
    """``exc``, naming the Dask worker that met it if it is about the cache: the
    researcher would otherwise look at the machine they run from, where the cache works.

    ``existing_cluster``: the run did not start the worker, which has the environment it
    was started in (see :meth:`assay.caches.fsspec.UrlCacheError.on_worker`).
    """
    where = _dask_worker()
    if where is None or not isinstance(exc, CacheError):
        return exc
    from assay.caches.fsspec import UrlCacheError

    if isinstance(exc, UrlCacheError):
        return exc.on_worker(where, existing_cluster)
    if type(exc) is CacheError:
        return CacheError(f"{exc} This happened on {where}.")
    return exc


def _dask_worker() -> str | None:
    """``"the Dask worker ADDRESS (host H, pid N)"`` if this thread runs a Dask task."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        address = get_worker().address
    except Exception:  # not in a Dask worker
        return None
    return f"the Dask worker {address} (host {socket.gethostname()}, pid {os.getpid()})"


def _raising(exc: AssayError) -> bytes:
    """A task's result that raises ``exc`` (caused by the worker's traceback) where the
    main process unpickles it, as if the task had raised it.

    assay's own errors in a worker travel back as the task's result, as a stage's
    failure does: a task that raised would have Dask print it with its traceback
    ("Compute Failed") before assay's message, which a serial run shows alone.
    """
    worker_traceback = (
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)],
    )
    try:
        pickle.loads(pickle.dumps(exc))  # the main process rebuilds it as it is
        return pickle.dumps(_RaisedInWorker(exc, worker_traceback))
    except Exception:  # it cannot travel so: the task raises it after all
        raise exc from None


@dataclass
class _RaisedInWorker:
    """Unpickled, raises the error it holds (see :func:`_raising`)."""

    exc: AssayError
    worker_traceback: tuple[str, list]

    def __reduce__(self) -> tuple:
        return _raise_again, (self.exc, *self.worker_traceback)


def _raise_again(exc: AssayError, text: str, frames: list) -> Any:
    raise exc from RemoteStageError(type(exc).__name__, str(exc), text, frames)


def _run_task(
    task_bytes: bytes,
    module_name: str,
    module_file: str | None,
    root: str,
    sources: dict[str, str] | None = None,
    cwd: str | None = None,
    params_modules: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Execute one pickled :class:`StageTask` in this worker, return a pickled result.

    ``sources`` are the main process's project files (see :mod:`assay.worker_code`):
    a worker that kept another version of them imported reads them again. ``cwd`` is
    the folder the run was started from: the stage runs there, as in a serial run, so
    that relative paths mean the same files. ``params_modules`` are parameter files
    outside the project (name, file) whose classes the task's parameter sets are of.
    """
    from assay import worker_code

    _use_cwd(cwd)
    _import_project(module_name, module_file, root, sources or {})
    for name, file in params_modules:
        _import_project(name, file, root, sources or {})
    task: StageTask = pickle.loads(task_bytes)
    worker_code.check_sources(sources or {}, root)  # the task's own imports (parameters) too
    task.checked_files = frozenset(sources or ())
    with worker_output.kept_in(task.output_file) as output:
        result = _run_captured(task, root, sources or {}, output)
        if output is not None:
            output.flush()
            result.forked_output = output.others_wrote()
        try:
            sent = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a value that travels back (an output without a cacher)
            label = f"{task.stage_wrapper.__assay_stage__.name!r} for parameter set {task.label!r}"
            sent = pickle.dumps(_unsendable(result, label, exc))
        if output is not None:
            output.mark_done()
    return sent


def _run_captured(
    task: StageTask, root: str, sources: dict[str, str], output: worker_output.OutputFile | None
) -> StageResult:
    """Run the task with what it prints and logs kept in its result's events (and, as it
    goes, in ``output``)."""
    from assay import worker_code

    started = time.time()
    events: list[list] = []
    handler = _ListHandler(events, output)
    root_logger = logging.getLogger()
    root_logger.addHandler(handler)
    previous_level = root_logger.level
    root_logger.setLevel(min(previous_level or logging.INFO, logging.INFO))
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = _Stream(events, "stdout", output, stdout)
    sys.stderr = _Stream(events, "stderr", output, stderr)
    try:
        with worker_code.running_stage(root, sources):  # and what it imports
            result = _execute(task, started)
    except StageFailed as exc:
        result = _failed(exc, started)
    except CorruptArtifactError as exc:
        result = StageResult(
            key=None,
            started=started,
            duration=0.0,
            error={"kind": "CorruptArtifactError", "message": str(exc), "corrupt": True},
        )
    except OutputSignatureError as exc:  # raised as itself in the main process
        result = StageResult(
            key=None,
            started=started,
            duration=time.time() - started,
            error={"kind": "OutputSignatureError", "message": str(exc), "signature": True},
        )
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        root_logger.removeHandler(handler)
        root_logger.setLevel(previous_level)
    result.events = [(kind, "".join(item) if kind != "log" else item) for kind, item in events]
    return result


def _unsendable(result: StageResult, label: str, exc: Exception) -> StageResult:
    """The result of a stage whose returned values cannot travel back: its failure."""
    names = [name for name, value in result.values.items() if not _picklable(value)]
    what = f"output(s) {', '.join(map(repr, names))}" if names else "its result"
    message = (
        f"{what} cannot be sent back from the worker process ({type(exc).__name__}: {exc}). "
        "An output without a cacher travels back pickled: give it a cacher that can save "
        "it, or return a value that can be pickled (or run without --parallel/--executor)."
    )
    return StageResult(
        key=None,
        started=result.started,
        duration=result.duration,
        reportables=result.reportables,
        events=result.events,
        forked_output=result.forked_output,
        error={
            "kind": "TypeError",
            "message": message,
            "traceback": "",
            "summary": f"Stage {label}: {message}",
            "frames": [],
        },
    )


def _failed(exc: StageFailed, started: float) -> StageResult:
    """The result of a stage that raised ``exc.original``: its traceback travels back."""
    original = exc.original
    return StageResult(
        key=None,
        started=started,
        duration=time.time() - started,
        error={
            "kind": type(original).__name__,
            "type": (type(original).__module__, type(original).__qualname__),
            "exception": _pickled_exception(original),
            "message": str(original),
            "traceback": "".join(
                traceback.format_exception(type(original), original, original.__traceback__)
            ),
            "summary": str(exc),
            "frames": [
                (f.filename, f.lineno, f.name) for f in traceback.extract_tb(original.__traceback__)
            ],
        },
    )


def _execute(task: StageTask, started: float) -> StageResult:
    from assay.config import ProjectConfig
    from assay.manager import ArtifactManager
    from assay.record import Record

    key = (
        task.provenance.get("run_id"),
        task.project_root,
        task.cache_dir,
        task.experiment,
        task.prefix,
        task.dry_cache,
        task.lazy,
        task.ignore_lazy,
    )
    manager = _MANAGERS.get(key)
    if manager is None:  # a new run (a worker of an existing cluster outlives runs)
        # Modules an earlier run's tasks imported hold what those tasks left in them.
        _EARLIER_MODULES.clear()
        if _RUNS_SEEN[0]:
            _EARLIER_MODULES.update(sys.modules)
        _RUNS_SEEN[0] += 1
        _MANAGERS.clear()
        _SAME_CODE.clear()
        _SAME_VALUES.clear()
        _CHECKED_CODE.clear()
        _FINGERPRINTER.clear()
        config = ProjectConfig.load(task.project_root).with_cache_dir(task.cache_dir)
        manager = ArtifactManager(
            task.experiment,
            prefix=task.prefix,
            dry_cache=task.dry_cache,
            lazy=task.lazy,
            ignore_lazy=task.ignore_lazy,
            config=config,
        )
        _MANAGERS[key] = manager
    manager.cache.forget()  # other runs may have changed a shared cache since the last task
    manager._scratch = task.scratch  # the main process's (it removes it)
    # This worker's view of the run: under the main process's run's name and number.
    manager._run_seen = (task.provenance.get("run_id"), task.provenance.get("run_number"))
    manager._param_files = list(task.param_files)
    manager.notes, manager.run_line = task.notes, task.run_line
    spec = task.stage_wrapper.__assay_stage__
    record = Record(manager, None, hide=True)
    record.params, record._hash = task.params, task.params_hash
    record._index = task.record_index
    record._stages = list(task.record_stages)
    records = []
    for (params, params_hash, combo_hash), stages in zip(
        task.records, task.records_stages or [[]] * len(task.records)
    ):
        other = _identified(manager, params, params_hash, combo_hash)
        other._stages = list(stages)
        records.append(other)
    if task.aggregated is not None:
        record.is_aggregate, record.combo_hash = True, task.aggregated[0]
        record.input_records = [_identified(manager, *entry) for entry in task.aggregated[1]]
    _give_state(record, task.state, task.not_sent)
    record._earlier = task.earlier
    for other, (plain, not_sent), earlier in zip(records, task.records_state, task.records_earlier):
        _give_state(other, plain, not_sent)
        other._earlier = earlier
    for name, ref in task.inputs.items():
        if spec.is_aggregate:
            for item in ref:
                _place(manager, records[item.record], name, item)
        else:
            _place(manager, record, name, ref)
    runner = manager.runner
    if task.claims is not None:
        runner.share_claims(task.claims)
    if spec.is_aggregate:
        from assay.hashing import hash_value

        record.is_aggregate = True
        record.input_records = records
        record.combo_hash = hash_value(
            ["aggregate", record._hash, sorted(r.get_hash() for r in records)]
        )
    _check_same_code(spec, task)
    _check_same_values(spec, task)
    node = runner.plan.add(
        spec,
        record,
        task.args,
        task.kwargs,
        records or None,
        task.cachers,
        task.code,
        task.state_inputs,
    )
    for cacher in task.cachers:
        if cacher is not None:
            cacher.record = record
    record._nodes.append(node)
    if task.nonce is not None:
        node.upstream = [i for i in node.upstream if i[0] != "non-deterministic"] + [task.nonce]
    node.base = runner.plan.base_of(node)
    if node.base != task.expected_base:
        raise AssayError(
            f"Stage {spec.name!r} for {task.label!r} has another cache key in the worker than in "
            "the main process: the worker runs different code or parameters. Make sure every "
            "worker sees the same project files and package versions."
        )
    node.status = "run"
    node.forced = task.forced
    before = dict(dict.items(record.state))
    try:
        runner._execute_node(node)
    except StageFailed as exc:  # what it reported (metrics too) before it failed comes back
        failed = _failed(exc, started)
        failed.key = node.key  # the key it ran under, for the run store (as a serial run's)
        if node.duration is not None:  # the stage's own time, as a serial run records it
            failed.started, failed.duration = node.started or started, node.duration
        failed.reportables = _sent_reportables(node)
        return failed
    finally:
        runner.plan.nodes.clear()
    put = {}  # by hand (new, or put in again), for later stages (as in a serial run)
    for name, value in dict.items(record.state):
        if before.get(name, _ABSENT) is value or type(value) is Artifact:
            continue
        problem = _pickling_problem(value)
        put[name] = value if problem is None else NotPicklable(spec.name, name, value, problem)
    values = {}
    for artifact in node.outputs:
        if artifact.name in task.return_values:
            values[artifact.name] = artifact.value
    reportables = _sent_reportables(node)
    return StageResult(
        key=node.key,
        status=node.status,
        reads=node.reads,
        started=node.started or started,
        duration=node.duration or 0.0,
        metas={a.name: a.meta for a in node.outputs if a.meta is not None},
        values=values,
        reportables=reportables,
        state=put,
    )


log = logging.getLogger("assay")

_ABSENT = object()
"""Stands for "absent" when a worker compares the state before and after a stage."""


def _sent_reportables(node: StageNode) -> bytes:
    """``node``'s reportables, pickled to travel back (without their record)."""
    if not node.reportables:
        return b""
    for reportable in node.reportables:
        reportable.record = None
    try:
        return pickle.dumps(node.reportables)
    except Exception:  # as in a serial run, one that cannot be pickled costs a warning
        from assay.runner import picklable_reportables

        sendable = picklable_reportables(node, "sent back from the worker")
        return pickle.dumps(sendable) if sendable else b""


def _give_state(record: Any, plain: dict, not_sent: dict) -> None:
    """Put what a serial run would show the stage into a worker's record."""
    for name, value in plain.items():
        dict.__setitem__(record.state, name, value)
    record.state._not_sent = dict(not_sent)


_SAME_CODE: dict[Any, str] = {}
"""Stage function -> the digest of its source, as this worker read it."""


def _check_same_code(spec: Any, task: StageTask) -> None:
    """The worker's stage function must be the planner's (a stale copy of the project?).

    A function from a project file is the planner's already: :func:`_run_task` found
    that file the same as the main process's (``task.checked_files``). Others (from a
    module outside the project) are compared by their source.
    """
    from assay.codeprint import _normalized
    from assay.hashing import hash_value

    name = f"{spec.func.__module__}.{spec.func.__qualname__}"
    planned = task.code[1].get(name)
    if planned is None or planned.get("kind") != "function":
        return  # a pinned version, or code without source: nothing to compare
    code = getattr(spec.func, "__code__", None)
    if code is not None and os.path.abspath(code.co_filename) in task.checked_files:
        return  # its file is the main process's: so is its code
    if _SAME_CODE.get(spec.func) == planned["digest"]:
        return  # checked for an earlier task (reading and parsing the source is costly)
    try:
        source, _ = _normalized(spec.func)
    except (OSError, TypeError):
        return
    digest = hash_value(("function", source))
    _SAME_CODE[spec.func] = digest
    if digest != planned["digest"]:
        raise AssayError(
            f"Stage {spec.name!r} for {task.label!r}: the worker has other code for "
            f"{name} than the main process. Make sure every worker sees the same project "
            "files and package versions."
        )


_SAME_VALUES: dict[str, str | None] = {}
"""Module-level value (named as in a fingerprint's parts) -> its digest in this worker, taken
the first time a task of the run used it (``None``: not found here, nothing to compare)."""
_CHECKED_CODE: set[str] = set()
"""Code fingerprints (``StageTask.code``) whose values were all found the same, this run."""


def _check_same_values(spec: Any, task: StageTask) -> None:
    """The module-level values the stage uses must be the planner's in this worker too.

    The planner's fingerprint (``task.code``) holds the value of every module-level
    constant the stage reads, as the main process had it. A worker imports the modules
    itself: a value the main process changed after importing them (``CONFIG["scale"] =
    10`` in ``run()``) is the import-time one here, and the stage would compute another
    result under the key of the main process's. Each value is checked once per run and
    worker, when a task first uses it (a stage that changes it later, as a counter, does
    not count); each fingerprint once, so other tasks cost a set lookup.
    """
    digest, parts = task.code
    if not parts or digest in _CHECKED_CODE:
        return
    for name, planned in parts.items():
        if planned.get("kind") != "value":
            continue
        if name not in _SAME_VALUES:
            _SAME_VALUES[name] = _value_digest(name, task.project_root)
        found = _SAME_VALUES[name]
        if found is None or found == planned["digest"]:
            continue
        current = _current_value(name)
        here = _value_part(name, current, task.project_root) or {}
        if _module_of(name) in _EARLIER_MODULES:
            # This worker outlives runs: an earlier run's stages may have changed the value
            # (a counter, a memo they fill), which no new `assay run` process would see;
            # whether run() changed it in the main process cannot be told apart.
            _SAME_VALUES[name] = planned["digest"]  # said once a run
            log.warning(
                "Stage %r for parameter set %r uses the module-level value %s, which is %s "
                "in the main process but %s in this worker (pid %d), which imported its module "
                "in an earlier run: what that run's stages left there, or a change run() made "
                "in the main process, which workers do not see. Restart the cluster's workers "
                "to run with the values as imported; pass values a stage needs as parameters.",
                spec.name,
                task.label,
                name,
                planned.get("value", "?"),
                here.get("value", "?"),
                os.getpid(),
            )
            continue
        raise AssayError(
            f"Stage {spec.name!r} for parameter set {task.label!r} uses the module-level value "
            f"{name}, which is {planned.get('value', '?')} in the main process but "
            f"{here.get('value', '?')} in the worker (pid {os.getpid()}). Workers import the "
            "module themselves: a value changed after import (in run(), for instance) does not "
            "reach them, and the stage would compute with the import-time value and file its "
            "result under the main process's cache key. Set the value when the module is "
            "imported, or pass it to the stage as a parameter or a stage argument (or run "
            "without --parallel / --executor). A worker of an existing Dask cluster also keeps "
            "what an earlier run's stages changed: restart it if that is the cause."
        )
    _CHECKED_CODE.add(digest)


def _value_digest(name: str, root: str) -> str | None:
    """The digest of the module-level value ``name`` here, as the planner computes it."""
    part = _value_part(name, _current_value(name), root)
    return part["digest"] if part is not None else None


def _value_part(name: str, value: Any, root: str) -> dict | None:
    """The fingerprint's part for ``value`` under ``name`` (``None``: not a value part)."""
    from assay.codeprint import Fingerprinter, _is_plain_data

    if (
        value is _ABSENT
        # An object with runtime state (a logger, a stream, a connection) counts by its type
        # only, and may well be another one here (sys.stderr is the worker's own).
        or not _is_plain_data(value)
        # A random number generator (numpy's global one, behind `np.random.random`): its
        # state is another in every process by design (forked workers reseed numpy's).
        or type(value).__module__.startswith("numpy.random")
    ):
        return None
    if not _FINGERPRINTER:
        _FINGERPRINTER.append(Fingerprinter(root))
    parts: dict[str, dict] = {}
    try:
        _FINGERPRINTER[0]._use(name, value, parts, {})
    except Exception:  # the planner's is what counts: nothing to compare it with
        return None
    part = parts.get(name)
    return part if part is not None and part.get("kind") == "value" else None


_FINGERPRINTER: list = []
"""This run's :class:`~assay.codeprint.Fingerprinter` in this worker (see :func:`_value_part`)."""


_EARLIER_MODULES: set[str] = set()
"""The modules this worker had imported when the current run's first task came (empty in
the run that started it): those hold what earlier runs' stages left in them."""
_RUNS_SEEN = [0]
"""How many runs this worker process has served tasks of."""


def _module_of(name: str) -> str | None:
    """The imported module a fingerprint part's name (``module.NAME``, ...) starts with."""
    pieces = name.split(".")
    for end in range(len(pieces) - 1, 0, -1):
        if ".".join(pieces[:end]) in sys.modules:
            return ".".join(pieces[:end])
    return None


def _current_value(name: str) -> Any:
    """The value a fingerprint's part ``name`` (``module.NAME``, ``module.Class.attr``,
    ``module.alias.NAME``) describes, as this process has it; ``_ABSENT`` if not found (a
    closure's or a default's value, ``module.func.<default 0>``, is not looked for)."""
    pieces = name.split(".")
    if any(piece.startswith("<") for piece in pieces):
        return _ABSENT
    for end in range(len(pieces) - 1, 0, -1):
        module = sys.modules.get(".".join(pieces[:end]))
        if module is not None:
            break
    else:
        return _ABSENT
    value: Any = module
    for attribute in pieces[end:]:
        try:
            value = getattr(value, attribute)
        except Exception:
            return _ABSENT
    return value


class _ExternalNode:
    """Stands for a stage run that happened elsewhere; its outputs are in the cache."""

    status = "external"
    reason = ""

    def __init__(self, plan: Any, spec: Any, key: str):
        self.plan, self.spec, self.key = plan, spec, key
        self.consumers: list = []
        self.record_label = "upstream"
        self.volatile: list = []


def _place(manager: Any, record: Any, name: str, ref: Any) -> None:
    if not isinstance(ref, InputRef):
        dict.__setitem__(record.state, name, ref)
        return
    node = _ExternalNode(manager.runner.plan, ref.stage_wrapper.__assay_stage__, ref.stage_key)
    artifact = Artifact(node, ref.output, ref.index)
    artifact.cacher = ref.cacher
    artifact.cached = ref.cacher is not None
    if ref.cacher is not None:
        ref.cacher.record = record
    if ref.has_value:
        artifact.value = ref.value
    dict.__setitem__(record.state, name, artifact)


def _import_project(
    module_name: str, module_file: str | None, root: str, sources: dict[str, str]
) -> None:
    from assay import worker_code

    worker_code.use_root(root)
    worker_code.use_sources(sources, root)
    imported = sys.modules.get(module_name)
    if imported is not None:
        if module_file is None or _same_file(getattr(imported, "__file__", None), module_file):
            return
        # Another file's module of that name (a parameter file outside another project,
        # both called params.py): it, and what imported it, are imported again.
        worker_code.forget_project()
        sys.modules.pop(module_name, None)
    try:
        importlib.import_module(module_name)
    except ImportError:
        if module_file is None:
            raise
        spec = importlib.util.spec_from_file_location(module_name, module_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]  # half imported: the next task tries again
            raise


def _same_file(path: str | None, other: str) -> bool:
    if path is None:
        return False
    return path == other or os.path.realpath(path) == os.path.realpath(other)


class _ListHandler(logging.Handler):
    """Keeps a worker's log records as :class:`LogLine` events, for :func:`replay`."""

    def __init__(self, events: list, output: worker_output.OutputFile | None = None):
        super().__init__(logging.DEBUG)
        self.events, self.output = events, output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc_text = record.exc_text
            if record.exc_info and not exc_text:
                exc_text = _FORMATTER.formatException(record.exc_info)
            line = LogLine(
                record.levelno,
                record.name,
                record.getMessage(),
                exc_text or None,
                record.stack_info,
                record.pathname,
                record.lineno,
                record.funcName,
            )
            self.events.append(["log", line])
            if self.output is not None:
                self.output.add("log", line)
        except Exception:  # a broken log call must not fail the stage
            pass


_FORMATTER = logging.Formatter()
"""Formats a worker's tracebacks as the run's log file does (logging's default)."""


class _Stream(io.TextIOBase):
    """A worker's ``sys.stdout`` or ``sys.stderr`` while a stage runs: what is written
    goes to the task's events, tagged with the stream (see :func:`replay`), and to
    ``output`` (see :mod:`assay.worker_output`).

    It takes what the run's own streams take (text the run's log file, UTF-8, can
    hold; bytes through ``buffer``), so that a stage prints the same on a worker as in
    a serial run: ``sys.stdout.buffer`` was missing (an ``AttributeError`` that failed
    the stage), and text a serial run refuses (``"\\udcff"``, half of a character)
    failed the whole run, with a traceback, as the main process printed it.
    """

    def __init__(
        self,
        events: list,
        kind: str,
        output: worker_output.OutputFile | None = None,
        original: Any = None,
    ):
        super().__init__()
        self.events, self.kind, self.output = events, kind, output
        self.original = original
        """The worker's own stream, which writes to the run's console."""
        self._buffer: _BytesStream | None = None

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "strict"

    @property
    def buffer(self) -> _BytesStream:
        """Where a stage writes bytes (``sys.stdout.buffer.write(b"...")``)."""
        if self._buffer is None:
            self._buffer = _BytesStream(self)
        return self._buffer

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        """The worker's own stream's: a program a stage starts with ``stdout=sys.stdout``
        writes to the run's console, as in a serial run."""
        if self.original is None:
            raise io.UnsupportedOperation("fileno")
        return self.original.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            text.encode("utf-8")  # UnicodeEncodeError in the stage, as the run's log raises
            if self.events and self.events[-1][0] == self.kind:
                self.events[-1][1].append(text)
            else:
                self.events.append([self.kind, [text]])
            if self.output is not None:
                self.output.add(self.kind, text)
        return len(text)

    def flush(self) -> None:
        """Put what waits for a newline in the output file too (``print(..., end="",
        flush=True)``; a forked process flushes as it exits)."""
        if self.output is not None:
            self.output.flush()

    def close(self) -> None:
        """A stage that closes ``sys.stdout`` closes nothing: what it writes later still
        reaches the run, as in a serial run."""


class _BytesStream(io.RawIOBase):
    """The ``buffer`` of a worker's :class:`_Stream`: bytes, decoded as UTF-8 (what is not
    UTF-8 shows as U+FFFD, as a terminal shows it), go on with its text."""

    def __init__(self, text: _Stream):
        super().__init__()
        self.text = text
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.text.write(self.decoder.decode(data))
        return len(data)

    def close(self) -> None:
        """Closes nothing, as :meth:`_Stream.close`."""


def worker_id() -> str:
    """A short label of the current process, for logs."""
    return f"pid {os.getpid()}"


def task_module(task: StageTask, sources: dict[str, str], cwd: str) -> tuple:
    """What a worker must import before it can unpickle ``task``, and where: the arguments
    of :func:`run_task` after the task (``sources`` from :func:`worker_code.project_sources`)."""
    from assay.project import UNIMPORTABLE_PREFIX

    classes = [type(task.params), *(type(params) for params, _, _ in task.records)]
    own = {  # parameter files outside the project define classes no import finds by name
        c.__module__: getattr(sys.modules.get(c.__module__), "__file__", None)
        for c in classes
        if c.__module__.startswith(UNIMPORTABLE_PREFIX) and c.__module__ != task.module_name
    }
    modules = tuple((name, file) for name, file in own.items() if file)
    return task.module_name, task.module_file, task.project_root, sources, cwd, modules


def _use_cwd(cwd: str | None) -> None:
    """Work in the folder the run was started from, if this machine has it."""
    if not cwd:
        return
    try:
        if os.getcwd() == cwd:
            return
    except OSError:  # the folder this worker was in is gone (an earlier run's)
        pass
    if os.path.isdir(cwd):
        os.chdir(cwd)


def project_path(task: StageTask) -> Path:
    """The project folder of a task."""
    return Path(task.project_root)
