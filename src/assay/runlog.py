"""A run's log: everything the run printed and logged, kept in ``logs/RUN_ID.log``.

While a run executes, messages of Python's ``logging`` (assay's and the
researcher's own ``logging.info(...)``) and anything written to
``sys.stdout`` / ``sys.stderr`` (``print`` in a stage) also go to the log
file, with their console output left as it was. A console that goes away
(``assay run ... | head``) does not stop the run: the log keeps everything.
Nor does a log file that cannot be written (a full disk, a quota): the console
keeps everything, a warning names the log, which stops there, and the run's
record says that its log is incomplete. A stage that closes ``sys.stdout`` closes
neither the console nor the log.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from assay.humanize import printable

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

log = logging.getLogger(__name__)


class _ConsoleFormatter(logging.Formatter):
    """Console lines without tracebacks: those go to the log file (and show with --debug)."""

    def formatException(self, ei) -> str:  # noqa: N802 - logging's API
        return ""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_text
        record.exc_text = None
        try:
            # Names in messages may hold control characters: shown, not sent (ESC, BEL).
            return printable(super().format(record).rstrip())
        finally:
            record.exc_text = saved


def _not_for_console(record: logging.LogRecord) -> bool:
    """Messages the command line prints itself (marked ``extra={"console": False}``)."""
    return getattr(record, "console", True)


def _not_dasks(record: logging.LogRecord) -> bool:
    """Dask's own messages (a worker that died and is restarted, results it gathers
    again, a task given up): the run says in its own words what went wrong, and the
    log file keeps them (the console shows them with ``--verbose``)."""
    return record.name != "distributed" and not record.name.startswith("distributed.")


class _LogFile:
    """The run's log file, written so that a failure to write it (a full disk, a quota,
    the file removed from under the run) never fails a stage or the run.

    The first failure is said once, as a warning that names the file; nothing more is
    written to it after that, and as it is closed a last line marks it incomplete (if
    there is room for that by then).
    """

    def __init__(self, path: Path):
        self.path = path
        self.failure: OSError | None = None
        """Why the log could not be written (``None``: it was written in full)."""
        self._file: IO[str] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            self._fail(exc)

    def write(self, text: str) -> int:
        if self.failure is None and self._file is not None:
            try:
                self._file.write(text)
            except OSError as exc:
                self._fail(exc)
        return len(text)

    def flush(self) -> None:
        if self.failure is None and self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                self._fail(exc)

    def close(self) -> None:
        self.flush()
        if self._file is None:
            return
        if self.failure is not None:
            with suppress(OSError):
                self._file.write(
                    f"\n[assay] This log is incomplete: writing it failed "
                    f"({_reason(self.failure)}). The console showed the whole run.\n"
                )
        with suppress(OSError):  # what could not be written is lost; said already
            self._file.close()
        self._file = None  # a stream kept from the run writes nowhere now

    def incomplete(self) -> str | None:
        """What to record on the run if this log could not be written in full (else ``None``)."""
        if self.failure is None:
            return None
        return (
            f"The run's log {self.path} is incomplete: writing it failed ({_reason(self.failure)})."
        )

    def _fail(self, exc: OSError) -> None:
        self.failure = exc
        log.warning(
            "The run's log %s cannot be written (%s): it is incomplete from here on, and "
            "the console shows the run's whole output. The run goes on. Make room there, or "
            "set logs_dir in assay.toml (or ASSAY_LOGS_DIR) to a folder on another disk.",
            self.path,
            _reason(exc),
        )


def _reason(exc: OSError) -> str:
    """``No space left on device``: an operating system error without its number."""
    return exc.strerror or str(exc)


class _Tee:
    """A text stream that writes to the console and to the log file (``None``: none).

    If the console goes away mid-run (``assay run ... | head``, a pager quit
    early) the run goes on: the console's output is dropped from then on, and
    the log file still gets all of it.
    """

    def __init__(self, console: IO[str], log: _LogFile | None):
        self._console = console
        self._log = log
        self._console_gone = False

    def write(self, text: str) -> int:
        if self._log is not None:
            self._log.write(text)
        if not self._console_gone:
            try:
                self._console.write(text)
            except BrokenPipeError:
                self._lose_console()
        return len(text)

    def flush(self) -> None:
        if self._log is not None:
            self._log.flush()
        if not self._console_gone:
            try:
                self._console.flush()
            except BrokenPipeError:
                self._lose_console()

    def close(self) -> None:
        """Flush only: a stage that closes ``sys.stdout`` or ``sys.stderr`` must not close
        the console or the log, which the rest of the run still writes to."""
        self.flush()

    def _lose_console(self) -> None:
        self._console_gone = True
        silence(self._console)
        if self._log is not None:
            self._log.write(
                "\n[assay] The console's output was closed; the run goes on, and its output "
                "is in this log only.\n"
            )

    def __getattr__(self, name: str):
        return getattr(self._console, name)


def silence(stream: IO[str]) -> None:
    """Send whatever ``stream`` still writes to the null device: its reader went away.

    Its file descriptor is pointed at ``os.devnull``, so that nothing later (the
    next print, the flush at exit) meets the broken pipe again.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file: nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


@contextmanager
def run_log(path: Path | None, verbose: bool = False) -> Iterator[_LogFile | None]:
    """Copy the run's logging and console output into ``path`` (``None``: no file).

    assay's own per-stage messages are logged at DEBUG level; they reach the
    file (and the console) only with ``verbose``. Gives the log file, whose
    ``failure`` says, once the block is left, why it is incomplete (if it is).
    """
    assay_logger = logging.getLogger("assay")
    root = logging.getLogger()
    previous_levels = (assay_logger.level, root.level)
    assay_logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    handler = None
    console = None
    if not root.handlers:
        # Nobody configured logging (a script or notebook): show warnings on stderr.
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
        console.setFormatter(_ConsoleFormatter("%(levelname)s: %(message)s"))
        console.addFilter(_not_for_console)
        if not verbose:
            console.addFilter(_not_dasks)
        root.addHandler(console)
    stdout, stderr = sys.stdout, sys.stderr
    log_file = None
    if path is not None:
        log_file = _LogFile(path)
        handler = logging.StreamHandler(log_file)  # type: ignore[arg-type]
        handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
    sys.stdout = _Tee(stdout, log_file)
    sys.stderr = _Tee(stderr, log_file)
    try:
        yield log_file
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        if handler is not None:
            root.removeHandler(handler)
        if log_file is not None:
            log_file.close()  # before the console's handler goes: it may have a warning
        if console is not None:
            root.removeHandler(console)
        assay_logger.setLevel(previous_levels[0])
        root.setLevel(previous_levels[1])
