"""The artifact cache: one folder per stage run, written atomically, checked on load.

Layout, under the project's ``data/cache/``::

    objects/3f/3fa4...e1/          one folder per stage run (its cache key)
        model.pkl                  the files each output's cacher wrote
        model.meta.json            the output's sidecar: key, checksum, size, run, ...
        score.json
        score.meta.json
    by-name/iris/trees_10/train -> ../../../objects/3f/3fa4...e1

``by-name/EXPERIMENT/PARAMETER-SET/STAGE`` is how a person finds an artifact
(and how :func:`assay.load` does). A stage run that several parameter sets or
experiments share (same key) is stored once and linked from each.

Writes are atomic: a cacher writes into a temporary folder beside the final
one, the files are renamed into place, and the sidecar is written last (to a
temporary name, then renamed). A sidecar's presence means the artifact is
complete; a run killed at any moment leaves at worst an orphan temporary
folder, never a file that passes for an artifact. Loading re-checks the size
and checksum of every file and raises :class:`CorruptArtifactError` on a
mismatch, so a truncated or edited file is never loaded silently.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from assay.errors import CacheError, CorruptArtifactError
from assay.hashing import file_checksum, hash_value

META_FORMAT = "assay-artifact/1"
_META_SUFFIX = ".meta.json"


class CacheStore:
    """The cache folder of a project (``data/cache`` unless configured)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.by_name = self.root / "by-name"
        self._made_dirs: set[Path] = set()

    # -- where things are --------------------------------------------------------------

    def stage_dir(self, key: str) -> Path:
        """The folder holding every file of the stage run with cache key ``key``."""
        return self.objects / key[:2] / key

    def meta_path(self, key: str, output: str) -> Path:
        """The sidecar of output ``output`` of stage run ``key``."""
        return self.objects / key[:2] / key / f"{output}{_META_SUFFIX}"

    def name_link(self, experiment: str, param_set: str, stage: str) -> Path:
        """The human-readable link to a stage run's folder."""
        return self.by_name / _safe(experiment) / _safe(param_set) / _safe(stage)

    # -- lookups -----------------------------------------------------------------------

    def has(self, key: str, output: str) -> bool:
        """Whether a complete entry exists (its checksum is verified on load)."""
        return os.path.exists(self.meta_path(key, output))

    def read_meta(self, key: str, output: str) -> dict | None:
        """The sidecar of an output, or ``None`` if there is no complete entry."""
        try:
            with open(self.meta_path(key, output)) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None

    def ensure_dir(self, path: Path) -> Path:
        """Create ``path`` (and parents) once per process."""
        if path not in self._made_dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path)
        return path

    # -- writing -----------------------------------------------------------------------

    def save(self, cacher: Any, obj: Any, *, key: str, output: str, meta: dict) -> dict:
        """Save ``obj`` with ``cacher`` as output ``output`` of stage run ``key``.

        ``meta`` holds the provenance to record (stage, parameter set, run,
        upstream keys, ...); the store adds files, sizes, checksums and the
        cacher. Returns the complete sidecar. Any failure of the cacher is
        raised as :class:`CacheError` with the artifact named, and leaves no
        entry behind.
        """
        final = self.ensure_dir(self.stage_dir(key))
        in_place = getattr(cacher, "writes_in_place", False) or cacher.path_override is not None
        staging = final if in_place else final / f".tmp-{output}-{uuid.uuid4().hex[:12]}"
        if not in_place:
            staging.mkdir()
        self.discard(key, output, keep_files=True)
        cacher._dir = staging
        cacher.cache_paths = []
        try:
            cacher.save(obj)
            files = self._describe_files(cacher, staging, final, in_place)
            if not in_place:
                for entry in files:
                    if not os.path.isabs(entry["path"]):
                        _replace(staging / entry["path"], final / entry["path"])
                shutil.rmtree(staging, ignore_errors=True)
        except Exception as exc:
            if not in_place:
                shutil.rmtree(staging, ignore_errors=True)
            raise CacheError(
                f"Could not save output {output!r} of stage {meta.get('stage')!r} "
                f"(parameter set {meta.get('param_set')!r}) with {type(cacher).__name__}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            cacher._dir = final
        sidecar = {
            "format": META_FORMAT,
            "key": key,
            "output": output,
            **meta,
            "cacher": cacher.identity(),
            "files": files,
            "size": sum(f["size"] for f in files),
            "extra": cacher.extra_metadata,
            "created": _now(),
        }
        _write_json_atomic(self.meta_path(key, output), sidecar)
        cacher.metadata = sidecar
        return sidecar

    def prepare_in_place(self, key: str, output: str) -> Path:
        """Before a stage writes files straight into its folder: drop any old sidecar."""
        self.discard(key, output, keep_files=True)
        return self.ensure_dir(self.stage_dir(key))

    def discard(self, key: str, output: str, keep_files: bool = False) -> None:
        """Remove an output's entry (its sidecar, and unless ``keep_files`` its files)."""
        meta = None if keep_files else self.read_meta(key, output)
        try:
            os.unlink(self.meta_path(key, output))
        except FileNotFoundError:
            pass
        for entry in (meta or {}).get("files", []):
            path = Path(entry["path"])
            if not path.is_absolute():
                target = self.stage_dir(key) / path
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)

    def link(self, experiment: str, param_set: str, stage: str, key: str) -> None:
        """Point ``by-name/experiment/param_set/stage`` at stage run ``key``."""
        link = self.name_link(experiment, param_set, stage)
        target = os.path.relpath(self.stage_dir(key), link.parent)
        try:
            if os.readlink(link) == target:
                return
        except OSError:
            pass
        self.ensure_dir(link.parent)
        temporary = link.parent / f".{link.name}.{uuid.uuid4().hex[:8]}"
        try:
            os.symlink(target, temporary)
            os.replace(temporary, link)
        except OSError:
            # No symlinks here (some Windows and network filesystems): a text pointer.
            temporary.unlink(missing_ok=True)
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            link.write_text(target)

    # -- reading -----------------------------------------------------------------------

    def load(self, cacher: Any, key: str, output: str) -> Any:
        """Verify and load an output with ``cacher``.

        Raises:
            CorruptArtifactError: a file is missing, or its size or checksum
                differs from the sidecar; nothing was unpickled.
            CacheError: there is no entry, or the cacher failed to read it.
        """
        meta = self.read_meta(key, output)
        if meta is None:
            raise CacheError(f"No cached artifact {output!r} for key {key}.")
        self.verify(meta)
        cacher._dir = self.stage_dir(key)
        cacher.metadata = meta
        cacher.extra_metadata = meta.get("extra", {})
        try:
            return cacher.load()
        except Exception as exc:
            raise CacheError(
                f"{type(cacher).__name__} could not load artifact {output!r} of stage "
                f"{meta.get('stage')!r} from {self.stage_dir(key)}: {type(exc).__name__}: {exc}"
            ) from exc

    def verify(self, meta: dict) -> None:
        """Check every file of an entry against its recorded size and checksum."""
        folder = self.stage_dir(meta["key"])
        for entry in meta["files"]:
            path = Path(entry["path"])
            path = path if path.is_absolute() else folder / path
            problem = None
            if not path.exists():
                problem = "is missing"
            elif _size(path) != entry["size"]:
                problem = f"has {_size(path)} bytes instead of {entry['size']}"
            elif _checksum(path) != entry["checksum"]:
                problem = "does not match its recorded checksum (it was modified)"
            if problem:
                raise CorruptArtifactError(
                    f"Cached artifact {meta['output']!r} of stage {meta.get('stage')!r} "
                    f"(parameter set {meta.get('param_set')!r}): {path} {problem}."
                )

    # -- helpers -----------------------------------------------------------------------

    def _describe_files(self, cacher: Any, staging: Path, final: Path, in_place: bool) -> list:
        paths: list[Path] = []
        if in_place:
            paths = [Path(p) for p in cacher.cache_paths if os.path.exists(p)]
        else:
            paths = sorted(p for p in staging.rglob("*") if p.is_file())
            paths += [
                Path(p)
                for p in cacher.cache_paths
                if not Path(p).is_relative_to(staging) and os.path.exists(p)
            ]
        paths += [Path(p) for p in cacher.extra_metadata.get("referenced_files", [])]
        files, seen = [], set()
        for path in paths:
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            if path.is_relative_to(staging):
                name = path.relative_to(staging).as_posix()
            elif path.is_relative_to(final):
                name = path.relative_to(final).as_posix()
            else:
                name = str(resolved)
            files.append({"path": name, "size": _size(path), "checksum": _checksum(path)})
        if not files:
            raise CacheError(f"{type(cacher).__name__}.save() wrote no file at {cacher.get_path()}")
        return files


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


def _replace(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(source, target)


def _write_json_atomic(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    with open(temporary, "w") as handle:
        json.dump(data, handle, indent=1, default=str)
    os.replace(temporary, path)


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_.=+,@" else "_" for c in str(name))
    return cleaned.strip(".") or "_"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
