"""Races that made CI fail now and then, each made to happen every time it can.

Real files, real processes: another Python process replaces a cache entry while this one
checks or loads it, as another run (``--overwrite``, a notebook) does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import assay
from assay.cache import CacheStore
from assay.cache_admin import verify_all
from conftest import on_sys_path

KEY = "f" * 32

FOLDERS = """
from pathlib import Path
from assay.caching import Cacheable

class Many(Cacheable):  # a folder of many files: replacing it takes a while
    def save(self, obj):
        folder = Path(self.get_path())
        folder.mkdir()
        for i in range(300):
            (folder / f"part{i}.txt").write_text(str(obj))
        return str(folder)

    def load(self):
        return self.get_path()
"""

SAME_AGAIN = """
import sys
import time
from pathlib import Path
from assay.cache import CacheStore
from folders import Many

cache = CacheStore(sys.argv[1])
meta = {"experiment": "exp", "param_set": "a", "stage": "make"}  # no run: the same each time
times = 0
while not Path(sys.argv[2]).exists():  # a deterministic stage saved again and again
    cache.save(Many(name="df"), 0, key=sys.argv[3], output="df", meta=meta)
    cache.link("exp", "a", "make", sys.argv[3])
    times += 1
    time.sleep(0.02)  # (a run saves its outputs far apart)
print(times)
"""


def replacing_the_same_entry(root: Path, stop: Path) -> subprocess.Popen:
    """A process saving the same folder output again and again (until ``stop`` exists),
    with the cacher of module ``folders`` in the folder above ``root``."""
    (root.parent / "folders.py").write_text(FOLDERS)
    writer = subprocess.Popen(
        [sys.executable, "-c", SAME_AGAIN, str(root), str(stop), KEY],
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(root.parent), os.environ.get("PYTHONPATH")])
            ),
        },
    )
    while not (root / "by-name" / "exp" / "a" / "make").exists():
        assert writer.poll() is None, "the writer stopped before its first save"
        time.sleep(0.01)
    return writer


def stopped(writer: subprocess.Popen, stop: Path) -> int:
    """How many times ``writer`` saved the entry, once it stopped."""
    stop.touch()
    saved, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0
    return int(saved)


def test_verify_while_a_run_saves_the_same_folder_output_again_reports_nothing(tmp_path: Path):
    """A replacement's sidecar was the one it replaced, to the byte (same files, same
    second, no run id), so verify took the folder it had seen half removed for a damaged
    entry: the CI flake of ``test_verify_while_a_run_replaces_an_entry...``, whose writer
    saves first what the cache already holds."""
    root, stop = tmp_path / "cache", tmp_path / "stop"
    writer = replacing_the_same_entry(root, stop)
    failures = []
    try:
        for _ in range(30):
            checked = verify_all(CacheStore(root), True, without_record=[], unfinished=[])
            failures += [problem for _, problem in checked[1]]
    finally:
        saved = stopped(writer, stop)

    assert failures == [], f"{len(failures)} of 30 checks failed: {failures[:2]}"
    assert saved > 1
    assert verify_all(CacheStore(root), without_record=[]) == (1, [])


def test_load_while_a_run_saves_the_same_folder_output_again_gets_it(tmp_path: Path):
    """assay.load raised CorruptArtifactError ("... df does not match its recorded
    checksum") for an entry another process was saving again unchanged."""
    root, stop = tmp_path / "cache", tmp_path / "stop"
    writer = replacing_the_same_entry(root, stop)
    failures, loads = [], []
    try:
        with on_sys_path(tmp_path, "folders"):
            for _ in range(60):
                try:
                    loads.append(
                        assay.load(
                            "df",
                            param_set="a",
                            stage="make",
                            cache_dir=root,
                            project_root=tmp_path,
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - each failure is the finding
                    failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        saved = stopped(writer, stop)

    assert failures == [], f"{len(failures)} of 60 loads failed: {failures[:2]}"
    assert saved > 1 and set(loads) == {str(root / "objects" / KEY[:2] / KEY / "df")}


OTHER_RUNS = """
import os
import sys
import time
from pathlib import Path
from assay.cache import CacheStore
from assay.caching import PickleCacher
from folders import Many

cache = CacheStore(sys.argv[1])
times = 0
while not Path(sys.argv[2]).exists():  # runs that computed the entry too, each its own value
    cacher = Many(name="df") if sys.argv[4] == "folder" else PickleCacher(name="df")
    meta = {"experiment": "exp", "param_set": "a", "stage": "make", "run_id": f"run-{times}"}
    # Each found no entry when it began (a stage run they share), so none replaces one.
    cache.save(cacher, os.urandom(8).hex(), key=sys.argv[3], output="df", meta=meta,
               replace=times == 0)
    cache.link("exp", "a", "make", sys.argv[3])
    times += 1
    time.sleep(0.02)
print(times)
"""


def other_runs_saving(root: Path, stop: Path, kind: str) -> subprocess.Popen:
    """Runs saving, one after the other, their own value of the same entry (a ``kind``
    output: ``file`` or ``folder``) over the one before, until ``stop`` exists."""
    (root.parent / "folders.py").write_text(FOLDERS)
    path = os.pathsep.join(filter(None, [str(root.parent), os.environ.get("PYTHONPATH")]))
    writer = subprocess.Popen(
        [sys.executable, "-c", OTHER_RUNS, str(root), str(stop), KEY, kind],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    while not (root / "by-name" / "exp" / "a" / "make").exists():
        assert writer.poll() is None, "the writer stopped before its first save"
        time.sleep(0.01)
    return writer


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_load_while_other_runs_save_the_entry_they_computed_too_gets_it(tmp_path: Path, kind: str):
    """Two runs that computed the same stage run: the second saved its files over the
    first's, whose sidecar stayed until its own was renamed in. A load in between checked
    the new files against the old sidecar, read it again, found it unchanged and raised
    CorruptArtifactError (one load in four to six here)."""
    root, stop = tmp_path / "cache", tmp_path / "stop"
    writer = other_runs_saving(root, stop, kind)
    failures = []
    try:
        with on_sys_path(tmp_path, "folders"):
            for _ in range(60):
                try:
                    assay.load(
                        "df", param_set="a", stage="make", cache_dir=root, project_root=tmp_path
                    )
                except Exception as exc:  # noqa: BLE001 - each failure is the finding
                    failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        saved = stopped(writer, stop)

    assert failures == [], f"{len(failures)} of 60 loads failed: {failures[:2]}"
    assert saved > 1


def test_verify_while_other_runs_save_the_entry_they_computed_too_reports_nothing(
    tmp_path: Path,
):
    """verify --remove called the entry FAILED, as the load above, and removed it."""
    root, stop = tmp_path / "cache", tmp_path / "stop"
    writer = other_runs_saving(root, stop, "folder")
    failures = []
    try:
        for _ in range(30):
            checked = verify_all(CacheStore(root), True, without_record=[], unfinished=[])
            failures += [problem for _, problem in checked[1]]
    finally:
        saved = stopped(writer, stop)

    assert failures == [], f"{len(failures)} of 30 checks failed: {failures[:2]}"
    assert saved > 1
    assert verify_all(CacheStore(root), without_record=[]) == (1, [])
