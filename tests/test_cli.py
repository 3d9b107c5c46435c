"""End to end: the real ``assay`` command line on temporary projects.

Each test drives ``python -m assay`` in a subprocess from the project folder,
as a researcher would from a shell, and checks what it printed, what it
recorded in ``assay.db`` and which stages really executed (``calls.txt``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assay.cli import main
from assay.config import ProjectConfig
from assay.project import load_experiment, load_param_sets
from assay.store import RunStore
from conftest import Calls, edit, run_cli

DIAMOND = sorted(
    [f"{stage}:{p}" for p in ("a", "b") for stage in ("load", "double", "square", "combine")]
    + ["summarize:aggregate"]
)


def ok(result):
    assert result.code == 0, result
    assert "Traceback" not in result.output, result
    return result


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the tables rich printed, as lists of cell texts."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.strip().startswith("│")
    ]


def stage_rows(root: Path, run: int | str = "latest") -> dict[str, str]:
    """``{"stage:param_set": status}`` of one run, from the run store."""
    with RunStore(root / "assay.db") as store:
        info = store.get_run(run)
        return {f"{s.stage}:{s.param_set}": s.status for s in store.stages(info.id)}


def executed(root: Path, run: int | str = "latest") -> list[str]:
    return sorted(k for k, v in stage_rows(root, run).items() if v == "executed")


# -- a new project ----------------------------------------------------------------------------


def test_init_then_run_the_example_twice(tmp_path: Path):
    project = tmp_path / "study"
    project.mkdir()

    ok(run_cli("init", cwd=project))
    assert (project / "experiments" / "example.py").is_file()
    assert (project / "params" / "example.py").is_file()

    first = ok(run_cli("run", "example", "-p", "example", cwd=project))
    second = ok(run_cli("run", "example", "-p", "example", cwd=project))

    one, two = stage_rows(project, 1), stage_rows(project, 2)
    # The grid varies only what fit reads: the data is made once and shared by all sets.
    made = [k for k, status in one.items() if k.startswith("make_data:")]
    assert [one[k] for k in made].count("executed") == 1
    assert {one[k] for k in one if not k.startswith("make_data:")} == {"executed"}
    assert two.keys() == one.keys()
    assert set(two.values()) == {"cached"}
    executed = list(one.values()).count("executed")
    assert re.search(rf"\b{executed} executed\b", first.text), first
    assert re.search(rf"\b{len(one)} cached\b", second.text), second
    with RunStore(project / "assay.db") as store:
        assert {a.action for a in store.artifacts(store.get_run(2).id)} == {"reused"}


def test_python_dash_m_assay_and_the_assay_script_list_every_command(tmp_path: Path):
    commands = sorted(main.commands)
    assert {"run", "params", "ls", "show", "cache", "init"} <= set(commands)
    helps = [ok(run_cli("--help", cwd=tmp_path)).stdout]
    script = Path(sys.executable).with_name("assay")
    if script.exists():
        proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        helps.append(proc.stdout)
    for text in helps:
        assert text.startswith("Usage:")
        listed = re.findall(r"^  (\w+)\s", text.split("Commands:")[1], flags=re.M)
        assert sorted(listed) == commands


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["params"],
        ["ls"],
        ["show"],
        ["init"],
        ["cache"],
        ["cache", "ls"],
        ["cache", "verify"],
        ["cache", "gc"],
    ],  # fmt: skip
    ids=" ".join,
)
def test_every_command_has_help(command: list[str]):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:")
    assert " ".join(command) in result.output.splitlines()[0]


# -- assay run ----------------------------------------------------------------------------------


def test_run_twice_executes_then_reuses_everything(tmp_project: Path, calls: Calls):
    first = ok(run_cli("run", "diamond", cwd=tmp_project))
    assert sorted(calls.take()) == DIAMOND
    assert "9 executed" in first.text

    second = ok(run_cli("run", "diamond", cwd=tmp_project))
    assert calls.take() == []
    assert "9 cached" in second.text
    assert set(stage_rows(tmp_project).values()) == {"cached"}


def test_verbose_logs_every_stage_run_executed_or_reused(tmp_project: Path):
    """``-v`` logged only the stage runs that executed."""
    first = ok(run_cli("run", "diamond", "-v", "--no-report", cwd=tmp_project))
    assert first.text.count(" executed in ") == 9, first

    second = ok(run_cli("run", "diamond", "-v", "--no-report", cwd=tmp_project))
    assert second.text.count(" reused from the cache") == 9, second
    assert "combine [a] reused from the cache" in second.text


def test_editing_a_stage_recomputes_it_and_its_downstream_only(tmp_project: Path, calls: Calls):
    ok(run_cli("run", "diamond", cwd=tmp_project))
    edit(
        tmp_project / "experiments" / "diamond.py",
        "return [x * x for x in data]",
        "return [x * x * x for x in data]",
    )
    calls.take()

    ok(run_cli("run", "diamond", cwd=tmp_project))

    recomputed = ["combine:a", "combine:b", "square:a", "square:b", "summarize:aggregate"]
    assert sorted(calls.take()) == recomputed
    assert executed(tmp_project) == recomputed
    assert stage_rows(tmp_project)["double:a"] == "cached"


def test_names_and_indices_pick_parameter_sets(tmp_project: Path, calls: Calls):
    ok(run_cli("run", "diamond", "--names", "b", cwd=tmp_project))
    assert sorted(calls.take()) == [
        "combine:b",
        "double:b",
        "load:b",
        "square:b",
        "summarize:aggregate",
    ]

    ok(
        run_cli(
            "run", "diamond", "-p", "three", "--indices", "0", "--indices", "2", cwd=tmp_project
        )
    )
    # c differs from b only in offset, which only combine reads: c reuses b's load and
    # square (double prints the set's name, so it is keyed on the name and runs for c).
    assert sorted(c for c in calls.take() if not c.startswith("summarize")) == [
        "combine:a",
        "combine:c",
        "double:a",
        "double:c",
        "load:a",
        "square:a",
    ]
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run(1).param_names == ["b"]
        assert store.get_run(2).param_names == ["a", "c"]


def test_set_overrides_a_parameter_and_show_records_it(tmp_project: Path, calls: Calls):
    ok(run_cli("run", "diamond", "--set", "offset=5", cwd=tmp_project))
    assert sorted(calls.take()) == DIAMOND

    shown = ok(run_cli("show", "latest", cwd=tmp_project))
    assert re.search(r"overrides\s+offset=5", shown.stdout), shown
    assert "offset=5" in shown.text.split("parameter sets", 1)[1]

    ok(run_cli("run", "diamond", cwd=tmp_project))  # without the override
    # Only combine reads offset: the other stages are reused from the first run.
    assert sorted(calls.take()) == ["combine:a", "combine:b", "summarize:aggregate"]


def test_dry_prints_the_plan_and_which_run_made_the_cached_artifacts(
    tmp_project: Path, calls: Calls
):
    before = ok(run_cli("run", "diamond", "--dry", cwd=tmp_project))
    assert "9 to execute, 0 cached" in before.text
    assert len(re.findall(r"\bexecute\b", before.stdout)) >= 9
    assert calls.take() == []
    assert not (tmp_project / "assay.db").exists()

    ok(run_cli("run", "diamond", cwd=tmp_project))
    ok(run_cli("run", "diamond", "--names", "a", cwd=tmp_project))
    calls.take()
    after = ok(run_cli("run", "diamond", "--dry", cwd=tmp_project))

    assert "0 to execute, 9 cached" in after.text
    rows = [line for line in after.stdout.splitlines() if "cached" in line and "run 1" in line]
    assert len(rows) == 9, after.stdout
    assert calls.take() == []
    with RunStore(tmp_project / "assay.db") as store:
        assert len(store.list_runs()) == 2


def test_paths_lists_where_every_artifact_is_cached(tmp_project: Path):
    def listing(result):
        rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
        return {(r[0], r[1], r[2]): (r[3], tmp_project / r[4]) for r in rows if len(r) == 5}

    before = listing(ok(run_cli("run", "diamond", "--paths", cwd=tmp_project)))
    assert len(before) == 9
    assert {state for state, _ in before.values()} == {"missing"}

    ok(run_cli("run", "diamond", cwd=tmp_project))
    after = listing(ok(run_cli("run", "diamond", "--paths", cwd=tmp_project)))

    assert after.keys() == before.keys()
    assert {state for state, _ in after.values()} == {"cached"}
    state, folder = after[("b", "double", "doubled")]
    assert (folder / "doubled.pkl").is_file()
    assert (folder / "doubled.meta.json").is_file()
    # An aggregate by its by-name folder, as assay.load(param_set=...) takes it.
    (aggregate,) = (tmp_project / "data" / "cache" / "by-name" / "diamond").glob("aggregate-*")
    assert (aggregate.name, "summarize", "summary") in after


def test_overwrite_stage_recomputes_that_stage_and_what_uses_it(tmp_project: Path, calls: Calls):
    ok(run_cli("run", "diamond", cwd=tmp_project))
    calls.take()

    ok(run_cli("run", "diamond", "--overwrite-stage", "square", cwd=tmp_project))

    redone = ["combine:a", "combine:b", "square:a", "square:b", "summarize:aggregate"]
    assert sorted(calls.take()) == redone
    assert executed(tmp_project) == redone


def test_no_log_writes_no_log_file(tmp_project: Path):
    logs = tmp_project / "logs"
    ok(run_cli("run", "diamond", cwd=tmp_project))
    assert len(list(logs.glob("*.log"))) == 1
    assert "doubling for a" in next(logs.glob("*.log")).read_text()

    ok(run_cli("run", "diamond", "--overwrite", "--no-log", cwd=tmp_project))

    assert len(list(logs.glob("*.log"))) == 1


# -- assay params, ls, show ---------------------------------------------------------------------


def test_params_lists_names_hashes_and_the_fields_that_differ(tmp_project: Path):
    result = ok(run_cli("params", "diamond", "-p", "three", cwd=tmp_project))

    config = ProjectConfig.load(tmp_project)
    sets = load_param_sets(["three"], load_experiment("diamond", config), config)
    for params in sets:
        line = next(line for line in result.stdout.splitlines() if f" {params.name} " in line)
        assert params.params_hash()[:12] in line
    assert "Fields that differ: scale, offset" in result.text
    assert "workers" not in result.text.split("Fields that differ", 1)[1]


def test_ls_and_show_describe_past_runs(tmp_project: Path):
    ok(run_cli("run", "diamond", "--notes", "first try", cwd=tmp_project))
    ok(run_cli("run", "nocacher", cwd=tmp_project))

    listing = ok(run_cli("ls", cwd=tmp_project))
    rows = [r[:3] for r in table_rows(listing.stdout)]
    assert rows == [["2", "nocacher", "completed"], ["1", "diamond", "completed"]]
    assert "first try" in listing.text

    latest = ok(run_cli("show", "latest", cwd=tmp_project))
    assert latest.stdout.startswith("Run 2")
    assert "nocacher" in latest.text

    first = ok(run_cli("show", "1", cwd=tmp_project))
    assert first.stdout.startswith("Run 1")
    assert re.search(r"experiment\s+diamond", first.stdout)
    assert re.search(r"command\s+\S*python\S* -m assay run diamond --notes", first.stdout)
    assert "artifacts: 9 computed, 0 reused from the cache" in first.text
    for name in ("load", "double", "square", "combine", "summarize"):
        assert name in first.text


# -- assay cache --------------------------------------------------------------------------------


def test_cache_ls_lists_every_artifact(tmp_project: Path):
    ok(run_cli("run", "diamond", cwd=tmp_project))

    result = ok(run_cli("cache", "ls", cwd=tmp_project))

    assert "9 artifact(s)" in result.text
    rows = [tuple(r[:4]) for r in table_rows(result.stdout)]
    assert len(rows) == 9
    assert ("diamond", "a", "double", "doubled") in rows
    # An aggregate by its folder, the name assay.load(param_set=...) takes too.
    (folder,) = (tmp_project / "data" / "cache" / "by-name" / "diamond").glob("aggregate-*")
    assert ("diamond", folder.name, "summarize", "summary") in rows


def test_cache_ls_and_verify_count_artifacts_not_the_kept_reportables(tmp_project: Path):
    """Each stage run that reported kept a ``_reportables`` entry, listed and counted as
    an artifact; verify still checks it (it is a pickle)."""
    ok(run_cli("run", "scaled", "-n", "a", cwd=tmp_project))
    objects = tmp_project / "data" / "cache" / "objects"
    kept = list(objects.rglob("_reportables.meta.json"))
    assert kept, "the experiment reports: this test needs kept reportables"
    artifacts = [m for m in objects.rglob("*.meta.json") if m not in kept]

    listed = ok(run_cli("cache", "ls", cwd=tmp_project))
    assert "_reportables" not in listed.text
    assert f"{len(artifacts)} artifact(s)" in listed.text
    assert (
        f"{len(artifacts)} artifact(s) checked, 0 failed"
        in ok(run_cli("cache", "verify", cwd=tmp_project)).text
    )
    (pickle_file,) = kept[0].parent.glob("_reportables.pkl")
    pickle_file.write_bytes(pickle_file.read_bytes() + b"x")
    assert "1 failed" in run_cli("cache", "verify", cwd=tmp_project).text


def test_cache_verify_finds_a_tampered_file_and_remove_fixes_it(tmp_project: Path):
    ok(run_cli("run", "diamond", cwd=tmp_project))
    assert "9 artifact(s) checked, 0 failed" in ok(run_cli("cache", "verify", cwd=tmp_project)).text
    link = tmp_project / "data" / "cache" / "by-name" / "diamond" / "a" / "double"
    tampered = link / "doubled.pkl"
    tampered.write_bytes(tampered.read_bytes()[:-3] + b"xyz")

    failed = run_cli("cache", "verify", cwd=tmp_project)

    assert failed.code == 1, failed
    assert "FAILED" in failed.text and "'doubled'" in failed.text and "'double'" in failed.text
    assert "1 failed" in failed.text
    removed = ok(run_cli("cache", "verify", "--remove", cwd=tmp_project))
    assert "(removed)" in removed.text
    assert not (link / "doubled.meta.json").exists()
    assert "8 artifact(s) checked, 0 failed" in ok(run_cli("cache", "verify", cwd=tmp_project)).text


def test_cache_gc_removes_what_no_run_links_to_any_more(tmp_project: Path):
    objects = tmp_project / "data" / "cache" / "objects"

    def stage_folders():
        return {d.name for shard in objects.iterdir() for d in shard.iterdir()}

    ok(run_cli("run", "diamond", cwd=tmp_project))
    old = stage_folders()
    edit(
        tmp_project / "experiments" / "diamond.py",
        "return [2 * x for x in data]",
        "return [2 * x + 1 for x in data]",
    )
    ok(run_cli("run", "diamond", cwd=tmp_project))
    assert len(stage_folders()) == 14

    dry = ok(run_cli("cache", "gc", "--dry", cwd=tmp_project))
    assert "Would remove 5 entries" in dry.text
    assert len(stage_folders()) == 14
    result = ok(run_cli("cache", "gc", cwd=tmp_project))

    assert "Removed 5 entries" in result.text
    remaining = stage_folders()
    assert len(remaining) == 9
    assert len(old - remaining) == 5  # double, combine (a and b) and summarize
    assert "9 artifact(s) checked, 0 failed" in ok(run_cli("cache", "verify", cwd=tmp_project)).text
    assert "9 cached" in ok(run_cli("run", "diamond", cwd=tmp_project)).text


BRANCHES = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1

@assay.stage(outputs=["x"], cachers=[JsonCacher])
def add_one(record):
    return record.params.n + 1

@assay.stage(outputs=["x"], cachers=[JsonCacher])
def add_ten(record):
    return record.params.n + 10

@assay.stage(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
def total(record, x):
    return x * 2

@assay.aggregate(inputs=["total"], outputs=["summary"], cachers=[JsonCacher])
def summarize(record, records, total):
    return sorted(total.values())

def get_params():
    return [Params(name="a"), Params(name="b", n=2)]

def run(param_sets, manager):
    records = []
    for params in param_sets:
        record = assay.Record(manager, params)
        copy = record.make_copy()
        total(add_one(record))
        total(add_ten(copy))
        records += [record, copy]
    summarize(assay.Record(manager, None), records=records[::2])
    summarize(assay.Record(manager, None), records=records[1::2])
"""


def test_cache_gc_keeps_every_branch_and_aggregate_the_latest_run_used(tmp_project: Path):
    """One by-name link cannot point at two branches of a record (make_copy) nor at two
    aggregates: gc removed the one it did not point at, and the next run recomputed it."""
    (tmp_project / "experiments" / "branches.py").write_text(BRANCHES)
    ok(run_cli("run", "branches", cwd=tmp_project))

    result = ok(run_cli("cache", "gc", cwd=tmp_project))

    assert "Removed 0 entries" in result.text, result.text
    assert "10 cached" in ok(run_cli("run", "branches", cwd=tmp_project)).text


def test_a_curifactory_project_runs_with_its_own_configuration(tmp_path: Path):
    """``curifactory_config.json`` sets where experiments, parameters and the cache are;
    ``-p`` may name an experiment module, whose ``get_params()`` supplies the sets."""
    root = tmp_path / "moved"
    (root / "src" / "exps").mkdir(parents=True)
    (root / "src" / "__init__.py").write_text("")
    (root / "src" / "exps" / "__init__.py").write_text("")
    (root / "curifactory_config.json").write_text(
        '{"experiments_module_name": "src.exps", "params_module_name": "src.params",'
        ' "cache_path": "store/cache", "reports_path": "out/reports",'
        ' "notebooks_path": "notebooks/", "report_css_path": null}'
    )
    (root / "src" / "exps" / "leaf.py").write_text(
        "from dataclasses import dataclass\n\n"
        "import assay as cf\n"
        "from assay.caching import JsonCacher\n\n\n"
        "@dataclass\n"
        "class Params(cf.ExperimentParameters):\n"
        "    n: int = 2\n\n\n"
        '@cf.stage(outputs=["double"], cachers=[JsonCacher])\n'
        "def double(record):\n"
        "    return record.params.n * 2\n\n\n"
        "def get_params():\n"
        '    return [Params(name="two"), Params(name="five", n=5)]\n\n\n'
        "def run(param_sets, manager):\n"
        "    for params in param_sets:\n"
        "        double(cf.Record(manager, params))\n"
    )
    (root / "notebooks").mkdir()  # run from a subfolder: the root is found by the file

    ok(run_cli("run", "leaf", "-p", "leaf", cwd=root / "notebooks"))

    config = ProjectConfig.load(root)
    assert config.experiments_dir == root / "src" / "exps"
    assert config.params_dir == root / "src" / "params"
    assert (root / "store" / "cache" / "by-name" / "leaf" / "five" / "double").is_dir()
    assert list((root / "out" / "reports").glob("leaf-*/index.html"))
    with RunStore(root / "assay.db") as store:
        assert store.get_run("latest").param_names == ["two", "five"]


def test_a_broken_curifactory_configuration_is_named(tmp_path: Path):
    (tmp_path / "curifactory_config.json").write_text('{"cache_path": ')
    result = run_cli("ls", cwd=tmp_path)
    assert result.code == 1 and "curifactory_config.json is not valid JSON" in result.text, result


TWIN_SETS = """
from experiments.good import Params


def get_params():
    return [Params(name="alpha"), Params(name="twin")]
"""


def test_a_dry_run_shows_stage_runs_that_share_an_earlier_ones_inputs(bad_project: Path):
    """Two sets that differ only in their names share every stage run: --dry counted the
    second set's as executing ("2 to execute") where `assay why` and the run reuse them."""
    (bad_project / "params" / "twin_sets.py").write_text(TWIN_SETS)
    ok(run_cli("run", "good", "-p", "twin_sets", cwd=bad_project))  # learns what stages read
    args = ("good", "-p", "twin_sets", "--set", "seed=5")

    dry = ok(run_cli("run", *args, "--dry", cwd=bad_project))

    rows = [tuple(r) for r in table_rows(dry.stdout)]
    assert ("twin", "train", "shared", "same inputs as train [alpha]") in rows, dry
    assert ("alpha", "train", "execute", "no cached total") in rows, dry
    assert "1 to execute, 1 shared, 2 cached, 0 not needed." in dry.text
    assert "1 of 4 stage runs execute." in ok(run_cli("why", *args, cwd=bad_project)).text
    assert "1 executed, 3 cached" in ok(run_cli("run", *args, cwd=bad_project)).text


TWO_AGGREGATES = """
from dataclasses import dataclass
import assay
from assay.caching import JsonCacher

@dataclass
class Params(assay.ExperimentParameters):
    v: int = 1
    fail: bool = False

@assay.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    if record.params.fail:
        raise ValueError("asked to fail")
    return record.params.v

@assay.aggregate(inputs=["x"], outputs=["s"], cachers=[JsonCacher])
def total(record, records, x):
    return sum(x.values())

def get_params():
    return [Params(name=f"p{i}", v=i) for i in range(3)]

def run(param_sets, manager):
    records = [make(assay.Record(manager, p)) for p in param_sets]
    total(assay.Record(manager, None), records=records[:1])  # one by-name link: two aggregates
    total(assay.Record(manager, None), records=records[1:])
"""


def test_cache_gc_keeps_the_last_completed_run_s_entries_after_a_failed_or_running_one(
    tmp_project: Path,
):
    """gc kept what the newest run of each experiment used, whatever its status: once a
    later run had failed (or while one was going on), the aggregate of the last good run
    that no by-name link points at was removed, and the unchanged command recomputed it."""
    (tmp_project / "experiments" / "twoagg.py").write_text(TWO_AGGREGATES)
    ok(run_cli("run", "twoagg", cwd=tmp_project))
    failed = run_cli("run", "twoagg", "--set", "fail=True", cwd=tmp_project)
    assert failed.code == 1 and "asked to fail" in failed.text, failed

    assert "Removed 0 entries" in ok(run_cli("cache", "gc", cwd=tmp_project)).text

    with RunStore(tmp_project / "assay.db") as store:  # a run going on (this process's)
        going = store.begin_run("twoagg", command="assay run twoagg")
    assert "Removed 0 entries" in ok(run_cli("cache", "gc", cwd=tmp_project)).text
    with RunStore(tmp_project / "assay.db") as store:
        store.finish_run(going.id, "interrupted")
    assert "5 cached" in ok(run_cli("run", "twoagg", cwd=tmp_project)).text


def test_cache_ls_of_an_experiment_without_artifacts_names_those_it_has(tmp_project: Path):
    """`cache ls -e typo` said "The cache is empty." of a cache full of artifacts."""
    ok(run_cli("run", "diamond", cwd=tmp_project))

    result = ok(run_cli("cache", "ls", "-e", "diamnod", cwd=tmp_project))

    assert "The cache is empty" not in result.text, result
    assert "no artifacts of experiment 'diamnod'" in result.text
    assert "It has artifacts of: diamond" in result.text
    assert "9 artifact(s)" in ok(run_cli("cache", "ls", "-e", "diamond", cwd=tmp_project)).text


def test_compare_finds_the_code_of_stages_after_gc_removed_their_records(tmp_project: Path):
    """After gc removed the older run's sidecars, compare said "0 stage(s) with other
    code"; then, that it was unknown. Each run keeps its stages' code in the run store."""
    import json
    import sqlite3

    from assay.cache import CacheStore
    from assay.compare import compare_runs

    ok(run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project))
    edit(tmp_project / "experiments" / "diamond.py", "return [x * x for x in data]",
         "return [x * x + 1 for x in data]")  # fmt: skip
    ok(run_cli("run", "diamond", "-p", "two", "-q", cwd=tmp_project))
    cache = CacheStore(tmp_project / "data" / "cache")
    with RunStore(tmp_project / "assay.db") as store:
        before = compare_runs(store, 1, 2, cache=cache)
        ok(run_cli("cache", "gc", cwd=tmp_project))
        after = compare_runs(store, 1, 2, cache=cache)
        alone = compare_runs(store, 1, 2)  # the run store alone tells

    for diff in (before, after, alone):
        assert set(diff.stage_code) == {"square"} and diff.stage_code_unknown == []
        assert diff.stage_code_summary == "1 stage(s) with other code"
    shown = ok(run_cli("compare", "1", "2", cwd=tmp_project))
    assert "1 stage(s) with other code" in shown.text and "square" in shown.text

    # A run from before runs kept their stages' code: its sidecars were all there was.
    with sqlite3.connect(tmp_project / "assay.db") as db:
        (data,) = db.execute("SELECT data_json FROM provenance WHERE run = 1").fetchone()
        data = json.loads(data)
        del data["stage_code"]
        db.execute("UPDATE provenance SET data_json = ? WHERE run = 1", (json.dumps(data),))
    with RunStore(tmp_project / "assay.db") as store:
        old = compare_runs(store, 1, 2, cache=cache)
    assert old.stage_code == {}
    assert sorted(old.stage_code_unknown) == ["combine", "square", "summarize"]
    assert old.stage_code_summary.startswith("0 stage(s) with other code, unknown for 3 (")
    assert "a run from before assay kept the code of its stages" in old.stage_code_summary


def test_gc_reports_sizes_as_cache_ls_does():
    """gc printed sizes in MB only ("0.0 MB" for a few kilobytes)."""
    import io

    from rich.console import Console

    from assay.cli_output import print_gc_result

    console = Console(file=io.StringIO(), width=200)
    print_gc_result(console, ["data/cache/objects/ab/abc"], 2048, dry=True)
    print_gc_result(console, [], 0, dry=False)
    print_gc_result(console, ["x", "y"], 3_500_000, dry=False)

    lines = console.file.getvalue().splitlines()
    assert lines == [
        "Would remove data/cache/objects/ab/abc",
        "Would remove 1 entry, 2.0 kB.",
        "Removed 0 entries, 0 B.",
        "Removed x",
        "Removed y",
        "Removed 2 entries, 3.5 MB.",
    ]


def test_a_failed_run_names_its_log_and_report_under_the_message(tmp_project: Path):
    """Both are written as the run ends; only a completed run named them."""
    (tmp_project / "fail.flag").touch()

    result = run_cli("run", "flaky", cwd=tmp_project)

    assert result.code == 1, result
    with RunStore(tmp_project / "assay.db") as store:
        failed = store.get_run("latest")
    assert f"Log: logs/{failed.id}.log" in result.stderr, result
    assert f"Report: reports/{failed.id}/index.html" in result.stderr, result
    assert (tmp_project / "reports" / failed.id / "index.html").is_file()


# -- names never cut in tables; --cache from the current folder; files named with dashes ------


def _column(text: str, index: int) -> list[str]:
    """The cells of column ``index`` of a rich table, a folded cell joined again (a row
    starts where the first column, ``#``, has text)."""
    cells: list[str] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        parts = [part.strip() for part in line.split("│")[1:-1]]
        if parts[0]:
            cells.append(parts[index])
        else:
            cells[-1] += parts[index]
    return cells


def test_params_table_never_cuts_names_on_a_narrow_terminal():
    """At 80 columns two names that differ at the end looked the same (cut with "…")."""
    import io
    from dataclasses import dataclass

    from rich.console import Console

    import assay
    from assay.cli_output import print_params

    @dataclass
    class Wide(assay.ExperimentParameters):
        seed: int = 1
        lr: float = 0.1

    sets = assay.grid(
        Wide(name="a-rather-long-experiment-name"), seed=[1, 2], lr=[0.30000000000000004, 0.3]
    )
    console = Console(file=io.StringIO(), width=80)
    print_params(console, sets)
    text = console.file.getvalue()

    assert "…" not in text, text
    assert _column(text, 1) == [p.name for p in sets], text
    assert _column(text, 5) == ["0.30000000000000004", "0.3"] * 2, text


def test_a_relative_cache_on_the_command_line_is_taken_from_the_current_folder(
    tmp_project: Path,
):
    """`--cache ./dir` went to PROJECT/dir, while -p and experiment paths are taken from
    the current folder."""
    below = tmp_project / "below"
    below.mkdir()

    ok(run_cli("run", "diamond", "--cache", "./here", cwd=below))

    assert (below / "here" / "objects").is_dir()
    assert not (tmp_project / "here").exists()
    listed = ok(run_cli("cache", "ls", "--cache", "here", cwd=below))
    assert "diamond" in listed.stdout, listed
    again = ok(run_cli("run", "diamond", "--cache", "here", cwd=below))
    assert "executed" not in again.stdout, again
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").config["cache_dir"] == str(below / "here")


def test_the_cache_dir_setting_stays_relative_to_the_project_root(tmp_project: Path):
    (tmp_project / "assay.toml").write_text('cache_dir = "shared-cache"\n')
    below = tmp_project / "below"
    below.mkdir()
    ok(run_cli("run", "diamond", cwd=below))
    assert (tmp_project / "shared-cache" / "objects").is_dir()
    assert not (below / "shared-cache").exists()


DASHED_EXPERIMENT = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    seed: int = 1


@assay.stage(outputs=["total"], cachers=[JsonCacher])
def compute(record):
    return record.params.seed * 10


def get_params():
    return [Params(name="own")]


def run(param_sets, manager):
    for params in param_sets:
        compute(assay.Record(manager, params))
"""

DASHED_PARAMS = """
from dataclasses import dataclass

import assay


@dataclass
class Own(assay.ExperimentParameters):
    seed: int = 1


def get_params():
    return [Own(name="a", seed=2), Own(name="b", seed=3)]
"""


@pytest.mark.parametrize("param_file", ["my-exp", "other-p"])
def test_files_named_with_dashes_run_in_parallel(tmp_project: Path, param_file):
    """Both were imported as `assay_user_<stem>`: params/my-exp.py replaced the experiment
    experiments/my-exp.py in sys.modules, and workers could not import
    `assay_user_other-p` to unpickle the sets of its class."""
    (tmp_project / "experiments" / "my-exp.py").write_text(DASHED_EXPERIMENT)
    (tmp_project / "params" / f"{param_file}.py").write_text(DASHED_PARAMS)

    result = ok(run_cli("run", "my-exp", "-p", param_file, "--parallel", "2", cwd=tmp_project))

    assert "2 executed" in result.stdout, result
    with RunStore(tmp_project / "assay.db") as store:
        assert store.get_run("latest").status == "completed"


def test_experiment_and_parameter_files_get_distinct_module_names(tmp_project: Path):
    (tmp_project / "experiments" / "my-exp.py").write_text(DASHED_EXPERIMENT)
    (tmp_project / "params" / "my-exp.py").write_text(DASHED_PARAMS)
    config = ProjectConfig.load(tmp_project)

    experiment = load_experiment("my-exp", config)
    sets = load_param_sets(["my-exp"], experiment, config)

    assert experiment.__name__ == "experiments.my-exp"
    assert type(sets[0]).__module__ == "params.my-exp"
    assert sys.modules["experiments.my-exp"] is experiment
    assert callable(experiment.run)


def test_show_and_ls_never_cut_parameter_set_names_on_a_narrow_terminal(tmp_project: Path):
    import io

    from rich.console import Console

    import assay
    from assay.cli_output import print_run, print_runs

    params_class = load_experiment("diamond", ProjectConfig.load(tmp_project)).Params
    names = [f"a-long-parameter-set-name-that-is-folded-{end}" for end in ("one", "two")]
    assay.run_experiment(
        "diamond",
        param_sets=[params_class(name=name, scale=i) for i, name in enumerate(names)],
        project_root=tmp_project,
        report=False,
    )
    console = Console(file=io.StringIO(), width=80)
    with RunStore(tmp_project / "assay.db") as store:
        print_run(console, store, store.get_run("latest"))
        print_runs(console, store.list_runs())
    text = console.file.getvalue()

    assert "…" not in text, text
    table = text[text.index("parameter sets") : text.index("stages")]
    first_column = "".join(
        line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│")
    )
    assert first_column == "".join(names), text


@pytest.mark.parametrize("flags", [["-q", "-v"], ["--lazy", "--ignore-lazy"]])
def test_run_options_asking_for_opposite_things_are_refused(tmp_project: Path, flags):
    result = run_cli("run", "diamond", *flags, cwd=tmp_project)
    assert result.code == 2 and "ask for opposite things" in result.text, result
    assert not (tmp_project / "assay.db").exists()  # nothing ran
