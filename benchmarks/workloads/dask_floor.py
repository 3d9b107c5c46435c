"""Worker: what Dask itself costs per task on this machine, without assay.

Starts an existing cluster as the parallel section does (``dask scheduler``
and ``dask worker`` processes, waited for before the timer), then times
connecting and running ``n`` trivial tasks with ``client.submit`` and one
``gather``. Arguments (JSON): ``n``, ``workers``.
"""

from __future__ import annotations

import os

from _common import DaskCluster, Timer, arguments, emit


def step(x: int) -> int:
    return x + 1


def main() -> None:
    args = arguments()
    n = args["n"]
    cluster = DaskCluster(args.get("workers", 2), os.getcwd())
    try:
        with Timer() as timed:
            from distributed import Client

            with Client(cluster.address) as client:
                futures = [client.submit(step, i, pure=False) for i in range(n)]
                results = client.gather(futures)
    finally:
        cluster.close()
    correct = results == [i + 1 for i in range(n)]
    emit({"phases": {"run": {"seconds": timed.seconds, "correct": correct}}})


if __name__ == "__main__":
    main()
