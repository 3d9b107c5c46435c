"""Looking after the cache: ``assay cache ls``, ``verify`` and ``gc``.

Entries are never removed by a run: after you edit a stage, its old artifacts
stay in ``objects/`` (so reverting the edit finds them again) but the
``by-name`` link moves to the new ones. ``gc`` removes what no link points
to any more, plus leftovers of writes that were interrupted. The same code
looks after a cache folder and a cache at a URL (see :mod:`assay.cache`).
"""

from __future__ import annotations

import time
from typing import Any

from assay.cache import CacheStore, unreadable_record
from assay.errors import CorruptArtifactError
from assay.keys import OWN_ENTRIES

_LEFTOVER_AGE_S = 3600
"""Unfinished writes younger than this may belong to a run in progress: kept."""


def list_entries(cache: CacheStore, experiment: str | None = None) -> list[dict]:
    """Every complete artifact (its sidecar), optionally only those linked from ``experiment``.

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    wanted = cache.linked_keys(experiment) if experiment else None
    entries = []
    for folder in cache.stage_folders():
        if wanted is not None and folder.key not in wanted:
            continue
        for output in folder.outputs:
            if output in OWN_ENTRIES:  # the stage's reportables or state: not an artifact
                continue
            meta = cache.read_meta(folder.key, output)
            if meta is not None:
                entries.append(meta)
    entries.sort(
        key=lambda m: (str(m.get("experiment")), str(m.get("param_set")), str(m.get("stage")))
    )
    return entries


def verify_all(cache: CacheStore, remove: bool = False) -> tuple[int, list[tuple[dict, str]]]:
    """Check every artifact's files and sidecar (and each stage run's kept reportables);
    return how many artifacts were checked and the entries that failed.

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    checked, bad = 0, []
    for folder in cache.stage_folders():
        for output in folder.outputs:
            checked += output not in OWN_ENTRIES
            meta = cache.read_meta(folder.key, output)
            try:
                if meta is None:
                    meta = {"key": folder.key, "output": output}
                    raise unreadable_record(None, folder.key, output)
                cache.verify(meta)
            except CorruptArtifactError as exc:
                bad.append((meta, str(exc)))
                if remove:
                    cache.discard(folder.key, output)
    return checked, bad


def collect_garbage(
    cache: CacheStore,
    older_than_days: float | None = None,
    dry: bool = False,
    keep: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[str], int]:
    """Remove unlinked stage runs and stale leftovers; return what went and bytes freed.

    ``keep`` holds stage run keys kept as if linked (what the latest run of each
    experiment used, :func:`latest_runs_keys`: one by-name link cannot point at two
    branches of a record, ``record.make_copy()``, nor at two aggregates). With
    ``older_than_days``, linked entries whose artifacts were all written longer ago
    than that are removed too, with their links.

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    now = time.time()
    linked = cache.linked_keys() | set(keep)
    removed: list[str] = []
    freed = 0
    gone: set[str] = set()
    folders = cache.stage_folders()
    for folder in folders:
        age = now - folder.modified
        unlinked = folder.key not in linked
        stale = older_than_days is not None and age > older_than_days * 86400
        if (unlinked and (folder.outputs or age > _LEFTOVER_AGE_S)) or stale:
            removed.append(cache.where(folder.key))
            freed += folder.size
            gone.add(folder.key)
            if not dry:
                cache.remove_stage(folder.key)
            continue
        for name, modified, size in folder.leftovers:
            if now - modified > _LEFTOVER_AGE_S:
                removed.append(cache.where(folder.key, name))
                freed += size
                if not dry:
                    cache.remove_leftover(folder.key, name)
    if not dry:
        # Links to entries that do not exist; looked at again now, as a run may be writing.
        listed = {f.key for f in folders}
        gone |= {k for k in linked - listed if not cache.outputs_of(k)}
        cache.prune_links(gone)
    return removed, freed


def latest_runs_keys(store_path: Any) -> set[str]:
    """The stage run keys the latest run of each experiment used (none without a store)."""
    from pathlib import Path

    from assay.store import RunStore

    if not Path(store_path).exists():
        return set()
    keys: set[str] = set()
    with RunStore(store_path) as store:
        latest: dict[str, Any] = {}
        for run in store.list_runs(limit=None):  # newest first
            latest.setdefault(run.experiment, run)
        for run in latest.values():
            keys.update(stage.key for stage in store.stages(run.id) if stage.key)
    return keys
