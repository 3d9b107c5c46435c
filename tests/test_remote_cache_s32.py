"""A cache at an S3 URL whose server stops answering in the middle of a run.

Each test starts its own moto server (a separate process), so that a test can
stall it (SIGSTOP) or stop it without touching the other tests' server. The
stage itself stalls the server, so the next request to the store is the
upload of its outputs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import S3Server, free_port, run_cli

pytest.importorskip("moto")
pytest.importorskip("s3fs")

EXPERIMENT = """
import os
import signal
from dataclasses import dataclass

import assay
from assay.caching import PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["model", "summary"], cachers=[PickleCacher, PickleCacher])
def fit(record):
    stall = os.environ.get("STALL_SERVER")
    if stall:
        os.kill(int(stall), signal.SIGSTOP)
    return list(range(record.params.n)), {"n": record.params.n}


def get_params():
    return [Params(name="small", n=3)]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
"""

RUN_WITH_SHORT_WAIT = (
    "import sys, assay.caches.fsspec as remote; remote._ANSWER_WAIT_S = 2\n"
    "from assay.cli import main\n"
    "sys.exit(main())"
)


@pytest.fixture
def own_s3(tmp_path: Path, monkeypatch) -> Iterator[tuple[S3Server, subprocess.Popen]]:
    """A moto S3 server of this test alone, and its process."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    with open(tmp_path / "moto.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "moto.log").read_text()
            time.sleep(0.1)
    try:
        yield S3Server(endpoint), server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGCONT)
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture
def project(tmp_path: Path, own_s3) -> Path:
    s3, _ = own_s3
    root = tmp_path / "study"
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "stalls.py").write_text(EXPERIMENT)
    s3.filesystem().mkdir("lab")
    (root / "assay.toml").write_text(
        'cache_dir = "s3://lab/cache"\n'
        f'cache_options = {{ endpoint_url = "{s3.endpoint}", '
        "config_kwargs = { read_timeout = 1, retries = { max_attempts = 1 } } }\n"
    )
    return root


def run_stalling(root: Path, server: subprocess.Popen) -> subprocess.CompletedProcess:
    """``assay run stalls`` with the store's wait cut to 2 s; the stage stalls the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", TERM="dumb", STALL_SERVER=str(server.pid))
    return subprocess.run(
        [sys.executable, "-c", RUN_WITH_SHORT_WAIT, "run", "stalls"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,  # (it hung forever)
    )


def test_a_store_that_stalls_during_a_run_ends_the_run_with_a_message(project: Path, own_s3):
    _, server = own_s3

    result = run_stalling(project, server)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    flat = " ".join(output.split())
    for fragment in ("s3://lab/cache", "did not answer in time", "stalled"):
        assert fragment in flat, output

    server.send_signal(signal.SIGCONT)  # the server is back: nothing half-written passes
    again = run_cli("run", "stalls", cwd=project)
    assert again.code == 0, again
    assert "1 executed" in again.text, again
    verified = run_cli("cache", "verify", cwd=project)
    assert verified.code == 0, verified
    assert "2 artifact(s) checked, 0 failed" in verified.text, verified


SLOW_SECOND_OUTPUT = '''
import time
from dataclasses import dataclass
from pathlib import Path

import assay
from assay.caching import PickleCacher


class WaitingCacher(PickleCacher):
    """Saves once ``hold.flag`` is gone (writes ``holding.txt`` first)."""

    def save(self, obj):
        Path("holding.txt").write_text("saving the second output")
        while Path("hold.flag").exists():
            time.sleep(0.05)
        return super().save(obj)


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["first", "second"], cachers=[PickleCacher, WaitingCacher])
def fit(record):
    return list(range(record.params.n)), {"n": record.params.n}


def get_params():
    return [Params(name="small", n=3)]


def run(param_sets, manager):
    for params in param_sets:
        fit(assay.Record(manager, params))
'''


def test_cache_gc_leaves_alone_a_stage_run_another_run_is_writing_at_the_url(project: Path):
    """gc removed a stage run's first output while the run uploaded the second."""
    (project / "experiments" / "slow.py").write_text(SLOW_SECOND_OUTPUT)
    (project / "hold.flag").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", TERM="dumb")
    writer = subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "slow"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while not (project / "holding.txt").exists():
            assert writer.poll() is None, writer.stdout.read()
            time.sleep(0.05)

        collected = run_cli("cache", "gc", cwd=project)

        assert collected.code == 0, collected
    finally:
        (project / "hold.flag").unlink()
        output = writer.communicate(timeout=120)[0]
    assert writer.returncode == 0, output
    again = run_cli("run", "slow", cwd=project)
    assert again.code == 0, again
    assert "1 cached" in again.text and "executed" not in again.text, again
    verified = run_cli("cache", "verify", cwd=project)
    assert "2 artifact(s) checked, 0 failed" in verified.text, verified
    assert not list(project.glob("writing")), "markers belong at the URL"
    s3fs_view = S3Server(_endpoint(project)).filesystem()
    assert s3fs_view.find("lab/cache/writing") == [], "the run removed its marker"


def _endpoint(root: Path) -> str:
    text = (root / "assay.toml").read_text()
    return text.split('endpoint_url = "', 1)[1].split('"', 1)[0]
