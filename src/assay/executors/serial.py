"""The serial executor: every stage run executes at once, in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from assay.executor import Executor


class SerialExecutor(Executor):
    """Run each submitted stage immediately in the calling process.

    ``KeyboardInterrupt`` and other non-``Exception`` errors propagate at
    once instead of being stored in the future, so Ctrl-C stops the run.
    """

    name = "serial"
    inline = True

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        return iter(futures)
