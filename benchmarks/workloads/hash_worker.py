"""Worker: hash a parameter set holding a big array or DataFrame, and time it.

``tool`` is ``assay`` (``assay.hashing.hash_value`` of an
``assay.ExperimentParameters``), ``joblib`` (``joblib.hash`` of an equal plain
dataclass, run in the Curifactory venv where joblib lives), or ``raw``
(xxh3-128 and sha256 of the bare buffer: the ceilings). Each case is
hashed ``reps`` times in this process; then one element is changed, and the
hash must change with it. Arguments (JSON): ``tool``, ``cases``
(``[{"kind": "array", "mb": 100}, ...]``), ``reps``.
"""

from __future__ import annotations

import dataclasses
import hashlib

from _common import Timer, arguments, emit, make_data


@dataclasses.dataclass
class PlainParams:
    """For joblib.hash: the same fields as assay's parameter set (joblib pickles the class)."""

    name: str = "big"
    data: object = None


def hasher(tool: str):
    if tool == "assay":
        import assay
        from assay.hashing import hash_value

        @dataclasses.dataclass
        class Params(assay.ExperimentParameters):
            data: object = None

        return lambda data: hash_value(Params(name="big", data=data))
    if tool == "joblib":
        import joblib

        return lambda data: joblib.hash(PlainParams(data=data))
    raise ValueError(tool)


def raw_hashers():
    import xxhash

    return {
        "xxh3_128": lambda data: xxhash.xxh3_128(_buffer(data)).hexdigest(),
        "sha256": lambda data: hashlib.sha256(_buffer(data)).hexdigest(),
    }


def _buffer(data):
    return memoryview(data if not hasattr(data, "to_numpy") else data.to_numpy()).cast("B")


def nbytes(data) -> int:
    if hasattr(data, "memory_usage"):
        return int(data.memory_usage(index=True, deep=True).sum())
    return int(data.nbytes)


def perturb(data) -> None:
    """Change one value in the middle, in place."""
    if hasattr(data, "iloc"):
        data.iloc[len(data) // 2, 0] += 1.0
    else:
        data[len(data) // 2] += 1.0


def main() -> None:
    args = arguments()
    functions = raw_hashers() if args["tool"] == "raw" else {args["tool"]: hasher(args["tool"])}
    results = []
    for case in args["cases"]:
        data = make_data(case["kind"], case["mb"])
        for label, function in functions.items():
            if case["kind"] == "frame" and label in ("xxh3_128", "sha256"):
                continue
            seconds, digests = [], set()
            for _ in range(args["reps"]):
                with Timer() as timed:
                    digests.add(function(data))
                seconds.append(timed.seconds)
            perturb(data)
            changed = function(data) not in digests
            results.append(
                {
                    **case,
                    "hasher": label,
                    "bytes": nbytes(data),
                    "seconds": seconds,
                    "correct": len(digests) == 1 and changed,
                }
            )
        del data
    emit({"results": results})


if __name__ == "__main__":
    main()
