"""What fingerprinting a stage's code costs on a project of about 100 modules.

::

    .venv/bin/python -m benchmarks.fingerprint_cost              # 100 modules, median of 5
    .venv/bin/python -m benchmarks.fingerprint_cost --modules 300

Writes a throw-away project under ``/work/bench-tmp`` (or ``--where``): a
package ``lib`` of N modules, each with three functions, a class and a
constant, where module *i* imports module *i + 1*, so a stage that calls
``lib.m000.entry`` reaches all N modules through its helpers. Each repetition
runs in a fresh process (imports included in the set-up, not in the timing)
and times :meth:`assay.codeprint.Fingerprinter.fingerprint` of that stage the
first time (what a run pays once per stage function) and again (cached within
the run). Prints the figures; nothing is written to ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODULE = '''"""Module {i} of a synthetic project."""

from lib import {next} as following

SCALE_{i} = {i} + 1


class Model{i}:
    """A class whose method a helper uses."""

    def predict(self, x):
        return x * SCALE_{i}


def helper_a_{i}(x):
    # a comment
    return following.entry(x) + SCALE_{i}


def helper_b_{i}(x):
    return Model{i}().predict(x) - 1


def entry(x):
    """The function the previous module calls."""
    return helper_a_{i}(x) + helper_b_{i}(x)
'''

LAST = '''"""The last module: calls nothing further."""


def entry(x):
    return x
'''

MEASURE = """
import json, sys, time
sys.setrecursionlimit(10000)  # importing 100 chained modules nests 100 imports
sys.path.insert(0, sys.argv[1])
from assay.codeprint import Fingerprinter
from stages import stage

printer = Fingerprinter(sys.argv[1])
start = time.perf_counter()
digest, parts = printer.fingerprint(stage)
first = time.perf_counter() - start
start = time.perf_counter()
printer.fingerprint(stage)
again = time.perf_counter() - start
print(json.dumps({"first_s": first, "again_s": again, "parts": len(parts)}))
"""


def make_project(root: Path, modules: int) -> None:
    """A package ``lib`` of ``modules`` chained modules (plus a last, empty one)."""
    package = root / "lib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for i in range(modules):
        following = f"m{i + 1:03d}"
        (package / f"m{i:03d}.py").write_text(MODULE.format(i=i, next=following))
    (package / f"m{modules:03d}.py").write_text(LAST)
    (root / "stages.py").write_text(
        "import lib.m000\n\n\ndef stage(record):\n    return lib.m000.entry(1)\n"
    )


def main() -> None:
    """Build the project, measure in fresh processes, print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--where", default="/work/bench-tmp")
    options = parser.parse_args()
    Path(options.where).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="fingerprint-", dir=options.where))
    try:
        make_project(root, options.modules)
        results = []
        for _ in range(options.repeat):
            out = subprocess.run(
                [sys.executable, "-c", MEASURE, str(root)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                raise SystemExit(f"the measurement failed:\n{out.stderr}")
            results.append(json.loads(out.stdout))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    parts = results[0]["parts"]
    first = [r["first_s"] * 1000 for r in results]
    again = [r["again_s"] * 1e6 for r in results]
    print(f"project: {options.modules} modules; the stage's fingerprint has {parts} parts")
    print(
        f"first fingerprint of the stage (once per run): {statistics.median(first):.1f} ms "
        f"(min {min(first):.1f}, max {max(first):.1f})"
    )
    print(
        f"again in the same run (cached): {statistics.median(again):.1f} µs "
        f"(min {min(again):.1f}, max {max(again):.1f})"
    )
    if parts < 4 * options.modules:
        raise SystemExit(f"wrong result: expected at least {4 * options.modules} parts")


if __name__ == "__main__":
    main()
