"""A wheel of the assay that is installed here, for places that cannot download it.

A Docker image made by ``assay export docker`` must contain the very assay
that made the run, and assay may not be on a package index the image can
reach (a development checkout, an internal fork). :func:`build_wheel` packs
the installed ``assay`` package (editable or not) into a standard
``py3-none-any`` wheel with its recorded metadata and entry points, without
network, compiler or build backend::

    from assay.export.wheel import build_wheel
    path = build_wheel(Path("wheels"))   # wheels/assay-0.1.0-py3-none-any.whl

The wheel is reproducible: the same installed files give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

__all__ = ["build_wheel"]

_DATE = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same files give the same wheel
_WHEEL = "Wheel-Version: 1.0\nGenerator: assay-export\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def build_wheel(folder: Path, package: str = "assay") -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` of the installed ``package`` into ``folder``."""
    import importlib

    module = importlib.import_module(package)
    source = Path(module.__file__).parent
    dist = metadata.distribution(package)
    name = dist.metadata["Name"].replace("-", "_")
    version = dist.version
    info = f"{name}-{version}.dist-info"
    entries: list[tuple[str, bytes]] = []
    for path in sorted(source.rglob("*")):
        if (
            path.is_file()
            and "__pycache__" not in path.parts
            and path.suffix not in (".pyc", ".pyo")
        ):
            entries.append((f"{package}/{path.relative_to(source).as_posix()}", path.read_bytes()))
    entries.append((f"{info}/METADATA", (dist.read_text("METADATA") or "").encode()))
    entries.append((f"{info}/WHEEL", _WHEEL.encode()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode()))
    record = "".join(f"{path},sha256={_digest(data)},{len(data)}\n" for path, data in entries)
    record += f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode()))
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries:
            item = zipfile.ZipInfo(path, date_time=_DATE)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(item, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
