"""Section 6: a cache at a URL (issue 6): what a stage run costs when the cache is ``s3://``.

The overhead workload (``workloads/chain.py``: N sets x 5 trivial stages, a
``PickleCacher`` on every output) runs with its cache in a project folder,
and at ``s3://`` on a real S3 service: moto's server, in its own process on
127.0.0.1, reached through s3fs as AWS would be. Each measurement is a fresh
process on a new project (and a new bucket): a first run that writes every
artifact, a fully cached re-run in the same process, and a fully cached run
from a second project folder that shares only the URL (another machine).
Neither Curifactory nor joblib.Memory can keep a cache at a URL, so there is
nothing to compare with; the section tells what one request to this server
costs, to translate the figures to another object store.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

from benchmarks.harness import Sample, expect, project
from benchmarks.report import Section, Table
from benchmarks.sections import Context

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def run(ctx: Context) -> Section:
    missing = [m for m in ("s3fs", "moto") if importlib.util.find_spec(m) is None]
    if missing:
        return Section("remote", "A cache at a URL", notes=[f"Not measured: {missing} missing "
                       "(pip install -e '.[dev]')."])  # fmt: skip
    sets = 10 if ctx.quick else 40
    stages = sets * 5
    seconds: dict[str, list[float]] = {}
    with s3_server() as endpoint:
        request_ms = request_cost(endpoint)
        for rep in range(ctx.reps(3, 1)):
            ctx.say(f"  remote: repetition {rep + 1}")
            for where in ("folder", "s3"):
                for name, value in measure(ctx, endpoint, where, sets).items():
                    seconds.setdefault(f"{where}:{name}", []).append(value)
    table = Table(
        f"{sets} sets × 5 trivial stages with PickleCacher ({stages} stage runs): ms per stage run",
        ["run", "cache in a folder", "cache at s3:// (moto on 127.0.0.1)"],
    )
    labels = {
        "write": "first run (computes and writes every artifact)",
        "cached": "fully cached re-run",
        "elsewhere": "fully cached run from another project folder (another machine)",
    }
    for phase, label in labels.items():
        table.rows.append([label] + [
            Sample([s / stages * 1000 for s in seconds[f"{where}:{phase}"]], "ms")
            for where in ("folder", "s3")
        ])  # fmt: skip
    notes = [
        f"One small request to this S3 server took {request_ms['put']:.1f} ms (PUT) and "
        f"{request_ms['get']:.1f} ms (GET), median of 50: moto is a Python server, so these "
        "figures are mostly its time. A stage run that executes makes about six requests "
        "(its sidecar and read index looked up; the artifact, its sidecar, the read index and "
        "its by-name link written); a cached stage run reads its sidecar and read index, the "
        "sidecars of all planned stage runs go out in one batch, and so do their links.",
        "The first run's artifacts are written by the process that ran the stage; the cached "
        "runs load nothing (the benchmark fails if a fully cached run loads an artifact).",
    ]
    return Section("remote", "A cache at a URL", [table], notes)


def measure(ctx: Context, endpoint: str, where: str, sets: int) -> dict[str, float]:
    """Seconds of the first run, the cached re-run, and the cached run from another folder."""
    env = {"BENCH_N": sets, "BENCH_CACHE": "pickle", **CREDENTIALS}
    config = ""
    if where == "s3":
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        _filesystem(endpoint).mkdir(bucket)
        config = (
            f'cache_dir = "s3://{bucket}/cache"\n'
            f'cache_options = {{ endpoint_url = "{endpoint}" }}\n'
        )
    found: dict[str, float] = {}
    with project("chain") as folder, project("chain") as other:
        for root in (folder, other):
            (root / "assay.toml").write_text(config)
        args = {"experiment": "chain", "phases": ["write", "cached"]}
        first = ctx.workers.run("assay", "run_tool.py", args, folder, env)["phases"]
        if where == "folder":  # another machine with a shared folder: the same folder
            (other / "assay.toml").write_text(f'cache_dir = "{folder / "data" / "cache"}"\n')
        again = ctx.workers.run("assay", "run_tool.py", {**args, "phases": ["cached"]}, other, env)
    phases = {
        "write": first["write"],
        "cached": first["cached"],
        "elsewhere": again["phases"]["cached"],
    }
    for name, phase in phases.items():
        expect(phase["correct"], f"{where} {name}: a parameter set ended with a wrong value")
        if name != "write":
            expect(phase["executed"] == 0, f"{where} {name}: {phase['executed']} stages ran")
            expect(phase["runner_loaded"] == 0, f"{where} {name}: artifacts were loaded")
        found[name] = phase["seconds"]
    return found


def request_cost(endpoint: str) -> dict[str, float]:
    """Milliseconds of one small PUT and one small GET on the server (median of 50)."""
    fs = _filesystem(endpoint)
    bucket = f"probe-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    puts, gets = [], []
    for i in range(50):
        start = time.perf_counter()
        fs.pipe_file(f"{bucket}/{i}.json", b"{}")
        middle = time.perf_counter()
        fs.cat_file(f"{bucket}/{i}.json")
        puts.append(middle - start)
        gets.append(time.perf_counter() - middle)
    return {"put": Sample(puts, "s").median * 1000, "get": Sample(gets, "s").median * 1000}


def _filesystem(endpoint: str):
    import os

    import s3fs

    os.environ.update(CREDENTIALS)
    return s3fs.S3FileSystem(endpoint_url=endpoint, use_listings_cache=False)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server in its own process on a free port of 127.0.0.1; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                expect(server.poll() is None and time.monotonic() < deadline,
                       "moto's S3 server did not start")  # fmt: skip
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
