"""Cachers: how a stage's outputs are written to disk and read back.

Give a stage one cacher per output::

    @assay.stage(inputs=["data"], outputs=["model", "table"],
                 cachers=[PickleCacher, PandasParquetCacher])

A cacher is a small object with ``save(obj)`` and ``load()`` that writes to,
and reads from, ``self.get_path()``. assay decides *where* that path is (a
folder per stage run in the cache, see :mod:`assay.cache`), writes there
atomically, records a checksum of every file the cacher wrote, and refuses to
load a file whose checksum no longer matches.

Write your own by subclassing :class:`Cacheable`::

    class TorchCacher(Cacheable):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, extension=".pt", **kwargs)

        def save(self, obj):
            torch.save(obj, self.get_path())

        def load(self):
            return torch.load(self.get_path())

A cacher can also be used by hand in a notebook with a fixed path:
``PickleCacher("results/model.pkl").save(model)``. Used by hand on a file of
the cache, a built-in cacher checks it against its sidecar first, as a run
does (a modified file is refused, never unpickled), and reads its metadata.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path
from typing import Any

import xxhash

from assay.compat import names_curifactory_has
from assay.staging import Lazy
from assay.tracking import instance_state

_TEMPLATE_FIELDS = ("params", "hash", "stage", "name", "experiment", "cache", "artifact_filename")
_TEMPLATE_FIELDS_TEXT = ", ".join(f"{{{f}}}" for f in _TEMPLATE_FIELDS[1:]) + " and {params.FIELD}"

__all__ = [
    "Cacheable",
    "FileReferenceCacher",
    "JsonCacher",
    "Lazy",
    "NumpyCacher",
    "PandasCacher",
    "PandasCsvCacher",
    "PandasJsonCacher",
    "PandasParquetCacher",
    "PathRef",
    "PickleCacher",
]

# Attributes set while a cacher is in use; they are not part of its identity.
_RUNTIME_ATTRIBUTES = {
    "record",
    "name",
    "stage",
    "cache_paths",
    "metadata",
    "extra_metadata",
    "track",
    "_dir",
    "_tmp_tag",
    "_checksums",
}


class Cacheable:
    """Base class of every cacher: subclass it and define ``save`` and ``load``.

    Args:
        path_override: a fixed path to write to instead of the cache folder.
            It may use the templates ``{params.FIELD}``, ``{hash}``,
            ``{stage}``, ``{name}``, ``{experiment}`` and ``{cache}``, e.g.
            ``"results/{params.seed}/{stage}_{name}.csv"``.
        name: the artifact's name (set by the stage to the output's name).
        subdir: a sub-folder of the stage's cache folder to write into.
        prefix: a prefix for the file name.
        extension: the file extension, with its dot (``".pkl"``).
        record: the record whose artifact this is (set by the stage).
        track: kept for compatibility with Curifactory; assay tracks every
            file a cacher writes.

    While ``save`` and ``load`` run, ``self.record`` and ``self.stage`` tell
    whose artifact this is, and ``self.extra_metadata`` (a JSON-able dict) is
    stored in the artifact's metadata sidecar and restored before ``load``.
    """

    def __init__(
        self,
        path_override: str | None = None,
        name: str | None = None,
        subdir: str | None = None,
        prefix: str | None = None,
        extension: str | None = None,
        record: Any = None,
        track: bool = True,
    ):
        self.path_override = path_override
        self.name = name
        self.subdir = subdir
        self.prefix = prefix
        self.extension = extension
        self.record = record
        self.track = track
        self.stage: str | None = None
        self.cache_paths: list[str] = []
        """Every path ``get_path`` handed out: the files this cacher wrote or read."""
        self.metadata: dict | None = None
        """The artifact's metadata sidecar, available in ``load()``."""
        self.extra_metadata: dict = {}
        """Anything JSON-able to keep beside the artifact (saved after ``save``)."""
        self._dir: Path | None = None
        self._tmp_tag: str | None = None
        self._checksums: dict[str, tuple[int, str]] = {}

    # -- the two methods a cacher defines -------------------------------------------

    def save(self, obj: Any) -> Any:
        """Write ``obj`` to ``self.get_path()`` (subclasses define this)."""
        raise NotImplementedError(f"{type(self).__name__} does not define save(obj).")

    def load(self) -> Any:
        """Read the object back from ``self.get_path()`` (subclasses define this)."""
        raise NotImplementedError(f"{type(self).__name__} does not define load().")

    # -- paths ------------------------------------------------------------------------

    def get_path(self, suffix: str | None = None) -> str:
        """The path to write to or read from; ``suffix`` replaces the extension.

        ``get_path("_labels.json")`` gives a second file beside the main one,
        for cachers that write several files.
        """
        if self.path_override is not None:
            path = self._resolve_override()
            if suffix is not None:
                if self.extension and path.endswith(self.extension):
                    path = path[: -len(self.extension)]
                path += suffix
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
        else:
            if self._dir is None:
                self._dir = self._running_stage_dir()
            folder = self._dir or self._record_stage_dir()
            if self.name is None:
                raise RuntimeError(f"{type(self).__name__} needs a name to build a path.")
            ending = suffix if suffix is not None else (self.extension or "")
            stem = self.name
            if suffix is None and ending and stem.endswith(ending):
                ending = ""
            filename = f"{self.prefix}_{stem}{ending}" if self.prefix else f"{stem}{ending}"
            if self.subdir:
                # The sub-folder is written under a temporary name, then renamed whole.
                folder = folder / f"{self._tmp_tag or ''}{self.subdir}"
                folder.mkdir(parents=True, exist_ok=True)
                path = str(folder / filename)
            else:
                path = f"{folder}/{self._tmp_tag or ''}{filename}"
        if path not in self.cache_paths:
            self.cache_paths.append(path)
        return path

    def _running_stage_dir(self) -> Path | None:
        """Inside the running stage whose output this cacher keeps (``record.stage_cachers``,
        as Curifactory's partial caching uses them): the stage's folder in the cache, its
        key fixed now on all its parameters, as :meth:`Record.get_path` does."""
        record = self.record
        node = getattr(record, "_node", None)
        if node is None or not any(a.cacher is self for a in node.outputs):
            return None
        folder = Path(record._stage_folder(None))  # fixes the key
        cache = record.manager.cache
        if record.manager.dry_cache and cache.has(node.key, self.name):
            folder = cache.stage_dir(node.key)  # what an earlier run kept: to read only
        cache.localize(node.key, self.name)
        return folder

    def _record_stage_dir(self) -> Path:
        """For a cacher a stage makes itself (``PickleCacher(record=record, name="extra")``):
        the folder :meth:`Record.get_path` gives, that of the running stage (or of
        ``self.stage``), so its files are cached with the stage's, as in Curifactory."""
        if self.record is None:
            raise RuntimeError(
                f"{type(self).__name__} has no place to write yet: give it the record "
                "(record=record, in a stage) or a path (path_override)."
            )
        return Path(self.record._stage_folder(self.stage))

    def checksummed_file(self, path: str) -> _ChecksummedFile:
        """Open ``path`` for binary writing, hashing the bytes on the way.

        assay records a checksum of every file a cacher writes; a cacher that
        writes through this file spares assay reading the file back to
        compute it. ``with self.checksummed_file(self.get_path()) as f: ...``
        """
        return _ChecksummedFile(path, self._checksums)

    def get_dir(self, suffix: str | None = None) -> str:
        """A folder (created if needed) for cachers that write many files."""
        path = self.get_path(suffix if suffix is not None else "")
        os.makedirs(path, exist_ok=True)
        return path

    def _resolve_override(self) -> str:
        template = str(self.path_override)
        if self.record is None or "{" not in template:
            return template
        manager = self.record.manager
        params_hash = self.record.get_hash()
        # As Curifactory names it: PREFIX_HASH_STAGE_NAME.EXT, one file per parameter set.
        artifact_filename = (
            f"{self.prefix or manager.prefix}_{params_hash}_{self.stage}_"
            f"{self.name}{self.extension or ''}"
        )
        return template.format(
            params=self.record.params,
            hash=params_hash,
            stage=self.stage,
            name=self.name,
            experiment=manager.experiment_name,
            cache=str(manager.cache_path).rstrip("/"),
            artifact_filename=artifact_filename,
        )

    def check_path_override(self) -> None:
        """Raise :class:`~assay.errors.StageError` if ``path_override`` is a template that
        cannot be filled in (an unknown ``{field}``, a parameter the set lacks): checked when
        the stage is planned, before it runs, so that no result is lost to a typo."""
        import string

        from assay.errors import StageError

        template = self.path_override
        if template is None or "{" not in str(template) or self.record is None:
            return
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(str(template)) if f is not None]
        except ValueError as exc:
            problem = f"it is not a valid template ({exc})"
        else:
            problem = ""
            for field in fields:
                root, _, rest = field.partition(".")
                root = root.split("[")[0]
                if root not in _TEMPLATE_FIELDS:
                    problem = f"it names {{{field}}}; a template may use {_TEMPLATE_FIELDS_TEXT}"
                elif root == "params" and rest:
                    attribute = rest.split(".")[0].split("[")[0]
                    if not hasattr(self.record.params, attribute):
                        problem = f"the parameter set has no field {attribute!r} ({{{field}}})"
                if problem:
                    break
        if problem:
            raise StageError(
                f"The path_override {template!r} of output {self.name!r} of stage "
                f"{self.stage!r} cannot be used: {problem}."
            )

    # -- checks and metadata ---------------------------------------------------------

    def _hashes_while_loading(self) -> bool:
        """Whether ``load()`` hashes every byte it reads into ``self._checksums`` and runs
        no code from them, so that assay may compare checksums after loading rather than
        read each file twice (once to check it, once to load it). See ``CacheStore.load``.
        """
        return False

    def check(self) -> bool:
        """Whether the artifact's main file exists (assay also verifies its checksum)."""
        return os.path.exists(self.get_path())

    def save_metadata(self) -> None:
        """Write the metadata of a hand-used cacher's file beside it (``NAME_metadata.json``).

        It holds ``extra_metadata`` and, in Curifactory's names, what is known where the
        cacher is used: the cacher and the time; with a ``record``, the parameter set
        (``params_name``, ``params_hash``, ``params``), the stage running (``stage``,
        ``None`` outside one) and the run (``manager_run_info``; its ``reference`` and
        ``run_number`` are ``None`` while the run is not recorded, as in a notebook).
        For a cacher a stage declares assay writes the full metadata sidecar itself
        after ``save``, so calling this there is harmless and unnecessary.
        """
        if self._dir is not None:
            return
        metadata = self._hand_metadata()
        with open(self.get_path("_metadata.json"), "w") as handle:
            json.dump(metadata, handle, indent=2, default=metadata_default)
        self.metadata = metadata

    def _hand_metadata(self) -> dict:
        """What :meth:`save_metadata` writes."""
        import time

        metadata: dict[str, Any] = {
            "artifact_generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "artifact_name": self.name,
            "cacher_type": str(type(self)),
            "extra": self.extra_metadata,
        }
        record = self.record
        if record is None:
            return metadata
        manager, params = record.manager, record.params
        metadata.update(
            params_hash=record.get_hash(),
            params_name=record.name if params is not None else None,
            record_name=record.name,
            params=_params_as_text(params),
            stage=manager.current_stage_name or self.stage,
            manager_run_info={
                "experiment_name": manager.experiment_name,
                "run_number": manager.run_number,
                "reference": manager.run_id,
            },
        )
        return metadata

    def set_record(self, record: Any) -> None:
        """Make this cacher's artifact one of ``record`` (as ``record=record`` does), and
        collect its metadata (:meth:`collect_metadata`)."""
        self.record = record
        self.collect_metadata()

    def collect_metadata(self) -> dict:
        """Fill ``self.metadata`` with what :meth:`save_metadata` would write (the
        parameter set, stage and run of ``self.record``, and ``extra_metadata``) and
        return it. For a cacher a stage declares, assay keeps the full metadata beside
        the artifact itself."""
        self.metadata = self._hand_metadata()
        return self.metadata

    def load_metadata(self) -> dict | None:
        """The artifact's metadata (``self.metadata``), reading it if needed.

        A cacher used by hand on a file of the cache (``JsonCacher(path)``) reads the
        sidecar assay keeps beside it; on a file of its own, what
        :meth:`save_metadata` wrote.
        """
        if self.metadata is None and self._dir is None:
            path = self.get_path()
            self.metadata = _sidecar_of(path)
            extra = self.get_path("_metadata.json")
            if self.metadata is None and os.path.exists(extra):
                with open(extra) as handle:
                    self.metadata = json.load(handle)
        if self.metadata is not None:
            self.extra_metadata = self.metadata.get("extra", {})
        return self.metadata

    def _prepare_hand_load(self) -> None:
        """Used by hand on a file of the cache (``PickleCacher(path).load()`` in a
        notebook), load it as a run and ``assay.load`` do: raise
        :class:`~assay.errors.CorruptArtifactError`, before it is loaded, if a file its
        sidecar lists no longer matches the recorded size and checksum; and restore its
        metadata (``self.metadata``, ``self.extra_metadata``, unless already loaded),
        which ``load()`` may need (a pandas Series is told from a DataFrame by it).

        A file outside the cache (no sidecar lists it) is loaded as it is; while assay
        itself drives the cacher (``self._dir`` set), the cache has done both.
        """
        if self._dir is not None:
            return
        meta, folder = _sidecar_and_folder(self.get_path())
        if meta is None:
            return
        self._refuse_if_damaged(folder, meta)
        if self.metadata is None:
            self.metadata = meta
            self.extra_metadata = meta.get("extra") or {}

    @staticmethod
    def _refuse_if_damaged(stage_folder: str, meta: dict) -> None:
        """Raise :class:`~assay.errors.CorruptArtifactError` if a file the sidecar ``meta``
        lists (relative to ``stage_folder``) does not match its recorded size and checksum."""
        from assay.cache import corrupt, file_problem

        folder = Path(stage_folder)
        for entry in meta["files"]:
            file = Path(str(entry.get("path"))) if isinstance(entry, dict) else None
            if file is None or "size" not in entry or "checksum" not in entry:
                raise corrupt(meta, f"its sidecar in {folder} is damaged; it was not loaded")
            file = file if file.is_absolute() else folder / file
            problem = file_problem(file, entry)
            if problem:
                raise corrupt(
                    meta,
                    f"{file} {problem}; it was not loaded (compute it again: assay run "
                    f"EXPERIMENT --overwrite-stage {meta.get('stage')})",
                )

    def identity(self) -> dict:
        """What makes two cachers write the same thing; part of the cache key."""
        config = {}
        for attr, value in sorted(vars(self).items()):
            if attr in _RUNTIME_ATTRIBUTES:
                continue
            if isinstance(value, (str, int, float, bool, type(None), list, tuple, dict)):
                config[attr] = value
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", **config}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _params_as_text(params: Any) -> dict[str, str] | None:
    """Each field of a parameter set as text (``str(value)``, as Curifactory writes them),
    but ``hash``, ``overwrite`` and ``hash_representations``. Read without counting as a
    read of the stage running (the file is beside the result, not part of it)."""
    if params is None or not hasattr(type(params), "__dataclass_fields__"):
        return None
    values = instance_state(params)
    return {
        f.name: str(values[f.name])
        for f in dataclasses.fields(type(params))
        if f.name not in ("hash", "overwrite", "hash_representations") and f.name in values
    }


def _sidecar_of(path: str) -> dict | None:
    """The sidecar (``NAME.meta.json``) that lists ``path`` among its files, if any: the
    metadata of a cached file opened by its path."""
    return _sidecar_and_folder(path)[0]


def _sidecar_and_folder(path: str) -> tuple[dict | None, str]:
    """The sidecar that lists ``path`` among its files, if any, and the folder its file
    paths are relative to: the stage run's folder that ``path`` lies in (at any depth, a
    cacher's ``subdir`` too; through ``by-name`` links), else the folder of ``path``."""
    from assay.cache import in_stage_folder

    real = Path(os.path.realpath(path))
    stage_folder, inner = in_stage_folder(real)
    if not inner:  # a folder outside a stage run's, or a stage run's folder itself
        stage_folder, inner = real.parent, real.name
    return _listing(str(stage_folder), inner), str(stage_folder)


def _listing(folder: str, name: str) -> dict | None:
    """The sidecar in ``folder`` whose files include ``name`` (relative to ``folder``), or
    a folder holding it (a cacher's ``subdir`` is recorded whole)."""
    from assay.cache import entry_holds

    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".meta.json")]
    except OSError:
        return None
    for entry in entries:
        try:
            with open(entry.path) as handle:
                meta = json.load(handle)
        except (OSError, ValueError):
            continue
        files = meta.get("files") if isinstance(meta, dict) else None
        if isinstance(files, list) and any(entry_holds(f, name) for f in files):
            return meta
    return None


class PickleCacher(Cacheable):
    """Any picklable Python object, as a ``.pkl`` file."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("extension", ".pkl")
        super().__init__(*args, **kwargs)

    def save(self, obj: Any) -> str:
        path = self.get_path()
        with self.checksummed_file(path) as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    def load(self) -> Any:
        self._prepare_hand_load()
        with open(self.get_path(), "rb") as handle:
            return pickle.load(handle)


class JsonCacher(Cacheable):
    """Dicts, lists, numbers and strings, as a readable ``.json`` file."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("extension", ".json")
        super().__init__(*args, **kwargs)

    def save(self, obj: Any) -> str:
        path = self.get_path()
        with self.checksummed_file(path) as handle:
            handle.write(json.dumps(obj, indent=2, default=_json_default).encode())
        return path

    def load(self) -> Any:
        self._prepare_hand_load()
        with open(self.get_path()) as handle:
            return json.load(handle)


_PANDAS_EXTENSIONS = {
    "csv": ".csv",
    "json": ".json",
    "parquet": ".parquet",
    "pickle": ".pkl",
    "orc": ".orc",
    "hdf5": ".h5",
    "excel": ".xlsx",
    "xml": ".xml",
    "feather": ".feather",
}
_PANDAS_WRITERS = {"hdf5": "to_hdf", "pickle": "to_pickle"}
_SERIES_COLUMN = "series"
"""The column of a Series written as a one-column table (formats with no Series writer)."""
_PANDAS_READERS = {"hdf5": "read_hdf", "pickle": "read_pickle"}


class PandasCacher(Cacheable):
    """A pandas DataFrame or Series in one of pandas' formats.

    Args:
        format: ``"csv"``, ``"json"``, ``"parquet"``, ``"pickle"`` (default),
            ``"feather"``, ``"orc"``, ``"hdf5"``, ``"excel"`` or ``"xml"``.
        to_args: keyword arguments for ``DataFrame.to_<format>``; by default, as in
            Curifactory, ``{"double_precision": 15}`` for json, ``{"key": "df"}`` for
            hdf5, ``{"index": False}`` for xml (the index is not kept), else none.
        read_args: keyword arguments for ``pandas.read_<format>``; by default
            ``{"index_col": 0}`` for csv and excel, else none.
    """

    def __init__(
        self,
        path_override: str | None = None,
        format: str = "pickle",
        to_args: dict | None = None,
        read_args: dict | None = None,
        **kwargs: Any,
    ):
        if format not in _PANDAS_EXTENSIONS:
            raise ValueError(
                f"PandasCacher format {format!r} is not supported; use one of "
                f"{', '.join(sorted(_PANDAS_EXTENSIONS))}."
            )
        kwargs.setdefault("extension", _PANDAS_EXTENSIONS[format])
        super().__init__(path_override, **kwargs)
        self.format = format
        # Curifactory's defaults: without index=False, to_xml writes the index as a
        # column that read_xml gives back as an extra "index" column.
        defaults_to = {
            "json": {"double_precision": 15},
            "hdf5": {"key": "df"},
            "xml": {"index": False},
        }
        defaults_read = {"csv": {"index_col": 0}, "excel": {"index_col": 0}}
        self.to_args = dict(to_args) if to_args is not None else defaults_to.get(format, {})
        self.read_args = dict(read_args) if read_args is not None else defaults_read.get(format, {})

    def save(self, obj: Any) -> str:
        import pandas as pd

        if not isinstance(obj, (pd.DataFrame, pd.Series)):
            raise TypeError(
                f"{type(self).__name__} saves pandas DataFrames and Series, not "
                f"{type(obj).__name__}."
            )
        path = self.get_path()
        series = isinstance(obj, pd.Series)
        name = obj.name if series else None
        method = _PANDAS_WRITERS.get(self.format, f"to_{self.format}")
        if series and not hasattr(obj, method):  # parquet, feather, ...: a one-column table
            obj = obj.to_frame(name=_SERIES_COLUMN if name is None else name)
        getattr(obj, method)(path, **self.to_args)
        self.extra_metadata.update(
            {
                "pandas_version": pd.__version__,
                "format": self.format,
                "kind": "Series" if series else "DataFrame",
            }
        )
        if series and (name is None or isinstance(name, str)):
            self.extra_metadata["series_name"] = name  # some formats do not keep it
        return path

    def load(self) -> Any:
        import pandas as pd

        self._prepare_hand_load()
        series = self.extra_metadata.get("kind") == "Series"
        reader = getattr(pd, _PANDAS_READERS.get(self.format, f"read_{self.format}"))
        args = dict(self.read_args)
        if series and self.format == "json":
            args.setdefault("typ", "series")
        result = reader(self.get_path(), **args)
        if series and isinstance(result, pd.DataFrame) and result.shape[1] == 1:
            result = result.iloc[:, 0]
        if series and isinstance(result, pd.Series) and "series_name" in self.extra_metadata:
            result.name = self.extra_metadata["series_name"]
        return result


class PandasCsvCacher(PandasCacher):
    """A pandas DataFrame as a ``.csv`` file (index kept in the first column)."""

    def __init__(
        self,
        path_override: str | None = None,
        to_csv_args: dict | None = None,
        read_csv_args: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            path_override,
            format="csv",
            to_args=to_csv_args if to_csv_args is not None else {},
            read_args=read_csv_args if read_csv_args is not None else {"index_col": 0},
            **kwargs,
        )


class PandasJsonCacher(PandasCacher):
    """A pandas DataFrame as a ``.json`` file (15 significant digits for floats)."""

    def __init__(
        self,
        path_override: str | None = None,
        to_json_args: dict | None = None,
        read_json_args: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            path_override,
            format="json",
            to_args=to_json_args if to_json_args is not None else {"double_precision": 15},
            read_args=read_json_args if read_json_args is not None else {},
            **kwargs,
        )


class PandasParquetCacher(PandasCacher):
    """A pandas DataFrame as a ``.parquet`` file: fast, compact, typed (needs pyarrow)."""

    def __init__(
        self,
        path_override: str | None = None,
        to_parquet_args: dict | None = None,
        read_parquet_args: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            path_override,
            format="parquet",
            to_args=to_parquet_args if to_parquet_args is not None else {},
            read_args=read_parquet_args if read_parquet_args is not None else {},
            **kwargs,
        )


class NumpyCacher(Cacheable):
    """A numpy array as a ``.npy`` file (no pickled objects: safe to load)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("extension", ".npy")
        super().__init__(*args, **kwargs)

    def save(self, obj: Any) -> str:
        import numpy as np

        if not isinstance(obj, np.ndarray):
            raise TypeError(f"NumpyCacher saves numpy arrays, not {type(obj).__name__}.")
        if obj.dtype.hasobject:
            raise TypeError(
                "NumpyCacher does not save arrays of Python objects (dtype=object); "
                "use PickleCacher for those."
            )
        if isinstance(obj, np.ma.MaskedArray):
            raise TypeError(
                "NumpyCacher does not save masked arrays: a .npy file has no place for the "
                "mask. Use PickleCacher, or return the data (.filled(...)) and the mask "
                "(np.ma.getmaskarray(a)) as two outputs."
            )
        path = self.get_path()
        with self.checksummed_file(path) as handle:
            if not _write_npy_from_memory(handle, obj):
                np.save(handle, obj, allow_pickle=False)
        return path

    def load(self) -> Any:
        self._prepare_hand_load()
        path = self.get_path()
        array = _read_npy_hashing(path, self._checksums)
        if array is None:  # a layout the one-pass reader leaves to numpy
            import numpy as np

            array = np.load(path, allow_pickle=False, max_header_size=self._header_limit(path))
        return array

    def _header_limit(self, path: str) -> int:
        """How long a header ``np.load`` may parse: numpy's default (10,000 bytes), or
        any length for a file that matches the checksum in its sidecar.

        numpy's limit guards against headers crafted to exhaust the parser; a file
        assay wrote and has just checked is not one, and an array with hundreds of
        named fields has a longer header than that.
        """
        names = {os.path.abspath(path)}
        if self._dir is not None:
            names.add(os.path.relpath(path, self._dir).replace(os.sep, "/"))
        for entry in (self.metadata or {}).get("files", []):
            if entry.get("path") in names:
                from assay.hashing import file_checksum

                checksum = file_checksum(path)
                if checksum == entry.get("checksum"):
                    # Checked here, so assay need not read the file a third time after.
                    self._checksums[os.path.abspath(path)] = (entry.get("size"), checksum)
                    return os.path.getsize(path)
        return _NUMPY_HEADER_LIMIT

    def _hashes_while_loading(self) -> bool:
        # Only this class's own load() qualifies: a subclass that redefines it could
        # run code from the file, so assay checks the file before calling that one.
        return type(self).load is NumpyCacher.load


class FileReferenceCacher(Cacheable):
    """For stages that write their own files: caches the *paths* they return.

    The stage writes files (usually under ``record.get_dir("plots")``) and
    returns a path or a list of paths; this cacher stores the list, and
    ``load()`` gives the path(s) back. The cached entry counts only while
    every referenced file still exists with the content it had.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("extension", ".json")
        super().__init__(*args, **kwargs)

    def save(self, files: str | os.PathLike | list) -> str:
        single = isinstance(files, (str, os.PathLike))
        paths = [str(files)] if single else [str(f) for f in files]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(f"the stage returned paths that do not exist: {missing}")
        with open(self.get_path(), "w") as handle:
            json.dump(paths[0] if single else paths, handle, indent=2)
        self.extra_metadata["referenced_files"] = paths
        return self.get_path()

    def load(self) -> str | list[str]:
        self._prepare_hand_load()
        with open(self.get_path()) as handle:
            paths = json.load(handle)
        folder = os.path.dirname(os.path.realpath(self.get_path()))
        if isinstance(paths, str):
            return _in_entry(paths, folder)
        return [_in_entry(p, folder) for p in paths]

    def check(self) -> bool:
        if not super().check():
            return False
        loaded = self.load()
        return all(os.path.exists(p) for p in ([loaded] if isinstance(loaded, str) else loaded))


def _in_entry(path: str, folder: str) -> str:
    """A referenced file that lay in its stage's cache folder (``record.get_dir``), found in
    ``folder``, the entry read now: an export's copy, or the project moved elsewhere."""
    marker = f"{os.sep}{os.path.basename(folder)}{os.sep}"
    if marker not in f"{os.sep}{path}" or os.path.realpath(path).startswith(folder + os.sep):
        return path  # elsewhere, or in this very entry: as the stage returned it
    return os.path.join(folder, f"{os.sep}{path}".split(marker, 1)[1])


class PathRef(Cacheable):
    """The artifact *is* a file or folder the stage writes at ``get_path()``.

    For tools that insist on writing files themselves (a model checkpoint
    folder, a database): inside the stage, ask for the path with
    ``record.get_path("checkpoint")`` (the name of the output), write there,
    and return that path. assay checksums the file or folder like any other
    artifact; ``load()`` returns the path.
    """

    writes_in_place = True
    """The stage writes the artifact straight into its cache folder."""

    def save(self, obj: Any) -> str:
        path = self.get_path()
        if os.path.abspath(str(obj)) != os.path.abspath(path):
            raise ValueError(
                f"the stage returned {obj!r}, but PathRef output {self.name!r} must be written "
                f"to, and returned as, {path} (ask for it with "
                f"record.get_path({os.path.basename(path)!r}), or with "
                "record.stage_cachers[i].get_path() for output number i)."
            )
        if not os.path.exists(path):
            raise FileNotFoundError(f"the stage did not write {path}")
        return path

    def load(self) -> str:
        return self.get_path()


class _ChecksummedFile:
    """A binary file being written whose size and xxh3-128 are kept as it goes."""

    def __init__(self, path: str, into: dict):
        self._file = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        self._hash = xxhash.xxh3_128()
        self._size = 0
        self._path = os.path.abspath(path)
        self._into = into

    def write(self, data: Any) -> int:
        self._hash.update(data)
        written = self._file.write(data)
        self._size += written
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _ChecksummedFile:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        self._file.close()
        if kind is None:
            self._into[self._path] = (self._size, self._hash.hexdigest())


def _write_npy_from_memory(handle: Any, array: Any, chunk: int = 8 * 2**20) -> bool:
    """Write the bytes ``np.save`` would, straight from the array's memory.

    ``np.save`` copies an array into new buffers, chunk by chunk, when the file
    is not a plain one (here it is hashed on the way). A contiguous array needs
    no copy. Returns ``False``, having written nothing, for what ``np.save``
    should write instead: a non-contiguous array, a dtype of size zero, or a
    header too long for format version 1.0.
    """
    from numpy.lib import format as npy

    if array.dtype.itemsize == 0:
        return False
    if array.flags.c_contiguous:
        data = array.reshape(-1)
    elif array.flags.f_contiguous:  # saved in Fortran order: the transpose is C-contiguous
        data = array.T.reshape(-1)
    else:
        return False
    try:
        npy.write_array_header_1_0(handle, npy.header_data_from_array_1_0(array))
    except ValueError:  # the header is written whole or not at all
        return False
    view = memoryview(data.view("u1"))
    for start in range(0, len(view), chunk):
        handle.write(view[start : start + chunk])
    return True


class _HashingReader:
    """A binary file being read whose bytes are hashed as they are handed out."""

    def __init__(self, handle: Any, digest: Any):
        self._handle, self._digest = handle, digest

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._digest.update(data)
        return data


_NUMPY_HEADER_LIMIT = 10_000
"""``np.load``'s default ``max_header_size``."""


def _read_npy_hashing(path: str, checksums: dict, chunk: int = 8 * 2**20) -> Any:
    """Read a ``.npy`` file in one pass, straight into the array's memory, hashing its
    bytes on the way into ``checksums`` (as ``_ChecksummedFile`` does when writing).

    Returns ``None``, having recorded nothing, for what ``np.load`` should read
    instead: a format version other than 1.0 and 2.0, a header longer than
    ``np.load`` parses by default or that does not parse, a dtype of size zero or
    one holding Python objects (which ``np.load`` refuses without
    ``allow_pickle``). A header that announces more or fewer bytes than the file
    holds raises ``ValueError`` before anything is allocated.
    """
    import math

    import numpy as np
    from numpy.lib import format as npy

    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        reader = _HashingReader(handle, digest)
        version = npy.read_magic(reader)
        read_header = {
            (1, 0): npy.read_array_header_1_0,
            (2, 0): npy.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            return None
        try:
            shape, fortran_order, dtype = read_header(reader, _NUMPY_HEADER_LIMIT)
        except ValueError:
            return None
        if dtype.hasobject or dtype.itemsize == 0:
            return None
        size = os.fstat(handle.fileno()).st_size
        nbytes = math.prod(shape) * dtype.itemsize
        if handle.tell() + nbytes != size:
            raise ValueError(
                f"the header of {path} announces {nbytes} bytes of data, "
                f"but the file holds {size - handle.tell()}"
            )
        data = np.empty(nbytes, dtype=np.uint8)
        view = memoryview(data)
        done = 0
        while done < nbytes:
            got = handle.readinto(view[done : done + chunk])
            if not got:
                raise ValueError(f"{path} ended after {done} of {nbytes} bytes of data")
            digest.update(view[done : done + got])
            done += got
    checksums[os.path.abspath(path)] = (size, digest.hexdigest())
    return data.view(dtype).reshape(shape, order="F" if fortran_order else "C")


def metadata_default(obj: Any) -> Any:
    """``json.dump``'s ``default`` for metadata (``extra_metadata``, sidecars): numpy
    numbers and arrays, sets and paths as JSON values (as :class:`JsonCacher` writes
    them), anything else as its text. A cacher's ``load()`` then reads the number it
    stored (``labels.max()``, an ``np.int64``), not ``"4"``."""
    try:
        return _json_default(obj)
    except TypeError:
        return str(obj)


def _json_default(obj: Any) -> Any:
    """Make numpy numbers and arrays, paths and sets JSON-able."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
