"""Where a project keeps things: folders, the run store, and their configuration.

A project needs no configuration. Its root is the nearest folder, from the
current one upwards, that holds an ``assay.toml``, a ``pyproject.toml`` with a
``[tool.assay]`` table, or an ``experiments/`` folder; failing that, the
current folder. Every path below can be changed in ``[tool.assay]`` of
``pyproject.toml``, in ``assay.toml`` (at its top level, or under ``[tool.assay]``:
one of the two, not both) and by an environment variable::

    [tool.assay]
    cache_dir = "/scratch/me/assay-cache"   # or ASSAY_CACHE_DIR
    reports_dir = "reports"                 # or ASSAY_REPORTS_DIR

An ``ASSAY_*`` environment variable that assay does not read (a misspelt
``ASSAY_CACHEDIR``) is reported in one line, with the name it probably means.

Relative paths are relative to the project root (a relative ``--cache DIR`` on
the command line, though, is taken from the current folder, as every path
given there is).

The cache may also live at an fsspec URL, shared by every machine that runs
the experiment (see :mod:`assay.caches.fsspec`)::

    [tool.assay]
    cache_dir = "s3://my-lab/assay-cache"   # gcs://, az://, sftp://host/path, ...
    local_cache_dir = "data/cache"          # local copies of what this machine read or wrote
    cache_options = { profile = "lab" }     # passed to the fsspec filesystem
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePath
from typing import Any

from assay.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_DEFAULTS = {
    "experiments_dir": "experiments",
    "params_dir": "params",
    "cache_dir": "data/cache",
    "runs_dir": "data/runs",
    "reports_dir": "reports",
    "logs_dir": "logs",
    "store_path": "assay.db",
    "local_cache_dir": "data/cache",
}
_TABLES = {"cache_options": dict}
"""Settings whose value is a TOML table, not a path."""

log = logging.getLogger("assay")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|::")
_ONE_SLASH_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)(.*)$", re.DOTALL)
"""``s3:/bucket``: a URL with a slash missing (a drive letter, ``C:/``, is one character)."""


@dataclass(frozen=True)
class ProjectConfig:
    """The folders and files of one assay project, as absolute paths."""

    root: Path
    """The project folder: experiments and parameter files import from here."""
    experiments_dir: Path
    """Experiment modules: ``assay run NAME`` looks for ``NAME.py`` here."""
    params_dir: Path
    """Parameter files: ``-p NAME`` looks for ``NAME.py`` here."""
    cache_dir: Path
    """The artifact cache (``ASSAY_CACHE_DIR``). With a cache at a URL, the folder of
    this machine's local copies of its artifacts."""
    runs_dir: Path
    """Exported runs (``--store-full``)."""
    reports_dir: Path
    """HTML reports."""
    logs_dir: Path
    """One console log per run."""
    store_path: Path
    """The run store, a SQLite file."""
    local_cache_dir: Path
    """Where local copies of a cache at a URL go (``ASSAY_LOCAL_CACHE_DIR``); unused
    when the cache is a folder."""
    cache_url: str | None = None
    """The cache's fsspec URL (``s3://bucket/path``), or ``None`` for a cache folder."""
    cache_options: dict = field(default_factory=dict, compare=False, repr=False)
    """Keyword arguments for the fsspec filesystem of ``cache_url`` (credentials,
    ``endpoint_url``, ...); never written to provenance records."""

    @property
    def cache_location(self) -> str:
        """The cache as the user named it: its URL, or its folder."""
        return self.cache_url or str(self.cache_dir)

    @classmethod
    def load(cls, root: str | Path | None = None, **overrides: str | Path | None) -> ProjectConfig:
        """Read the configuration of the project at ``root`` (found from the cwd if ``None``).

        Keyword arguments override the file and the environment, e.g.
        ``ProjectConfig.load(cache_dir="/tmp/cache")``.
        """
        root_path = Path(root).resolve() if root is not None else find_project_root()
        _warn_of_unknown_variables()
        settings: dict[str, Any] = dict(_DEFAULTS)
        settings.update({k: v for k, (v, _) in _file_settings(root_path).items()})
        for name in _DEFAULTS:
            env = os.environ.get(f"ASSAY_{name.upper()}")
            if env and not env.strip():
                raise ConfigError(
                    f"The environment variable ASSAY_{name.upper()} holds only blanks "
                    f"({env!r}), which would make a folder named so in the project. Give it "
                    f"a path, or unset it (unset ASSAY_{name.upper()})."
                )
            if env:
                settings[name] = env
        for name, value in overrides.items():
            if name not in _DEFAULTS:
                raise ConfigError(f"Unknown configuration setting {name!r}.")
            if value is not None:
                settings[name] = value
        if overrides.get("store_path") is None:
            _check_store_path(root_path, settings["store_path"])
        options = settings.pop("cache_options", {})
        cache = settings.pop("cache_dir")
        paths = {name: _absolute(root_path, value) for name, value in settings.items()}
        config = cls(root=root_path, cache_dir=paths["local_cache_dir"], **paths)
        return replace(config, cache_options=dict(options)).with_cache_dir(cache)

    def with_cache_dir(self, cache_dir: str | Path | None) -> ProjectConfig:
        """A copy of this configuration using another cache (a folder or a URL).

        A relative folder is taken from the project root, as in the configuration files;
        the command line's ``--cache DIR`` is made absolute from the current folder first
        (:func:`from_command_line`)."""
        if cache_dir is None:
            return self
        if not str(cache_dir).strip():
            raise ConfigError(
                f"The cache folder is empty ({str(cache_dir)!r}), which would make the project "
                f"folder, {self.root}, the cache. Give the cache folder (or its URL), or None "
                "for the project's cache (cache_dir in assay.toml)."
            )
        url = cache_url(cache_dir)
        if url is None:
            return replace(
                self, cache_dir=_absolute(self.root, _local_path(cache_dir)), cache_url=None
            )
        return replace(self, cache_dir=self.local_cache_dir / "remote" / _slug(url), cache_url=url)

    def make_folders(self, *settings: str) -> None:
        """Create the folders of these settings (``"logs_dir"``, ``"reports_dir"``...) if
        they do not exist yet; for ``"store_path"``, the folder the run store goes in.

        Raises:
            ConfigError: one cannot be created (a file in its place, no permission); the
                message names the folder, its setting and where that can be changed.
        """
        for name in settings:
            folder = Path(getattr(self, name))
            if name == "store_path":
                folder = folder.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(_unusable_folder(name, folder, exc, self.root)) from exc

    def as_dict(self) -> dict[str, str]:
        """The configuration as plain strings, for provenance records (no cache options:
        they may hold credentials)."""
        return {
            f.name: str(getattr(self, f.name)) for f in fields(self) if f.name != "cache_options"
        }


def _unusable_folder(name: str, folder: Path, exc: OSError, root: Path) -> str:
    """The message for the folder of setting ``name`` that could not be created."""
    label = "run store's" if name == "store_path" else name.removesuffix("_dir").replace("_", " ")
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        reason, fix = f"{blocking} is a file, not a folder", "or move that file away"
    elif isinstance(exc, PermissionError):
        reason = f"permission denied ({exc.filename or folder})"
        fix = "or get permission to write there"
    else:
        reason, fix = exc.strerror or str(exc), "or make room for it"
    source = setting_source(root, name)
    if source is not None:
        source = f"it comes from {source}"
    else:
        source = (
            f"set {name} in assay.toml (or [tool.assay] in pyproject.toml), or the "
            f"environment variable ASSAY_{name.upper()}"
        )
    return (
        f"The {label} folder {folder} (setting {name}) cannot be created: {reason}. "
        f"Nothing was run. Choose another folder ({source}), {fix}."
    )


def setting_source(root: Path | None, name: str) -> str | None:
    """Where the setting ``name`` of the project at ``root`` (found from the current folder
    if ``None``) is given, in words for a message: ``the environment variable
    ASSAY_STORE_PATH=x``, ``store_path = "x" in /study/assay.toml``; ``None`` when it has
    its default value."""
    variable = f"ASSAY_{name.upper()}"
    if os.environ.get(variable) and name in _DEFAULTS:
        return f"the environment variable {variable}={os.environ[variable]}"
    try:
        given = _file_settings(root if root is not None else find_project_root())
    except ConfigError:
        return None
    if name not in given:
        return None
    value, where = given[name]
    return f'{name} = "{value}" in {where}' if isinstance(value, str) else f"{name} in {where}"


def _check_store_path(root: Path, value: str) -> None:
    """Refuse a run store path that the settings set to a folder (``ASSAY_STORE_PATH=
    experiments``), naming the setting: the run store's own message would advise to move
    the folder away, and it may be one of the project's."""
    path = _absolute(root, value)
    source = setting_source(root, "store_path") if path.is_dir() else None
    if source is not None:
        raise ConfigError(
            f"The run store path {path} (setting store_path, from {source}) is a folder, "
            "but the run store is a SQLite file. Set store_path to a file "
            'path, such as "assay.db" (assay creates the run store there), or remove the '
            "setting."
        )


_OTHER_VARIABLES = ("ASSAY_START_METHOD", "ASSAY_RUN_AGAIN")
"""Environment variables assay reads besides those of its settings (``ASSAY_CACHE_DIR``...):
see :mod:`assay.executors.process`; ``ASSAY_RUN_AGAIN``, the command a failed run says to
run again (``assay reproduce`` sets it for its run, see :mod:`assay.export.reproduce`)."""

_WARNED: set[str] = set()


def _warn_of_unknown_variables() -> None:
    """Log, once per process, each ``ASSAY_*`` environment variable assay does not read,
    with the one it probably means (a typo would otherwise be ignored without a word).
    Not in worker processes (their parent said it) nor during shell completion."""
    import multiprocessing

    if multiprocessing.parent_process() is not None or "_ASSAY_COMPLETE" in os.environ:
        return
    for text in unknown_variables(os.environ):
        if text not in _WARNED:
            _WARNED.add(text)
            log.warning(text)


def unknown_variables(environ: Any) -> list[str]:
    """One line for each ``ASSAY_*`` variable in ``environ`` that assay does not read."""
    known = [f"ASSAY_{name.upper()}" for name in _DEFAULTS] + list(_OTHER_VARIABLES)
    lines = []
    for variable in sorted(v for v in environ if v.startswith("ASSAY_") and v not in known):
        setting = variable.removeprefix("ASSAY_").lower()
        if setting in _TABLES:
            hint = f"{setting} is set in assay.toml or pyproject.toml only"
        else:
            close = difflib.get_close_matches(variable, known, n=1, cutoff=0.75)
            hint = f"did you mean {close[0]}?" if close else f"assay reads {', '.join(known)}"
        lines.append(f"assay ignores the environment variable {variable}, unknown to it ({hint}).")
    return lines


def from_command_line(location: str | os.PathLike | None) -> str | None:
    """A folder given on the command line (``--cache ./dir``), absolute: a relative one
    is taken from the current folder, as every path on the command line is (the
    settings of ``assay.toml`` are taken from the project root). A URL is left as it is."""
    if location is None or cache_url(location) is not None:
        return None if location is None else str(location)
    if not str(location).strip():
        raise ConfigError(
            f"--cache was given an empty folder name ({str(location)!r}), which would make "
            f"the current folder, {Path.cwd()}, the cache. Give the cache folder (or its "
            "URL), or leave --cache out to use the project's cache (cache_dir in assay.toml)."
        )
    return os.path.abspath(os.path.expanduser(_local_path(location)))


def cache_url(
    location: str | os.PathLike,
    *,
    name: str = "cache",
    correct: str = "--cache (or cache_dir in assay.toml, or ASSAY_CACHE_DIR)",
) -> str | None:
    """``location`` if it is an fsspec URL (``s3://...``, ``simplecache::gcs://...``), else
    ``None``; a ``file://`` URL is a folder. ``name`` and ``correct`` say, in the
    message below, what ``location`` is (``"path"``) and where to correct it (``"path="``).

    Raises:
        ConfigError: ``location`` is a URL with one slash after its scheme (``s3:/bucket``),
            which would otherwise make a local folder named ``s3:``.
    """
    text = str(location)
    mistyped = _ONE_SLASH_URL.match(text)
    if mistyped:
        scheme, rest = mistyped.groups()
        meant = f"{scheme}:///{rest}" if scheme.lower() == "file" else f"{scheme}://{rest}"
        if isinstance(location, PurePath):
            raise ConfigError(
                f"The {name} {text!r} is a pathlib.Path, and a Path turns the two slashes "
                f"after {scheme}: of a URL into one. Pass the URL as a string: {meant!r}."
            )
        raise ConfigError(
            f"The {name} {text!r} looks like a URL with one slash after {scheme}: where two "
            f"belong; as a folder it would be one named '{scheme}:'. Did you mean {meant!r}? "
            f"Correct {correct}; for a folder of that name, write ./{text}."
        )
    if not _URL.search(text) or text.startswith("file://"):
        return None
    return text.rstrip("/")


def _local_path(location: str | os.PathLike) -> str:
    text = str(location)
    return text[len("file://") :] if text.startswith("file://") else text


def _slug(url: str) -> str:
    """A folder name for a URL's local copies: readable, and unique per URL."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", url).strip("-.")[:60]
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder from ``start`` (default: cwd) upwards that looks like a project;
    ``start`` itself if none does."""
    here = (start or Path.cwd()).resolve()
    return enclosing_project(here) or here


def enclosing_project(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards that holds an ``assay.toml``, an
    ``experiments/`` folder, a ``curifactory_config.json`` or a ``pyproject.toml`` with a
    ``[tool.assay]`` table; ``None`` if no folder does."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            tool = _load_toml(pyproject).get("tool")
            if isinstance(tool, dict) and "assay" in tool:
                return folder
    return None


_ROOT_MARKERS = ("assay.toml", "experiments", "curifactory_config.json")

_CURIFACTORY_SETTINGS = {
    "experiments_module_name": "experiments_dir",
    "params_module_name": "params_dir",
    "cache_path": "cache_dir",
    "runs_path": "runs_dir",
    "logs_path": "logs_dir",
    "reports_path": "reports_dir",
}
"""The settings of a Curifactory project's ``curifactory_config.json`` that assay follows
(its module names become folders), so that a project moves over as it is."""


def _curifactory_settings(root: Path) -> dict[str, str]:
    import json

    path = root / "curifactory_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}. Fix the file or remove it.") from exc
    settings = {}
    for key, setting in _CURIFACTORY_SETTINGS.items():
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str) and value.strip():
            settings[setting] = value.replace(".", "/") if key.endswith("_module_name") else value
    return settings


def _file_settings(root: Path) -> dict[str, tuple[Any, str]]:
    """The settings the project's files give: name -> (value, where it is set). Later
    files win: ``curifactory_config.json``, then ``pyproject.toml``, then ``assay.toml``."""
    found = _curifactory_settings(root)
    settings = {k: (v, f"{root / 'curifactory_config.json'}") for k, v in found.items()}
    pyproject = root / "pyproject.toml"
    if pyproject.exists():  # a folder of that name, too, is refused with a message
        table = _tool_assay(_load_toml(pyproject), pyproject)
        where = f"{pyproject} [tool.assay]"
        lines = _setting_lines(pyproject, "tool.assay")
        checked = _check_settings(table or {}, where, lines)
        settings.update({k: (v, where) for k, v in checked.items()})
    assay_toml = root / "assay.toml"
    if assay_toml.exists():
        table, where = _assay_toml_table(_load_toml(assay_toml), assay_toml)
        lines = _setting_lines(assay_toml, "tool.assay" if where.endswith("]") else "")
        settings.update({k: (v, where) for k, v in _check_settings(table, where, lines).items()})
    return settings


_KEY_LINE = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")
_TABLE_LINE = re.compile(r"^\s*\[{1,2}\s*([^\[\]]*?)\s*\]")


def _setting_lines(path: Path, table: str) -> dict[str, int]:
    """The line (from 1) of each key of the TOML file ``path`` in ``table`` (``""``: the
    top level; ``"tool.assay"``), for messages that point at a setting. Keys written
    otherwise (dotted, inline tables) are not found: the message then names no line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    lines: dict[str, int] = {}
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_LINE.match(line)
        if header is not None:
            current = header.group(1).replace(" ", "").replace('"', "")
            continue
        key = _KEY_LINE.match(line)
        if key is not None and current == table:
            name = next(group for group in key.groups() if group is not None)
            lines.setdefault(name, number)
    return lines


def _at_line(source: str, lines: dict[str, int], *names: str) -> str:
    """``source`` with the line of the first of ``names`` that has one: ``FILE, line 3``."""
    found = [lines[name] for name in names if name in lines]
    return f"{source}, line {found[0]}" if found else source


def _tool_assay(data: dict, path: Path) -> dict | None:
    """The ``[tool.assay]`` table of the TOML ``data`` read from ``path``, if it has one."""
    tool = data.get("tool")
    table = tool.get("assay") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(
            f"{path}: tool.assay must be a table of settings ([tool.assay] followed by "
            f'lines such as cache_dir = "data/cache"), not {table!r}.'
        )
    return table


def _assay_toml_table(data: dict, path: Path) -> tuple[dict, str]:
    """The settings of ``assay.toml``: its top level, or its ``[tool.assay]`` table (as
    pasted from a ``pyproject.toml``), and how to name where they are. A file with both
    is refused: assay would have to pick one and ignore the other without a word."""
    table = _tool_assay(data, path)
    if table is None:  # the usual file; a [tool.other] table in it is no setting
        tables = isinstance(data.get("tool"), dict)
        return {k: v for k, v in data.items() if not (k == "tool" and tables)}, str(path)
    top = sorted(k for k in data if k != "tool")
    if top:
        raise ConfigError(
            f"{path} has settings both at its top level ({', '.join(top)}) and under "
            f"[tool.assay] ({', '.join(sorted(table)) or 'none'}); assay reads one place "
            "only. Put them all at the top level (and remove the [tool.assay] line), or "
            "all under [tool.assay]."
        )
    return table, f"{path} [tool.assay]"


def _check_settings(
    table: dict, source: str, lines: dict[str, int] | None = None
) -> dict[str, Any]:
    """The settings of ``table`` (read from ``source``), checked: a :class:`ConfigError`
    names an unknown or ill-typed one, with its line in ``lines`` (see
    :func:`_setting_lines`)."""
    lines = lines or {}
    known = set(_DEFAULTS) | set(_TABLES)
    unknown = sorted(set(table) - known, key=lambda name: (lines.get(name, 0), name))
    if unknown:
        guesses = [
            f"{name} (did you mean {close[0]}?)" if close else name
            for name in unknown
            for close in [difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)]
        ]
        raise ConfigError(
            f"{_at_line(source, lines, *unknown)}: unknown assay setting(s) "
            f"{', '.join(guesses)}. Known settings: {', '.join(sorted(known))}."
        )
    for name, kind in _TABLES.items():
        if name in table and not isinstance(table[name], kind):
            raise ConfigError(
                f"{_at_line(source, lines, name)}: {name} must be a table, e.g. {name} = "
                f'{{ endpoint_url = "https://..." }}, not {table[name]!r}.'
            )
    for name, value in table.items():
        if name in _DEFAULTS and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(
                f"{_at_line(source, lines, name)}: {name} must be a path in quotes, e.g. "
                f'{name} = "{_DEFAULTS[name]}", not {value!r}.'
            )
    return {k: v if k in _TABLES else str(v) for k, v in table.items()}


def _load_toml(path: Path) -> dict:
    """The settings file at ``path``, read; a :class:`ConfigError` naming it if that fails.

    A byte order mark at its start (Windows editors' "UTF-8 with BOM") is skipped."""
    fix = "Fix the file or remove it."
    try:
        data = path.read_bytes()
        return tomllib.loads(data.removeprefix(codecs.BOM_UTF8).decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. {fix}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: it is not UTF-8 text (byte "
            f"{exc.object[exc.start]:#04x} at position {exc.start}). {fix}"
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(
            f"{path} is a folder, but assay reads its settings from a file of that name. "
            "Rename or remove the folder."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}. {fix}") from exc


def _absolute(root: Path, value: str | Path) -> Path:
    """``value`` as an absolute path, taken from ``root`` if relative, without ``..``
    (``../shared-cache``): the cache compares the paths of the files it writes with its
    folder's, which Python writes without ``..``."""
    return Path(os.path.abspath(root / os.path.expanduser(str(value))))
