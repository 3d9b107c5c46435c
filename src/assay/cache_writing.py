"""Which stage runs a process is writing into a cache, for ``assay cache gc`` to leave alone.

Between a stage run's first saved output and the link that files it under its
name, its folder in the cache is one that no link points to, which is what gc
removes. So each process writing into a cache keeps one marker file there,
``writing/PID-RANDOM``, listing (one per line) the stage runs it has started
writing and not linked yet. gc reads the markers written to in the last hour
(:func:`keys_being_written`) and leaves those stage runs alone.

One file per process, opened once and then only appended to and emptied,
because creating and removing a file per stage run cost up to a few hundred
microseconds on a busy disk. A stage that writes into its folder itself (a
``PathRef`` output, ``record.get_path``) may do so for hours between the mark
and the link: while one does, a thread of its process touches the marker every
:data:`REFRESH_S` seconds. (Only then: a process that runs a thread no longer
forks its ``--parallel`` workers.) A marker is removed when its process exits
normally (``--parallel`` and Dask workers included); one a killed process left
behind stops counting an hour after it was last touched (and gc removes it then).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator

FOLDER = "writing"
"""The markers' folder, in the cache's root."""

_RANDOM = uuid.uuid4().hex[:8]
REFRESH_S = 600.0
"""How often (seconds) a marker that lists a stage run is touched while its process lives:
well within the hour after which gc takes a marker for one a stopped process left."""


class _Marker:
    """This process's marker in one cache."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = f"{folder}/{os.getpid()}-{_RANDOM}"
        self.keys: set[str] = set()
        self._fd: int | None = None

    def add(self, key: str) -> None:
        if key in self.keys:
            return
        os.write(self._open(), f"{key}\n".encode())
        self.keys.add(key)

    def discard(self, *keys: str) -> None:
        if self.keys.isdisjoint(keys):
            return
        self.keys.difference_update(keys)
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            if self.keys:  # rare: another stage run of this process is unfinished
                os.write(self._fd, "".join(f"{k}\n" for k in sorted(self.keys)).encode())

    def _open(self) -> int:
        """The marker's file, opened for appending (made again if gc removed it)."""
        if self._fd is not None:
            if os.fstat(self._fd).st_nlink:
                return self._fd
            os.close(self._fd)  # gc removed it while it was empty for an hour
            self._fd = None
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:  # the first marker of this cache
            os.makedirs(self.folder, exist_ok=True)
            fd = os.open(self.path, flags, 0o644)
        if self.keys:  # what was listed in a file gc removed
            os.write(fd, "".join(f"{k}\n" for k in sorted(self.keys)).encode())
        self._fd = fd
        return fd

    def touch(self) -> None:
        """Mark the file as written now (made again if gc removed it)."""
        with contextlib.suppress(OSError):
            self._open()
            os.utime(self.path)

    def close(self) -> None:
        """At exit: remove the file unless it lists a stage run left unfinished."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.close(self._fd)
            if not self.keys:
                os.unlink(self.path)
        self._fd = None


_markers: dict[str, _Marker] = {}
_lock = threading.Lock()
_lasting: set[tuple[str, str]] = set()
"""``(markers' folder, stage run)`` of the stages writing into their folders themselves."""
_refresher: tuple[threading.Thread, threading.Event] | None = None


def mark(root: str, key: str, lasting: bool = False) -> None:
    """Stage run ``key`` is being written into the cache at ``root`` by this process.

    ``lasting``: the stage itself writes into its folder, for as long as it runs;
    the marker is kept fresh meanwhile.

    Raises:
        OSError: the marker could not be written (a full disk); the save says so itself.
    """
    global _refresher
    folder = f"{root}/{FOLDER}"
    with _lock:
        marker = _markers.get(folder)
        if marker is None:
            marker = _markers[folder] = _Marker(folder)
        marker.add(key)
        if not lasting:
            return
        _lasting.add((folder, key))
        if _refresher is None:
            stop = threading.Event()
            thread = threading.Thread(
                target=_keep_fresh, args=(stop,), name="assay-cache-markers", daemon=True
            )
            thread.start()
            _refresher = (thread, stop)


def _keep_fresh(stop: threading.Event) -> None:
    """Touch every marker that lists a stage run, every :data:`REFRESH_S` seconds."""
    while not stop.wait(REFRESH_S):
        with _lock:
            for marker in _markers.values():
                if marker.keys:
                    marker.touch()


def unmark(root: str, key: str) -> None:
    """Stage run ``key`` is filed under its name now (or was never marked here). While a
    run holds what it made (:func:`held_for_the_run`), it stays listed until the run ends."""
    global _refresher
    folder, ended = f"{root}/{FOLDER}", None
    with _lock:
        marker = _markers.get(folder)
        if marker is not None and not _holding:
            marker.discard(key)
        _lasting.discard((folder, key))
        if _refresher is not None and not _lasting:
            ended, _refresher = _refresher, None
    if ended is not None:  # nothing left to keep fresh: the process is single-threaded again
        thread, stop = ended
        stop.set()
        thread.join()


def keeping_fresh() -> bool:
    """Whether a stage of this process is writing into its folder itself (see :func:`mark`)."""
    return bool(_lasting)


@contextlib.contextmanager
def held_for_the_run() -> Iterator[None]:
    """While a run goes on in this process: every stage run it makes stays listed in this
    process's markers until the run ends, not only until it is filed under its name.

    A link is no protection for the whole run: a later stage run of the same parameter
    set and stage (a ``make_copy`` branch), or a concurrent run of the same experiment,
    points the name elsewhere, and ``assay cache gc`` from another terminal then removed
    a folder the run had made and was still to read, or had reported as its result.
    What workers make for the run is listed here too (:func:`mark`, as their results
    arrive). Protection lasts while the run writes something at least hourly (or a stage
    writing into its folder runs: its marker is kept fresh).
    """
    global _holding
    with _lock:
        _holding += 1
    try:
        yield
    finally:
        with _lock:
            _holding -= 1
            if not _holding:
                for folder, marker in _markers.items():
                    marker.discard(*[k for k in marker.keys if (folder, k) not in _lasting])


_holding = 0
"""How many runs of this process hold what they make listed (see :func:`held_for_the_run`)."""


def holding() -> bool:
    """Whether a run of this process holds what it makes listed."""
    return _holding > 0


def keys_being_written(root: str, max_age_s: float, remove_older: bool = False) -> set[str]:
    """The stage runs that markers written to in the last ``max_age_s`` seconds list.

    ``remove_older``: remove the older markers (their processes stopped, or have
    written nothing for that long).
    """
    folder, now, found = f"{root}/{FOLDER}", time.time(), set()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        try:
            young = now - entry.stat(follow_symlinks=False).st_mtime <= max_age_s
        except OSError:
            continue  # its process exited meanwhile
        if not young:
            if remove_older:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            continue
        if "." in entry.name:  # an earlier assay's marker: KEY.PID-RANDOM, one per stage run
            found.add(entry.name.split(".", 1)[0])
            continue
        with (
            contextlib.suppress(OSError),
            open(entry.path, encoding="ascii", errors="replace") as f,
        ):
            found.update(line.strip() for line in f if line.strip())
    return found


def left_by(root: str, pid: int) -> list[tuple[str, list[str]]]:
    """The markers process ``pid`` (killed) left in the cache at ``root``, each with the
    stage runs it lists."""
    folder, found = f"{root}/{FOLDER}", []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(f"{pid}-")]
    except OSError:
        return found
    for entry in entries:
        with (
            contextlib.suppress(OSError),
            open(entry.path, encoding="ascii", errors="replace") as f,
        ):
            found.append((entry.path, [line.strip() for line in f if line.strip()]))
    return found


def close_at_worker_exit() -> None:
    """In a worker process (``--parallel``'s, a Dask nanny's): its exit skips ``atexit``,
    so have multiprocessing remove the markers as it ends the process."""
    global _worker_exit
    if not _worker_exit:
        import multiprocessing.util

        multiprocessing.util.Finalize(None, close_all, exitpriority=0)
        _worker_exit = True


_worker_exit = False


def _forget_parents() -> None:
    """In a forked child: the parent's markers are the parent's (their files stay open
    in the parent, and are closed here without being removed)."""
    global _lock, _worker_exit, _refresher, _holding
    _worker_exit = False  # a forked process starts without its parent's finalizers
    _refresher = None  # nor its threads
    _holding = 0  # nor its run (a worker forked while the run goes on)
    _lasting.clear()
    for marker in _markers.values():
        if marker._fd is not None:
            with contextlib.suppress(OSError):
                os.close(marker._fd)
    _markers.clear()
    _lock = threading.Lock()


def close_all() -> None:
    """Remove this process's markers that list nothing (at exit, see also
    :func:`close_at_worker_exit`)."""
    for marker in list(_markers.values()):
        marker.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parents)
atexit.register(close_all)
