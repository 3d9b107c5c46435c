"""Provenance and exports, session 34: tampered exports reused by `assay reproduce
--reuse`, file names that are not UTF-8, damaged sidecars and run records."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from assay.cache import file_checksum
from assay.errors import CacheError
from conftest import run_cli
from git_helpers import GITIGNORE, git, init_repo
from notebook_helpers import execute_notebook
from test_export import _no_outer_repository, exported, ok  # noqa: F401 (an autouse fixture)

EXPERIMENT = """
from dataclasses import dataclass

import assay
from assay.caching import PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["numbers"], cachers=[PickleCacher])
def make(record):
    return list(range(record.params.n))


@assay.stage(inputs=["numbers"], outputs=["total"], cachers=[PickleCacher])
def add(record, numbers):
    return {"sum": sum(numbers)}


def get_params():
    return [Params(name="a", n=3), Params(name="b", n=5)]


def run(param_sets, manager):
    for params in param_sets:
        add(make(assay.Record(manager, params)))
"""


class _Marker:
    """Unpickling this writes a file: proof that a tampered pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "unpickled"))


@pytest.fixture
def pickle_export(tmp_path: Path) -> Path:
    """A --store-full export of a two-stage pickling experiment, in its git project."""
    project = tmp_path / "prov_s34"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "prov_s34_pickles.py").write_text(EXPERIMENT)
    init_repo(project, GITIGNORE)
    ok(run_cli("run", "prov_s34_pickles", "--store-full", cwd=project))
    return exported(project)


def _entry(export: Path, stage: str, param_set: str, output: str) -> Path:
    """The file of an artifact in an export's cache, from its run.json."""
    record = json.loads((export / "run.json").read_text())
    (artifact,) = [
        a
        for a in record["artifacts"]
        if (a["stage"], a["param_set"], a["name"]) == (stage, param_set, output)
    ]
    return export / artifact["path"]


def _tamper(file: Path, value: object) -> None:
    """Replace an artifact's pickle and update its sidecar to match: only run.json still
    holds the run's checksum."""
    file.write_bytes(pickle.dumps(value))
    sidecar = file.with_name(f"{file.stem}.meta.json")
    meta = json.loads(sidecar.read_text())
    meta["files"][0].update(checksum=file_checksum(file), size=file.stat().st_size)
    meta["size"] = file.stat().st_size
    sidecar.write_text(json.dumps(meta))


def test_reproduce_reuse_never_unpickles_a_tampered_artifact(
    pickle_export: Path, tmp_path: Path
) -> None:
    """--reuse copied the export's cache as it was: an artifact whose pickle and sidecar
    were changed together (run.json still recording the run's checksum) was a cache hit,
    and the re-run unpickled it (here: code that writes a file)."""
    marker = tmp_path / "unpickled.txt"
    _tamper(_entry(pickle_export, "make", "a", "numbers"), _Marker(marker))
    total = _entry(pickle_export, "add", "a", "total")
    total.unlink()  # so that the re-run needs `numbers` of set a
    total.with_name("total.meta.json").unlink()

    result = run_cli("reproduce", pickle_export, "--reuse", cwd=tmp_path)

    assert not marker.exists(), result
    assert "not reusing" in result.text and "does not match run.json" in result.text, result
    assert "re-run failed" not in result.text, result
    assert "│ damaged │ a │ make │ numbers │" in result.text, result
    assert "│ identical │ b │ add │ total │" in result.text, result


def test_reproduce_of_an_export_whose_sidecar_lists_no_file_says_it_is_damaged(
    pickle_export: Path, tmp_path: Path
) -> None:
    """A sidecar with `"files": []` passed for a record, and reproduce stopped with an
    IndexError traceback (as did `assay export full` and `assay.load` on such an entry)."""
    sidecar = _entry(pickle_export, "make", "b", "numbers").with_name("numbers.meta.json")
    meta = json.loads(sidecar.read_text())
    meta["files"] = []
    sidecar.write_text(json.dumps(meta))

    result = run_cli("reproduce", pickle_export, cwd=tmp_path)

    assert "Traceback" not in result.output, result
    assert "│ damaged │ b │ make │ numbers │ the exported copy's sidecar" in result.text, result
    assert "│ identical │ a │ make │ numbers │" in result.text, result


def test_export_of_a_run_whose_cache_sidecar_lists_no_file_leaves_it_out(
    pickle_export: Path, tmp_path: Path
) -> None:
    project = pickle_export.parent.parent.parent
    record = json.loads((pickle_export / "run.json").read_text())
    (artifact,) = [a for a in record["artifacts"] if (a["stage"], a["param_set"]) == ("add", "a")]
    stage_key, output = artifact["key"].rsplit(".", 1)
    sidecar = project / "data" / "cache" / "objects" / stage_key[:2] / stage_key
    sidecar = sidecar / f"{output}.meta.json"
    meta = json.loads(sidecar.read_text())
    meta["files"] = []
    sidecar.write_text(json.dumps(meta))
    shutil.rmtree(pickle_export)  # else its copy of the artifact is exported

    result = run_cli("export", "full", "1", "-o", tmp_path / "again", cwd=project)

    assert result.code == 0 and "Traceback" not in result.output, result
    again = json.loads((tmp_path / "again" / "run.json").read_text())
    assert again["export"]["artifacts"]["missing"] == [artifact["key"]]


@pytest.mark.parametrize(
    ("section", "value"),
    [
        (("export",), "a string"),
        (("export", "code"), ["a", "list"]),
        (("export", "artifacts", "missing"), 5),
        (("provenance", "git"), [1]),
        (("stages",), {}),
    ],
)
def test_reproduce_of_a_run_json_with_a_section_of_another_type_says_which(
    pickle_export: Path, tmp_path: Path, section: tuple, value: object
) -> None:
    """run.json sections of the wrong type (hand-edited, damaged) gave tracebacks
    (AttributeError: 'str' object has no attribute 'get', ...)."""
    record = json.loads((pickle_export / "run.json").read_text())
    holder = record
    for name in section[:-1]:
        holder = holder[name]
    holder[section[-1]] = value
    (pickle_export / "run.json").write_text(json.dumps(record))

    result = run_cli("reproduce", pickle_export, cwd=tmp_path)

    assert result.code == 1 and "Traceback" not in result.output, result
    assert "is a damaged run record" in result.text, result
    assert f"its {'.'.join(section)} is {type(value).__name__}" in result.text, result


def test_store_full_snapshots_files_whose_names_are_not_utf8(tmp_path: Path) -> None:
    """git's file names were decoded with U+FFFD for bytes that are not UTF-8 (a Latin-1
    name from an older system): such a name named no file, and the snapshot dropped the
    file silently, tracked or not, also when the run's code was rebuilt from git."""
    project = tmp_path / "prov_s34_names"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "prov_s34_latin.py").write_text(EXPERIMENT)
    folder = os.fsencode(project)
    tracked, untracked = folder + b"/r\xe9sum\xe9.txt", folder + b"/brouillon_\xfe.txt"
    ignored = folder + b"/cl\xe9.env"
    Path(os.fsdecode(tracked)).write_text("tracked\n")
    init_repo(project, GITIGNORE)
    Path(os.fsdecode(tracked)).write_text("tracked\nchanged before the run\n")
    Path(os.fsdecode(untracked)).write_text("untracked\n")
    Path(os.fsdecode(ignored)).write_text("TOKEN=1\n")  # .gitignore has `.env` only

    ok(run_cli("run", "prov_s34_latin", "--store-full", cwd=project))

    export = exported(project)
    code = os.fsencode(export / "code")
    assert Path(os.fsdecode(code + b"/r\xe9sum\xe9.txt")).read_text().endswith("the run\n")
    assert Path(os.fsdecode(code + b"/brouillon_\xfe.txt")).read_text() == "untracked\n"
    assert not Path(os.fsdecode(code + b"/cl\xe9.env")).exists()
    left_out = json.loads((export / "run.json").read_text())["export"]["code"]["left_out"]
    assert {"path": "cl\ufffd.env", "reason": "may hold secrets"} in left_out

    # Committed and changed since: the run's code is rebuilt from git (with no earlier
    # export, whose snapshot would be kept).
    shutil.rmtree(export)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "later")
    Path(os.fsdecode(tracked)).write_text("changed after the run\n")
    again = tmp_path / "again"
    ok(run_cli("export", "full", "1", "-o", again, cwd=project))
    assert json.loads((again / "run.json").read_text())["export"]["code"]["rebuilt"]
    code = os.fsencode(again / "code")
    assert Path(os.fsdecode(code + b"/r\xe9sum\xe9.txt")).read_text().endswith("the run\n")
    assert Path(os.fsdecode(code + b"/brouillon_\xfe.txt")).read_text() == "untracked\n"


def test_export_rebuilds_the_run_s_code_when_it_had_changed_a_binary_file(
    tmp_path: Path,
) -> None:
    """git's diff of a changed binary file says only "Binary files ... differ", and `git
    apply` refused the whole recorded diff for it: a run that had changed a tracked
    figure or data file, exported after a commit, got today's code instead of its own,
    though every change to its code was recorded."""
    project = tmp_path / "prov_s34_binary"
    (project / "experiments").mkdir(parents=True)
    stage = project / "experiments" / "prov_s34_bin.py"
    stage.write_text(EXPERIMENT)
    (project / "logo.png").write_bytes(bytes(range(256)))
    (project / "old.bin").write_bytes(bytes(range(256)) * 2)
    init_repo(project, GITIGNORE)
    stage.write_text(EXPERIMENT.replace("sum(numbers)", "sum(numbers) + 1"))
    (project / "logo.png").write_bytes(bytes(range(256)) + b"\0 changed at the run")
    (project / "old.bin").unlink()
    ok(run_cli("run", "prov_s34_bin", cwd=project))
    git(project, "checkout", "--", "old.bin")  # back, and committed with the rest
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "later")
    stage.write_text(EXPERIMENT.replace("sum(numbers)", "sum(numbers) + 2"))
    (project / "logo.png").write_bytes(b"changed after the run")

    result = ok(run_cli("export", "full", "1", "-o", tmp_path / "export", cwd=project))

    code = tmp_path / "export" / "code"
    section = json.loads((tmp_path / "export" / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] and section["same_as_run"] is False, section
    assert "sum(numbers) + 1" in (code / "experiments" / "prov_s34_bin.py").read_text()
    assert (code / "logo.png").read_bytes() == b"changed after the run"
    assert not (code / "old.bin").exists()
    assert "binary file(s) logo.png" in section["note"] and "logo.png" in result.text


def test_export_says_an_untracked_module_gone_since_the_run_is_not_in_it(
    tmp_path: Path,
) -> None:
    """An untracked module the run imported, deleted before the export: the note said it
    was in `code/` "as it was when this export was made", and no warning was given; the
    reproduction then failed, and said it re-ran as "run None"."""
    project = tmp_path / "prov_s34_gone"
    (project / "experiments").mkdir(parents=True)
    stage = project / "experiments" / "prov_s34_gone.py"
    stage.write_text(EXPERIMENT)
    init_repo(project, GITIGNORE)
    (project / "prov_s34_helper.py").write_text("EXTRA = 0\n")
    stage.write_text("import prov_s34_helper\n" + EXPERIMENT)
    ok(run_cli("run", "prov_s34_gone", cwd=project))
    (project / "prov_s34_helper.py").unlink()
    stage.write_text(EXPERIMENT)

    result = ok(run_cli("export", "full", "1", "-o", tmp_path / "export", cwd=project))

    section = json.loads((tmp_path / "export" / "run.json").read_text())["export"]["code"]
    assert section["rebuilt"] and section["same_as_run"] is False, section
    assert not (tmp_path / "export" / "code" / "prov_s34_helper.py").exists()
    assert "no longer in the project" in section["note"], section
    assert "as they were when this export was made" not in section["note"], section
    assert "prov_s34_helper.py" in result.text and "no longer in the project" in result.text

    reproduced = run_cli("reproduce", tmp_path / "export", cwd=tmp_path)
    assert reproduced.code == 1 and "run None" not in reproduced.text, reproduced
    assert "stopped before its run was recorded" in reproduced.text, reproduced


def test_the_code_snapshot_copies_no_file_a_link_leads_to_outside_the_project(
    tmp_path: Path,
) -> None:
    """A symbolic link in the project (git holds only the link) was followed: the export
    held the content of a file outside the project, or of one left out as a secret."""
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "credentials").write_text("aws_secret_access_key = XYZ\n")
    project = tmp_path / "prov_s34_links"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "prov_s34_links.py").write_text(EXPERIMENT)
    (project / "settings.yaml").symlink_to(outside / "credentials")
    (project / "notes.txt").write_text("mine\n")
    (project / "notes_link.txt").symlink_to("notes.txt")  # inside, and copied itself
    init_repo(project, GITIGNORE)  # .env is ignored, the links are tracked
    (project / ".env").write_text("TOKEN=secret\n")
    (project / "env.txt").symlink_to(".env")  # untracked, not ignored

    ok(run_cli("run", "prov_s34_links", "--store-full", cwd=project))

    export = exported(project)
    held = [p.read_text() for p in (export / "code").rglob("*") if p.is_file()]
    assert not any("XYZ" in text or "TOKEN" in text for text in held)
    assert (export / "code" / "notes_link.txt").read_text() == "mine\n"
    left_out = json.loads((export / "run.json").read_text())["export"]["code"]["left_out"]
    reasons = {item["path"]: item["reason"] for item in left_out}
    assert "outside the project" in reasons["settings.yaml"], reasons
    assert "may hold secrets" in reasons["env.txt"], reasons

    shutil.rmtree(export)
    asked = ok(run_cli("export", "full", "1", "--include", "settings.yaml", cwd=project))
    assert "XYZ" in (exported(project) / "code" / "settings.yaml").read_text(), asked


@pytest.mark.parametrize("where", ["no git on PATH", "a repository without commits"])
def test_the_export_note_says_why_the_run_recorded_no_commit(tmp_path: Path, where: str) -> None:
    """The note said "The run was not in a git repository with commits" also for a run
    in a repository with commits, made where git was not installed."""
    project = tmp_path / "prov_s34_nogit"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "prov_s34_nogit.py").write_text(EXPERIMENT)
    init_repo(project, GITIGNORE, commit=where != "a repository without commits")
    no_git = tmp_path / "bin"
    no_git.mkdir()
    env = {"PATH": str(no_git)} if where == "no git on PATH" else None

    ok(run_cli("run", "prov_s34_nogit", "--store-full", cwd=project, env=env))

    note = json.loads((exported(project) / "run.json").read_text())["export"]["code"]["note"]
    if where == "no git on PATH":
        assert "git is not installed" in note and "not in a git repository" not in note, note
    else:
        assert "no git commit (no commit yet)" in note, note


def test_the_code_snapshot_leaves_out_exports_written_elsewhere_in_the_project(
    pickle_export: Path, tmp_path: Path
) -> None:
    """An export written into the project with -o (not data/runs/), and a reproduction's
    working folder there, were copied whole into the next export's code snapshot: their
    cached artifacts, code copies and run stores, growing with every export."""
    project = pickle_export.parent.parent.parent
    ok(run_cli("export", "full", "1", "-o", "exports/first", cwd=project))
    ok(run_cli("reproduce", "exports/first", "--workdir", "checks/again", cwd=project))
    (project / "analysis.py").write_text("KEEP = 1\n")  # untracked, and code

    ok(run_cli("run", "prov_s34_pickles", "--store-full", cwd=project))

    (second,) = [p for p in (project / "data" / "runs").iterdir() if p != pickle_export]
    code = second / "code"
    assert (code / "analysis.py").is_file()
    assert not (code / "exports").exists() and not (code / "checks").exists()
    left_out = json.loads((second / "run.json").read_text())["export"]["code"]["left_out"]
    reasons = {item["path"]: item["reason"] for item in left_out}
    assert "an exported run" in reasons["exports/first/"], reasons
    assert "assay reproduce" in reasons["checks/again/"], reasons


def test_a_link_to_a_file_of_the_project_s_repository_is_copied(tmp_path: Path) -> None:
    """In a repository holding several projects, a link to shared code beside the project
    is in every checkout of the repository: its file is part of the run's code."""
    repository = tmp_path / "mono"
    (repository / "shared").mkdir(parents=True)
    (repository / "shared" / "prov_s34_common.py").write_text("EXTRA = 1\n")
    project = repository / "prov_s34_mono"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "prov_s34_mono.py").write_text(
        "import prov_s34_common  # noqa\n" + EXPERIMENT
    )
    (project / "prov_s34_common.py").symlink_to("../shared/prov_s34_common.py")
    (project / "assay.toml").write_text("")
    init_repo(repository, GITIGNORE)

    ok(run_cli("run", "prov_s34_mono", "--store-full", cwd=project))

    code = exported(project) / "code"
    assert (code / "prov_s34_common.py").read_text() == "EXTRA = 1\n"
    assert not (code / "prov_s34_common.py").is_symlink()


NOISY = EXPERIMENT.replace(
    "return list(range(record.params.n))",
    'return list(range(record.params.n)) + [int.from_bytes(os.urandom(4), "big")]',
).replace("from dataclasses import dataclass", "import os\nfrom dataclasses import dataclass")


def test_the_run_s_notebook_loads_no_bytes_a_later_run_put_under_its_keys(
    tmp_path: Path, monkeypatch
) -> None:
    """A stage that is not deterministic, run again with --overwrite: the first run's
    notebook loaded the later run's values under the first run's name, "with its checksum
    verified" (against the later sidecar), though the notebook records the run's."""
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    project = tmp_path / "prov_s34_noisy"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "prov_s34_noisy.py").write_text(NOISY)
    ok(run_cli("run", "prov_s34_noisy", "-q", cwd=project))
    ok(run_cli("export", "notebook", "1", "-o", "first.ipynb", cwd=project))
    ok(run_cli("run", "prov_s34_noisy", "-q", "--overwrite", cwd=project))

    notebook = nbformat.read(str(project / "first.ipynb"), as_version=4)
    rerun = next(i for i, c in enumerate(notebook.cells) if c.source == "## Re-run")
    notebook.cells = notebook.cells[:rerun]
    load_cell = next(
        i
        for i, cell in enumerate(notebook.cells)
        if cell.source.startswith("numbers") and "assay.load(key=" in cell.source
    )
    notebook.cells = notebook.cells[: load_cell + 1]
    nbclient = pytest.importorskip("nbclient")
    with pytest.raises(nbclient.exceptions.CellExecutionError) as failed:
        execute_notebook(notebook, project)
    assert "is not the one recorded" in str(failed.value) and "Nothing was loaded" in str(
        failed.value
    )

    from assay import load

    (log,) = (project / "logs").glob("prov_s34_noisy-0001-*.json")
    record = json.loads(log.read_text())
    first = next(a for a in record["artifacts"] if a["name"] == "numbers")
    with pytest.raises(CacheError, match="is not the one recorded"):
        load(key=first["key"], project_root=project, checksum=first["checksum"])
