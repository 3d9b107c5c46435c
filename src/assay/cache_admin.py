"""Looking after the cache: ``assay cache ls``, ``verify`` and ``gc``.

Entries are never removed by a run: after you edit a stage, its old artifacts
stay in ``objects/`` (so reverting the edit finds them again) but the
``by-name`` link moves to the new ones. ``gc`` removes what no link points
to any more, plus leftovers of writes that were interrupted.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from assay.cache import CacheStore
from assay.errors import CorruptArtifactError

_LEFTOVER_AGE_S = 3600
"""Unfinished writes younger than this may belong to a run in progress: kept."""


def _stage_dirs(cache: CacheStore) -> list[Path]:
    if not cache.objects.is_dir():
        return []
    return sorted(d for shard in cache.objects.iterdir() if shard.is_dir() for d in shard.iterdir())


def _linked(cache: CacheStore, experiment: str | None = None) -> set[Path]:
    """Stage folders that some ``by-name`` link points to."""
    linked: set[Path] = set()
    if not cache.by_name.is_dir():
        return linked
    root = cache.by_name / experiment if experiment else cache.by_name
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                linked.add(path.resolve())
            elif path.is_file() and not name.startswith("."):
                linked.add((path.parent / path.read_text().strip()).resolve())
    return linked


def _sidecars(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.meta.json") if not p.name.startswith("."))


def list_entries(cache: CacheStore, experiment: str | None = None) -> list[dict]:
    """Every complete artifact (its sidecar), optionally only those linked from ``experiment``."""
    wanted = _linked(cache, experiment) if experiment else None
    entries = []
    for folder in _stage_dirs(cache):
        if wanted is not None and folder.resolve() not in wanted:
            continue
        for sidecar in _sidecars(folder):
            meta = cache.read_meta(folder.name, sidecar.name[: -len(".meta.json")])
            if meta is not None:
                entries.append(meta)
    entries.sort(
        key=lambda m: (str(m.get("experiment")), str(m.get("param_set")), str(m.get("stage")))
    )
    return entries


def verify_all(cache: CacheStore, remove: bool = False) -> tuple[int, list[tuple[dict, str]]]:
    """Check every artifact's files; return how many were checked and those that failed."""
    checked, bad = 0, []
    for meta in list_entries(cache):
        checked += 1
        try:
            cache.verify(meta)
        except CorruptArtifactError as exc:
            bad.append((meta, str(exc)))
            if remove:
                cache.discard(meta["key"], meta["output"])
    return checked, bad


def collect_garbage(
    cache: CacheStore, older_than_days: float | None = None, dry: bool = False
) -> tuple[list[Path], int]:
    """Remove unlinked stage folders and stale leftovers; return what went and bytes freed.

    With ``older_than_days``, linked entries whose artifacts were all written
    longer ago than that are removed too, with their links.
    """
    now = time.time()
    linked = _linked(cache)
    removed: list[Path] = []
    freed = 0
    for folder in _stage_dirs(cache):
        sidecars = _sidecars(folder)
        age = now - max(
            (p.stat().st_mtime for p in folder.iterdir()), default=folder.stat().st_mtime
        )
        unlinked = folder.resolve() not in linked
        stale = older_than_days is not None and age > older_than_days * 86400
        if (unlinked and (sidecars or age > _LEFTOVER_AGE_S)) or stale:
            removed.append(folder)
            freed += _tree_size(folder)
            if not dry:
                shutil.rmtree(folder, ignore_errors=True)
            continue
        for leftover in folder.glob(".*"):
            if now - leftover.stat().st_mtime > _LEFTOVER_AGE_S:
                removed.append(leftover)
                freed += _tree_size(leftover)
                if not dry:
                    if leftover.is_dir():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink(missing_ok=True)
    if not dry:
        _remove_dangling_links(cache)
    return removed, freed


def _remove_dangling_links(cache: CacheStore) -> None:
    if not cache.by_name.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(cache.by_name, topdown=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink() and not path.exists():
                path.unlink()
        if dirpath != str(cache.by_name) and not os.listdir(dirpath):
            os.rmdir(dirpath)


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
