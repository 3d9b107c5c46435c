"""Worker: assay's artifact checksum (``assay.hashing.file_checksum``) on a big file.

Times it once with the file's pages dropped from the page cache (so the disk
is read too), then ``reps`` times from the page cache (the hash alone).
Arguments (JSON): ``path``, ``reps``.
"""

from __future__ import annotations

import os

from _common import Timer, arguments, emit, evict

from assay.hashing import file_checksum


def main() -> None:
    args = arguments()
    path = args["path"]
    evict([path])
    with Timer() as cold:
        digest = file_checksum(path)
    hot = []
    for _ in range(args["reps"]):
        with Timer() as timed:
            again = file_checksum(path)
        hot.append(timed.seconds)
    emit(
        {
            "bytes": os.path.getsize(path),
            "cold_s": cold.seconds,
            "hot_s": hot,
            "correct": again == digest,
        }
    )


if __name__ == "__main__":
    main()
