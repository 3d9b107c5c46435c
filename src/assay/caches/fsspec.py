"""A cache at an fsspec URL, shared by every machine that runs an experiment.

::

    [tool.assay]
    cache_dir = "s3://my-lab/assay-cache"       # or gcs://, az://, sftp://host/path, ...
    cache_options = { profile = "lab" }         # keyword arguments of the filesystem

or ``assay run EXP --cache s3://my-lab/assay-cache``. The URL holds the same
layout as a cache folder (``objects/``, ``by-name/``, ``reads/``, ``code/``;
see :mod:`assay.cache`), so a person finds an artifact there by experiment,
parameter set and stage. The filesystem comes from the fsspec package for
the URL's protocol (``pip install s3fs``, ``gcsfs``, ``adlfs``, ``paramiko``
for sftp); it reads its credentials as it always does (``AWS_PROFILE``,
``~/.aws``, ...) or from ``cache_options``.

Cachers write and read local files, as everywhere in assay: this store keeps
a *local copy* of every entry this machine writes or reads, under
``local_cache_dir`` (``data/cache/remote/<the URL>/``), and moves files
between it and the URL:

- **saving**: the cacher writes the local copy (atomically, as in a folder
  cache); its files are uploaded, then the sidecar last. The sidecar's
  presence at the URL is what makes the entry exist, so a writer killed
  halfway leaves nothing that passes for an artifact. On filesystems with
  renames (sftp, a mounted folder) each file goes to a temporary name first;
  on object stores a single upload is atomic by itself.
- **loading**: the sidecar at the URL is the record; a local copy is used
  only if every file matches its size and checksum there, otherwise the
  files are downloaded and checked again. A file that does not match its
  record is never unpickled.

A worker writes the artifacts of the stages it runs itself, so large outputs
never travel through the Dask scheduler or the main process. Links in
``by-name/`` are small text files holding the target folder (object stores
have no symbolic links); the read index is one small file per entry under
``reads/STAGE/`` (object stores cannot append).
"""

from __future__ import annotations

import datetime
import fnmatch
import inspect
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from assay.cache import (
    _NOT_A_RECORD,
    AGGREGATE,
    CacheStore,
    StageFolder,
    _glob,
    _host,
    _outputs,
    _param_set_globs,
    _reads_json,
    _reads_value,
    _safe,
    _unique,
    corrupt,
    file_problem,
    key_of_target,
    link_target,
    sidecar_problem,
    unfinished_write,
    unreadable_record,
)
from assay.errors import CacheError, ConfigError

_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2", "wasb"}
"""Protocols whose uploads are atomic by themselves (and whose renames are copies)."""

_ANSWER_WAIT_S = 60.0
"""How long a write of a few bytes to the store may take (the check before a run, sidecars,
links, the read index): a server that accepts connections but never answers would hold a
write there forever, as aiohttp waits for a reply to an upload without the ``read_timeout``
of ``config_kwargs``. (Reads do end: the filesystem's ``read_timeout`` bounds them.)"""

_SLOWEST_UPLOAD = 256 * 1024
"""Bytes per second: an artifact's upload may take ``_ANSWER_WAIT_S`` plus its size at
this rate before the store counts as stalled."""

_BATCH = 100
"""Small files per ``_ANSWER_WAIT_S`` that one batch of writes may take."""

_ADVICE = (
    "Check the URL, the network and your credentials (the filesystem's usual settings, e.g. "
    "AWS_PROFILE for s3://, or cache_options in [tool.assay])."
)


class UrlCacheError(CacheError):
    """The cache at a URL failed: its filesystem said why (credentials, network, ...)."""

    def on_worker(self, where: str, existing_cluster: bool) -> UrlCacheError:
        """This error as met by the worker ``where`` ("the Dask worker tcp://..., host H").

        A worker of an ``existing_cluster`` (not started by the run) reads the cache with
        the credentials of the environment it was started in, which the researcher's
        shell, where the run checked the cache, need not share.
        """
        text = str(self).removesuffix(_ADVICE)
        if not existing_cluster:
            return UrlCacheError(f"{text}This happened on {where}. {_ADVICE}")
        return UrlCacheError(
            f"{text}This happened on {where}, which reads the cache with the credentials of "
            "its own environment, not with those of the shell the run was started from: "
            "start the workers with them (e.g. AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, for s3://), or give them in cache_options in "
            "[tool.assay]. Check the URL and the network from that host too."
        )


class FsspecCacheStore(CacheStore):
    """The cache at ``url``, with local copies of its entries under ``local_root``.

    Args:
        url: an fsspec URL, e.g. ``"s3://bucket/assay-cache"``.
        local_root: the folder for this machine's copies of the entries.
        options: keyword arguments for the filesystem (``endpoint_url``, ...).
    """

    remote = True

    def __init__(self, url: str, local_root: str | os.PathLike, options: dict | None = None):
        super().__init__(local_root)
        self.url = url.rstrip("/")
        self.fs, self.base = _filesystem(self.url, options or {})
        self.base = self.base.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._object_store = bool(set(protocols) & _OBJECT_STORES)
        # s3fs asks for a file's size before reading it, to read big files in parallel
        # parts: for the small files read here that is one request more (two for a miss).
        accepts = inspect.signature(getattr(self.fs, "_cat_file", self.fs.cat_file)).parameters
        self._small = {"max_concurrency": 1} if "max_concurrency" in accepts else {}
        # fsspec's async filesystems (s3, gcs, az, ...) end a call that takes longer.
        self._timed = bool(getattr(self.fs, "async_impl", False))
        self._metas: dict[tuple[str, str], dict] = {}
        self._missing: set[tuple[str, str]] = set()
        self._damaged: dict[tuple[str, str], str] = {}  # sidecars there, but no record
        self._links: dict[str, str] = {}
        self._writing: set[str] = set()  # stage runs this process marked at the URL
        self.uploaded: list[str] = []
        """The artifacts (``key.output``) this process wrote to the URL."""
        self.downloaded: list[str] = []
        """The files this process fetched from the URL into its local copies."""

    # -- where things are --------------------------------------------------------------

    def _read(self, path: str) -> bytes:
        """A small file's bytes, in one request."""
        return self.fs.cat_file(path, **self._small)

    def _remote(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def _stage(self, key: str) -> str:
        return self._remote("objects", key[:2], key)

    def _meta_file(self, key: str, output: str) -> str:
        return f"{self._stage(key)}/{output}.meta.json"

    def _link_file(self, experiment: str, param_set: str, stage: str) -> str:
        return self._remote("by-name", _safe(experiment), _safe(param_set), _safe(stage))

    def where(self, key: str, filename: str | None = None) -> str:
        folder = f"{self.url}/objects/{key[:2]}/{key}"
        return f"{folder}/{filename}" if filename else folder

    @property
    def location(self) -> str:
        return self.url

    def check_usable(self, write: bool = True) -> None:
        probe = self._remote(f".assay-probe-{_unique()}")
        bound = self._bound(_ANSWER_WAIT_S)
        try:
            if write:
                self._put_bytes(probe, b"assay checks that it can write here\n", **bound)
                self.fs.rm_file(probe, **bound)
            else:
                self.fs.cat_file(probe, **self._small, **bound)
        except FileNotFoundError:
            if write:
                raise UrlCacheError(
                    f"The cache at {self.url} cannot be written: its bucket or folder does not "
                    f"exist. Create it first, or give another --cache URL. {_ADVICE}"
                ) from None
        except TimeoutError as exc:
            waited = f"within {_ANSWER_WAIT_S:g} s" if bound else "in time"
            raise UrlCacheError(
                f"The cache at {self.url} did not answer {waited} ({type(exc).__name__}): "
                "something accepts connections there but does not reply (a stalled server, "
                "a proxy, or the wrong endpoint or port). Nothing was run. " + _ADVICE
            ) from exc
        except Exception as exc:
            what = "written" if write else "read"
            raise UrlCacheError(
                f"The cache at {self.url} cannot be {what} ({type(exc).__name__}: {exc}). "
                f"Nothing was run. {_ADVICE}"
            ) from exc

    def check_present(self) -> None:
        """Fail with a clear message unless there is a cache at the URL (for ``assay cache
        ls | verify | gc``): a mistyped URL or bucket must not pass for an empty cache."""
        self.fs.invalidate_cache(self.base)
        if self._call("looking for the cache", _missing_ok(self.fs.info), self.base) is not None:
            return
        bucket = self.base.strip("/").split("/", 1)[0]
        if (
            self._object_store
            and bucket
            and (
                bucket == self.base.strip("/")
                or self._call("looking for its bucket", _missing_ok(self.fs.info), bucket) is None
            )
        ):
            raise UrlCacheError(
                f"There is no cache at {self.url}: its bucket {bucket!r} does not exist. Check "
                "the URL given with --cache (or cache_dir in assay.toml) and the endpoint in "
                "cache_options. Nothing was changed."
            )
        raise UrlCacheError(
            f"There is no cache at {self.url}: nothing is stored there. Check the URL given "
            "with --cache (or cache_dir in assay.toml); a run creates the cache when it first "
            "saves an artifact. Nothing was changed."
        )

    # -- lookups -----------------------------------------------------------------------

    def has(self, key: str, output: str) -> bool:
        return self.read_meta(key, output) is not None

    def entry(self, key: str, output: str, cacher: Any = None) -> dict | None:
        """The sidecar alone: checking that the files exist would cost a request per
        artifact, so a file missing at the URL is found when it is loaded.

        Raises:
            CorruptArtifactError: the sidecar at the URL is damaged (as in a folder cache:
                the caller warns and computes the output again).
        """
        meta = self.read_meta(key, output)
        damage = self._damaged.get((key, output))
        if meta is None and damage is not None:
            raise unreadable_record(cacher, key, output, damage)
        return meta

    def read_meta(self, key: str, output: str) -> dict | None:
        found = self._metas.get((key, output))
        if found is not None:
            return found
        if (key, output) in self._missing or (key, output) in self._damaged:
            return None
        data = self._call(
            f"reading the record of {output!r}",
            _missing_ok(self._read),
            self._meta_file(key, output),
        )
        if data is None:
            return None
        self._note(key, output, data)
        return self._metas.get((key, output))

    def record_damage(self, key: str, output: str) -> str | None:
        self._damaged.pop((key, output), None)  # read it again: another run may have fixed it
        self._metas.pop((key, output), None)
        self._missing.discard((key, output))
        self.read_meta(key, output)
        return self._damaged.get((key, output))

    def _note(self, key: str, output: str, data: bytes) -> None:
        """Remember the sidecar ``data`` read at the URL, or what is wrong with it: an
        upload there is atomic, so one cut short or not a record is damage, not a write
        going on (see :func:`assay.cache.sidecar_problem`; another entry's, copied, too)."""
        try:
            meta = json.loads(data)
        except ValueError:
            problem = _NOT_A_RECORD
        else:
            problem = sidecar_problem(meta, key, output)
        if problem is None:
            self._metas[(key, output)] = meta
        else:
            self._damaged[(key, output)] = problem

    def settled_meta(self, key: str, output: str) -> dict | None:
        return self.read_meta(key, output)  # (a sidecar at the URL is put whole, in one go)

    def prefetch(self, entries: list[tuple[str, str]]) -> None:
        wanted = {self._meta_file(*e): e for e in entries if e not in self._metas}
        found = self._cat_many(list(wanted), "looking up cached artifacts")
        for path, entry in wanted.items():
            if path in found:
                self._note(*entry, found[path])
            else:
                self._missing.add(entry)

    def saved_now(self, key: str, outputs: Iterable[str]) -> dict[str, dict]:
        """The sidecars at the URL now (read afresh, not as remembered): another worker of
        the run, on this machine or another, may have saved the same stage run while this
        one computed it. One request when the first output has none (the usual case)."""
        outputs = list(outputs)
        for output in outputs:
            self._metas.pop((key, output), None)
            self._missing.discard((key, output))
            self._damaged.pop((key, output), None)
        if not outputs or self.read_meta(key, outputs[0]) is None:
            return {}
        self.prefetch([(key, output) for output in outputs[1:]])
        return super().saved_now(key, outputs)

    def forget_missing(self) -> None:
        self._missing.clear()

    def remember(self, meta: dict) -> None:
        self._metas[(meta["key"], meta["output"])] = meta
        self._damaged.pop((meta["key"], meta["output"]), None)

    def forget(self) -> None:
        self._metas.clear()
        self._missing.clear()
        self._damaged.clear()
        self._links.clear()
        self._reads.clear()
        self._latest_reads.clear()

    def outputs_of(self, key: str) -> list[str]:
        folder = self._stage(key)
        self.fs.invalidate_cache(folder)
        names = self._call("listing a stage run", _missing_ok(self.fs.ls), folder, detail=False)
        return sorted(_outputs(n.rstrip("/").rsplit("/", 1)[-1] for n in names or ()))

    def stage_folders(self) -> list[StageFolder]:
        listing = self._find("objects", detail=True)
        prefix = self._remote("objects") + "/"
        folders: dict[str, StageFolder] = {}
        for path, info in sorted(listing.items()):
            parts = path[len(prefix) :].split("/") if path.startswith(prefix) else []
            if len(parts) < 3:
                continue
            key, name = parts[1], parts[2]
            folder = folders.setdefault(key, StageFolder(key, [], 0.0, 0))
            size, modified = int(info.get("size") or 0), _modified(info)
            folder.size += size
            folder.modified = max(folder.modified, modified)
            if unfinished_write(name):  # an upload stopped before its rename, too
                folder.leftovers.append((name, modified, size))
            elif len(parts) == 3:
                folder.outputs += _outputs([name])
        return list(folders.values())

    def bookkeeping_size(self) -> int:
        return sum(
            int(info.get("size") or 0)
            for folder in ("code", "reads", "by-name")
            for info in self._find(folder, detail=True).values()
        )

    def stage_entry_names(self, key: str) -> list[str]:
        """What a stage run's folder at the URL holds (for ``assay cache verify``)."""
        folder = self._stage(key)
        self.fs.invalidate_cache(folder)
        found = self._call("listing a stage run", _missing_ok(self.fs.find), folder)
        prefix = folder + "/"
        return sorted(
            {p[len(prefix) :].split("/", 1)[0] for p in found or () if p.startswith(prefix)}
        )

    def linked_key(self, experiment: str, param_set: str, stage: str) -> str | None:
        data = self._call(
            "reading a by-name link",
            _missing_ok(self._read),
            self._link_file(experiment, param_set, stage),
        )
        return key_of_target(data.decode(errors="replace")) if data else None

    def named(
        self, experiment: str | None, param_set: str | None, stage: str | None
    ) -> list[tuple[str, str, str, str]]:
        if None not in (experiment, param_set, stage) and param_set != AGGREGATE:
            key = self.linked_key(experiment, param_set, stage)
            return [(experiment, param_set, stage, key)] if key else []
        patterns = [
            [_glob(experiment), folder, _glob(stage)] for folder in _param_set_globs(param_set)
        ]
        prefix = self._remote("by-name") + "/"
        paths = []
        for path in self._find("by-name"):
            parts = path[len(prefix) :].split("/")
            matches = len(parts) == 3 and any(
                all(map(fnmatch.fnmatchcase, parts, pattern)) for pattern in patterns
            )
            if matches and not unfinished_write(parts[2]):
                paths.append(path)
        found = []
        for path, data in sorted(self._cat_many(paths).items()):
            key = key_of_target(data.decode(errors="replace"))
            if key is not None:
                found.append((*path[len(prefix) :].split("/"), key))
        return found

    def remove_stage(self, key: str) -> None:
        self._call(
            "removing a stage run", _missing_ok(self.fs.rm), self._stage(key), recursive=True
        )
        for meta_key in [k for k in self._metas if k[0] == key]:
            del self._metas[meta_key]
        for meta_key in [k for k in self._damaged if k[0] == key]:
            del self._damaged[meta_key]
        super().remove_stage(key)

    def remove_leftover(self, key: str, name: str) -> None:
        path = f"{self._stage(key)}/{name}"
        self._call("removing an unfinished write", _missing_ok(self.fs.rm), path, recursive=True)

    def prune_links(self, gone: set[str]) -> None:
        links = self._cat_many(self._find("by-name"))
        doomed = [
            p for p, data in links.items() if key_of_target(data.decode(errors="replace")) in gone
        ]
        if doomed:
            self._call("removing by-name links", self.fs.rm, doomed)

    def fetch_stage(self, key: str) -> Path:
        folder = self.stage_dir(key)
        outputs = self.outputs_of(key)
        for output in outputs:
            meta = self.read_meta(key, output)
            if meta is None:
                continue
            self._fetch(meta)
            self.ensure_dir(folder)
            (folder / f"{output}.meta.json").write_text(json.dumps(meta, default=str))
        for stale in set(super().outputs_of(key)) - set(outputs):  # no longer at the URL
            (folder / f"{stale}.meta.json").unlink(missing_ok=True)
        return folder

    def localize(self, key: str, output: str) -> None:
        meta = self.read_meta(key, output)
        if meta is not None:
            self._fetch(meta)

    # -- writing -----------------------------------------------------------------------

    def save(
        self, cacher: Any, obj: Any, *, key: str, output: str, meta: dict, replace: bool = True
    ) -> dict:
        sidecar = super().save(cacher, obj, key=key, output=output, meta=meta, replace=replace)
        folder = self.stage_dir(key)
        try:
            for entry in sidecar["files"]:
                if not os.path.isabs(entry["path"]):
                    self._upload(folder / entry["path"], f"{self._stage(key)}/{entry['path']}")
            self._put_bytes(self._meta_file(key, output), json.dumps(sidecar, default=str).encode())
        except Exception as exc:
            raise UrlCacheError(
                f"Could not write output {output!r} of stage {meta.get('stage')!r} (parameter "
                f"set {meta.get('param_set')!r}) to the cache at {self.url} "
                f"({_why(exc)}). The entry is left out; its local copy stays in "
                f"{folder}. {_ADVICE}"
            ) from exc
        self._metas[(key, output)] = sidecar
        self._damaged.pop((key, output), None)
        self.uploaded.append(f"{key}.{output}")
        return sidecar

    def discard(self, key: str, output: str, keep_files: bool = False) -> None:
        meta = None if keep_files else self.read_meta(key, output)
        self._metas.pop((key, output), None)
        self._damaged.pop((key, output), None)
        remove = _missing_ok(self.fs.rm)
        self._call("removing an entry", remove, self._meta_file(key, output))
        for entry in (meta or {}).get("files", []):
            if not os.path.isabs(entry["path"]):
                path = f"{self._stage(key)}/{entry['path']}"
                self._call("removing an entry", remove, path, recursive=True)
        super().discard(key, output, keep_files=True)

    def link(self, experiment: str, param_set: str, stage: str, key: str) -> None:
        self.link_many([(experiment, param_set, stage, key)])

    # Markers of stage runs being written are at the URL, one small file ``writing/KEY``
    # each, from a stage run's first saved output to its link: every process that runs
    # ``assay cache gc`` on the URL, on any machine, sees them (a marker in the local
    # copies would be seen by this machine alone), and leaves those stage runs alone.

    def _mark_writing(self, key: str, lasting: bool = False) -> None:
        if key in self._writing:
            return
        note = f"{_host()} {os.getpid()}\n".encode()
        try:
            self._put_bytes(self._marker(key), note)
        except Exception:  # the save itself says why, naming the artifact
            return
        self._writing.add(key)

    def made_for_the_run(self, key: str) -> None:
        return  # the worker that wrote it marked it at the URL, and unmarks it as it links

    def done_writing(self, key: str) -> None:
        self._unmark([key])

    def _unmark(self, keys: Iterable[str]) -> None:
        done = sorted(self._writing.intersection(keys))
        if done:
            remove = _missing_ok(self.fs.rm)
            self._call("noting stage runs written", remove, [self._marker(k) for k in done])
            self._writing.difference_update(done)

    def keys_being_written(self, max_age_s: float, remove_older: bool = False) -> set[str]:
        now, keys, older = time.time(), set(), []
        for path, info in self._find("writing", detail=True).items():
            if now - _modified(info) <= max_age_s:
                keys.add(path.rsplit("/", 1)[-1])
            else:
                older.append(path)  # left by a run that stopped
        if remove_older and older:
            self._call("removing old markers", _missing_ok(self.fs.rm), older)
        return keys

    def _marker(self, key: str) -> str:
        return self._remote("writing", key)

    def link_many(self, links: Iterable[tuple[str, str, str, str]]) -> None:
        links = list(links)
        self._link_many(links)
        self._unmark(link[3] for link in links)

    def _link_many(self, links: list[tuple[str, str, str, str]]) -> None:
        links = [link for link in links if self._links.get(self._link_file(*link[:3])) != link[3]]
        if not links:
            return
        wanted = {self._link_file(*link[:3]): link_target(link[3]) for link in links}
        _, param_set, stage, _ = links[0]
        what = f"filing stage {stage!r} for parameter set {param_set!r} under by-name/"
        if len(links) > 1:
            what += f" (and {len(links) - 1} more stage runs)"
        current = self._cat_many(list(wanted), what)
        changed = {p: t for p, t in wanted.items() if current.get(p, b"").decode() != t}
        self._put_many({p: t.encode() for p, t in changed.items()}, what)
        self._links.update({self._link_file(*link[:3]): link[3] for link in links})

    # -- what stages read, and their code ------------------------------------------------

    # The read index at a URL is one small file per stage and key base
    # (``reads/STAGE/BASE.json``: the field sets that stage runs with that base read,
    # newest first), plus ``reads/STAGE/latest.json``; a run reads only the files of
    # the bases it plans, where one file per stage would grow with every run.

    def known_reads(self, stage: str, base: str) -> list:
        index = self._reads.setdefault(stage, {})
        if base not in index:
            data = self._call(
                f"reading which parameters stage {stage!r} read",
                _missing_ok(self._read),
                self._reads_path(stage, base),
            )
            index[base] = [_reads_value(r) for r in _json(data).get("reads", [])]
        return index[base]

    def add_reads(self, stage: str, base: str, reads: frozenset | str) -> None:
        known = self.known_reads(stage, base)
        if known and known[0] == reads:
            return
        if reads in known:
            known.remove(reads)
        known.insert(0, reads)
        entry = {"base": base, "reads": [_reads_json(r) for r in known], "time": time.time()}
        files = {self._reads_path(stage, base): json.dumps(entry).encode()}
        if self._latest_reads.get(stage) != reads:
            latest = {"reads": _reads_json(reads), "time": entry["time"]}
            files[self._reads_path(stage, "latest")] = json.dumps(latest).encode()
        self._latest_reads[stage] = reads
        self._put_many(files, f"recording which parameters stage {stage!r} read")

    def latest_reads(self, stage: str) -> frozenset | str | None:
        if stage not in self._latest_reads:
            data = self._call(
                f"reading which parameters stage {stage!r} read",
                _missing_ok(self._read),
                self._reads_path(stage, "latest"),
            )
            found = _json(data).get("reads")
            if found is None:
                return None
            self._latest_reads[stage] = _reads_value(found)
        return self._latest_reads[stage]

    def _read_entries(self, stage: str) -> Iterable[dict]:
        """Every base's read sets, as a folder cache's index lists them (oldest first)."""
        files = [p for p in self._find(f"reads/{_safe(stage)}") if not p.endswith("/latest.json")]
        found = sorted((_json(d) for d in self._cat_many(files).values()), key=_time)
        return [
            {"base": entry["base"], "reads": reads}
            for entry in found
            if "base" in entry
            for reads in reversed(entry.get("reads", []))
        ]

    def _reads_path(self, stage: str, base: str) -> str:
        return self._remote("reads", _safe(stage), f"{base}.json")

    def put_code_texts(self, texts: dict[str, str]) -> None:
        # A local copy means this machine uploaded it already (texts never change).
        new = {d: t for d, t in texts.items() if self.code_text_here(d) is None}
        if not new:
            return
        files = {self._remote("code", d[:2], f"{d}.txt"): t.encode() for d, t in new.items()}
        self._put_many(files, "keeping code texts")
        super().put_code_texts(new)

    def code_text_here(self, digest: str) -> str | None:
        """A code text's local copy, if this machine has one."""
        return super().code_text(digest)

    def code_text(self, digest: str) -> str | None:
        here = self.code_text_here(digest)
        if here is not None:
            return here
        path = self._remote("code", digest[:2], f"{digest}.txt")
        data = self._call("reading a code text", _missing_ok(self._read), path)
        return data.decode() if data is not None else None

    # -- reading -----------------------------------------------------------------------

    def load(self, cacher: Any, key: str, output: str) -> Any:
        meta = self.read_meta(key, output)
        if meta is None:
            raise unreadable_record(cacher, key, output, self._damaged.get((key, output)))
        self._fetch(meta)
        return self._load_verified(cacher, meta)

    def verify(self, meta: dict) -> None:
        """Check the files of an entry *at the URL* against its record.

        Each file is downloaded and checked, even where this machine's copy matches
        the record: the copy says nothing about what other machines load from the
        URL. A file that matches becomes the local copy; one that does not is
        dropped, and the local copy is left as it was.
        """
        folder = self.stage_dir(meta["key"])
        for entry in meta["files"]:
            path = Path(entry["path"])
            if _checked_where_it_is(meta, path, entry):
                continue
            where = self.where(meta["key"], entry["path"])
            local = folder / path
            fresh = local.with_name(f".verify-{_unique()}-{local.name}")
            try:
                if not self._download(f"{self._stage(meta['key'])}/{entry['path']}", fresh):
                    raise corrupt(meta, f"{where} is missing")
                problem = file_problem(fresh, entry)
                if problem:
                    raise corrupt(meta, f"{where} {problem}")
                if local.is_dir() and not local.is_symlink():
                    shutil.rmtree(local, ignore_errors=True)
                os.replace(fresh, local)
            finally:
                if fresh.is_dir() and not fresh.is_symlink():
                    shutil.rmtree(fresh, ignore_errors=True)
                else:
                    fresh.unlink(missing_ok=True)

    def _fetch(self, meta: dict) -> None:
        """Make the local copy of an entry's files match its sidecar, or raise."""
        folder = self.stage_dir(meta["key"])
        for entry in meta["files"]:
            path = Path(entry["path"])
            if _checked_where_it_is(meta, path, entry):
                continue
            local = folder / path
            if file_problem(local, entry) is None:
                continue
            remote = f"{self._stage(meta['key'])}/{entry['path']}"
            if not self._download(remote, local):
                raise corrupt(meta, f"{self.where(meta['key'], entry['path'])} is missing")
            problem = file_problem(local, entry)
            if problem:
                raise corrupt(meta, f"{self.where(meta['key'], entry['path'])} {problem}")

    # -- moving files ------------------------------------------------------------------

    def _upload(self, local: Path, remote: str) -> None:
        """Upload a file or a folder; on filesystems with renames, atomically."""
        target = remote if self._object_store else f"{remote}.tmp-{_unique()}"
        if local.is_dir():
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                self._put_file(path, f"{target}/{path.relative_to(local).as_posix()}")
        else:
            self._put_file(local, target)
        if target != remote:
            self._rename(target, remote, recursive=local.is_dir())

    def _put_file(self, local: Path, remote: str) -> None:
        if not self._object_store:
            self.fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
        wait = _ANSWER_WAIT_S + local.stat().st_size / _SLOWEST_UPLOAD
        self.fs.put_file(str(local), remote, **self._bound(wait))

    def _bound(self, seconds: float) -> dict[str, float]:
        """fsspec's ``timeout`` for one call, on filesystems that take one."""
        return {"timeout": seconds} if self._timed else {}

    def _put_bytes(self, remote: str, data: bytes, **bound: float) -> None:
        """Write a small file (``bound``: fsspec's ``timeout`` for each call, by default
        ``_ANSWER_WAIT_S``)."""
        bound = bound or self._bound(_ANSWER_WAIT_S)
        if self._object_store:
            self.fs.pipe_file(remote, data, **bound)
            return
        self.fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True, **bound)
        temporary = f"{remote}.tmp-{_unique()}"
        self.fs.pipe_file(temporary, data, **bound)
        self._rename(temporary, remote)

    def _put_many(self, files: dict[str, bytes], what: str) -> None:
        if not files:
            return
        if self._object_store:  # one batch: concurrent requests on async filesystems
            wait = _ANSWER_WAIT_S * (1 + len(files) // _BATCH)
            self._call(what, self.fs.pipe, files, **self._bound(wait))
            return
        for path, data in files.items():
            self._call(what, self._put_bytes, path, data)

    def _rename(self, source: str, target: str, recursive: bool = False) -> None:
        try:
            self.fs.mv(source, target, recursive=recursive)
        except OSError:  # some filesystems (sftp) do not rename onto an existing name
            self.fs.rm(target, recursive=True)
            self.fs.mv(source, target, recursive=recursive)

    def _download(self, remote: str, local: Path) -> bool:
        """Fetch a file or folder into ``local`` (atomically); False if it is not there."""
        files = self._find_from(remote)
        if not files:
            return False
        self.ensure_dir(local.parent)
        temporary = local.with_name(f".{local.name}.{_unique()}")
        try:
            for path in files:
                target = temporary if path == remote else temporary / path[len(remote) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                self._call("downloading an artifact", self.fs.get_file, path, str(target))
            if local.is_dir():
                shutil.rmtree(local, ignore_errors=True)
            os.replace(temporary, local)
        finally:
            if temporary.is_dir():
                shutil.rmtree(temporary, ignore_errors=True)
            else:
                temporary.unlink(missing_ok=True)
        self.downloaded.append(remote)
        return True

    # -- helpers -----------------------------------------------------------------------

    def _find_from(self, remote: str) -> list[str]:
        """``[remote]`` for a file, the files below it for a folder, ``[]`` if absent."""
        self.fs.invalidate_cache(remote)
        info = self._call("looking up an artifact", _missing_ok(self.fs.info), remote)
        if info is None:
            return []
        if info.get("type") != "directory":
            return [remote]
        return sorted(self._call("listing an artifact", self.fs.find, remote))

    def _find(self, folder: str, detail: bool = False) -> Any:
        """Every file under ``folder`` of the cache (a dict of infos with ``detail``)."""
        path = self._remote(folder)
        self.fs.invalidate_cache(path)
        found = self._call(f"listing {folder}/", _missing_ok(self.fs.find), path, detail=detail)
        return found or ({} if detail else [])

    def _cat_many(self, paths: list[str], what: str = "reading") -> dict[str, bytes]:
        """The contents of those of ``paths`` that exist (one batch of requests)."""
        if not paths:
            return {}
        found = self._call(what, self.fs.cat, list(paths), on_error="return", **self._small)
        contents = {}
        for path, value in found.items():
            if isinstance(value, FileNotFoundError):
                continue
            if isinstance(value, BaseException):
                raise self._error(what, value)
            contents[path] = value
        return contents

    def _call(self, what: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args)``, with any failure of the filesystem told in the cache's terms."""
        try:
            return fn(*args, **kwargs)
        except CacheError:
            raise
        except Exception as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: BaseException) -> UrlCacheError:
        return UrlCacheError(
            f"The cache at {self.url} failed while {what} ({_why(exc)}). {_ADVICE}"
        )

    def __repr__(self) -> str:
        return f"FsspecCacheStore({self.url!r}, local copies in {str(self.root)!r})"


def _filesystem(url: str, options: dict) -> tuple[Any, str]:
    """The fsspec filesystem and path of ``url``, or a :class:`ConfigError` that says why not."""
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"The cache {url} is a URL; caches at URLs need fsspec and the package for the "
            "URL's protocol: pip install 'assay[s3]' (or fsspec with gcsfs, adlfs, ...)."
        ) from None
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise ConfigError(
            f"The cache {url} needs a package that is not installed: {exc}. Install it in this "
            "environment (and on every worker)."
        ) from None
    except ValueError as exc:
        raise ConfigError(
            f"The cache {url} is not a URL fsspec knows ({exc}). Use a folder, or a URL such as "
            "s3://bucket/path, gcs://bucket/path or sftp://host/path."
        ) from None
    except TypeError as exc:
        raise ConfigError(f"cache_options do not suit the filesystem of {url}: {exc}") from None


def _why(exc: BaseException) -> str:
    """What went wrong with a call to the store, for a message."""
    if isinstance(exc, TimeoutError):
        return (
            f"it did not answer in time ({type(exc).__name__}): the server stalled, or a "
            "proxy or the network holds the connection without replying"
        )
    return f"{type(exc).__name__}: {exc}"


def _json(data: bytes | None) -> dict:
    """A small JSON file's content; ``{}`` if missing or cut short."""
    try:
        found = json.loads(data) if data else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _time(entry: dict) -> float:
    return float(entry.get("time") or 0)


def _missing_ok(fn: Callable) -> Callable:
    """``fn``, returning ``None`` where the path does not exist."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            return None

    return call


def _modified(info: dict) -> float:
    """When a listed file was written, from whichever field its filesystem reports."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(name)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return time.time()  # unknown: taken as new, so nothing is removed for its age


def _checked_where_it_is(meta: dict, path: Path, entry: dict) -> bool:
    """For a file outside any cache (``path_override``, file references), listed by an
    absolute path: check it where it is (raise if it does not match) and say True."""
    if not path.is_absolute():
        return False
    problem = file_problem(path, entry)
    if problem:
        raise corrupt(meta, f"{path} {problem}")
    return True
