"""Worker: run one shared experiment under assay or Curifactory, in this fresh process.

Started by the harness with the tool's own venv python, in a temporary
project folder whose ``experiments/`` holds a copy of the shared experiment.
Both tools run through their normal entry point, a full run:

- assay: ``assay.run_experiment(module, report=False)`` (run store, log file);
- Curifactory: ``curifactory.experiment.run_experiment(name, log=True, quiet=True,
  report=False)`` (parameter registry, run store, log file).

The HTML report is off on both sides.

For each phase it reports the run's seconds, how many stage functions ran,
how many artifacts were loaded from the cache, and whether the values were
right. Arguments (JSON): ``experiment``, ``phases`` (default ``["run"]``),
``durable`` (fsync the cache after a ``write`` phase, and time it),
``evict`` (drop the cache's pages after each phase), ``options`` (extra
keywords for the run: ``parallel``, and for assay ``executor`` and
``dask_address``; ``"existing"`` starts a scheduler and workers before the
timer and passes their address (with ``advised_cluster``, the settings
docs/scaling.md advises for them); with ``warm_cluster`` an untimed run of the
experiment's ``warm_up_sets()`` goes first on that cluster, in a process of its
own, as a researcher's earlier ``assay run`` on a site's long-lived cluster),
``profile`` (cProfile the first phase; report
the top functions).
"""

from __future__ import annotations

import cProfile
import importlib
import inspect
import json
import os
import pstats
import subprocess
import sys

from _common import (
    DaskCluster,
    Timer,
    arguments,
    emit,
    evict,
    files_under,
    make_durable,
    rss_mb,
    total_bytes,
)


def count_loads(caching) -> dict:
    """Count every ``load()`` of the tool's cachers (nested calls count once)."""
    counter = {"loads": 0, "depth": 0}
    for cls in list(vars(caching).values()):
        if isinstance(cls, type) and issubclass(cls, caching.Cacheable) and "load" in vars(cls):
            cls.load = _counted(cls.load, counter)
    return counter


def _counted(original, counter):
    def load(self, *args, **kwargs):
        counter["depth"] += 1
        try:
            if counter["depth"] == 1:
                counter["loads"] += 1
            return original(self, *args, **kwargs)
        finally:
            counter["depth"] -= 1

    return load


def run_once(tool: str, module, name: str, options: dict):
    """One full run through the tool's normal entry point; returns the manager and what it loaded."""
    if tool == "assay":
        import assay

        accepted = inspect.signature(assay.run_experiment).parameters
        extra = {k: v for k, v in options.items() if v is not None}
        if "report" in accepted:
            extra["report"] = False  # as for Curifactory (report=False)
        manager = assay.run_experiment(module, project_root=os.getcwd(), log_file=True, **extra)
        return manager, len(manager.runner.loaded)
    from curifactory.experiment import run_experiment

    _results, manager = run_experiment(
        name, log=True, quiet=True, report=False, parallel=options.get("parallel")
    )
    if manager.status != "complete":
        raise RuntimeError(f"Curifactory run ended with status {manager.status}: {manager.error}")
    return manager, None


def top_functions(profile: cProfile.Profile, limit: int = 12) -> dict:
    """The functions with the most own time, assay's with the most cumulative time, the total."""
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        short = filename
        for marker, replacement in (("site-packages/", ""), ("/src/", ""), ("/lib/python3", "py3")):
            if marker in short:
                short = replacement + short.split(marker, 1)[1]
        rows.append([f"{short}:{line}({func})", calls, tottime, cumtime])
    own = sorted(rows, key=lambda r: -r[2])[:limit]
    ours = sorted((r for r in rows if r[0].startswith("assay/")), key=lambda r: -r[3])
    return {"own": own, "assay": ours[:limit], "total": sum(r[2] for r in rows)}


WARM_UP = """
import importlib, json, os, sys
sys.path.insert(0, os.getcwd())
import assay
module = importlib.import_module(sys.argv[1])
assay.run_experiment(module, param_sets=module.warm_up_sets(), project_root=os.getcwd(),
                     report=False, **json.loads(sys.argv[2]))
"""


def warm_up_cluster(name: str, options: dict) -> None:
    """An untimed run of one cheap parameter set on the cluster, from another process: the
    workers import assay and the project, this process imports nothing more."""
    arguments = json.dumps({k: v for k, v in options.items() if v is not None})
    done = subprocess.run(
        [sys.executable, "-c", WARM_UP, f"experiments.{name}", arguments],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"The warm-up run failed:\n{done.stderr[-4000:]}")


def main() -> None:
    args = arguments()
    tool = os.environ["BENCH_TOOL"]
    name = args["experiment"]
    sys.path.insert(0, os.getcwd())
    caching = importlib.import_module(f"{tool}.caching")
    importlib.import_module(tool)
    importlib.import_module(f"{tool}.experiment")  # the run machinery, before any timer
    counter = count_loads(caching)
    module = importlib.import_module(f"experiments.{name}")
    if hasattr(module, "prepare"):
        module.prepare()
    result = {"rss_before_mb": rss_mb(), "phases": {}}
    options = dict(args.get("options", {}))
    cluster = None
    advised = options.pop("advised_cluster", False)
    if options.get("dask_address") == "existing":
        # An existing cluster has its own workers: --parallel is not given with it.
        cluster = DaskCluster(options.pop("parallel", None) or 2, os.getcwd(), advised)
        options["dask_address"] = cluster.address
    if options.pop("warm_cluster", False):
        warm_up_cluster(name, options)
    try:
        measure(tool, module, name, args, options, counter, result)
    finally:
        if cluster is not None:
            cluster.close()
    emit(result)


def measure(tool, module, name, args, options, counter, result) -> None:
    """Run every phase, timing each; fills ``result["phases"]``."""
    for index, phase in enumerate(args.get("phases", ["run"])):
        module.PHASE = phase
        module.executed[0] = 0
        counter["loads"] = 0
        profile = cProfile.Profile() if args.get("profile") and index == 0 else None
        if hasattr(module, "warm"):
            module.warm()
        with Timer() as timed:
            if profile is not None:
                profile.enable()
            manager, runner_loaded = run_once(tool, module, name, options)
            if profile is not None:
                profile.disable()
        facts = {
            "seconds": timed.seconds,
            "clock": [timed.started, timed.ended],
            "executed": module.executed[0],
            "loads": counter["loads"],
            "runner_loaded": runner_loaded,
        }
        if phase == "write" and args.get("durable"):
            files = files_under("data/cache")
            with Timer() as synced:
                make_durable(files)
            facts.update(sync_s=synced.seconds, bytes=total_bytes(files))
        facts["correct"] = bool(module.check(manager.records, phase))
        if args.get("evict"):
            evict(files_under("data/cache"))
        if profile is not None:
            facts["profile"] = top_functions(profile)
        result["phases"][phase] = facts


if __name__ == "__main__":
    main()
