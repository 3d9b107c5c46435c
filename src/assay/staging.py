"""Stages: the ``@stage`` and ``@aggregate`` decorators and ``Lazy`` outputs.

A stage is a plain function that takes a :class:`~assay.Record` and the
artifacts it needs, and returns the artifacts it makes::

    @assay.stage(inputs=["data"], outputs=["model", "score"],
                 cachers=[PickleCacher, JsonCacher])
    def train(record, data):
        model = fit(data, n_trees=record.params.n_trees)
        return model, model.score(data)

Calling ``train(record)`` takes ``data`` from ``record.state``, and puts
``model`` and ``score`` back; it returns the record, so calls chain:
``train(load_data(record))``. Whether the function actually runs is the
cache's decision (see :mod:`assay.cache`): a stage whose outputs are all
cached is skipped, and its outputs are loaded only if a running stage needs
them. The decorators only describe the stage; the manager plans and runs it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.compat import names_curifactory_has
from assay.errors import (
    CachersMismatchError,
    EmptyCachersError,
    InputSignatureError,
    OutputSignatureError,
    StageError,
)
from assay.keys import OWN_ENTRIES

log = logging.getLogger("assay")

_NOT_HELD: Any = object()


class Lazy:
    """Mark an output as too big to keep in memory: ``outputs=[Lazy("model")]``.

    A lazy output is written to its cacher as soon as its stage returns and
    then dropped from memory; whoever needs it later (a running stage, or you
    reading ``record.state["model"]``) loads it from the cache again.

    With ``resolve=False``, stages and ``record.state`` get the ``Lazy`` object
    itself instead of the value, so a stage can work with the file directly
    (``big.cacher.get_path()``) or call ``big.load()``. With ``--dry-cache``
    nothing is written: ``cacher`` is then ``None`` and ``load()`` gives the
    value, which stays in memory.

    Each record gets its own ``Lazy`` object in its state; the one in the
    decorator is only a declaration.
    """

    def __init__(self, name: str, resolve: bool = True):
        self.name = name
        self.resolve = resolve
        self.cacher = None
        """The cacher holding this record's value (set once the value is cached)."""
        self._held: Any = _NOT_HELD

    def load(self) -> Any:
        """Load the value from its cacher, as any cached input is loaded: its files are
        checked against the sizes and checksums recorded when they were written first,
        and a file that was damaged or modified since is not read (``CorruptArtifactError``).
        """
        if self._held is not _NOT_HELD:
            return self._held
        if self.cacher is None:
            raise ValueError(f"Lazy output {self.name!r} has no cached value yet.")
        return _load_checked(self.cacher, self.name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f'Lazy("{self.name}")'


def _load_checked(cacher: Any, output: str) -> Any:
    """Output ``output`` loaded with ``cacher`` from the cache entry the cacher was
    placed in, through the cache's checked load; a corrupt entry is also removed (unless
    the cache is read-only, ``--dry-cache``), so that the next run computes it again."""
    from pathlib import Path

    from assay.errors import CorruptArtifactError

    folder, record = getattr(cacher, "_dir", None), getattr(cacher, "record", None)
    if folder is None or record is None:  # a cacher you set yourself: no record to check
        return cacher.load()
    manager = record.manager
    key = Path(folder).name  # a stage run's folder is named by its key
    try:
        return manager.cache.load(cacher, key, output)
    except CorruptArtifactError as exc:
        if manager.dry_cache:
            advice = f"--overwrite-stage {cacher.stage} computes it again."
        else:
            manager.cache.discard(key, output)
            advice = "It was removed from the cache: the next run computes it again."
        raise CorruptArtifactError(f"{exc} {advice}") from None


@dataclass
class StageSpec:
    """What the decorators know about one stage; the planner's view of it."""

    func: Callable
    name: str
    inputs: list[str]
    outputs: list[str | Lazy]
    cachers: list | None
    suppress_missing_inputs: bool = False
    is_aggregate: bool = False
    version: str | None = None
    """Set: the stage's code is out of its cache key; bump it to recompute."""
    deterministic: bool = True
    """False: the stage's outputs are never reused (it runs every time)."""
    output_names: list[str] = field(init=False)
    _identities: dict = field(init=False, default_factory=dict, repr=False)
    wrapper: Callable | None = field(init=False, default=None, repr=False)
    """The decorated function, as its module exposes it (how workers find the stage)."""
    checked: bool = field(init=False, default=False, repr=False)
    """Whether the declaration passed :func:`check_call`'s checks (they are made once)."""
    single_names: dict = field(default_factory=dict, repr=False)
    """``inputs`` or ``outputs`` given as one name rather than a list (refused at the call)."""

    def __post_init__(self) -> None:
        self.output_names = [str(o) for o in self.outputs]

    def output_identities(self, cachers: list) -> list:
        """``(output, cacher identity digest)`` pairs for the cache key, computed once."""
        signature = tuple(map(type, cachers))
        found = self._identities.get(signature)
        if found is None:
            from assay.keys import outputs_identity

            # Cachers come from the same declaration for every call of the stage.
            found = self._identities[signature] = outputs_identity(self.output_names, cachers)
        return found

    @functools.cached_property
    def sets_state(self) -> bool:
        """Whether the stage's own code puts values in ``record.state`` by hand (see
        :func:`writes_record_state`): on workers, the record's later stages then start
        after it, as they do after a stage without outputs."""
        return writes_record_state(self.func)

    def is_lazy(self, index: int) -> bool:
        """Whether output ``index`` is declared ``Lazy``."""
        return isinstance(self.outputs[index], Lazy)

    def lazy_resolves(self, index: int) -> bool:
        """Whether readers of lazy output ``index`` get its value (not the ``Lazy``)."""
        out = self.outputs[index]
        return not isinstance(out, Lazy) or out.resolve

    def split_outputs(self, returned: Any, label: str | None = None) -> tuple:
        """The values a stage returned, one per declared output, or a clear error (which
        names the parameter set ``label`` if given)."""
        count = len(self.outputs)
        if count == 0:
            return ()
        if returned is None and count == 1:
            where = f" for parameter set {label!r}" if label is not None else ""
            log.warning(
                "Stage %r%s returned None for its output %r (no `return`?); None is what "
                "the stages after it get, and what is cached.",
                self.name,
                where,
                self.output_names[0],
            )
        values = returned if isinstance(returned, tuple) else (returned,)
        if len(values) != count:
            got = f"a tuple of {len(values)}" if isinstance(returned, tuple) else "1 value"
            if isinstance(returned, list) and len(returned) == count:
                got = f"a list of {count} (one value: several outputs come as a tuple)"
            if returned is None:
                got = "None"
            where = f" for parameter set {label!r}" if label is not None else ""
            raise OutputSignatureError(
                f"Stage {self.name!r}{where} returned {got}, but it declares {count} output(s) "
                f"{self.output_names}. Return exactly one value per output "
                "(several outputs as a tuple: `return a, b`)."
            )
        return values


# Every stage defined in this process, by output name; used to suggest which
# stage could produce a missing input.
_PRODUCERS: dict[str, list[str]] = {}


_INPUTS: dict[str, list[str]] = {}  # stage name -> the inputs it declares


def producers_of(name: str) -> list[str]:
    """Names of the stages defined so far that declare an output called ``name``."""
    return list(_PRODUCERS.get(name, []))


def cycle_through(stage: str, producer: str) -> list[str] | None:
    """``[stage, producer, ..., stage]`` if ``producer`` (which outputs an input of
    ``stage``) needs, directly or through the stages that output its inputs, an output of
    ``stage``: a cycle no order of calls can satisfy. ``None`` if there is none."""
    seen: set[str] = set()
    paths = [[stage, producer]]
    while paths:
        path = paths.pop()
        if path[-1] == stage:
            return path
        if path[-1] in seen:
            continue
        seen.add(path[-1])
        for needed in _INPUTS.get(path[-1], ()):
            paths += [[*path, p] for p in _PRODUCERS.get(needed, ())]
    return None


def stage(
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str | Lazy] | None = None,
    cachers: Sequence | None = None,
    suppress_missing_inputs: bool = False,
    *,
    version: str | int | None = None,
    deterministic: bool = True,
) -> Callable[[Callable], Callable]:
    """Turn a function ``f(record, *inputs)`` into a stage of an experiment.

    Args:
        inputs: names of artifacts to take from ``record.state``; each is
            passed to the function as the keyword argument of that name.
            A keyword given at the call overrides the state:
            ``train(record, data=other_data)``.
        outputs: names (or :class:`Lazy` names) of what the function returns;
            several outputs are returned as a tuple.
        cachers: one cacher per output: a class from :mod:`assay.caching` (or
            your own :class:`~assay.caching.Cacheable` subclass), an instance of
            one (``JsonCacher(subdir="scores")``), or ``None`` for an output
            that is not cached; or ``cachers=None`` to cache nothing.
        suppress_missing_inputs: let the stage run when an input is missing
            from the state; the function's default for it is used (a call where
            such an input has no default is refused: ``InputSignatureError``).
        version: pin the stage's code: with a version, editing the function
            (or helpers it uses) no longer recomputes it; change the version
            to recompute. For edits you know do not change results.
        deterministic: ``False`` for stages whose results vary from run to
            run (unseeded randomness, timing): they execute every time, and
            so does everything downstream of them.

    The decorated function returns the record, so stages chain.
    """
    return _decorate(
        inputs,
        outputs,
        cachers,
        suppress_missing_inputs,
        is_aggregate=False,
        version=version,
        deterministic=deterministic,
    )


def aggregate(
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str | Lazy] | None = None,
    cachers: Sequence | None = None,
    *,
    version: str | int | None = None,
    deterministic: bool = True,
) -> Callable[[Callable], Callable]:
    """Turn ``f(record, records, *inputs)`` into a stage that combines many records.

    Call it as ``compare(assay.Record(manager, None), records)``; with
    ``records`` left out it receives every other record of the run created so
    far. Each input arrives as a ``dict[Record, value]`` over the records that
    have that artifact::

        @assay.aggregate(inputs=["score"], outputs=["best"])
        def pick_best(record, records, score):
            return max(score, key=score.get).params.name

    ``version`` and ``deterministic`` work as for :func:`stage`.
    """
    return _decorate(
        inputs,
        outputs,
        cachers,
        False,
        is_aggregate=True,
        version=version,
        deterministic=deterministic,
    )


def _decorate(
    inputs, outputs, cachers, suppress_missing_inputs, *, is_aggregate, version, deterministic
):
    def decorator(func: Callable) -> Callable:
        spec = StageSpec(
            func=func,
            name=func.__name__,
            inputs=list(inputs or []),
            outputs=list(outputs or []),
            cachers=_listed_cachers(cachers, func.__name__),
            suppress_missing_inputs=suppress_missing_inputs,
            is_aggregate=is_aggregate,
            version=None if version is None else str(version),
            deterministic=deterministic,
            single_names={
                what: given
                for what, given in (("inputs", inputs), ("outputs", outputs))
                if isinstance(given, (str, Lazy))
            },
        )
        for out in spec.output_names:
            _PRODUCERS.setdefault(out, []).append(spec.name)
        _INPUTS[spec.name] = list(spec.inputs)

        # The spec is read from the wrapper when it is called: IPython's %autoreload puts
        # an edited stage's attributes into the wrapper a notebook holds, not its closure.
        if is_aggregate:

            @functools.wraps(func)
            def wrapper(record, records=None, **kwargs):
                own = wrapper.__assay_stage__
                check_call(own, record, kwargs)
                return record.manager._call_stage(own, record, (), kwargs, records)

        else:

            @functools.wraps(func)
            def wrapper(record, *args, **kwargs):
                own = wrapper.__assay_stage__
                check_call(own, record, kwargs)
                return record.manager._call_stage(own, record, args, kwargs, None)

        wrapper.__assay_stage__ = spec
        spec.wrapper = wrapper
        return wrapper

    return decorator


def _listed_cachers(cachers: Any, stage_name: str) -> list | None:
    """``cachers`` as a list, or a :class:`StageError` when it is one cacher (or text)
    given where a list is meant: ``cachers=PickleCacher`` for ``cachers=[PickleCacher]``."""
    if cachers is None:
        return None
    if _is_cacheable(cachers):
        raise StageError(
            f"Stage {stage_name!r} has cachers={_show(cachers)}, but cachers takes a list "
            f"with one cacher per output: cachers=[{_show(cachers)}]."
        )
    if isinstance(cachers, (str, bytes)) or not isinstance(cachers, Iterable):
        raise StageError(
            f"Stage {stage_name!r} has cachers={_show(cachers)}, but cachers takes a list "
            f"with one cacher per output ({_WHAT_A_CACHER_IS}), e.g. cachers=[PickleCacher]."
        )
    return list(cachers)


_WHAT_A_CACHER_IS = "a class from assay.caching, an instance of one, or None"


def _is_cacheable(entry: Any) -> bool:
    """Whether ``entry`` is a cacher: a Cacheable subclass or an instance of one."""
    from assay.caching import Cacheable  # assay.caching imports this module

    if isinstance(entry, type):
        return issubclass(entry, Cacheable)
    return isinstance(entry, Cacheable)


def _class_of(entry: Any) -> type:
    return entry if isinstance(entry, type) else type(entry)


def _show(entry: Any) -> str:
    """A short text naming a cachers entry: ``int``, ``'pickle'``, ``JsonCacher(name=None)``,
    ``curifactory.caching.PickleCacher`` (a class from outside assay by its full name)."""
    if not isinstance(entry, type):
        try:
            text = repr(entry)
        except Exception:  # a broken __repr__ must not hide the real problem
            text = f"<{type(entry).__qualname__} object>"
        return text if len(text) <= 60 else text[:57] + "..."
    module = entry.__module__
    if module == "builtins" or module.partition(".")[0] == "assay":
        return entry.__qualname__
    return f"{module}.{entry.__qualname__}"


def check_call(spec: StageSpec, record: Any, kwargs: dict) -> None:
    """The checks Curifactory makes when a stage is called, made at the same moment.

    A declaration that cannot work (``cachers`` and ``outputs`` of different lengths,
    ``cachers=[]``, an input the function does not accept, ...) is refused when the
    stage is first called, not when its module is imported: a module that holds such a
    stage still imports, and ``except CachersMismatchError`` around the call catches
    it, as with Curifactory. The message says where the stage is defined.
    """
    if not spec.checked:
        _check_declaration(spec)
        spec.checked = True
    try:
        manager = record.manager
    except AttributeError:
        kind = "aggregate" if spec.is_aggregate else "stage"
        first = (
            "assay.Record(manager, None)" if spec.is_aggregate else "assay.Record(manager, params)"
        )
        raise _refused(
            InputSignatureError,
            spec,
            f"The {kind} {spec.name!r} was called with an object of type "
            f"{type(record).__name__} where a record goes: a stage takes a record first, made "
            f"as {first}, and returns it, so that stages chain: {spec.name}({first}).",
        ) from None
    lazy = [str(o) for o in spec.outputs if isinstance(o, Lazy)]
    if lazy and spec.cachers is None and not (manager.lazy or manager.ignore_lazy):
        raise _refused(
            OutputSignatureError,
            spec,
            f"Stage {spec.name!r} has Lazy outputs {lazy} but no cachers: a Lazy output is "
            "reloaded from its cacher, so give it one (for instance PickleCacher).",
        )
    if spec.suppress_missing_inputs and not spec.is_aggregate:
        # A stage before it that puts values in record.state by hand (its barrier) may
        # put an input there when it runs: the runner binds those then.
        later = record._barrier is not None
        absent = [
            name
            for name in spec.inputs
            if name not in kwargs and not (later or dict.__contains__(record.state, name))
        ]
        check_suppressed_inputs(spec, absent, record.name)


def check_suppressed_inputs(spec: StageSpec, absent: Iterable[str], label: str) -> None:
    """Refuse a call of a stage with ``suppress_missing_inputs=True`` whose inputs
    ``absent`` (not in the record, not passed) include one without a default value in
    the function's signature, as Curifactory does; ``label`` names the parameter set."""
    absent = list(absent)
    if not absent:
        return
    parameters = inspect.signature(spec.func).parameters
    no_default = [
        name
        for name in absent
        if name in parameters and parameters[name].default is inspect.Parameter.empty
    ]
    if not no_default:
        return
    first = no_default[0]
    raise _refused(
        InputSignatureError,
        spec,
        f"Stage {spec.name!r} for parameter set {label!r} is missing input(s) {no_default}: "
        "no earlier stage on the record made them and the call does not pass them. The "
        "stage suppresses missing inputs, so the function's defaults stand in, but "
        f"def {spec.name}{inspect.signature(spec.func)} has none for "
        f"{', '.join(no_default)}. Give such an input a default ({first}=None), pass it in "
        f"the call ({spec.name}(record, {first}=...)), or first call a stage that outputs it.",
    )


def _refused(kind: type[StageError], spec: StageSpec, message: str) -> StageError:
    """``kind(message)``, with where the stage is defined (the call raising it is not)."""
    code = getattr(spec.func, "__code__", None)
    if code is None:
        return kind(message)
    path = code.co_filename
    shown = _notebook_cell(path)
    if shown is None:
        try:
            shown = os.path.relpath(path)
        except ValueError:  # another drive
            shown = path
        if shown.startswith(os.pardir):
            shown = path
    return kind(f"{message} The stage is defined in {shown}, line {code.co_firstlineno}.")


def _notebook_cell(path: str) -> str | None:
    """``notebook cell In[3]`` for code typed into Jupyter or IPython, whose file is a
    temporary one of the kernel's (``/tmp/ipykernel_.../1234.py``); else ``None``."""
    if "IPython" not in sys.modules:
        return None
    try:
        shell = sys.modules["IPython"].get_ipython()
        named = shell.compile.format_code_name(path) if shell is not None else None
    except Exception:  # another IPython than the one this was written against
        return None
    return f"notebook cell {named[1]}" if named else None


def _check_cacher_entries(spec: StageSpec, kind: str) -> None:
    """Refuse cachers entries that are neither a cacher nor ``None``, naming each."""
    wrong = [
        (entry, name)
        for entry, name in zip(spec.cachers or (), spec.output_names)
        if entry is not None and not _is_cacheable(entry)
    ]
    if not wrong:
        return
    if len(wrong) == 1:
        ((entry, name),) = wrong
        message = (
            f"The cacher {_show(entry)} for output {name!r} of {kind} {spec.name!r} "
            f"is not a Cacheable ({_WHAT_A_CACHER_IS})."
        )
    else:
        listed = "; ".join(f"{_show(entry)} for output {name!r}" for entry, name in wrong)
        message = (
            f"{kind.capitalize()} {spec.name!r} has {len(wrong)} cachers that are not "
            f"Cacheables ({_WHAT_A_CACHER_IS}): {listed}."
        )
    message += (
        " Give each output a cacher class such as PickleCacher, an instance such as "
        "JsonCacher(subdir='scores'), or None to leave it uncached."
    )
    if any(_class_of(e).__module__.partition(".")[0] == "curifactory" for e, _ in wrong):
        message += " assay has its own cachers in place of Curifactory's: import them from "
        message += "assay.caching."
    raise _refused(StageError, spec, message)


def _check_declaration(spec: StageSpec) -> None:
    """Check what a stage's declaration says, whatever the call (see :func:`check_call`)."""
    kind = "aggregate" if spec.is_aggregate else "stage"
    if spec.single_names:
        what, given = next(iter(spec.single_names.items()))
        raise _refused(
            InputSignatureError if what == "inputs" else OutputSignatureError,
            spec,
            f"The {kind} {spec.name!r} declares {what}={given!r}: a single name, which "
            f"would be read letter by letter. Give a list: {what}=[{given!r}].",
        )
    if spec.cachers is not None:
        if len(spec.cachers) == 0 and len(spec.outputs) == 0:
            raise _refused(
                EmptyCachersError,
                spec,
                f"Stage {spec.name!r} has cachers=[]; with no outputs there is nothing to "
                "cache. Use cachers=None (the default).",
            )
        if len(spec.cachers) != len(spec.outputs):
            raise _refused(
                CachersMismatchError,
                spec,
                f"Stage {spec.name!r} declares {len(spec.outputs)} output(s) "
                f"{spec.output_names} but {len(spec.cachers)} cacher(s). Give one cacher per "
                "output (None for an output that should not be cached), or cachers=None.",
            )
        _check_cacher_entries(spec, kind)
    for name in spec.output_names:
        if (
            not name
            or name.startswith(".")
            or name in OWN_ENTRIES
            or any(c in name for c in "/\\\0")
        ):
            raise _refused(
                OutputSignatureError,
                spec,
                f"Stage {spec.name!r} declares an output named {name!r}: an output's name is "
                "the name of its files in the cache, so it must be non-empty, must not start "
                "with '.', must not contain '/' or '\\', and '_reportables' and '_state' are "
                "assay's own.",
            )
    duplicates = {n for n in spec.output_names if spec.output_names.count(n) > 1}
    if duplicates:
        raise _refused(
            OutputSignatureError,
            spec,
            f"Stage {spec.name!r} declares the output(s) {sorted(duplicates)} more than once.",
        )
    params = inspect.signature(spec.func).parameters
    positional = [
        p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    needed = 2 if spec.is_aggregate else 1
    if len(positional) < needed and not any(p.kind == p.VAR_POSITIONAL for p in params.values()):
        first = "(record, records, ...)" if spec.is_aggregate else "(record, ...)"
        raise _refused(
            InputSignatureError,
            spec,
            f"The {kind} {spec.name!r} must accept {first} as its first parameter(s).",
        )
    if spec.is_aggregate and len(positional) >= 2 and positional[1].name in spec.inputs:
        raise _refused(
            InputSignatureError,
            spec,
            f"The aggregate {spec.name!r} takes its input {positional[1].name!r} where the "
            "records it combines go: an aggregate's function is f(record, records, *inputs). "
            f"Add a `records` parameter: def {spec.name}(record, records, "
            f"{', '.join(p.name for p in positional[1:])}).",
        )
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())  # **kwargs
    missing = [name for name in spec.inputs if name not in params and not takes_any]
    if missing:
        unused = [p.name for p in positional[needed:] if p.name not in spec.inputs]
        close = {n: difflib.get_close_matches(n, unused, n=1) for n in missing}
        hints = "".join(
            f" Did you mean {close[n][0]!r} (inputs=[...{close[n][0]!r}...])?"
            for n in missing
            if close[n]
        )
        raise _refused(
            InputSignatureError,
            spec,
            f"The {kind} {spec.name!r} declares inputs {missing} that its function does not "
            f"accept.{hints} Otherwise add parameters named {', '.join(missing)} to "
            f"def {spec.name}{inspect.signature(spec.func)}.",
        )


def get_spec(func: Callable) -> StageSpec:
    """The :class:`StageSpec` of a decorated stage, or a clear error."""
    spec = getattr(func, "__assay_stage__", None)
    if spec is None:
        raise TypeError(f"{func!r} is not an assay stage; decorate it with @assay.stage(...).")
    return spec


_STATE_CHANGES = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__"})


def writes_record_state(func: Callable) -> bool:
    """Whether ``func``'s source changes the state of the record it takes first:
    ``record.state["n"] = ...`` (or ``+=``, ``del``), ``record.state.update(...)`` and
    the like, directly or through a name bound to ``record.state``.

    It reads the function's own text, not the helpers it calls; ``False`` when there
    is no source to read.
    """
    import ast

    from assay.sourcetext import source_and_tree

    try:
        _, tree = source_and_tree(func)
    except (OSError, TypeError, SyntaxError):
        return False
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    arguments = [*definition.args.posonlyargs, *definition.args.args]
    if not arguments:
        return False
    record = arguments[0].arg
    aliases: set[str] = set()  # names bound to record.state

    def is_state(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return (
                node.attr == "state"
                and isinstance(node.value, ast.Name)
                and node.value.id == record
            )
        return isinstance(node, ast.Name) and node.id in aliases

    for node in ast.walk(definition):
        if isinstance(node, ast.Assign) and is_state(node.value):
            aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(definition):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
            target = node.value  # record.state[...] = / += / del
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value if node.func.attr in _STATE_CHANGES else None
        else:
            continue
        if target is not None and is_state(target):
            return True
    return False


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
