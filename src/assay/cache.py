"""The artifact cache: one folder per stage run, written atomically, checked on load.

Layout, under the project's ``data/cache/``::

    objects/3f/3fa4...e1/          one folder per stage run (its cache key)
        model.pkl                  the files each output's cacher wrote
        model.meta.json            the output's sidecar: key, checksum, size, run, ...
        score.json
        score.meta.json
    by-name/iris/trees_10/train -> ../../../objects/3f/3fa4...e1

``by-name/EXPERIMENT/PARAMETER-SET/STAGE`` is how a person finds an artifact
(and how :func:`assay.load` does); an aggregate is filed under
``aggregate-HASH``, one per set of parameter sets it aggregates (see
:func:`link_label`). A stage run that several parameter sets or experiments
share (same key) is stored once and linked from each.

Writes are atomic: a cacher writes its files under temporary names in the
stage's folder, and the sidecar is written to a temporary name too; only then
are the old sidecar (of an entry being replaced) removed, the files renamed
into place and the sidecar renamed last. A sidecar's presence means the
artifact is complete; a run killed at any moment leaves at worst orphan
temporary files, never a file that passes for an artifact, and a write that
fails (a full disk) leaves the entry cached before as it was. (Files a stage
or a ``path_override`` writes in place are the exception: they are written
where they stay.) Loading re-checks the size and checksum of every file and
raises :class:`CorruptArtifactError` on a mismatch, so a truncated or edited
file is never loaded silently.

A cache at an fsspec URL (``s3://bucket/cache``) is a :class:`CacheStore` too:
:func:`open_cache` gives :class:`assay.caches.fsspec.FsspecCacheStore` for
it, which keeps the same layout at the URL and local copies in a folder.
Everything outside this module (the runner, ``assay cache``, ``assay.load``,
lineage, exports) goes through the methods below, never through paths.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import json
import os
import re
import shutil
import socket
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay import cache_writing
from assay.caching import metadata_default
from assay.errors import CacheError, CorruptArtifactError
from assay.hashing import file_checksum, hash_value

if TYPE_CHECKING:
    from assay.config import ProjectConfig

META_FORMAT = "assay-artifact/1"
_META_SUFFIX = ".meta.json"
_NOT_A_RECORD = "it is not a complete record"
"""What is wrong with a sidecar that cannot be read, is not JSON, or has not a record's shape."""
_RECHECKS = 3
"""How many times a look-up follows an entry another run replaces while it looks."""
_REPLACE_WAIT_S = 2.0
"""How long a load waits for the new sidecar of an entry another run is replacing."""
_WRITE = "write"
"""The sidecar's field that no other write's sidecar shares. A reader whose check of an
entry's files failed reads the sidecar again: the same one means the files are damaged,
another one that a run replaced the entry meanwhile (its old folder was removed, then the
new one renamed in). Without it, a run saving the same files again within the second
(a deterministic stage, no run id) wrote the sidecar it replaced, to the byte, and the
reader took the folder it had seen half removed for damage."""


def open_cache(config: ProjectConfig) -> CacheStore:
    """The cache a project's configuration names: a folder, or a store at an fsspec URL."""
    if config.cache_url is None:
        store = CacheStore(config.cache_dir)
    else:
        from assay.caches.fsspec import FsspecCacheStore

        store = FsspecCacheStore(config.cache_url, config.cache_dir, config.cache_options)
    store.project = str(config.root)
    return store


def recorded_cache(location: str | os.PathLike | None, config: ProjectConfig) -> str | None:
    """The cache a run recorded (``location``: its folder or URL), as it is found now: a
    recorded folder that is gone while the project has its own cache folder (the project
    was moved or copied to another folder, its cache with it) is the project's cache.
    Artifacts read from it are checked against the checksums the run recorded."""
    if not location or "://" in str(location):
        return str(location) if location else None
    folder = Path(location)
    gone = folder.is_absolute() and not folder.exists()
    if gone and config.cache_url is None and Path(config.cache_dir).is_dir():
        return config.cache_location
    return str(location)


def open_cache_at(location: str | os.PathLike | None, config: ProjectConfig) -> CacheStore:
    """The cache at ``location`` (a folder or URL, as a run recorded it), else the project's."""
    return open_cache(config.with_cache_dir(location) if location else config)


@dataclass
class StageFolder:
    """One stage run's entry in the cache, as ``assay cache`` sees it."""

    key: str
    outputs: list[str]
    """The outputs with a complete sidecar."""
    modified: float
    """When a file of it was last written (seconds since the epoch)."""
    size: int
    """Bytes of every file in it."""
    leftovers: list[tuple[str, float, int]] = field(default_factory=list)
    """Unfinished writes: ``(name, modified, size)``."""


class CacheStore:
    """The cache folder of a project (``data/cache`` unless configured)."""

    remote = False
    """Whether the entries live elsewhere and this machine keeps local copies."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.by_name = self.root / "by-name"
        self._objects = str(self.objects)
        self._by_name = str(self.by_name)
        self._reads: dict[str, dict[str, list]] = {}
        self._latest_reads: dict[str, frozenset | str] = {}
        self._varied_reads: set[str] = set()  # stages whose runs read different fields
        self._texts_written: set[str] = set()
        self._made_dirs: set[str] = set()
        self._batching = 0
        self._pending_reads: dict[str, list[str]] = {}
        self._pending_count = 0
        self.project: str | None = None
        """The project folder whose runs write through this object (:func:`open_cache`
        sets it): each sidecar written records it, so that projects sharing a cache can
        tell their entries apart (see :func:`made_elsewhere`)."""

    # -- where things are --------------------------------------------------------------

    def stage_dir(self, key: str) -> Path:
        """The folder holding every file of the stage run with cache key ``key``."""
        return self.objects / key[:2] / key

    def meta_path(self, key: str, output: str) -> str:
        """The sidecar of output ``output`` of stage run ``key``."""
        return f"{self._objects}/{key[:2]}/{key}/{output}{_META_SUFFIX}"

    def name_link(self, experiment: str, param_set: str, stage: str) -> Path:
        """The human-readable link to a stage run's folder."""
        return self.by_name / _safe(experiment) / _safe(param_set) / _safe(stage)

    def where(self, key: str, filename: str | None = None) -> str:
        """Where a stage run's folder (or one of its files) is, for people to read; a file
        its sidecar names by an absolute path (a cacher's ``path_override``) is there."""
        if filename and os.path.isabs(filename):
            return filename
        folder = f"{self._objects}/{key[:2]}/{key}"  # str(self.stage_dir(key)), faster
        return f"{folder}/{filename}" if filename else folder

    @property
    def location(self) -> str:
        """The cache as the configuration names it (its folder, or its URL)."""
        return str(self.root)

    def check_usable(self, write: bool = True) -> None:
        """Fail early, with a clear message, if the cache cannot be read (or written)."""
        self._check_layout()
        if not write:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"The cache folder {self.root} cannot be created ({exc}). Give a folder you can "
                "write to with --cache DIR or cache_dir in [tool.assay]."
            ) from exc
        for folder in (self.root, self.objects, self.by_name):
            if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
                raise CacheError(
                    f"The cache folder {folder} cannot be written to (permission denied). Give "
                    "a folder you can write to with --cache DIR (or cache_dir in assay.toml), "
                    "or run with --dry-cache to use this cache without writing to it."
                )

    def check_present(self) -> None:
        """Fail with a clear message unless there is a cache here to look at.

        For the commands that only read a cache (``assay cache ls``, ``verify``,
        ``gc``): a mistyped ``--cache`` folder must not pass for an empty, healthy
        cache (a store at a URL checks its bucket and path the same way).

        Raises:
            CacheError: the folder does not exist, or a file stands where one of
                its folders (``objects``, ``by-name``) should be.
        """
        if not self.root.exists():
            raise CacheError(
                f"There is no cache at {self.root}: the folder does not exist. Check the "
                "path given with --cache (or cache_dir in assay.toml); a run creates the "
                "cache when it first saves an artifact."
            )
        self._check_layout()

    def _check_layout(self) -> None:
        """Raise if the cache folder (or one above it), or its ``objects`` or ``by-name``,
        is not a folder."""
        blocking = _blocking(self.root)
        if os.path.lexists(blocking) and not blocking.is_dir():
            raise _in_the_way(self.root, blocking)
        for folder in (self.objects, self.by_name):
            if os.path.lexists(folder) and not folder.is_dir():
                raise _in_the_way(self.root, folder)

    # -- lookups -----------------------------------------------------------------------

    def has(self, key: str, output: str) -> bool:
        """Whether a complete entry exists (its checksum is verified on load)."""
        return os.path.exists(self.meta_path(key, output))

    def read_meta(self, key: str, output: str) -> dict | None:
        """The sidecar of an output, or ``None`` if there is no complete entry (a damaged
        sidecar, see :func:`sidecar_problem`, is none)."""
        return self._read_sidecar(key, output)[0]

    def settled_meta(self, key: str, output: str) -> dict | None:
        """:meth:`read_meta`, waiting a moment (up to two seconds) if another run is
        replacing the entry right now (``--overwrite``): a reader then gets the new
        sidecar instead of no entry."""
        return self._settled_sidecar(key, output)[0]

    def record_damage(self, key: str, output: str) -> str | None:
        """What is wrong with the sidecar of an output (see :func:`sidecar_problem`), or
        ``None`` if it is sound or there is none."""
        return self._read_sidecar(key, output)[1]

    def _read_sidecar(self, key: str, output: str) -> tuple[dict | None, str | None]:
        """``(sidecar, None)``; ``(None, None)`` if there is none; ``(None, what is
        wrong)`` if it is damaged."""
        try:
            with open(self.meta_path(key, output), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None, None
        except OSError:
            return None, _NOT_A_RECORD
        try:
            meta = json.loads(data)
        except ValueError:  # cut short, emptied
            return None, _NOT_A_RECORD
        problem = sidecar_problem(meta, key, output)
        return (None, problem) if problem else (meta, None)

    def _settled_sidecar(self, key: str, output: str) -> tuple[dict | None, str | None]:
        """:meth:`_read_sidecar`, waiting a moment if another run is replacing the entry
        right now (its new sidecar is written under a temporary name, the old one already
        removed): a reader then finds the new one instead of no entry."""
        deadline = time.monotonic() + _REPLACE_WAIT_S
        while True:
            meta, damage = self._read_sidecar(key, output)
            if meta is not None or damage is not None or time.monotonic() > deadline:
                return meta, damage
            if not self._being_replaced(key, output):
                # The replacement may have ended between the read and the look: read again.
                meta, damage = self._read_sidecar(key, output)
                if meta is not None or damage is not None or not self._being_replaced(key, output):
                    return meta, damage
            time.sleep(0.02)

    def wait_while_written(self, key: str, output: str, meta: dict) -> None:
        """After the files of sidecar ``meta`` failed their check: wait (up to two seconds)
        while ``meta`` is still the entry's sidecar and a run is renaming its files in.
        That run (one that computed the same stage run, and found no entry when it began)
        renames its sidecar in last: until then ``meta`` describes files no longer its own."""
        deadline = time.monotonic() + _REPLACE_WAIT_S
        while (
            self._being_replaced(key, output)
            and self.read_meta(key, output) == meta
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)

    def _being_replaced(self, key: str, output: str) -> bool:
        """Whether a sidecar of ``output`` is being written (under a temporary name)."""
        prefix = f".{output}{_META_SUFFIX}."
        try:
            with os.scandir(self.stage_dir(key)) as entries:
                return any(e.name.startswith(prefix) for e in entries)
        except OSError:
            return False

    def entry(self, key: str, output: str, cacher: Any = None) -> dict | None:
        """The sidecar of an output whose files are all still in place, or ``None`` if
        there is no entry (what a run looks up before it decides to reuse an output).

        Each file the sidecar lists is checked to exist with its recorded size (one
        ``stat``; the checksum is checked when the file is loaded), so an artifact
        whose file someone deleted or cut short is not reused unseen. A file that
        does not match because another run replaced the entry meanwhile is no damage:
        the new sidecar is looked at instead.

        Raises:
            CorruptArtifactError: the sidecar is damaged, or a file it lists is gone
                or has another size; the caller computes the output again.
        """
        meta, damage = self._read_sidecar(key, output)
        for attempt in range(1, _RECHECKS + 1):
            if meta is None:
                if damage is None:
                    return None
                raise unreadable_record(cacher, key, output, damage)
            problem = self._missing_file(meta, key)
            if problem is None:
                return meta
            self.wait_while_written(key, output, meta)
            fresh, damage = self._settled_sidecar(key, output)
            if fresh == meta or attempt == _RECHECKS:
                raise corrupt(meta, problem)
            meta = fresh
        return meta

    def _missing_file(self, meta: dict, key: str) -> str | None:
        """The first file of an entry that is missing or has another size, and how."""
        folder = self.where(key)  # plain strings: this runs for every reused output
        for item in meta["files"]:
            path = item["path"]
            path = path if os.path.isabs(path) else f"{folder}/{path}"
            problem = presence_problem(path, item)
            if problem:
                return f"{path} {problem}"
        return None

    def prefetch(self, entries: list[tuple[str, str]]) -> None:
        """Look up many ``(key, output)`` entries at once (a remote store batches them;
        a folder answers each look-up quickly anyway)."""

    def forget_missing(self) -> None:
        """Forget which entries :meth:`prefetch` found missing (they may appear now)."""

    def remember(self, meta: dict) -> None:
        """A sidecar another process just wrote (a worker's): spares a remote store a read."""

    def forget(self) -> None:
        """Drop what this object remembers of the entries (a worker, between tasks)."""

    def outputs_of(self, key: str) -> list[str]:
        """The outputs of stage run ``key`` that have a complete entry."""
        try:
            names = os.listdir(self.stage_dir(key))
        except OSError:
            return []
        return sorted(_outputs(names))

    def stage_folders(self) -> list[StageFolder]:
        """Every stage run's entry, complete or not (for ``assay cache``)."""
        found = []
        for shard in _scan(self._objects):
            for folder in _scan(shard.path):
                if not _in_its_shard(folder, shard.name):
                    continue  # a file put there by hand: no stage run, left alone
                entries = list(_scan(folder.path))
                times = [_mtime(e) for e in entries] or [_mtime(folder)]
                leftovers = [(e.name, _mtime(e), _bytes(e)) for e in entries if e.name[0] == "."]
                size = sum(_bytes(e) for e in entries)
                outputs = sorted(_outputs(e.name for e in entries))
                found.append(StageFolder(folder.name, outputs, max(times), size, leftovers))
        return found

    def bookkeeping_size(self) -> int:
        """The bytes of what the cache keeps beside its stage runs: code texts
        (``code/``), read indexes (``reads/``), ``by-name`` links, write markers."""
        total = 0
        for entry in _scan(str(self.root)):
            if entry.name == "objects":
                continue
            if not entry.is_dir(follow_symlinks=False):
                total += _bytes(entry)
                continue
            for folder, folders, names in os.walk(entry.path):
                links = [n for n in folders if os.path.islink(os.path.join(folder, n))]
                for name in names + links:  # (by-name links to stage folders count too)
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(folder, name)).st_size
        return total

    def linked_key(self, experiment: str, param_set: str, stage: str) -> str | None:
        """The stage run ``by-name/experiment/param_set/stage`` points to, if any."""
        return _pointed_key(self.name_link(experiment, param_set, stage))

    def named(
        self, experiment: str | None, param_set: str | None, stage: str | None
    ) -> list[tuple[str, str, str, str]]:
        """``(experiment, parameter set, stage, key)`` of every link matching the names
        given (``None`` matches any; ``"aggregate"`` matches every aggregate's folder,
        see :func:`link_label`)."""
        if not self.by_name.is_dir():
            return []
        links = set()
        for folder in _param_set_globs(param_set):
            pattern = "/".join((_glob(experiment), folder, _glob(stage)))
            links.update(self.by_name.glob(pattern))
        found = []
        for link in sorted(links):
            key = None if link.name.startswith(".") else _pointed_key(link)
            if key is not None:
                found.append((link.parent.parent.name, link.parent.name, link.name, key))
        return found

    def linked_keys(self, experiment: str | None = None) -> set[str]:
        """Every stage run some ``by-name`` link points to (under ``experiment`` only, if given)."""
        return {key for *_, key in self.named(experiment, None, None)}

    def remove_stage(self, key: str) -> None:
        """Delete a stage run's whole entry."""
        try:
            shutil.rmtree(self.stage_dir(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _not_removed(self.stage_dir(key), exc) from exc

    def remove_leftover(self, key: str, name: str) -> None:
        """Delete an unfinished write in a stage run's folder."""
        _remove(self.stage_dir(key) / name)

    def prune_links(self, gone: set[str]) -> None:
        """Remove the ``by-name`` links to the stage runs ``gone``, and folders left empty."""
        if not self.by_name.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.by_name, topdown=False):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                if path.is_symlink() or path.is_file():
                    key = _pointed_key(path)
                    if key is not None and key in gone:
                        path.unlink()
            if dirpath != str(self.by_name) and not os.listdir(dirpath):
                os.rmdir(dirpath)

    def clear_after(self, stopped: Iterable[int]) -> None:
        """Remove what worker processes ``stopped`` mid-save left in this cache: the files
        they were writing under temporary names (which a save that unwound removed itself)
        and their markers. The stage runs they list are found from the markers."""
        if self.remote:
            return
        for pid in stopped:
            for marker, keys in cache_writing.left_by(str(self.root), pid):
                for key in keys:
                    with contextlib.suppress(OSError):
                        for entry in os.scandir(self.stage_dir(key)):
                            if f".tmp-{pid}-" in entry.name:
                                _remove(entry.path)
                with contextlib.suppress(OSError):
                    os.unlink(marker)

    def fetch_stage(self, key: str) -> Path:
        """A local folder holding every file of stage run ``key`` (to copy it)."""
        return self.stage_dir(key)

    def localize(self, key: str, output: str) -> None:
        """Make an output's files readable at :meth:`stage_dir` (a remote store downloads
        and checks them), for code that opens them itself (a cacher's ``check()``)."""

    def ensure_dir(self, path: Path) -> Path:
        """Create ``path`` (and parents) once per process."""
        self._ensure(str(path))
        return path

    def _ensure(self, folder: str, again: bool = False) -> None:
        """Create ``folder`` once per process (``again``: it was there, but is gone)."""
        if again or folder not in self._made_dirs:
            try:
                os.makedirs(folder, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise _in_the_way(self.root, _blocking(Path(folder))) from exc
            self._made_dirs.add(folder)

    # -- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def saving(self, key: str) -> Iterator[None]:
        """Hold stage run ``key`` for this process while it saves the stage run's outputs.

        Two workers of a ``--parallel`` run (or two runs) may make the same stage run:
        two parameter sets that differ only in fields a stage does not read share its
        key, which a first run learns only once the stage has run. Each saved the entry
        while the other did, so that one's files could end up beside the other's
        sidecar, and a folder output of one was removed under the other. A process
        saving an entry another is saving waits here until that one is done (then finds
        its entry, see :meth:`assay.runner.Runner._saved_meanwhile`; at a URL, the
        workers of other machines do not wait, but one that saves after another finds
        its entry too). The wait ends with Ctrl-C or SIGTERM like any other; a process
        that dies lets go at once.

        Held with an operating-system lock on one of 256 files in ``locks/`` (by the
        key's first two characters): where the cache's filesystem offers no locks, or
        the file cannot be made (a read-only cache, a full disk), the save goes on
        without one and says what is wrong itself.
        """
        path = f"{self.root}/{LOCKS}/{key[:2]}"
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            try:
                self._ensure(f"{self.root}/{LOCKS}", again=True)
                handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except (OSError, CacheError):
                handle = None
        except OSError:
            handle = None
        try:
            if handle is not None:
                _lock_file(handle)
            yield
        finally:
            if handle is not None:
                os.close(handle)  # lets the lock go

    def save(
        self, cacher: Any, obj: Any, *, key: str, output: str, meta: dict, replace: bool = True
    ) -> dict:
        """Save ``obj`` with ``cacher`` as output ``output`` of stage run ``key``.

        ``meta`` holds the provenance to record (stage, parameter set, run,
        upstream keys, ...); the store adds files, sizes, checksums and the
        cacher. Returns the complete sidecar. Any failure of the cacher is
        raised as :class:`CacheError` with the artifact named, and leaves no
        entry behind. ``replace=False`` promises there is no entry yet (saves a
        system call per artifact on the hot path).

        Until :meth:`link` files the stage run under its name, a marker says that a run
        is writing it, so that ``assay cache gc`` leaves it alone (see
        :meth:`_mark_writing`). A save stopped by Ctrl-C or SIGTERM removes what it
        wrote under temporary names.
        """
        final = self._writable_dir(self.stage_dir(key))
        self._mark_writing(key)
        in_place = getattr(cacher, "writes_in_place", False) or cacher.path_override is not None
        tag = None if in_place else f".tmp-{_unique()}-"  # no dot: splitext keeps it
        cacher._dir = final
        cacher._tmp_tag = tag
        cacher.cache_paths = []
        cacher._checksums = {}
        # What the sidecar will say, for a cacher whose save() reads it (as Curifactory's can)
        cacher.metadata = CacherMetadata(
            key=key,
            output=output,
            **meta,
            cacher={"class": f"{type(cacher).__module__}.{type(cacher).__qualname__}"},
            extra=cacher.extra_metadata,
            created=_now(),
        )
        # The entry cached before (--overwrite) stays whole until the new one is written
        # in full: a cacher failing halfway, or a full disk, loses nothing already cached.
        try:
            try:
                cacher.save(obj)
            except FileNotFoundError:
                if os.path.isdir(final):
                    raise
                # This process made the folder, and it was removed since (`assay cache gc`
                # from another terminal, after its name was pointed elsewhere): again.
                self._ensure(str(final), again=True)
                cacher.cache_paths, cacher._checksums = [], {}
                cacher.save(obj)
            moves = self._written_files(cacher, final, tag)
            files = self._describe_files(cacher, moves, final)
        except Exception as exc:
            _drop_written(final, tag)
            raise CacheError(
                f"Could not save output {output!r} of stage {meta.get('stage')!r} "
                f"(parameter set {meta.get('param_set')!r}) with {type(cacher).__name__}: "
                f"{type(exc).__name__}: {_with_advice(exc)}"
            ) from exc
        except BaseException:  # Ctrl-C, SIGTERM: no half-written file is left behind
            _drop_written(final, tag)
            raise
        finally:
            cacher._tmp_tag = None
            cacher.cache_paths = []
        sidecar = {
            "format": META_FORMAT,
            "key": key,
            "output": output,
            "type": type_name(obj),
            **meta,
            **self._maker(),
            "cacher": cacher.identity(),
            "files": files,
            "size": sum(f["size"] for f in files),
            "extra": cacher.extra_metadata,
            "created": _now(),
            _WRITE: _unique(),
        }
        temporary = f"{final}/.{output}{_META_SUFFIX}.{sidecar[_WRITE]}"
        try:
            with open(temporary, "wb", buffering=0) as handle:
                handle.write(json.dumps(sidecar, default=metadata_default).encode())
        except OSError as exc:  # a full disk, a quota: the sidecar did not fit
            _drop_written(final, tag)
            raise self._not_recorded(temporary, output, meta, exc, _KEPT) from exc
        except BaseException:
            _drop_written(final, tag)
            _remove(temporary)
            raise
        # Only renames from here on: the old sidecar goes first, so that no moment has it
        # describe the new files.
        try:
            if replace:
                self.discard(key, output, keep_files=True)
            for written, target in moves:
                if written != target:
                    _replace(written, target)
            os.replace(temporary, self.meta_path(key, output))
        except OSError as exc:
            _drop_written(final, tag)
            raise self._not_recorded(temporary, output, meta, exc) from exc
        except BaseException:
            _drop_written(final, tag)
            _remove(temporary)
            raise
        cacher.metadata = CacherMetadata(sidecar)
        return sidecar

    def _maker(self) -> dict:
        """What a sidecar records of the project and machine that wrote it."""
        if self.project is None:
            return {}
        return {"project": {"root": self.project, "host": _host()}}

    def _mark_writing(self, key: str, lasting: bool = False) -> None:
        """Note that this process is writing stage run ``key`` until :meth:`link` files
        it under its name (see :mod:`assay.cache_writing`).

        ``assay cache gc`` removes stage folders no link points to; between a stage's
        first saved output and its link, a run's folder is one. gc leaves alone the
        stage runs that a marker written to in the last hour lists
        (:meth:`keys_being_written`); with ``lasting`` (a stage writing into its folder
        itself) for as long as the stage runs.
        """
        if self.remote:
            return  # the folder here holds local copies: gc looks at the URL
        with contextlib.suppress(OSError):  # a full disk: the save itself says so
            cache_writing.mark(str(self.root), key, lasting)

    def made_for_the_run(self, key: str) -> None:
        """A worker made stage run ``key`` for the run of this process: list it in this
        process's marker until the run ends (see :func:`assay.cache_writing.held_for_the_run`)."""
        if not self.remote and cache_writing.holding():
            with contextlib.suppress(OSError):
                cache_writing.mark(str(self.root), key)

    def done_writing(self, key: str) -> None:
        """This process is done writing stage run ``key``: it is linked now, or failed
        (what it left is gc's once an hour old)."""
        if not self.remote:
            cache_writing.unmark(str(self.root), key)

    def keys_being_written(self, max_age_s: float, remove_older: bool = False) -> set[str]:
        """The stage runs that runs are writing: those listed by a marker written to in
        the last ``max_age_s`` seconds. ``remove_older``: remove the older markers (their
        runs stopped)."""
        return cache_writing.keys_being_written(str(self.root), max_age_s, remove_older)

    def _writable_dir(self, folder: Path) -> Path:
        """:meth:`ensure_dir`, with a clear message if the disk is full."""
        try:
            return self.ensure_dir(folder)
        except OSError as exc:
            if not _is_full_disk(exc):
                raise
            raise self._full_disk(folder, exc) from exc

    def _full_disk(self, path: str | Path, exc: OSError, done: str = "") -> CacheError:
        """The error for a write to the cache that failed because its disk is full."""
        return CacheError(
            f"Could not write {path} in the cache {self.location}: {exc.strerror or exc}. "
            f"{done + ' ' if done else ''}Free some space (assay cache gc) or use another "
            "cache (--cache DIR), then run the same command again."
        )

    def _not_recorded(
        self, temporary: str, output: str, meta: dict, exc: OSError, kept: str = ""
    ) -> CacheError:
        """The error for a sidecar that could not be written (its temporary file removed)."""
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return CacheError(
            f"Could not record output {output!r} of stage {meta.get('stage')!r} "
            f"(parameter set {meta.get('param_set')!r}) in the cache {self.root}: {exc}. "
            f"{kept + ' ' if kept else ''}Free some space (assay cache gc) or use another "
            "cache (--cache DIR), then run the same command again."
        )

    def saved_now(self, key: str, outputs: Iterable[str]) -> dict[str, dict]:
        """The sidecars of ``outputs`` of stage run ``key`` that are in the cache now, by
        output, up to the first that is not (usually the first is not: one look-up).

        Asked just before a process saves a stage run it computed, with the entry held
        (:meth:`saving`): another process may have saved the same stage run meanwhile.
        """
        found = {}
        for output in outputs:
            meta = self.read_meta(key, output)
            if meta is None:
                break
            found[output] = meta
        return found

    def claim_file(self, scope: str, path: str, owner: list) -> list:
        """Claim ``path``, a file outside the cache that a cacher's ``path_override``
        names, for ``owner`` (``[key, output, stage, parameter set]``) within ``scope``
        (a run): the first claim of the file in the scope, ``owner`` itself or the owner
        another process claimed it for.

        Worker processes (``--parallel``, Dask) learn a stage run's key only once it has
        run, so only they can tell that two stage runs would write one file: the claim is
        one file in ``claims/SCOPE/`` named after the path, made with ``O_EXCL``, so that
        of two processes claiming at once exactly one makes it. Where claims cannot be
        made (a read-only cache), ``owner`` is returned: the save says what is wrong.
        """
        folder = f"{self.root}/{CLAIMS}/{_safe(scope)}"
        claim = f"{folder}/{hash_value(path)}"
        data = json.dumps({"path": path, "owner": owner}).encode()
        for attempt in (1, 2):
            try:
                handle = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return _claim_in(claim) or owner
            except FileNotFoundError:
                if attempt == 2:
                    return owner
                with contextlib.suppress(OSError):
                    os.makedirs(folder, exist_ok=True)
                continue
            except OSError:
                return owner
            try:
                os.write(handle, data)
            except OSError:
                pass
            finally:
                os.close(handle)
            return owner
        return owner

    def drop_claims(self, scope: str) -> None:
        """Remove the claims of ``scope`` (a run that ended, see :meth:`claim_file`), and
        those of runs stopped without removing theirs a day ago or more."""
        folder = f"{self.root}/{CLAIMS}"
        shutil.rmtree(f"{folder}/{_safe(scope)}", ignore_errors=True)
        for entry in _scan(folder):
            if time.time() - _mtime(entry) > _CLAIMS_KEPT_S:
                shutil.rmtree(entry.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # if it holds nothing else

    def prepare_in_place(self, key: str) -> Path:
        """Before a stage writes files straight into its folder: the folder, made (and
        marked as being written until :meth:`done_writing`, see :meth:`_mark_writing`).

        An entry cached before keeps its sidecar until :meth:`save` records the new
        one: if the stage fails before it wrote anything, nothing is lost, and a file
        it changed no longer matches its checksum, so it is never loaded as the old one.
        """
        folder = self._writable_dir(self.stage_dir(key))
        self._mark_writing(key, lasting=True)
        return folder

    def discard(self, key: str, output: str, keep_files: bool = False) -> None:
        """Remove an output's entry (its sidecar, and unless ``keep_files`` its files).

        Only files inside the stage run's own folder are removed: a damaged sidecar
        (one naming ``../`` paths, or another entry's) loses its sidecar alone, and a
        file written in place outside the cache (``path_override``) is left where it is.
        """
        meta = None if keep_files else self.read_meta(key, output)
        try:
            os.unlink(self.meta_path(key, output))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _not_removed(Path(self.meta_path(key, output)), exc) from exc
        folder = self.stage_dir(key)
        for entry in (meta or {}).get("files", []):
            target = _inside(folder, entry["path"])
            if target is not None:
                _remove(target)

    def link(self, experiment: str, param_set: str, stage: str, key: str) -> None:
        """Point ``by-name/experiment/param_set/stage`` at stage run ``key``."""
        folder = f"{self._by_name}/{_safe(experiment)}/{_safe(param_set)}"
        link = f"{folder}/{_safe(stage)}"
        if param_set.startswith(f"{AGGREGATE}-"):
            self._retire_plain_aggregate_link(experiment, stage)
        try:
            self._link(folder, link, link_target(key))
        except OSError as exc:
            if not _is_full_disk(exc):
                raise
            raise self._full_disk(
                link,
                exc,
                f"The stage run is cached (in {self.where(key)}), not yet filed under its name.",
            ) from exc
        self.done_writing(key)

    def _link(self, folder: str, link: str, target: str) -> None:
        """Make ``link`` point to ``target`` (a symlink, else a text pointer)."""
        self._ensure(folder)
        try:
            if os.readlink(link) == target:
                return
        except FileNotFoundError:
            try:
                os.symlink(target, link)
                return
            except FileNotFoundError:  # removed since (assay cache gc): make it again
                self._ensure(folder, again=True)
                os.symlink(target, link)
                return
            except OSError as exc:
                if _is_full_disk(exc):
                    raise
        except OSError:
            pass
        temporary = f"{folder}/.{os.path.basename(link)}.{uuid.uuid4().hex[:8]}"
        try:
            os.symlink(target, temporary)
            os.replace(temporary, link)
        except OSError as exc:
            _remove(Path(temporary))
            if _is_full_disk(exc):
                raise
            # No symlinks here (some Windows and network filesystems): a text pointer.
            _remove(Path(link))
            Path(link).write_text(target)

    def _retire_plain_aggregate_link(self, experiment: str, stage: str) -> None:
        """Move ``by-name/experiment/aggregate/stage``, where assay 0.1 filed every
        aggregate, to the aggregate's own folder (from its sidecar: the names of the
        records it aggregated): left there, it would make ``assay.load(...,
        param_set="aggregate")`` ask which one for ever."""
        folder = f"{self._by_name}/{_safe(experiment)}/{AGGREGATE}"
        old = Path(folder) / _safe(stage)
        if not (old.is_symlink() or old.is_file()):
            return
        key = _pointed_key(old)
        _remove(old)
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # if it holds nothing else
        metas = (self.read_meta(key, output) for output in self.outputs_of(key)) if key else ()
        label = next(filter(None, map(aggregate_label_of, filter(None, metas))), None)
        if label is not None and self.linked_key(experiment, label, stage) is None:
            self.link(experiment, label, stage, key)

    def link_many(self, links: Iterable[tuple[str, str, str, str]]) -> None:
        """:meth:`link` for many ``(experiment, param_set, stage, key)`` at once."""
        for experiment, param_set, stage, key in links:
            self.link(experiment, param_set, stage, key)

    # -- what stages read, and their code ------------------------------------------------

    def known_reads(self, stage: str, base: str) -> list:
        """The parameter-field sets stage runs with key base ``base`` read, newest first.

        The read index is one append-only file per stage name
        (``reads/STAGE.jsonl``), loaded once per process.
        """
        index = self._reads.get(stage)
        if index is None:
            index = self._reads[stage] = {}
            for entry in self._read_entries(stage):
                found = index.setdefault(entry["base"], [])
                reads = _reads_value(entry["reads"])
                if stage in self._latest_reads and self._latest_reads[stage] != reads:
                    self._varied_reads.add(stage)
                self._latest_reads[stage] = reads
                if reads in found:
                    found.remove(reads)
                found.insert(0, reads)
        return index.get(base, [])

    def read_entries(self, stage: str) -> list[tuple[str, frozenset | str]]:
        """The read index of a stage, oldest entry first: ``(base, reads)``."""
        self.flush_reads()
        return [(e["base"], _reads_value(e["reads"])) for e in self._read_entries(stage)]

    def _read_entries(self, stage: str) -> Iterable[dict]:
        try:
            with open(self._reads_file(stage), "rb") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:  # a line cut short by a crash
                        continue
                    if _is_read_entry(entry):
                        yield entry  # (anything else is damage: skipped, never fatal)
        except FileNotFoundError:
            return

    def add_reads(self, stage: str, base: str, reads: frozenset | str) -> None:
        """Remember that a stage run with key base ``base`` read ``reads``.

        Inside :meth:`reads_batched` the line waits in memory until the batch
        ends, :meth:`flush_reads` is called or many lines wait; outside, it is
        written at once.
        """
        self.known_reads(stage, base)  # loads the index
        known = self._reads[stage].setdefault(base, [])
        if known and known[0] == reads:
            return
        if reads in known:
            known.remove(reads)
        known.insert(0, reads)
        if self._latest_reads.get(stage, reads) != reads:
            self._varied_reads.add(stage)
        self._latest_reads[stage] = reads
        line = f'{{"base": {json.dumps(base)}, "reads": {_reads_text(reads)}}}\n'
        self._pending_reads.setdefault(stage, []).append(line)
        self._pending_count += 1
        if not self._batching or self._pending_count >= _READS_BATCH:
            self.flush_reads()

    @contextlib.contextmanager
    def reads_batched(self) -> Iterator[None]:
        """Write the read index once at the end of a run rather than once per stage run.

        A run of 10,000 parameter sets appends tens of thousands of lines; one
        system call per stage file instead of three per line saves a fifth of
        such a run. Lines are written when the block ends, however it ends.
        """
        self._batching += 1
        failed = True
        try:
            yield
            failed = False
        finally:
            self._batching -= 1
            if not self._batching:
                try:
                    self.flush_reads()
                except (OSError, CacheError):  # a folder of the cache in the way, a disk
                    if not failed:
                        raise  # else the run's own failure is the one to report

    def flush_reads(self) -> None:
        """Append the waiting lines of the read index to its files."""
        pending, self._pending_reads, self._pending_count = self._pending_reads, {}, 0
        for stage, lines in pending.items():
            path = self._reads_file(stage)
            data = "".join(lines).encode()
            try:
                self.ensure_dir(Path(path).parent)
                # One write with O_APPEND: concurrent runs append whole lines.
                descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    while data:
                        data = data[os.write(descriptor, data) :]
                finally:
                    os.close(descriptor)
            except OSError as exc:
                if not _is_full_disk(exc):
                    raise
                raise self._full_disk(path, exc, _BOOKKEEPING) from exc

    def latest_reads(self, stage: str) -> frozenset | str | None:
        """The read set recorded last for a stage, whatever its base: a good guess
        for a stage whose code or inputs just changed."""
        self.known_reads(stage, "")
        return self._latest_reads.get(stage)

    def reads_vary(self, stage: str) -> bool:
        """Whether runs of a stage read different parameter fields (per set, or since an
        edit), as the read index tells."""
        self.known_reads(stage, "")
        return stage in self._varied_reads

    def _reads_file(self, stage: str) -> str:
        return f"{self.root}/reads/{_safe(stage)}.jsonl"

    def store_texts(self, parts: dict[str, dict]) -> None:
        """Keep the source of each code part by digest, for ``assay why`` to diff later."""
        texts = {}
        for part in parts.values():
            text = part.get("source") or part.get("value") or part.get("version")
            digest = part["digest"]
            if text and digest not in self._texts_written:
                self._texts_written.add(digest)
                texts[digest] = text
        if texts:
            self.put_code_texts(texts)

    def put_code_texts(self, texts: dict[str, str]) -> None:
        """Keep code texts by digest (those already kept are left alone)."""
        for digest, text in texts.items():
            path = Path(f"{self.root}/code/{digest[:2]}/{digest}.txt")
            if path.exists():
                continue
            temporary = path.with_name(f".{path.name}.{_unique()}")
            try:
                self.ensure_dir(path.parent)
                temporary.write_text(text)
                os.replace(temporary, path)
            except BaseException as exc:
                _remove(temporary)
                if isinstance(exc, OSError) and _is_full_disk(exc):
                    raise self._full_disk(path, exc, _BOOKKEEPING) from exc
                raise

    def code_text(self, digest: str) -> str | None:
        """The source kept for a code part's digest, if any."""
        try:
            return Path(f"{self.root}/code/{digest[:2]}/{digest}.txt").read_text()
        except OSError:
            return None

    # -- reading -----------------------------------------------------------------------

    def load(self, cacher: Any, key: str, output: str) -> Any:
        """Verify and load an output with ``cacher``.

        Raises:
            CorruptArtifactError: a file is missing, or its size or checksum
                differs from the sidecar; nothing was unpickled.
            CacheError: there is no entry, or the cacher failed to read it.
        """
        meta, damage = self._settled_sidecar(key, output)
        for attempt in range(1, _RECHECKS + 1):
            if meta is None:
                break
            try:
                return self._load_checked(cacher, meta)
            except CorruptArtifactError:
                # Another run replacing the entry meanwhile is no damage: load the new one.
                self.wait_while_written(key, output, meta)
                fresh, damage = self._settled_sidecar(key, output)
                if fresh == meta or attempt == _RECHECKS:
                    raise
                meta = fresh
        raise unreadable_record(cacher, key, output, damage)

    def _load_checked(self, cacher: Any, meta: dict) -> Any:
        """Load the entry ``meta`` describes, checking its files against it."""
        hashes_while_loading = getattr(cacher, "_hashes_while_loading", None)
        if hashes_while_loading is not None and hashes_while_loading():
            return self._load_in_one_pass(cacher, meta)
        self.verify(meta)
        return self._load_verified(cacher, meta)

    def _load_in_one_pass(self, cacher: Any, meta: dict) -> Any:
        """Load with a cacher that hashes what it reads and runs no code from it.

        Each file is read once instead of twice (to check it, then to load it): sizes
        are checked first, checksums once the cacher has read and hashed the files, and
        the value is handed out only when every file matched its record. A file the
        cacher did not hash is checked the usual way; a load that failed on a damaged
        file raises :class:`CorruptArtifactError`, as a check before it would have.
        """
        files = self._files(meta)
        for path, entry in files:
            problem = size_problem(path, entry)
            if problem:
                raise corrupt(meta, f"{path} {problem}")
        cacher._checksums = {}
        try:
            value = self._load_verified(cacher, meta)
        except CacheError:
            self.verify(meta)
            raise
        for path, entry in files:
            hashed = cacher._checksums.get(os.path.abspath(path))
            if hashed is None:
                problem = file_problem(path, entry)
            elif hashed != (entry["size"], entry["checksum"]):
                problem = _MODIFIED
            else:
                problem = None
            if problem:
                raise corrupt(meta, f"{path} {problem}")
        return value

    def _load_verified(self, cacher: Any, meta: dict) -> Any:
        """Load an entry whose files were just checked against ``meta``."""
        key, output = meta["key"], meta["output"]
        cacher._dir = self.stage_dir(key)
        cacher.metadata = CacherMetadata(meta)
        cacher.extra_metadata = meta.get("extra", {})
        try:
            return cacher.load()
        except Exception as exc:
            raise CacheError(
                f"{type(cacher).__name__} could not load artifact {output!r} of stage "
                f"{meta.get('stage')!r} from {self.stage_dir(key)}: {type(exc).__name__}: {exc}. "
                "Its files match their checksums, so the cacher's load() cannot read what "
                "its save() wrote here (or needs a package this environment lacks). Fix "
                "that, or compute the artifact again: assay run ... --overwrite-stage "
                f"{meta.get('stage')}"
            ) from exc

    def verify(self, meta: dict) -> None:
        """Check every file of an entry against its recorded size and checksum."""
        for path, entry in self._files(meta):
            problem = file_problem(path, entry)
            if problem:
                raise corrupt(meta, f"{path} {problem}")

    def _files(self, meta: dict) -> list[tuple[Path, dict]]:
        """Each file of an entry (its path here) with its record in the sidecar."""
        folder = self.stage_dir(meta["key"])
        files = []
        for entry in meta["files"]:
            path = Path(entry["path"])
            files.append((path if path.is_absolute() else folder / path, entry))
        return files

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _written_files(cacher: Any, final: Path, tag: str | None) -> list[tuple[str, str]]:
        """What the cacher wrote: ``(where it is now, where it goes)`` for each file.

        Every file a cacher writes comes from ``get_path``: inside the stage
        folder under a temporary name (renamed into place once the entry is
        recorded), or outside it for a ``path_override`` (written in place).
        """
        if tag is None:
            return [(path, path) for path in cacher.cache_paths]
        prefix = f"{final}{os.sep}"
        tops: dict[str, None] = {}
        moves: list[tuple[str, str]] = []
        for path in cacher.cache_paths:
            if path.startswith(prefix):
                first = path[len(prefix) :].split(os.sep, 1)[0]
                if first.startswith(tag):
                    tops[first] = None
            else:
                moves.append((path, path))
        if type(cacher).__module__ != __package__ + ".caching":
            # A project's cacher may name a second file after get_path()'s name
            # (`os.path.splitext(self.get_path())[0] + "_labels.json"`), or its writer may
            # add an extension (np.save): anything under this save's temporary name is its.
            with os.scandir(final) as entries:
                tops.update((e.name, None) for e in entries if e.name.startswith(tag))
        for first in tops:
            source = f"{prefix}{first}"
            if os.path.lexists(source):
                moves.append((source, f"{prefix}{first[len(tag) :]}"))
        return moves

    def _describe_files(self, cacher: Any, moves: list[tuple[str, str]], final: Path) -> list[dict]:
        """The sidecar's record of each file written (named where it goes)."""
        referenced = cacher.extra_metadata.get("referenced_files", [])
        moves = moves + [(path, path) for path in referenced]
        known = cacher._checksums
        files, seen = [], set()
        prefix = f"{final}{os.sep}"
        for written, path in moves:
            text = os.path.abspath(path)
            if text in seen:
                continue
            seen.add(text)
            name = text[len(prefix) :].replace(os.sep, "/") if text.startswith(prefix) else text
            written = os.path.abspath(written)
            if written in known:  # the cacher hashed the bytes as it wrote them
                size, checksum = known[written]
            else:
                try:
                    status = os.stat(written)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(status.st_mode):
                    size, checksum = _size(Path(written)), _checksum(Path(written))
                else:
                    size, checksum = status.st_size, file_checksum(written)
            files.append({"path": name, "size": size, "checksum": checksum})
        if not files:
            raise CacheError(f"{type(cacher).__name__}.save() wrote no file at {cacher.get_path()}")
        return files


_READS_BATCH = 4096
"""Lines of the read index a batch holds in memory at most before writing them."""
_MODIFIED = "does not match its recorded checksum (it was modified)"


class CacherMetadata(dict):
    """A sidecar's content as a cacher's ``self.metadata`` sees it, in ``save()`` (what
    the sidecar will say) and in ``load()``. The names Curifactory's cachers find there
    are answered too (``params_name``, ``record_name``, ``artifact_name``,
    ``cacher_type``, ``artifact_generated``, ``manager_run_info``), without being written
    into the sidecar."""

    def __missing__(self, name: str) -> Any:
        param_set = dict.get(self, "param_set")
        if name == "params_name":
            return param_set if dict.get(self, "params_class") else None
        if name == "record_name":
            return param_set
        if name == "artifact_name":
            return dict.get(self, "output")
        if name == "cacher_type":  # as str(type(cacher)) gives it
            return f"<class '{(dict.get(self, 'cacher') or {}).get('class')}'>"
        if name == "artifact_generated":
            return dict.get(self, "created")
        if name == "manager_run_info":
            return {
                "experiment_name": dict.get(self, "experiment"),
                "run_number": dict.get(self, "run_number"),
                "reference": dict.get(self, "run_id"),
            }
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


def file_problem(path: Path, entry: dict) -> str | None:
    """What is wrong with a cached file against its sidecar's entry, or ``None``."""
    try:
        problem = size_problem(path, entry)
        if problem is None and _checksum(path) != entry["checksum"]:
            return _MODIFIED
    except FileNotFoundError:  # (part of) it went while it was checked: an entry replaced
        return "is missing"
    return problem


def presence_problem(path: str, entry: dict) -> str | None:
    """Whether a cached file is missing or has another size than its sidecar records;
    a folder is only checked to exist (its size would mean walking it)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return "is missing"
    except OSError:
        return None  # unreadable here: the check at load time says why
    if stat.S_ISDIR(status.st_mode) or status.st_size == entry.get("size"):
        return None
    return f"has {status.st_size} bytes instead of {entry.get('size')}"


def size_problem(path: Path, entry: dict) -> str | None:
    """Whether a cached file is missing or has another size than its sidecar records."""
    if not path.exists():
        return "is missing"
    size = _size(path)
    if size != entry["size"]:
        return f"has {size} bytes instead of {entry['size']}"
    return None


def _not_removed(path: Path, exc: OSError) -> CacheError:
    return CacheError(
        f"Could not remove {path}: {exc.strerror or exc}. Nothing else was removed after it; "
        "make the cache folder writable (or run as its owner) and try again."
    )


_KEPT = "What the cache held for it before (if anything) is kept."


def _full_disk_advice(exc: BaseException) -> str:
    """What to do when a write failed because the disk (or a quota) is full, else ``""``."""
    if isinstance(exc, OSError) and _is_full_disk(exc):
        return (
            f". {_KEPT} Free some space (assay cache gc) or use another cache (--cache DIR), "
            "then run the same command again."
        )
    return ""


def _with_advice(exc: BaseException) -> str:
    """The text of a cacher's failure, followed by what to do about it (if assay knows),
    as one sentence after the other."""
    text = str(exc)
    advice = _full_disk_advice(exc) or _cacher_advice(exc)
    if advice and text.endswith("."):
        advice = advice[1:]  # the failure's own full stop ends it
    return f"{text}{advice}"


_PICKLE_REFUSALS = ("can't pickle", "cannot pickle", "could not pickle", "not picklable")
"""How pickle (and libraries built on it) say that an object cannot be pickled."""


def _cacher_advice(exc: BaseException) -> str:
    """What to do when a cacher could not store the value it was given, else ``""``."""
    text = str(exc)
    if "JSON serializable" in text:
        return (
            ". JSON holds dicts, lists, strings, numbers, booleans and None: convert the "
            "value to those, or give this output a cacher that takes any object (PickleCacher)."
        )
    if "keys must be str" in text:  # json.dumps of a dict keyed by tuples, objects, ...
        return (
            ". JSON keys are text (numbers and booleans are written as text): key the dict "
            "by strings, or give this output a cacher that takes any object (PickleCacher)."
        )
    # Not any mention of pickle: a cacher's own refusal may advise PickleCacher.
    refused = any(words in text.lower() for words in _PICKLE_REFUSALS)
    if refused or type(exc).__name__ == "PicklingError":
        return (
            ". pickle cannot store it (a lambda or a function defined inside another, an open "
            "file, a lock, a connection): return the data rather than such objects, or give "
            "this output no cacher (None) to keep it for this run only."
        )
    return ""


def _drop_written(final: Path, tag: str | None) -> None:
    """Remove what a failed save wrote under its temporary names in ``final`` (if the
    folder is still there: the error that stopped the save is the one to report)."""
    if tag is None:
        return
    try:
        entries = list(os.scandir(final))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(tag):
            _remove(Path(entry.path))


def _is_full_disk(exc: OSError) -> bool:
    """Whether a write failed because the disk (or a quota) is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


_BOOKKEEPING = (
    "The stage's artifacts were saved, but the cache's index of them is not complete: a "
    "later run may compute some of them again."
)


def _in_the_way(root: Path, path: Path) -> CacheError:
    """The error for a file (or broken link) standing where the cache keeps a folder."""
    if path == root or path in root.parents:  # the setting names a file: not the cache's
        return CacheError(
            f"The cache folder {root} cannot be used: {path} is a file, not a folder. "
            "It is left as it is: choose another folder for the cache "
            f"({_cache_setting(root)})."
        )
    return CacheError(
        f"The cache folder {root} is damaged: {path} is a file, not a folder, and stands "
        "where assay keeps a folder of the cache. Remove or move it, then run the same "
        "command again."
    )


def _cache_setting(root: Path) -> str:
    """Where the cache folder ``root`` was set, as far as can be told, and how to change it."""
    variable = os.environ.get("ASSAY_CACHE_DIR")
    if variable and (root == Path(variable) or root.as_posix().endswith(f"/{variable}")):
        return f"it comes from the environment variable ASSAY_CACHE_DIR={variable}"
    return (
        "give it with --cache DIR, or set cache_dir in assay.toml (or [tool.assay] in "
        "pyproject.toml), or the environment variable ASSAY_CACHE_DIR"
    )


def _blocking(folder: Path) -> Path:
    """The nearest of ``folder`` and its parents that exists and is not a folder (what
    stops it being created); ``folder`` itself if none is found."""
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            return folder if path.is_dir() else path
    return folder


def sidecar_or_none(meta: Any, key: str | None = None, output: str | None = None) -> dict | None:
    """``meta`` if it is a sound sidecar (of output ``output`` of stage run ``key``, if
    given), else ``None``: see :func:`sidecar_problem`."""
    return None if sidecar_problem(meta, key, output) else meta


def in_stage_folder(path: Path) -> tuple[Path, str]:
    """The stage run's folder (``objects/SHARD/KEY``) that ``path`` is or lies in, at any
    depth (a folder an artifact is, a file in a cacher's ``subdir``), and ``path``
    relative to it (``""`` for the folder itself). Outside such a folder: ``path`` if it
    is a folder, else the folder it is in, and its name."""
    for folder in (path, *path.parents):
        shard = folder.parent
        if (
            shard.parent.name == "objects"
            and len(shard.name) == 2
            and folder.name.startswith(shard.name)
        ):
            return folder, path.relative_to(folder).as_posix() if folder != path else ""
    if path.is_dir():
        return path, ""
    return path.parent, path.name


def entry_holds(entry: Any, name: str) -> bool:
    """Whether a sidecar's ``files`` item is the file ``name`` (a path relative to the
    stage run's folder), or a folder holding it (a cacher's ``subdir``, a folder that
    ``get_dir()`` or ``PathRef`` made, recorded whole)."""
    recorded = entry.get("path") if isinstance(entry, dict) else None
    return isinstance(recorded, str) and (name == recorded or name.startswith(recorded + "/"))


def sidecar_problem(meta: Any, key: str | None = None, output: str | None = None) -> str | None:
    """What makes ``meta`` (a sidecar's JSON) no usable record of output ``output`` of
    stage run ``key``, or ``None`` if it is one.

    Valid JSON that is no record (``{}``, ``null``, a record cut in the middle of its
    files) is as damaged as a file cut short, and so is one that lists no file (every
    save records one: nothing could be checked). So is a record that lists a file outside
    its stage folder (``../``: a sidecar never makes assay read or delete other files;
    an absolute path is a file written in place outside the cache, ``path_override``,
    which is checked where it is and never removed), and the record of another entry,
    copied or moved here (its files are another artifact's).
    """
    if not isinstance(meta, dict):
        return _NOT_A_RECORD
    files = meta.get("files")
    if not (
        isinstance(meta.get("key"), str)
        and isinstance(meta.get("output"), str)
        and isinstance(files, list)
        and all(_is_file_entry(f) for f in files)
    ):
        return _NOT_A_RECORD
    if not files:  # every save records at least one file: nothing here could be checked
        return "it lists no file, so nothing of the artifact can be checked"
    outside = next((f["path"] for f in files if _leaves_folder(f["path"])), None)
    if outside is not None:
        return f"it names a file outside its stage folder ({outside!r})"
    if key is not None and meta["key"] != key:
        return f"it is the record of another stage run ({meta['key']}), copied here"
    if output is not None and meta["output"] != output:
        return f"it is the record of output {meta['output']!r}, copied here"
    return None


def _is_file_entry(entry: Any) -> bool:
    """Whether a sidecar's ``files`` item has a file's path, size and checksum."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("checksum"), str)
    )


def _leaves_folder(path: str) -> bool:
    """Whether a relative path from a sidecar points outside its stage folder."""
    if os.path.isabs(path):
        return False  # outside any cache by design (path_override): never removed
    parts = path.replace("\\", "/").split("/")
    return not path or ".." in parts or bool(os.path.splitdrive(path)[0])


def _inside(folder: Path, path: str) -> Path | None:
    """``folder / path`` if it lies inside ``folder`` (also once links are followed),
    else ``None``: what a sidecar names is removed only inside its own stage folder."""
    if os.path.isabs(path) or _leaves_folder(path):
        return None
    target = folder / path
    real = os.path.realpath(folder)
    parent = os.path.realpath(target.parent)
    return target if parent == real or parent.startswith(real + os.sep) else None


def made_elsewhere(
    meta: dict,
    project: str | os.PathLike | None,
    own_run: Callable[[str, str], bool] | None = None,
) -> str | None:
    """The project folder that wrote the sidecar ``meta``, if it is not ``project``
    (``None`` if it is, or the sidecar does not say: written before assay recorded it).

    Several projects may share one cache; ``by-name`` links are the cache's, not a
    project's, so the last project to run an experiment of that name files its
    artifacts there. ``own_run(run_id, key)`` tells whether this project's run store
    has the run that computed it (``key``: ``STAGE-RUN-KEY.OUTPUT``): then it is this
    project's, from before the project folder was moved (or copied) from the folder the
    sidecar names.
    """
    maker = meta.get("project")
    root = maker.get("root") if isinstance(maker, dict) else None
    if not isinstance(root, str) or project is None or root == str(project):
        return None
    run_id = meta.get("run_id")
    key = f"{meta.get('key')}.{meta.get('output')}"
    if own_run is not None and isinstance(run_id, str) and own_run(run_id, key):
        return None
    return root


def maker_text(meta: dict) -> str:
    """``/path/to/project (on host)``: the project that wrote a sidecar, for messages."""
    maker = meta.get("project") if isinstance(meta.get("project"), dict) else {}
    host = maker.get("host")
    return f"{maker.get('root')}{f' (on {host})' if host else ''}"


def unreadable_record(
    cacher: Any,
    key: str,
    output: str,
    damage: str | None = None,
    stage: str | None = None,
    param_set: str | None = None,
) -> CorruptArtifactError:
    """The error for an entry that was there, but whose sidecar is now gone or damaged
    (cut short, emptied, not JSON, another entry's, see :func:`sidecar_problem`): it is
    recomputed like a damaged file. The stage and parameter set are the ``cacher``'s, or
    ``stage`` and ``param_set`` without one (``assay cache verify``: as far as known)."""
    if damage in (None, _NOT_A_RECORD):
        problem = f"its record {output}{_META_SUFFIX} is missing or unreadable (key {key})"
    else:
        problem = f"its record {output}{_META_SUFFIX} of stage run {key} is damaged: {damage}"
    if cacher is not None:
        stage = getattr(cacher, "stage", None)
        param_set = getattr(getattr(cacher, "record", None), "name", None)
    if stage is None:
        return CorruptArtifactError(f"Cached artifact {output!r}: {problem}.")
    return corrupt({"output": output, "stage": stage, "param_set": param_set}, problem)


def corrupt(meta: dict, problem: str) -> CorruptArtifactError:
    """The error for an artifact whose file does not match its sidecar."""
    return CorruptArtifactError(
        f"Cached artifact {meta['output']!r} of stage {meta.get('stage')!r} "
        f"(parameter set {meta.get('param_set')!r}): {problem}."
    )


_UPLOADING = re.compile(r"\.tmp-\d+-\d+-[0-9a-f]{6}$")
"""The end of the temporary name a file or sidecar is uploaded to at a URL with renames
(``model.pkl.tmp-PID-N-RANDOM``, see :func:`_unique`) before it is renamed into place."""


def unfinished_write(name: str) -> bool:
    """Whether a name in a stage run's folder (or ``by-name/``) is a write that did not end:
    a temporary file (``.tmp-...``, or an upload to a URL, ``model.pkl.tmp-...``) that a
    run stopped in the middle of a save left."""
    return name.startswith(".") or _UPLOADING.search(name) is not None


def _outputs(names: Iterable[str]) -> list[str]:
    """The outputs whose sidecars are among ``names`` (temporary names left out)."""
    return [n[: -len(_META_SUFFIX)] for n in names if n.endswith(_META_SUFFIX) and n[0] != "."]


def _in_its_shard(entry: os.DirEntry, shard: str) -> bool:
    """Whether ``entry``, found in the folder ``objects/SHARD/``, can be a stage run's
    folder: a folder whose name (its key) starts with ``SHARD``."""
    return entry.name.startswith(shard) and entry.is_dir(follow_symlinks=False)


def _scan(path: str) -> list[os.DirEntry]:
    """The folders (or, below stage folders, entries) of ``path``, by name; none if absent."""
    try:
        return sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        return []


def _bytes(entry: os.DirEntry) -> int:
    """The bytes of a file or folder in a stage folder; what a run removes meanwhile
    (an unfinished write renamed into place, an entry replaced) counts for nothing."""
    try:
        if not entry.is_dir(follow_symlinks=False):
            return entry.stat(follow_symlinks=False).st_size
    except OSError:
        return 0
    total = 0
    for folder, _, names in os.walk(entry.path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _mtime(entry: os.DirEntry) -> float:
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


AGGREGATE = "aggregate"
"""The label of an aggregate stage run without a parameter set."""


def link_label(node: Any) -> str:
    """The ``by-name`` folder a stage run is filed under: its parameter set's name, or
    for an aggregate without one, :func:`aggregate_label` of the records it aggregates.

    Aggregates over different records (a run with ``-p hostile`` after one with the
    default parameter sets) are different results, and each keeps its own link, so
    ``assay cache gc`` keeps each and ``assay.load(..., param_set="aggregate")`` finds
    each. ``node`` is the runner's stage run (its ``record_label`` and ``records``).
    """
    label = node.record_label
    if label != AGGREGATE:
        return label
    # a stage called on an aggregate's record after it: in the aggregate's folder
    records = node.records if node.spec.is_aggregate else node.record.input_records
    return aggregate_label(record.name for record in records or [])


def aggregate_label(names: Iterable[str]) -> str:
    """``aggregate-`` and 8 hex digits of the names of the records an aggregate without
    a parameter set aggregates: one folder per set of names, so the same aggregate over
    the same parameter sets keeps its folder when their values (or the code) change, as
    a parameter set's does."""
    return f"{AGGREGATE}-{hash_value(sorted(set(names)))[:8]}"


def type_name(value: Any) -> str:
    """``pandas.core.frame.DataFrame``: the type of a value, as the sidecar and the report
    give it (the module's public name where it has one: ``pandas.DataFrame``)."""
    kind = type(value)
    module = kind.__module__
    if module == "builtins":
        return kind.__qualname__
    parts = module.split(".")
    for end in range(1, len(parts)):  # the shortest: sklearn.ensemble.RandomForestClassifier
        shorter = ".".join(parts[:end])
        if getattr(sys.modules.get(shorter), kind.__name__, None) is kind:
            module = shorter
            break
    return f"{module}.{kind.__qualname__}"


def aggregate_label_of(meta: dict) -> str | None:
    """The :func:`aggregate_label` of the aggregate an artifact's sidecar ``meta``
    describes (its key's ``params``: ``[hash, [[hash, name], ...]]``), if it says."""
    params = (meta.get("ingredients") or {}).get("params")
    records = params[1] if isinstance(params, list) and len(params) >= 2 else None
    if isinstance(records, list) and all(isinstance(r, list) and len(r) == 2 for r in records):
        return aggregate_label(str(name) for _, name in records)
    return None


def link_target(key: str) -> str:
    """What a ``by-name`` link holds: the stage folder, relative to the link."""
    return f"../../../objects/{key[:2]}/{key}"  # links are always 3 levels down


def key_of_target(target: str) -> str | None:
    """The stage run a link's target names, or ``None`` if it names none."""
    parts = target.strip().replace(os.sep, "/").rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "objects" and parts[-1].startswith(parts[-2]):
        return parts[-1]
    return None


def _pointed_key(link: Path) -> str | None:
    """The stage run a ``by-name`` entry points to: a symlink, or a text pointer."""
    try:
        return key_of_target(os.readlink(link))
    except OSError:
        pass
    try:
        if link.is_file() and not link.name.startswith("."):
            return key_of_target(link.read_text())
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _glob(value: str | None) -> str:
    return "*" if value is None else _safe(value)


def _param_set_globs(param_set: str | None) -> list[str]:
    """The patterns of the ``by-name`` folders a parameter set's name stands for: an
    aggregate's are ``aggregate-HASH`` (and ``aggregate``, as assay 0.1 filed them)."""
    if param_set == AGGREGATE:
        return [AGGREGATE, f"{AGGREGATE}-{'[0-9a-f]' * 8}"]
    return [_glob(param_set)]


def _reads_json(reads: frozenset | str) -> list | str:
    return reads if isinstance(reads, str) else sorted(reads)


@functools.lru_cache(maxsize=256)
def _reads_text(reads: frozenset | str) -> str:
    """``reads`` as JSON: most stage runs of a stage read the same fields."""
    return json.dumps(_reads_json(reads))


def _is_read_entry(entry: Any) -> bool:
    """Whether a line of the read index has its shape: ``{"base": ..., "reads": ...}``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("base"), str):
        return False
    reads = entry.get("reads")
    return isinstance(reads, str) or (
        isinstance(reads, list) and all(isinstance(r, str) for r in reads)
    )


def _reads_value(value: list | str) -> frozenset | str:
    return value if isinstance(value, str) else frozenset(value)


def _checksum(path: Path) -> str:
    """A file's checksum; a folder's is the hash of its files' names and checksums."""
    if path.is_dir():
        entries = [
            (p.relative_to(path).as_posix(), file_checksum(p))
            for p in sorted(path.rglob("*"))
            if p.is_file()
        ]
        return hash_value(entries)
    return file_checksum(path)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _lock_file(handle: int) -> None:
    """Wait until this process holds the lock on the open file ``handle`` (released when
    it is closed); go on without it where the filesystem offers none."""
    try:
        import fcntl
    except ImportError:  # Windows
        _lock_file_windows(handle)
        return
    with contextlib.suppress(OSError):  # ENOLCK: a network filesystem without locks
        fcntl.flock(handle, fcntl.LOCK_EX)


def _lock_file_windows(handle: int) -> None:
    """:func:`_lock_file` on Windows (its blocking mode gives up after ten seconds)."""
    import msvcrt

    while True:
        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return
        except PermissionError:  # held by another process
            time.sleep(0.05)
        except OSError:  # no locks here
            return


CLAIMS = "claims"
"""The folder, in the cache's root, of the runs' claims of files outside the cache
(see :meth:`CacheStore.claim_file`)."""
_CLAIMS_KEPT_S = 86400.0
"""How long the claims a stopped run left are kept (a run may last that long)."""
_CLAIM_WAIT_S = 2.0
"""How long a claim another process is writing (made, still empty) is waited for."""


def _claim_in(path: str) -> list | None:
    """The owner a claim file names (waiting a moment for one being written), or ``None``."""
    deadline = time.monotonic() + _CLAIM_WAIT_S
    while True:
        try:
            with open(path, "rb") as handle:
                owner = json.loads(handle.read())["owner"]
            if isinstance(owner, list):
                return owner
            return None
        except FileNotFoundError:
            return None  # its run ended meanwhile
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return None  # left empty by a process killed as it claimed
        time.sleep(0.01)


LOCKS = "locks"
"""The folder, in the cache's root, of the files whose locks :meth:`CacheStore.saving` holds."""

_COUNTER = itertools.count()


def _unique() -> str:
    """A name part no other writer uses: host-wide by pid, process-wide by counter."""
    return f"{os.getpid()}-{next(_COUNTER)}-{_RANDOM}"


_RANDOM = uuid.uuid4().hex[:6]


@functools.lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def _replace(source: str | Path, target: str | Path) -> None:
    try:
        os.replace(source, target)
    except OSError:  # the target is a non-empty folder (an older copy)
        _remove(target)
        os.replace(source, target)


def _remove(path: str | Path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@functools.lru_cache(maxsize=65536)
def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_.=+,@" else "_" for c in str(name))
    return cleaned.strip(".") or "_"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
