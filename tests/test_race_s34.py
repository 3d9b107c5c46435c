"""``--parallel`` runs whose workers meet on the same cache entry, and other ways a
parallel run goes wrong. Every test runs ``assay run`` in a real process with real
worker processes.

Two parameter sets that differ only in a field a stage does not read share that stage's
cache key, which a first run learns only once the stage has run: two workers then run
the stage at once and both save the same entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli

TWINS = """
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher

ROOT = Path(__file__).resolve().parent.parent


def event(what):
    with open(ROOT / "saves.log", "a") as log:
        log.write(f"{what} {os.getpid()}\\n")


class Logged(JsonCacher):
    \"\"\"A JSON cacher that notes when a save starts and ends, and takes its time.\"\"\"

    def save(self, obj):
        event("start")
        time.sleep(0.5)
        super().save(obj)
        event("end")


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 1
    y: int = 0


@assay.stage(outputs=["made", "also"], cachers=[Logged, JsonCacher])
def slow(record):
    x = record.params.x  # the only field it reads: sets differing in y share its key
    time.sleep(1)  # both workers run it at once
    (ROOT / f"ran-{os.getpid()}").touch()
    token = MADE.format(x=x, token=uuid.uuid4().hex)
    return token, token


@assay.stage(inputs=["made"], outputs=["used"], cachers=[JsonCacher])
def use(record, made):
    return {"made": made, "y": record.params.y}


MADE = "{x}-{token}"


def get_params():
    return [Params(name="a", y=1), Params(name="b", y=2)]


def run(param_sets, manager):
    for params in param_sets:
        use(slow(assay.Record(manager, params)))
"""


def project(folder: Path, source: str = TWINS, name: str = "race_twins") -> Path:
    """A project holding one experiment, ``name``."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "experiments" / f"{name}.py").write_text(source)
    return folder


def saves(root: Path) -> list[tuple[str, int]]:
    """``(start|end, pid)`` of every save of ``slow``'s first output, in order."""
    lines = (root / "saves.log").read_text().split()
    return list(zip(lines[::2], map(int, lines[1::2])))


def artifacts(root: Path) -> dict[str, str]:
    """Every artifact file of the cache (sidecars left out), by path: its sha256."""
    objects = root / "data" / "cache" / "objects"
    return {
        str(p.relative_to(objects)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(objects.rglob("*"))
        if p.is_file() and not p.name.endswith(".meta.json")
    }


def entry(root: Path, output: str) -> tuple[Path, dict]:
    """The only cache entry of ``output``: its folder and sidecar."""
    (sidecar,) = (root / "data" / "cache" / "objects").rglob(f"{output}.meta.json")
    return sidecar.parent, json.loads(sidecar.read_text())


def test_two_workers_making_the_same_stage_run_save_it_one_after_the_other(tmp_path: Path):
    root = project(tmp_path / "p")

    result = run_cli("run", "race_twins", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    assert len(list(root.glob("ran-*"))) == 2  # both workers ran the stage, at once
    events = saves(root)
    # No save of the entry began while another was under way.
    for started, ended in zip(events[::2], events[1::2]):
        assert started[0] == "start" and ended == ("end", started[1]), events
    folder, _ = entry(root, "made")
    made = json.loads((folder / "made.json").read_text())
    assert json.loads((folder / "also.json").read_text()) == made  # one stage run's outputs
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]
    for used in (root / "data" / "cache" / "objects").rglob("used.json"):
        assert json.loads(used.read_text())["made"] == made  # what the cache holds

    rerun = run_cli("run", "race_twins", "--parallel", "2", cwd=root)

    assert rerun.code == 0, rerun
    assert "4 cached" in rerun.text, rerun


def test_a_parallel_run_of_twins_caches_what_a_serial_run_caches(tmp_path: Path):
    deterministic = TWINS.replace("token=uuid.uuid4().hex", 'token="same"')
    serial = project(tmp_path / "serial", deterministic)
    parallel = project(tmp_path / "parallel", deterministic)

    assert run_cli("run", "race_twins", cwd=serial).code == 0
    result = run_cli("run", "race_twins", "--parallel", "2", cwd=parallel)

    assert result.code == 0, result
    assert artifacts(parallel) == artifacts(serial)
    _, meta = entry(parallel, "made")
    assert meta["param_set"] in ("a", "b")


def test_sigterm_while_a_worker_waits_to_save_an_entry_another_saves_stops_the_run(
    tmp_path: Path,
):
    """A worker waiting for another to finish saving the entry it made too must stop
    with the run, and leave nothing half-written."""
    stuck = TWINS.replace(
        '        time.sleep(0.5)\n        super().save(obj)\n        event("end")\n',
        '        with open(self.get_path(), "w") as handle:\n'
        '            handle.write("half")\n'
        "            handle.flush()\n"
        '            (ROOT / "saving.txt").touch()\n'
        "            time.sleep(60)\n",
    )
    root = project(tmp_path / "p", stuck)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
    proc = subprocess.Popen([sys.executable, "-m", "assay", "run", "race_twins", "--parallel", "2"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ((root / "saving.txt").exists() and len(list(root.glob("ran-*"))) == 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()

    assert proc.returncode == 143, stdout + stderr
    assert "Traceback" not in stdout + stderr
    cache = root / "data" / "cache"
    assert [p for p in cache.rglob("*") if ".tmp-" in p.name] == []
    assert list(cache.rglob("made.json")) == []  # nothing half-saved passes for saved


POOLED = """
import multiprocessing
import signal
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


def square(value):
    return value * value


def sigterm_as_usual(queue):
    queue.put(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["seen"], cachers=[JsonCacher])
def pooled(record):
    forked = multiprocessing.get_context("fork")
    with forked.Pool(2) as pool:
        total = sum(pool.map(square, range(record.params.n)))
    queue = forked.SimpleQueue()
    child = forked.Process(target=sigterm_as_usual, args=(queue,))
    child.start()
    as_usual = queue.get()
    child.join()
    return {"total": total, "sigterm_as_usual": as_usual}


def get_params():
    return [Params(name=f"n{n}", n=n) for n in (2, 3, 4)]


def run(param_sets, manager):
    for params in param_sets:
        pooled(assay.Record(manager, params))
"""


@pytest.mark.parametrize("options", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_processes_a_stage_forks_stop_on_sigterm_as_usual(tmp_path: Path, options: list[str]):
    """``with multiprocessing.Pool() as pool`` in a stage ends with SIGTERM to the pool's
    processes. They had the run's own SIGTERM handler (the main process's, or a worker's):
    each printed a traceback ("assay.errors.Terminated"), and one that was sent SIGTERM
    just before it waited for its next task never acted on it, so the run hung for ever."""
    root = project(tmp_path / "p", POOLED, "race_pooled")

    result = run_cli("run", "race_pooled", *options, cwd=root, timeout=60)

    assert result.code == 0, result
    assert "Traceback" not in result.output, result
    seen = [json.loads(p.read_text()) for p in root.glob("data/cache/objects/*/*/seen.json")]
    assert sorted(s["total"] for s in seen) == [1, 5, 14]
    assert all(s["sigterm_as_usual"] for s in seen), seen


DYING = """
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import JsonCacher

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Params(assay.ExperimentParameters):
    die: bool = False


@assay.stage(outputs=["v"], cachers=[JsonCacher])
def work(record):
    (ROOT / f"started-{record.params.name}").touch()
    while len(list(ROOT.glob("started-*"))) < 2:  # both run at once
        time.sleep(0.02)
    if record.params.die and (ROOT / "die.flag").exists():
        (ROOT / "die.flag").unlink()
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    time.sleep(0.5)
    return 1


def get_params():
    return [Params(name="fine"), Params(name="dying", die=True)]


def run(param_sets, manager):
    for params in param_sets:
        work(assay.Record(manager, params))
"""


def test_a_worker_killed_mid_stage_is_not_blamed_on_the_set_another_worker_ran(tmp_path: Path):
    """When one worker process dies, the process pool fails every stage run in flight
    alike: the run named the first set submitted, whose worker was fine."""
    root = project(tmp_path / "p", DYING, "race_dying")
    (root / "die.flag").touch()

    result = run_cli("run", "race_dying", "--parallel", "2", cwd=root)

    assert result.code == 1, result
    assert "Traceback" not in result.output
    assert "worker process stopped" in result.text, result
    assert "parameter set 'dying'" in result.text, result
    for started in root.glob("started-*"):
        started.unlink()

    rerun = run_cli("run", "race_dying", "--parallel", "2", cwd=root)

    assert rerun.code == 0, rerun
