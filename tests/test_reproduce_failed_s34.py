"""``assay reproduce`` of a run that failed, whose re-run fails the same way.

It said "The exported run was failed", then "The re-run failed", a hint that a data
file may be missing from the code snapshot, and "not exact" (exit 1), though the
re-run did what the run did: made the same artifacts, then failed with the same
error. Such a reproduction is exact; a re-run that fails otherwise is not.
"""

from __future__ import annotations

from pathlib import Path

from conftest import one_experiment_project, run_cli

EXPERIMENT = """
import os
from dataclasses import dataclass

import assay
from assay.caching import PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(None, ["numbers"], [PickleCacher])
def make(record):
    return list(range(record.params.n))


@assay.stage(["numbers"], ["ratio"])
def divide(record, numbers):
    if os.environ.get("OTHER_FAILURE"):
        raise KeyError("another problem")
    return sum(numbers) / (len(numbers) - record.params.n)


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    for p in param_sets:
        divide(make(assay.Record(manager, p)))
"""


def failed_export(tmp_path: Path) -> tuple[Path, Path]:
    root = one_experiment_project(tmp_path, "failing_s34", EXPERIMENT)
    failed = run_cli("run", "failing_s34", "-q", cwd=root)
    assert failed.code == 1 and "ZeroDivisionError" in failed.stderr, failed
    exported = run_cli("export", "full", "latest", "-o", tmp_path / "export", cwd=root)
    assert exported.code == 0, exported
    return root, tmp_path / "export"


def test_a_rerun_that_fails_as_the_run_did_is_exact(tmp_path: Path) -> None:
    root, export = failed_export(tmp_path)
    result = run_cli("reproduce", export, "--workdir", tmp_path / "again", cwd=root)
    text = " ".join(result.text.split())
    assert result.code == 0, result
    assert "The exported run failed (it did not complete)" in text, text
    assert "The re-run failed as the exported run did:" in text and "ZeroDivisionError" in text
    assert "was failed" not in text and "left out" not in text
    assert "1 identical: the reproduction is exact." in text, text


def test_a_rerun_that_fails_otherwise_is_not_exact(tmp_path: Path) -> None:
    root, export = failed_export(tmp_path)
    result = run_cli(
        "reproduce", export, "--workdir", tmp_path / "again", cwd=root, env={"OTHER_FAILURE": "1"}
    )
    text = " ".join(result.text.split())
    assert result.code == 1, result
    assert "The re-run failed (exit status 1)" in text, text
    assert "the reproduction is not exact" in text, text


GOOD = EXPERIMENT.replace("(len(numbers) - record.params.n)", "(len(numbers) + record.params.n)")


def test_a_dry_cache_run_has_nothing_to_compare_and_is_not_exact(tmp_path: Path) -> None:
    """``--store-full --dry-cache`` of stages that ran: the export had no artifacts, and
    reproduce said "no artifacts: the reproduction is exact"."""
    root = one_experiment_project(tmp_path, "dry_s34", GOOD)
    ran = run_cli("run", "dry_s34", "--dry-cache", "--store-full", "-q", cwd=root)
    assert ran.code == 0, ran
    (export,) = (root / "data" / "runs").iterdir()
    readme = " ".join((export / "README.md").read_text().split())
    assert "2 stage run(s) it executed with --dry-cache, which saved nothing" in readme, readme

    result = run_cli("reproduce", export, cwd=root)
    assert result.code == 1, result
    assert (
        "The exported run ran with --dry-cache: the 2 stage run(s) it executed saved nothing"
        in result.text
    )
    assert "the reproduction is not exact" in result.text, result
