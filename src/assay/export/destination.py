"""Where an export may write, and how assay recognises what it wrote before.

``assay export full|docker|notebook -o PATH`` writes where you say. Before
anything is written or removed, the place is checked, and a refusal changes
nothing on disk:

- a path through a regular file (``-o notes.txt/export``) is refused;
- an existing folder or file is replaced only if assay wrote it: a full export
  (its ``run.json`` holds ``export.format`` = :data:`EXPORT_FORMAT`), a Docker
  build context (its Dockerfile starts with :data:`DOCKERFILE_MARKER`) or a
  notebook (its metadata holds ``assay.format`` = :data:`NOTEBOOK_FORMAT`);
  an empty folder may be used too (``assay export full`` replaces only an export of
  the same run). Anything else — your thesis, your home
  folder — is refused with a message naming it;
- a folder that is or holds the project or the current folder is never
  replaced, even one assay wrote (a reproduction runs inside an export).

Example::

    from assay.export.destination import check_folder, is_full_export
    check_folder(Path("~/exports/run7").expanduser(), root=config.root,
                 what="a full export", replaceable=is_full_export)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.errors import AssayError

__all__ = [
    "DOCKERFILE_MARKER",
    "EXPORT_FORMAT",
    "NOTEBOOK_FORMAT",
    "check_file",
    "check_folder",
    "is_build_context",
    "is_full_export",
    "is_notebook",
]

EXPORT_FORMAT = "assay-export/1"
"""``export.format`` in a full export's ``run.json``: the folder may be replaced."""

DOCKERFILE_MARKER = "# Written by `assay export docker`"
"""The Dockerfile's first line; a folder whose Dockerfile has it may be replaced."""

NOTEBOOK_FORMAT = "assay-notebook/1"
"""``metadata.assay.format`` of a notebook assay wrote: the file may be overwritten."""


def is_full_export(folder: Path) -> bool:
    """Whether ``folder`` holds a full export (``assay export full``, ``--store-full``)."""
    record = _json(folder / "run.json")
    export = record.get("export") if isinstance(record, dict) else None
    return isinstance(export, dict) and export.get("format") == EXPORT_FORMAT


def is_build_context(folder: Path) -> bool:
    """Whether ``folder`` is a Docker build context written by ``assay export docker``."""
    marker = DOCKERFILE_MARKER.encode()
    try:
        with open(folder / "Dockerfile", "rb") as dockerfile:
            return dockerfile.read(len(marker)) == marker
    except OSError:
        return False


def is_notebook(path: Path) -> bool:
    """Whether ``path`` is a notebook written by ``assay export notebook``."""
    notebook = _json(path)
    metadata = notebook.get("metadata") if isinstance(notebook, dict) else None
    mark = metadata.get("assay") if isinstance(metadata, dict) else None
    return isinstance(mark, dict) and mark.get("format") == NOTEBOOK_FORMAT


def check_folder(
    folder: Path, *, root: Any, what: str, replaceable: Callable[[Path], bool]
) -> None:
    """Refuse to write ``folder`` unless it is new, empty, or ``replaceable`` (written by assay).

    ``what`` names what assay writes there, for the message ("a full export");
    ``root`` is the project folder, which is never replaced, nor any folder
    holding it or the current folder.
    """
    _check_parents(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise AssayError(f"{folder} is a file, not a folder; choose a folder with -o.")
    _refuse_enclosing(folder, root)
    if any(folder.iterdir()) and not replaceable(folder):
        raise AssayError(
            f"{folder} exists and is not {what} written by assay; choose another folder "
            "with -o, or remove it."
        )


def check_file(path: Path, *, what: str, replaceable: Callable[[Path], bool]) -> None:
    """Refuse to write the file ``path`` unless it is new or ``replaceable`` (written by assay)."""
    _check_parents(path)
    if path.is_dir():
        raise AssayError(f"{path} is a folder, not a file; give a file name with -o.")
    if path.exists() and not replaceable(path):
        raise AssayError(
            f"{path} exists and is not {what} written by assay; choose another file with -o, "
            "or remove it."
        )


def _check_parents(path: Path) -> None:
    """Refuse a path whose nearest existing parent is a file (``-o notes.txt/export``)."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise AssayError(
                    f"Cannot write {path}: {parent} is a file, not a folder. Choose another "
                    "path with -o."
                )
            return


def _refuse_enclosing(folder: Path, root: Any) -> None:
    """Refuse a folder that is, or holds, the project or the current folder."""
    real = folder.resolve()
    for name, inside in (("the project folder", Path(root)), ("the current folder", Path.cwd())):
        inside = inside.resolve()
        if inside.is_relative_to(real):
            where = "it is" if inside == real else f"it holds {inside},"
            raise AssayError(
                f"Will not replace {real}: {where} {name}. Choose a new folder with -o "
                "(a new subfolder of it will do)."
            )


def _json(path: Path) -> Any:
    """The JSON data in ``path``, or ``None`` if it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
