"""Small defects left from earlier work (session 31), each reproduced as a user meets it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import assay
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
