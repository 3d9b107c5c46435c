"""Code fingerprints: everything a stage's result depends on, as code.

A stage's cache key includes a fingerprint of its code that reaches past the
stage function itself, so that no edit can leave a stale result behind:

- the stage function's syntax tree (comments, docstrings and layout do not
  count, so editing them recomputes nothing);
- every function and class *of the project* it uses, through globals,
  ``module.attribute`` chains, closures and default values, recursively;
- the value of every module-level constant it reads;
- for code of installed packages, the package's name and version (not its
  source: upgrading scikit-learn recomputes, reading its code does not).

The fingerprint also keeps a readable description of each part (a function's
normalized source, a constant's value, a package's version), written into the
artifact's sidecar so ``assay why`` can say exactly what changed.

A :class:`Fingerprinter` is made per run: each function is fingerprinted once
per run, however many records call it.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import dis
import enum
import functools
import importlib
import inspect
import os
import re
import sys
import types
import weakref
from pathlib import Path, PurePath
from typing import Any

from assay import distributions
from assay.errors import ProjectError
from assay.hashing import _lambda_source, hash_value
from assay.sourcetext import normalized_expression, source_and_tree, strip_docstrings
from assay.tracking import held_code, is_own_object

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"builtins"}
_SITE_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_SOURCE_LIMIT = 20_000
"""Longest source text kept in a sidecar per function (the digest covers all of it)."""
_VALUE_LIMIT = 200


def digest_of(parts: dict[str, dict]) -> str:
    """The digest of a fingerprint's parts (see :meth:`Fingerprinter.fingerprint`)."""
    return hash_value(sorted((name, part["digest"]) for name, part in parts.items()))


def in_project(path: str, root: str) -> bool:
    """Whether the file ``path`` is the project's own code: under the folder ``root``, and
    outside installed packages and the project's virtual environment (``.venv``)."""
    path, root = os.path.abspath(path), os.path.join(os.path.abspath(root), "")
    if not path.startswith(root) or any(marker in path for marker in _SITE_MARKERS):
        return False
    return f"{os.sep}.venv" not in path[len(root) - 1 :]


class Fingerprinter:
    """Fingerprints stage functions and what they use, caching results for one run.

    Args:
        project_root: code in files under this folder (outside virtual
            environments and site-packages) is the project's own and is
            fingerprinted by source. So is code outside it and outside
            site-packages that no installed distribution claims (a folder on
            ``PYTHONPATH``) or that an editable install provides (``pip install
            -e ../mylib``); other code counts by its package's version.
    """

    def __init__(self, project_root: str | Path):
        self.root = os.path.abspath(project_root) + os.sep
        self._parts: dict[int, tuple[str, dict]] = {}
        self._cut = 0  # the shallowest depth a cycle reached back to (see _visit)
        self._kept: list[Any] = []  # keeps fingerprinted objects alive, so ids stay unique
        self._folders: list[str] = []  # the metadata folders on sys.path (see _installed)
        self._by_name: dict[str, str] | None = None
        self._distributions: dict[str, list[str]] | None = None
        self._quick: dict[str, list[str]] = {}
        self._editable: dict[str, bool] = {}
        self.outside_files: set[str] = set()
        """Source files outside the project whose code was followed (a folder on
        ``PYTHONPATH``, an editable install): workers check they have the same ones."""

    def fingerprint(self, *code: Any) -> tuple[str, dict[str, dict]]:
        """The digest of the code of ``code`` (functions, classes) and of everything it
        uses, and the parts.

        The parts map a qualified name (``"experiments.iris.train"``,
        ``"experiments.iris.SCALE"``, ``"package sklearn"``) to a description:
        ``{"kind": ..., "digest": ..., "source" | "value" | "version": ...}``.
        """
        parts: dict[str, dict] = {}
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))  # long helper chains recurse deeply
        try:
            for item in code:
                self._visit(item, parts, {})
        finally:
            sys.setrecursionlimit(limit)
        return digest_of(parts), parts

    def fingerprint_value(self, name: str, value: Any) -> str:
        """The digest of something a stage uses by name (a method or constant of a
        parameter class): code as in :meth:`fingerprint`, plain data by value."""
        parts: dict[str, dict] = {}
        self._use(name, value, parts, {})
        return hash_value(sorted((part, found["digest"]) for part, found in parts.items()))

    # -- walking ----------------------------------------------------------------------

    def _visit(self, obj: Any, parts: dict, active: dict) -> None:
        """Add the parts of ``obj`` and of what it uses. ``active`` maps what is being
        described (around this call) to its depth: a use of one of those (a cycle: `a`
        calls `b`, `b` calls `a`) is left to it. What a cycle left out is therefore
        missing from the parts of the objects inside the cycle: only objects whose
        parts are complete are remembered for later visits."""
        cached = self._parts.get(id(obj))
        if cached is not None:
            _merge(parts, cached[1])
            return
        if id(obj) in active:
            self._cut = min(self._cut, active[id(obj)])
            return
        depth = active[id(obj)] = len(active)
        outer_cut, self._cut = self._cut, depth
        own: dict[str, dict] = {}
        self._describe(obj, own, active)
        del active[id(obj)]
        if self._cut >= depth:  # no cycle reached above it: its parts are all there
            self._parts[id(obj)] = ("", own)
            self._kept.append(obj)
        self._cut = min(outer_cut, self._cut)
        _merge(parts, own)

    def _describe(self, obj: Any, parts: dict, active: dict) -> None:
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        wrapped = getattr(obj, "__assay_stage__", None)
        if wrapped is not None:  # a stage calling another stage's function
            obj = wrapped.func
        if isinstance(obj, types.FunctionType):
            if not self._is_project(obj):
                self._package(obj, parts)
                return
            self._function(obj, parts, active)
        elif isinstance(obj, type):
            if not self._is_project(obj):
                self._package(obj, parts)
                return
            self._class(obj, parts, active)
        elif (
            isinstance(obj, types.ModuleType)
            or callable(obj)
            and not isinstance(obj, type)
            and hasattr(obj, "__module__")
        ):
            self._package(obj, parts)

    def _function(self, func: types.FunctionType, parts: dict, active: dict) -> None:
        if func.__name__ == "<lambda>":
            # By its own code, not the line it sits on (editing another argument of the
            # call it is passed to changes nothing), and named by that code: a module's
            # lambdas all have the qualified name "<lambda>".
            digest = hash_value(("lambda", _bytecode_text(func.__code__)))
            # Without layout or comments: reformatting it changes neither name nor digest.
            source, tree = _lambda_source(func, "\n") or "", None
            source = normalized_expression(source) if source else ""
            try:  # its body, to follow `module.helper` chains in it
                tree = ast.parse(source, mode="eval") if source else None
            except SyntaxError:
                tree = None
            short = " ".join(source.split())
            short = short if len(short) <= 40 else short[:39] + "…"
            name = f"{func.__module__}.<lambda: {short}; {digest[:8]}>"
        else:
            name = f"{func.__module__}.{func.__qualname__}"
            if hasattr(func, "__wrapped__"):  # functools.wraps gave it the wrapped one's name
                code = func.__code__
                own = getattr(code, "co_qualname", code.co_name)
                name = f"{func.__globals__.get('__name__', '?')}.{own} (wrapping {name})"
            source, tree = _normalized(func)
            digest = hash_value(("function", source))
        parts[name] = {"kind": "function", "digest": digest, "source": source[:_SOURCE_LIMIT]}
        for dependency_name, value in self._dependencies(func, tree):
            self._use(dependency_name, value, parts, active)

    def _class(self, cls: type, parts: dict, active: dict) -> None:
        name = f"{cls.__module__}.{cls.__qualname__}"
        try:
            source, tree = _normalized(cls)
        except (OSError, TypeError):
            self._class_without_source(cls, name, parts, active)
            return
        parts[name] = {
            "kind": "class",
            "digest": hash_value(("class", source)),
            "source": source[:_SOURCE_LIMIT],
        }
        for base in cls.__mro__[1:]:
            if base is not object:
                self._visit(base, parts, active)
        module = sys.modules.get(cls.__module__)
        namespace = vars(module) if module is not None else {}
        for dependency_name, value in _referenced(tree, namespace):
            self._use(dependency_name, value, parts, active)
        for attribute, value in _set_outside_the_body(cls, tree):
            self._use(f"{name}.{attribute}", value, parts, active)
        if "<locals>" in cls.__qualname__:
            # A class a function makes (`make_model(k)`): what its methods close over
            # (`k`), and their defaults, come from that call, not from the source.
            for value in vars(cls).values():
                for method in _functions_of(value):
                    for held_name, held in _closed_over(method, tree):
                        self._use(held_name, held, parts, active)

    def _class_without_source(self, cls: type, name: str, parts: dict, active: dict) -> None:
        """A class whose source Python cannot find (one typed into a notebook cell, or
        defined in ``python -c`` code): described by what its body holds, its methods (each
        by its own code, found through the cell's source or its bytecode), properties and
        values. By its name alone, an edited class passed for the old one: a stale result."""
        members = []
        for attribute, value in sorted(vars(cls).items()):
            if attribute in _CLASS_HOUSEKEEPING:
                continue
            functions = _functions_of(value)
            if functions:
                members.append((attribute, type(value).__name__))
                for function in functions:
                    self._visit(function, parts, active)
            elif _is_plain_data(value):
                try:
                    members.append((attribute, hash_value(value, dict_order=True)))
                except (TypeError, ValueError):
                    members.append((attribute, type(value).__qualname__))
            else:
                members.append((attribute, type(value).__qualname__))
        parts[name] = {"kind": "class", "digest": hash_value(("class", members)), "source": ""}
        for base in cls.__mro__[1:]:
            if base is not object:
                self._visit(base, parts, active)

    def _use(self, name: str, value: Any, parts: dict, active: dict) -> None:
        """Account for one thing a function or class reads from outside itself."""
        if _is_session_state(value):
            return
        wrapped = getattr(value, "__wrapped__", None)
        registry = getattr(value, "registry", None)
        if isinstance(registry, types.MappingProxyType) and hasattr(value, "dispatch"):
            # functools.singledispatch: what runs is the implementation registered for
            # the argument's type (`@convert.register(int)`), each a function of its own.
            for implementation in registry.values():
                if isinstance(implementation, types.FunctionType):
                    self._visit(implementation, parts, active)
        if callable(value) and wrapped is not None and not hasattr(value, "__assay_stage__"):
            if isinstance(value, types.FunctionType):
                # A decorator's wrapper (applied by a call, `fast = twice(base)`, there
                # is no `@twice` in any source): its own code counts too.
                self._visit(value, parts, active)
            elif is_own_object(value):
                # A decorator class of the project (functools.update_wrapper in its
                # __init__): its __call__ runs around the function.
                self._visit(type(value), parts, active)
            # functools.cache, lru_cache, wraps-style decorators: the code is underneath.
            value = inspect.unwrap(value)
        if isinstance(value, types.MethodType) and not isinstance(
            value.__self__, (type, types.ModuleType)
        ):
            # A bound method held as a constant (`scale = Scaler(k=2).apply`): its object
            # is part of what it does.
            self._use(f"{name}.__self__", value.__self__, parts, active)
        if isinstance(value, (types.FunctionType, types.MethodType, type, types.ModuleType)) or (
            hasattr(value, "__assay_stage__")
        ):
            self._visit(value, parts, active)
        elif isinstance(value, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            return
        else:
            digest = None
            if _is_plain_data(value):
                try:
                    # In its order: code iterating a dict (`for op, k in STEPS.items()`)
                    # may give another result for another order.
                    digest = hash_value(_hashable_form(value, self.root), dict_order=True)
                except (TypeError, ValueError):
                    digest = None
            if digest is None:
                # Objects with runtime state (loggers, connections, a model's weights)
                # would change their hash on every run; their data counts by type only.
                digest = hash_value(("object", type(value).__module__, type(value).__qualname__))
            text = _ADDRESS.sub("", repr(value))  # `<function f at 0x7f...>`: per process
            shown = text[:_VALUE_LIMIT] + ("..." if len(text) > _VALUE_LIMIT else "")
            # Merged: a function made by the same call as one it holds (`make(2,
            # inner=make(3))`) has a `k` of the same name as that one's.
            _merge(parts, {name: {"kind": "value", "digest": digest, "value": shown}})
            # A partial, a table of functions, a dataclass or enum with methods: the
            # value's digest covers their own source at most, not what they call. An
            # instance of a class of the project (`scaler = Scaler(3)`, a decorator
            # object, a callable object): its class's code, and the functions its
            # attributes hold, with what they call.
            for held in held_code(value):
                self._visit(held, parts, active)

    def _dependencies(self, func: types.FunctionType, tree: ast.AST | None):
        """``(qualified name, value)`` of the globals, closures and defaults ``func`` uses."""
        namespace = func.__globals__
        module = func.__module__
        if tree is not None:
            local_imports = _imports_inside(tree, module)
            if local_imports:
                namespace = {**namespace, **local_imports}
            yield from _referenced(
                tree,
                namespace,
                module,
                exclude_bound=set(local_imports),
                # A lambda's parsed body does not show its parameters.
                bound=set(func.__code__.co_varnames) if func.__name__ == "<lambda>" else None,
            )
        else:
            for name in _code_names(func.__code__):
                if name in namespace:
                    yield f"{module}.{name}", namespace[name]
        yield from _closed_over(func, tree)

    # -- what is the project's, what is a package's -----------------------------------------

    def _is_project(self, obj: Any) -> bool:
        try:
            path = inspect.getsourcefile(obj) or inspect.getfile(obj)
        except (TypeError, OSError):
            # A class typed into a notebook cell (or `python -c` code): its module,
            # __main__, has no file, but it is the researcher's own code.
            return isinstance(obj, type) and getattr(obj, "__module__", None) == "__main__"
        if path.startswith("<frozen "):  # the standard library, built into the interpreter
            return False
        path = os.path.abspath(path)
        if in_project(path, self.root):
            return True
        if path.startswith(self.root) or any(marker in path for marker in _SITE_MARKERS):
            return False
        # Code outside the project and outside site-packages: a folder on PYTHONPATH, a
        # sibling checkout, a library of yours installed with `pip install -e ../mylib`.
        # No version changes when its source does, so follow the source; unless an
        # installed (not editable) distribution claims it, which its version keys.
        top = (getattr(obj, "__module__", "") or "").split(".")[0]
        if top in _STDLIB or top == "assay":  # assay itself: never part of a key
            return False
        names = self._distributions_of(top)
        if names and not any(self._is_editable(name) for name in names):
            return False
        self.outside_files.add(path)
        return True

    def _package(self, obj: Any, parts: dict) -> None:
        module_name = obj.__name__ if isinstance(obj, types.ModuleType) else obj.__module__
        top = (module_name or "").split(".")[0]
        if not top or top in _STDLIB or top == "assay":
            return
        names = self._distributions_of(top)
        if not names:
            return
        versions = {}
        installed = self._installed()
        for dist in names:
            folder = installed.get(distributions.normalize(dist))
            version = distributions.read_metadata(folder).get("version") if folder else None
            if version is not None:  # what importlib.metadata.version says
                versions[dist] = version
        if not versions:
            return
        label = ", ".join(f"{d} {v}" for d, v in sorted(versions.items()))
        parts[f"package {top}"] = {
            "kind": "package",
            "digest": hash_value(("package", sorted(versions.items()))),
            "version": label,
        }

    def _distributions_of(self, top: str) -> list[str]:
        found = self._quick.get(top)
        if found is not None:
            return found
        if distributions.normalize(top) in self._installed():
            found = [top]  # most distributions are named like their module
        else:
            if self._distributions is None:  # only when a name differs (sklearn)
                self._distributions = distributions.installed_modules(self._folders)
            found = self._distributions.get(top, [])
        self._quick[top] = found
        return found

    def _is_editable(self, dist: str) -> bool:
        """Whether distribution ``dist`` is an editable install (its source is followed)."""
        found = self._editable.get(dist)
        if found is None:
            folder = self._installed().get(distributions.normalize(dist))
            found = folder is not None and distributions.editable_location(folder) is not None
            self._editable[dist] = found
        return found

    def _installed(self) -> dict[str, str]:
        """Normalized distribution name → its metadata folder (read once per run)."""
        if self._by_name is None:
            self._folders = distributions.metadata_folders()
            self._by_name = distributions.by_name(self._folders)
        return self._by_name


def _closed_over(func: types.FunctionType, tree: ast.AST | None):
    """``(qualified name, value)`` of the values ``func`` closes over and of its defaults:
    what the call that made it gave it (``make_scaler(2)``), which its source cannot show.
    ``tree``: the source it is part of (to tell a container it fills), if any."""
    # Variables of an enclosing function it assigns through `nonlocal` (a call
    # counter) are state it keeps, not configuration it reads: they are not keyed.
    kept_cells = _kept_cells(func.__code__)
    filled: frozenset[str] | None = None  # containers it fills: found when one is held
    name = f"{func.__module__}.{func.__qualname__}"
    for var, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
        if var in kept_cells or var == "__class__":  # __class__: the class of super()
            continue
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, (list, dict, set, bytearray)):
            # A container the code fills as it runs (a memo, a list it appends
            # to) is state it keeps, not configuration: it is not keyed. One it
            # only reads (`make_scorer({"scale": 2})`) is. Without source, which
            # is which cannot be told: taken for state, as before.
            if filled is None:
                filled = _filled_names(tree) if tree is not None else None
            if filled is None or var in filled:
                continue
        yield f"{name}.<{var}>", value
    for index, default in enumerate(func.__defaults__ or ()):
        yield f"{name}.<default {index}>", default
    for key, default in (func.__kwdefaults__ or {}).items():
        yield f"{name}.<default {key}>", default


def _merge(parts: dict[str, dict], found: dict[str, dict]) -> None:
    """Add the parts ``found`` to ``parts``. Two things of one name both count: the
    implementations of a ``singledispatch`` function, all called ``_``, or the functions
    two calls of one factory made (``double = make_scaler(2)``, ``triple =
    make_scaler(3)``, each with its own ``k``). A part whose name another digest holds
    already is added under its name and its digest, instead of replacing that one."""
    for name, part in found.items():
        suffix = f" #{part['digest'][:12]}"
        name = name.removesuffix(suffix)  # one found so by a part of ``found`` already
        held = parts.get(name)
        parts[name if held is None or held["digest"] == part["digest"] else name + suffix] = part


def _set_outside_the_body(cls: type, tree: ast.AST | None) -> list[tuple[str, Any]]:
    """Attributes of ``cls`` that its source does not show: a method or a constant set
    on the class after its body (``Model.extra = extra``, ``Model.RATE = 2``), or a
    constant of the body given another value since. Names starting with ``_`` (Python's,
    abc's, enum's and NamedTuple's own), an enum's members, ``__slots__`` fields and what
    the body defines as it is are left out."""
    body = next((node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)), None)
    if body is None:
        return []
    defined, literals = set(), {}
    for statement in body.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(statement.name)
            continue
        target = _single_target(statement)
        if target is not None:
            try:
                literals[target] = ast.literal_eval(statement.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                literals.pop(target, None)
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.alias):
                defined.add((node.asname or node.name).split(".")[0])
    own = f"{cls.__qualname__}."
    found = []
    for attribute, value in vars(cls).items():
        if (
            attribute.startswith("_")  # Python's, abc's, enum's, NamedTuple's own
            or cls in type(value).__mro__  # an enum's members
            or (hasattr(type(value), "__get__") and not isinstance(value, _CODE_HOLDERS))
        ):
            continue  # fields of __slots__ or a NamedTuple: the body's source says them
        if attribute in defined:
            if attribute in literals:
                if _same_literal(literals[attribute], value):
                    continue
            else:
                code = getattr(value, "__func__", getattr(value, "fget", value))
                if getattr(code, "__qualname__", own).startswith(own):
                    continue  # the body's own function, class or computed value
        found.append((attribute, value))
    return found


_CODE_HOLDERS = (types.FunctionType, classmethod, staticmethod, property, functools.partial)


def _single_target(statement: ast.stmt) -> str | None:
    """The name ``NAME = value`` or ``NAME: type = value`` assigns, if that is its form."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target = statement.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


def _same_literal(literal: Any, value: Any) -> bool:
    try:
        return type(literal) is type(value) and bool(literal == value)
    except Exception:  # a comparison that fails: not the same
        return False


def _normalized(obj: Any) -> tuple[str, ast.AST | None]:
    """``obj``'s source without comments, docstrings or layout, and its syntax tree."""
    try:
        # inspect reads a decorator's wrapper as the function it wraps: not here.
        target = obj.__code__ if hasattr(obj, "__wrapped__") and hasattr(obj, "__code__") else obj
        source, tree = source_and_tree(target)
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        if code is None:
            raise
        return _bytecode_text(code), None
    strip_docstrings(tree)
    _strip_decorator_of_stage(tree)
    text = ast.unparse(tree)
    _check_not_stale(target, text)
    return text, tree


_READ_AS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""A function's code object (a class) -> its normalized source when this process first
read it: the text the code in memory was made from, as far as this process can tell."""


def _check_not_stale(obj: Any, text: str) -> None:
    """Refuse code in memory that its file no longer says.

    In a notebook (or any process that runs more than once), a module edited after it
    was imported still runs the code imported then, while its file, which the key is
    made from, says something else: the old code's results would be cached under the
    new code's key, and a later run would reuse them. Reloading the module (or
    ``%autoreload``, which puts new code into the same functions) makes new code
    objects, which this accepts.
    """
    held = obj.__code__ if isinstance(obj, types.FunctionType) else obj
    # A class is kept as it was read with what it held then: %autoreload updates a class
    # in place (new code in its methods, new values), keeping the class object.
    read = (text, _held_by(obj)) if isinstance(obj, type) else text
    try:
        first = _READ_AS.setdefault(held, read)
    except TypeError:  # an object that cannot be weakly referenced: nothing to compare
        return
    if first == read:
        return
    if isinstance(obj, type) and first[1] != read[1]:
        _READ_AS[held] = read  # updated in place since it was read: new code, new text
        return
    name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
    where = getattr(held, "co_filename", None) or inspect.getsourcefile(obj) or "its file"
    module = getattr(obj, "__module__", "THE_MODULE")
    short = getattr(obj, "__qualname__", "?").split(".")[0]
    raise ProjectError(
        f"{where} changed since this Python session imported {name} from it: the code "
        "that would run is the one imported then, and its results would be cached as if "
        "they came from the file as it is now. Reload the module and those importing from "
        f"it (importlib.reload({module})), then import the names you use from it again "
        f"(`from {module} import {short}`: a reload leaves them as they were), or restart "
        "the kernel, then run again. In Jupyter, `%load_ext autoreload` and `%autoreload 2` "
        "do this for you, for edits made after they ran."
    )


def _held_by(cls: type) -> tuple:
    """What the body of ``cls`` holds now: its methods' code and defaults, its values (by
    identity: a class holding a large table costs no ``repr`` of it). It changes when the
    class is updated in place (``%autoreload`` gives it new code and new values), not when
    its file is edited."""
    held = []
    for attribute, value in sorted(vars(cls).items()):
        if attribute in ("__dict__", "__weakref__", "__doc__", "__firstlineno__"):
            continue
        functions = _functions_of(value)
        if functions:
            held.append(
                (
                    attribute,
                    [
                        (
                            _bytecode_text(f.__code__),
                            _held_value(f.__defaults__),
                            _held_value(f.__kwdefaults__),
                        )
                        for f in functions
                    ],
                )
            )
        else:
            held.append((attribute, _held_value(value)))
    return tuple(held)


def _held_value(value: Any) -> tuple[str, int]:
    """A value held by a class, as itself: the class holds it, so its ``id`` is not reused
    while it does."""
    return type(value).__qualname__, id(value)


_CLASS_HOUSEKEEPING = frozenset(
    {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__",
     "__dataclass_fields__", "__dataclass_params__", "__match_args__", "__firstlineno__",
     "__static_attributes__"}
)  # fmt: skip
"""What Python puts in every class body's namespace: not the researcher's code."""


def _functions_of(value: Any) -> list[types.FunctionType]:
    """The functions a class attribute runs: a method, a static or class method's, a
    property's getter, setter and deleter; none for anything else."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [
            f for f in (value.fget, value.fset, value.fdel) if isinstance(f, types.FunctionType)
        ]
    return [value] if isinstance(value, types.FunctionType) else []


def _bytecode_text(code: types.CodeType) -> str:
    """A function without source (defined in ``exec``'d text), by its bytecode, constants and
    names; nested functions and comprehensions likewise, not by their ``repr`` (which holds
    a memory address, new in every process)."""
    consts = tuple(
        _bytecode_text(const) if isinstance(const, types.CodeType) else const
        for const in code.co_consts
    )
    return repr((code.co_code, consts, code.co_names))


def _strip_decorator_of_stage(tree: ast.AST) -> None:
    """The ``@stage(...)`` line is not code: inputs/outputs/cachers are keyed on their own."""
    for node in tree.body if isinstance(tree, ast.Module) else ():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.decorator_list = [d for d in node.decorator_list if not _is_stage_decorator(d)]


def _is_stage_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name in ("stage", "aggregate")


def _referenced(
    tree: ast.AST,
    namespace: dict,
    module: str | None = None,
    exclude_bound: set | None = None,
    bound: set | None = None,
):
    """Globals a syntax tree reads: plain names, and ``module.attr`` chains on modules.

    A name counts as a global where no scope around that use binds it (Python's own
    rule): a lambda's parameter or a comprehension's variable named like a global
    hides it only inside that lambda or comprehension. ``exclude_bound`` names are
    globals although the code binds them (imports inside a function, resolved into
    ``namespace``); ``bound`` names are locals although no syntax shows it (a lambda's
    parameters, when only its body was parsed).
    """
    module = module or namespace.get("__name__", "?")
    seen: set[str] = set()
    for node in _global_uses(tree, frozenset(bound or ()), frozenset(exclude_bound or ())):
        if isinstance(node, ast.Attribute):
            chain = _chain(node)
            if chain is None or chain[0] not in namespace:
                continue
            value = namespace[chain[0]]
            path = [chain[0]]
            for attr in chain[1:]:
                if not isinstance(value, (types.ModuleType, type)):
                    break
                try:
                    value = getattr(value, attr)
                except AttributeError:
                    break
                path.append(attr)
            qualified = f"{module}.{'.'.join(path)}"
            if len(path) > 1 and qualified not in seen:
                seen.add(qualified)
                yield qualified, value
        else:
            name = node.id
            if name not in namespace or name in seen:
                continue
            value = namespace[name]
            if isinstance(value, types.ModuleType):
                continue  # modules count through the attributes used on them
            seen.add(name)
            yield f"{module}.{name}", value


_FUNCTION_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _global_uses(tree: ast.AST, bound: frozenset, never_bound: frozenset):
    """The ``Name`` loads (and ``Attribute`` chains on names) of ``tree`` that no
    enclosing scope binds. A class body's names are seen by its own statements only,
    not by the methods inside it, as in Python."""

    def visit(node: ast.AST, visible: frozenset, class_names: frozenset):
        if isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id not in visible and root.id not in class_names:
                yield node
        elif (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id not in visible
            and node.id not in class_names
        ):
            yield node
        if isinstance(node, ast.ClassDef):
            for child in (*node.decorator_list, *node.bases, *node.keywords):
                yield from visit(child, visible, class_names)
            own = _bindings(node) - never_bound
            for child in node.body:
                yield from visit(child, visible, own)
            return
        if isinstance(node, (*_FUNCTION_SCOPES, *_COMPREHENSIONS)):
            if not isinstance(node, _COMPREHENSIONS):
                for child in (*getattr(node, "decorator_list", ()), *_defaults(node.args)):
                    yield from visit(child, visible, class_names)
            inner = visible | (_bindings(node) - never_bound)
            for child in _scope_body(node):
                yield from visit(child, inner, frozenset())
            return
        for child in ast.iter_child_nodes(node):
            yield from visit(child, visible, class_names)

    return visit(tree, bound, frozenset())


def _defaults(args: ast.arguments) -> list:
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]


def _scope_body(node: ast.AST) -> list:
    """What runs inside a scope (not its decorators and defaults, which run outside)."""
    if isinstance(node, ast.Lambda):
        return [node.body]
    if isinstance(node, _COMPREHENSIONS):
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for generator in node.generators:
            parts += [generator.target, generator.iter, *generator.ifs]
        return parts
    return [*node.body, *(a.annotation for a in _all_args(node.args) if a.annotation)]


def _all_args(args: ast.arguments) -> list:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _bindings(scope: ast.AST) -> frozenset:
    """Names a scope binds itself: its parameters, and what its own statements assign,
    import, define or loop over (not what nested scopes bind); minus ``global`` ones."""
    names: set[str] = set()
    declared_global: set[str] = set()
    if isinstance(scope, _FUNCTION_SCOPES):
        names.update(a.arg for a in _all_args(scope.args))
    pending = list(_scope_body(scope)) if not isinstance(scope, ast.ClassDef) else list(scope.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # its insides are its own scope
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            if isinstance(node, ast.Global):
                declared_global.update(node.names)
            continue
        elif isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
            continue
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return frozenset(names - declared_global)


def _imports_inside(tree: ast.AST, module: str) -> dict[str, Any]:
    """What ``import`` statements inside a function bind, resolved now (not executed code)."""
    found: dict[str, Any] = {}
    package = module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _import_quietly(alias.name)
                if target is None:
                    continue
                if alias.asname:
                    found[alias.asname] = target
                else:
                    top = alias.name.split(".")[0]
                    found[top] = sys.modules.get(top, target)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            source = _import_quietly(base)
            for alias in node.names:
                if alias.name == "*":
                    continue
                value = getattr(source, alias.name, None) if source is not None else None
                if value is None:
                    value = _import_quietly(f"{base}.{alias.name}")
                if value is not None:
                    found[alias.asname or alias.name] = value
    return found


def _import_quietly(name: str) -> Any:
    """The module ``name`` if it is imported or importable, else ``None``."""
    if not name:
        return None
    found = sys.modules.get(name)
    if found is not None:
        return found
    try:
        return importlib.import_module(name)
    except Exception:  # importing must never fail a run's planning
        return None


def _chain(node: ast.Attribute) -> list[str] | None:
    parts = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    parts.append(current.id)
    return parts[::-1]


_FILLING_METHODS = frozenset(
    {
        "append", "extend", "insert", "remove", "pop", "popitem", "clear", "sort", "reverse",
        "update", "setdefault", "add", "discard", "difference_update",
        "intersection_update", "symmetric_difference_update",
        "__setitem__", "__delitem__", "__iadd__", "__ior__",
    }
)  # fmt: skip
"""The methods by which code changes a list, dict, set or bytearray in place."""
_ITEM_METHODS = frozenset({"get", "setdefault", "__getitem__"})


def _filled_names(tree: ast.AST) -> frozenset[str]:
    """The names whose container the code (nested functions included) changes in place:
    ``memo[k] = v``, ``counts[k] += 1``, ``del seen[k]``, ``seen.append(x)``,
    ``table[k].append(x)``, ``table.setdefault(k, []).append(x)``."""
    filled: set[str] = set()

    def root(node: ast.AST) -> None:
        while True:
            if isinstance(node, (ast.Subscript, ast.Attribute)):
                node = node.value
            elif (  # what these return lives in the container: table.get(k).append(x)
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _ITEM_METHODS
            ):
                node = node.func.value
            else:
                break
        if isinstance(node, ast.Name):
            filled.add(node.id)

    def target(node: ast.AST) -> None:
        if isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                target(element)
        elif isinstance(node, ast.Starred):
            target(node.value)
        elif isinstance(node, (ast.Subscript, ast.Attribute)):
            root(node.value)

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.Delete)):
            for each in node.targets:
                target(each)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.comprehension)):
            target(node.target)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            target(node.optional_vars)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _FILLING_METHODS
        ):
            root(node.func.value)
    return frozenset(filled)


@functools.lru_cache(maxsize=4096)
def _kept_cells(code: types.CodeType) -> frozenset[str]:
    """The variables of enclosing functions that ``code``, or a function nested in it,
    assigns or deletes through ``nonlocal``: free variables of ``code``. Read from the
    bytecode, so it needs no source.

    A ``global`` it assigns stays keyed: a module-level setting a stage may change in
    one branch (``RATE = 0.1``, halved there) is still configuration the next run reads.
    """
    cells: set[str] = set()
    pending = [(code, set(code.co_freevars))]
    while pending:
        current, outer = pending.pop()  # outer: its free variables that are code's too
        for instruction in dis.get_instructions(current):
            if (
                instruction.opname in ("STORE_DEREF", "DELETE_DEREF")
                and instruction.argval in outer
            ):
                cells.add(instruction.argval)
        for const in current.co_consts:
            if isinstance(const, types.CodeType):
                pending.append((const, outer & set(const.co_freevars)))
    return frozenset(cells)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


_PLAIN = (
    type(None), bool, int, float, complex, str, bytes, bytearray, tuple, list, dict, set,
    frozenset, range, slice, Path, enum.Enum, datetime.date, datetime.time,
    datetime.timedelta, datetime.tzinfo, functools.partial, types.SimpleNamespace,
    types.MappingProxyType, re.Pattern,
)  # fmt: skip
_PLAIN_IF_LOADED = {"decimal": "Decimal", "fractions": "Fraction", "uuid": "UUID"}
"""Plain types of modules imported only for them (a value can only be one once its
module is loaded, so assay need not import them itself)."""


def _hashable_form(value: Any, root: str) -> Any:
    """``value``, or what stands for it where the hasher has no rule of its own. A path
    into the project (``DATA = Path(__file__).parent / "data"``) counts from the project's
    folder, so that a copy of the project elsewhere, sharing the cache, has the same keys."""
    if isinstance(value, PurePath) and value.is_absolute():
        try:
            inside = value.relative_to(root)
        except ValueError:
            return value
        return ("path in the project", type(value).__name__, inside.as_posix())
    if type(value) in (list, tuple, set, frozenset):  # paths in a container, too
        return type(value)(_hashable_form(item, root) for item in value)
    if type(value) is dict:
        return {key: _hashable_form(item, root) for key, item in value.items()}
    if isinstance(value, re.Pattern):
        return ("re.Pattern", value.pattern, value.flags)
    if _is_random_generator(value):  # in a container: by its type, as on its own
        return ("numpy random generator", type(value).__qualname__)
    if isinstance(value, types.MappingProxyType):
        return ("mappingproxy", dict(value))
    return value


def _is_session_state(value: Any) -> bool:
    """Whether ``value`` is the interpreter's state: ``os.environ``, ``sys.argv``,
    ``sys.path``, ``sys.modules``, and numpy's global random state (what
    ``np.random.rand()`` draws from). They differ from one shell or one way of starting a
    run to the next (``OLDPWD``, ``SSH_CLIENT``, what is imported, a seed numpy takes from
    the operating system), so a key holding them would recompute for nothing; a setting
    that changes results belongs in a parameter."""
    if any(value is state for state in (os.environ, sys.argv, sys.path, sys.modules)):
        return True
    mtrand = sys.modules.get("numpy.random.mtrand")
    return mtrand is not None and value is getattr(mtrand, "_rand", None)


def _is_plain_data(value: Any) -> bool:
    """Values whose content is what matters: constants, containers, arrays, frames, and
    objects that say how to hash them (``__assay_hash__``)."""
    if isinstance(value, _PLAIN) or hasattr(type(value), "__assay_hash__"):
        return True
    for module_name, type_name in _PLAIN_IF_LOADED.items():
        module = sys.modules.get(module_name)
        if module is not None and isinstance(value, getattr(module, type_name)):
            return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return True
    module = type(value).__module__.split(".")[0]
    return module in ("numpy", "pandas") and not _is_random_generator(value)


def _is_random_generator(value: Any) -> bool:
    """A numpy random generator (``RNG = np.random.default_rng(0)``): state that changes with
    every draw, as ``random.Random``'s does, so it counts by its type, not by its state."""
    random = sys.modules.get("numpy.random")
    return random is not None and isinstance(value, (random.Generator, random.BitGenerator))
