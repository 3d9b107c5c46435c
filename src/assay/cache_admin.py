"""Looking after the cache: ``assay cache ls``, ``verify`` and ``gc``.

Entries are never removed by a run: after you edit a stage, its old artifacts
stay in ``objects/`` (so reverting the edit finds them again) but the
``by-name`` link moves to the new ones. ``gc`` removes what no link points
to any more, plus leftovers of writes that were interrupted. The same code
looks after a cache folder and a cache at a URL (see :mod:`assay.cache`).

Runs may go on meanwhile, in this project or in others sharing the cache:
``gc`` leaves alone a stage folder with a write in progress (written less than
an hour ago) and what other projects made, and ``verify`` looks again at an
entry that another run replaced while it checked it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from assay.cache import (
    _META_SUFFIX,
    CacheStore,
    StageFolder,
    _leaves_folder,
    _safe,
    corrupt,
    made_elsewhere,
    unfinished_write,
    unreadable_record,
)
from assay.errors import CorruptArtifactError
from assay.humanize import format_size
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
    artifacts: int = 0
    """How many artifacts the rows show: one filed under several names is one."""
    size: int = 0
    """The bytes of those artifacts' files (each artifact counted once): the ``size``
    their sidecars record, and the size column of ``assay cache ls``."""
    folders: int = 0
    """How many stage run folders hold those artifacts."""
    on_disk: int = 0
    """The bytes of everything in those folders: the artifacts' files, their sidecars,
    the stage runs' kept reportables and state, files stages wrote there themselves and
    unfinished writes. What removing those stage runs would free."""
    total: int | None = None
    """For a listing of the whole cache: the bytes of all its files (with stage runs
    that keep no artifact, code texts, read indexes, ``by-name`` links)."""


def list_entries(cache: CacheStore, experiment: str | None = None) -> Listing:
    """Every complete artifact (its sidecar, with the names it is filed under), optionally
    only those filed under ``experiment``.

    An artifact gets a row for each ``by-name/EXPERIMENT/SET/STAGE`` link to its stage
    run, named after the link (parameter sets that share a stage run each find it, as
    :func:`assay.load` does); one that no link points to any more (``assay cache gc``
    removes it) is listed once, under the names its sidecar gives.

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    entries = Listing()
    entries.experiment = experiment
    folders = {folder.key: folder for folder in cache.stage_folders()}
    sidecars: dict[tuple[str, str], dict | None] = {}

    def artifacts(key: str) -> list[dict]:
        folder = folders.get(key)
        found = []
        for output in folder.outputs if folder else ():
            if output in OWN_ENTRIES:  # the stage's reportables or state: not an artifact
                continue
            if (key, output) not in sidecars:
                sidecars[key, output] = cache.read_meta(key, output)
            if sidecars[key, output] is not None:
                found.append(sidecars[key, output])
        return found

    linked = set()
    for names in cache.named(experiment, None, None):
        linked.add(names[3])
        for meta in artifacts(names[3]):
            entries.append(_filed_as(meta, *names[:3]))
    if experiment is None:
        for key in sorted(set(folders) - linked):
            entries.extend(artifacts(key))
    entries.sort(
        key=lambda m: (str(m.get("experiment")), str(m.get("param_set")), str(m.get("stage")))
    )
    shown = {(m["key"], m["output"]): m.get("size") or 0 for m in entries}
    entries.artifacts, entries.size = len(shown), sum(shown.values())
    keys = {key for key, _ in shown}
    entries.folders = len(keys)
    entries.on_disk = sum(folders[key].size for key in keys)
    if experiment is None:
        entries.total = sum(f.size for f in folders.values()) + cache.bookkeeping_size()
    if experiment and not entries:
        entries.experiments = sorted({name for name, *_ in cache.named(None, None, None)})
    return entries


def _filed_as(meta: dict, experiment: str, param_set: str, stage: str) -> dict:
    """A sidecar as a row of ``assay cache ls``: named after the ``by-name`` link (the
    names the sidecar gives where they are the link's, as folder names may differ)."""
    row = dict(meta)
    for field, name in (("experiment", experiment), ("param_set", param_set), ("stage", stage)):
        given = meta.get(field)
        if given is None or _safe(str(given)) != name:
            row[field] = name
    return row


def verify_all(
    cache: CacheStore,
    remove: bool = False,
    without_record: list[str] | None = None,
    unfinished: list[tuple[str, int]] | None = None,
    store_path: str | os.PathLike | None = None,
    removed: list[str] | None = None,
) -> tuple[int, list[tuple[dict, str]]]:
    """Check every artifact's files and sidecar (and each stage run's kept reportables);
    return how many artifacts were checked and the entries that failed.

    An artifact whose sidecar is missing fails too: its files are still there, but
    with no recorded checksum nothing can tell whether they are sound (and no run
    loads them). Its files are known as an output's by the stage run's other sidecars
    (which name every output of the stage run) or by the run store at ``store_path``
    (which records each artifact a run made): files named after such an output
    (``doubled.pkl`` for ``doubled``), or at the path a run recorded for it.

    ``remove`` removes each failed entry whole: its sidecar and its files (those of a
    damaged sidecar found by their names as above). A stage run left with no artifact
    goes whole, with the ``by-name`` links to it (as ``assay cache gc`` removes links
    to stage runs that are gone): nothing would load what remains, and a run computes
    it again. What was removed goes to ``removed`` if given.

    Any other file in a stage run's folder that no sidecar there lists is no failure,
    but is reported as a file without a record: no run loads it. The stage may have
    written it there beside its outputs (``record.get_path("confusion.png")`` for an
    ``ImageReporter``), so ``remove`` leaves it. Their paths go to ``without_record``
    if given, else each is logged as a warning (``assay cache verify`` shows those).

    Unfinished writes (temporary files of saves going on, or left by a stopped run) are
    no failure either: ``(path, size)`` of each goes to ``unfinished`` if given, else
    one warning says how many there are.

    An entry that another run replaces (or removes) while it is checked is looked at
    again, so a healthy artifact is never reported, nor removed, as failed.

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    checked, bad = 0, []
    found: list[str] = []
    writes: list[tuple[str, int]] = []
    loose: list[tuple[str, list[str], list[str], list[dict], set[str]]] = []
    touched: set[str] = set()  # stage runs that lost an entry (with remove)
    writing = cache.keys_being_written(_LEFTOVER_AGE_S)
    about_stage_run = _StageRunNames(cache, store_path)
    for folder in cache.stage_folders():
        listed: set[str] = set()  # the names the folder's sidecars give (first path part)
        metas, damaged = [], set()  # (damaged: outputs whose sidecar cannot be read)
        unnamed: list[tuple[int, str, str | None]] = []  # (their place in bad, damage)
        for output in folder.outputs:
            listed.add(f"{output}{_META_SUFFIX}")
            meta, problem, damage = _checked(cache, folder.key, output)
            if meta is None:
                continue  # removed (or being replaced) by a run since the folder was listed
            checked += output not in OWN_ENTRIES
            listed.update(_first_part(f["path"]) for f in meta.get("files", []))
            metas.append(meta)
            if problem is None:
                continue
            bad.append((meta, problem))
            if "files" not in meta:
                damaged.add(output)  # its files are found below, by their names
                unnamed.append((len(bad) - 1, output, damage))
            if remove:
                _say_removed(removed, cache, folder.key, meta)
                cache.discard(folder.key, output)
                touched.add(folder.key)
        for at, output, damage in unnamed:  # named after what else tells the stage run's
            about = about_stage_run(folder.key, metas)
            meta = {"key": folder.key, "output": output, **about}
            bad[at] = (meta, str(unreadable_record(None, folder.key, output, damage, **about)))
        names = _names_in(cache, folder.key)
        unlisted = [
            name
            for name in names
            if name not in listed and not unfinished_write(name) and not name.endswith(_META_SUFFIX)
        ]
        if unlisted and folder.key not in writing:
            loose.append((folder.key, unlisted, names, metas, damaged))
        else:
            found += [cache.where(folder.key, name) for name in unlisted]
        writes += [(cache.where(folder.key, name), size) for name, _, size in folder.leftovers]
    recorded = _recorded_outputs(store_path, [key for key, *_ in loose])
    for key, unlisted, names, metas, damaged in loose:
        for meta, files in _without_sidecar(cache, key, unlisted, names, metas, recorded, damaged):
            if meta["output"] not in damaged:  # (a damaged sidecar's entry failed above)
                checked += 1
                paths = ", ".join(cache.where(key, name) for name in files)
                bad.append((meta, str(corrupt(meta, _NO_SIDECAR.format(meta["output"], paths)))))
            unlisted = [name for name in unlisted if name not in files]
            if remove:
                for name in files:
                    _say_removed(removed, cache, key, name=name)
                    cache.remove_leftover(key, name)
                touched.add(key)
        found += [cache.where(key, name) for name in unlisted]
    for key in sorted(touched - writing):
        if not any(output not in OWN_ENTRIES for output in cache.outputs_of(key)):
            _remove_stage_run(cache, key, removed)
            found = [path for path in found if not path.startswith(f"{cache.where(key)}/")]
    if without_record is not None:
        without_record.extend(found)
    else:
        for path in found:
            log.warning(
                "File without a record: %s. No sidecar (.meta.json) in its stage run's folder "
                "lists it, and nothing names it the file of an output of the stage run, so no "
                "run loads it: the stage wrote it there beside its outputs (record.get_path()), "
                "or its record was deleted or damaged. verify leaves it; delete it if the "
                "stage did not write it there on purpose.",
                path,
            )
        if found and store_path is not None and not os.path.exists(store_path):
            log.warning("%s", _without_store_text(store_path))
    if unfinished is not None:
        unfinished.extend(writes)
    elif writes:
        log.warning("%s", unfinished_writes_text(writes))
    return checked, bad


def _without_store_text(store_path: str | os.PathLike) -> str:
    """What the files without a record may be when the run store at ``store_path`` is gone."""
    return (
        f"The run store {store_path} is not there, so verify cannot tell whether a file "
        "above belongs to an output whose record (.meta.json) was deleted: the run store "
        "records the files of each output a run cached, and with it verify reports such an "
        "output as failed."
    )


_NO_SIDECAR = (
    "its record {0}.meta.json is missing, so no checksum can tell whether {1} is sound: "
    "no run loads it (the next run that needs it computes it again). Remove it with "
    "assay cache verify --remove"
)


def _say_removed(
    removed: list[str] | None, cache: CacheStore, key: str, meta: dict | None = None, name=""
) -> None:
    """Note in ``removed`` what removing an entry (``meta``: its sidecar and the files it
    lists in its folder) or a file ``name`` of stage run ``key`` removes."""
    if removed is None:
        return
    if meta is not None:
        removed.append(cache.where(key, f"{meta['output']}{_META_SUFFIX}"))
        files = [f["path"] for f in meta.get("files", []) if not _leaves_folder(f["path"])]
        removed.extend(cache.where(key, path) for path in files if not os.path.isabs(path))
    else:
        removed.append(cache.where(key, name))


def _remove_stage_run(cache: CacheStore, key: str, removed: list[str] | None) -> None:
    """Remove what is left of a stage run that lost its last artifact, and the links to it."""
    links = [names for names in cache.named(None, None, None) if names[3] == key]
    if removed is not None:
        removed.append(cache.where(key))
        removed.extend(f"{cache.location}/by-name/{'/'.join(names[:3])}" for names in links)
    cache.remove_stage(key)
    if links:
        cache.prune_links({key})


def _recorded_outputs(
    store_path: str | os.PathLike | None, keys: list[str]
) -> dict[str, dict[str, tuple[str, str | None, set]]]:
    """What the run store at ``store_path`` recorded of the outputs of stage runs ``keys``
    (see :meth:`RunStore.recorded_outputs`); nothing without a run store."""
    from pathlib import Path

    if not keys or store_path is None or not Path(store_path).exists():
        return {}
    from assay.errors import AssayError
    from assay.store import RunStore

    try:
        with RunStore(store_path) as store:
            return store.recorded_outputs(keys)
    except AssayError as exc:  # locked for too long, damaged: the sidecars alone tell
        log.warning("The run store could not be read to check the cache: %s", exc)
        return {}


def _without_sidecar(
    cache: CacheStore,
    key: str,
    unlisted: list[str],
    names: list[str],
    metas: list[dict],
    recorded: dict[str, dict[str, tuple[str, str | None, set]]],
    damaged: set[str] = frozenset(),
) -> list[tuple[dict, list[str]]]:
    """The outputs of stage run ``key`` whose files (among ``unlisted``) are there but
    whose sidecar is not, or is ``damaged`` (cannot be read, or was just removed for
    that): ``(what is known of the artifact, its files)`` for each.

    A stage run's outputs are those its sidecars' ingredients name, and those the run
    store recorded for it (with the file of each)."""
    declared: dict[str, set[str]] = {output: set() for output in damaged}
    about: dict[str, Any] = {}  # (declared: output -> names of its files a run recorded)
    for meta in metas:
        outputs = (meta.get("ingredients") or {}).get("outputs")
        for item in outputs if isinstance(outputs, list) else ():
            if isinstance(item, list) and item and isinstance(item[0], str):
                declared.setdefault(item[0], set())
        about = about or {f: meta.get(f) for f in ("stage", "param_set") if meta.get(f)}
    for output, (stage, param_set, paths) in recorded.get(key, {}).items():
        declared.setdefault(output, set()).update(_name_in_folder(key, path) for path in paths)
        about.setdefault("stage", stage)
        about.setdefault("param_set", param_set)
    found = []
    for output, files in sorted(declared.items()):
        sidecar = f"{output}{_META_SUFFIX}"
        if output not in damaged:
            if output in OWN_ENTRIES or sidecar in names:
                continue  # its sidecar is there (and was checked)
            if any(name.startswith(f".{sidecar}.") for name in names):
                continue  # a run is writing its sidecar right now
        mine = [n for n in unlisted if n in files or n == output or n.startswith(f"{output}.")]
        if mine and (output in damaged or not cache.has(key, output)):
            found.append(({"key": key, "output": output, **about}, mine))
    return found


def _name_in_folder(key: str, path: str) -> str:
    """The name in stage run ``key``'s folder of a file a run recorded (``""``: none)."""
    path = "/" + path.replace("\\", "/")
    marker = f"/{key}/"
    return path.split(marker, 1)[1].split("/", 1)[0] if marker in path else ""


def unfinished_writes_text(writes: list[tuple[str, int]]) -> str:
    """What ``assay cache verify`` says of the unfinished writes it found."""
    return (
        f"{len(writes)} unfinished write(s) in the cache, "
        f"{format_size(sum(size for _, size in writes))}: temporary files (.tmp-*, in the "
        "stage folders) of saves that a run is making now, or that a run stopped in the "
        "middle of a save left. No run loads them; assay cache gc removes them once they "
        "are an hour old (if no run is going on, you may delete them now)."
    )


def _checked(
    cache: CacheStore, key: str, output: str
) -> tuple[dict | None, str | None, str | None]:
    """An entry's sidecar, what is wrong with it (``None``: it is sound) and, if the
    sidecar cannot be read, its damage; no sidecar if the entry is gone. A check that
    fails against a sidecar another run has replaced since is made again against the new
    one; an entry that keeps changing is no failure."""
    meta = cache.read_meta(key, output)
    for _ in range(_LOOKS):
        if meta is None:
            damage = cache.record_damage(key, output)
            if damage is None:
                return None, None, None  # gone (or replaced by a sound one) since listed
            problem = str(unreadable_record(None, key, output, damage))
            return {"key": key, "output": output}, problem, damage
        try:
            cache.verify(meta)
            return meta, None, None
        except CorruptArtifactError as exc:
            cache.wait_while_written(key, output, meta)
            fresh = cache.read_meta(key, output)
            if fresh == meta:
                return meta, str(exc), None
            meta = fresh
    return meta, None, None


class _StageRunNames:
    """The stage and parameter set of a stage run, for an artifact whose sidecar cannot be
    read: as the stage run's other sidecars record them, else as a ``by-name`` link to it
    files it, else as the run store at ``store_path`` recorded them; ``{}`` if none does."""

    def __init__(self, cache: CacheStore, store_path: str | os.PathLike | None) -> None:
        self._cache = cache
        self._store_path = store_path
        self._links: dict[str, tuple[str, str]] | None = None

    def __call__(self, key: str, metas: list[dict]) -> dict:
        for meta in metas:
            if meta.get("stage") is not None:
                return {"stage": meta["stage"], "param_set": meta.get("param_set")}
        if self._links is None:
            self._links = {}
            for _, param_set, stage, linked in self._cache.named(None, None, None):
                self._links.setdefault(linked, (stage, param_set))
        if key in self._links:
            stage, param_set = self._links[key]
            return {"stage": stage, "param_set": param_set}
        for stage, param_set, _ in _recorded_outputs(self._store_path, [key]).get(key, {}).values():
            return {"stage": stage, "param_set": param_set}
        return {}


_LOOKS = 3
"""How many times verify looks at an entry that other runs keep replacing."""


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
    all_projects: bool = False,
    notes: list[str] | None = None,
    store_path: str | os.PathLike | None = None,
) -> tuple[list[str], int]:
    """Remove unlinked stage runs and stale leftovers; return what went and bytes freed.

    ``keep`` holds stage run keys kept as if linked (what the latest completed run of
    each experiment used, a newer one that did not complete and runs going on,
    :func:`latest_runs_keys`: one by-name link cannot point at two branches of a record,
    ``record.make_copy()``, nor at two aggregates of one stage over the same parameter
    sets). With ``older_than_days``, linked entries whose artifacts were all written
    longer ago than that are removed too, with their links.

    Never removed, whatever ``older_than_days`` says:

    - a stage folder a run is writing: one it marked as being written (until it files it
      under its name, see ``CacheStore.save``), or with an unfinished write (a temporary
      file) and a file written less than an hour ago. Leftovers go once they are an
      hour old, as do the markers of runs that stopped;
    - unless ``all_projects``, an entry that another project sharing the cache made
      (its sidecar names another project folder than the one ``cache`` was opened for):
      that project's latest runs may use it, and only its own run store can tell. An
      entry that a run of this project's run store at ``store_path`` computed is this
      project's, made before its folder was moved.

    What was kept for these reasons is said in ``notes`` if given, else logged as
    warnings.

    Raises:
        CacheError: there is no cache at all there (a mistyped folder), or it is damaged.
    """
    cache.check_present()
    from assay.loading import own_run

    own = own_run(store_path) if store_path is not None else None
    now = time.time()
    linked = cache.linked_keys() | set(keep)
    removed: list[str] = []
    freed = 0
    gone: set[str] = set()
    folders = cache.stage_folders()
    being_written = cache.keys_being_written(_LEFTOVER_AGE_S, remove_older=not dry)
    young: list[tuple[str, int]] = []  # unfinished writes kept
    elsewhere: dict[str, int] = {}  # entries of other projects kept: folder -> size
    for folder in folders:
        age = now - folder.modified
        writing = folder.key in being_written or (bool(folder.leftovers) and age <= _LEFTOVER_AGE_S)
        unlinked = folder.key not in linked
        stale = older_than_days is not None and age > older_than_days * 86400
        if not writing and ((unlinked and (folder.outputs or age > _LEFTOVER_AGE_S)) or stale):
            maker = None if all_projects else _made_elsewhere(cache, folder, own)
            if maker is not None:
                elsewhere[maker] = elsewhere.get(maker, 0) + 1
                continue
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
            else:
                young.append((cache.where(folder.key, name), size))
    if not dry:
        # Links to entries that do not exist; looked at again now, as a run may be writing.
        listed = {f.key for f in folders}
        gone |= {k for k in linked - listed if not cache.outputs_of(k)}
        cache.prune_links(gone)
    said = _kept_text(young, elsewhere)
    if notes is not None:
        notes.extend(said)
    else:
        for text in said:
            log.warning("%s", text)
    return removed, freed


def _made_elsewhere(
    cache: CacheStore, folder: StageFolder, own_run: Callable[[str, str], bool] | None
) -> str | None:
    """The other project that made a stage run's entry (its sidecars say), or ``None``."""
    for output in folder.outputs:
        meta = cache.read_meta(folder.key, output)
        if meta is not None:
            return made_elsewhere(meta, cache.project, own_run)
    return None


def _kept_text(young: list[tuple[str, int]], elsewhere: dict[str, int]) -> list[str]:
    """What ``assay cache gc`` says of what it kept although no link points to it."""
    said = []
    if young:
        said.append(
            f"Kept {len(young)} unfinished write(s), "
            f"{format_size(sum(size for _, size in young))}, written less than an hour ago "
            "(.tmp-* files, and the stage folders they are in): a run may be writing them now. "
            "If none is, a run stopped in the middle of a save left them: gc removes them "
            "once they are an hour old, or you may delete them now."
        )
    if elsewhere:
        projects = ", ".join(f"{root} ({count})" for root, count in sorted(elsewhere.items()))
        said.append(
            f"Kept {sum(elsewhere.values())} entr{'y' if sum(elsewhere.values()) == 1 else 'ies'} "
            f"that other projects sharing this cache made: {projects}. Their latest runs may "
            "use them, which only their own run store can tell: run assay cache gc in those "
            "projects, or give --all-projects to remove them from here too."
        )
    return said


def latest_runs_keys(store_path: Any) -> set[str]:
    """The stage run keys that ``gc`` keeps as if linked (none without a run store).

    For each experiment: what its latest *completed* run used (a run that failed or was
    interrupted since must not take that protection away, nor must a run going on), and
    what its newest run used if that one did not complete (its finished stages are what
    running the same command again continues from). And what every run still going on
    used (recorded as it ends; a run killed on another machine stays "running"). Runs
    made with ``--dry-cache`` wrote nothing, so they count for none of this.
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
            if isinstance(run.config, dict) and run.config.get("dry_cache"):
                continue  # it never wrote the cache: the run before it made what is there
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
