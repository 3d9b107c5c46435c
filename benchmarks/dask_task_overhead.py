"""What one stage run costs on the Dask executor: 1,000 trivial stage runs (issue 6).

::

    .venv/bin/python -m benchmarks.dask_task_overhead             # 200 sets x 5 stages
    .venv/bin/python -m benchmarks.dask_task_overhead --sets 100  # 500 stage runs

Runs ``benchmarks/workloads/chain.py`` (5 trivial stages a set, no cachers) in a
fresh project under ``/work/bench-tmp``, serially and on a local Dask cluster of
2 worker processes, and prints the whole-run times and the extra time per stage
run on Dask, with and without the cluster's start-up. Nothing is written to
``RESULTS.md`` (the figure is kept in ``RESULTS-extra.md``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent

MEASURE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import assay
from assay.executor import get_executor
import chain

sets = [chain.Params(name=f"s{i}", index=i) for i in range(int(sys.argv[2]))]
options = {"report": False, "log_file": False, "project_root": sys.argv[1]}
if sys.argv[3] == "dask":
    start = time.perf_counter()
    executor = get_executor("dask", workers=2)
    started = time.perf_counter() - start
    executor.shutdown()
    options.update(executor="dask", parallel=2)
else:
    started = 0.0
start = time.perf_counter()
manager = assay.run_experiment(chain, param_sets=sets, **options)
elapsed = time.perf_counter() - start
executed = sum(1 for n in manager.plan.nodes if n.status == "executed")
print(json.dumps({"s": elapsed, "cluster_s": started, "executed": executed}))
"""


def measure(root: Path, sets: int, how: str) -> dict:
    """One run in a fresh process and a fresh cache."""
    shutil.rmtree(root / "data", ignore_errors=True)
    (root / "assay.db").unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(root), str(sets), how],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"the {how} run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Serial and Dask runs of the same 5-stage chain; print the per-task overhead."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=200)
    parser.add_argument("--where", default="/work/bench-tmp")
    options = parser.parse_args()
    Path(options.where).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="dask-tasks-", dir=options.where))
    try:
        (root / "experiments").mkdir()
        shutil.copy(HERE / "workloads" / "chain.py", root / "chain.py")
        serial = measure(root, options.sets, "serial")
        dask = measure(root, options.sets, "dask")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    stages = options.sets * 5
    if serial["executed"] != stages or dask["executed"] != stages:
        raise SystemExit(f"wrong result: {serial['executed']} / {dask['executed']} of {stages} ran")
    extra = (dask["s"] - serial["s"]) / stages * 1000
    print(
        f"{stages} trivial stage runs: serial {serial['s']:.2f} s, Dask (2 workers) {dask['s']:.2f} s"
    )
    print(f"a local cluster starts in {dask['cluster_s']:.2f} s (included in the Dask run)")
    print(
        f"extra per stage run on Dask: {extra:.2f} ms with start-up, "
        f"{(dask['s'] - dask['cluster_s'] - serial['s']) / stages * 1000:.2f} ms without"
    )


if __name__ == "__main__":
    main()
