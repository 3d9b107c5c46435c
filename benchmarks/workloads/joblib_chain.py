"""Worker: the overhead benchmark's 5-stage chain with ``joblib.Memory``, for N inputs.

The same five trivial steps as ``chain.py``, each a function cached by
``joblib.Memory`` in ``./joblib-cache``. A first run computes and writes every
call; a re-run (a new process, same folder) finds every call cached, but
joblib still loads each cached result, since it is what the call returns.
Arguments (JSON): ``n``.
"""

from __future__ import annotations

import joblib
from _common import Timer, arguments, emit
from joblib import _store_backends

executed = [0]
loads = [0]


def _count_loads() -> None:
    original = _store_backends.StoreBackendMixin.load_item

    def load_item(self, *args, **kwargs):
        loads[0] += 1
        return original(self, *args, **kwargs)

    _store_backends.StoreBackendMixin.load_item = load_item


def first(index):
    executed[0] += 1
    return index


def second(a):
    executed[0] += 1
    return a + 1


def third(b):
    executed[0] += 1
    return b + 1


def fourth(c):
    executed[0] += 1
    return c + 1


def fifth(d):
    executed[0] += 1
    return d + 1


def main() -> None:
    n = arguments()["n"]
    _count_loads()
    with Timer() as timed:
        memory = joblib.Memory("joblib-cache", verbose=0)
        steps = [memory.cache(f) for f in (first, second, third, fourth, fifth)]
        results = []
        for index in range(n):
            value = index
            for step in steps:
                value = step(value)
            results.append(value)
    correct = results == [i + 4 for i in range(n)]
    emit(
        {
            "phases": {
                "run": {
                    "seconds": timed.seconds,
                    "executed": executed[0],
                    "loads": loads[0],
                    "correct": correct,
                }
            }
        }
    )


if __name__ == "__main__":
    main()
