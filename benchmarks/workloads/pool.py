"""Worker: the parallel benchmark's work without any framework.

``mode`` ``serial`` runs the N loops (of ``loops`` + index iterations, as the
shared experiment's stage does) one after the other; ``pool`` runs them on
``multiprocessing.Pool(processes)``: the limit a framework's parallel runner can
approach. ``dask`` runs them as ``client.submit`` tasks on an existing cluster of
``processes`` one-thread workers (started, and waited for, before the timer, as
for assay's ``--dask-address`` runs); the timer covers importing distributed and
connecting, as an assay run does: the limit of any Dask-based runner. Arguments
(JSON): ``mode``, ``n``, ``loops``, ``processes``, ``advised`` (the cluster has the
settings docs/scaling.md advises, ``_common.advised_dask_environment``).
"""

from __future__ import annotations

import multiprocessing
import os

from _common import DaskCluster, Timer, arguments, burn, burned, emit


def main() -> None:
    args = arguments()
    n, loops = args["n"], args["loops"]
    work = [loops + index for index in range(n)]
    if args["mode"] == "dask":
        cluster = DaskCluster(args["processes"], os.getcwd(), args.get("advised", False))
        try:
            with Timer() as timed:
                totals = on_dask(cluster.address, work)
        finally:
            cluster.close()
    else:
        with Timer() as timed:
            if args["mode"] == "pool":
                with multiprocessing.Pool(args["processes"]) as pool:
                    totals = pool.map(burn, work)
            else:
                totals = [burn(w) for w in work]
    correct = totals == [burned(w) for w in work]
    emit({"phases": {"run": {"seconds": timed.seconds, "correct": correct}}})


def on_dask(address: str, work: list[int]) -> list[int]:
    """``burn`` of each item as a task of its own on the cluster at ``address``."""
    from distributed import Client

    with Client(address) as client:
        return client.gather([client.submit(burn, w, pure=False) for w in work])


if __name__ == "__main__":
    main()
