"""NumpyCacher moves bytes between the array's memory and the file without copies.

It writes exactly what ``np.save`` writes, straight from the array's memory,
hashing on the way. Loading reads the file once, into the array, hashing it on
the way. Other cachers' files are read twice: checked against their recorded
checksum, then loaded. A ``.npy`` file loaded without pickle runs no code from
its bytes, so ``NumpyCacher`` checks as it reads and the value is handed out
only once the checksum matched: the same guarantee for half the reading.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import assay
from assay.caching import NumpyCacher
from assay.errors import CacheError, CorruptArtifactError


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 0


ARRAYS = {
    "float, 3-d": np.arange(24.0).reshape(2, 3, 4),
    "Fortran order": np.asfortranarray(np.arange(24, dtype=np.int16).reshape(4, 6)),
    "big-endian": np.arange(10, dtype=">i4"),
    "structured": np.array([(1, 2.5), (3, -1.0)], dtype=[("a", "<i2"), ("b", "<f8")]),
    "0-d": np.array(3.5),
    "empty": np.empty((0, 5)),
    "unicode": np.array(["ab", "cdé"]),
    "complex": np.array([1 + 2j, -3.5j]),
    "bool": np.array([[True, False], [False, True]]),
}


def _stage(value, produced: list[str], cacher=NumpyCacher):
    @assay.stage(outputs=["array"], cachers=[cacher])
    def make(record):
        produced.append(record.name)
        return value

    return make


def _cache(root: Path, value, cacher=NumpyCacher) -> Path:
    """Run the stage once; the path of the ``.npy`` file it cached."""
    manager = assay.ArtifactManager("arrays", project_root=root)
    _stage(value, [], cacher)(assay.Record(manager, Params(name="p")))
    return manager.cache.stage_dir(manager.plan.nodes[0].key) / "array.npy"


def _load(root: Path, value, cacher=NumpyCacher):
    """A second run of the stage, which reuses its artifact: the loaded value."""
    produced: list[str] = []
    manager = assay.ArtifactManager("arrays", project_root=root)
    record = _stage(value, produced, cacher)(assay.Record(manager, Params(name="p")))
    loaded = record.state["array"]
    return loaded, produced


def _bytes_read() -> int:
    """Bytes this process has read through system calls so far (page cache included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


LONG_HEADER = pytest.param(
    np.zeros(3, dtype=[(f"field_{i}", "<f4") for i in range(3000)]),
    id="header too long for format 1.0",
    marks=pytest.mark.filterwarnings("ignore:Stored array in format 2.0"),
)


@pytest.mark.parametrize(
    "value", [*(pytest.param(value, id=name) for name, value in ARRAYS.items()), LONG_HEADER]
)
def test_the_array_loads_as_numpy_loads_it(value, tmp_project: Path):
    file = _cache(tmp_project, value)

    loaded, produced = _load(tmp_project, value)

    assert produced == [], "the artifact was reused, not recomputed"
    expected = np.load(file, allow_pickle=False, max_header_size=file.stat().st_size)
    assert loaded.dtype == expected.dtype and loaded.shape == expected.shape
    assert loaded.flags.c_contiguous == expected.flags.c_contiguous
    assert loaded.flags.f_contiguous == expected.flags.f_contiguous
    assert loaded.flags.writeable
    assert loaded.tobytes(order="A") == expected.tobytes(order="A")
    assert pickle.loads(pickle.dumps(loaded)).tolist() == value.tolist()


WRITTEN = [
    *(pytest.param(value, id=name) for name, value in ARRAYS.items()),
    pytest.param(np.arange(40.0).reshape(5, 8)[::2, 1::3], id="not contiguous"),
    pytest.param(np.arange(6.0).reshape(1, 6), id="C and Fortran order"),
    LONG_HEADER,
]


@pytest.mark.parametrize("value", WRITTEN)
def test_the_file_holds_what_numpy_save_writes(value, tmp_project: Path):
    file = _cache(tmp_project, value)

    expected = io.BytesIO()
    np.save(expected, value, allow_pickle=False)
    assert file.read_bytes() == expected.getvalue()


class _RedefinedLoad(NumpyCacher):
    """A user's subclass with a load() of its own: assay cannot know what it runs."""

    calls: list[bytes] = []
    """The bytes of the file each call of load() was given."""

    def load(self):
        _RedefinedLoad.calls.append(Path(self.get_path()).read_bytes())
        return np.load(self.get_path(), allow_pickle=False)


@pytest.mark.parametrize(
    "value, said",
    [
        pytest.param(np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]), "masked arrays", id="masked"),
        pytest.param(np.array([{}, []], dtype=object), "dtype=object", id="objects"),
        pytest.param([1, 2], "not list", id="a list"),
    ],
)
def test_what_a_npy_file_cannot_hold_is_refused_with_the_way_out(
    value, said: str, tmp_project: Path
):
    """A masked array failed with "cannot reshape array of size 3 into shape (24,)"."""
    with pytest.raises(CacheError, match="Could not save output 'array'") as caught:
        _cache(tmp_project, value)
    assert said in str(caught.value), caught.value
    assert not list((tmp_project / "data" / "cache").rglob("*.npy"))  # nothing half-written


def test_a_numpy_artifact_is_read_once_and_other_loaders_twice(tmp_project: Path):
    value = np.arange(8 * 2**20, dtype=np.float64)  # 64 MB
    _cache(tmp_project, value)
    before = _bytes_read()
    loaded, _ = _load(tmp_project, value)
    one_pass = _bytes_read() - before
    assert np.array_equal(loaded, value)

    # The same file through a loader assay must check first.
    _cache(tmp_project / "other", value, _RedefinedLoad)
    before = _bytes_read()
    loaded, _ = _load(tmp_project / "other", value, _RedefinedLoad)
    two_passes = _bytes_read() - before
    assert np.array_equal(loaded, value)

    assert value.nbytes <= one_pass < 1.2 * value.nbytes
    assert two_passes >= 2 * value.nbytes


def _edit_data(file: Path) -> None:
    """Change one byte of the array's data, keeping the file's size."""
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))


def _announce_more_data(file: Path) -> None:
    """Make the header claim a 100x longer array, keeping the file's size."""
    data = file.read_bytes()
    assert b"(1000,), }" in data
    file.write_bytes(data.replace(b"(1000,), }", b"(100000,)}", 1))


def _break_magic(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(b"XXXXXX" + data[6:])


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-100])


@pytest.mark.parametrize(
    "damage, problem",
    [
        (_edit_data, "does not match its recorded checksum"),
        (_announce_more_data, "does not match its recorded checksum"),
        (_break_magic, "does not match its recorded checksum"),
        (_truncate, "bytes instead of"),
    ],
    ids=["data edited", "header announces more data", "not an npy file", "truncated"],
)
def test_a_damaged_numpy_file_is_refused_and_recomputed(
    damage, problem: str, tmp_project: Path, caplog
):
    value = np.arange(1000, dtype=np.int64)
    file = _cache(tmp_project, value)
    original = file.read_bytes()
    damage(file)
    assert file.read_bytes() != original

    with pytest.raises(CorruptArtifactError, match=problem):
        assay.load("array", project_root=tmp_project)

    loaded, produced = _load(tmp_project, value)
    assert produced == ["p"], "the damaged artifact was computed again"
    assert np.array_equal(loaded, value)
    assert file.read_bytes() == original
    assert any(problem in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.filterwarnings("ignore:Stored array in format 2.0")
def test_a_damaged_file_with_a_long_header_is_refused(tmp_project: Path):
    value = LONG_HEADER.values[0]
    file = _cache(tmp_project, value)
    _edit_data(file)

    with pytest.raises(CorruptArtifactError, match="does not match its recorded checksum"):
        assay.load("array", project_root=tmp_project)


def test_a_redefined_load_never_sees_a_damaged_file(tmp_project: Path):
    value = np.arange(1000, dtype=np.int64)
    file = _cache(tmp_project, value, _RedefinedLoad)
    original = file.read_bytes()
    _edit_data(file)
    _RedefinedLoad.calls.clear()

    with pytest.raises(CorruptArtifactError, match="does not match its recorded checksum"):
        assay.load("array", project_root=tmp_project)

    loaded, produced = _load(tmp_project, value, _RedefinedLoad)
    assert produced == ["p"]
    assert np.array_equal(loaded, value)  # the recomputed file, read back
    assert _RedefinedLoad.calls == [original], "load() was called on the damaged file"
