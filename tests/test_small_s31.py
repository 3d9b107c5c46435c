"""Small defects left from earlier work (session 31), each reproduced as a user meets it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import assay
from assay.compare import compare_runs
from assay.errors import ConfigError
from assay.store import RunStore
from conftest import run_cli


@pytest.mark.parametrize("argument", ["path", "cache_dir"])
def test_a_url_given_as_a_pathlib_path_is_refused_with_pass_it_as_a_string(
    tmp_project: Path, argument: str
):
    """``Path("s3://bucket/x")`` is ``s3:/bucket/x``: the refusal spoke of one slash, though
    the user wrote two, and said "the cache" for ``path=``."""
    given = {argument: Path("s3://bucket/x")}
    with pytest.raises(ConfigError) as refused:
        assay.load("model", project_root=tmp_project, **given)
    message = str(refused.value)
    assert "pathlib.Path" in message and "as a string" in message, message
    assert "'s3://bucket/x'" in message, message
    assert message.startswith("The path" if argument == "path" else "The cache"), message
    assert not (tmp_project / "s3:").exists()


def test_a_one_slash_url_string_given_as_path_is_refused_naming_path(tmp_project: Path):
    with pytest.raises(ConfigError) as refused:
        assay.load("model", path="s3:/bucket/x", project_root=tmp_project)
    message = str(refused.value)
    assert message.startswith("The path 's3:/bucket/x'") and "Correct path=" in message, message
    assert "'s3://bucket/x'" in message, message


def test_the_exported_notebook_counts_an_artifact_shared_by_alike_sets_once(tmp_project: Path):
    """Two parameter sets that hash alike share their artifacts; the notebook said the run
    used one artifact per set and stage (9 here), not the 7 it used."""
    (tmp_project / "params" / "alike.py").write_text(
        "from experiments.diamond import Params\n\n\ndef get_params():\n"
        "    return [Params(name='a'), Params(name='same', workers=2)]\n"
    )
    assert run_cli("run", "diamond", "-p", "alike", cwd=tmp_project).code == 0
    exported = run_cli("export", "notebook", "latest", cwd=tmp_project)
    assert exported.code == 0, exported
    (path,) = (tmp_project / "data" / "runs").rglob("*.ipynb")
    with RunStore(tmp_project / "assay.db") as store:
        rows = store.artifacts(path.parent.name)
    used = len({row.key for row in rows})
    assert used < len(rows)  # the two sets did share artifacts
    cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
    (text,) = [c for c in cells if c.startswith("## Artifacts")]
    assert f"The run used {used} artifacts." in text, text
    assert f"({len(rows)} labels below)" in text, text


LAYERED = """\
from dataclasses import dataclass, field

import assay
from assay.caching import JsonCacher


@dataclass
class Layer:
    width: int = 32
    act: str = "relu"


@dataclass
class Params(assay.ExperimentParameters):
    layers: list = field(default_factory=lambda: [Layer(), Layer(width=16)])


@assay.stage(inputs=None, outputs=["size"], cachers=[JsonCacher])
def size(record):
    return sum(layer.width for layer in record.params.layers)


def get_params():
    return [Params(name="net")]


def run(param_sets, manager):
    for params in param_sets:
        size(assay.Record(manager, params))
"""


def _record_as_before(store_path: Path, run: int, values: dict) -> None:
    """Write run ``run``'s parameter values as assay recorded them before it showed a list of
    dataclasses item by item (one field holding the list's repr)."""
    with sqlite3.connect(store_path) as db:
        db.execute("UPDATE param_sets SET values_json = ? WHERE run = ?", (json.dumps(values), run))


NOW = ["layers.0.width", "layers.0.act", "layers.1.width", "layers.1.act"]


@pytest.mark.parametrize(
    ("then", "changed"),
    [
        ("[Layer(width=32, act='relu'), Layer(width=16, act='relu')]", ["layers.1.width"]),
        ("[Layer(width=32, act='relu'), Layer(width=64, act='relu')]", []),
        # cut short at 200 characters: it cannot be read back, so both forms are listed
        ("[Layer(width=32, act='relu'), Layer(wid...", ["layers", *NOW]),
        # a list of another length: not the same fields, so both forms are listed
        ("[Layer(width=32, act='relu')]", ["layers", *NOW]),
    ],
)
def test_compare_reads_a_list_of_dataclasses_recorded_as_one_repr_item_by_item(
    tmp_path: Path, then: str, changed: list[str]
):
    """A run recorded when ``describe`` kept a list of dataclasses as one repr (``layers``)
    compared with one recorded now (``layers.0.width``...): every key was listed as changed."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "layered.py").write_text(LAYERED)
    assert run_cli("run", "layered", cwd=tmp_path).code == 0
    assert run_cli("run", "layered", "--set", "layers.1.width=64", cwd=tmp_path).code == 0
    _record_as_before(tmp_path / "assay.db", 1, {"name": "net", "layers": then})

    with RunStore(tmp_path / "assay.db") as store:
        fields = [change.field for change in compare_runs(store, 1, 2).params]
        fields_reversed = [change.field for change in compare_runs(store, 2, 1).params]

    assert fields == changed
    assert sorted(fields_reversed) == sorted(changed)
    if changed == ["layers.1.width"]:
        shown = run_cli("compare", "1", "2", cwd=tmp_path)
        assert "net: layers.1.width" in shown.text and "net: layers " not in shown.text, shown


def test_verify_without_the_run_store_says_it_cannot_tell_a_deleted_record_s_file(
    tmp_project: Path,
):
    """With ``assay.db`` deleted, the file of a single-output stage whose sidecar was deleted
    was reported as "not named after an output of the stage run" (it is: ``data.pkl`` of
    ``data``), with nothing to say why verify, which fails it with the run store, let it
    pass. It stays a warning: a stage without a cacher writing ``record.get_path("plot.png")``
    for its output ``plot`` leaves the same kind of file, which ``--remove`` must not delete."""
    assert run_cli("run", "diamond", cwd=tmp_project).code == 0
    folder = (tmp_project / "data" / "cache" / "by-name" / "diamond" / "a" / "load").resolve()
    (folder / "data.meta.json").unlink()
    (tmp_project / "assay.db").unlink()

    result = run_cli("cache", "verify", cwd=tmp_project)

    assert result.code == 0, result
    assert f"File without a record: {folder / 'data.pkl'}." in result.text, result
    assert "not named after an output" not in result.text, result
    assert f"The run store {tmp_project / 'assay.db'} is not there" in result.text, result
    assert "belongs to an output whose record (.meta.json) was deleted" in result.text, result
    assert (folder / "data.pkl").exists()


PLOTTING = """\
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    size: int = 4


@assay.stage(outputs=["plot"])
def draw(record):
    path = record.get_path("plot.png")
    with open(path, "w") as picture:
        picture.write("a picture")
    return path


@assay.stage(inputs=["plot"], outputs=["size"], cachers=[JsonCacher])
def measure(record, plot):
    return len(open(plot).read())


def get_params():
    return [Params(name="one")]


def run(param_sets, manager):
    for params in param_sets:
        measure(draw(assay.Record(manager, params)))
"""


def test_verify_remove_without_the_run_store_keeps_a_file_a_stage_wrote_for_its_output(
    tmp_project: Path,
):
    """Why a sidecar-less file named after an output is no failure without the run store: a
    stage without a cacher wrote ``plot.png`` for its output ``plot`` (which the next stage's
    sidecar names as its input), and ``--remove`` must leave it."""
    (tmp_project / "experiments" / "plotting.py").write_text(PLOTTING)
    assert run_cli("run", "plotting", cwd=tmp_project).code == 0
    (tmp_project / "assay.db").unlink()
    (picture,) = (tmp_project / "data" / "cache" / "objects").rglob("plot.png")

    result = run_cli("cache", "verify", "--remove", cwd=tmp_project)

    assert result.code == 0 and "0 failed" in result.text, result
    assert picture.read_text() == "a picture"


def test_the_dashboard_s_comparison_reads_a_list_of_dataclasses_recorded_as_one_repr(
    tmp_path: Path,
):
    """The dashboard's side-by-side comparison of such runs had the same rows as
    ``assay compare``: ``layers`` in one column, ``layers.0.width``... in the other."""
    from assay.ui.comparison import columns_from, compare

    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "layered.py").write_text(LAYERED)
    assert run_cli("run", "layered", cwd=tmp_path).code == 0
    assert run_cli("run", "layered", "--set", "layers.1.width=64", cwd=tmp_path).code == 0
    then = "[Layer(width=32, act='relu'), Layer(width=16, act='relu')]"
    _record_as_before(tmp_path / "assay.db", 1, {"name": "net", "layers": then})

    with RunStore(tmp_path / "assay.db") as store:
        columns, errors = columns_from(store, ["1", "2"], [])
        rows = compare(store, tmp_path / "assay.db", columns)["params"]

    assert not errors
    assert [row["label"] for row in rows] == [["net", name] for name in NOW]
    assert [row["label"][1] for row in rows if row["differs"]] == ["layers.1.width"]
