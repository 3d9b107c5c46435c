"""Curifactory's public names that assay lacked (migration findings, session 32).

A stage or notebook written for Curifactory 0.20 reaches for the manager's, the record's
and the cachers' names, and for a few module-level helpers. Each name assay can give the
same meaning now has it; each other one says what to use instead of Python's bare "has no
attribute". Each test is a small Curifactory-style project with only its imports renamed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import assay
from conftest import run_cli


def make_project(root: Path, experiment: str, params: str | None = None) -> Path:
    """A project folder with ``experiments/exp.py`` (and ``params/base.py``)."""
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "__init__.py").write_text("")
    (root / "experiments" / "exp.py").write_text(textwrap.dedent(experiment))
    if params is not None:
        (root / "params").mkdir()
        (root / "params" / "base.py").write_text(textwrap.dedent(params))
    return root


# -- the manager's, record's and cachers' names a stage uses -------------------------------

READS_THE_MANAGER = """
    import json
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher, PickleCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 3


    @cf.stage(inputs=None, outputs=["numbers"], cachers=[PickleCacher])
    def make(record):
        manager = record.manager
        side = manager.get_artifact_path("side.txt", record)
        with open(side, "w") as handle:
            handle.write("side")
        hand = JsonCacher(path_override=record.get_path("hand.json"))
        hand.set_record(record)
        seen = {
            "logs_path": manager.logs_path,
            "runs_path": manager.runs_path,
            "manager_cache_path": manager.manager_cache_path,
            "parameter_files": manager.parameter_files,
            "hostname": manager.hostname,
            "git_workdir_dirty": manager.git_workdir_dirty,
            "stage_active": manager.stage_active,
            "index": record.get_record_index(),
            "reference": record.get_reference_name(True),  # Curifactory's map=True
            "side": side,
            "hand_params_name": hand.metadata["params_name"],
            "hand_stage": hand.collect_metadata()["stage"],
        }
        print("SEEN", json.dumps(seen))
        return list(range(record.params.n))


    def run(param_sets, manager):
        for param_set in param_sets:
            make(cf.Record(manager, param_set))
"""

BASE = """
    from experiments.exp import Params

    def get_params():
        return [Params(name="three"), Params(name="four", n=4)]
"""


def seen_by_stages(output: str) -> list[dict]:
    return [
        json.loads(line.split("SEEN ", 1)[1]) for line in output.splitlines() if "SEEN " in line
    ]


def test_a_stage_reads_curifactorys_manager_record_and_cacher_names(tmp_path: Path):
    """``manager.logs_path``, ``runs_path``, ``manager_cache_path``, ``parameter_files``,
    ``hostname``, ``git_workdir_dirty``, ``stage_active``, ``get_artifact_path()``,
    ``record.get_record_index()`` and a cacher's ``set_record()`` / ``collect_metadata()``
    all failed with "object has no attribute"."""
    root = make_project(tmp_path, READS_THE_MANAGER, BASE)

    result = run_cli("run", "exp", "-p", "base", cwd=root)

    assert result.code == 0, result
    three, four = seen_by_stages(result.stdout)
    assert three["logs_path"] == str(root / "logs")
    assert three["runs_path"] == str(root / "data" / "runs")
    assert three["manager_cache_path"] == str(root)
    assert three["parameter_files"] == ["base"]
    assert three["hostname"] == socket.gethostname()
    assert three["git_workdir_dirty"] is False  # no git here
    assert three["stage_active"] is True
    assert (three["index"], four["index"]) == (0, 1)
    assert four["reference"] == "Record 1 (four)"
    assert Path(three["side"]).read_text() == "side"
    assert Path(three["side"]).parent != Path(four["side"]).parent  # one per parameter set
    assert (three["hand_params_name"], three["hand_stage"]) == ("three", "make")


def test_a_parallel_runs_stages_see_its_parameter_files(tmp_path: Path):
    """In a worker process ``manager.parameter_files`` was ``[]`` and
    ``record.get_record_index()`` -1: a stage that wrote them into a result gave another
    result with ``--parallel`` than without."""
    root = make_project(tmp_path, READS_THE_MANAGER, BASE)

    result = run_cli("run", "exp", "-p", "base", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    seen = seen_by_stages(result.stdout)
    assert [s["parameter_files"] for s in seen] == [["base"], ["base"]]
    assert sorted(s["index"] for s in seen) == [0, 1]


def test_a_notebook_manager_answers_curifactorys_names(tmp_path: Path):
    """The same names on a live manager (no run recorded yet), and after a run made with
    the Python API."""
    root = make_project(tmp_path, READS_THE_MANAGER, BASE)
    manager = assay.ArtifactManager("nb", project_root=root)
    assert manager.parameter_files == []
    assert manager.hostname == socket.gethostname()
    assert manager.stage_active is False
    assert manager.git_workdir_dirty is False

    ran = assay.run_experiment("exp", ["base"], project_root=root)

    assert ran.parameter_files == ["base"]
    assert ran.logs_path == str(root / "logs")
    assert (Path(ran.logs_path) / f"{ran.run_id}.log").is_file()
    assert ran.stage_active is False
    assert [r.get_record_index() for r in ran.records] == [0, 1]


# -- names assay does not have: what to use instead ----------------------------------------


@pytest.mark.parametrize(
    ("name", "pointer"),
    [
        ("map_mode", "manager.plan"),
        ("status", "manager.run_info"),
        ("reproduction_line", "assay reproduce"),
        ("param_file_param_sets", "manager.parameter_files"),
        ("parallel_mode", "nothing uses it here"),
    ],
)
def test_a_managers_name_assay_lacks_says_what_to_use(tmp_path: Path, name: str, pointer: str):
    manager = assay.ArtifactManager("nb", project_root=tmp_path)
    with pytest.raises(AttributeError, match="Curifactory's") as caught:
        getattr(manager, name)
    assert pointer in str(caught.value)
    assert not hasattr(manager, "no_such_name")  # any other name: Python's AttributeError
    with pytest.raises(AttributeError, match="object has no attribute 'no_such_name'"):
        manager.no_such_name  # noqa: B018


def test_a_records_name_assay_lacks_says_what_to_use(tmp_path: Path):
    record = assay.Record(assay.ArtifactManager("nb", project_root=tmp_path), None)
    with pytest.raises(AttributeError, match=r"Record\.set_hash .*record\.get_hash\(\)"):
        record.set_hash()
    with pytest.raises(AttributeError, match=r"record\.state"):
        record.state_artifact_reps  # noqa: B018


def test_reporters_answer_curifactorys_attributes(tmp_path: Path):
    """``ImageReporter(...).image_path`` (Curifactory's) raised AttributeError; the
    attributes assay does not keep (``FigureReporter.fig``) say what holds their content."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from assay.reporting import FigureReporter, ImageReporter

    fig = plt.figure()
    fig.savefig(tmp_path / "plot.png")
    assert ImageReporter(tmp_path / "plot.png").image_path == str(tmp_path / "plot.png")
    with pytest.raises(FileNotFoundError, match="no image file at .*write the image first"):
        ImageReporter(tmp_path / "not-yet.png")
    with pytest.raises(AttributeError, match=r"FigureReporter\.fig .*reporter\.data"):
        FigureReporter(fig).fig  # noqa: B018
    plt.close(fig)


IMPORTS = [
    ("from assay.hashing import hash_param_set", "params_hash()"),
    ("from assay.hashing import get_param_set_hash_values", "field_hashes()"),
    ("from assay.experiment import list_experiments", "assay params"),
    ("from assay.reporting import run_report", "assay report"),
    ("from assay.caching import RawJupyterNotebookCacher", "FileReferenceCacher"),
    ("from assay.staging import ExecutingWithSkippedInputError", "assay skips no stage"),
    ("from assay.store import ManagerStore", "RunStore"),
    ("from assay.project import initialize_project", "assay init"),
    ("from assay import utils", "nothing uses it here"),
    ("import assay as cf; cf.hashing.compute_hash", "record.get_hash()"),
    ("import assay as cf; cf.notebook", "--notebook"),
]


@pytest.mark.parametrize(("code", "pointer"), IMPORTS)
def test_a_module_name_assay_lacks_says_what_to_use(code: str, pointer: str):
    """``from curifactory.hashing import hash_param_set`` renamed said only "cannot import
    name"; now the message names the Curifactory helper and what to use instead."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("assay.compat.NotInAssayError: curifactory."), last
    assert pointer in last, last


def test_other_missing_module_names_stay_python_errors():
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'"):
        from assay.hashing import no_such_name  # noqa: F401
    assert not hasattr(assay.reporting, "no_such_name")
    assert not hasattr(assay, "no_such_name")


# -- manager.lock() ------------------------------------------------------------------------

TAKES_TURNS = """
    import time
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 0


    @cf.stage(inputs=None, outputs=["count"], cachers=[JsonCacher])
    def count(record):
        path = record.manager.get_run_output_path("counter.txt")
        record.manager.lock()
        try:
            with open(path, "a+") as handle:
                handle.seek(0)
                seen = int(handle.read() or 0)
            time.sleep(0.2)  # another stage reading now would count the same number
            with open(path, "w") as handle:
                handle.write(str(seen + 1))
        finally:
            record.manager.unlock()
        return [record.params.n, seen]


    def get_params():
        return [Params(name=f"p{i}", n=i) for i in range(4)]


    def run(param_sets, manager):
        for param_set in param_sets:
            count(cf.Record(manager, param_set))
"""


def test_manager_lock_keeps_other_processes_out_until_unlock(tmp_path: Path):
    manager = assay.ArtifactManager("nb", project_root=tmp_path)
    probe = textwrap.dedent(
        f"""
        import fcntl
        with open({str(tmp_path / "logs" / ".manager.lock")!r}, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("held")
            else:
                print("free")
        """
    )

    def other_process() -> str:
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        return run.stdout.strip()

    manager.lock()
    manager.lock()  # held already: nothing to wait for
    assert other_process() == "held"
    manager.unlock()
    assert other_process() == "free"
    manager.unlock()  # not held: nothing to do


def test_parallel_stages_take_turns_with_manager_lock(tmp_path: Path):
    """Four stages on two worker processes each add one to a file under the lock: none of
    the additions is lost."""
    root = make_project(tmp_path, TAKES_TURNS)

    result = run_cli("run", "exp", "--parallel", "2", cwd=root)

    assert result.code == 0, result
    (counter,) = (root / "data" / "runs").glob("*/counter.txt")
    assert counter.read_text() == "4"


# -- the run's git state, read by a stage -----------------------------------------------------

READS_GIT = """
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 0


    @cf.stage(inputs=None, outputs=["n"], cachers=[JsonCacher])
    def note_commit(record):
        manager = record.manager
        print("GIT", record.params.n, manager.git_commit_hash or "-", manager.git_workdir_dirty)
        return record.params.n


    def get_params():
        return [Params(name=f"p{i}", n=i) for i in range(3)]


    def run(param_sets, manager):
        for param_set in param_sets:
            note_commit(cf.Record(manager, param_set))
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("parallel", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_a_stage_sees_the_runs_git_commit_in_every_process(tmp_path: Path, parallel: list):
    """README: a stage finds the run's ``git_commit_hash`` "also on workers"; with
    ``--parallel`` every stage saw "" (and ``git_workdir_dirty`` False on an edited tree)."""
    root = make_project(tmp_path, READS_GIT)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    head = git(root, "rev-parse", "HEAD")

    clean = run_cli("run", "exp", *parallel, cwd=root)
    (root / "experiments" / "notes.py").write_text("# not committed\n")
    git(root, "add", "experiments/notes.py")
    edited = run_cli("run", "exp", "--overwrite", *parallel, cwd=root)

    for result, dirty in ((clean, "False"), (edited, "True")):
        assert result.code == 0, result
        lines = sorted(
            line.split() for line in result.stdout.splitlines() if line.startswith("GIT")
        )
        assert lines == [["GIT", str(n), head, dirty] for n in range(3)], result


# -- what a stage sees of its record and run, in every process ------------------------------

READS_ITS_PLACE = """
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 0


    def seen(record, stage):
        manager = record.manager
        print("SAW", stage, record.name, "|".join(record.stages), manager.notes, flush=True)


    @cf.stage(inputs=None, outputs=["a"], cachers=[JsonCacher])
    def first(record):
        seen(record, "first")
        return record.params.n


    @cf.stage(inputs=["a"], outputs=["b"], cachers=[JsonCacher])
    def second(record, a):
        seen(record, "second")
        return a + 1


    @cf.aggregate(inputs=["b"], outputs=["total"], cachers=[JsonCacher])
    def total(record, records, b):
        seen(record, "total")
        print("OTHERS", sorted("|".join(r.stages) for r in records), flush=True)
        return sum(b.values())


    def get_params():
        return [Params(name=f"p{i}", n=i) for i in range(2)]


    def run(param_sets, manager):
        for param_set in param_sets:
            second(first(cf.Record(manager, param_set)))
        total(cf.Record(manager, None))
"""


@pytest.mark.parametrize("parallel", [[], ["--parallel", "2"]], ids=["serial", "parallel"])
def test_a_stage_sees_the_stages_up_to_itself_and_the_runs_notes(tmp_path: Path, parallel):
    """``record.stages`` inside ``first`` was ``["first", "second"]`` (the whole plan: as
    Curifactory's own code does, ``record.stages[-1]`` named another stage), and ``[]``
    in a worker process; ``manager.notes`` was ``None`` in a worker."""
    root = make_project(tmp_path, READS_ITS_PLACE)

    result = run_cli("run", "exp", "--notes", "first try", *parallel, cwd=root)

    assert result.code == 0, result
    lines = sorted(line for line in result.stdout.splitlines() if line.startswith("SAW"))
    assert lines == [
        "SAW first p0 first first try",
        "SAW first p1 first first try",
        "SAW second p0 first|second first try",
        "SAW second p1 first|second first try",
        "SAW total aggregate total first try",
    ], result
    assert "OTHERS ['first|second', 'first|second']" in result.stdout
