"""What a stage prints and logs on a ``--parallel`` worker, kept in a file as it goes.

A worker sends what its stage printed and logged back with the stage's result, for
the run to show and log (:func:`assay.remote.replay`). A worker that dies mid-stage
(killed, out of memory, a crash in C code) sends nothing back: the lines that would
have told the researcher how far the stage got were lost with it; and what the
processes a stage forks printed (a ``multiprocessing`` pool's) never reached the
worker's result. So a worker of this machine, and the processes its stage forks, also
append each piece to a file of the stage run's as it is written (:class:`OutputFile`);
the run reads it (:func:`read`) and replays it, instead of the result's.

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

    Printed text goes in line by line (what follows the last newline, or carriage
    return, waits for the next one, a ``flush()``, or the stage's end), log lines one
    by one, each with one ``write`` call on an unbuffered file: once written, it is in
    the file (the operating system's, whatever happens to this process).
    """

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = 0
        """The bytes this process wrote (beyond them: the processes the stage forked)."""
        self.complete = True
        """Whether every entry so far was written (a full disk: not)."""
        self._pending: list[str] = []
        self._pending_kind = ""
        self._by_line = True

    def add(self, kind: str, item: Any) -> None:
        """Append ``item``: text for ``"stdout"`` and ``"stderr"``, a log line for ``"log"``."""
        if kind != self._pending_kind:
            self.flush()
            self._pending_kind = kind
        if kind == "log":
            self._write(_LOG, pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
            return
        self._pending.append(item)
        if not self._by_line or "\n" in item or "\r" in item:  # \r: a progress bar's line
            self.flush()

    def flush(self) -> None:
        """Write the text that waits for a newline."""
        if self._pending:
            text, self._pending = "".join(self._pending), []
            self._write(_KINDS[self._pending_kind], text.encode("utf-8", "surrogatepass"))

    def mark_stopped(self) -> None:
        """Note that the run stopped this worker (SIGTERM), which did not die by itself."""
        self.flush()
        self._write(_STOPPED, b"")

    def mark_done(self) -> None:
        """Note that the stage run is over and its result ready to be sent back, and
        whether the file holds all it printed and logged."""
        self.flush()
        self._write(_DONE, b"" if self.complete else b"incomplete")

    def forked(self) -> None:
        """In a process the stage forked, as it starts: the text the worker had not
        written yet is the worker's to write; this one's is written as it comes (a
        pool's process is ended by SIGTERM, which leaves no time to write what waits
        for a newline)."""
        self._pending, self._pending_kind, self.size = [], "", 0
        self._by_line = False

    def others_wrote(self) -> bool:
        """Whether processes the stage forked wrote to the file too (what they printed
        is not in the worker's result)."""
        try:
            return os.fstat(self.fd).st_size != self.size
        except OSError:
            return False

    def close(self) -> None:
        """Close the file (what waits for a newline is left out: see :meth:`mark_done`)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def _write(self, kind: bytes, payload: bytes) -> None:
        try:
            entry = _HEADER.pack(kind, len(payload)) + payload
            written = os.write(self.fd, entry)
            self.size += written
            if written == len(entry):
                return
        except (OSError, struct.error):  # a full disk (or 4 GB at once) must not fail the stage
            pass
        self.complete = False


_current: OutputFile | None = None
"""The output file of the stage run this worker runs now, if it has one."""


@contextlib.contextmanager
def kept_in(path: str | None):
    """Worker side: the output file at ``path`` while in the block, where :func:`stopped`
    marks it (``None``: no file, for workers of other machines)."""
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


def _forked() -> None:
    """In a process forked while a stage runs (see :meth:`OutputFile.forked`)."""
    if _current is not None:
        _current.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


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
    complete: bool = False
    """Whether the stage run was over and the file holds all it printed and logged,
    the processes it forked included (their output is not in the worker's result)."""

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
    pieces: list[list] = []  # [kind, [item, ...]]: a stream's pieces joined once, at the end
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
            written.done, written.complete = True, not payload
        elif kind == _LOG:
            try:
                pieces.append(["log", [pickle.loads(payload)]])
            except Exception:  # cut short by a write that failed: the rest is unreadable
                break
        elif kind in (_STDOUT, _STDERR):
            stream = "stderr" if kind == _STDERR else "stdout"
            try:
                text = payload.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                break
            if pieces and pieces[-1][0] == stream:
                pieces[-1][1].append(text)
            else:
                pieces.append([stream, [text]])
        else:
            break
    written.events = [
        (kind, items[0] if kind == "log" else "".join(items)) for kind, items in pieces
    ]
    return written


class OutputFolder:
    """Main process: the run's temporary folder of output files, one per stage run sent
    to a worker (made when the first is needed, removed by :meth:`remove`)."""

    def __init__(self) -> None:
        self.folder: str | None = None
        self.count = 0
        self.paths: dict[int, str] = {}
        """The output file of each stage run sent and not back yet, by ``id()``."""

    def path_for(self, node: Any) -> str | None:
        """The path of stage run ``node``'s output file (its worker creates the file);
        ``None`` if the temporary folder cannot be made (the result still brings back
        what the stage printed and logged)."""
        if self.folder is None:
            try:
                self.folder = tempfile.mkdtemp(prefix="assay-worker-output-")
            except OSError:
                return None
        self.count += 1
        path = self.paths[id(node)] = os.path.join(self.folder, f"{self.count}.out")
        return path

    def left(self, node: Any, read_it: bool = True) -> Written | None:
        """What ``node``'s worker wrote of its output (its result came back, or never
        will); ``None`` if no worker started it (or it did not run on this machine), or
        not ``read_it``. The file is removed."""
        path = self.paths.pop(id(node), None)
        written = read(path) if path is not None and read_it else None
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
