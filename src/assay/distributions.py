"""Installed distributions, read from their metadata folders: names, versions, modules.

Provenance lists the installed packages; a code fingerprint keys a package's
code by its version and needs to know which distribution provides a module.
:mod:`importlib.metadata` answers both, but importing it costs a run tens of
milliseconds (it brings in ``email``, ``zipfile``, ``csv``). The
``*.dist-info`` and ``*.egg-info`` folders on ``sys.path`` answer most of it
by their names and one small file each::

    from assay import distributions

    folders = distributions.metadata_folders()       # [".../numpy-2.1.0.dist-info", ...]
    numpy = distributions.by_name(folders)["numpy"]  # its folder, the first on sys.path
    distributions.read_metadata(numpy)["version"]    # "2.1.0", as importlib.metadata says
    distributions.installed_modules(folders)["sklearn"]   # ["scikit-learn"]

Only the map from a module to the distributions that provide it, for modules
named unlike their distribution, needs :mod:`importlib.metadata`; that answer
is kept between runs (see :func:`installed_modules`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from assay.hashing import hash_value

_SEPARATORS = re.compile(r"[-_.]+")


def metadata_folders() -> list[str]:
    """Every ``*.dist-info`` and ``*.egg-info`` on ``sys.path``, in the order Python's import
    system looks at them: folder by folder along ``sys.path``, by name within a folder."""
    found: list[str] = []
    for folder in sys.path:
        try:
            entries = sorted(os.scandir(folder or "."), key=lambda e: e.name)
        except OSError:  # a zip file, or a folder that is not there
            continue
        found.extend(e.path for e in entries if e.name.endswith((".dist-info", ".egg-info")))
    return found


def normalize(name: str) -> str:
    """A distribution's name as pip writes it in ``requirements.txt``:
    ``typing_extensions`` → ``typing-extensions``, ``PyYAML`` → ``pyyaml``."""
    return _SEPARATORS.sub("-", name).lower()


def folder_name(path: str) -> str:
    """The (normalized) distribution name in a metadata folder's name, read the way
    :mod:`importlib.metadata` reads it: ``PyYAML-6.0.dist-info`` → ``pyyaml``."""
    return normalize(os.path.basename(path).rpartition(".")[0].partition("-")[0])


def read_metadata(path: str) -> dict[str, str]:
    """The headers of a distribution's ``METADATA`` (``PKG-INFO`` for an egg), lowercased
    names → the first value of each; empty when the file cannot be read."""
    metadata = os.path.join(path, "METADATA" if path.endswith(".dist-info") else "PKG-INFO")
    try:
        text = Path(metadata if os.path.isdir(path) else path).read_text(
            encoding="utf-8", errors="replace"
        )
    except OSError:  # a broken installation must not fail the run
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first empty line
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


def name_version(path: str) -> tuple[str | None, str]:
    """Normalized name and version of the distribution of a metadata folder, from the
    folder's name where installers wrote ``NAME-VERSION``, else from its metadata."""
    base = os.path.basename(path)
    stem = base.rsplit(".", 1)[0]
    if base.endswith(".dist-info") and stem.count("-") == 1:
        name, version = stem.split("-")
        return normalize(name), version
    fields = read_metadata(path)
    name = fields.get("name")
    return (normalize(name), fields.get("version", "")) if name else (None, "")


def editable_location(path: str) -> str | None:
    """Where the source of an editable install is (``pip install -e ../mylib`` writes it
    to the metadata folder's ``direct_url.json``, PEP 610), or ``None`` for any other
    installation."""
    try:
        with open(os.path.join(path, "direct_url.json"), encoding="utf-8") as handle:
            direct = handle.read()
    except OSError:
        return None
    if '"editable"' not in direct:
        return None
    try:
        data = json.loads(direct)
    except ValueError:
        return None
    if not isinstance(data, dict) or not (data.get("dir_info") or {}).get("editable"):
        return None
    return str(data.get("url", ""))


def by_name(folders: list[str]) -> dict[str, str]:
    """Normalized distribution name → its metadata folder, the first one in ``folders``
    (from :func:`metadata_folders`) for each name, as Python's import system finds it."""
    found: dict[str, str] = {}
    for path in folders:
        found.setdefault(folder_name(path), path)
    return found


def installed_modules(folders: list[str] | None = None) -> dict[str, list[str]]:
    """Top-level module → the installed distributions that provide it (``sklearn`` →
    ``["scikit-learn"]``), as ``importlib.metadata.packages_distributions()`` says.

    That reads the file list of every installed distribution: 0.3 s a run in a large
    environment. The answer is kept in the user's cache folder (``$XDG_CACHE_HOME/assay``,
    by default ``~/.cache/assay``) for as long as the same metadata folders are on
    ``sys.path`` (so the same distributions, at the same versions); :mod:`importlib.metadata`
    is imported only when the kept answer does not apply. A file that cannot be read or
    written there is skipped.
    """
    if folders is None:
        folders = metadata_folders()
    # The 2 tells apart the answers kept before Python 3.10's were completed (see below).
    key = hash_value([sys.prefix, sorted(folders), 2])
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(home) / "assay" / "installed-modules.json"
    try:
        kept = json.loads(path.read_text())
        if kept.get("key") == key:
            return kept["modules"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass
    found = _packages_distributions()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps({"key": key, "modules": found}))
        os.replace(partial, path)
    except OSError:  # no cache folder of our own: found afresh next run
        pass
    return found


def _packages_distributions() -> dict[str, list[str]]:
    """:func:`importlib.metadata.packages_distributions`. Python 3.10's reads only
    ``top_level.txt``, which wheels built with meson, hatch or flit leave out (so
    ``sklearn`` had no distribution there): the top-level names of those are read from
    the files the distribution installed, as Python 3.11 does."""
    import importlib.metadata

    found = importlib.metadata.packages_distributions()
    if sys.version_info >= (3, 11):
        return found
    found = {top: list(names) for top, names in found.items()}
    for dist in importlib.metadata.distributions():
        if dist.read_text("top_level.txt") is not None:
            continue
        tops = {
            file.parts[0] if len(file.parts) > 1 else file.with_suffix("").name
            for file in dist.files or ()
            if file.suffix == ".py"
        }
        name = dist.metadata["Name"]
        for top in sorted(tops):
            if name not in found.setdefault(top, []):
                found[top].append(name)
    return found
