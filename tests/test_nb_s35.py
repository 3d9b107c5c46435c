"""The run's notebook, its Docker export and the index of reports, as a researcher meets
them (session 35): the cache the run used, the flags it was made with, --no-report runs.

Each test drives the real command line (``python -m assay`` in a subprocess) on a copy
of the ``basic`` test project; notebooks run in a real Jupyter kernel (nbclient).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assay.compare import compare_runs
from assay.store import RunStore
from conftest import one_experiment_project, run_cli
from notebook_helpers import execute_notebook
from test_report import table_rows


@pytest.fixture(autouse=True)
def _no_outer_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def ok(result):
    assert result.code == 0, result
    return result


def written_notebook(project: Path):
    import nbformat

    (folder,) = [p for p in (project / "data" / "runs").iterdir() if p.is_dir()]
    path = folder / f"{folder.name}.ipynb"
    return path, nbformat.read(str(path), as_version=4)


def rerun_call(notebook) -> str:
    """The source of the notebook's ``assay.run_experiment(...)`` call."""
    (source,) = [c.source for c in notebook.cells if "assay.run_experiment(" in c.source]
    return source.split("assay.run_experiment(", 1)[1]


def docker_command(project: Path) -> list[str]:
    """The default command (``CMD``) of the Dockerfile ``--docker`` wrote."""
    (dockerfile,) = (project / "data" / "runs").rglob("Dockerfile")
    (line,) = [x for x in dockerfile.read_text().splitlines() if x.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


# -- the cache the run used ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["the run", "the notebook's kernel"])
def test_the_notebook_loads_from_the_cache_the_run_used_with_or_without_assay_cache_dir(
    tmp_project, tmp_path, monkeypatch, where
):
    """`ASSAY_CACHE_DIR=DIR assay run ... --notebook`: the notebook said `CACHE = None` (the
    project's cache as the kernel finds it), so in Jupyter, started without the variable,
    every artifact cell failed with "No cached artifact has key ... in data/cache". And a
    notebook of a run on the project's cache, opened in a kernel that has the variable for
    some other cache, looked there."""
    other = tmp_path / "scratch-cache"
    run_env = {"ASSAY_CACHE_DIR": str(other)} if where == "the run" else {}
    ok(run_cli("run", "diamond", "--notebook", cwd=tmp_project, env=run_env))
    cache = other if where == "the run" else tmp_project / "data" / "cache"
    assert any(cache.rglob("*.json")), "the run did not use the cache the test expects"
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    if where == "the run":
        monkeypatch.delenv("ASSAY_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("ASSAY_CACHE_DIR", str(other))  # another cache, empty
    path, notebook = written_notebook(tmp_project)

    text = execute_notebook(notebook, path.parent)  # raises CellExecutionError if a cell fails

    assert f"artifacts from: {cache}" in text, text
    assert "{'a': 11, 'b': 32}" in text  # the aggregate, loaded
    run_id = path.stem
    assert f"9 of 9 artifacts of {run_id} came out with the same key and checksum" in text


# -- the flags the run was made with -------------------------------------------------------


def test_a_run_with_ignore_lazy_is_re_run_and_reproduced_with_ignore_lazy(tmp_project):
    """`assay run lazy --ignore-lazy --docker --notebook`: the image's command, the
    notebook's re-run and `assay reproduce` left --ignore-lazy out (it was not even
    recorded), so a stage given a `Lazy(..., resolve=False)` output got a handle instead of
    the value, and the reproduction came out "not exact"."""
    ok(run_cli("run", "lazy", "--ignore-lazy", "--docker", "--notebook", cwd=tmp_project))

    assert docker_command(tmp_project) == ["assay", "run", "lazy", "--ignore-lazy"]
    _, notebook = written_notebook(tmp_project)
    assert "ignore_lazy=True," in rerun_call(notebook)
    (export,) = [p for p in (tmp_project / "data" / "runs").iterdir() if p.is_dir()]
    result = run_cli("reproduce", export, cwd=tmp_project)
    assert result.code == 0, result
    assert "the reproduction is exact" in result.text, result


def test_the_docker_image_re_runs_a_dry_cache_run_with_every_flag_it_had(tmp_project):
    """The Dockerfile's `CMD` ("re-run the experiment as recorded") left out --dry-cache,
    so the image's run wrote to the cache the recorded run never wrote to; the notebook's
    re-run had it. `assay reproduce` of the same export still saves what it computes, to
    compare it."""
    flags = ["-p", "three", "--names", "a", "--names", "c", "--set", "offset=3"]
    flags += ["--prefix", "pf", "--lazy", "--dry-cache"]
    ok(run_cli("run", "diamond", *flags, "--docker", "--notebook", cwd=tmp_project))

    assert docker_command(tmp_project) == ["assay", "run", "diamond", *flags]
    _, notebook = written_notebook(tmp_project)
    call = rerun_call(notebook)
    for argument in ("['three']", "names=['a', 'c']", "overrides=['offset=3']", "prefix='pf'",
                     "lazy=True", "dry_cache=True"):  # fmt: skip
        assert f"{argument}," in call, call
    (export,) = [p for p in (tmp_project / "data" / "runs").iterdir() if p.is_dir()]
    result = run_cli("reproduce", export, cwd=tmp_project)
    (workdir,) = (export / "reproductions").iterdir()
    command = json.loads((workdir / ".assay-reproduction.json").read_text())
    assert command["run"] == export.name
    assert any((workdir / "data" / "cache").rglob("*.json")), result  # it saved, to compare


def test_compare_names_ignore_lazy_where_one_run_had_it(tmp_project):
    """`assay compare` of a run with --ignore-lazy and one without listed no setting that
    differed, though a stage got a value in one and a handle in the other."""
    ok(run_cli("run", "lazy", "--ignore-lazy", "--no-report", cwd=tmp_project))
    ok(run_cli("run", "lazy", "--no-report", cwd=tmp_project))

    result = ok(run_cli("compare", "1", "2", cwd=tmp_project))

    assert "ignore_lazy" in result.text, result
    with RunStore(tmp_project / "assay.db") as store:
        assert ("ignore_lazy", True, False) in compare_runs(store, 1, 2).settings
        assert not [s for s in compare_runs(store, 2, 2).settings if s[0] == "ignore_lazy"]


def test_a_run_recorded_before_ignore_lazy_was_kept_is_read_from_its_command_line():
    """Runs recorded before assay kept --ignore-lazy in the run's settings: their command
    line says it."""
    from assay.export.reproduce import rerun_spec

    run = {"id": "lazy-0001", "experiment": "lazy", "command": "assay run lazy --ignore-lazy",
           "config": {"experiment": "lazy", "param_files": []}}  # fmt: skip
    assert rerun_spec({"run": run}).cli_args() == ["run", "lazy", "--ignore-lazy"]
    run["command"] = "assay run lazy"
    assert rerun_spec({"run": run}).cli_args() == ["run", "lazy"]


# -- the index of runs ---------------------------------------------------------------------


def test_a_no_report_run_is_listed_in_the_index_at_once_marked_as_having_no_report(
    tmp_project,
):
    """`assay run --no-report` after runs with reports: reports/index.html did not list it
    until `assay report` rebuilt the index. It is listed now, marked, with how to write
    its report; a project that never wrote a report still gets no reports/ folder."""
    ok(run_cli("run", "diamond", "--no-report", cwd=tmp_project))
    assert not (tmp_project / "reports").exists()
    ok(run_cli("run", "diamond", cwd=tmp_project))
    ok(run_cli("run", "diamond", "--no-report", "--notes", "<b>quick</b> & dirty", cwd=tmp_project))

    page = (tmp_project / "reports" / "index.html").read_text()
    rows = table_rows(page)
    assert [row[0] for row in rows] == ["3", "2", "1"], rows
    assert rows[0][1].endswith("(no report)") and rows[0][-1] == "<b>quick</b> & dirty", rows
    assert "&lt;b&gt;quick&lt;/b&gt; &amp; dirty" in page  # escaped
    assert re.search(r"<code>assay report NUMBER</code> writes it", page), page
    assert not (tmp_project / "reports" / rows[0][1].split()[0]).exists()

    ok(run_cli("report", "3", cwd=tmp_project))
    rows = table_rows((tmp_project / "reports" / "index.html").read_text())
    assert not rows[0][1].endswith("(no report)"), rows


def test_a_notebook_saved_outside_the_project_loads_and_re_runs_the_run(
    tmp_project, tmp_path, monkeypatch
):
    """`assay export notebook 1 -o ~/notebooks/run1.ipynb`: outside any project the notebook
    took its own folder for the project, so every artifact cell looked for data/cache/
    there ("No cached artifact has key") and the re-run found no experiment."""
    ok(run_cli("run", "diamond", cwd=tmp_project))
    elsewhere = tmp_path / "notebooks" / "run1.ipynb"
    ok(run_cli("export", "notebook", "1", "-o", elsewhere, cwd=tmp_project))
    import nbformat

    notebook = nbformat.read(str(elsewhere), as_version=4)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.delenv("ASSAY_CACHE_DIR", raising=False)

    text = execute_notebook(notebook, elsewhere.parent)  # raises CellExecutionError if one fails

    assert f"project: {tmp_project.resolve()}" in text, text
    assert "{'a': 11, 'b': 32}" in text
    assert "9 of 9 artifacts of diamond-0001-" in text and "came out with the same key" in text
    assert list(elsewhere.parent.iterdir()) == [elsewhere]  # nothing written beside it


# -- the Docker export ---------------------------------------------------------------------

# Docker's grammar of an image name (distribution/reference): lower-case alphanumeric
# parts, each joined to the next by one ".", one "_", "__" or any number of "-".
DOCKER_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


@pytest.mark.parametrize("experiment", ["_nb35_scratch", "nb35___triple", "NB35_Upper"])
def test_the_image_name_of_any_experiment_s_run_is_one_docker_takes(tmp_path, experiment):
    """`assay run _scratch --docker` said to build with `docker build -t
    assay-_scratch-0001-...`, which Docker refuses ("invalid reference format"), and so
    did the README; three underscores in a row, likewise."""
    from conftest import one_experiment_project

    source = (
        "from dataclasses import dataclass\nimport assay\nfrom assay.caching import JsonCacher\n"
        "@dataclass\nclass Params(assay.ExperimentParameters):\n    k: int = 1\n"
        "@assay.stage(outputs=['v'], cachers=[JsonCacher])\ndef make(record):\n"
        "    return record.params.k\n"
        "def get_params():\n    return [Params(name='a')]\n"
        "def run(param_sets, manager):\n"
        "    for p in param_sets:\n        make(assay.Record(manager, p))\n"
    )
    project = one_experiment_project(tmp_path, experiment, source)
    result = ok(run_cli("run", experiment, "--docker", cwd=project))

    tag = re.search(r"docker build -t (\S+) ", result.text).group(1)
    assert DOCKER_NAME.fullmatch(tag), tag
    (readme,) = (project / "data" / "runs").rglob("docker/README.md")
    assert f"docker build -t {tag} " in readme.read_text()
    assert f"docker run --rm {tag}\n" in readme.read_text()


CELL = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    k: int = 1

@assay.stage(outputs=["v"], cachers=[JsonCacher])
def make(record):
    return record.params.k

def get_params():
    return [Params(name="a")]

def run(param_sets, manager):
    for p in param_sets:
        make(assay.Record(manager, p))
"""


def test_the_run_of_a_module_without_a_file_says_why_it_cannot_be_started_again(
    tmp_path, monkeypatch
):
    """`run_experiment(module, docker=True)` of a notebook's code, and its notebook, said
    "The run record does not say which experiment the run used": the record says it, and
    the reason is that the module has no file."""
    import sys
    import types

    import assay
    from assay.errors import AssayError

    module = types.ModuleType("nb35_cell")
    monkeypatch.setitem(sys.modules, "nb35_cell", module)
    exec(compile(CELL, "<cell>", "exec"), module.__dict__)
    (tmp_path / "experiments").mkdir()
    monkeypatch.chdir(tmp_path)

    manager = assay.run_experiment(module, project_root=tmp_path, notebook=True)
    import nbformat

    notebook = nbformat.read(str(manager.exports["notebook"]), as_version=4)
    said = [c.source.replace("\\", "") for c in notebook.cells if "cannot be re-run" in c.source]
    assert len(said) == 1 and "'nb35_cell', which has no file" in said[0], said  # (unescaped)
    assert "experiments/nb35_cell.py" in said[0], said
    with pytest.raises(AssayError, match=r"'nb35_cell', which has no file .* experiments/"):
        assay.run_experiment(module, project_root=tmp_path, docker=True)


def test_the_notebook_of_a_failed_run_says_there_is_nothing_to_compare(tmp_path, monkeypatch):
    """A failed run's notebook, run with errors allowed: its re-run fails again (as it
    should), and the comparison cell after it stopped with `NameError: name 'manager' is
    not defined`."""
    source = (
        "import assay\n\n\n@assay.stage(outputs=['x'])\ndef boom(record):\n"
        "    raise ValueError('nb_s35 boom')\n\n\ndef get_params():\n"
        "    return [assay.ExperimentParameters(name='one')]\n\n\n"
        "def run(param_sets, manager):\n"
        "    boom(assay.Record(manager, None))\n"
    )
    project = one_experiment_project(tmp_path, "nb_s35_fails", source)
    assert run_cli("run", "nb_s35_fails", cwd=project).code == 1
    ok(run_cli("export", "notebook", "1", cwd=project))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    path, notebook = written_notebook(project)

    text = execute_notebook(notebook, path.parent, allow_errors=True)

    assert "nb_s35 boom" in text  # the re-run failed as the run did
    assert "NameError" not in text, text
    assert "did not finish, so there is nothing to compare" in text
    assert "the recorded run's status: failed" in text
