"""``assay.load``: get any cached artifact back, in a notebook or a script.

::

    model = assay.load("model", param_set="trees_10", stage="train", experiment="iris")
    table = assay.load(path="data/cache/by-name/iris/trees_10/train/table.parquet")

The artifact's checksum is verified before it is loaded, with the cacher that
wrote it.

Several projects may share one cache; its ``by-name`` folders are the cache's, so
an artifact found by name may have been made by another project that ran an
experiment of the same name last: :func:`load` then says so in a warning.
"""

from __future__ import annotations

import importlib
import logging
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.cache import (
    CacheStore,
    entry_holds,
    in_stage_folder,
    made_elsewhere,
    maker_text,
    open_cache,
)
from assay.config import ProjectConfig, cache_url
from assay.errors import CacheError
from assay.keys import OWN_ENTRIES, split_artifact_key

log = logging.getLogger("assay")


def load(
    output: str | None = None,
    *,
    param_set: str | None = None,
    stage: str | None = None,
    experiment: str | None = None,
    path: str | os.PathLike | None = None,
    key: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    project_root: str | os.PathLike | None = None,
    checksum: str | None = None,
) -> Any:
    """Load a cached artifact by name, by path, or by key.

    Args:
        output: the output's name (as in the stage's ``outputs``).
        param_set: the parameter set's name; ``"aggregate"`` for aggregates (each
            aggregate over other parameter sets is filed under its own
            ``aggregate-HASH``: give that to pick one of several).
        stage: the stage's name.
        experiment: the experiment (or ``--prefix``) it was filed under.
        path: a path to the artifact's file, or to its stage folder (with
            ``output``), e.g. under ``data/cache/by-name/``; or their URL in a cache
            at a URL (``s3://bucket/cache/by-name/EXPERIMENT/SET/STAGE``).
        key: the artifact's key, ``"<stage run key>.<output>"``.
        cache_dir: the cache folder or URL (default: the project's).
        project_root: the project folder (default: found from the cwd).
        checksum: the checksum a run recorded for the artifact (``run.json``, ``assay
            show``): an entry with another one (computed again by a later run, or
            replaced) is refused before anything is loaded, instead of handing out
            other bytes than that run's.

    Leave out what is unambiguous: ``assay.load("model", param_set="a")``
    works if only one stage of one experiment made a ``model`` for ``a``.

    Raises:
        CacheError: nothing matches, several artifacts match (they are
            listed), or the artifact cannot be read.
        CorruptArtifactError: the file does not match its checksum.
    """
    config = ProjectConfig.load(project_root).with_cache_dir(cache_dir)
    cache = open_cache(config)
    if key is not None:
        stage_key, output = split_artifact_key(key)
        meta = cache.settled_meta(stage_key, output)
        if meta is None:
            raise CacheError(f"No cached artifact has key {key!r} in {cache.location}.")
    elif path is not None and cache_url(path, name="path", correct="path=") is not None:
        cache, meta = _meta_for_url(config, cache_url(path), output)
    elif path is not None:
        cache = cache_holding(Path(path), cache)
        meta = _meta_for_path(cache, Path(path), output)
    else:
        meta = _meta_by_name(cache, output, param_set, stage, experiment)
        warn_if_made_elsewhere(meta, config.root, cache, config.store_path)
    if checksum is not None:
        refuse_other_bytes(meta, checksum, cache)
    return load_artifact(cache, meta)


def refuse_other_bytes(meta: dict, checksum: str, cache: CacheStore) -> None:
    """Raise :class:`CacheError` when the entry ``meta`` describes holds other bytes than
    those a run recorded with ``checksum``: the value would not be that run's."""
    found = meta["files"][0]["checksum"]
    if found == checksum:
        return
    raise CacheError(
        f"The artifact {meta['key']}.{meta['output']} of stage {meta.get('stage')!r} in "
        f"{cache.location} is not the one recorded (checksum {checksum}): its entry has "
        f"checksum {found}, made by run {meta.get('run_id') or '(unknown)'} (computed again "
        "with other bytes, as a stage that is not deterministic does under --overwrite, "
        "or replaced). Nothing was loaded. The run's export (--store-full) holds its own "
        "copy; load it from there with cache_dir=EXPORT/cache."
    )


def warn_if_made_elsewhere(
    meta: dict,
    project: str | os.PathLike,
    cache: CacheStore,
    store_path: str | os.PathLike | None = None,
) -> None:
    """Warn when the artifact ``meta`` describes, found by name, was made by another project
    than ``project`` (one sharing the cache): its code and parameters may not be this
    project's, and this project's own may be elsewhere in the cache. A run that the run
    store at ``store_path`` recorded is this project's (moved from another folder since)."""
    if made_elsewhere(meta, project, own_run(store_path) if store_path else None) is None:
        return
    names = ", ".join(
        f"{label} {meta.get(field)}"
        for label, field in (("experiment", "experiment"), ("parameter set", "param_set"),
                             ("stage", "stage"))
        if meta.get(field) is not None
    )  # fmt: skip
    log.warning(
        "Artifact %r (%s) was found by name in the cache %s, but another project made it: "
        "%s, not this project (%s). Projects sharing a cache share its by-name folders: the "
        "last one to run an experiment of that name filed its artifacts there, made with its "
        "own code and parameters. To load this project's own, give its path "
        "(assay run EXPERIMENT --paths lists them) or key; to keep projects apart, give each "
        "its own experiment names (--prefix) or its own cache.",
        meta.get("output"),
        names,
        cache.location,
        maker_text(meta),
        project,
    )


def own_run(store_path: str | os.PathLike) -> Callable[[str, str], bool]:
    """``own_run(run_id, key)``: whether that run of the project's run store at
    ``store_path`` computed the artifact ``key`` (``False`` without a run store, or when
    it cannot be read: damaged, or from a newer assay), for
    :func:`~assay.cache.made_elsewhere`. Such an artifact is then taken for another
    project's: warned about, kept by ``assay cache gc``; never a reason to fail a load."""
    from assay.errors import RunStoreError
    from assay.store import RunStore

    stores: list[RunStore | None] = []  # opened once, on the first question

    def recorded(run_id: str, key: str) -> bool:
        if not stores:
            store = RunStore(store_path) if Path(store_path).is_file() else None
            if store is not None:  # closed with this function: an open connection warns
                weakref.finalize(recorded, store.close)
            stores.append(store)
        if stores[0] is None:
            return False
        try:
            return stores[0].computed_in(run_id, key)
        except RunStoreError as exc:
            log.debug("The run store cannot tell which project made %s: %s", key, exc)
            stores[0].close()
            stores[0] = None
            return False

    return recorded


def load_artifact(cache: CacheStore, meta: dict) -> Any:
    """Load the artifact a sidecar describes, with a cacher like the one that saved it."""
    cacher = make_cacher(meta["cacher"])
    cacher.name = meta["output"]
    cacher.stage = meta.get("stage")
    if cacher.path_override and "{" in str(cacher.path_override):
        # The template was filled in from the producing record; the sidecar has the result.
        cacher.path_override = meta["files"][0]["path"]
    return cache.load(cacher, meta["key"], meta["output"])


def make_cacher(identity: dict) -> Any:
    """Re-create a cacher from the identity recorded in a sidecar."""
    cls = _cacher_class(identity["class"])
    try:
        cacher = cls()
    except TypeError:
        from assay.caching import Cacheable

        cacher = cls.__new__(cls)
        Cacheable.__init__(cacher)
    for attr, value in identity.items():
        if attr != "class":
            setattr(cacher, attr, value)
    return cacher


def _cacher_class(name: str) -> type:
    """The class a sidecar names (``module.Class``, or ``module.Outer.Class`` for a class
    defined in another), imported; :class:`CacheError` if it cannot be."""
    if "<locals>" in name:
        raise CacheError(
            f"The artifact was saved with {name}, a cacher class defined inside a function, "
            "which cannot be imported to load it: define the class at the top of a module, "
            "or load the file with an instance of it yourself."
        )
    parts = name.split(".")
    problem: Exception | None = None
    for cut in range(len(parts) - 1, 0, -1):  # the longest module the name starts with
        module_name = ".".join(parts[:cut])
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                problem = exc  # the module is there, but failed to import something itself
                break
            problem = problem or exc
            continue
        try:
            for attribute in parts[cut:]:
                found = getattr(found, attribute)
        except AttributeError as exc:
            problem = problem or exc  # "No module named m.sub" says more than "no sub in m"
            break
        return found
    raise CacheError(
        f"The artifact was saved with {name}, which cannot be imported here ({problem}). Run "
        "from the project folder, or install the package that defines it."
    ) from problem


def cache_holding(path: Path, cache: CacheStore) -> CacheStore:
    """The cache a path lies in (its ``objects/`` folder: another project's, an export's),
    else ``cache``: the file named is the one loaded, not one with the same key here."""
    if not path.exists():
        return cache
    folder, _ = in_stage_folder(path.resolve())
    if folder.parent.parent.name == "objects":
        return CacheStore(folder.parent.parent.parent)
    return cache


def _meta_for_path(cache: CacheStore, path: Path, output: str | None) -> dict:
    path = path.resolve()
    folder, inner = in_stage_folder(path)
    metas = []
    for sidecar in sorted(folder.glob("*.meta.json")):
        meta = cache.settled_meta(folder.name, sidecar.name[: -len(".meta.json")])
        if meta is None:
            continue
        if not inner:
            if output is not None or meta["output"] not in OWN_ENTRIES:  # a stage folder:
                metas.append(meta)  # its outputs, not its reportables or state
        elif any(entry_holds(f, inner) for f in meta["files"]) or inner == sidecar.name:
            metas.append(meta)
    if output is not None:
        metas = [m for m in metas if m["output"] == output]
    return _one(metas, f"path {path}", "Give the path of one of its files instead.")


def _meta_for_url(config: ProjectConfig, url: str, output: str | None) -> tuple[CacheStore, dict]:
    """The cache at a URL that ``url`` lies in (under its ``objects/`` or ``by-name/``),
    opened with the project's ``cache_options``, and the sidecar ``url`` names there."""
    parts = url.split("/")
    for at, part in enumerate(parts):
        shard = parts[at + 1] if at + 2 < len(parts) else ""
        if part == "objects" and len(shard) == 2 and parts[at + 2].startswith(shard):
            root, key, rest = "/".join(parts[:at]), parts[at + 2], parts[at + 3 :]
            cache = open_cache(config.with_cache_dir(root))
            break
        if part == "by-name" and at + 3 < len(parts):
            root, names, rest = "/".join(parts[:at]), parts[at + 1 : at + 4], parts[at + 4 :]
            cache = open_cache(config.with_cache_dir(root))
            key = cache.linked_key(*names)
            if key is None:
                raise CacheError(
                    f"Nothing is filed under by-name/{'/'.join(names)} in the cache {root}: "
                    f"no artifact has the path {url}. assay cache ls --cache {root} lists "
                    "what is there."
                )
            break
    else:
        raise CacheError(
            f"The path {url} names no artifact: give the URL of an artifact's stage folder "
            "or file in a cache (CACHE/objects/../KEY[/FILE], as assay run --paths prints, or "
            "CACHE/by-name/EXPERIMENT/SET/STAGE[/FILE]), or load it by name with "
            f"cache_dir={url!r}."
        )
    name = "/".join(rest)
    metas = []
    for found in cache.outputs_of(key):
        meta = cache.read_meta(key, found)
        if meta is None or (not name and found in OWN_ENTRIES):  # (its reportables, state)
            continue
        first_parts = {f["path"].split("/", 1)[0] for f in meta["files"]}
        if not name or rest[0] in first_parts or found == name:
            metas.append(meta)
    if output is not None:
        metas = [m for m in metas if m["output"] == output]
    return cache, _one(metas, f"path {url}", "Give the URL of one of its files instead.")


def _meta_by_name(cache: CacheStore, output, param_set, stage, experiment) -> dict:
    found = cache.named(experiment, param_set, stage)
    if not found and not cache.linked_keys():
        raise CacheError(f"The cache {cache.location} holds no artifacts yet.")
    metas = []
    filed: dict[tuple[str, str], tuple[str, str, str]] = {}
    for *names, key in found:
        for name in [output] if output is not None else cache.outputs_of(key):
            meta = cache.settled_meta(key, name)  # (another run may be replacing it)
            if meta is not None and (output is not None or name not in OWN_ENTRIES):
                metas.append(meta)
                # Described by the link that matched: the sidecar names whoever made it first.
                filed.setdefault((key, meta["output"]), tuple(names))
    wanted = ", ".join(
        f"{k}={v!r}"
        for k, v in [
            ("output", output),
            ("param_set", param_set),
            ("stage", stage),
            ("experiment", experiment),
        ]
        if v is not None
    )
    if not metas:
        hints = _near_misses(cache, found, output, param_set, stage, experiment)
        raise CacheError(f"No cached artifact matches {wanted or 'anything'}.{hints}")
    return _one(metas, wanted or "anything", filed=filed)


def _near_misses(cache: CacheStore, found: list, output, param_set, stage, experiment) -> str:
    """ " Did you mean stage='fit'?" for each name given that the cache does not file
    anything under, and that is close to one it does; ``""`` if there is none."""
    import difflib

    everything = cache.named(None, None, None)
    hints = []
    for label, given, index in (("experiment", experiment, 0), ("param_set", param_set, 1),
                                ("stage", stage, 2)):  # fmt: skip
        known = sorted({entry[index] for entry in everything})
        if given is not None and given not in known:
            hints += [f"{label}={c!r}" for c in difflib.get_close_matches(given, known, n=1)]
    if output is not None and found:
        known = sorted({o for *_, key in found[:200] for o in cache.outputs_of(key)})
        if output not in known:
            hints += [f"output={c!r}" for c in difflib.get_close_matches(output, known, n=1)]
    if hints:
        return f" Did you mean {', '.join(hints)}?"
    return _param_sets_cached(everything, param_set, experiment)


def _param_sets_cached(everything: list, param_set, experiment) -> str:
    """The names of the parameter sets the cache holds artifacts of (under ``experiment``,
    if given), when ``param_set`` is none of them: the names the user may give; else ``""``."""
    known = sorted({entry[1] for entry in everything if experiment in (None, entry[0])})
    if param_set is None or not known or param_set in known:
        return ""
    of = f" of experiment {experiment!r}" if experiment is not None else ""
    more = f" (and {len(known) - 10} more)" if len(known) > 10 else ""
    return f" Parameter sets with cached artifacts{of}: {', '.join(known[:10])}{more}."


def _one(
    metas: list[dict],
    wanted: str,
    narrow: str = "Name the output, param_set, stage or experiment to pick one.",
    filed: dict[tuple[str, str], tuple[str, str, str]] | None = None,
) -> dict:
    """The one sidecar of ``metas``; else raise, listing each candidate by where it is
    ``filed`` under ``by-name/`` (``(experiment, parameter set, stage)``) if given."""
    unique = {(m["key"], m["output"]): m for m in metas}
    if len(unique) == 1:
        return next(iter(unique.values()))
    if not unique:
        raise CacheError(f"No cached artifact matches {wanted}.")
    described = []
    for entry, meta in list(unique.items())[:10]:
        names = (filed or {}).get(entry) or (
            meta.get("experiment"),
            meta.get("param_set"),
            meta.get("stage"),
        )
        run = f", made by run {meta['run_number']}" if meta.get("run_number") is not None else ""
        described.append(
            f"{meta['output']} (experiment {names[0]}, parameter set {names[1]}, "
            f"stage {names[2]}{run})"
        )
    listed = "; ".join(described)
    folders = {names[1] for names in (filed or {}).values() if names}
    if len(folders) > 1 and all(str(f).startswith("aggregate-") for f in folders):
        # Aggregates over other parameter sets: only their folders tell them apart.
        narrow = f"Give the aggregate's folder as param_set (param_set={min(folders)!r}, ...)."
    raise CacheError(f"{len(unique)} cached artifacts match {wanted}: {listed}. {narrow}")
