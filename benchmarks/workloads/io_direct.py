"""Worker: write and read a big artifact with the library directly, no framework.

The reference for the big-artifact benchmark: ``pyarrow.parquet`` for a
DataFrame, ``np.save`` / ``np.load`` for an array, or ``pickle``. The write is
timed up to ``fdatasync`` (like ``dd conv=fdatasync``); the file's pages are
then dropped from the page cache, and the read is timed from disk.
Arguments (JSON): ``kind``, ``mb``, ``method`` (``pyarrow``, ``numpy``, ``pickle``).
"""

from __future__ import annotations

import os
import pickle

from _common import (
    Timer,
    arguments,
    emit,
    evict,
    make_data,
    make_durable,
    prefault,
    same_data,
)


def write(method: str, data, path: str) -> None:
    if method == "pyarrow":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(data), path)
    elif method == "numpy":
        import numpy as np

        with open(path, "wb") as handle:
            np.save(handle, data, allow_pickle=False)
    else:
        with open(path, "wb") as handle:
            pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)


def read(method: str, path: str):
    if method == "pyarrow":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pandas()
    if method == "numpy":
        import numpy as np

        return np.load(path, allow_pickle=False)
    with open(path, "rb") as handle:
        return pickle.load(handle)


def main() -> None:
    args = arguments()
    method = args["method"]
    data = make_data(args["kind"], args["mb"])
    write(method, data[:10], "warm-up")  # import the libraries before timing anything
    read(method, "warm-up")
    path = f"artifact.{method}"
    prefault(3 * args["mb"])
    with Timer() as written:
        write(method, data, path)
    with Timer() as synced:
        make_durable([path])
    evict([path])
    prefault(3 * args["mb"])
    with Timer() as loaded:
        back = read(method, path)
    emit(
        {
            "phases": {
                "write": {"seconds": written.seconds, "sync_s": synced.seconds, "correct": True},
                "read": {"seconds": loaded.seconds, "correct": same_data(back, data)},
            },
            "bytes": os.path.getsize(path),
        }
    )


if __name__ == "__main__":
    main()
