"""A stage gets its inputs as the cache holds them, wherever and whenever its upstream
stage ran: just before it in the same process, on another worker, or in an earlier run.

A serial run used to hand the next stage the value in memory, while a worker (and any
re-run) loaded it from the cache; a cacher that does not give a value back exactly (JSON
turns tuples into lists, a data frame's memory layout changes through pickle) then made
``--parallel`` results differ from serial ones, and ``assay reproduce`` of the examples'
parallel run found a different model. The experiment is ``roundtrip`` of
``tests/resources/projects/basic``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import assay
from conftest import copy_project, run_outside_test


def artifacts(root: Path) -> dict[str, str]:
    """Each cached artifact file (not sidecars) by its by-name path, with its sha256."""
    found = {}
    for link in sorted((root / "data" / "cache" / "by-name").rglob("*")):
        if link.is_symlink():
            for path in sorted(link.resolve().iterdir()):
                if not path.name.startswith(".") and not path.name.endswith(".meta.json"):
                    key = f"{link.relative_to(root / 'data' / 'cache' / 'by-name')}/{path.name}"
                    found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run(root: Path, **options) -> assay.ArtifactManager:
    return run_outside_test(
        lambda: assay.run_experiment("roundtrip", [], project_root=root, **options)
    )


def test_a_stage_gets_its_input_as_the_cache_gives_it_back(tmp_path: Path):
    root = copy_project("basic", tmp_path)

    manager = run(root)

    seen = [r.state["seen"] for r in manager.records if r.params is not None]
    assert [s["keys"] for s in seen] == [["str"] * 3] * 2
    assert [s["values"] for s in seen] == [["list"] * 3] * 2
    first = artifacts(root)
    assert len(first) == 4

    again = run(root, overwrite_stages=["describe"])  # `make` is reused from the cache

    assert {n.spec.name: n.status for n in again.plan.nodes} == {
        "make": "cached",
        "describe": "executed",
    }
    assert artifacts(root) == first


def test_a_parallel_run_leaves_the_bytes_a_serial_run_leaves(tmp_path: Path):
    serial_root = copy_project("basic", tmp_path / "serial")
    parallel_root = copy_project("basic", tmp_path / "parallel")

    run(serial_root)
    manager = run(parallel_root, parallel=2)

    assert {n.status for n in manager.plan.nodes} == {"executed"}
    assert artifacts(parallel_root) == artifacts(serial_root)
