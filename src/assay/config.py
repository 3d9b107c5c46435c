"""Where a project keeps things: folders, the run store, and their configuration.

A project needs no configuration. Its root is the nearest folder, from the
current one upwards, that holds an ``assay.toml``, a ``pyproject.toml`` with a
``[tool.assay]`` table, or an ``experiments/`` folder; failing that, the
current folder. Every path below can be changed in ``[tool.assay]`` (or at the
top level of ``assay.toml``) and by an environment variable::

    [tool.assay]
    cache_dir = "/scratch/me/assay-cache"   # or ASSAY_CACHE_DIR
    reports_dir = "reports"                 # or ASSAY_REPORTS_DIR

Relative paths are relative to the project root.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

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
}


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
    """The artifact cache (``ASSAY_CACHE_DIR``)."""
    runs_dir: Path
    """Exported runs (``--store-full``)."""
    reports_dir: Path
    """HTML reports."""
    logs_dir: Path
    """One console log per run."""
    store_path: Path
    """The run store, a SQLite file."""

    @classmethod
    def load(cls, root: str | Path | None = None, **overrides: str | Path | None) -> ProjectConfig:
        """Read the configuration of the project at ``root`` (found from the cwd if ``None``).

        Keyword arguments override the file and the environment, e.g.
        ``ProjectConfig.load(cache_dir="/tmp/cache")``.
        """
        root_path = Path(root).resolve() if root is not None else find_project_root()
        settings = dict(_DEFAULTS)
        settings.update(_read_file_settings(root_path))
        for name in _DEFAULTS:
            env = os.environ.get(f"ASSAY_{name.upper()}")
            if env:
                settings[name] = env
        for name, value in overrides.items():
            if name not in _DEFAULTS:
                raise ConfigError(f"Unknown configuration setting {name!r}.")
            if value is not None:
                settings[name] = value
        paths = {name: _absolute(root_path, value) for name, value in settings.items()}
        return cls(root=root_path, **paths)

    def with_cache_dir(self, cache_dir: str | Path | None) -> ProjectConfig:
        """A copy of this configuration using another cache folder (``--cache DIR``)."""
        if cache_dir is None:
            return self
        return replace(self, cache_dir=_absolute(self.root, cache_dir))

    def as_dict(self) -> dict[str, str]:
        """The configuration as plain strings, for provenance records."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder from ``start`` (default: cwd) upwards that looks like a project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "assay.toml").is_file() or (folder / "experiments").is_dir():
            return folder
        pyproject = folder / "pyproject.toml"
        if (
            pyproject.is_file()
            and "tool" in _load_toml(pyproject)
            and ("assay" in _load_toml(pyproject)["tool"])
        ):
            return folder
    return here


def _read_file_settings(root: Path) -> dict[str, str]:
    settings: dict[str, str] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        settings.update(
            _check_settings(_load_toml(pyproject).get("tool", {}).get("assay", {}), pyproject)
        )
    assay_toml = root / "assay.toml"
    if assay_toml.is_file():
        data = _load_toml(assay_toml)
        settings.update(_check_settings(data.get("tool", {}).get("assay", data), assay_toml))
    return settings


def _check_settings(table: dict, source: Path) -> dict[str, str]:
    unknown = sorted(set(table) - set(_DEFAULTS) - {"tool"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown assay setting(s) {', '.join(unknown)}. "
            f"Known settings: {', '.join(sorted(_DEFAULTS))}."
        )
    return {k: str(v) for k, v in table.items() if k in _DEFAULTS}


def _load_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file or remove it.") from exc


def _absolute(root: Path, value: str | Path) -> Path:
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else root / path
