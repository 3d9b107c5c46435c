"""Threads of numerical libraries inside worker processes (``--parallel``, a local Dask
cluster): each worker's BLAS, OpenMP, numexpr ... get the worker's share of the cores, not
one thread per core each, unless the researcher set their variables; the main process's
environment stays as it was.

Every test uses real worker processes. A stage reports the variables it sees and, where
numpy's BLAS is OpenBLAS, how many threads OpenBLAS runs (asked from the loaded library
itself, through ctypes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import assay
from assay.executor import THREAD_VARIABLES, usable_cores

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the worker's /proc/self/maps"
)

THREADS = '''
import ctypes
import os
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher

NAMES = {names!r}


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 0


def blas_threads():
    """The threads numpy's OpenBLAS runs, or None for another BLAS."""
    import numpy

    numpy.ones((64, 64)) @ numpy.ones((64, 64))
    with open("/proc/self/maps") as maps:
        paths = {{line.split()[-1] for line in maps if "openblas" in line.lower()}}
    for path in sorted(p for p in paths if p.startswith("/")):
        library = ctypes.CDLL(path)
        for symbol in ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_"):
            if hasattr(library, symbol):
                return getattr(library, symbol)()
    return None


@assay.stage(outputs=["seen"], cachers=[JsonCacher])
def look(record):
    return {{
        "x": record.params.x,
        "pid": os.getpid(),
        "env": {{name: os.environ.get(name) for name in NAMES}},
        "blas": blas_threads(),
    }}


def get_params():
    return [Params(name="a", x=1), Params(name="b", x=2)]


def run(param_sets, manager):
    for params in param_sets:
        look(assay.Record(manager, params))
'''


@pytest.fixture
def project(tmp_project: Path) -> Path:
    (tmp_project / "experiments" / "threads.py").write_text(THREADS.format(names=THREAD_VARIABLES))
    return tmp_project


def shell_environment(**extra: str) -> dict[str, str]:
    """The environment of a shell with no ``ASSAY_*`` setting and none of the thread
    variables set, but ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES and "ASSAY_" not in k}
    return {**env, **extra}


def run_cli_with(project: Path, *args: str, **extra: str) -> list[dict]:
    """``assay run threads ARGS`` from a shell with only ``extra`` of the thread variables;
    what each parameter set's stage saw."""
    done = subprocess.run(
        [sys.executable, "-m", "assay", "run", "threads", *args],
        cwd=project, env=shell_environment(**extra), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return [
        assay.load("seen", experiment="threads", param_set=name, project_root=project)
        for name in ("a", "b")
    ]


def share(workers: int) -> str:
    return str(max(1, usable_cores() // workers))


@pytest.mark.parametrize("start", ["fork", "spawn"])
@pytest.mark.parametrize("workers", [1, 2])
def test_each_worker_gets_its_share_of_the_cores_for_numerical_threads(
    project: Path, start: str, workers: int
):
    """`--parallel 2` on 2 cores: each worker's BLAS runs 1 thread, not 2 (4 busy
    threads on 2 cores); forked or spawned, the variables are there before numpy loads."""
    seen = run_cli_with(project, "--parallel", str(workers), ASSAY_START_METHOD=start)

    expected = share(workers)
    for value in seen:
        assert value["pid"] != os.getpid()
        assert value["env"] == dict.fromkeys(THREAD_VARIABLES, expected), value
        assert value["blas"] in (None, int(expected)), value


@pytest.mark.slow
def test_a_local_dask_clusters_workers_get_their_share_of_the_cores(project: Path):
    """Dask's nannies gave them OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS
    of 1 whatever the number of workers, and none of the others."""
    seen = run_cli_with(project, "--executor", "dask", "--parallel", "1", MKL_NUM_THREADS="3")

    for value in seen:
        assert value["pid"] != os.getpid()
        expected = dict.fromkeys(THREAD_VARIABLES, share(1))
        assert value["env"] == {**expected, "MKL_NUM_THREADS": "3"}, value
        assert value["blas"] in (None, int(share(1))), value


def test_a_thread_variable_you_exported_wins(project: Path):
    seen = run_cli_with(project, "--parallel", "2", OMP_NUM_THREADS="3", OPENBLAS_NUM_THREADS="2")

    for value in seen:
        assert value["env"]["OMP_NUM_THREADS"] == "3"
        assert value["env"]["OPENBLAS_NUM_THREADS"] == "2"
        assert value["env"]["MKL_NUM_THREADS"] == share(2)
        assert value["blas"] in (None, 2), value


def test_a_serial_run_sees_the_environment_as_it_is(project: Path):
    seen = run_cli_with(project)

    for value in seen:
        assert value["env"] == dict.fromkeys(THREAD_VARIABLES), value
        assert value["blas"] in (None, usable_cores()), value


SCRIPT = """
import json
import numpy  # with its BLAS threads: the workers are spawned, and import numpy first
import assay

if __name__ == "__main__":
    manager = assay.run_experiment("threads", parallel=2, report=False)
    print(json.dumps([r.state["seen"] for r in manager.records]))
"""


def test_workers_spawned_from_a_script_that_imports_numpy_get_the_limits(project: Path):
    """A spawned worker imports the script (and so numpy) before any code of assay's
    runs in it: the variables must be in the environment it starts with."""
    (project / "go.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "go.py"], cwd=project, env=shell_environment(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    for value in json.loads(done.stdout.splitlines()[-1]):
        assert value["env"] == dict.fromkeys(THREAD_VARIABLES, share(2)), value
        assert value["blas"] in (None, int(share(2))), value


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"parallel": 2}, id="process"),
        pytest.param({"parallel": 2, "start_method": "spawn"}, id="process-spawned"),
        pytest.param({"executor": "dask", "parallel": 2}, id="dask", marks=pytest.mark.slow),
    ],
)
def test_the_main_process_keeps_its_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch, options: dict
):
    """After a run on workers, this process (a notebook's, a script's) has none of the
    variables: a later serial run, or a library imported later, is not limited. A local
    Dask cluster's nannies used to leave OMP_NUM_THREADS=1 and others behind in it."""
    names = (*THREAD_VARIABLES, "PYTHONHASHSEED", "MALLOC_TRIM_THRESHOLD_")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    if options.pop("start_method", None):
        monkeypatch.setenv("ASSAY_START_METHOD", "spawn")

    manager = assay.run_experiment("threads", project_root=project, report=False, **options)

    assert {name: os.environ[name] for name in names if name in os.environ} == {}
    for record in manager.records:
        assert record.state["seen"]["pid"] != os.getpid()
        assert record.state["seen"]["env"] == dict.fromkeys(THREAD_VARIABLES, share(2))
    serial = assay.run_experiment(
        "threads", project_root=project, report=False, overwrite=True, log_file=False
    )
    for record in serial.records:
        assert record.state["seen"]["env"] == dict.fromkeys(THREAD_VARIABLES), record
