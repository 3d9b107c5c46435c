"""Parameter sets as a researcher writes them: parameter files, --set, assay params."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import run_cli

_STAGE_AND_RUN = """
@assay.stage(inputs=None, outputs=["seen"])
def look(record):
    return record.params.name


def run(param_sets, manager):
    for params in param_sets:
        look(assay.Record(manager, params))
"""


def _project(root: Path, experiment: str, source: str) -> Path:
    """A project at ``root`` with one experiment, ``experiments/EXPERIMENT.py``: ``source``
    (its parameter classes and ``get_params``), then one stage and ``run``."""
    (root / "experiments").mkdir(parents=True)
    (root / "params").mkdir()
    text = textwrap.dedent(source) + _STAGE_AND_RUN
    (root / "experiments" / f"{experiment}.py").write_text(text)
    return root


def test_a_failing_hash_function_of_a_nested_field_names_the_set_and_the_field(
    tmp_path: Path,
):
    """``metadata={"hash": file_checksum}`` on a field of a nested dataclass, with a file
    that is not there, stopped `assay params` and `assay run` with "No such file or
    directory: nope.csv", naming neither the parameter set nor the field (the same on a
    top-level field names both)."""
    project = _project(
        tmp_path,
        "params33_nested_hash",
        """
        from dataclasses import dataclass, field

        import assay
        from assay.hashing import file_checksum, set_hash_functions


        @dataclass
        class Data:
            path: str = field(default="nope.csv", metadata={"hash": file_checksum})


        @dataclass
        class Model:
            depth: int = 3
            hash_representations: dict = set_hash_functions(depth=lambda self, v: v / 0)


        @dataclass
        class Params(assay.ExperimentParameters):
            data: Data = field(default_factory=Data)
            model: Model = field(default_factory=Model)


        def get_params():
            return [Params(name="first")]
        """,
    )
    for command in ("params", "run"):
        result = run_cli(command, "params33_nested_hash", cwd=project)
        assert result.code not in (0, None), result
        assert "Traceback" not in result.output, result
        assert "Parameter set 'first' cannot be hashed" in result.text, result
        assert "Params.data.path: the hash function file_checksum" in result.text, result
        assert "'nope.csv' (FileNotFoundError" in result.text, result

    (project / "nope.csv").write_text("a,b\n")
    result = run_cli("params", "params33_nested_hash", cwd=project)
    assert "Params.model.depth: the hash function" in result.text, result
    assert "(ZeroDivisionError: division by zero)" in result.text, result
