"""The benchmark harness: environments, fresh-process workers, scratch projects, statistics.

Every measurement runs in a new process (``workloads/*.py``), so imports and
in-memory caches never leak from one repetition to the next: assay's with
the repository's ``.venv`` python (the one running ``python -m benchmarks``),
Curifactory's and joblib's with the python of ``benchmarks/.venv-curifactory``,
which is created here on first use. assay itself never imports Curifactory.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
WORKLOADS = BENCHMARKS / "workloads"
CURIFACTORY_VENV = BENCHMARKS / ".venv-curifactory"
CURIFACTORY = "curifactory==0.20.5"
SHARED_LIBRARIES = ("joblib", "numpy", "pandas", "pyarrow")
MARKER = "BENCH-RESULT "


class BenchmarkError(RuntimeError):
    """A crash or a wrong result: the benchmark run fails (figures never do)."""


# -- statistics ------------------------------------------------------------------------


@dataclass
class Sample:
    """One figure measured over repetitions: shown as median (min–max)."""

    values: list[float]
    unit: str
    higher_is_better: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def scaled(self, factor: float, unit: str, higher_is_better: bool | None = None) -> Sample:
        """The same figure times ``factor``, in another unit."""
        better = self.higher_is_better if higher_is_better is None else higher_is_better
        return Sample([v * factor for v in self.values], unit, better)

    def inverse(self, numerator: float, unit: str) -> Sample:
        """``numerator / value`` for every repetition (a time becomes a rate)."""
        return Sample([numerator / v for v in self.values], unit, not self.higher_is_better)

    def __str__(self) -> str:
        """``median (min–max)``; the unit goes in the column's header."""
        if len(self.values) == 1:
            return number(self.median)
        return f"{number(self.median)} ({number(self.low)}–{number(self.high)})"


def number(x: float) -> str:
    """A figure with 3 significant digits, without scientific notation."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def ratio(ours: Sample | None, theirs: Sample | None) -> str:
    """How many times better assay's median is than the other's ("12×"; <1× means worse)."""
    if ours is None or theirs is None or ours.median <= 0 or theirs.median <= 0:
        return "—"  # not measured, or lost in the noise
    value = ours.median / theirs.median if ours.higher_is_better else theirs.median / ours.median
    return f"{number(value)}×"


# -- environments ----------------------------------------------------------------------


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def curifactory_python(say: Callable[[str], None]) -> Path:
    """The python of Curifactory's venv, creating or updating the venv if needed.

    The shared libraries are pinned to the versions in assay's venv, so the
    I/O and hashing comparisons use the same numpy, pandas and pyarrow.
    """
    python = CURIFACTORY_VENV / "bin" / "python"
    wanted = [CURIFACTORY] + [f"{p}=={version(p)}" if version(p) else p for p in SHARED_LIBRARIES]
    stamp = CURIFACTORY_VENV / "bench-requirements.txt"
    if python.exists() and stamp.exists() and stamp.read_text().split() == wanted:
        return python
    say(f"Creating {CURIFACTORY_VENV.relative_to(REPO)} with {' '.join(wanted)} ...")
    if not python.exists():
        _check([sys.executable, "-m", "venv", str(CURIFACTORY_VENV)], "create the venv")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        _check(pip + wanted, "install Curifactory")
    except BenchmarkError:
        say("Pinned versions failed to install; installing the latest ones instead.")
        _check(pip + [CURIFACTORY, *SHARED_LIBRARIES], "install Curifactory")
    stamp.write_text("\n".join(wanted) + "\n")
    return python


def compile_sources() -> None:
    """Write assay's bytecode, as ``pip install`` does for Curifactory's venv.

    assay is installed in editable mode, and a machine with
    ``PYTHONDONTWRITEBYTECODE=1`` (such as the one CI runs on) would otherwise
    compile every module from source in every measured process, while
    Curifactory's modules load from the bytecode pip wrote.
    """
    import compileall

    compileall.compile_dir(str(REPO / "src" / "assay"), quiet=1)


def _check(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(f"Could not {what}: {' '.join(command)}\n{done.stderr[-3000:]}")


def other_versions(python: Path) -> dict[str, str | None]:
    """Package versions as seen by another venv's python."""
    code = (
        "import importlib.metadata as m, json\n"
        "def v(p):\n"
        "    try: return m.version(p)\n"
        "    except m.PackageNotFoundError: return None\n"
        f"print(json.dumps({{p: v(p) for p in {['curifactory', *SHARED_LIBRARIES]!r}}}))"
    )
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True).stdout)


# -- scratch projects and workers --------------------------------------------------------


def scratch_root() -> Path:
    """Where temporary projects go: ``$BENCH_SCRATCH``, else /work/bench-tmp, else benchmarks/.scratch.

    Not /tmp: on the development machine its metadata operations were
    measured several times slower (see :func:`metadata_probe`).
    """
    chosen = os.environ.get("BENCH_SCRATCH")
    if chosen:
        root = Path(chosen)
    elif Path("/work").is_dir() and os.access("/work", os.W_OK):
        root = Path("/work/bench-tmp")
    else:
        root = BENCHMARKS / ".scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def project(experiment: str | None = None) -> Iterator[Path]:
    """A new, empty project folder; ``experiments/`` gets a copy of a shared workload."""
    folder = Path(tempfile.mkdtemp(prefix="bench-", dir=scratch_root()))
    try:
        (folder / "experiments").mkdir()
        if experiment:
            shutil.copy(WORKLOADS / f"{experiment}.py", folder / "experiments")
            # The workloads' helpers, importable from the project root as a project's own
            # modules are (by workers of an existing Dask cluster too).
            shutil.copy(WORKLOADS / "_common.py", folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Workers:
    """Runs worker scripts with the right python for each tool."""

    pythons: dict[str, Path]
    timeout: float = 3600
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        tool: str,
        script: str,
        args: dict | None = None,
        cwd: Path | None = None,
        env: dict | None = None,
    ) -> dict:
        """Run ``workloads/SCRIPT`` for ``tool`` in a fresh process; return its JSON result."""
        environment = {**os.environ, **self.env, "BENCH_TOOL": tool}
        environment.update({k: str(v) for k, v in (env or {}).items()})
        environment.pop("PYTHONPATH", None)
        # As on a user's machine, modules load from bytecode (see compile_sources).
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        command = [str(self.pythons[tool]), str(WORKLOADS / script), json.dumps(args or {})]
        try:
            done = subprocess.run(
                command,
                cwd=cwd or scratch_root(),
                env=environment,
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchmarkError(f"{tool} {script} timed out after {self.timeout} s") from exc
        lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
        if done.returncode != 0 or not lines:
            raise BenchmarkError(
                f"{tool} worker {script} {json.dumps(args)} failed (exit {done.returncode}):\n"
                + (done.stderr or done.stdout)[-4000:]
            )
        return json.loads(lines[-1][len(MARKER) :])


def expect(condition: bool, message: str) -> None:
    """Fail the benchmark with ``message`` unless ``condition`` (a wrong result)."""
    if not condition:
        raise BenchmarkError(f"Wrong result: {message}")


def timed_command(command: list[str], cwd: Path) -> float:
    """Wall-clock seconds of a command, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


# -- the disk --------------------------------------------------------------------------


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (after syncing it), so the next read hits the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def dd(*operands: str) -> float:
    """Run ``dd``; return its throughput in MB/s (10^6 bytes), from its own byte count and time."""
    done = subprocess.run(["dd", *operands], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(f"dd {' '.join(operands)} failed: {done.stderr}")
    found = re.search(r"(\d+) bytes.*copied, ([\d.,e-]+) s", done.stderr)
    if not found:
        raise BenchmarkError(f"Cannot read dd's output: {done.stderr}")
    return int(found.group(1)) / float(found.group(2).replace(",", ".")) / 1e6


def disk_bandwidth(path: Path, megabytes: int) -> dict[str, float]:
    """Sequential bandwidth in MB/s: write ``path`` (fdatasync), read it cold, read it O_DIRECT.

    The file is left in place (of ``megabytes`` MB, rounded to 16 MB blocks).
    """
    count = max(1, round(megabytes / 16.777216))
    write = dd("if=/dev/zero", f"of={path}", "bs=16M", f"count={count}", "conv=fdatasync")
    evict(path)
    read = dd(f"if={path}", "of=/dev/null", "bs=16M")
    direct = dd(f"if={path}", "of=/dev/null", "bs=16M", "iflag=direct")
    return {"write": write, "read": read, "read_direct": direct}


def metadata_probe(folder: Path, files: int = 200) -> dict[str, float]:
    """Microseconds per small-file operation in ``folder``: ``create`` and ``symlink``.

    Creating a file, or a symlink, allocates an inode; on the development
    machine that cost varied from 20 to 800 µs between folders of the same
    disk, and it bounds what any file-based cache can do per artifact.
    """
    work = Path(tempfile.mkdtemp(prefix="probe-", dir=folder))
    try:
        start = time.perf_counter()
        for i in range(files):
            (work / f"f{i}").write_bytes(b"x")
        middle = time.perf_counter()
        for i in range(files):
            os.symlink(f"f{i}", work / f"s{i}")
        end = time.perf_counter()
        return {"create": (middle - start) / files * 1e6, "symlink": (end - middle) / files * 1e6}
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the machine -----------------------------------------------------------------------

SPEED_PROBE = 10_000_000
"""Iterations of the stages' pure-Python loop that :func:`loop_seconds` times by default."""


def loop_seconds(workers: Workers, loops: int = SPEED_PROBE) -> float:
    """Seconds that ``loops`` iterations of the stages' loop (``workloads/_common.py``,
    ``burn``) take in a fresh process now: the median of 3.

    It sizes the parallel stages, and tells how fast this shared machine ran
    Python during a benchmark run, to compare runs from different days.
    """
    args = {"mode": "serial", "n": 1, "loops": loops}
    times = sorted(
        workers.run("assay", "pool.py", args)["phases"]["run"]["seconds"] for _ in range(3)
    )
    return times[1]


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, OS, Python: from /proc where Linux has it."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "filesystem": filesystem(scratch_root()),
    }


def filesystem(path: Path) -> str:
    """The device and type of the filesystem holding ``path`` (from /proc/mounts)."""
    best = ("", "?", "?")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(path).startswith(mount) and len(mount) >= len(best[0]):
                best = (mount, device, kind)
    return f"{best[2]} on {best[1]} (mounted at {best[0]})"
