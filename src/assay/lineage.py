"""Where an artifact came from: its run, stage, parameters and upstream artifacts.

::

    from assay.lineage import lineage

    tree = lineage("diamond/a/combine/combined")       # EXPERIMENT/PARAMSET/STAGE/OUTPUT
    tree = lineage("data/cache/objects/3f/3fa4.../combined.json")   # a path into the cache
    tree = lineage("3fa4...e1.combined")               # a key: <stage run key>.<output>
    tree.run["number"], tree.params, [i.name for i in tree.inputs]

The answer is a plain tree of :class:`LineageNode` (``assay lineage`` draws
it). Each node is read from the artifact's sidecar in the cache (key,
checksum, size, stage, parameter set, the code fingerprint and the keys of
its inputs); the producing run (its number, start, git commit) and the
parameter values come from the run store. Inputs are followed back to the
first stage; an artifact the cache no longer holds (``assay cache gc`` removed
it) is shown as the run store recorded it, with the run that computed it. A
stage run met twice (a diamond-shaped pipeline, or two outputs of one stage
that both feed later ones) is expanded the first time only; later it is marked
``seen``.

In a cache several projects share, an artifact another project made says so
(``project``); its run is that project's, so it is not looked up in this
project's run store (run numbers and ids are each project's own).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.cache import CacheStore, made_elsewhere, open_cache_at
from assay.errors import AssayError, CacheError
from assay.keys import EVERY_FIELD, is_artifact_key, split_artifact_key

__all__ = ["LineageInput", "LineageNode", "find_artifact", "lineage"]

_MAX_DEPTH = 200


@dataclass
class LineageInput:
    """One input of a stage run: an upstream artifact, or a value passed in directly."""

    name: str
    """The input's name, as in the stage's ``inputs``."""
    key: str | None = None
    """The upstream artifact's key, or ``None`` for a value passed directly."""
    value_hash: str | None = None
    """The hash of a value passed directly (``stage(record, x=...)``)."""
    record_hash: str | None = None
    """For an aggregate: the hash of the record the input came from."""
    node: LineageNode | None = None
    """The upstream artifact's own lineage."""


@dataclass
class LineageNode:
    """One artifact and how it was made."""

    key: str
    """The artifact's key, ``<stage run key>.<output>``."""
    output: str
    """The output's name."""
    stage: str | None = None
    """The stage that produced it."""
    experiment: str | None = None
    """The experiment (or prefix) it was filed under."""
    param_set: str | None = None
    """The parameter set's name (``"aggregate"`` for aggregates)."""
    params_hash: str | None = None
    """The parameter set's hash."""
    params: dict[str, Any] | None = None
    """The parameter values, from the run store (``None`` if it does not know them)."""
    reads: list[str] | None = None
    """The parameter fields the stage read, when the cache key records them (only
    these can change the artifact); ``None`` if unknown."""
    aggregated: int | None = None
    """For an aggregate: how many records it combined."""
    checksum: str | None = None
    """Checksum of its (first) file."""
    size: int | None = None
    """Size in bytes of its files."""
    path: str | None = None
    """Its stage folder in the cache."""
    created: str | None = None
    """When it was written (UTC)."""
    code: str | None = None
    """Fingerprint of the stage function's code when it was made."""
    run: dict[str, Any] | None = None
    """The run that made it: ``number``, ``id``, ``started``, ``status``, ``git_commit``,
    ``git_dirty``, ``command`` (just ``id`` and ``number`` when the run store lacks it)."""
    inputs: list[LineageInput] = field(default_factory=list)
    """Its inputs, each with the upstream artifact's lineage."""
    seen: bool = False
    """Its stage run is already shown higher up in the tree (for this or another of its
    outputs): its run, parameters and inputs are not repeated."""
    problem: str | None = None
    """Why it could not be followed further (e.g. no longer in the cache)."""
    project: str | None = None
    """The folder of the project that made it, when that is another project sharing the
    cache (``None``: this project, or its sidecar does not say). Its ``run`` is then
    that project's: ``number`` and ``id``, and ``project``."""


def lineage(
    ref: str,
    *,
    config: Any = None,
    cache_dir: str | os.PathLike | None = None,
    store_path: str | os.PathLike | None = None,
) -> LineageNode:
    """The lineage tree of the artifact ``ref`` (a by-name path, a cache path, or a key).

    ``config`` is the project's :class:`~assay.config.ProjectConfig` (found
    from the current folder if not given); ``cache_dir`` and ``store_path``
    override its cache and run store.
    """
    from assay.config import ProjectConfig

    config = config or ProjectConfig.load()
    store_file = Path(store_path or config.store_path)
    cache = open_cache_at(cache_dir, config)
    store = None
    if store_file.exists():
        from assay.store import RunStore

        store = RunStore(store_file)
    try:
        try:
            cache, meta = find_artifact(ref, cache, project=config.root, store_path=store_file)
        except CacheError:
            # A key whose entry is gone: what the run store recorded of it, if it did.
            gone = _Walker(cache, store, config.root).removed(str(ref).strip())
            if gone is None:
                raise
            return gone
        return _Walker(cache, store, config.root).node(meta, depth=0)
    finally:
        if store is not None:
            store.close()


def find_artifact(
    ref: str,
    cache: CacheStore,
    project: str | os.PathLike | None = None,
    store_path: str | os.PathLike | None = None,
) -> tuple[CacheStore, dict]:
    """The cache holding ``ref`` and its sidecar. Raises :class:`CacheError` with the reason.

    With ``project`` (the project's folder), an artifact found by name that another
    project sharing the cache made is the subject of a warning (not one a run that
    the project's run store at ``store_path`` recorded made: the project was moved).
    """
    from assay.loading import _meta_for_path, cache_holding, warn_if_made_elsewhere

    text = str(ref).strip()
    if is_artifact_key(text):
        stage_key, output = split_artifact_key(text)
        meta = cache.read_meta(stage_key, output)
        if meta is None:
            raise CacheError(f"No artifact with key {text!r} in the cache {cache.location}.")
        return cache, meta
    path = Path(text)
    if path.exists():
        cache = cache_holding(path, cache)
        return cache, _meta_for_path(cache, path, None)
    parts = text.strip("/").split("/")
    if len(parts) >= 4:
        meta = _meta_by_name_parts(cache, parts)
        if project is not None:
            warn_if_made_elsewhere(meta, project, cache, store_path)
        return cache, meta
    raise AssayError(
        f"Cannot tell which artifact {text!r} is. Give EXPERIMENT/PARAMETER-SET/STAGE/OUTPUT "
        "(as under data/cache/by-name/, e.g. iris/trees_10/train/model), a path to a cached "
        "file or stage folder, or an artifact key (<stage run key>.<output>, as in its "
        "sidecar's key and output)."
    )


def _meta_by_name_parts(cache: CacheStore, parts: list[str]) -> dict:
    """The sidecar ``EXPERIMENT/PARAMETER-SET/STAGE/OUTPUT`` (split on ``/``) names.

    A parameter set's name, or a ``--prefix`` that stands for the experiment, may hold a
    ``/`` (``model/small``, ``team/alice``: filed under ``model_small``, ``team_alice``),
    so more than four parts are read as each way of splitting the ones before STAGE
    between the two, until one names a cached artifact; if none does, the error of the
    first way (a parameter set with a ``/``) is raised."""
    from assay.loading import _meta_by_name

    *names, stage, output = parts
    errors: list[CacheError] = []
    for cut in range(1, len(names)):  # four parts or more: one way at least
        experiment, param_set = "/".join(names[:cut]), "/".join(names[cut:])
        try:
            return _meta_by_name(cache, output, param_set, stage, experiment)
        except CacheError as exc:
            errors.append(exc)
    raise errors[0]


class _Walker:
    """Builds the tree, reading each sidecar and each run once."""

    def __init__(self, cache: CacheStore, store: Any, project: str | os.PathLike | None = None):
        self.cache = cache
        self.store = store
        self.project = project
        self.done: set[str] = set()
        """Stage run keys already expanded in the tree."""
        self.runs: dict[str, dict | None] = {}
        self.param_sets: dict[str, list] = {}

    def node(self, meta: dict, depth: int) -> LineageNode:
        key = f"{meta['key']}.{meta['output']}"
        files = meta.get("files") or [{}]
        ingredients = meta.get("ingredients") or {}
        node = LineageNode(
            key=key,
            output=meta["output"],
            stage=meta.get("stage"),
            experiment=meta.get("experiment"),
            param_set=meta.get("param_set"),
            params_hash=meta.get("params_hash"),
            checksum=files[0].get("checksum"),
            size=meta.get("size"),
            path=self.cache.where(meta["key"]),
            created=meta.get("created"),
            code=ingredients.get("code"),
        )
        if isinstance(ingredients.get("reads"), dict):
            node.reads = sorted(set(ingredients["reads"]) - {EVERY_FIELD})
        params = ingredients.get("params")
        if isinstance(params, list) and len(params) == 2 and isinstance(params[1], list):
            node.aggregated = len(params[1])
        node.project = made_elsewhere(meta, self.project, self._computed_here)
        if node.project is None:
            run_id, number = meta.get("run_id"), meta.get("run_number")
            if run_id is None:  # saved in a notebook session, before it was recorded
                run_id, number = self._session_that_computed(key)
            node.run = self._run(run_id, number)
            node.params = self._params(run_id, node.param_set, node.params_hash)
        elif meta.get("run_id") is not None:  # another project's run store knows it
            node.run = {
                "number": meta.get("run_number"),
                "id": meta["run_id"],
                "project": node.project,
            }
        if meta["key"] in self.done:  # this stage run (for another of its outputs) is drawn
            node.seen = True
            return node
        self.done.add(meta["key"])
        if depth >= _MAX_DEPTH:
            node.problem = f"not followed further (deeper than {_MAX_DEPTH} stages)"
            return node
        for entry in ingredients.get("upstream") or []:
            node.inputs.append(self._input(entry, depth))
        return node

    def removed(self, key: str) -> LineageNode | None:
        """An artifact the cache no longer holds (``assay cache gc`` removed it), as the run
        store recorded it: the run that computed it, its stage, parameter set, checksum and
        size (its code and inputs were in its record in the cache, gone with it). ``None``
        if the key is not an artifact key or no run of the store computed it."""
        if self.store is None or not is_artifact_key(key):
            return None
        try:
            found = self.store.last_recorded(key)
        except AssayError:  # unreadable: nothing more to tell
            return None
        if found is None or found[0].action != "computed":  # its maker is not in this store
            return None
        run, artifact = found
        return LineageNode(
            key=key,
            output=split_artifact_key(key)[1],
            stage=artifact.stage,
            param_set=artifact.param_set,
            checksum=artifact.checksum,
            size=artifact.size,
            run=self._run(run.run_id, run.run_number),
            params=self._params(run.run_id, artifact.param_set, None),
            problem="no longer in the cache",
        )

    def _computed_here(self, run_id: str, key: str) -> bool:
        """Whether this project's run ``run_id`` computed ``key`` (see
        :func:`assay.cache.made_elsewhere`); ``False`` if the run store cannot tell."""
        if self.store is None:
            return False
        try:
            return self.store.computed_in(run_id, key)
        except AssayError:  # damaged, or from a newer assay: the cache still tells the rest
            return False

    def _input(self, entry: Any, depth: int) -> LineageInput:
        if not isinstance(entry, (list, tuple)) or not entry:
            return LineageInput(name=str(entry))
        name, last = str(entry[0]), entry[-1]
        found = LineageInput(name=name, record_hash=entry[1] if len(entry) == 3 else None)
        if isinstance(last, str) and is_artifact_key(last):
            found.key = last
            stage_key, output = split_artifact_key(last)
            meta = self.cache.read_meta(stage_key, output)
            if meta is None:
                found.node = self.removed(last) or LineageNode(
                    key=last, output=output, problem="no longer in the cache"
                )
            else:
                found.node = self.node(meta, depth + 1)
        else:
            found.value_hash = str(last)
        return found

    def _session_that_computed(self, key: str) -> tuple[str | None, int | None]:
        """The newest notebook session recorded (``generate_report()``) as having computed
        ``key``: its id and number (``None`` for both if there is none). A session saves
        its artifacts before it has a run number, so their sidecars name no run; the run
        store knows which one."""
        if self.store is None:
            return None, None
        try:
            computed = [r for r in self.store.find_artifact_runs(key) if r.action == "computed"]
            for found in reversed(computed):
                if self.store.get_run(found.run_id).config.get("interactive"):
                    return found.run_id, found.run_number
        except AssayError:
            pass
        return None, None

    def _run(self, run_id: str | None, number: int | None) -> dict | None:
        if run_id is None:
            return None
        if run_id not in self.runs:
            info = None
            if self.store is not None:
                try:
                    run = self.store.get_run(run_id)
                    info = {
                        "number": run.number,
                        "id": run.id,
                        "started": run.started,
                        "status": run.status,
                        "git_commit": run.git_commit,
                        "git_dirty": run.git_dirty,
                        "command": run.command,
                    }
                except AssayError:
                    info = None
            self.runs[run_id] = info or {"number": number, "id": run_id}
        return self.runs[run_id]

    def _params(self, run_id: str | None, name: str | None, params_hash: str | None):
        if run_id is None or self.store is None:
            return None
        if run_id not in self.param_sets:
            try:
                self.param_sets[run_id] = self.store.param_sets(run_id)
            except AssayError:
                self.param_sets[run_id] = []
        for match in (lambda p: p.name == name and p.hash == params_hash,
                      lambda p: p.hash == params_hash,
                      lambda p: p.name == name):  # fmt: skip
            for params in self.param_sets[run_id]:
                if match(params):
                    return params.values
        return None
