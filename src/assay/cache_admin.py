"""Looking after the cache: ``assay cache ls``, ``verify`` and ``gc``.

Entries are never removed by a run: after you edit a stage, its old artifacts
stay in ``objects/`` (so reverting the edit finds them again) but the
``by-name`` link moves to the new ones. ``gc`` removes what no link points
to any more, plus leftovers of writes that were interrupted. The same code
looks after a cache folder and a cache at a URL (see :mod:`assay.cache`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from assay.cache import _META_SUFFIX, CacheStore, unreadable_record
from assay.errors import CorruptArtifactError
from assay.keys import OWN_ENTRIES

log = logging.getLogger("assay")

_LEFTOVER_AGE_S = 3600
"""Unfinished writes younger than this may belong to a run in progress: kept."""


class Listing(list):
    """What :func:`list_entries` found (a list of sidecars), and what it was asked for."""

    experiment: str | None = None
    """The experiment asked for (``-e``), if any."""
    experiments: list[str] | None = None
    """When nothing was found for ``experiment``: the experiments the cache files
    artifacts under (``by-name/``), to say which there are."""


def list_entries(cache: CacheStore, experiment: str | None = None) -> Listing:
    """Every complete artifact (its sidecar), optionally only those linked from ``experiment``.

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    wanted = cache.linked_keys(experiment) if experiment else None
    entries = Listing()
    entries.experiment = experiment
    # An aggregate's folder (aggregate-DIGEST), which its sidecar does not know.
    folders = {(e, key): label for e, label, _, key in cache.named(experiment, "aggregate", None)}
    for folder in cache.stage_folders():
        if wanted is not None and folder.key not in wanted:
            continue
        for output in folder.outputs:
            if output in OWN_ENTRIES:  # the stage's reportables or state: not an artifact
                continue
            meta = cache.read_meta(folder.key, output)
            if meta is None:
                continue
            label = folders.get((meta.get("experiment"), folder.key))
            if meta.get("param_set") in (None, "aggregate") and label:
                meta = {**meta, "param_set": label}
            entries.append(meta)
    entries.sort(
        key=lambda m: (str(m.get("experiment")), str(m.get("param_set")), str(m.get("stage")))
    )
    if experiment and not entries:
        entries.experiments = sorted({name for name, *_ in cache.named(None, None, None)})
    return entries


def verify_all(
    cache: CacheStore, remove: bool = False, without_record: list[str] | None = None
) -> tuple[int, list[tuple[dict, str]]]:
    """Check every artifact's files and sidecar (and each stage run's kept reportables);
    return how many artifacts were checked and the entries that failed.

    A file in a stage run's folder that no sidecar there lists is no failure, but is
    reported as a file without a record: no run loads it. Its sidecar may have been
    deleted, or the write that made it cut short; or the stage wrote it there beside its
    outputs (``record.get_path("confusion.png")`` for an ``ImageReporter``), which assay
    cannot tell apart, so ``remove`` leaves it. Their paths go to ``without_record`` if
    given, else each is logged as a warning (``assay cache verify`` shows those).

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    checked, bad = 0, []
    found: list[str] = []
    for folder in cache.stage_folders():
        listed: set[str] = set()  # the names the folder's sidecars give (first path part)
        for output in folder.outputs:
            checked += output not in OWN_ENTRIES
            meta = cache.read_meta(folder.key, output)
            listed.add(f"{output}{_META_SUFFIX}")
            try:
                if meta is None:
                    meta = {"key": folder.key, "output": output}
                    raise unreadable_record(None, folder.key, output)
                listed.update(_first_part(f["path"]) for f in meta["files"])
                cache.verify(meta)
            except CorruptArtifactError as exc:
                bad.append((meta, str(exc)))
                if remove:
                    cache.discard(folder.key, output)
        for name in _names_in(cache, folder.key):
            if name not in listed and not name.startswith(".") and not name.endswith(_META_SUFFIX):
                found.append(cache.where(folder.key, name))  # (dot: an unfinished write)
    if without_record is not None:
        without_record.extend(found)
    else:
        for path in found:
            log.warning(
                "File without a record: %s. No sidecar (.meta.json) in its stage run's folder "
                "lists it, so no run loads it: its record was deleted or damaged, or the stage "
                "wrote it there beside its outputs (record.get_path()). verify leaves it; "
                "delete it if the stage did not write it there on purpose.",
                path,
            )
    return checked, bad


def _first_part(path: str) -> str:
    """The name in the stage run's folder of a file a sidecar lists (a file of a folder
    output counts as that folder); an absolute path (outside the cache) names none."""
    return "" if os.path.isabs(path) else path.split("/", 1)[0]


def _names_in(cache: CacheStore, key: str) -> list[str]:
    """What a stage run's folder holds (at the URL, for a cache at a URL)."""
    at_url = getattr(cache, "stage_entry_names", None)
    if at_url is not None:
        return at_url(key)
    try:
        return sorted(os.listdir(cache.stage_dir(key)))
    except OSError:
        return []


def collect_garbage(
    cache: CacheStore,
    older_than_days: float | None = None,
    dry: bool = False,
    keep: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[str], int]:
    """Remove unlinked stage runs and stale leftovers; return what went and bytes freed.

    ``keep`` holds stage run keys kept as if linked (what the latest completed run of
    each experiment used, a newer one that did not complete and runs going on,
    :func:`latest_runs_keys`: one by-name link cannot point at two branches of a record,
    ``record.make_copy()``, nor at two aggregates of one stage over the same parameter
    sets). With ``older_than_days``, linked entries whose artifacts were all written
    longer ago than that are removed too, with their links.

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
    """The stage run keys that ``gc`` keeps as if linked (none without a run store).

    For each experiment: what its latest *completed* run used (a run that failed or was
    interrupted since must not take that protection away, nor must a run going on), and
    what its newest run used if that one did not complete (its finished stages are what
    running the same command again continues from). And what every run still going on
    used (recorded as it ends; a run killed on another machine stays "running").
    """
    from pathlib import Path

    from assay.store import RunStore

    if not Path(store_path).exists():
        return set()
    keys: set[str] = set()
    with RunStore(store_path) as store:
        kept: dict[int, Any] = {}
        newest: set[str] = set()
        completed: set[str] = set()
        for run in store.list_runs(limit=None):  # newest first
            if run.experiment not in newest:
                newest.add(run.experiment)
                kept[run.number] = run
            if run.status == "completed" and run.experiment not in completed:
                completed.add(run.experiment)
                kept[run.number] = run
            if run.status == "running":
                kept[run.number] = run
        for run in kept.values():
            keys.update(stage.key for stage in store.stages(run.id) if stage.key)
    return keys
