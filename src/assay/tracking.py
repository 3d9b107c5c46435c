"""Which parameter fields a stage reads while it runs.

While a stage executes, ``record.params`` is a *tracking copy* of the
parameter set: an instance of a subclass of the researcher's class (so
``isinstance`` checks and methods work unchanged) that notes every field
read, also inside helper functions the stage hands ``record.params`` to.
Anything that reads the parameters wholesale — ``dataclasses.asdict``,
``replace``, ``copy``, ``pickle``, ``vars()``, ``==``, ``repr`` — counts as
reading every field. The stage's cache key then covers only the fields it
read, so changing a parameter that only a later stage uses does not
recompute this one.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import os
import sys
import types
from typing import Any

from assay.keys import EVERY_FIELD

_TRACKERS: dict[type, type] = {}
_WHOLESALE = frozenset(
    {"__dict__", "__reduce__", "__reduce_ex__", "__getstate__", "__eq__", "__repr__", "__copy__"}
)
_COMPUTING = frozenset({"__post_init__", "__getattr__", "__getattribute__"})
"""Dunder methods that compute what a stage reads: they count as code when defined."""


def tracking_copy(params: Any) -> tuple[Any, set[str]]:
    """A copy of ``params`` that records the fields read into the returned set."""
    cls = type(params)
    tracker = _TRACKERS.get(cls)
    if tracker is None:
        tracker = _TRACKERS[cls] = _make_tracker(cls)
    reads: set[str] = set()
    tracked = _rebuild(tracker, instance_state(params))
    object.__setattr__(tracked, "_assay_reads", reads)
    return tracked, reads


def instance_state(params: Any) -> dict[str, Any]:
    """The attributes of ``params``: those of its ``__dict__``, and those a class made
    with ``@dataclass(slots=True)`` keeps in its slots (every field, then). Read without
    counting as reads of a tracking copy."""
    try:
        state = dict(object.__getattribute__(params, "__dict__"))
    except AttributeError:  # slots all the way down: no __dict__ at all
        state = {}
    for klass in type(params).__mro__:
        slots = vars(klass).get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            try:
                state[name] = object.__getattribute__(params, name)
            except AttributeError:  # a slot not filled
                continue
    state.pop("__weakref__", None)
    state.pop("__dict__", None)
    return state


def all_fields(params: Any) -> set[str]:
    """The names of every field of a parameter set."""
    return {f.name for f in dataclasses.fields(params)}


def code_attributes(cls: type) -> dict[str, Any]:
    """The methods, properties and class constants a parameter class defines beyond its fields.

    Calling one in a stage counts as a read, keyed on its code (what it does may
    change without any field changing). Those of :class:`assay.ExperimentParameters`
    itself and of ``object`` do not count, nor do dunder methods but those that
    compute what a stage reads: ``__post_init__`` (an attribute it sets),
    ``__getattr__`` and ``__getattribute__``.
    """
    found = _CODE_ATTRIBUTES.get(cls)
    if found is None:
        fields = (
            {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        )
        found = {}
        for klass in reversed(cls.__mro__):
            if klass is object or klass.__module__.split(".")[0] == "assay":
                continue
            if "__assay_tracking__" in vars(klass):  # a tracking copy's class: assay's hooks
                continue
            for name, value in vars(klass).items():
                dunder = name.startswith("__") and name.endswith("__")
                if (not dunder or name in _COMPUTING) and name not in fields:
                    found[name] = value
        _CODE_ATTRIBUTES[cls] = found
    return found


_CODE_ATTRIBUTES: dict[type, dict[str, Any]] = {}


def code_of_attribute(value: Any) -> Any:
    """What to fingerprint for a class attribute: a property's getter, a classmethod's
    function, a ``functools.cached_property``'s function; the value itself otherwise."""
    if isinstance(value, property):
        return value.fget
    if isinstance(value, (classmethod, staticmethod)):
        return value.__func__
    func = getattr(value, "func", None)  # functools.cached_property, partialmethod
    return func if callable(func) else value


def held_code(value: Any, depth: int = 0) -> list:
    """The functions and classes a parameter value holds: itself, the function of a
    ``functools.partial`` (and its arguments), a bound method's function (and its
    object), the function of a static or class method object, the items of a list,
    tuple, set or dict, the methods of a dataclass
    instance, an enum member or a named tuple (see :func:`methods_of`), the
    attributes of a ``SimpleNamespace``, and for an instance of a class of the
    project (see :func:`is_own_object`) its class and what its attributes hold.
    Of other objects, the functions their attributes hold (a decorator object's
    function): not their data.

    A stage that reads the field is keyed on their code *and on what that code
    calls*; the field's hash sees only their own source, so editing a helper they
    call would go unseen."""
    if isinstance(value, (types.FunctionType, type)):
        return [value]
    if isinstance(value, types.MethodType):
        return [value.__func__, *held_code(value.__self__, depth + 1)]
    if isinstance(value, (staticmethod, classmethod)):  # `{"f": staticmethod(f)}`
        return held_code(value.__func__, depth + 1)
    if isinstance(value, enum.Enum):
        return methods_of(type(value))  # `Optimizer.ADAM.learning_rate()`
    found: list = []
    items: Any = ()
    if dataclasses.is_dataclass(value):
        found += methods_of(type(value))  # `record.params.model.fit(x)`
        items = [getattr(value, f.name, None) for f in dataclasses.fields(value)]
    elif isinstance(value, tuple) and hasattr(type(value), "_fields"):
        found += methods_of(type(value))  # a NamedTuple's
        items = value
    elif isinstance(value, functools.partial):
        items = [value.func, *value.args, *value.keywords.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    elif isinstance(value, dict):
        items = value.values()
    elif isinstance(value, types.SimpleNamespace):
        items = _attributes(value)  # `TOOLS = SimpleNamespace(fit=fit)`
    elif is_own_object(value):
        found.append(type(value))  # `scaler.apply(x)`, `net(x)` (its `__call__`)
        items = _attributes(value)  # `timed(fit)` keeps `fit`; `Pipeline([step, ...])`
    elif depth < _HELD_DEPTH:
        items = [v for v in _attributes(value) if isinstance(v, _FUNCTIONS)]
    if depth < _HELD_DEPTH:
        found += [code for item in items for code in held_code(item, depth + 1)]
    return found


def is_own_object(value: Any) -> bool:
    """Whether ``value`` is an instance of a class that is neither built in, of the
    standard library, of assay, nor of a package in ``site-packages``: the project's
    own (or of a folder on ``PYTHONPATH``, an editable install), whose code is followed."""
    cls = type(value)
    found = _OWN.get(cls)
    if found is None:
        module = getattr(cls, "__module__", None) or ""
        top = module.split(".")[0]
        path = getattr(sys.modules.get(module), "__file__", None) or ""
        found = _OWN[cls] = not (
            not path or top in _NOT_OWN or any(marker in path for marker in _SITE_MARKERS)
        )
    return found


_OWN: dict[type, bool] = {}
_NOT_OWN = set(getattr(sys, "stdlib_module_names", ())) | {"builtins", "assay", "numpy", "pandas"}
_SITE_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_FUNCTIONS = (types.FunctionType, types.MethodType, functools.partial)


def _attributes(value: Any) -> list:
    """The values of an object's ``__dict__`` (none for an object without one)."""
    try:
        state = object.__getattribute__(value, "__dict__")
    except Exception:  # no __dict__ (slots), or a proxy that refuses
        return []
    return list(state.values()) if isinstance(state, dict) else []


def methods_of(cls: type) -> list:
    """The functions a class (and its bases but ``object``, enum's and assay's) defines:
    methods, properties' getters, class and static methods. Not the rest of its source:
    editing an enum member's value or a field's default is seen in the value already."""
    found = _METHODS.get(cls)
    if found is None:
        found = []
        for klass in cls.__mro__:
            if klass.__module__ in ("builtins", "enum") or klass.__module__.startswith("assay."):
                continue
            for value in vars(klass).values():
                code = code_of_attribute(value)
                if isinstance(code, types.FunctionType):
                    found.append(code)
        _METHODS[cls] = found
    return found


_METHODS: dict[type, list] = {}

_HELD_DEPTH = 3
"""How deep in containers :func:`held_code` looks (a grid of functions is a list)."""


def _make_tracker(cls: type) -> type:
    names = frozenset(f.name for f in dataclasses.fields(cls))
    code_names = frozenset(code_attributes(cls))
    # What a read of everything reads: every field (those it has now, and those a field
    # added to the class later gives: EVERY_FIELD), and the code that set the attributes
    # that are not fields (`self.lr = self.base * 2` in __post_init__).
    everything = names | (code_names & {"__post_init__"}) | {EVERY_FIELD}
    # The class's own __getattribute__ sees every read (it may change what a field gives).
    hooked = "__getattribute__" in code_names
    get = cls.__getattribute__ if hooked else object.__getattribute__
    computes = "__getattr__" in code_names

    def __getattribute__(self, name):  # noqa: N807 - the hook being defined
        if name == "__class__":
            # The researcher's class: `replace()` builds one of those, and the
            # dataclass `==` compares classes before it compares fields.
            return cls
        state = object.__getattribute__(self, "__dict__")
        reads = state.get("_assay_reads")
        if reads is not None:
            if name in names:
                reads.add(name)
            elif name in state or name in _WHOLESALE:
                # An attribute that is not a field (set in __post_init__, or a
                # functools.cached_property computed already) was made from fields
                # nobody can tell: it counts as reading them all, and the code that
                # made it.
                reads.update(everything)
                if name in code_names:
                    reads.add(name)
            elif name in code_names:
                reads.add(name)
            if hooked and (name in names or name in state):
                reads.add("__getattribute__")
        try:
            return get(self, name)
        except AttributeError:
            if reads is not None and not name.startswith("__") and not computes:
                # `getattr(params, "dropout", 0.5)`, `hasattr(...)`: a field of that name
                # added to the class later changes what the stage computes. (A class's own
                # __getattr__ makes such attributes: its code counts instead.)
                reads.add(name)
            raise

    def __getattr__(self, name):  # noqa: N807
        """An attribute the class's own ``__getattr__`` computes: its code counts."""
        reads = object.__getattribute__(self, "__dict__").get("_assay_reads")
        if reads is not None:
            reads.add("__getattr__")
        return cls.__getattr__(self, name)

    def __reduce_ex__(self, protocol):  # noqa: N807
        """Pickling or copying gives an ordinary parameter set (and reads everything)."""
        object.__getattribute__(self, "_assay_reads").update(everything)
        state = instance_state(self)
        state.pop("_assay_reads", None)
        return (_rebuild, (cls, state))

    def __deepcopy__(self, memo):  # noqa: N807
        object.__getattribute__(self, "_assay_reads").update(everything)
        state = instance_state(self)
        state.pop("_assay_reads", None)
        return _rebuild(cls, copy.deepcopy(state, memo))

    def refuse(change: str) -> None:
        from assay.errors import StageError

        raise StageError(
            f"A stage {change}. A parameter set cannot change while "
            "stages run: each stage's cache is keyed on the fields it reads, so the change "
            "would be lost to later stages and to the cache. Return what the stage computes "
            "as an output (or put it in record.state), or give the field its value where the "
            "parameter sets are made (get_params)."
        )

    def __setattr__(self, name, value):  # noqa: N807
        if name in names:
            from assay.plan import short_repr

            refuse(f"set record.params.{name} = {short_repr(value, 60)}{_of(self)}")
        cls.__setattr__(self, name, value)  # an attribute of its own (a memo): allowed

    def __delattr__(self, name):  # noqa: N807
        if name in names:
            refuse(f"deleted record.params.{name}{_of(self)}")
        cls.__delattr__(self, name)

    namespace = {
        "__getattribute__": __getattribute__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__reduce_ex__": __reduce_ex__,
        "__deepcopy__": __deepcopy__,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__assay_tracking__": True,
    }
    if "__getattr__" in code_names:
        namespace["__getattr__"] = __getattr__
    return type(cls.__name__, (cls,), namespace)


def _of(params: Any) -> str:
    """`` (parameter set 'NAME')``, to say which set a refused change was made to."""
    name = object.__getattribute__(params, "__dict__").get("name")
    return f" (parameter set {name!r})" if isinstance(name, str) else ""


def _rebuild(cls: type, state: dict) -> Any:
    """An instance of ``cls`` with the attributes ``state`` (see :func:`_state`), made
    without calling ``__init__``."""
    instance = object.__new__(cls)
    for name, value in state.items():
        object.__setattr__(instance, name, value)
    return instance
