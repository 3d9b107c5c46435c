"""Stable hashing of parameter values, for cache keys that survive restarts.

A parameter set's hash decides which cached artifacts a run may reuse, so it must
be *stable*: the same values give the same hash in every process, on every
machine and under every ``PYTHONHASHSEED``, and different values give different
hashes. :func:`hash_value` gets there by walking an object the way a pickler
does and feeding a type-tagged, length-prefixed description of it into one
streaming xxh3-128 hasher. Nothing depends on ``id()``, ``hash()`` or the order
in which a set was filled, nor, by default, a dict: equal dicts hash alike, as
a parameter set's hash must. ``dict_order=True`` makes a dict's order count,
for cache keys (a stage iterating a dict sees its order); values without a
dict of two items or more hash the same either way.

What is understood out of the box: ``None``, booleans, numbers, strings, bytes,
tuples, lists, dicts, sets, enums, paths, dates, times and time zones, type
expressions (``list[int]``, ``int | str``),
``Decimal``, ``Fraction``, ``UUID``, ranges, slices, compiled patterns,
exceptions, classes and functions (by qualified name and source code), static
and class methods, ``functools.partial``, dataclasses (including assay
parameter sets), numpy arrays and scalars, and pandas frames, series and
indexes. Anything else is hashed through its ``__getstate__`` or its
``__dict__`` and ``__slots__``, or can say how it wants to be hashed by
defining ``__assay_hash__``::

    class Tokenizer:
        def __assay_hash__(self):
            return (self.vocabulary_file, self.lowercase)

numpy and pandas are never imported by this module, nor are ``datetime``,
``decimal``, ``fractions``, ``re`` and ``uuid``: an object can only be a numpy array
(or a date) if numpy (or datetime) is already loaded, so the check costs
nothing otherwise.

The exact bytes fed to the hasher are a compatibility contract: changing them
changes every hash and silently invalidates every user's cache. The test
``test_hashes_stay_the_same`` pins them.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import inspect
import io
import linecache
import os
import pathlib
import struct
import sys
import types
from collections.abc import Callable
from typing import Any

import xxhash

from assay.compat import names_curifactory_has
from assay.errors import AssayError
from assay.sourcetext import normalized_expression, normalized_source

__all__ = [
    "Hasher",
    "UnhashableError",
    "args_hash",
    "file_checksum",
    "hash_value",
    "set_hash_functions",
]

_FORMAT_VERSION = b"assay-hash-1\x00"
"""Written first into every hash; bump it only to invalidate every cache on purpose."""

_HINT = (
    "Tell assay how to hash it: leave the field out of the hash (`field(default=..., "
    "metadata={'hash': False})`, or `hash_representations: dict = "
    "set_hash_functions(my_field=None)`), or give a function that returns what identifies "
    "the value, the same in every run (`metadata={'hash': lambda f: f.name}` for an open "
    "file); not `repr`, which for most such objects holds a memory address, so that no run "
    "would reuse another's results. Or define `__assay_hash__(self)` on the class."
)
"""The advice that follows "cannot hash": ways that give the same hash in every run."""

_BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)
_BUILTIN_VALUE_TYPES = (
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    tuple,
    list,
    dict,
    set,
    frozenset,
)
_OBJECT_GETSTATE = getattr(object, "__getstate__", None)  # Python >= 3.11 only


class _WalkError(Exception):
    """Internal: an error raised while walking, which collects where it happened."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.path: list[str] = []


class _Unhashable(_WalkError, TypeError):
    pass


class UnhashableError(TypeError):
    """A value holds an object assay cannot hash (a lock, an open file, ...).

    The message says where the object sits and how to tell assay to hash it, as a
    parameter set's field; ``path`` (where in the value hashed: ``"[0].lock"``, or
    ``""`` for the value itself) and ``detail`` (what is wrong with the object,
    without advice) let a caller give advice of its own, as for a value passed to a
    stage.
    """

    def __init__(self, root: str, path: str, detail: str) -> None:
        super().__init__(f"Cannot hash {root}{path}: {detail} {_HINT}")
        self.path = path
        self.detail = detail


def _is_ndarray_backed(obj: Any) -> bool:
    """A pandas array kept in a numpy array of pandas' compiled ``NDArrayBacked`` class
    (``pd.Categorical``, ``DatetimeArray``, ``PeriodArray``, ...), whose ``vars()`` is empty."""
    try:
        from pandas._libs.arrays import NDArrayBacked
    except ImportError:  # a pandas without it: such arrays fall to the general rules
        return False
    return isinstance(obj, NDArrayBacked)


def _is_zone_info(obj: Any) -> bool:
    """A ``zoneinfo.ZoneInfo``, whose state is out of reach of its attributes. Time zones
    of other libraries (dateutil's, pytz's) are Python objects hashed by their state."""
    zoneinfo = sys.modules.get("zoneinfo")
    return zoneinfo is not None and isinstance(obj, zoneinfo.ZoneInfo)


def _is_open_stream(obj: Any) -> bool:
    """A file or stream object, whose attributes (``{'mode': 'r'}``) do not tell it from
    another: hashed by them, every open file would be the same value. In-memory buffers
    (``io.StringIO``, ``io.BytesIO``) hash by their content and are not among them."""
    return isinstance(obj, io.IOBase) and not isinstance(obj, (io.StringIO, io.BytesIO))


class _Cyclic(_WalkError, ValueError):
    pass


class _FieldHashFailed(_WalkError, ValueError):
    pass


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def _type_name(cls: type) -> str:
    return cls.__qualname__


def _value_type_name(cls: type) -> str:
    """The name a value's class enters its hash by: with its module, so that two classes
    of one name in two modules (``sgd.Options`` and ``adam.Options``, an enum ``Kind`` in
    each) give two values that code may tell apart (``isinstance``) two hashes."""
    return f"{_module_name(cls)}.{cls.__qualname__}"


def _module_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    if module is None:
        module = getattr(getattr(obj, "__objclass__", None), "__module__", None)
    # A script re-imported by a spawned worker process is called "__mp_main__" there.
    return "__main__" if module == "__mp_main__" else str(module)


@functools.lru_cache(maxsize=4096)
def _cached_source(_filename: str | None, target: Any) -> str | None:
    try:
        return normalized_source(target)[0]
    except (OSError, TypeError, SyntaxError):
        return None


def _normalized_source(obj: Any) -> str | None:
    """Source of a class or function without comments, docstrings or layout, as stage
    code is compared (:func:`assay.sourcetext.normalized_source`)."""
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):  # a class's `__code__` is its instances' (FunctionType)
        return _cached_source(code.co_filename, code)
    return _cached_source(None, obj)


@functools.lru_cache(maxsize=4096)
def _source_lines(_filename: str, code: types.CodeType) -> str | None:
    """The lines a lambda sits on, without blank and comment lines (when its columns are
    not known)."""
    try:
        lines, _ = inspect.getsourcelines(code)
    except (OSError, TypeError):
        return None
    kept = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return "\n".join(kept)


def _lambda_source(obj: Any, separator: str = " ") -> str | None:
    """A lambda's own expression, not the whole line it sits on (Python 3.11+).

    Editing the rest of the line (another argument of the call the lambda is
    passed to, say) then leaves its hash alone. Before 3.11 code objects do
    not record columns, and the line is used. The lines of a lambda written on
    several are joined by ``separator``.
    """
    code = obj.__code__
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return _source_lines(code.co_filename, code)
    spans = [p for p in positions() if None not in p and p[2:] != (0, 0)]
    lines = linecache.getlines(code.co_filename)
    if not spans or not lines:
        return _source_lines(code.co_filename, code)
    first_line, _, first_col, _ = min(spans, key=lambda p: (p[0], p[2]))
    last_line = max(p[1] for p in spans)
    last_col = max(p[3] for p in spans if p[1] == last_line)
    if last_line > len(lines):
        return _source_lines(code.co_filename, code)
    if first_line == last_line:
        return lines[first_line - 1][first_col:last_col]
    parts = [lines[first_line - 1][first_col:]]
    parts += lines[first_line : last_line - 1]
    parts.append(lines[last_line - 1][:last_col])
    return separator.join(part.strip() for part in parts)


def _code_fingerprint(code: types.CodeType) -> tuple:
    consts = tuple(
        _code_fingerprint(c) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    return (code.co_code, code.co_names, code.co_varnames, consts)


_TYPE_FORMS = (types.GenericAlias, types.UnionType)
"""Type expressions, ``list[int]`` and ``int | str``, hashed by their parts (their
attributes are those of the class they stand for: ``mappingproxy``). The ``typing``
module's forms (``typing.List[int]``) are objects whose state holds their parts."""


class _Walker:
    """Feeds the type-tagged serialization of objects into one xxh3-128 stream."""

    def __init__(self, active: set[int] | None = None, dict_order: bool = False) -> None:
        self._h = xxhash.xxh3_128()
        self._w = self._h.update
        self._active: set[int] = set() if active is None else active
        self._dict_order = dict_order

    # -- primitives -------------------------------------------------------------------

    def _len(self, n: int) -> None:
        self._w(_u64(n))

    def _blob(self, data: bytes | bytearray | memoryview) -> None:
        self._w(_u64(len(data)))
        self._w(data)

    def _text(self, s: str) -> None:
        self._blob(s.encode("utf-8", "surrogatepass"))

    def _sub_digest(self, obj: Any) -> bytes:
        sub = _Walker(self._active, self._dict_order)
        sub.walk(obj)
        return sub._h.digest()

    def _child(self, obj: Any, where: str) -> None:
        try:
            self.walk(obj)
        except _WalkError as exc:
            exc.path.insert(0, where)
            raise

    def _enter(self, obj: Any, kind: str) -> int:
        key = id(obj)
        if key in self._active:
            raise _Cyclic(f"a {kind} that contains itself cannot be hashed")
        self._active.add(key)
        return key

    # -- dispatch ---------------------------------------------------------------------

    def walk(self, obj: Any) -> None:
        exact = _EXACT.get(type(obj))
        if exact is not None:
            exact(self, obj)
        elif not (
            self._declared(obj)
            or ("numpy" in sys.modules and self._numpy(obj))
            or ("pandas" in sys.modules and self._pandas(obj))
            or self._structured(obj)
            or self._stdlib_value(obj)
            or self._callable(obj)
        ):
            self._object_state(obj)

    def _declared(self, obj: Any) -> bool:
        """Objects that say how to hash them, enum members and classes."""
        cls = type(obj)
        if isinstance(obj, _TYPE_FORMS):  # before classes: `list[int]` is one in Python 3.10
            self._w(b"Y")
            self._text(_type_name(cls))
            self._child(getattr(obj, "__origin__", None), ".__origin__")
            self._child(obj.__args__, ".__args__")
        elif isinstance(obj, type):
            self._type(obj)
        elif getattr(cls, "__assay_hash__", None) is not None:
            self._w(b"x")
            self._text(_value_type_name(cls))
            self._child(obj.__assay_hash__(), ".__assay_hash__()")
        elif isinstance(obj, enum.Enum):
            self._w(b"e")
            self._text(_value_type_name(cls))
            self._text(obj.name or "")  # None: a combination of flags without a name
            self._child(obj.value, ".value")  # `ADAM = 0.001` becoming 0.5 is a new value
        else:
            return False
        return True

    def _structured(self, obj: Any) -> bool:
        """Dataclass instances, and subclasses of builtin types (e.g. namedtuples)."""
        cls = type(obj)
        if dataclasses.is_dataclass(obj):
            self._dataclass(obj)
        elif isinstance(obj, _BUILTIN_VALUE_TYPES):
            self._w(b"K")
            self._text(_value_type_name(cls))
            if isinstance(obj, collections.OrderedDict):  # unequal in another order
                self._mapping(obj, in_order=True)
                return True
            base = next(b for b in cls.__mro__ if b in _EXACT)
            _EXACT[base](self, obj)
        else:
            return False
        return True

    # -- builtin values ---------------------------------------------------------------

    def _none(self, obj: None) -> None:
        self._w(b"N")

    def _singleton(self, obj: Any) -> None:
        self._w(b"E" if obj is Ellipsis else b"X")

    def _bool(self, obj: bool) -> None:
        self._w(b"?\x01" if obj else b"?\x00")

    def _int(self, obj: int) -> None:
        self._w(b"i")
        self._blob(int(obj).to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))

    def _float(self, obj: float) -> None:
        self._w(b"f")
        self._w(b"nan" if obj != obj else struct.pack("<d", obj))

    def _complex(self, obj: complex) -> None:
        self._w(b"c")
        self._float(obj.real)
        self._float(obj.imag)

    def _str(self, obj: str) -> None:
        self._w(b"s")
        self._text(obj)

    def _bytes(self, obj: bytes) -> None:
        self._w(b"b")
        self._blob(obj)

    def _bytearray(self, obj: bytearray) -> None:
        self._w(b"B")
        self._blob(obj)

    def _memoryview(self, obj: memoryview) -> None:
        self._w(b"m")
        self._blob(obj.cast("B") if obj.c_contiguous else obj.tobytes())

    def _tuple(self, obj: tuple) -> None:
        self._w(b"t")
        self._len(len(obj))
        for i, item in enumerate(obj):
            self._child(item, f"[{i}]")

    def _list(self, obj: list) -> None:
        key = self._enter(obj, "list")
        self._w(b"l")
        self._len(len(obj))
        for i, item in enumerate(obj):
            self._child(item, f"[{i}]")
        self._active.discard(key)

    def _dict(self, obj: dict) -> None:
        self._mapping(obj, in_order=self._dict_order)

    def _mapping(self, obj: dict, in_order: bool) -> None:
        """A dict's items, in its order or sorted by their keys' digests."""
        key = self._enter(obj, "dict")
        self._w(b"d")
        self._len(len(obj))
        items = []
        for k, v in obj.items():
            try:
                items.append((self._sub_digest(k), k, v))
            except _WalkError as exc:
                exc.path.insert(0, f" (a key {_short_repr(k)})")
                raise
        if not in_order:
            items.sort(key=lambda item: item[0])
        for digest, k, v in items:
            self._w(digest)
            self._child(v, f"[{_short_repr(k)}]")
        self._active.discard(key)

    def _set(self, obj: set | frozenset) -> None:
        self._w(b"S" if isinstance(obj, set) else b"F")
        self._len(len(obj))
        digests = []
        for item in obj:
            try:
                digests.append(self._sub_digest(item))
            except _WalkError as exc:
                exc.path.insert(0, f" (an element {_short_repr(item)})")
                raise
        for digest in sorted(digests):
            self._w(digest)

    # -- standard library values ------------------------------------------------------

    def _stdlib_value(self, obj: Any) -> bool:
        if isinstance(obj, pathlib.PurePath):
            self._w(b"p")
            self._text(obj.as_posix())
        elif isinstance(obj, range):
            self._w(b"R")
            self._int(obj.start)
            self._int(obj.stop)
            self._int(obj.step)
        elif isinstance(obj, slice):
            self._w(b"L")
            self._child((obj.start, obj.stop, obj.step), "")
        elif isinstance(obj, BaseException):
            self._exception(obj)
        else:
            return self._imported_stdlib_value(obj)
        return True

    def _exception(self, obj: BaseException) -> None:
        """An exception, by its class, the arguments it is rebuilt from (``__reduce__``:
        ``OSError``'s file name too) and its attributes. Its message is in none of its
        attributes: hashed by them alone, ``ValueError("a")`` was ``ValueError("b")``."""
        key = self._enter(obj, "exception")
        self._w(b"!")
        self._text(_value_type_name(type(obj)))
        try:
            reduced = obj.__reduce__()
        except Exception:  # a class that cannot be pickled: its arguments, as they are
            reduced = None
        rebuilt = reduced[1] if isinstance(reduced, tuple) and len(reduced) > 1 else None
        self._child(rebuilt if isinstance(rebuilt, tuple) else tuple(obj.args), ".args")
        try:
            self._mapping(getattr(obj, "__dict__", {}), in_order=False)
        except _WalkError as exc:
            exc.path.insert(0, ".__dict__")
            raise
        self._active.discard(key)

    def _imported_stdlib_value(self, obj: Any) -> bool:
        """Dates, decimals, fractions, UUIDs and compiled patterns, each checked only if its
        module is loaded."""
        loaded = sys.modules
        if "datetime" in loaded and self._datetime(obj, loaded["datetime"]):
            return True
        if "decimal" in loaded and isinstance(obj, loaded["decimal"].Decimal):
            self._w(b"$")
            self._text(str(obj))
        elif "fractions" in loaded and isinstance(obj, loaded["fractions"].Fraction):
            self._w(b"q")
            self._int(obj.numerator)
            self._int(obj.denominator)
        elif "uuid" in loaded and isinstance(obj, loaded["uuid"].UUID):
            self._w(b"u")
            self._text(obj.hex)
        elif "re" in loaded and isinstance(obj, loaded["re"].Pattern):
            self._w(b"G")  # (`re.compile("a", re.I)` matches what "a" alone does not)
            self._child(obj.pattern, ".pattern")
            self._int(obj.flags)
        else:
            return False
        return True

    def _datetime(self, obj: Any, dt: types.ModuleType) -> bool:
        if isinstance(obj, dt.timedelta):
            self._w(b"r")
            self._int(obj.days)
            self._int(obj.seconds)
            self._int(obj.microseconds)
            nanoseconds = getattr(obj, "nanoseconds", 0)  # pandas' Timedelta
            if nanoseconds:
                self._int(nanoseconds)
            return True
        if isinstance(obj, dt.datetime):  # before date: a datetime is a date
            self._w(b"D")
        elif isinstance(obj, dt.date):
            self._w(b"a")
        elif isinstance(obj, dt.time):
            self._w(b"h")
        elif isinstance(obj, dt.timezone) or _is_zone_info(obj):
            self._time_zone(obj, dt)
            return True
        else:
            return False
        self._text(obj.isoformat())
        zone = getattr(obj, "tzinfo", None)
        if zone is not None:
            # The offset the text shows is not the zone: New York and a fixed -05:00 agree
            # in January and part in June (`start + timedelta(days=180)`).
            self._text(str(zone))
            self._int(getattr(obj, "fold", 0))
        return True

    def _time_zone(self, zone: Any, dt: types.ModuleType) -> None:
        """A standard library time zone (``ZoneInfo("Europe/Paris")``, ``timezone.utc``),
        by its name as a zoned datetime's hash holds it and, for a fixed one, its offset
        (two fixed zones may share a name: ``timezone(timedelta(hours=-5), "EST")``)."""
        self._w(b"Z")
        self._text(_value_type_name(type(zone)))
        self._text(str(zone))
        try:
            offset = zone.utcoffset(None)
        except Exception:  # a zone that needs a datetime to tell its offset
            offset = None
        self._child(offset if isinstance(offset, dt.timedelta) else None, ".utcoffset(None)")

    # -- classes and callables --------------------------------------------------------

    def _type(self, obj: type) -> None:
        self._w(b"y")
        self._text(_module_name(obj))
        self._text(obj.__qualname__)
        source = _normalized_source(obj)
        self._text("" if source is None else source)

    def _callable(self, obj: Any) -> bool:
        if isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, types.MethodType):
            self._w(b"M")
            self._child(obj.__func__, ".__func__")
            self._child(obj.__self__, ".__self__")
        elif isinstance(obj, (staticmethod, classmethod)):
            # Its attributes are the name, module and docstring it copies from its function:
            # hashed by them, a static method was the same value after an edit of its code.
            self._w(b"W")
            self._text(_type_name(type(obj)))
            self._child(obj.__func__, ".__func__")
        elif isinstance(obj, functools.partial):
            self._w(b"P")
            self._child(obj.func, ".func")
            self._child(obj.args, ".args")
            try:  # keyword arguments: their order changes nothing
                self._mapping(obj.keywords, in_order=False)
            except _WalkError as exc:
                exc.path.insert(0, ".keywords")
                raise
        elif isinstance(obj, _BUILTIN_CALLABLES):
            self._w(b"j")
            self._text(_module_name(obj))
            self._text(getattr(obj, "__qualname__", getattr(obj, "__name__", "")))
            bound_to = getattr(obj, "__self__", None)
            if bound_to is None or isinstance(bound_to, types.ModuleType):
                self._w(b"N")
            else:
                self._child(bound_to, ".__self__")
        elif isinstance(obj, types.ModuleType):
            self._w(b"o")
            self._text(obj.__name__)
        else:
            return False
        return True

    def _function(self, obj: types.FunctionType) -> None:
        module, qualname = _module_name(obj), obj.__qualname__
        if id(obj) in self._active:  # e.g. a nested function that calls itself
            self._w(b"H")
            self._text(module)
            self._text(qualname)
            return
        key = self._enter(obj, "function")
        self._w(b"g")
        self._text(module)
        self._text(qualname)
        is_lambda = obj.__name__ == "<lambda>"
        if is_lambda:
            source = _lambda_source(obj, "\n")
            source = None if source is None else normalized_expression(source)
        else:
            source = _normalized_source(obj)
        self._text("" if source is None else source)
        if source is None or is_lambda:
            # Several lambdas on one line share their source line; the code tells them apart.
            self._child(_code_fingerprint(obj.__code__), ".__code__")
        self._child(obj.__defaults__, ".__defaults__")
        self._child(obj.__kwdefaults__, ".__kwdefaults__")
        cells = []
        for cell in obj.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # a cell not filled yet
                cells.append(None)
        self._child(tuple(cells), ".__closure__")
        self._active.discard(key)

    # -- dataclasses and other objects ------------------------------------------------

    def _dataclass(self, obj: Any) -> None:
        key = self._enter(obj, "dataclass instance")
        hash_fields = getattr(obj, "_hash_fields", None)
        if callable(hash_fields):  # an assay ExperimentParameters
            self._w(b"Q")
            pairs = hash_fields()
            if self._dict_order and isinstance(getattr(obj, "name", None), str):
                # What a stage's key hashes: a set held in a field is data, its name too
                # (`record.params.data.name` picks the data set to load).
                pairs = [*pairs, ("name", obj.name)]
            # By its class's name alone: a parameter set keeps its hash when its class
            # moves to another file, or runs as __main__ in a notebook.
            self._text(_type_name(type(obj)))
        else:
            self._w(b"C")
            pairs = _dataclass_hash_fields(obj)
            self._text(_value_type_name(type(obj)))
        self._len(len(pairs))
        for name, value in pairs:
            self._text(name)
            self._child(value, f".{name}")
        self._active.discard(key)

    def _object_state(self, obj: Any) -> None:
        cls = type(obj)
        sympy = sys.modules.get("sympy")
        if sympy is not None and isinstance(obj, sympy.Basic):
            # A symbolic expression keeps its parts in slots (its __getstate__() is None):
            # hashed by its exact printed form, symbols' assumptions included.
            self._w(b"Y")
            self._text(sympy.srepr(obj))
            return
        if _is_open_stream(obj):
            raise _Unhashable(
                f"an open file or stream ('{_module_name(cls)}.{cls.__qualname__}') cannot be "
                "hashed: its attributes do not say which file it reads."
            )
        getstate = getattr(cls, "__getstate__", None)
        if getstate is not None and getstate is not _OBJECT_GETSTATE:
            try:
                state = obj.__getstate__()
            except Exception as exc:  # a multiprocessing Queue or Lock: "only through inheritance"
                raise _Unhashable(
                    f"assay cannot see the state of an object of type "
                    f"'{_module_name(cls)}.{cls.__qualname__}': its __getstate__() raised "
                    f"{type(exc).__name__}: {exc}."
                ) from exc
            if state is None and not hasattr(obj, "__dict__"):
                raise _Unhashable(
                    f"assay cannot see the state of an object of type "
                    f"'{_module_name(cls)}.{cls.__qualname__}' (its __getstate__() gives "
                    "None), so it cannot tell one such object from another."
                )
        elif slots := _slot_values(obj):
            # Attributes kept in slots (a subclass of a class with __slots__ has both):
            # hashed by its __dict__ alone, `Point(1)` and `Point(2)` were one value.
            state = {**getattr(obj, "__dict__", {}), **slots}
        elif hasattr(obj, "__dict__"):
            state = vars(obj)
        else:
            raise _Unhashable(
                f"assay does not know how to hash an object of type "
                f"'{_module_name(cls)}.{cls.__qualname__}'."
            )
        key = self._enter(obj, f"'{cls.__qualname__}' object")
        self._w(b"O")
        self._text(_value_type_name(cls))
        if type(state) is dict:  # attributes: the order they were set in changes nothing
            self._mapping(state, in_order=False)
        else:
            self._child(state, "")
        self._active.discard(key)

    # -- numpy ------------------------------------------------------------------------

    def _numpy(self, obj: Any) -> bool:
        import numpy as np

        if isinstance(obj, np.ndarray):
            self._ndarray(obj)
        elif isinstance(obj, np.generic):
            self._w(b"k")
            self._dtype(obj.dtype)
            if obj.dtype.hasobject:
                self._child(obj.item(), ".item()")
            else:
                data = obj.tobytes()
                kept = _field_bytes(obj.dtype)
                if kept is not None:  # a structured scalar's padding
                    data = bytes(b if keep else 0 for b, keep in zip(data, kept))
                self._blob(data)
        elif isinstance(obj, np.dtype):
            self._w(b"z")
            self._dtype(obj)
        elif isinstance(obj, np.ufunc):
            self._w(b"U")
            self._text(obj.__name__)
        elif isinstance(obj, (np.random.Generator, np.random.BitGenerator)):
            self._random_generator(obj)
        else:
            return False
        return True

    def _random_generator(self, obj: Any) -> None:
        """A numpy random generator, by its bit generator's state: the numbers it will draw.
        (``Generator.__getstate__()`` gives ``None``: hashed by it, every seed was alike.)"""
        bits = getattr(obj, "bit_generator", obj)
        self._w(b"R")
        self._text(_type_name(type(obj)))
        self._text(_type_name(type(bits)))
        self._child(bits.state, ".bit_generator.state")

    def _dtype(self, dtype: Any) -> None:
        self._text(dtype.str)
        self._text("" if dtype.fields is None else repr(dtype.descr))

    def _ndarray(self, arr: Any) -> None:
        import numpy as np

        self._w(b"n")
        self._text("" if type(arr) is np.ndarray else _type_name(type(arr)))
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        self._dtype(arr.dtype)
        self._len(arr.ndim)
        for n in arr.shape:
            self._len(n)
        if arr.dtype.hasobject:
            key = self._enter(arr, "object array")
            for i, item in enumerate(arr.ravel(order="C")):
                self._child(item, f".flat[{i}]")
            self._active.discard(key)
        else:
            flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
            kept = _field_bytes(arr.dtype)
            if kept is not None:  # a structured array's padding: whatever memory held
                flat = np.where(np.resize(kept, flat.size), flat, np.uint8(0))
            self._len(flat.size)
            self._w(flat)  # the array's memory itself: no copy when already contiguous
        if isinstance(arr, np.ma.MaskedArray):
            self._ndarray(np.ma.getmaskarray(arr))

    # -- pandas -----------------------------------------------------------------------

    def _pandas(self, obj: Any) -> bool:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            self._w(b"1")
            self._pd_index(obj.columns)
            self._pd_index(obj.index)
            for i in range(obj.shape[1]):
                self._pd_values(obj.iloc[:, i], f".iloc[:, {i}]")
        elif isinstance(obj, pd.Series):
            self._w(b"2")
            self._child(obj.name, ".name")
            self._pd_index(obj.index)
            self._pd_values(obj, ".values")
        elif isinstance(obj, pd.Index):
            self._pd_index(obj)
        elif _is_ndarray_backed(obj):
            # Categorical, DatetimeArray, PeriodArray, ...: their values live in a slot of
            # pandas' compiled base class, out of reach of their attributes.
            self._w(b"5")
            self._text(_type_name(type(obj)))
            self._pd_values(pd.Series(obj, copy=False), ".values")
        elif isinstance(obj, pd.Period):
            # Its attributes hold only a cache of its frequency; the period is the ordinal.
            self._w(b"4")
            self._text(obj.freqstr)
            self._child(obj.ordinal, ".ordinal")
        else:
            return False
        return True

    def _pd_index(self, index: Any) -> None:
        import pandas as pd

        self._w(b"3")
        self._text(_type_name(type(index)))
        self._child(list(index.names), ".names")
        if isinstance(index, pd.RangeIndex):
            self._child(range(index.start, index.stop, index.step), "")
        elif isinstance(index, pd.MultiIndex):
            # (pandas 3's text levels are "str" where pandas 2's were "object")
            self._child([_pandas_2_name(d) for d in index.dtypes], ".dtypes")
            self._ndarray(pd.util.hash_pandas_object(index, index=False).to_numpy())
        else:
            self._pd_values(index, ".index")

    def _pd_values(self, values: Any, where: str) -> None:
        """Hash a Series' or Index's dtype and values, at memory speed where possible."""
        import numpy as np
        import pandas as pd

        dtype = values.dtype
        if str(dtype) == "str":
            # pandas 3 gives text this dtype where pandas 2 gave it ``object``: hashed as
            # such object text is (pandas hashes both alike), so a frame keeps its key.
            self._text("object")
            self._ndarray(pd.util.hash_pandas_object(values, index=False).to_numpy())
            return
        self._text(str(dtype))
        if isinstance(dtype, pd.CategoricalDtype):  # "category" says neither of these
            self._child(bool(dtype.ordered), ".dtype.ordered")
            self._pd_index(dtype.categories)
        if isinstance(dtype, np.dtype) and not dtype.hasobject:
            self._ndarray(values.to_numpy())
            return
        if isinstance(dtype, np.dtype):  # object: text, with missing values or not, is fast
            kind = pd.api.types.infer_dtype(values, skipna=True)
            if kind not in ("string", "bytes", "empty"):
                self._child(np.asarray(values, dtype=object), where)
                return
            if kind == "bytes":  # pandas hashes b"a" as it hashes "a"
                self._text("bytes")
        self._ndarray(pd.util.hash_pandas_object(values, index=False).to_numpy())


def _field_bytes(dtype: Any) -> Any:
    """For a structured dtype with padding (``align=True``, the view ``table[["a", "c"]]``
    keeps, with ``b``'s bytes between them), which bytes of an item belong to a field
    (a numpy bool array of ``itemsize``); ``None`` when every byte does. Padding holds
    what the memory held before (``np.empty``, a copy of such a view): hashed, equal
    arrays got other hashes from one run to the next."""
    import numpy as np

    def kept(dt: Any) -> Any:
        if dt.names is None:
            if dt.subdtype is not None:
                base, shape = dt.subdtype
                return np.tile(kept(base), int(np.prod(shape)))
            return np.ones(dt.itemsize, dtype=bool)
        found = np.zeros(dt.itemsize, dtype=bool)
        for name in dt.names:
            field, offset = dt.fields[name][:2]
            found[offset : offset + field.itemsize] |= kept(field)
        return found

    if dtype.names is None and (dtype.subdtype is None or dtype.base.names is None):
        return None
    mask = kept(dtype)
    return None if mask.all() else mask


def _pandas_2_name(dtype: Any) -> str:
    """A pandas dtype's name, ``object`` for pandas 3's text dtype ``str``."""
    name = str(dtype)
    return "object" if name == "str" else name


_EXACT: dict[type, Callable[[_Walker, Any], None]] = {
    type(None): _Walker._none,
    type(Ellipsis): _Walker._singleton,
    type(NotImplemented): _Walker._singleton,
    bool: _Walker._bool,
    int: _Walker._int,
    float: _Walker._float,
    complex: _Walker._complex,
    str: _Walker._str,
    bytes: _Walker._bytes,
    bytearray: _Walker._bytearray,
    memoryview: _Walker._memoryview,
    tuple: _Walker._tuple,
    list: _Walker._list,
    dict: _Walker._dict,
    set: _Walker._set,
    frozenset: _Walker._set,
}


def _slot_values(obj: Any) -> dict[str, Any]:
    """The attributes ``obj`` keeps in the ``__slots__`` of its class and its bases (the
    ones that are set), by name, as pickle finds them; empty for a class without slots."""
    found = {}
    for cls in type(obj).__mro__:
        names = cls.__dict__.get("__slots__", ())
        for name in (names,) if isinstance(names, str) else names:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{cls.__name__.lstrip('_')}{name}"  # a private name, mangled
            try:
                found.setdefault(name, getattr(obj, name))
            except AttributeError:  # a slot not set
                continue
    return found


def _short_repr(obj: Any, limit: int = 40) -> str:
    try:
        text = repr(obj)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(obj).__qualname__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dataclass_hash_fields(obj: Any) -> list[tuple[str, Any]]:
    """(name, value) pairs of a plain dataclass, as they enter its hash.

    Fields declared with ``metadata={"hash": False}`` are left out, those with
    ``metadata={"hash": func}`` enter as ``func(value)``, and fields whose value is
    ``None`` are skipped so that adding a ``None``-default field keeps old hashes.
    A ``hash_representations`` dict on the object (a dataclass nested in a parameter
    set, as Curifactory allows) works as on a parameter set: a field it maps to
    ``None`` is left out, one it maps to a function ``f`` enters as ``f(obj, value)``,
    and the dict itself is no part of the hash.
    """
    represent = _hash_representations(obj)
    pairs = []
    for f in sorted(dataclasses.fields(obj), key=lambda f: f.name):
        if represent is not None and f.name == "hash_representations":
            continue
        value = getattr(obj, f.name)
        if represent is not None and f.name in represent:
            how = represent[f.name]
            value = _represented(f.name, how, obj, value) if how is not None else None
        elif value is not None:
            how = f.metadata.get("hash", True)
            if how is False:
                continue
            if callable(how):
                value = _represented(f.name, how, value)
        if value is not None:
            pairs.append((f.name, value))
    return pairs


def _represented(name: str, function: Callable[..., Any], *args: Any) -> Any:
    """What ``function`` (the hash function of field ``name``) makes of ``args``; its
    failure (``file_checksum`` of a file that is not there) as an error that names the
    field, the function and the value, so that the message says where it happened."""
    try:
        return function(*args)
    except AssayError:
        raise
    except Exception as exc:
        how = getattr(function, "__qualname__", None) or _short_repr(function)
        error = _FieldHashFailed(
            f"the hash function {how} of the field failed on {_short_repr(args[-1])} "
            f"({type(exc).__name__}: {exc}). Correct the value, or how the field is hashed "
            "(metadata={'hash': ...} or hash_representations)."
        )
        error.path.append(f".{name}")
        raise error from exc


def _hash_representations(obj: Any) -> dict[str, Any] | None:
    """The ``hash_representations`` of a plain dataclass nested in a parameter set, as
    Curifactory reads it: its entries that name a field and give a function or ``None``.
    Other entries are left alone, as there (a class may use that name for something else);
    ``None`` if none applies (then its fields hash as they always did)."""
    found = getattr(obj, "hash_representations", None)
    if not isinstance(found, dict):
        return None
    names = {f.name for f in dataclasses.fields(obj)}
    applied = {
        name: how for name, how in found.items() if name in names and (how is None or callable(how))
    }
    return applied or None


def _root_label(obj: Any) -> str:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return type(obj).__qualname__
    return "value"


class Hasher:
    """Accumulate several values into one stable hash.

    ``Hasher().update(a).update(b).hexdigest()`` hashes the sequence ``a, b``; it
    is the streaming form of :func:`hash_value`, useful when the parts of a key
    are produced one at a time::

        h = Hasher()
        h.update("train")
        h.update(params)
        key = h.hexdigest()

    ``dict_order=True``: dicts with the same items in another order hash apart
    (see :func:`hash_value`).
    """

    def __init__(self, *, dict_order: bool = False) -> None:
        self._walker = _Walker(dict_order=dict_order)
        self._walker._w(_FORMAT_VERSION)

    def update(self, obj: Any) -> Hasher:
        """Add ``obj`` to the hash and return the hasher (so calls can be chained).

        Raises:
            UnhashableError: (a ``TypeError``) an object inside ``obj`` cannot be
                hashed; the message says where it sits and how to tell assay to hash it.
            ValueError: ``obj`` contains itself (e.g. a list appended to itself).
        """
        try:
            self._walker.walk(obj)
        except _WalkError as exc:
            root, path = _root_label(obj), "".join(exc.path)
            if isinstance(exc, TypeError):
                raise UnhashableError(root, path, exc.detail) from None
            raise ValueError(f"Cannot hash {root}{path}: {exc.detail}") from None
        finally:
            self._walker._active.clear()
        return self

    def hexdigest(self) -> str:
        """The hash so far, as 32 lowercase hexadecimal characters."""
        return self._walker._h.hexdigest()


def hash_value(obj: Any, *, dict_order: bool = False) -> str:
    """Return a stable 32-character hex hash of any parameter value.

    Equal values give equal hashes in every process and on every machine;
    values that differ in type or content give different hashes::

        >>> a = hash_value({"lr": 0.1, "layers": [64, 64]})
        >>> a == hash_value({"layers": [64, 64], "lr": 0.1})
        True
        >>> hash_value(1) == hash_value(1.0) or hash_value(1) == hash_value("1")
        False

    Large numpy arrays and pandas frames are hashed straight from memory.
    Functions and classes are hashed by qualified name and source code (without
    comments, docstrings or layout), so editing a function passed as a parameter
    changes the hash.

    Two dicts with the same items in another order are equal in Python and hash
    alike. With ``dict_order=True`` their order counts (sets stay unordered):
    assay hashes what enters a stage's cache key so, since code that iterates a
    dict sees its order (``for step, k in STEPS.items()``); so does the name of a
    parameter set held in a value (``data=DataParams(name="cifar")``), which code
    may read as any other field.
    """
    return Hasher(dict_order=dict_order).update(obj).hexdigest()


def file_checksum(path: str | pathlib.Path, chunk: int = 8 * 1024 * 1024) -> str:
    """Return the xxh3-128 hex checksum of a file's bytes, reading it in chunks.

    Used to notice a cache file that was truncated or changed after it was
    written; memory use stays at ``chunk`` bytes whatever the file size.
    """
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as fh:
        # No bigger than the file: a new process pays ~5 ms to zero a fresh 8 MB buffer.
        buffer = bytearray(min(chunk, os.fstat(fh.fileno()).st_size) or 1)
        view = memoryview(buffer)
        while n := fh.readinto(buffer):
            h.update(view[:n])
    return h.hexdigest()


def set_hash_functions(*args: dict[str, Any], **kwargs: Any) -> Any:
    """Declare how some fields of a parameter set enter its hash (Curifactory API).

    Use it as the default of the ``hash_representations`` field. Each keyword
    names a field and gives either a function ``(params, value) -> representation``
    (the representation is hashed instead of the value) or ``None`` to leave
    the field out of the hash entirely, e.g. for settings that do not change
    results, such as the number of worker processes::

        @dataclass
        class Params(assay.ExperimentParameters):
            dataset: pd.DataFrame = None
            n_jobs: int = 4
            hash_representations: dict = set_hash_functions(
                dataset=lambda self, df: df.attrs["source_file"],
                n_jobs=None,
            )

    A dict may also be passed as the single positional argument; keywords are
    added to it.
    """
    if len(args) > 1 or (args and not isinstance(args[0], dict)):
        raise ValueError(
            "set_hash_functions() takes at most one positional argument, a dict of "
            "field name -> function; pass the other functions as keywords."
        )
    functions = {**(args[0] if args else {}), **kwargs}
    return dataclasses.field(default_factory=lambda: dict(functions), repr=False)


def args_hash(
    param_set: Any,
    store_in_registry: bool = False,
    registry_path: str | None = None,
    dry: bool = False,
) -> str | dict[str, Any]:
    """Return a parameter set's hash (Curifactory API), or with ``dry=True`` what is hashed.

    Same as ``param_set.params_hash()``: the user-supplied ``hash`` field when
    set, otherwise the hash of the class name and the hashed fields. With
    ``dry=True`` returns ``{field name: representation}`` for every field that
    enters the hash, which helps to debug ``hash_representations``.
    ``store_in_registry`` and ``registry_path`` are accepted for compatibility
    and ignored: assay records every parameter set in its run store.
    """
    del store_in_registry, registry_path
    if dry:
        return dict(param_set._hash_fields())
    return param_set.params_hash()


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
