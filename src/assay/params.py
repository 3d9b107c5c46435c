"""Parameter sets: the dataclasses that configure an experiment, and tools to vary them.

A parameter set is an instance of a dataclass deriving from
:class:`ExperimentParameters`. Its *name* is a label for people; its *hash*,
computed from every other field, is its identity for the cache::

    from dataclasses import dataclass, field
    import assay

    @dataclass
    class Params(assay.ExperimentParameters):
        seed: int = 42
        n_trees: int = 100
        n_jobs: int = field(default=4, metadata={"hash": False})  # never changes results

    def get_params():
        base = Params(name="forest")
        return assay.grid(base, n_trees=[10, 100], seed=[1, 2])  # 4 parameter sets

Composition and inheritance are plain Python: subclass a parameter class to add
fields, nest one dataclass in another, or import another parameter file and
``dataclasses.replace`` its sets.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import enum
import functools
import hashlib
import itertools
import math
import pathlib
import re
import traceback
import types
import typing
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.errors import AssayError, ParameterError
from assay.hashing import hash_value

__all__ = [
    "ExperimentParameters",
    "Params",
    "apply_overrides",
    "check_pinned_hashes",
    "check_unique_names",
    "describe",
    "diff_fields",
    "grid",
]

RESERVED_FIELDS = ("name", "hash", "overwrite", "hash_representations")
"""Fields of :class:`ExperimentParameters` that are bookkeeping, never part of the hash."""

_MAX_REPR = 200


@dataclass
class ExperimentParameters:
    """Base class of every parameter set; subclass it with ``@dataclass``.

    Example::

        @dataclass
        class Params(assay.ExperimentParameters):
            seed: int = 42
            model: ModelParams = field(default_factory=ModelParams)

    Every field except the four below enters the parameter set's hash, which
    decides which cached results a run may reuse. To keep a field out of the
    hash, or hash it through a representation of your choice, declare it with
    ``field(metadata={"hash": False})`` or ``field(metadata={"hash": func})``
    (``func(value)`` is hashed instead of the value), or use
    ``hash_representations``. Fields whose value is ``None`` do not enter the
    hash, so adding a new field that defaults to ``None`` keeps old caches valid.
    """

    name: str = "UNNAMED"
    """A label for this parameter set, shown in reports and used to pick sets with
    ``--names``. Not part of the hash; should be unique within a run."""

    hash: str | None = None
    """Leave as ``None`` to let assay compute the hash from the fields. Set it only to
    pin this set's cache identity by hand: it then replaces the computed hash."""

    overwrite: bool = False
    """When true, cached results of this parameter set are recomputed instead of reused."""

    hash_representations: dict[str, Callable[[Any, Any], Any] | None] = field(
        default_factory=dict, repr=False
    )
    """Field name -> ``function(params, value)`` whose result is hashed instead of the
    value, or -> ``None`` to leave the field out of the hash. Usually filled with
    :func:`assay.hashing.set_hash_functions`."""

    def _hash_fields(self) -> list[tuple[str, Any]]:
        """(field name, representation) pairs that enter the hash, sorted by name.

        Reserved fields and fields excluded by ``hash_representations`` or
        ``metadata={"hash": False}`` are left out; ``None`` values are skipped.
        """
        fields_by_name = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(self.hash_representations) - set(fields_by_name))
        if unknown:
            cls = type(self).__qualname__
            raise ParameterError(
                f"{cls}.hash_representations names {_quoted(unknown)}, but {cls} has no "
                f"such field.{_did_you_mean(unknown[0], fields_by_name)} "
                f"Valid fields: {', '.join(_settable_fields(self))}"
            )
        pairs = []
        for name in sorted(fields_by_name):
            if name in RESERVED_FIELDS:
                continue
            value = getattr(self, name)
            if name in self.hash_representations:
                represent = self.hash_representations[name]
                if represent is None:
                    continue
                value = self._represented(name, represent, self, value)
            elif value is not None:
                how = fields_by_name[name].metadata.get("hash", True)
                if how is False:
                    continue
                if callable(how):
                    value = self._represented(name, how, value)
            if value is not None:
                pairs.append((name, value))
        return pairs

    def _represented(self, name: str, function: Callable[..., Any], *args: Any) -> Any:
        """What ``function`` (field ``name``'s hash function) makes of ``args``; its
        failure (``file_checksum`` of a file that is not there) as a ParameterError that
        names the parameter set, the field and the value."""
        try:
            return function(*args)
        except AssayError:
            raise
        except Exception as exc:
            how = getattr(function, "__qualname__", repr(function))
            raise ParameterError(
                f"Parameter set '{self.name}' cannot be hashed: the hash function {how} of "
                f"its field '{name}' failed on {getattr(self, name)!r} "
                f"({type(exc).__name__}: {exc}). Correct the value, or how the field is "
                "hashed (metadata={'hash': ...} or hash_representations)."
            ) from exc

    def params_hash(self, dry: bool = False) -> str | dict[str, Any]:
        """This parameter set's hash: the ``hash`` field if set, else computed.

        The computed hash covers the class name and every hashed field, so two
        parameter classes with identical fields still hash differently. It is
        recomputed on every call: change a field and the hash follows.
        ``dry=True`` gives what is hashed instead, field by field (as Curifactory's).
        """
        if dry:
            return dict(self._hash_fields())
        if self.hash is not None:
            return self.hash
        try:
            return hash_value(self)
        except (TypeError, ValueError) as exc:  # a field holding a lock, a file, itself...
            raise ParameterError(
                f"Parameter set '{self.name}' cannot be hashed, and its hash keys its cached "
                f"results. {exc}"
            ) from exc

    def args_hash(self, dry: bool = False) -> str | dict[str, Any]:
        """Curifactory name of :meth:`params_hash`; ``dry=True`` shows what is hashed."""
        return self.params_hash(dry=dry)


Params = ExperimentParameters
"""Short alias of :class:`ExperimentParameters`."""


_RECORDED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
"""id -> parameter set a record was made from while ``run()`` plans: its fields may not
change until the plan is made (its stages, run after, would see other values than they
were keyed on). A live manager (a notebook) runs each stage as it is called: there a set
may change between calls."""


def _guarded_setattr(self: Any, name: str, value: Any) -> None:
    """``ExperimentParameters.__setattr__`` while some set is frozen: refuses a change of
    a frozen set's field, naming the line. Installed by :func:`freeze` and removed by
    :func:`thaw_all`, so that setting fields costs nothing extra the rest of the time."""
    if _RECORDED.get(id(self)) is self and name in _field_names(self):
        import sys

        from assay.plan import short_repr

        caller = sys._getframe(1)
        raise ParameterError(
            f"Parameter set {self.name!r} cannot change now (its field {name!r} set to "
            f"{short_repr(value, 40)} at {caller.f_code.co_filename}, line "
            f"{caller.f_lineno}): run() made a record from it, and the stages called "
            "on that record run once run() has called them all, keyed on the values the "
            f"set had. Set {name} before making the record, or make another set: "
            f"dataclasses.replace(params, {name}=...)."
        )
    super(ExperimentParameters, self).__setattr__(name, value)


def freeze(params: Any) -> None:
    """Refuse changes to ``params``'s fields until :func:`thaw_all` (a record was made
    from it while ``run()`` plans). Copies (``dataclasses.replace``, ``copy.deepcopy``)
    may change, being other sets."""
    try:
        _RECORDED[id(params)] = params
    except TypeError:  # a set with __slots__ and no weak references
        return
    if "__setattr__" not in ExperimentParameters.__dict__:
        ExperimentParameters.__setattr__ = _guarded_setattr  # type: ignore[method-assign]


def thaw_all() -> None:
    """The plan is made: parameter sets may change again (for another run)."""
    _RECORDED.clear()
    if "__setattr__" in ExperimentParameters.__dict__:
        del ExperimentParameters.__setattr__


def _field_names(params: Any) -> dict:
    return getattr(type(params), "__dataclass_fields__", {})


# -- helpers ------------------------------------------------------------------------------


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _did_you_mean(wrong: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(wrong, list(valid), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _settable_fields(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj) if f.name not in RESERVED_FIELDS]


_INDEX = re.compile(r"-?\d+")
"""A part of a field path that picks an item of a list or tuple (``layers.1.width``)."""


def field_path(dotted: str) -> list[str]:
    """The parts of a field path: ``layers.1.width`` and ``layers[1].width`` both give
    ``["layers", "1", "width"]`` (an index is a part of digits, ``-1`` counting from the end)."""
    return re.sub(r"\[\s*(-?\d+)\s*\]", r".\1", dotted.strip()).split(".")


def _is_index(part: str) -> bool:
    return _INDEX.fullmatch(part) is not None


def _is_sequence(obj: Any) -> bool:
    return isinstance(obj, (list, tuple))


def _position(obj: Any, part: str) -> int | None:
    """The position of the item of list or tuple ``obj`` that ``part`` of a field path
    picks: a number, or the name of a field of a named tuple (``point.x``)."""
    if _is_index(part):
        return int(part)
    names = getattr(obj, "_fields", ())
    return names.index(part) if part in names else None


def _check_path(base: Any, dotted: str) -> str | None:
    """Return a message if ``dotted`` does not name a field (or an item of a list of
    them) reachable from ``base``."""
    obj, walked = base, []
    for part in field_path(dotted):
        owner = ".".join([type(base).__qualname__, *walked])
        here = ".".join(walked)
        if _is_sequence(obj):
            index = _position(obj, part)
            if index is None and hasattr(obj, "_fields"):
                return (
                    f"{owner} has no field '{part}'.{_did_you_mean(part, obj._fields)} "
                    f"Valid fields: {', '.join(obj._fields)}"
                )
            if index is None:
                return (
                    f"'{owner}' is a {type(obj).__qualname__}: pick an item by its position "
                    f"first, as in --set {here}.0.{part}=VALUE"
                    + (f" (0 to {len(obj) - 1})" if obj else " (it is empty)")
                )
            if not -len(obj) <= index < len(obj):
                there = (
                    f"has {len(obj)} item{'' if len(obj) == 1 else 's'} "
                    f"(0 to {len(obj) - 1}, or -{len(obj)} to -1 from the end)"
                    if obj
                    else "is empty"
                )
                return (
                    f"'{owner}' {there}, so it has no item {index}. Set the whole "
                    f"{type(obj).__qualname__} in a parameter file to change its length"
                )
            obj = obj[index]
            walked.append(part)
            continue
        if _is_index(part) and walked:
            return (
                f"'{owner}' is not a list or tuple (it is {type(obj).__qualname__}), so it "
                f"has no item {part}: an index picks an item of a list, as in "
                f"--set layers.{part}.width=VALUE"
            )
        if _is_index(part):
            return (
                f"'{part}' is not a field name: start with a field of {owner}, as in "
                f"--set layers.{part}.width=VALUE (an index picks an item of a list field)"
            )
        if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            return (
                f"'{owner}' is a {type(obj).__qualname__}, not a dataclass, "
                f"so it has no field '{part}'"
            )
        valid = [f.name for f in dataclasses.fields(obj)]
        if walked == [] and part in RESERVED_FIELDS:
            return f"'{part}' is a reserved field and cannot be set this way"
        if part not in valid:
            shown = valid if walked else _settable_fields(obj)
            return (
                f"{owner} has no field '{part}'.{_did_you_mean(part, shown)} "
                f"Valid fields: {', '.join(shown)}"
            )
        obj = getattr(obj, part)
        walked.append(part)
    return None


def _replace_path(obj: Any, parts: Sequence[str], value: Any) -> Any:
    """Copy of ``obj`` with the field (or list item) at ``parts`` set to ``value``;
    ``obj`` is untouched."""
    head = parts[0]
    if _is_sequence(obj):
        items = list(obj)
        index = _position(obj, head)
        items[index] = _replace_path(items[index], parts[1:], value) if len(parts) > 1 else value
        return obj._make(items) if hasattr(obj, "_make") else type(obj)(items)
    if len(parts) > 1:
        value = _replace_path(getattr(obj, head), parts[1:], value)
    return dataclasses.replace(obj, **{head: value})


def _resolved_path(base: Any, dotted: str) -> str:
    """``dotted`` (a path :func:`_check_path` accepts) with each index counted from the
    start of its list: ``layers.-1.width`` of two layers is ``layers.1.width``."""
    obj, parts = base, []
    for part in field_path(dotted):
        if _is_sequence(obj):
            index = _position(obj, part) % len(obj)
            obj = obj[index]
            parts.append(str(index))
        else:
            obj = getattr(obj, part, None)
            parts.append(part)
    return ".".join(parts)


def _with_values(params: Any, values: dict[str, Any]) -> Any:
    """Copy of ``params`` with the (possibly dotted) fields in ``values`` replaced.

    A hand-set ``hash`` is dropped, since it no longer describes the new values. A value
    the class itself refuses (its ``__post_init__`` raises) is a :class:`ParameterError`
    that names the set, the values and where the class raised.
    """
    new = params
    try:
        for dotted, value in values.items():
            new = _replace_path(new, field_path(dotted), value)
    except AssayError:
        raise
    except Exception as exc:  # the class's own checks, or init=False fields
        raise ParameterError(_refused(params, values, exc)) from exc
    if isinstance(new, ExperimentParameters) and new.hash is not None and "hash" not in values:
        new = dataclasses.replace(new, hash=None)
    return new


def _refused(params: Any, values: dict[str, Any], exc: Exception) -> str:
    """Why parameter set ``params`` cannot take ``values``: the error its class raised
    (in ``__post_init__``, most often), with the line that raised it."""
    given = ", ".join(f"{field}={_short(value)}" for field, value in values.items())
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (raised at {frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return (
        f"parameter set {getattr(params, 'name', '?')!r} ({type(params).__qualname__}) "
        f"refuses {given}: {type(exc).__name__}: {exc}{where}. Give a value it accepts"
    )


def _short(value: Any) -> str:
    """A compact text form of a value, for generated parameter-set names."""
    if isinstance(value, enum.Enum):
        return str(value.name)
    if isinstance(value, float):
        return repr(float(value))  # 0.5, not np.float64(0.5)
    if isinstance(value, (set, frozenset)):
        # In an order of its own, not the set's (which differs from process to process).
        inner = ", ".join(sorted(map(repr, value)))
        text = f"{{{inner}}}" if isinstance(value, set) else f"frozenset({{{inner}}})"
        return _cut(text)
    if isinstance(value, functools.partial):
        given = [_short(a) for a in value.args] + [
            f"{k}={_short(v)}" for k, v in sorted(value.keywords.items())
        ]
        return _cut(f"{_short(value.func)}({', '.join(given)})")
    if isinstance(value, (type, Callable)) and hasattr(value, "__qualname__"):
        if "<" in value.__qualname__:  # a lambda, a local function: told apart by code
            return f"{value.__qualname__}-{hash_value(value)[:6]}"
        return value.__qualname__
    return _cut(str(value))


def _cut(text: str) -> str:
    """``text``, cut to :data:`_LONGEST_LABEL` with a hash of the whole if longer."""
    if len(text) <= _LONGEST_LABEL:
        return text
    # Cut, with a short hash of the whole text: values that differ only after the cut
    # still get different names (the names must be unique within a run).
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{text[: _LONGEST_LABEL - 11]}...{digest}"


_LONGEST_LABEL = 40
"""The longest text of one value in a generated name; longer ones are cut (with a hash)."""


# -- public functions ---------------------------------------------------------------------


def grid(base: Any, **axes: Iterable[Any]) -> list[Any]:
    """Every combination of the given values, applied to copies of ``base``.

    Each keyword names a field and lists its values; the result is the cartesian
    product, the first axis varying slowest. Nested dataclass fields are named
    with dots (pass them with ``**``). Names are generated from the base name::

        >>> sets = grid(Params(name="rf"), n_trees=[10, 100], seed=[1, 2])
        >>> [p.name for p in sets][:3]
        ['rf-n_trees=10-seed=1', 'rf-n_trees=10-seed=2', 'rf-n_trees=100-seed=1']
        >>> grid(Params(name="rf"), **{"model.depth": [3, 5]})[1].model.depth
        5

    ``base`` itself is never modified.

    Raises:
        ParameterError: an axis names no field of ``base`` (with the valid names
            and the closest match), or is not a non-empty list of values.
    """
    problems = []
    values: dict[str, list[Any]] = {}
    for axis, options in axes.items():
        problem = _check_path(base, axis)
        if problem is None and (isinstance(options, (str, bytes)) or not _iterable(options)):
            problem = f"expected a list of values, got {options!r}"
        if problem is None:
            values[axis] = list(options)
            if not values[axis]:
                problem = "the list of values is empty"
        if problem is not None:
            problems.append(f"axis '{axis}': {problem}")
    if problems:
        raise ParameterError(
            f"grid() over {type(base).__qualname__} '{getattr(base, 'name', '')}': "
            + "; ".join(problems)
        )
    result = []
    for combo in itertools.product(*values.values()):
        chosen = dict(zip(values, combo))
        try:
            new = _with_values(base, chosen)
        except ParameterError as exc:
            raise ParameterError(f"grid() over {type(base).__qualname__}: {exc}.") from exc
        label = "-".join(f"{axis}={_short(v)}" for axis, v in chosen.items())
        if hasattr(new, "name"):
            new = dataclasses.replace(new, name=f"{base.name}-{label}" if label else base.name)
        result.append(new)
    return result


def _iterable(obj: Any) -> bool:
    try:
        iter(obj)
    except TypeError:
        return False
    return True


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _parse_value(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw


_FLOAT_WORDS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}
"""Words that name floats Python writes without a literal (``float("inf")``)."""


def _is_float_word(text: str) -> bool:
    return text.strip().lower().lstrip("+-") in _FLOAT_WORDS


class _FloatWords(ast.NodeTransformer):
    """Turns the names ``inf``, ``infinity`` and ``nan`` (any case) into float constants."""

    def visit_Name(self, node: ast.Name) -> Any:
        value = _FLOAT_WORDS.get(node.id.lower())
        return node if value is None else ast.copy_location(ast.Constant(value), node)


def _parse_container(raw: str) -> Any:
    """``raw`` read as a Python literal, where ``inf`` and ``nan`` may stand for floats
    (``[0.1, inf]``); ``raw`` itself when it is no literal."""
    parsed = _parse_value(raw)
    if not isinstance(parsed, str):
        return parsed
    try:
        return ast.literal_eval(_FloatWords().visit(ast.parse(raw.strip(), mode="eval")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw


def _coerce(raw: str, current: Any) -> Any:
    """Turn the text of an override into a value of the current value's type.

    Raises ``ValueError`` with an explanation when that is impossible.
    """
    parsed = _parse_value(raw)
    if isinstance(current, bool):
        if isinstance(parsed, bool):
            return parsed
        if raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ValueError(f"expected a boolean (true/false, 1/0), got {raw!r}")
    if isinstance(current, enum.Enum):
        member = _member(type(current), raw)
        if member is not None:
            return member
        raise ValueError(f"expected one of {', '.join(type(current).__members__)}, got {raw!r}")
    if isinstance(current, int):
        if isinstance(parsed, float) and parsed.is_integer():
            parsed = int(parsed)
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            return type(current)(parsed)
        raise ValueError(f"expected an integer, got {raw!r}")
    if isinstance(current, float):
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return type(current)(parsed)  # a numpy float stays one (it hashes as one)
        if isinstance(parsed, str) and _is_float_word(raw):
            return type(current)(raw.strip())
        raise ValueError(f"expected a number, got {raw!r}")
    if isinstance(current, str):
        return parsed if isinstance(parsed, str) else raw
    if isinstance(current, pathlib.PurePath):
        return type(current)(parsed if isinstance(parsed, str) else raw)
    if current is not None and not isinstance(current, _LITERALS + (type(parsed),)):
        raise ValueError(_not_writable(type(current), raw, parsed))
    return parsed


def _member(kind: type[enum.Enum], text: str) -> enum.Enum | None:
    """The member of enum ``kind`` that ``text`` names: ``ADAM``, or ``Optimizer.ADAM`` as
    `assay params` shows it; ``None`` if none."""
    name = text.strip()
    prefix = f"{kind.__qualname__}."
    if name.startswith(prefix):
        name = name[len(prefix) :]
    return kind.__members__.get(name)


_LITERALS = (str, int, float, complex, bool, bytes, list, tuple, dict, set, frozenset)
"""The types of values ``--set`` writes (Python literals); others it cannot make."""


def _not_writable(kind: type, raw: str, parsed: Any) -> str:
    return (
        f"holds a {kind.__module__}.{kind.__qualname__}, which --set cannot make from text "
        f"({raw!r} would be {type(parsed).__name__} {parsed!r}): set this field in a "
        "parameter file (or give the set a field --set can write, such as a number or a "
        "name, and build the value from it)"
    )


def _coerce_field(raw: str, params: Any, dotted: str) -> Any:
    """The override's value for the field at ``dotted``: by its type annotation where it
    has one that says more than the current value (``Optional[str]``, ``list[int]``, a
    nested dataclass), else by the type of the current value. An item of a list
    (``sizes.1``) goes by the list's element annotation (``int`` of ``list[int]``)."""
    obj, annotation = params, Any
    for part in field_path(dotted):
        if _is_sequence(obj):
            index = _position(obj, part)
            if hasattr(obj, "_fields"):  # a named tuple: by its field's annotation
                annotation = _hints(type(obj)).get(obj._fields[index], Any)
            else:
                annotation = _item_annotation(annotation, index, len(obj))
            obj = obj[index]
            continue
        annotation = _hints(type(obj)).get(part, Any)
        obj = getattr(obj, part)
    return _coerce_to(raw, annotation, obj, dotted)


def _hints(cls: type) -> dict[str, Any]:
    """The annotations of ``cls``'s fields, resolved; none if one cannot be resolved here
    (then values go by their current type)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:
        return {}


def _item_annotation(annotation: Any, index: int, length: int) -> Any:
    """The annotation of item ``index`` of a sequence annotated ``annotation``
    (``X`` for ``list[X]``, ``tuple[X, ...]``, the matching one of ``tuple[A, B]``);
    ``Any`` when it does not say."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # Optional[list[X]]: the list's
        options = [a for a in args if a is not type(None)]
        return _item_annotation(options[0], index, length) if len(options) == 1 else Any
    if not args or not isinstance(origin, type) or not issubclass(origin, (list, tuple)):
        return Any
    if origin is tuple and args[-1] is not Ellipsis:
        return args[index] if len(args) == length and args != ((),) else Any
    return args[0]


def _coerce_to(raw: str, annotation: Any, current: Any, dotted: str = "FIELD") -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or isinstance(annotation, typing.TypeVar):
        return _coerce(raw, current)
    choices = _literal_choices(annotation)
    if choices is not None:
        return _choose(raw, choices)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and raw.strip() == "None":
            return None
        problems = []
        for option in (a for a in args if a is not type(None)):
            try:
                plain = typing.get_origin(option) or option
                same = current if isinstance(plain, type) and isinstance(current, plain) else None
                return _coerce_to(raw, option, same, dotted)
            except (ValueError, TypeError) as exc:
                problems.append(str(exc))
        raise ValueError(" or ".join(problems) if problems else f"cannot be set to {raw!r}")
    kind = origin or annotation
    if not isinstance(kind, type):
        return _coerce(raw, current)
    if dataclasses.is_dataclass(kind):
        raise ValueError(
            f"is a {kind.__qualname__}: set its fields one by one (--set {dotted}.NAME=VALUE)"
        )
    if kind in (list, tuple, set, frozenset):
        parsed = _parse_container(raw)
        if not isinstance(parsed, (list, tuple, set, frozenset)):
            raise ValueError(f"expected a {kind.__name__} such as [1, 2], got {raw!r}")
        return _items(parsed, kind, args)
    if kind is dict:
        parsed = _parse_container(raw)
        if not isinstance(parsed, dict):
            raise ValueError(f"expected a dict such as {{'a': 1}}, got {raw!r}")
        return _entries(parsed, args)
    if kind in (bool, int, float, str) or issubclass(kind, (enum.Enum, pathlib.PurePath)):
        sample = current if isinstance(current, kind) else _SAMPLES.get(kind)
        if sample is None and issubclass(kind, enum.Enum):
            sample = next(iter(kind))
        if sample is None:
            sample = kind(".")  # a path
        return _coerce(raw, sample)
    value = _coerce(raw, current)
    if not issubclass(kind, _LITERALS) and not isinstance(value, kind):
        raise ValueError(_not_writable(kind, raw, value))
    return value


_SAMPLES: dict[type, Any] = {bool: False, int: 0, float: 0.0, str: ""}


def _literal_choices(annotation: Any) -> tuple | None:
    """The values a ``Literal[...]`` annotation allows, or ``None`` for any other kind.

    ``Optional[Literal[...]]``, ``Literal[...] | None`` and unions of Literals count
    as one Literal (with ``None`` among its values); a union with any other type,
    such as ``int | Literal["auto"]``, does not.
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)
    if origin not in (typing.Union, types.UnionType):
        return None
    choices: list[Any] = []
    for option in typing.get_args(annotation):
        inner = (None,) if option is type(None) else _literal_choices(option)
        if inner is None:
            return None
        choices.extend(inner)
    return tuple(choices)


def _is_choice(value: Any, choice: Any) -> bool:
    """Whether ``value`` is ``choice`` of a Literal, type included (``True`` is not ``1``)."""
    return type(value) is type(choice) and value == choice


def _show_choices(choices: Iterable[Any]) -> str:
    """The values of a Literal as a user would type them: ``'a', 3, True, None, ADAM``."""
    return ", ".join(c.name if isinstance(c, enum.Enum) else repr(c) for c in choices)


def _choose(raw: str, choices: Sequence[Any]) -> Any:
    """The value among ``choices`` (those of a ``Literal[...]``) that an override's text
    names, or a ``ValueError`` that lists them.

    The text is first read as a Python literal, so with ``Literal[1, "1"]`` the text
    ``1`` gives the number and ``'1'`` the string. Failing that, it is converted as
    for a field holding each choice in turn: ``3.0`` for ``3``, ``true``/``yes`` for
    ``True``, a member's name for an enum member, bare text for a string.
    """
    text = raw.strip()
    parsed = _parse_value(text)
    for choice in choices:
        if _is_choice(parsed, choice):
            return choice
    for choice in choices:
        try:
            value = _coerce(text, choice)
        except ValueError:
            continue
        if _is_choice(value, choice):
            return choice
    raise ValueError(f"expected one of {_show_choices(choices)}, got {raw!r}")


def _element(item: Any, annotation: Any) -> Any:
    """One element of a container override (already parsed), checked against its type and
    converted as the field's own value would be: text to a path for ``Path`` elements, an
    integer to a float for ``float`` ones, containers element by element."""
    choices = _literal_choices(annotation)
    if choices is not None:
        if any(_is_choice(item, choice) for choice in choices):
            return item
        raise ValueError(f"expected items among {_show_choices(choices)}, got {item!r}")
    if annotation is Any or isinstance(annotation, typing.TypeVar):
        return item
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if item is None and type(None) in args:
            return None
        problems = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _element(item, option)
            except ValueError as exc:
                problems.append(str(exc))
        raise ValueError(" or ".join(problems) if problems else f"unexpected item {item!r}")
    kind = origin or annotation
    if not isinstance(kind, type):
        return item
    if kind in (list, tuple, set, frozenset):
        if not isinstance(item, (list, tuple, set, frozenset)):
            raise ValueError(f"expected {_type_name(annotation)} items, got {item!r}")
        return _items(item, kind, args)
    if kind is dict:
        if not isinstance(item, dict):
            raise ValueError(f"expected {_type_name(annotation)} items, got {item!r}")
        return _entries(item, args)
    if issubclass(kind, pathlib.PurePath) and isinstance(item, str):
        return kind(item)
    if issubclass(kind, enum.Enum) and isinstance(item, str) and _member(kind, item) is not None:
        return _member(kind, item)
    if kind is float and isinstance(item, int) and not isinstance(item, bool):
        return float(item)
    if kind is int and isinstance(item, bool) or not isinstance(item, kind):
        raise ValueError(f"expected {_type_name(annotation)} items, got {item!r}")
    return item


def _items(parsed: Any, kind: type, args: tuple) -> Any:
    """A ``kind`` (list, tuple, set, frozenset) of the elements of ``parsed``, each
    checked against the annotation's arguments ``args``."""
    items = list(parsed)
    element = args[0] if args and (kind is not tuple or args[-1] is Ellipsis) else None
    if element is not None:
        items = [_element(item, element) for item in items]
    elif kind is tuple and args and args != ((),):
        if len(args) != len(items):
            raise ValueError(f"expected {len(args)} values, got {parsed!r}")
        items = [_element(item, a) for item, a in zip(items, args)]
    return kind(items)


def _entries(parsed: dict, args: tuple) -> dict:
    """``parsed`` with its keys and values checked against ``dict[K, V]``'s ``args``."""
    if len(args) != 2:
        return parsed
    return {_element(k, args[0]): _element(v, args[1]) for k, v in parsed.items()}


def _type_name(annotation: Any) -> str:
    """``int``, ``list[int]``, ``Path``: an annotation as a user wrote it."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("pathlib.", "")


def split_override(text: str) -> tuple[str, str]:
    """``FIELD=VALUE`` (one ``--set``) as its field and its value's text.

    Raises:
        ParameterError: text that is not ``FIELD=VALUE`` (the message shows how to write it).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParameterError(
            f"Cannot understand the override {text!r}: write it as FIELD=VALUE, "
            f"e.g. --set n_trees=500, --set model.depth=3 or --set layers.1.width=64."
        )
    return key, raw


def apply_overrides(param_sets: Iterable[Any], overrides: Sequence[str]) -> list[Any]:
    """Apply command-line overrides such as ``--set n_trees=500`` to every parameter set.

    Each override is ``FIELD=VALUE``; nested dataclass fields use dots
    (``model.depth=3``), and a number picks an item of a list or tuple
    (``layers.1.width=64``, also written ``layers[1].width=64``; ``-1`` is the
    last item). The value is read as a Python literal (``3``, ``0.5``,
    ``[1, 2]``, ``'text'``), or kept as text when it is not one, and converted
    to the type of the field's current value when that is a bool, int, float,
    str, enum or path (``true``/``false``/``1``/``0`` for booleans). A field
    annotated ``Literal["sgd", "adam"]`` (or ``Optional[Literal[...]]``) takes
    only those values (``Literal[1, 2]`` turns ``2`` into the number). Returns new
    parameter sets; the given ones are not modified. A hand-set ``hash`` is
    dropped from the new sets, since it no longer describes their values.

    Raises:
        ParameterError: an override is malformed, names an unknown field (with
            the closest match) or an item a list does not have, has a value of
            the wrong type, or gives a field another one gives too (``layers.-1``
            and ``layers.1`` are one item of a list of two). All problems
            are reported at once.
    """
    param_sets = list(param_sets)
    parsed = [split_override(text) for text in overrides]
    problems: list[str] = []
    result = []
    for params in param_sets:
        values: dict[str, Any] = {}
        given: dict[str, str] = {}  # field (its items counted from the start): the override
        for (key, raw), text in zip(parsed, overrides):
            problem = _check_path(params, key)
            if problem is None:
                field = _resolved_path(params, key)
                message = None
                if field in given:  # layers.-1 and layers.1 of two layers, or n twice
                    message = f"--set gives {field} twice ({given[field]} and {text}): give it once"
                given[field] = text
                try:
                    values[key] = _coerce_field(raw, params, key)
                except ValueError as exc:
                    problem = f"{type(params).__qualname__}.{key}: {exc}"
                if message is not None and message not in problems:
                    problems.append(message)
            if problem is not None:
                message = f"--set {text}: {problem}"
                if message not in problems:
                    problems.append(message)
        if not problems:
            try:
                result.append(_with_values(params, values))
            except ParameterError as exc:
                problems.append(str(exc))
    if problems:
        raise ParameterError("Cannot apply overrides: " + "; ".join(problems))
    return result


def _flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted field name: value}, descending into nested dataclasses, and into the items
    of a list or tuple of them as ``--set`` names them (``layers.0.width``).

    Reserved fields are left out, except the top-level ``name``.
    """
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        if f.name in RESERVED_FIELDS and (prefix or f.name != "name"):
            continue
        value = getattr(params, f.name)
        if _is_instance(value):
            flat.update(_flatten(value, f"{prefix}{f.name}."))
        elif _is_sequence(value) and value and all(_is_instance(item) for item in value):
            for index, item in enumerate(value):
                flat.update(_flatten(item, f"{prefix}{f.name}.{index}."))
        else:
            flat[f"{prefix}{f.name}"] = value
    return flat


def _is_instance(value: Any) -> bool:
    """``value`` is a dataclass instance (not a dataclass)."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _same(a: Any, b: Any) -> bool:
    try:
        return hash_value(a) == hash_value(b)
    except (TypeError, ValueError):
        return _display(a) == _display(b)


_MISSING = object()


def diff_fields(param_sets: Sequence[Any]) -> list[str]:
    """Names of the fields whose values differ between parameter sets.

    Nested dataclass fields are named with dots (``model.depth``); ``name``,
    ``hash``, ``overwrite`` and ``hash_representations`` are not compared. Fields
    appear in the order they are declared (fields that only some sets have come
    after those of the first set). ``assay params`` uses it to show how a run's
    parameter sets differ::

        >>> diff_fields(grid(Params(), seed=[1, 2]))
        ['seed']
    """
    flats = []
    for params in param_sets:
        flat = _flatten(params)
        flat.pop("name", None)
        flats.append(flat)
    if len(flats) < 2:
        return []
    order = list(dict.fromkeys(key for flat in flats for key in flat))
    differing = []
    for key in order:
        first = flats[0].get(key, _MISSING)
        for other in flats[1:]:
            value = other.get(key, _MISSING)
            if (first is _MISSING) != (value is _MISSING) or not _same(first, value):
                differing.append(key)
                break
    return differing


def _display(value: Any) -> Any:
    """A JSON-safe, readable form of one parameter value."""
    if isinstance(value, enum.Enum):
        text = f"{type(value).__qualname__}.{value.name}"
    elif value is None or isinstance(value, (bool, int)):
        return value
    elif isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        kind = "class" if isinstance(value, type) else "function"
        text = f"<{kind} {getattr(value, '__module__', '?')}.{value.__qualname__}>"
    elif isinstance(value, functools.partial):  # its repr holds a memory address
        text = f"partial {getattr(value.func, '__module__', '?')}.{_short(value)}"
    elif isinstance(value, (set, frozenset)):  # in an order of its own, as in names
        inner = "{" + ", ".join(sorted(map(repr, value))) + "}"
        text = inner if isinstance(value, set) else f"frozenset({inner})"
    elif hasattr(value, "shape") and (hasattr(value, "dtype") or hasattr(value, "dtypes")):
        # An array or a frame: its shape, and a digest of its content, so that two runs
        # whose values differ show it (`assay compare`).
        kind = f", dtype={value.dtype}" if hasattr(value, "dtype") else ""
        text = f"{type(value).__name__}(shape={tuple(value.shape)}{kind}, #{_digest(value)})"
    else:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ must not break provenance
            text = f"<{type(value).__qualname__}>"
        # A memory address differs in every run: shown, two runs of one set would seem to
        # differ (`assay compare`). A digest of the value's content stands in for it.
        text = _ADDRESS.sub(lambda _: f" #{_digest(value)}", text)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _digest(value: Any) -> str:
    """The first 8 characters of a value's hash, or ``?`` if it cannot be hashed."""
    try:
        return hash_value(value)[:8]
    except (TypeError, ValueError):
        return "?"


def describe(params: Any) -> dict[str, Any]:
    """A flat, JSON-safe description of a parameter set, for provenance and display.

    Keys are field names (dotted for nested dataclasses, and for the items of a list or
    tuple of them: ``layers.0.width``, as ``--set`` names them; ``name`` first); values
    are kept when they are plain JSON values and otherwise shown as short text:
    arrays as ``ndarray(shape=(100, 3), dtype=float64, #1c0e2f4a)`` (with a digest
    of their content, so that ``assay compare`` sees two that differ), functions by
    qualified name, sets in sorted order, anything else by ``repr`` cut at 200
    characters::

        >>> describe(Params(name="rf", seed=1))
        {'name': 'rf', 'seed': 1, 'n_trees': 100}
    """
    return {key: _display(value) for key, value in _flatten(params).items()}


def read_item_by_item(field: str, text: Any) -> dict[str, Any] | None:
    """A list or tuple of dataclasses as :func:`describe` showed it before it showed one item
    by item: one field holding its repr. Read back, it is keyed as ``describe`` keys it now::

        >>> read_item_by_item("layers", "[Layer(width=32, act='relu'), Layer(width=64)]")
        {'layers.0.width': 32, 'layers.0.act': 'relu', 'layers.1.width': 64}

    ``None`` when ``text`` is not such a repr or does not read back whole (cut short at
    200 characters, or holding a value that is no Python literal, such as an enum member),
    so that ``assay compare`` can match a run recorded then with one recorded now.
    """
    if not isinstance(text, str):
        return None
    try:
        node = ast.parse(text, mode="eval").body
        if not _is_list_of_calls(node):
            return None
        return _read_repr(field, node)
    except (SyntaxError, ValueError, TypeError, RecursionError):
        return None


def item_by_item_as_in(values: dict[str, Any], other: Iterable[str]) -> dict[str, Any]:
    """``values`` (a :func:`describe` of a parameter set, as a run recorded it) with each
    list of dataclasses recorded as one repr (``layers``, as runs recorded before
    ``describe`` showed them item by item) read back item by item when the keys ``other``
    (another run's) show it so (``layers.0.width``...) and it reads back to the same keys;
    then the two compare field by field. Anything else is left as recorded."""
    other = set(other)
    shown: dict[str, Any] = {}
    for key, value in values.items():
        items = None if key in other else read_item_by_item(key, value)
        if items is not None and set(items) != {k for k in other if k.startswith(f"{key}.")}:
            items = None
        shown.update(items if items is not None else {key: value})
    return shown


def _is_list_of_calls(node: ast.AST) -> bool:
    return (
        isinstance(node, (ast.List, ast.Tuple))
        and bool(node.elts)
        and all(isinstance(item, ast.Call) for item in node.elts)
    )


def _read_repr(key: str, node: ast.AST) -> dict[str, Any]:
    """{dotted key: displayed value} of one value of a dataclass repr, as :func:`_flatten`
    keys it: a dataclass by its fields, a list or tuple of them by position."""
    if isinstance(node, ast.Call):
        if node.args or any(keyword.arg is None for keyword in node.keywords):
            raise ValueError(f"{key} is no dataclass repr")
        parts = [(keyword.arg, keyword.value) for keyword in node.keywords]
    elif _is_list_of_calls(node):
        parts = [(str(index), item) for index, item in enumerate(node.elts)]
    else:
        return {key: _display(ast.literal_eval(node))}
    flat: dict[str, Any] = {}
    for name, value in parts:
        flat.update(_read_repr(f"{key}.{name}", value))
    return flat


def check_unique_names(param_sets: Iterable[Any], origins: Sequence[str] | None = None) -> None:
    """Raise :class:`ParameterError` if two parameter sets share a name.

    Names select parameter sets (``--names``) and label their results, so they
    must be unique within a run. The message lists each duplicated name with
    where it occurs: ``origins[i]`` says where set ``i`` comes from (``item 0 of
    get_params() in params/a.py``), else its position in ``param_sets``. The name
    ``aggregate`` is refused too: it labels the results of aggregate stages.
    """
    names = [getattr(p, "name", None) for p in param_sets]
    where = list(origins) if origins is not None else []
    if len(where) != len(names):
        where, origins = [f"position {i}" for i in range(len(names))], None
    wrong = [(i, n) for i, n in enumerate(names) if not isinstance(n, str)]
    if wrong:
        i, name = wrong[0]
        raise ParameterError(
            f"The parameter set at {where[i]} is named {name!r} ({type(name).__name__}): "
            f"names must be text. Use name={str(name)!r}."
        )
    counts = Counter(names)
    duplicates = [n for n in counts if counts[n] > 1]
    if duplicates:
        if origins is None:
            details = "; ".join(
                f"'{n}' at positions {', '.join(str(i) for i, m in enumerate(names) if m == n)}"
                for n in duplicates
            )
        else:
            details = "; ".join(
                f"'{n}' by {' and '.join(where[i] for i, m in enumerate(names) if m == n)}"
                for n in duplicates
            )
        sources = {_source(where[i]) for i, m in enumerate(names) if m in duplicates}
        remedy = (
            "Give each parameter set its own `name=` (in those files), or leave out one "
            "of the parameter files (-p)."
            if len(sources) > 1
            else "Give each parameter set its own `name=`."
        )
        raise ParameterError(
            f"Parameter-set names must be unique, but {len(duplicates)} "
            f"{'name is' if len(duplicates) == 1 else 'names are'} used more than once: "
            f"{details}. {remedy}"
        )
    folders: dict[str, str] = {}
    for name in names:
        claim_folder(folders, name)


def check_pinned_hashes(param_sets: Iterable[Any]) -> None:
    """Raise :class:`ParameterError` if two parameter sets have the same hand-set ``hash``
    but different values: the hash keys their cached results, so one would get the
    other's. ``dataclasses.replace`` copies a hand-set hash with the fields it keeps, so
    sets made from one pinned set share it unless given their own."""
    first: dict[str, Any] = {}
    for params in param_sets:
        pinned = getattr(params, "hash", None)
        if pinned is None or not isinstance(params, ExperimentParameters):
            continue
        other = first.setdefault(pinned, params)
        if other is params or _same(other, params):
            continue
        differ = ", ".join(diff_fields([other, params])) or "their classes"
        raise ParameterError(
            f"Parameter sets {other.name!r} and {params.name!r} have the same hand-set hash "
            f"{pinned!r} but differ ({differ}), and the hash keys their cached results: one "
            "would get the other's. Give each its own hash=, or leave hash=None for assay to "
            "compute it (dataclasses.replace copies a hand-set hash)."
        )


def _source(origin: str) -> str:
    """The file part of an origin (``item 0 of get_params() in params/a.py``)."""
    return origin.rpartition(" in ")[2] if " in " in origin else ""


_safe: Callable[[str], str] | None = None
RESERVED_FOLDERS = {
    "aggregate": "aggregate stages",
    "none": "stages run on records made without a parameter set",
}
"""Folder names (and labels) no parameter set may use, and whose results they hold."""
_LONGEST_FOLDER = 255
_AGGREGATE_FOLDER = re.compile(r"aggregate-[0-9a-f]{8}")
"""An aggregate's folder (see :func:`assay.cache.aggregate_label`)."""


def claim_folder(folders: dict[str, str], name: str) -> None:
    """Note that parameter set ``name`` files its results under its folder name in
    ``folders`` (folder name -> set name); raise :class:`ParameterError` if another
    name already has that folder."""
    global _safe
    if _safe is None:  # assay.cache is imported on first use, not with assay
        from assay.cache import _safe
    try:
        name.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate, from a badly decoded file name
        raise ParameterError(
            f"Parameter set {name!r} has a name that is not valid text: it holds "
            f"{exc.object[exc.start : exc.end]!r} at position {exc.start}, half of a character "
            "(often left by decoding bytes with errors='surrogateescape'), which no file, "
            "log or report can hold. Give it a name of whole characters."
        ) from None
    folder = _safe(name)
    reserved = "aggregate" if _AGGREGATE_FOLDER.fullmatch(folder) else folder
    if reserved in RESERVED_FOLDERS:
        raise ParameterError(
            f"A parameter set is named {name!r}, but the name {folder!r} is reserved for "
            f"{RESERVED_FOLDERS[reserved]}: their results are filed under "
            f"by-name/EXPERIMENT/{folder}, and the set's would be mixed with them (in "
            "assay cache ls, lineage, reports). Rename the parameter set (its name= field)."
        )
    if len(folder.encode()) > _LONGEST_FOLDER:
        raise ParameterError(
            f"Parameter set {name[:60]!r}... has a name of {len(name)} characters, too long "
            f"for the folder its results are filed under (by-name/EXPERIMENT/NAME; a folder "
            f"name has at most {_LONGEST_FOLDER} bytes on most file systems). Give it a "
            "shorter name."
        )
    other = folders.setdefault(folder, name)
    if other != name:
        raise ParameterError(
            f"Parameter sets {other!r} and {name!r} would share the cache folder "
            f"by-name/EXPERIMENT/{_safe(name)} (in folder names, characters other than "
            "letters, digits and -_.=+,@ become _), so one would find the other's "
            "results. Rename one of them."
        )
