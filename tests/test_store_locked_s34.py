"""A run whose end cannot be recorded because another process keeps the run store
locked is later settled with that reason, not blamed on a kill.

The run fails with a clear message when the store stays locked past SQLite's wait;
`assay ls` then settled it as "killed (kill -9, out of memory, ...)": the marker that
says "could not be recorded" was left only for a full disk. The wait is shortened
to 2 s here (``assay.store.BUSY_TIMEOUT_S``) so the test does not wait 30 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from assay.store import RunStore
from conftest import one_experiment_project, run_cli

EXPERIMENT = """
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import assay

LOCKER = '''
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(8)
db.execute("ROLLBACK")
'''


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(None, ["value"])
def make(record):
    return record.params.n


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for p in param_sets:
        make(assay.Record(manager, p))
    ready = Path("locked.flag")
    subprocess.Popen([sys.executable, "-c", LOCKER, "assay.db", str(ready)])
    while not ready.exists():
        time.sleep(0.05)
"""

RUNNER = """
import assay, assay.store
assay.store.BUSY_TIMEOUT_S = 2.0
assay.run_experiment("locked_s34", report=False)
"""


def test_a_run_the_locked_store_could_not_record_is_settled_with_that_reason(
    tmp_path: Path,
) -> None:
    root = one_experiment_project(tmp_path, "locked_s34", EXPERIMENT)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "locked" in proc.stderr, proc.stderr[-2000:]

    deadline = time.monotonic() + 60
    while True:  # until the locker lets go of the store
        listed = run_cli("ls", cwd=root)
        if listed.code == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert listed.code == 0, listed
    with RunStore(root / "assay.db") as store:
        run = store.get_run("latest")
    assert run.status == "interrupted", run
    assert "could not be recorded" in run.error and "locked" in run.error, run.error
