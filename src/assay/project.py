"""Finding and importing a project's experiment and parameter files.

``assay run iris -p grid`` imports ``experiments/iris.py`` as the module
``experiments.iris`` and ``params/grid.py`` as ``params.grid``, with the project
root on ``sys.path``, so parameter files can ``from experiments.iris import
Params`` and get the very same class the experiment uses. A path to a ``.py``
file works too. A file whose name is no Python identifier keeps its path as its
module name (``experiments/my-exp.py`` is ``experiments.my-exp``, distinct from
``params/my-exp.py``), which worker processes import by name as well.
"""

from __future__ import annotations

import difflib
import errno
import functools
import hashlib
import importlib
import importlib.util
import logging
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from assay.compat import names_curifactory_has
from assay.config import ProjectConfig, enclosing_project, setting_source
from assay.errors import ParameterError, ProjectError

log = logging.getLogger("assay")


def project_root_for(experiment: object, start: Path | None = None) -> Path | None:
    """The project folder to run ``experiment`` in, when the current folder (``start``)
    does not decide it: ``None`` means the project found from the current folder.

    ``assay run ../other/experiments/x.py`` from a folder that is in no project runs
    ``x.py`` in its own project (the folder above it with ``experiments/`` or an
    ``assay.toml``): its parameter files, cache and run store, not new ones made in the
    current folder. Both cases are said in one line (a warning): that one, and an
    experiment file of another project run in the current folder's project.
    """
    if not isinstance(experiment, str) or not _is_path(experiment):
        return None
    path = _python_file(Path(experiment))  # as _resolve does
    if not path.is_file():
        return None  # load_experiment says what is wrong with it
    own = enclosing_project(path.resolve().parent)
    here = enclosing_project(start or Path.cwd())
    if own is None or own == here:
        return None
    if here is None:
        _say_once(
            f"The current folder is in no assay project: {experiment} runs in its own "
            f"project, {own} (its parameter files, cache and run store)."
        )
        return own
    _say_once(
        f"{experiment} belongs to the project {own} but runs in the project of the current "
        f"folder, {here} (its parameter files, cache and run store). To run it in its own "
        f"project, run assay from {own}."
    )
    return None


def _say_once(warning: str) -> None:
    """Log ``warning`` unless this process did already (the command line and the run it
    starts may both ask :func:`project_root_for`)."""
    if warning not in _SAID:
        _SAID.add(warning)
        log.warning(warning)


_SAID: set[str] = set()


def _is_path(ref: str) -> bool:
    """Whether ``ref``, given for an experiment or a parameter file, is a path (not a name)."""
    return Path(ref).suffix == ".py" or "/" in ref or os.sep in ref


def load_experiment(ref: str, config: ProjectConfig) -> ModuleType:
    """Import the experiment ``ref`` (a name in ``experiments/`` or a path) and check it."""
    module = _import(ref, config.experiments_dir, config, "experiment")
    check_experiment(module)
    return module


def check_experiment(module: ModuleType) -> None:
    """Raise :class:`ProjectError` unless ``module`` has a ``run`` that can be called as
    ``run(param_sets, manager)``."""
    where = getattr(module, "__file__", None) or module.__name__
    run = getattr(module, "run", None)
    if not callable(run):
        raise ProjectError(
            f"Experiment {where} has no run(param_sets, manager) function. "
            "Add one that calls your stages on assay.Record objects."
        )
    problem = _cannot_call(run, 2)
    if problem is not None:
        raise ProjectError(
            f"The run() function of experiment {where} is defined as run{problem[0]}, but "
            f"assay calls it as run(param_sets, manager), with the list of parameter sets "
            f"and the run's manager ({problem[1]}). Define it as "
            "`def run(param_sets, manager):`."
        )


def _cannot_call(function: object, count: int) -> tuple[str, str] | None:
    """``None`` if ``function`` can be called with ``count`` positional arguments, else its
    signature's text and why it cannot (``missing a required argument: 'x'``)."""
    import inspect

    try:
        signature = inspect.signature(function)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a builtin or a C function: let the call tell
        return None
    try:
        signature.bind(*([None] * count))
    except TypeError as exc:
        return str(signature), str(exc)
    return None


def load_param_sets(refs: list[str], experiment: ModuleType, config: ProjectConfig) -> list:
    """The parameter sets of every file in ``refs``, in order.

    With no ``refs`` the experiment's own ``get_params()`` supplies them. Their names
    must be unique: a name used twice is refused with the files (and positions in
    them) that use it.
    """
    from assay.params import check_unique_names

    modules = [_param_file(r, config) for r in refs] if refs else [experiment]
    files = [module_place(m, config) for m in modules]
    twice = [f for i, f in enumerate(files) if f in files[:i]]
    if twice:
        raise ParameterError(
            f"The parameter file {twice[0]} is given twice (-p): its sets would run twice "
            "under the same names. Give it once."
        )
    param_sets: list = []
    origins: list[str] = []
    for module, shown in zip(modules, files):
        sets = call_get_params(module, is_experiment=not refs)
        param_sets.extend(sets)
        origins.extend(f"item {i} of get_params() in {shown}" for i in range(len(sets)))
    check_unique_names(param_sets, origins=origins)
    return param_sets


def module_place(module: ModuleType, config: ProjectConfig | None = None) -> str:
    """Where ``module`` comes from, as messages name it: its file (relative to the project
    root, with ``config``), or ``module NAME`` for a module without a file (built in a
    notebook, or a notebook's own ``__main__``)."""
    file = getattr(module, "__file__", None)
    if not file:
        return f"module {module.__name__}"
    return _shown_path(file, config) if config is not None else file


def _shown_path(file: str | None, config: ProjectConfig) -> str:
    """``file`` relative to the project root when it is inside it, else as it is."""
    if file is None:
        return "?"
    try:
        return Path(file).resolve().relative_to(Path(config.root).resolve()).as_posix()
    except ValueError:
        return file


def call_get_params(module: ModuleType, is_experiment: bool = False) -> list:
    """Call ``module.get_params()`` and check that it returned parameter sets.

    ``is_experiment``: ``module`` is the experiment itself, asked for its sets
    because no parameter file was given (``assay run NAME`` without ``-p``).
    """
    from assay.params import ExperimentParameters

    where = module_place(module)
    get_params = getattr(module, "get_params", None)
    if not callable(get_params):
        raise ParameterError(_no_get_params(where, is_experiment))
    problem = _cannot_call(get_params, 0)
    if problem is not None:
        raise ParameterError(
            f"get_params() in {where} is defined as get_params{problem[0]}, but assay calls "
            f"it without arguments ({problem[1]}). Define it as `def get_params():` (or give "
            "its parameters default values) returning a list of parameter sets."
        )
    try:
        result = get_params()
    except Exception as exc:
        raise ProjectError(f"get_params() in {where} raised {_describe(exc)}") from exc
    if isinstance(result, ExperimentParameters):
        result = [result]
    if not isinstance(result, (list, tuple)):
        raise ParameterError(
            f"get_params() in {where} returned {type(result).__name__}; "
            "it must return a list of parameter sets."
        )
    wrong = [
        (i, type(p).__name__)
        for i, p in enumerate(result)
        if not isinstance(p, ExperimentParameters)
    ]
    if wrong:
        items = ", ".join(f"item {i} is a {name}" for i, name in wrong[:5])
        raise ParameterError(
            f"get_params() in {where} must return ExperimentParameters instances, but {items}. "
            "Derive your parameter class from assay.ExperimentParameters and decorate it with @dataclass."
        )
    for cls in dict.fromkeys(type(p) for p in result):
        undeclared = _fields_outside_the_dataclass(cls)
        if undeclared:
            raise ParameterError(
                f"{cls.__qualname__} (from get_params() in {where}) declares "
                f"{', '.join(undeclared)} but is not decorated with @dataclass, so "
                f"{'it is' if len(undeclared) == 1 else 'they are'} not part of the parameter "
                "set: not in its hash (sets that differ there would share results), not "
                f"settable with --set, not in reports. Put @dataclass on class {cls.__name__}."
            )
    return list(result)


def _no_get_params(where: str | None, is_experiment: bool) -> str:
    """The message for a module without ``get_params()``."""
    if is_experiment:
        return (
            f"No parameter sets to run: no parameter file was given, and the experiment "
            f"{where} has no get_params() function to supply them. Pass a parameter file "
            "with -p FILE (a name in params/ or a path to a .py file), or add to the "
            "experiment a get_params() function returning a list of parameter sets "
            "(ExperimentParameters instances)."
        )
    return (
        f"{where} has no get_params() function. A parameter file must define "
        "get_params() returning a list of parameter sets (ExperimentParameters instances)."
    )


def _fields_outside_the_dataclass(cls: type) -> list[str]:
    """Annotated class attributes of ``cls`` and its bases that are not dataclass fields
    (a subclass someone forgot to decorate)."""
    import typing

    fields = getattr(cls, "__dataclass_fields__", {})  # ClassVar and InitVar ones too
    found = []
    for klass in cls.__mro__:
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            class_var = annotation is typing.ClassVar or typing.get_origin(annotation) is (
                typing.ClassVar
            )
            if isinstance(annotation, str):  # from __future__ import annotations
                class_var = annotation.replace("typing.", "").startswith("ClassVar")
            if name not in fields and name not in found and not class_var:
                found.append(name)
    return found


def _param_file(ref: str, config: ProjectConfig) -> ModuleType:
    """``-p NAME``: ``params/NAME.py``, else (as in Curifactory) ``experiments/NAME.py``,
    whose ``get_params()`` then supplies the sets."""
    relative = f"{ref.replace('.', '/')}.py"
    if (
        Path(ref).suffix != ".py"
        and Path(ref).parent == Path(".")
        and not (config.params_dir / relative).is_file()
        and (config.experiments_dir / relative).is_file()
    ):
        return _import(ref, config.experiments_dir, config, "parameter file")
    return _import(ref, config.params_dir, config, "parameter file")


def _import(ref: str, folder: Path, config: ProjectConfig, kind: str) -> ModuleType:
    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    path = _resolve(ref, folder, kind, config)
    module_name = _module_name(path, config.root)
    try:
        _reload_edited(config)
        if not module_name.startswith(UNIMPORTABLE_PREFIX):
            module = importlib.import_module(module_name)
            if Path(module.__file__ or "").resolve() != path:
                # A different module of that name was imported earlier; load ours.
                module = _import_path(path, module_name)
            elif _edited_since_loaded(path):
                module = importlib.reload(module)
        else:
            module = sys.modules.get(module_name)  # the same file again (-p the experiment)?
            if (
                module is None
                or Path(getattr(module, "__file__", None) or "").resolve() != path
                or path not in _LOADED
                or _edited_since_loaded(path)
            ):
                module = _import_path(path, module_name)
        _LOADED[path] = _stamp(path)
        for other in _project_modules(config).values():  # imported along with it
            _LOADED.setdefault(other, _stamp(other))
    except ProjectError:
        raise
    except SyntaxError as exc:
        raise ProjectError(_syntax_error(exc, path, kind)) from exc
    except ValueError as exc:
        if "null bytes" not in str(exc):
            raise ProjectError(f"Importing the {kind} {path} failed: {_describe(exc)}") from exc
        # Python 3.10 says so with a ValueError, 3.11 with a SyntaxError.
        unreadable = SyntaxError(str(exc)).with_traceback(exc.__traceback__)
        raise ProjectError(_syntax_error(unreadable, path, kind)) from exc
    except Exception as exc:
        raise ProjectError(f"Importing the {kind} {path} failed: {_describe(exc)}") from exc
    return module


def _syntax_error(exc: SyntaxError, path: Path, kind: str) -> str:
    """The message for a syntax error met importing the ``kind`` file at ``path``.

    Python names no file and no line when it cannot read a file as source at all (a NUL
    byte in it): then the file is ``path`` itself, or a module it imports, whose import
    statement is the innermost frame of the project's code in the traceback.
    """
    if exc.filename:
        line = f", line {exc.lineno}," if exc.lineno else ""
        if Path(exc.filename).resolve() != Path(path).resolve():  # a module it imports
            return f"{exc.filename}{line} has a syntax error: {exc.msg} (the {kind} {path} imports it)."
        return f"The {kind} {exc.filename}{line} has a syntax error: {exc.msg}."
    user = _user_frames(exc)
    if user:
        return (
            f"The {kind} {path} imports a module that has a syntax error: {exc.msg} (the "
            f"import is at {user[-1].filename}, line {user[-1].lineno})."
        )
    return f"The {kind} {path} has a syntax error: {exc.msg}."


def _python_file(path: Path) -> Path:
    """The Python file a path given without ``.py`` means: ``params/grid`` is
    ``params/grid.py``, ``params/v1.2`` is ``params/v1.2.py`` (not ``v1.py``, nor, for
    ``params/grid.txt``, ``grid.py``)."""
    return path if path.suffix == ".py" else path.with_name(path.name + ".py")


def _resolve(ref: str, folder: Path, kind: str, config: ProjectConfig) -> Path:
    candidate = Path(ref)
    if _is_path(ref):
        if candidate.is_dir():
            raise ProjectError(_a_folder(ref, candidate, folder, kind))
        path = _python_file(candidate)
        if path.is_file():
            return path.resolve()
        if candidate.suffix and candidate.is_file():  # params/grid.txt, params/grid.json
            raise ProjectError(
                f"The {kind} {ref} is not a Python file: give a .py file, or the name of "
                f"one in {folder} ({', '.join(_names_in(folder)) or 'none there yet'})."
            )
        if os.path.lexists(path):
            raise ProjectError(_not_a_file(path, kind))
        shown = candidate if candidate.suffix else path  # params/grid.txt as typed
        message = f"The {kind} {shown} does not exist (a path is taken from {Path.cwd()})."
        named = _name_under(candidate, folder)
        near = folder / f"{candidate.stem}.py"
        if named is not None:
            message += f" To use {folder / _python_file(candidate)}, give its name: {named!r}."
        elif near.is_file():
            message += f" To use {near}, give its name: {candidate.stem!r}."
        else:
            message += _close_file(path)
        raise ProjectError(message)
    path = folder / f"{ref.replace('.', '/')}.py"
    if path.is_file():
        return path.resolve()
    for found in (path, candidate):
        if found.is_dir():
            raise ProjectError(_a_folder(ref, found, folder, kind))
    if os.path.lexists(path):
        raise ProjectError(_not_a_file(path, kind))
    available = _names_below(folder)
    hint = _closest(ref, [n for n in available if n != ref])
    message = f"No {kind} named {ref!r}: {path} does not exist."
    if ref in available:  # a dotted name: its dots were taken as folders
        message += f" To use {folder / ref}.py, give its path instead of its name."
    elif hint:
        message += f" Did you mean {hint[0]!r}?"
    elif available:
        message += f" Available in {folder}: {', '.join(available)}."
    elif not folder.is_dir():
        message += _no_folder(folder, config)
    else:
        message += f" {folder} has no .py files; create one or give a path to a .py file."
    raise ProjectError(message)


def _name_under(candidate: Path, folder: Path) -> str | None:
    """The name (``grp.linefit``) of the module that the relative path ``candidate``
    (``grp/linefit``) reaches from ``folder``, if one is there; else ``None``."""
    parts = candidate.with_suffix("").parts if candidate.suffix == ".py" else candidate.parts
    if candidate.is_absolute() or not parts or any(p in ("..", ".") or "." in p for p in parts):
        return None
    return ".".join(parts) if (folder / _python_file(candidate)).is_file() else None


def _closest(ref: str, names: list[str]) -> list[str]:
    """The name of ``names`` that ``ref`` most likely means: one whose last part is ``ref``
    (``grp.linefit`` for ``linefit``), else the closest in spelling; ``[]`` if none is."""
    same = [name for name in names if name.rsplit(".", 1)[-1] == ref]
    return same[:1] or difflib.get_close_matches(ref, names, n=1)


def _names_below(folder: Path, depth: int = 4) -> list[str]:
    """The names of the modules in ``folder`` and its subfolders (``depth`` levels), as
    they are given by name: ``grp.linefit`` for ``grp/linefit.py``. Private ones (``_x``)
    are left out, and so are folders whose names no module name can hold (``__pycache__``,
    ``.git``, ``v1.2``) and what is below a subfolder with no ``.py`` file (``data/``, a
    virtual environment's folders): a search that stays in the code."""
    names: list[str] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(folder, ())]
    while stack:
        current, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda entry: entry.name)
        except OSError:
            continue
        code = [e.name for e in entries if e.name.endswith(".py") and e.is_file()]
        if prefix and not code:
            continue
        names += [".".join([*prefix, name[:-3]]) for name in code if not name.startswith("_")]
        if len(prefix) < depth:
            stack += [
                (Path(e.path), (*prefix, e.name))
                for e in entries
                if e.is_dir() and not e.name.startswith(("_", ".")) and "." not in e.name
            ]
    return sorted(names)


def _close_file(path: Path) -> str:
    """`` Did you mean experiments/example.py?`` for a mistyped path to a .py file whose
    folder has one of a close name; ``""`` if none is close."""
    names = [p.name for p in path.parent.glob("*.py")] if path.parent.is_dir() else []
    close = difflib.get_close_matches(path.name, names, n=1)
    return f" Did you mean {path.with_name(close[0])}?" if close else ""


def _no_folder(folder: Path, config: ProjectConfig) -> str:
    """Why the experiments or parameter folder ``folder`` is missing, and what to do: a
    setting names a folder that is not there, or this is no project (its root)."""
    setting = "experiments_dir" if folder == config.experiments_dir else "params_dir"
    source = setting_source(config.root, setting) if folder == getattr(config, setting) else None
    if source is not None:
        return (
            f" There is no folder {folder}, which the setting {setting} names ({source}): "
            "correct the setting, or create the folder."
        )
    return (
        f" There is no folder {folder}: run assay from the project's root (the folder "
        "with experiments/), give a path to a .py file, or make a project with `assay init`."
    )


def _names_in(folder: Path) -> list[str]:
    """The names of the modules in ``folder`` (its ``.py`` files, private ones left out)."""
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


def _a_folder(ref: str, found: Path, folder: Path, kind: str) -> str:
    """The message for ``ref``, given where one experiment or parameter file is meant, that
    names the folder ``found`` (``folder`` holds the named ones)."""
    message = (
        f"The {kind} {ref!r} is a folder ({found.resolve()}), not a .py file: give "
        f"one {kind}, by its name (a file in {folder}) or by the path of its .py file."
    )
    inside = _names_in(found)
    if inside:
        message += f" In that folder: {', '.join(f'{name}.py' for name in inside)}."
    return message


def _not_a_file(path: Path, kind: str) -> str:
    """The message for the ``kind`` file at ``path`` that is there but no file to read: a
    broken symbolic link, a link in a loop, a named pipe or a device."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            what = "a symbolic link in a loop (it leads back to itself)"
        elif path.is_symlink():
            what = f"a broken symbolic link: it points to {os.readlink(path)}, which does not exist"
        else:
            what = f"unreadable ({exc.strerror or exc})"
    else:
        what = "not a regular file (a named pipe, a socket or a device)"
    return f"The {kind} {path} is {what}. Make it a .py file, or give another {kind}."


def _module_name(path: Path, root: Path) -> str:
    """The module name of the experiment or parameter file at ``path``: its path from the
    project root, dotted (``experiments.iris``, ``params.my-grid``), which ``import``
    finds from the root (worker processes too, when they unpickle a parameter set whose
    class that file defines), though not as Python source can write it.

    A file outside the project, or one whose path has a dot in a name (``v1.2/x.py``),
    gets ``assay_user_STEM`` instead, which only :func:`_import_path` can import; with
    a digest of its path after it if another file already has that name in this process
    (an experiment and a parameter file both called ``x.py``).
    """
    try:
        parts = path.with_suffix("").relative_to(root).parts
    except ValueError:
        parts = ()
    if parts and all(part and "." not in part for part in parts):
        return ".".join(parts)
    name = f"{UNIMPORTABLE_PREFIX}{path.stem}"
    other = getattr(sys.modules.get(name), "__file__", None)
    if other is not None and Path(other).resolve() != path:
        digest = hashlib.sha256(str(path).encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name}_{digest}"
    return name


UNIMPORTABLE_PREFIX = "assay_user_"
"""The start of the module names of files that ``import`` cannot find by name (outside
the project): a worker process must import them from their file."""


_LOADED: dict[Path, tuple[int, int] | None] = {}
"""An experiment or parameter file -> its modification time and size when assay last
imported it in this process."""


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _edited_since_loaded(path: Path) -> bool:
    """Whether the file changed since assay imported it in this process: a notebook that
    calls ``run_experiment`` again after an edit gets the file as it is now, as a new
    ``assay run`` would (its helper modules are its own to reload: see
    :func:`assay.codeprint._check_not_stale`)."""
    return path in _LOADED and _LOADED[path] != _stamp(path)


def _project_modules(config: ProjectConfig) -> dict[str, Path]:
    """The modules imported from the project's experiment and parameter folders (helpers
    there too), by name, with their files."""
    folders = tuple(
        os.path.join(os.path.realpath(f), "") for f in (config.experiments_dir, config.params_dir)
    )
    found = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and (real := _real_file(file)).startswith(folders):
            found[name] = Path(real)
    return found


def _real_file(file: str) -> str:
    """``os.path.realpath(file)``, each folder resolved once per process.

    Every run looks at the file of every imported module (over a thousand once
    pandas or Dask is imported), and ``realpath`` makes a system call per part of
    the path: 0.05–0.1 s per run on a busy disk. A module file that is itself a
    symbolic link is resolved in full; a relative path (resolved from the current
    folder) is never kept.
    """
    if not os.path.isabs(file):
        return os.path.realpath(file)
    return _real_absolute_file(file)


@functools.cache
def _real_absolute_file(file: str) -> str:
    if os.path.islink(file):
        return os.path.realpath(file)
    folder, name = os.path.split(file)
    return os.path.join(_real_folder(folder), name)


@functools.cache
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _reload_edited(config: ProjectConfig) -> None:
    """Import again the project's modules edited since assay saw them in this process,
    then those that import from them (a parameter file that does ``from params.base
    import A`` would keep the old ``A``), so that ``run_experiment`` called again in a
    notebook runs what the files say now."""
    project = _project_modules(config)
    pending = [name for name, path in project.items() if _edited_since_loaded(path)]
    done: set[str] = set()
    while pending:
        for name in pending:
            module = sys.modules.get(name)
            if module is not None:
                importlib.reload(module)
            _LOADED[project[name]] = _stamp(project[name])
            done.add(name)
        pending = [
            name
            for name, path in project.items()
            if name not in done and _imports_from(path, name) & done
        ]


def _imports_from(path: Path, name: str) -> set[str]:
    """The modules the file at ``path`` (module ``name``) imports, by their full names
    (``from params import base`` counts as ``params`` and ``params.base``)."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return set()
    package = name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _import_path(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ProjectError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _describe(exc: BaseException) -> str:
    """``ValueError: bad value (at params/grid.py, line 12)`` for the innermost user frame."""
    user = _user_frames(exc)
    where = f" (at {user[-1].filename}, line {user[-1].lineno})" if user else ""
    return f"{type(exc).__name__}: {exc}{where}."


def _user_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """The frames of ``exc``'s traceback in the researcher's code (not importlib's or assay's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return [f for f in frames if "importlib" not in f.filename and "/assay/" not in f.filename]


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
