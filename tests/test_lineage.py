"""``assay lineage``: which run, code, parameters and upstream artifacts made an artifact."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

import assay
from assay import run_experiment
from assay.config import ProjectConfig
from assay.errors import AssayError, CacheError
from assay.lineage import LineageNode, lineage
from conftest import run_cli
from git_helpers import GITIGNORE, init_repo


@pytest.fixture
def diamond(tmp_project: Path, monkeypatch) -> Path:
    """The diamond experiment run once (run 1) in a clean git repository."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_project.parent))
    init_repo(tmp_project, GITIGNORE)
    run_experiment("diamond", ["two"], project_root=tmp_project, command="assay run diamond")
    monkeypatch.chdir(tmp_project)
    return tmp_project


def walk(node: LineageNode):
    yield node
    for item in node.inputs:
        if item.node is not None:
            yield from walk(item.node)


def test_lineage_by_name_goes_back_to_the_first_stage(diamond: Path) -> None:
    tree = lineage("diamond/aggregate/summarize/summary")
    assert (tree.output, tree.stage, tree.param_set, tree.aggregated) == (
        "summary", "summarize", "aggregate", 2
    )  # fmt: skip
    assert tree.run["number"] == 1 and len(tree.run["git_commit"]) == 40
    assert tree.run["git_dirty"] is False
    assert tree.checksum and tree.size and tree.code
    assert [i.name for i in tree.inputs] == ["combined", "combined"]
    assert all(i.record_hash for i in tree.inputs)  # aggregates: one input per record
    combined_a = next(i.node for i in tree.inputs if i.node.param_set == "a")
    assert combined_a.params == {"name": "a", "n": 3, "scale": 1, "offset": 0, "workers": 1}
    assert [i.name for i in combined_a.inputs] == ["doubled", "squared"]
    assert combined_a.reads in (None, ["offset"])  # keys that record the fields read
    doubled, squared = (i.node for i in combined_a.inputs)
    assert [i.name for i in doubled.inputs] == ["data"]
    first = doubled.inputs[0].node
    assert (first.stage, first.inputs, first.seen) == ("load", [], False)
    again = squared.inputs[0].node  # the same load, met a second time: not expanded again
    assert again.key == first.key and again.seen
    stages = {n.stage for n in walk(tree)}
    assert stages == {"summarize", "combine", "double", "square", "load"}


def test_lineage_by_path_and_by_key_find_the_same_artifact(diamond: Path) -> None:
    by_name = lineage("diamond/b/combine/combined")
    by_link = lineage("data/cache/by-name/diamond/b/combine/combined.json")
    folder = Path(by_name.path)
    by_file = lineage(str(folder / "combined.json"))
    by_key = lineage(by_name.key)
    by_sidecar = lineage(str(folder / "combined.meta.json"))  # the record beside the file
    assert by_name.key == by_link.key == by_file.key == by_key.key == by_sidecar.key
    assert by_sidecar.output == "combined"
    assert by_key.params["scale"] == 2
    config = ProjectConfig.load(diamond)
    assert folder.parent.parent == config.cache_dir / "objects"


def test_a_stage_folder_names_its_one_output_though_the_stage_reported_too(
    tmp_project: Path, monkeypatch
) -> None:
    run_experiment("scaled", project_root=tmp_project)
    monkeypatch.chdir(tmp_project)
    (by_name,) = Path("data/cache/by-name/scaled").glob("aggregate-*")
    assert lineage(str(by_name / "leaderboard")).output == "ranking"  # beside it: reportables
    with pytest.raises(CacheError, match="Give the path of one of its files") as info:
        lineage(str(by_name.parent / "a" / "evaluate"))  # two outputs: which one?
    assert "score" in str(info.value) and "details" in str(info.value)
    assert lineage(str(by_name.parent / "a" / "evaluate" / "score.json")).output == "score"


def test_a_value_passed_in_directly_is_shown_with_its_hash(diamond: Path) -> None:
    (diamond / "experiments" / "direct.py").write_text(
        "import assay\n"
        "from experiments.diamond import double, get_params\n\n\n"
        "def run(param_sets, manager):\n"
        "    double(assay.Record(manager, param_sets[0]), data=[5, 6])\n"
    )
    run_experiment("direct", project_root=diamond, command="assay run direct")
    tree = lineage("direct/a/double/doubled")
    assert [(i.name, i.key, bool(i.value_hash)) for i in tree.inputs] == [("data", None, True)]
    result = run_cli("lineage", "direct/a/double/doubled", cwd=diamond)
    assert "input data: a value passed in" in result.text


def test_a_missing_upstream_is_shown(diamond: Path) -> None:
    tree = lineage("diamond/a/double/doubled")
    data = tree.inputs[0].node
    shutil.rmtree(Path(data.path))
    tree = lineage("diamond/a/double/doubled")
    assert tree.inputs[0].node.problem == "no longer in the cache"
    result = run_cli("lineage", "diamond/a/double/doubled", cwd=diamond)
    assert result.code == 0 and "no longer in the cache" in result.text


def test_unknown_or_ambiguous_references_are_explained(diamond: Path) -> None:
    with pytest.raises(AssayError, match="EXPERIMENT/PARAMETER-SET/STAGE/OUTPUT"):
        lineage("summary")
    with pytest.raises(CacheError, match="No cached artifact"):
        lineage("diamond/a/combine/nothing")
    with pytest.raises(CacheError, match="No artifact with key"):
        lineage("0123456789abcdef0123456789abcdef.model")


def test_the_lineage_command_draws_a_tree(diamond: Path) -> None:
    result = run_cli("lineage", "diamond/aggregate/summarize/summary", cwd=diamond)
    assert result.code == 0, result
    text = result.text
    for part in ("summary", "run 1", "stage summarize", "aggregates 2 record(s)",
                 "input combined", "stage combine", "parameter set a", "scale=2",
                 "input data", "stage load", "commit", "made as shown above", "├──"):  # fmt: skip
        assert part in text, part
    bad = run_cli("lineage", "nonsense", cwd=diamond)
    assert (
        bad.code == 1 and "Cannot tell which artifact" in bad.text and "Traceback" not in bad.output
    )


DOTTED = """
import assay
from assay.caching import JsonCacher


@assay.stage(outputs=["scores.v2"], cachers=[JsonCacher])
def score(record):
    return [1, 2]


def run(param_sets, manager):
    for params in param_sets:
        score(assay.Record(manager, params))


def get_params():
    return [assay.ExperimentParameters(name="p")]
"""


def test_an_output_with_a_dot_in_its_name_is_traced_and_loaded(
    tmp_project: Path, monkeypatch
) -> None:
    """Keys were split at their last dot: "No artifact" for ``scores.v2``."""
    import assay

    (tmp_project / "experiments" / "dotted.py").write_text(DOTTED)
    manager = run_experiment("dotted", project_root=tmp_project)
    monkeypatch.chdir(tmp_project)
    (scores,) = manager.plan.nodes[0].outputs

    assert lineage(scores.key).output == "scores.v2"
    assert lineage("dotted/p/score/scores.v2").key == scores.key
    assert assay.load(key=scores.key) == [1, 2]
    assert assay.load("scores.v2", param_set="p", experiment="dotted") == [1, 2]


def test_compare_runs_takes_the_cache_folder_or_the_project_s_cache(diamond: Path) -> None:
    """provenance.md showed `compare_runs(store, 6, 7, cache=...)` and said no more: a
    folder gave AttributeError, and how to get a CacheStore was nowhere."""
    from assay.cache import open_cache
    from assay.compare import compare_runs
    from assay.store import RunStore

    experiment = diamond / "experiments" / "diamond.py"  # edited in place: the next
    experiment.write_text(  # run_experiment() in this process imports it again
        experiment.read_text().replace(
            "return [x * x for x in data]", "return [x * x + 1 for x in data]"
        )
    )
    run_experiment("diamond", ["two"], project_root=diamond)
    with RunStore("assay.db") as store:
        for cache in ("data/cache", Path("data/cache"), open_cache(ProjectConfig.load())):
            diff = compare_runs(store, 1, 2, cache=cache)
            assert set(diff.stage_code) == {"square"}, cache


def test_a_moved_project_s_own_artifacts_are_not_another_project_s(
    tmp_project: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    """After moving the project folder, assay.load and assay lineage warned that "another
    project made it" (the old folder), and lineage left out the run and parameter values."""
    run_experiment("diamond", ["two"], project_root=tmp_project, command="assay run diamond")
    moved = tmp_path / "moved"
    shutil.move(tmp_project, moved)
    monkeypatch.chdir(moved)

    with caplog.at_level(logging.WARNING, logger="assay"):
        found = assay.load("combined", param_set="a", experiment="diamond")
        tree = lineage("diamond/a/combine/combined")
        shown = run_cli("lineage", "diamond/a/combine/combined", cwd=moved)

    assert found is not None
    assert "another project" not in caplog.text + shown.text, caplog.text + shown.text
    assert tree.project is None and tree.run["number"] == 1 and tree.params["name"] == "a"


def test_gc_in_a_moved_project_removes_its_own_old_entries(tmp_project: Path, tmp_path: Path):
    """After moving the project folder, gc kept every unlinked entry its earlier runs made,
    as "entries that other projects sharing this cache made: <the old folder>"."""
    assert run_cli("run", "diamond", "-p", "two", cwd=tmp_project).code == 0
    assert run_cli("run", "diamond", "-p", "two", "--set", "scale=7", cwd=tmp_project).code == 0
    before = run_cli("cache", "gc", "--dry", cwd=tmp_project)
    moved = tmp_path / "moved"
    shutil.move(tmp_project, moved)

    after = run_cli("cache", "gc", "--dry", cwd=moved)

    assert "Would remove 0 entries" not in before.text, before
    assert after.code == 0 and "other projects" not in after.text, after
    removed = re.findall(r"Would remove \d+ entries", before.text)
    assert removed and removed == re.findall(r"Would remove \d+ entries", after.text), after
