"""Files the dashboard may show, and previews that never run code.

Every path that comes from a request goes through :meth:`Folders.resolve`:
it must be relative, is joined to one of the folders the dashboard serves
(the cache, the reports, the logs), resolved with symlinks followed, and must
still be inside that folder; anything else is refused. Artifacts are found by
key (``<stage run key>.<output>``), checked against a strict pattern, and
their files are resolved the same way inside their stage folder.

Previews read only formats that cannot execute code: JSON, CSV / TSV and
Parquet (first rows), ``.npy`` / ``.npz`` (``allow_pickle=False``: shape,
dtype, summary statistics), images (shown by the browser, served with their
content type) and text. Pickles are listed but never opened.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.keys import is_artifact_key

LONGEST_OUTPUT = 200
"""The longest output name the dashboard accepts in an artifact key."""

PREVIEW_ROWS = 20
"""Rows of a table shown in a preview."""

TEXT_LIMIT = 64_000
"""Characters of a text (or JSON) file shown in a preview."""

JSON_LIMIT = 5_000_000
"""JSON files larger than this (bytes) are previewed as text, not parsed."""

ARRAY_STATS_LIMIT = 10_000_000
"""Arrays with more elements than this get statistics of their first elements only."""

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
TEXT_TYPES = {
    ".txt", ".log", ".md", ".rst", ".tex", ".py", ".yaml", ".yml", ".toml", ".ini", ".cfg",
    ".html", ".htm", ".xml", ".jsonl", ".out", ".err",
}  # fmt: skip
PICKLE_TYPES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".dill", ".cloudpickle"}
PICKLE_NOTE = "pickled Python object: not previewed, the dashboard never unpickles"

_SERVED_TYPES = {
    **IMAGE_TYPES,
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".tsv": "text/tab-separated-values; charset=utf-8",
    ".html": "text/plain; charset=utf-8",  # shown as text: a reportable page is served apart
}


_LONGEST_NAME = 255
"""Bytes in one file name on the usual file systems: longer ones cannot exist (and asking
the system about one is an error, not a "no")."""
_LONGEST_PATH = 4096


class Refused(Exception):
    """A path from a request that points outside the served folders (or is malformed)."""


@dataclass
class Folders:
    """The folders the dashboard serves files from, resolved once."""

    roots: dict[str, Path]
    """``{"cache": ..., "reports": ..., "logs": ...}``, each resolved."""

    @classmethod
    def of(cls, config: Any) -> Folders:
        """The cache, reports and logs folders of a project configuration."""
        return cls(
            {
                "cache": Path(config.cache_dir).resolve(),
                "reports": Path(config.reports_dir).resolve(),
                "logs": Path(config.logs_dir).resolve(),
            }
        )

    def resolve(self, root: str | Path, relative: str) -> Path:
        """``relative`` inside ``root`` (a name of :attr:`roots`, or a folder), or raise.

        Refuses absolute paths, NUL bytes, backslashes, and anything that ends
        up outside the folder once ``..`` and symlinks are resolved.
        """
        base = self.roots[root] if isinstance(root, str) else Path(root).resolve()
        text = str(relative)
        if not text or "\x00" in text or "\\" in text:
            raise Refused(f"not a usable path: {text!r}")
        candidate = Path(text)
        if candidate.is_absolute() or candidate.drive or text.startswith("~"):
            raise Refused(f"absolute paths are not served: {text!r}")
        if len(text) > _LONGEST_PATH or any(
            len(p.encode()) > _LONGEST_NAME for p in candidate.parts
        ):
            raise Refused(f"too long a path for any file here: {text[:40]!r}...")
        try:
            resolved = (base / candidate).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise Refused(f"cannot resolve {text!r}: {exc}") from exc
        if not resolved.is_relative_to(base):
            raise Refused(f"{text!r} is outside {base}")
        return resolved

    def inside(self, root: str | Path, relative: str) -> Path | None:
        """Like :meth:`resolve`, but ``None`` instead of :class:`Refused`: for the files the
        dashboard reads on its own (a run's log, progress file, ``run.json``, sidecars),
        which it shows as absent when a symlink takes them out of their folder."""
        try:
            return self.resolve(root, relative)
        except Refused:
            return None

    def artifact_dir(self, key: str) -> tuple[Path, str]:
        """The stage folder and output name of an artifact key, checked."""
        if not is_artifact_key(key or "", LONGEST_OUTPUT):
            raise Refused(f"not an artifact key: {key!r}")
        stage_key, _, output = key.partition(".")
        folder = self.resolve("cache", f"objects/{stage_key[:2]}/{stage_key}")
        return folder, output

    def artifact_meta(self, key: str) -> dict | None:
        """The sidecar of an artifact (``None`` if it is not in the cache)."""
        folder, output = self.artifact_dir(key)
        try:
            sidecar = self.resolve(folder, f"{output}.meta.json")
            return json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError, Refused):
            return None

    def artifact_file(self, key: str, name: str) -> Path:
        """One file an artifact's sidecar lists, inside its stage folder."""
        meta = self.artifact_meta(key)
        if meta is None:
            raise Refused(f"no artifact {key!r}")
        listed = {str(f.get("path")) for f in meta.get("files") or []}
        if name not in listed and not any(name.startswith(p.rstrip("/") + "/") for p in listed):
            raise Refused(f"{name!r} is not a file of artifact {key!r}")
        folder, _ = self.artifact_dir(key)
        return self.resolve(folder, name)


def served_type(path: Path) -> str:
    """The content type a file is served with (text for anything that is not an image/data)."""
    suffix = path.suffix.lower()
    if suffix in _SERVED_TYPES:
        return _SERVED_TYPES[suffix]
    if suffix in TEXT_TYPES:
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


# -- previews -----------------------------------------------------------------------------


@dataclass
class Preview:
    """What the dashboard shows of one file (every string is escaped by the template)."""

    kind: str
    """``json``, ``table``, ``array``, ``image``, ``text``, ``pickle``, ``folder``,
    ``binary``, ``missing`` or ``error``."""
    name: str
    """The file's name (relative to its stage folder)."""
    size: int | None = None
    """Its size in bytes."""
    text: str | None = None
    """Text to show (JSON pretty-printed, text files), possibly cut."""
    truncated: bool = False
    """Whether ``text`` or ``rows`` were cut."""
    columns: list[str] = field(default_factory=list)
    """A table's column names."""
    rows: list[list[str]] = field(default_factory=list)
    """A table's first rows, as text."""
    total_rows: int | None = None
    """How many rows the table has, if known without reading it all."""
    facts: list[tuple[str, str]] = field(default_factory=list)
    """Label/value pairs: an array's shape, dtype and statistics."""
    note: str | None = None
    """A sentence explaining what is (not) shown."""
    image_type: str | None = None
    """For an image: its content type."""


def preview(path: Path, name: str) -> Preview:
    """A safe preview of ``path`` (already resolved inside a served folder)."""
    if not path.exists():
        return Preview("missing", name, note="The file is no longer there.")
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir())[:200]
        return Preview("folder", name, text="\n".join(entries), note="A folder: its entries.")
    size = path.stat().st_size
    suffix = path.suffix.lower()
    try:
        if suffix in PICKLE_TYPES:
            return Preview("pickle", name, size, note=f"{PICKLE_NOTE}.")
        if suffix in IMAGE_TYPES:
            return Preview("image", name, size, image_type=IMAGE_TYPES[suffix])
        if suffix == ".json":
            return _json_preview(path, name, size)
        if suffix in (".csv", ".tsv"):
            return _csv_preview(path, name, size, "\t" if suffix == ".tsv" else ",")
        if suffix in (".parquet", ".pq"):
            return _parquet_preview(path, name, size)
        if suffix in (".npy", ".npz"):
            return _numpy_preview(path, name, size)
        if suffix in TEXT_TYPES:
            return _text_preview(path, name, size)
    except Exception as exc:  # a damaged or unexpected file: say so, do not fail the page
        return Preview(
            "error", name, size, note=f"Could not preview it: {type(exc).__name__}: {exc}"
        )
    return Preview("binary", name, size, note="No preview for this kind of file.")


def _read_text(path: Path) -> tuple[str, bool]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read(TEXT_LIMIT + 1)
    return text[:TEXT_LIMIT], len(text) > TEXT_LIMIT


def _text_preview(path: Path, name: str, size: int) -> Preview:
    text, cut = _read_text(path)
    return Preview("text", name, size, text=text, truncated=cut)


def _json_preview(path: Path, name: str, size: int) -> Preview:
    if size > JSON_LIMIT:
        text, cut = _read_text(path)
        return Preview("text", name, size, text=text, truncated=cut, note="Large: shown as text.")
    data = json.loads(path.read_text(encoding="utf-8"))
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return Preview("json", name, size, text=text[:TEXT_LIMIT], truncated=len(text) > TEXT_LIMIT)


def _csv_preview(path: Path, name: str, size: int, delimiter: str) -> Preview:
    rows: list[list[str]] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, [])
        for row in reader:
            if len(rows) == PREVIEW_ROWS:
                return Preview("table", name, size, columns=header, rows=rows, truncated=True)
            rows.append([cell[:200] for cell in row])
    return Preview("table", name, size, columns=header, rows=rows, total_rows=len(rows))


def _parquet_preview(path: Path, name: str, size: int) -> Preview:
    import pyarrow.parquet as pq

    table_file = pq.ParquetFile(path)
    batch = next(table_file.iter_batches(batch_size=PREVIEW_ROWS), None)
    columns = [str(c) for c in table_file.schema_arrow.names]
    rows = []
    if batch is not None:
        data = batch.to_pydict()
        rows = [[_cell(data[c][i]) for c in data] for i in range(batch.num_rows)]
    total = table_file.metadata.num_rows
    return Preview(
        "table", name, size, columns=columns, rows=rows, total_rows=total,
        truncated=total > len(rows),
    )  # fmt: skip


def _numpy_preview(path: Path, name: str, size: int) -> Preview:
    import numpy as np

    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                facts = []
                for member in archive.files[:50]:
                    array = archive[member]
                    facts.append((member, f"shape {array.shape}, dtype {array.dtype}"))
            return Preview("array", name, size, facts=facts, note="Arrays in the archive.")
        if _has_objects(path):
            return Preview("pickle", name, size, note=f"An array of Python objects: {PICKLE_NOTE}.")
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            return Preview("pickle", name, size, note=f"An array of Python objects: {PICKLE_NOTE}.")
        raise
    facts = [("shape", str(tuple(array.shape))), ("dtype", str(array.dtype)),
             ("elements", f"{array.size:,}")]  # fmt: skip
    flat = array.reshape(-1)
    note = None
    if flat.size > ARRAY_STATS_LIMIT:
        flat = flat[:ARRAY_STATS_LIMIT]
        note = f"Statistics of the first {ARRAY_STATS_LIMIT:,} elements."
    if flat.size and (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        values = np.asarray(flat, dtype=np.float64)
        finite = values[np.isfinite(values)]
        facts.append(("non-finite", f"{values.size - finite.size:,}"))
        if finite.size:
            for label, value in (("min", finite.min()), ("max", finite.max()),
                                 ("mean", finite.mean()), ("std", finite.std())):  # fmt: skip
                facts.append((label, _number(value)))
    first = np.asarray(array.reshape(-1)[:20]).tolist()
    facts.append(("first values", ", ".join(_cell(v) for v in first)))
    return Preview("array", name, size, facts=facts, note=note)


def _has_objects(path: Path) -> bool:
    """Whether a ``.npy`` file holds Python objects (read from its header alone)."""
    from numpy.lib import format as npy

    with open(path, "rb") as handle:
        version = npy.read_magic(handle)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        _, _, dtype = read(handle)
    return bool(dtype.hasobject)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _number(value: Any) -> str:
    value = float(value)
    return str(value) if not math.isfinite(value) else f"{value:.6g}"
