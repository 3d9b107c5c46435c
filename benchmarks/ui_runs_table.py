"""How fast the dashboard's runs table answers with 10,000 runs in the run store.

::

    .venv/bin/python -m benchmarks.ui_runs_table            # 10,000 runs, median of 20
    .venv/bin/python -m benchmarks.ui_runs_table --runs 1000 --repeat 50

Fills a fresh run store (made by :class:`assay.store.RunStore`, then filled
in bulk with SQL: 4 parameter sets per run, and per set the metrics
``accuracy``, ``f1``, ``auc`` and a 10-step ``loss`` curve, so about 520,000
metric rows), then times ``GET /api/runs`` and ``GET /runs`` (the HTML
page) through the dashboard's ASGI application in this process, for the
default page and for filtered, searched and sorted ones. Prints the median
and the slowest of ``--repeat`` requests of each; nothing is written to
``RESULTS.md`` (the figures are kept in ``RESULTS-extra.md``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

QUERIES = {
    "default page (newest 50)": "/api/runs",
    "page 100": "/api/runs?page=100",
    "experiment + status filter": "/api/runs?experiment=exp-3&status=failed",
    "parameter filter lr>=0.5, model=tree": "/api/runs?param=lr%3E%3D0.5&param=model%3Dtree",
    "text search": "/api/runs?q=baseline",
    "sorted by duration": "/api/runs?sort=duration&order=desc",
    "sorted by a metric": "/api/runs?sort=metric:accuracy&order=desc",
    "HTML page, default": "/runs",
}


def fill(root: Path, runs: int) -> None:
    """A run store with ``runs`` runs, written in bulk."""
    import sqlite3

    from assay.metrics import ensure_schema
    from assay.store import RunStore

    with RunStore(root / "assay.db") as store:  # the real schema, made by a first run
        store.begin_run("bench", command="bench")
    db = sqlite3.connect(root / "assay.db", isolation_level=None)
    db.execute("BEGIN")
    db.execute("DELETE FROM runs")
    ensure_schema(db)
    run_rows, set_rows, metric_rows = [], [], []
    for number in range(1, runs + 1):
        names = [f"set-{number}-{i}" for i in range(4)]
        minute, second = divmod(number % 3600, 60)
        started = f"2026-01-{1 + number % 28:02d}T10:{minute:02d}:{second:02d}.000Z"
        ended = f"2026-01-{1 + number % 28:02d}T11:{minute:02d}:{second:02d}.{number % 1000:03d}Z"
        status = "failed" if number % 10 == 0 else "completed"
        run_rows.append(
            (number, f"exp-{number % 7}-{number:05d}", f"exp-{number % 7}", status, started,
             ended, "bench", "bench", "Linux", "CPython 3.11", f"assay run exp-{number % 7}",
             "baseline" if number % 50 == 0 else None, json.dumps(names), "{}",
             f"{number:040x}", "main", number % 3 == 0)
        )  # fmt: skip
        for i, name in enumerate(names):
            values = {"name": name, "lr": round(0.1 * (i + 1), 2), "model": ("tree", "linear")[i % 2],
                      "seed": number, "epochs": 10}  # fmt: skip
            set_rows.append(
                (number, name, f"{number:08x}{i:024x}", "bench.Params", json.dumps(values))
            )
            score = (number * 7919 + i * 104729) % 1000 / 1000
            for metric, value in (("accuracy", score), ("f1", score * 0.9), ("auc", score * 0.95)):
                metric_rows.append((number, name, "evaluate", metric, value, None, None, 0))
            for step in range(10):
                metric_rows.append((number, name, "train", "loss", 1 / (step + 1), step, None, 0))
    db.executemany(
        "INSERT INTO runs (number, id, experiment, status, started, ended, host, user, platform,"
        " python, command, notes, param_names_json, config_json, git_commit, git_branch,"
        " git_dirty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    db.executemany(
        "INSERT INTO param_sets (run, name, hash, cls, values_json) VALUES (?, ?, ?, ?, ?)",
        set_rows,
    )
    db.executemany(
        "INSERT INTO metrics (run, param_set, stage, name, value, step, key, reused)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        metric_rows,
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from starlette.testclient import TestClient

    from assay.config import ProjectConfig
    from assay.ui import create_app

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        fill(root, args.runs)
        print(f"filled a run store with {args.runs:,} runs in {time.perf_counter() - start:.1f} s")
        client = TestClient(create_app(ProjectConfig.load(root)), base_url="http://127.0.0.1")
        width = max(len(name) for name in QUERIES)
        print(f"{'request':<{width}}  median    slowest   (of {args.repeat})")
        for name, url in QUERIES.items():
            first = client.get(url)  # warm: templates compiled, pages cached by SQLite
            assert first.status_code == 200, (url, first.status_code, first.text[:300])
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - start)
                assert response.status_code == 200
            median, worst = statistics.median(times) * 1000, max(times) * 1000
            print(f"{name:<{width}}  {median:6.1f} ms {worst:6.1f} ms")
        total = client.get("/api/runs").json()["total"]
        assert total == args.runs, total


if __name__ == "__main__":
    main()
