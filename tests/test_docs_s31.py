"""What the README and docs/ promise, checked as a new researcher follows them (session 31)."""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from conftest import Calls, run_cli


def test_run_experiment_takes_one_name_as_a_string_where_it_takes_a_list(
    tmp_project: Path, calls: Calls
):
    """``run_experiment("diamond", "two")`` said "No parameter file named 't'", and
        ``names="b"``, ``overrides="n=3"``, ``overwrite_stages="square"`` were taken letter by
        letter (``indices=1`` was "'int' object is not iterable", ``Path("params/two.py")``
    "Path.replace() takes 2 positional arguments"): a single value is a list of one."""
    assay.run_experiment("diamond", ["two"], project_root=tmp_project)
    calls.take()

    manager = assay.run_experiment(
        "diamond",
        "two",
        names="b",
        overrides="offset=3",
        overwrite_stages="square",
        project_root=tmp_project,
    )

    assert [r.params.name for r in manager.records if r.params] == ["b"]
    assert manager.records[0].params.offset == 3
    assert sorted(calls.take()) == ["combine:b", "square:b", "summarize:aggregate"]
    by_index = assay.run_experiment("diamond", "two", indices=1, project_root=tmp_project)
    assert [r.params.name for r in by_index.records if r.params] == ["b"]
    two = tmp_project / "params" / "two.py"
    for as_path in (two, [two]):
        by_path = assay.run_experiment("diamond", as_path, project_root=tmp_project)
        assert [r.params.name for r in by_path.records if r.params] == ["a", "b"]


def test_loading_a_parameter_set_the_cache_does_not_hold_names_those_it_does(tmp_project: Path):
    """``assay.load("combined", param_set="default")`` after runs of other sets said only
    "No cached artifact matches ...", leaving the user to find the names in ``data/cache``."""
    assay.run_experiment("diamond", ["two"], project_root=tmp_project)

    with pytest.raises(assay.AssayError) as refused:
        assay.load("combined", param_set="default", experiment="diamond", project_root=tmp_project)

    message = str(refused.value)
    assert "No cached artifact matches" in message, message
    assert "Parameter sets with cached artifacts of experiment 'diamond': " in message, message
    assert "a, aggregate-" in message and message.endswith(", b."), message


CHECKED_EXPERIMENT = """
from dataclasses import dataclass, field

import assay
from assay.caching import JsonCacher
from assay.hashing import file_checksum


@dataclass
class Params(assay.ExperimentParameters):
    raw: str = field(default="data/raw.csv", metadata={"hash": file_checksum})


def get_params():
    return [Params(name="p")]


@assay.stage(outputs=["n"], cachers=[JsonCacher])
def count(record):
    return len(open(record.params.raw).read())


def run(param_sets, manager):
    for params in param_sets:
        count(assay.Record(manager, params))
"""


def test_a_hash_function_that_fails_names_the_parameter_set_and_field(tmp_project: Path):
    """docs/invalidation.md's ``metadata={"hash": file_checksum}`` on a file not made yet
    stopped ``assay run`` with "No such file or directory: data/raw.csv" and nothing
    more: not which parameter set, field or hash function it came from."""
    (tmp_project / "experiments" / "checked.py").write_text(CHECKED_EXPERIMENT)

    missing = run_cli("run", "checked", cwd=tmp_project)

    assert missing.code == 1, missing
    message = " ".join(missing.stderr.split())
    assert "Traceback" not in missing.stderr, missing
    assert "Parameter set 'p' cannot be hashed: the hash function file_checksum" in message
    assert "its field 'raw' failed on 'data/raw.csv' (FileNotFoundError:" in message, message
    (tmp_project / "data").mkdir(exist_ok=True)
    (tmp_project / "data" / "raw.csv").write_text("a,b\n")
    assert run_cli("run", "checked", cwd=tmp_project).code == 0


def test_assay_report_rebuilds_a_run_named_twice_once(tmp_project: Path):
    """``assay report 1 latest`` (one run, two names) rebuilt its page twice and listed it
    twice."""
    assert run_cli("run", "diamond", cwd=tmp_project).code == 0

    rebuilt = run_cli("report", "1", "latest", "-1", cwd=tmp_project)

    assert rebuilt.code == 0, rebuilt
    pages = rebuilt.stdout.split()
    assert len(pages) == 2 and pages[1] == "reports/index.html", rebuilt
    assert pages[0].startswith("reports/diamond-0001-") and pages[0].endswith("index.html")
