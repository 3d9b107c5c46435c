"""What a stage prints and logs on a ``--parallel`` worker, kept in a file as it goes.

A worker sends what its stage printed and logged back with the stage's result, for
the run to show and log (:func:`assay.remote.replay`). A worker that dies mid-stage
(killed, out of memory, a crash in C code) sends nothing back: the lines that would
have told the researcher how far the stage got were lost with it. So a worker of this
machine also appends each piece to a file of its own as it is written
(:class:`OutputFile`); the run reads the files of the stage runs that never came back
(:func:`read`) and replays them.

The same file tells which stage runs a lost worker was running: one whose file exists
was started by a worker; one whose file ends with the :func:`stopped` mark was stopped
by the run (a process pool stops every worker when one of them dies), not lost.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Any

_HEADER = struct.Struct("<cI")
"""Each entry: its kind (one byte), the length of its payload, then the payload."""
_STDOUT, _STDERR, _LOG, _STOPPED, _DONE = b"o", b"e", b"l", b"s", b"d"
_KINDS = {"stdout": _STDOUT, "stderr": _STDERR, "log": _LOG}


class OutputFile:
    """Worker side: the file one stage run's output is appended to, entry by entry.

    Each entry is written with one ``write`` call on an unbuffered file, so it is in
    the file (the operating system's, whatever happens to this process) once written.
    """

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def add(self, kind: str, item: Any) -> None:
        """Append ``item``: text for ``"stdout"`` and ``"stderr"``, a log line for ``"log"``."""
        if kind == "log":
            payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            payload = item.encode("utf-8", "surrogatepass")
        self._write(_KINDS[kind], payload)

    def mark_stopped(self) -> None:
        """Note that the run stopped this worker (SIGTERM), which did not die by itself."""
        self._write(_STOPPED, b"")

    def mark_done(self) -> None:
        """Note that the stage run is over and its result ready to be sent back."""
        self._write(_DONE, b"")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def _write(self, kind: bytes, payload: bytes) -> None:
        with contextlib.suppress(OSError):  # a full disk must not fail the stage
            os.write(self.fd, _HEADER.pack(kind, len(payload)) + payload)


_current: OutputFile | None = None
"""The output file of the stage run this worker runs now, if it has one."""


@contextlib.contextmanager
def kept_in(path: str | None):
    """Worker side: while in the block, :func:`current` is the output file at ``path``
    (``None``: no file, for workers of other machines)."""
    global _current
    if path is None:
        yield None
        return
    try:
        output = OutputFile(path)
    except OSError:  # the run's temporary folder is gone: the result still carries it all
        yield None
        return
    _current = output
    try:
        yield output
    finally:
        _current = None
        output.close()


def stopped() -> None:
    """Worker side, as the run's SIGTERM ends it: mark the stage run it was running as
    stopped by the run (see the module documentation)."""
    if _current is not None:
        _current.mark_stopped()


@dataclass
class Written:
    """What a worker wrote to one stage run's output file."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    """As :attr:`assay.remote.StageResult.events`: ``("stdout", text)``, ``("stderr",
    text)``, ``("log", LogLine)``, in order."""
    stopped: bool = False
    """Whether the run stopped the worker (see :func:`stopped`)."""
    done: bool = False
    """Whether the stage run was over, its result ready to be sent back."""

    @property
    def lost(self) -> bool:
        """Whether the worker died while it ran the stage run: neither finished it nor
        was stopped by the run."""
        return not (self.stopped or self.done)


def read(path: str) -> Written | None:
    """Main process: what the output file at ``path`` holds; ``None`` if there is none
    (no worker started the stage run). An entry cut short by the worker's death is left
    out."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return None
    written = Written()
    at = 0
    while at + _HEADER.size <= len(data):
        kind, size = _HEADER.unpack_from(data, at)
        payload = data[at + _HEADER.size : at + _HEADER.size + size]
        if len(payload) < size:
            break
        at += _HEADER.size + size
        if kind == _STOPPED:
            written.stopped = True
        elif kind == _DONE:
            written.done = True
        elif kind == _LOG:
            try:
                written.events.append(("log", pickle.loads(payload)))
            except Exception:
                break
        else:
            stream = "stderr" if kind == _STDERR else "stdout"
            text = payload.decode("utf-8", "surrogatepass")
            if written.events and written.events[-1][0] == stream:
                written.events[-1] = (stream, written.events[-1][1] + text)
            else:
                written.events.append((stream, text))
    return written


class OutputFolder:
    """Main process: the run's temporary folder of output files, one per stage run sent
    to a worker (made when the first is needed, removed by :meth:`remove`)."""

    def __init__(self) -> None:
        self.folder: str | None = None
        self.count = 0
        self.paths: dict[int, str] = {}
        """The output file of each stage run sent and not back yet, by ``id()``."""

    def path_for(self, node: Any) -> str:
        """The path of stage run ``node``'s output file (its worker creates the file)."""
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="assay-worker-output-")
        self.count += 1
        path = self.paths[id(node)] = os.path.join(self.folder, f"{self.count}.out")
        return path

    def came_back(self, node: Any) -> None:
        """``node``'s result came back, with its output: its file is not needed."""
        _discard(self.paths.pop(id(node), None))

    def left(self, node: Any) -> Written | None:
        """What ``node``'s worker wrote of its output, for a stage run that did not come
        back; ``None`` if no worker started it (or it did not run on this machine).
        Read once: the file is removed."""
        path = self.paths.pop(id(node), None)
        if path is None:
            return None
        written = read(path)
        _discard(path)
        return written

    def remove(self) -> None:
        """Remove the folder and the files in it."""
        self.paths.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def _discard(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)
