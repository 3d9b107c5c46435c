"""Worker: the parallel benchmark's work without any framework.

``mode`` ``serial`` runs the N loops (of ``loops`` + index iterations, as the
shared experiment's stage does) one after the other; ``pool`` runs them on
``multiprocessing.Pool(processes)``: the limit a framework's parallel runner can
approach. Arguments (JSON): ``mode``, ``n``, ``loops``, ``processes``.
"""

from __future__ import annotations

import multiprocessing

from _common import Timer, arguments, burn, burned, emit


def main() -> None:
    args = arguments()
    n, loops = args["n"], args["loops"]
    work = [loops + index for index in range(n)]
    with Timer() as timed:
        if args["mode"] == "pool":
            with multiprocessing.Pool(args["processes"]) as pool:
                totals = pool.map(burn, work)
        else:
            totals = [burn(w) for w in work]
    correct = totals == [burned(w) for w in work]
    emit({"phases": {"run": {"seconds": timed.seconds, "correct": correct}}})


if __name__ == "__main__":
    main()
