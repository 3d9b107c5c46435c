"""Shared fixtures: temporary copies of the test projects, and ways to run them.

The projects live in ``tests/resources/projects/`` and are copied into
``tmp_path`` for every test, so a test may edit, corrupt or delete anything.

``basic`` holds experiments named after the DAG shape they exercise:

- ``diamond``: fan-out / fan-in (``load -> double, square -> combine``) per
  parameter set, then an aggregate ``summarize`` over every record;
- ``lazy``: ``Lazy`` outputs, one with ``resolve=False``, and an aggregate
  reading a lazy output of every record;
- ``aggregates``: aggregates with and without explicit ``records``;
- ``nocacher``: a stage without a cacher feeding a cached one, and a stage
  without outputs;
- ``flaky``: a chain whose middle stage fails or is interrupted on demand;
- ``crashing``: a cacher that dies halfway through writing;
- ``statewise``: what ``record.state`` holds while each stage of a chain runs.

Every stage of ``basic`` appends ``stage:parameter-set`` to ``calls.txt`` in
the project root when it really executes (see ``tracking.py``), in this
process or in a CLI subprocess alike; :class:`Calls` reads it.

``bad`` holds one broken experiment or parameter file per bad input of
SPEC section 10, around the working ``experiments/good.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECTS = Path(__file__).parent / "resources" / "projects"

_PROJECT_PACKAGES = ("experiments", "params", "tracking")


def _is_project_module(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in _PROJECT_PACKAGES or top.startswith("assay_user_")


def forget_project_modules() -> None:
    """Drop the test projects' modules, so the next import reads the files again."""
    for name in [n for n in sys.modules if _is_project_module(n)]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """No ASSAY_* settings from the environment; no project modules leak between tests."""
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "400")
    saved_path = list(sys.path)
    forget_project_modules()
    yield
    sys.path[:] = saved_path
    forget_project_modules()


def load_experiment_module(root: Path, name: str):
    """The experiment module ``name`` of the project at ``root``, imported as a run would."""
    from assay.config import ProjectConfig
    from assay.project import load_experiment

    return load_experiment(name, ProjectConfig.load(root))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (for a server, or to be refused)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_cluster(workers: int = 1, threads: int = 1):
    """A ``distributed.LocalCluster`` of ``workers`` worker processes for a test, its web
    server on a free port of 127.0.0.1: Dask's default, 8787, may be held by another
    program on the machine, and its "Port 8787 is already in use" warning fails a test
    (``filterwarnings = error``)."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )


def run_outside_test(run):
    """``run()`` as in a fresh session (for module-scoped fixtures): no ASSAY_* settings,
    and the project's modules and ``sys.path`` as they were before."""
    saved_path = list(sys.path)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in [n for n in os.environ if n.startswith("ASSAY_")]:
                patch.delenv(name)
            return run()
    finally:
        sys.path[:] = saved_path
        forget_project_modules()


def copy_project(name: str, destination: Path) -> Path:
    """A fresh copy of ``tests/resources/projects/NAME`` at ``destination / NAME``."""
    target = destination / name
    shutil.copytree(PROJECTS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def one_experiment_project(folder: Path, name: str, source: str) -> Path:
    """A new project at ``folder / "proj"`` (an empty ``assay.toml``) whose only
    experiment is ``experiments/NAME.py``, holding ``source``."""
    root = folder / "proj"
    (root / "experiments").mkdir(parents=True)
    (root / "assay.toml").write_text("")
    (root / "experiments" / f"{name}.py").write_text(source)
    return root


@pytest.fixture
def tmp_project(tmp_path: Path) -> Path:
    """A copy of the ``basic`` project."""
    return copy_project("basic", tmp_path)


@pytest.fixture
def bad_project(tmp_path: Path) -> Path:
    """A copy of the ``bad`` project."""
    return copy_project("bad", tmp_path)


@contextlib.contextmanager
def on_sys_path(folder: Path, *modules: str) -> Iterator[None]:
    """``folder`` first on ``sys.path`` while in the block; afterwards it is taken off and
    ``modules`` (imported from it) are forgotten."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in modules:
            sys.modules.pop(name, None)


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur once) by ``new`` in a project file.

    The file's modification time moves forward, stale bytecode is removed and
    the project's modules are forgotten, so both this process and a subprocess
    see the new code.
    """
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    stat = path.stat()
    path.write_text(text.replace(old, new))
    later = max(stat.st_mtime, time.time()) + 2
    os.utime(path, (later, later))
    for cache in path.parent.parent.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    forget_project_modules()


class Calls:
    """The stage calls noted in a project's ``calls.txt`` since the last :meth:`take`."""

    def __init__(self, root: Path):
        self.file = root / "calls.txt"

    def take(self) -> list[str]:
        """Every ``stage:parameter-set`` noted since the last call, in order; then forget them."""
        if not self.file.exists():
            return []
        lines = self.file.read_text().splitlines()
        self.file.unlink()
        return lines

    def take_counts(self) -> Counter:
        return Counter(self.take())


@pytest.fixture
def calls(tmp_project: Path) -> Calls:
    return Calls(tmp_project)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def text(self) -> str:
        """Both streams with every run of whitespace made one space (rich wraps lines)."""
        return " ".join(self.output.split())

    def __str__(self) -> str:
        return (
            f"exit code {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def run_cli(
    *args: object, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> CliResult:
    """Run ``python -m assay ARGS`` in ``cwd``, as a user would from a shell (``env``: extra
    environment variables; the test process's ``ASSAY_*`` ones are left out)."""
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="400", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TERM="dumb", **extra)
    proc = subprocess.run(
        [sys.executable, "-m", "assay", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


# -- a real S3 server, for caches at a URL -------------------------------------------------


@dataclass
class S3Server:
    """A local S3 service (moto's server, a separate process) on 127.0.0.1."""

    endpoint: str

    def filesystem(self):
        """An s3fs filesystem on the server, for a test to look at what assay wrote."""
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=self.endpoint, use_listings_cache=False)
        fs.invalidate_cache()
        return fs

    def new_bucket(self) -> str:
        """A new, empty bucket's name."""
        import uuid

        name = f"lab-{uuid.uuid4().hex[:12]}"
        self.filesystem().mkdir(name)
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    """moto's S3 server in its own process for the whole session (``pip install moto[server]``)."""
    import urllib.request

    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "server.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"moto's server did not start: {log.read_text()}"
            time.sleep(0.1)
    try:
        yield S3Server(endpoint)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch) -> S3Server:
    """The S3 server, with the (fake) credentials its clients need in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


def use_s3_cache(root: Path, s3: S3Server, bucket: str, options: str = "") -> str:
    """Point the project at ``root`` to a cache in ``bucket``; returns the cache's URL."""
    url = f"s3://{bucket}/cache"
    (root / "assay.toml").write_text(
        f'cache_dir = "{url}"\ncache_options = {{ endpoint_url = "{s3.endpoint}"{options} }}\n'
    )
    return url


# -- a headless Chromium, for the report's and the dashboard's browser tests -------------

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def find_chromium() -> str:
    """Debian's Chromium; the test is skipped without it (a failure under CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = (
        "Chromium is not installed, so pages were NOT checked in a browser. "
        "Install it with: apt-get install -y chromium"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by playwright (a failure under CI if missing)."""
    found = find_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=found, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()
