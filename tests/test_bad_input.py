"""SPEC section 10: every bad input gets a clear message and loses nothing cached.

Each test runs the real command line (``python -m assay``) on a copy of
``tests/resources/projects/bad`` (or ``basic``) and checks that it exits
non-zero, prints no Python traceback (unless ``--debug``), and names the file,
stage, parameter set or artifact at fault.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest

import assay
from assay.caching import PickleCacher
from assay.errors import CachersMismatchError, EmptyCachersError, OutputSignatureError
from assay.store import RunStore
from conftest import Calls, copy_project, run_cli

TRACEBACK = "Traceback (most recent call last)"


def fails(result, *fragments: str):
    """Assert a clean failure whose message contains every fragment."""
    assert result.code not in (0, None), result
    assert TRACEBACK not in result.output, result
    assert "Error" in result.output, result
    for fragment in fragments:
        assert fragment in result.text, f"{fragment!r} not in the message:\n{result}"
    return result


def stage_statuses(root, run="latest") -> dict[str, str]:
    with RunStore(root / "assay.db") as store:
        info = store.get_run(run)
        return {f"{s.stage}:{s.param_set}": s.status for s in store.stages(info.id)}


# -- experiments and parameter files ----------------------------------------------------------


def test_a_missing_experiment_suggests_the_closest_name(bad_project):
    fails(
        run_cli("run", "god", cwd=bad_project), "No experiment named 'god'", "Did you mean 'good'?"
    )


def test_a_folder_that_is_not_a_project_is_said_to_be_one(tmp_path):
    """It said "experiments has no .py files" of a folder that does not exist."""
    fails(
        run_cli("run", "good", cwd=tmp_path),
        "No experiment named 'good'",
        "There is no folder",
        "assay init",
    )


def test_an_experiment_with_a_syntax_error_names_file_and_line(bad_project):
    (bad_project / "experiments" / "syntax_error.py").write_text(
        '"""An experiment with a syntax error on line 5."""\n'
        "import assay\n"
        "\n"
        "\n"
        "def run(param_sets, manager)\n"
        "    pass\n"
    )
    fails(
        run_cli("run", "syntax_error", cwd=bad_project),
        "syntax_error.py",
        "line 5",
        "syntax error",
    )


def test_an_experiment_without_run_says_what_is_missing(bad_project):
    fails(run_cli("run", "no_run", cwd=bad_project), "no_run.py", "run(param_sets, manager)")


def test_an_experiment_that_calls_sys_exit_outside_a_stage_is_recorded_as_failed(bad_project):
    fails(
        run_cli("run", "exiting", cwd=bad_project),
        "The experiment's code called sys.exit('no more for today') outside a stage",
    )
    with RunStore(bad_project / "assay.db") as store:
        info = store.get_run("latest")
    assert info.status == "failed"
    assert "sys.exit('no more for today')" in info.error


def test_a_missing_parameter_file_is_named(bad_project):
    fails(
        run_cli("run", "good", "-p", "duplicate", cwd=bad_project),
        "No parameter file named 'duplicate'",
        "Did you mean 'duplicates'?",
    )
    fails(  # a file name where a name (or a path from here) is meant
        run_cli("run", "good", "-p", "duplicates.py", cwd=bad_project),
        "The parameter file duplicates.py does not exist (a path is taken from",
        "give its name: 'duplicates'",
    )


def test_a_parameter_file_that_raises_on_import_names_file_and_line(bad_project):
    fails(
        run_cli("run", "good", "-p", "broken", cwd=bad_project),
        "broken.py",
        "line 6",
        "RuntimeError",
        "the parameter file is broken on purpose",
    )


def test_a_parameter_file_without_get_params(bad_project):
    fails(
        run_cli("run", "good", "-p", "no_get_params", cwd=bad_project),
        "no_get_params.py",
        "no get_params() function",
    )


def test_get_params_returning_something_else_than_a_list(bad_project):
    fails(
        run_cli("run", "good", "-p", "returns_dict", cwd=bad_project),
        "returns_dict.py",
        "returned dict",
        "list of parameter sets",
    )


def test_get_params_returning_items_that_are_not_parameter_sets(bad_project):
    fails(
        run_cli("run", "good", "-p", "wrong_items", cwd=bad_project),
        "wrong_items.py",
        "item 1 is a dict",
        "ExperimentParameters",
    )


def test_no_parameter_sets_at_all_is_said(bad_project):
    result = run_cli("run", "good", "-p", "empty", cwd=bad_project)
    assert result.code == 0, result  # an experiment may need none; it is told, though
    assert "get_params() returned no parameter sets" in result.text, result


def test_duplicate_parameter_set_names(bad_project):
    fails(
        run_cli("run", "good", "-p", "duplicates", cwd=bad_project),
        "'same' by item 0 of get_params() in params/duplicates.py and item 2 of "
        "get_params() in params/duplicates.py",
        "unique",
        "Give each parameter set its own `name=`.",
    )
    assert not (bad_project / "data" / "cache" / "objects").exists()


def test_duplicate_names_in_two_parameter_files_name_both_files(bad_project):
    """`-p a -p b`, each with a set named 'base', said "'base' at positions 0, 2": the
    positions in the list of both files' sets, not which files."""
    for name, seeds in (("first", (1, 2)), ("second", (3,))):
        sets = ", ".join(f"Params(name={n!r}, seed={s})" for n, s in zip(("base", "other"), seeds))
        (bad_project / "params" / f"{name}.py").write_text(
            f"from experiments.good import Params\n\n\ndef get_params():\n    return [{sets}]\n"
        )
    for selection in ([], ["-n", "other"]):
        fails(
            run_cli("run", "good", "-p", "first", "-p", "second", *selection, cwd=bad_project),
            "1 name is used more than once: 'base' by item 0 of get_params() in "
            "params/first.py and item 0 of get_params() in params/second.py.",
            "Give each parameter set its own `name=` (in those files), or leave out one of "
            "the parameter files (-p).",
        )
    fails(
        run_cli("params", "good", "-p", "first", "-p", "second", cwd=bad_project),
        "'base' by item 0 of get_params() in params/first.py and item 0 of",
    )
    fails(
        run_cli("run", "good", "-p", "first", "-p", "params/first.py", cwd=bad_project),
        "The parameter file params/first.py is given twice (-p)",
        "Give it once.",
    )
    assert not (bad_project / "assay.db").exists()
    result = run_cli("run", "good", "-p", "first", "-q", cwd=bad_project)
    assert result.code == 0, result


@pytest.mark.parametrize(
    ("param_file", "fragments"),
    [
        pytest.param(
            "undecorated",
            ["Bigger", "declares depth but is not decorated with @dataclass", "@dataclass"],
            id="subclass-without-dataclass",
        ),
        pytest.param(
            "clashing",
            ["'x/y' and 'x_y' would share the cache folder", "Rename one"],
            id="names-sharing-a-folder",
        ),
        pytest.param(
            "numbered", ["named 1 (int): names must be text", "name='1'"], id="name-not-text"
        ),
        pytest.param(
            "longname",
            ["has a name of 300 characters, too long", "shorter name"],
            id="name-too-long-for-a-folder",
        ),
    ],
)
def test_parameter_sets_that_would_mix_up_results_are_refused(bad_project, param_file, fragments):
    fails(run_cli("run", "good", "-p", param_file, cwd=bad_project), *fragments)
    assert not (bad_project / "data" / "cache" / "objects").exists()


TEMPLATED = """
import assay
from assay.caching import JsonCacher
from experiments.good import get_params


@assay.stage(outputs=["v"], cachers=[JsonCacher(path_override="{cache}/out/{artifact_filename}")])
def first(record):
    open("first-ran.txt", "a").write("ran")
    return 1


@assay.stage(outputs=["w"], cachers=[JsonCacher(path_override="TEMPLATE")])
def second(record):
    return 2


def run(param_sets, manager):
    for params in param_sets[:1]:
        second(first(assay.Record(manager, params)))
"""


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("out/{nope}.json", "it names {nope}; a template may use {hash}, {stage}"),
        ("out/{params.sede}.json", "the parameter set has no field 'sede' ({params.sede})"),
        ("out/{stage.json", "it is not a valid template"),
    ],
    ids=["unknown-field", "unknown-parameter", "unclosed-brace"],
)
def test_a_path_override_that_cannot_be_filled_in_is_named_before_anything_runs(
    bad_project, template, fragment
):
    (bad_project / "experiments" / "templated.py").write_text(
        TEMPLATED.replace("TEMPLATE", template)
    )
    fails(
        run_cli("run", "templated", cwd=bad_project),
        f"The path_override {template!r} of output 'w' of stage 'second' cannot be used",
        fragment,
    )
    assert not (bad_project / "first-ran.txt").exists()

    (bad_project / "experiments" / "templated.py").write_text(
        TEMPLATED.replace("TEMPLATE", "out/{params.seed}/{stage}.json")
    )
    assert run_cli("run", "templated", cwd=bad_project).code == 0
    (written,) = (bad_project / "data" / "cache" / "out").iterdir()
    assert written.name.startswith("templated_") and written.name.endswith("_first_v.json")
    assert written.read_text() == "1"
    assert (bad_project / "out" / "1" / "second.json").read_text() == "2"


def test_two_outputs_sharing_a_subdir_are_refused_before_anything_runs(bad_project):
    (bad_project / "experiments" / "shared_subdir.py").write_text(
        "import assay\n"
        "from assay.caching import JsonCacher, PickleCacher\n"
        "from experiments.good import get_params\n\n\n"
        '@assay.stage(outputs=["first", "second"],\n'
        '             cachers=[PickleCacher(subdir="sub"), JsonCacher(subdir="sub")])\n'
        "def both(record):\n"
        '    open("both-ran.txt", "a").write("ran")\n'
        "    return 1, 2\n\n\n"
        "def run(param_sets, manager):\n"
        "    for params in param_sets:\n"
        "        both(assay.Record(manager, params))\n"
    )
    fails(
        run_cli("run", "shared_subdir", cwd=bad_project),
        "Outputs 'first' and 'second' of stage 'both' both use subdir='sub'",
        "Give each its own subdir",
    )
    assert not (bad_project / "both-ran.txt").exists()


def test_two_stages_with_one_name_are_refused_before_anything_runs(bad_project):
    fails(
        run_cli("run", "twins", cwd=bad_project),
        "Two different stages are named 'load' (experiments.good.load and experiments.twins.load)",
        "Rename one",
    )
    assert not (bad_project / "data" / "cache" / "objects").exists()


def test_overwrite_stage_with_no_such_stage_suggests_the_closest(bad_project):
    fails(
        run_cli("run", "good", "--overwrite-stage", "trian", cwd=bad_project),
        "--overwrite-stage 'trian' (did you mean 'train'?)",
        "Its stages: load, train",
    )
    assert not (bad_project / "data" / "cache" / "objects").exists()


def test_an_unknown_name_in_names_suggests_the_closest(bad_project):
    fails(
        run_cli("run", "good", "--names", "alpah", cwd=bad_project),
        "No parameter set named 'alpah'",
        "Did you mean 'alpha'?",
    )


def test_set_with_an_unknown_field_suggests_the_closest(bad_project):
    fails(
        run_cli("run", "good", "--set", "sead=3", cwd=bad_project),
        "--set sead=3",
        "no field 'sead'",
        "Did you mean 'seed'?",
    )


UNHASHABLE = """
import threading
from dataclasses import dataclass, field

from experiments.good import Params


@dataclass
class Guarded(Params):
    guard: object = field(default_factory=threading.Lock)


def get_params():
    return [Guarded(name="locked")]
"""


def test_a_parameter_field_that_cannot_be_hashed_is_named_with_the_fix(bad_project):
    """A field holding a lock gave a traceback ending in `TypeError: Cannot hash ...`."""
    (bad_project / "params" / "unhashable.py").write_text(UNHASHABLE)
    fails(
        run_cli("run", "good", "-p", "unhashable", cwd=bad_project),
        "Parameter set 'locked' cannot be hashed",
        "Guarded.guard",
        "_thread.lock",
        "{'hash': False}",
    )
    assert not (bad_project / "data" / "cache" / "objects").exists()


def test_set_without_an_equals_sign_shows_the_form(bad_project):
    fails(run_cli("run", "good", "--set", "seed", cwd=bad_project), "'seed'", "FIELD=VALUE")


# -- stages declared or chained wrongly -------------------------------------------------------


def test_an_input_no_earlier_stage_produced_lists_the_stages_that_could(bad_project):
    fails(
        run_cli("run", "missing_input", cwd=bad_project),
        "Stage 'fit' needs input 'data'",
        "parameter set 'alpha'",
        "Stages that output 'data':",
        "load_data",
    )


CYCLE = """
import assay


@assay.stage(inputs=["b"], outputs=["a"])
def make_a(record, b):
    return b


@assay.stage(inputs=["a"], outputs=["b"])
def make_b(record, a):
    return a


@assay.stage(inputs=["model"], outputs=["model"])
def refine(record, model):
    return model


def get_params():
    return [assay.ExperimentParameters(name="p")]


def run(param_sets, manager):
    make_a(assay.Record(manager, param_sets[0]))
"""


def test_a_cycle_of_stages_is_called_a_cycle_not_told_to_call_one_first(bad_project):
    """It said "Stages that output 'b': make_b; call one first", which cannot be done."""
    (bad_project / "experiments" / "cycle.py").write_text(CYCLE)
    fails(
        run_cli("run", "cycle", cwd=bad_project),
        "Stage 'make_a' needs input 'b'",
        "a cycle (make_a -> make_b -> make_a)",
        "A stage cannot take its own output",
    )
    edit = CYCLE.replace("make_a(assay.Record", "refine(assay.Record")
    (bad_project / "experiments" / "cycle.py").write_text(edit)
    result = fails(run_cli("run", "cycle", cwd=bad_project), "a cycle (refine -> refine)")
    assert "call one first" not in result.text


def test_an_output_count_mismatch_names_stage_and_parameter_set(bad_project):
    result = fails(
        run_cli("run", "output_mismatch", cwd=bad_project),
        "'fit'",
        "'alpha'",
        "2 output(s)",
        "['model', 'score']",
    )
    assert "/assay/" not in result.output


@pytest.mark.parametrize(
    "options",
    [["--parallel", "2"], pytest.param(["--executor", "dask"], marks=pytest.mark.slow)],
    ids=["process", "dask"],
)
def test_an_output_count_mismatch_on_a_worker_keeps_the_stages_output(bad_project, options):
    """From a worker it escaped the stage's capture: what the stage printed was lost, and
    Dask logged "Compute Failed" with a traceback on the console."""
    result = fails(
        run_cli("run", "output_mismatch", *options, cwd=bad_project),
        "'fit' for parameter set '",  # whichever of the two sets failed first
        "2 output(s)",
    )
    failed = result.text.split("for parameter set '")[1].split("'")[0]
    assert f"fitting {failed}" in result.text, result
    assert "Compute Failed" not in result.text and "distributed" not in result.text, result


@pytest.mark.parametrize("options", [{}, {"parallel": 2}], ids=["serial", "process"])
def test_an_output_count_mismatch_is_raised_as_curifactory_raises_it(bad_project, options):
    """``except OutputSignatureError`` caught nothing: it came wrapped in StageFailed."""
    with pytest.raises(OutputSignatureError, match="'fit' for parameter set '(alpha|beta)'"):
        assay.run_experiment("output_mismatch", project_root=bad_project, **options)


def test_a_cachers_list_of_the_wrong_length_fails_when_the_stage_is_called(bad_project):
    @assay.stage(outputs=["model", "score"], cachers=[PickleCacher])
    def fit(record):
        return 1, 2

    manager = assay.ArtifactManager("declared", project_root=bad_project)
    with pytest.raises(CachersMismatchError, match=r"'fit' declares 2 output\(s\)"):
        fit(assay.Record(manager, None))

    fails(
        run_cli("run", "cachers_mismatch", cwd=bad_project),
        "cachers_mismatch.py",
        "'fit'",
        "2 output(s)",
        "1 cacher(s)",
    )


def test_empty_cachers_without_outputs_fails_when_the_stage_is_called(bad_project):
    @assay.stage(inputs=None, outputs=None, cachers=[])
    def show(record):
        pass

    manager = assay.ArtifactManager("declared", project_root=bad_project)
    with pytest.raises(EmptyCachersError, match="'show'"):
        show(assay.Record(manager, None))

    fails(
        run_cli("run", "empty_cachers", cwd=bad_project), "empty_cachers.py", "'show'", "cachers=[]"
    )


@pytest.mark.parametrize("name", ["a/b", "a\\b", ".hidden", "", "_reportables", "_state"])
def test_an_output_name_that_cannot_name_a_file_fails_when_the_stage_is_called(name, tmp_path):
    """Not once the stage has run, when its output could not be saved."""

    @assay.stage(outputs=[name], cachers=[PickleCacher])
    def make(record):
        return 1

    manager = assay.ArtifactManager("declared", project_root=tmp_path)
    with pytest.raises(OutputSignatureError, match="an output's name is the name of its files"):
        make(assay.Record(manager, None))
    assert not list(tmp_path.rglob("*.pkl"))  # refused before it ran


def test_a_lazy_output_without_cachers_fails_when_the_stage_is_called(bad_project):
    @assay.stage(outputs=[assay.Lazy("big")])
    def make(record):
        return 1

    manager = assay.ArtifactManager("declared", project_root=bad_project)
    with pytest.raises(OutputSignatureError, match="'make'.*Lazy"):
        make(assay.Record(manager, None))

    fails(
        run_cli("run", "lazy_no_cachers", cwd=bad_project), "lazy_no_cachers.py", "'make'", "Lazy"
    )


@pytest.mark.parametrize(
    ("experiment", "fragments", "kept"),
    [
        ("unpicklable", ["'scorer'", "'make_scorer'", "PickleCacher", "'alpha'"], "prepare"),
        ("numpy_list", ["'array'", "'make_array'", "NumpyCacher", "list"], None),
    ],
    ids=["lambda-with-PickleCacher", "list-with-NumpyCacher"],
)
def test_an_output_the_cacher_cannot_save(bad_project, experiment, fragments, kept):
    fails(run_cli("run", experiment, cwd=bad_project), *fragments)
    with RunStore(bad_project / "assay.db") as store:
        assert store.get_run("latest").status == "failed"

    if kept is not None:  # what was cached before the failure stays cached
        again = fails(run_cli("run", experiment, cwd=bad_project), *fragments)
        assert again.code != 0
        assert stage_statuses(bad_project)[f"{kept}:alpha"] == "cached"
        assert assay.load("numbers", param_set="alpha", project_root=bad_project) == [1, 2, 3]


# -- failures while running -------------------------------------------------------------------


def test_a_stage_that_raises_shows_its_own_traceback_and_how_to_resume(bad_project):
    result = fails(
        run_cli("run", "failing", cwd=bad_project),
        "Stage 'explode' failed for parameter set 'alpha'",
        "ValueError: cannot handle 3 numbers",
        "failing.py",
        'raise ValueError(f"cannot handle {len(data)} numbers")',
        "return helper(data)",
        "assay run failing",
    )
    assert "/assay/" not in result.output.replace("projects/bad", "")

    again = fails(run_cli("run", "failing", cwd=bad_project), "'explode'")
    assert again.code != 0
    assert stage_statuses(bad_project)["load:alpha"] == "cached"


@pytest.mark.parametrize("command", [["run"], ["run", "--dry"], ["why"]])
def test_an_exception_in_runs_own_code_shows_that_code_not_assays(bad_project, command):
    """A typo in run() (a NameError, a KeyError) printed "ERROR: The run failed" and thirty
    lines of click's and assay's frames."""
    result = fails(
        run_cli(*command, "raising_run", cwd=bad_project),
        "Traceback (the experiment's code)",
        'raising_run.py", line 16, in run',
        'return pick({}, "best")',
        'raising_run.py", line 9, in pick',
        "Error: KeyError: 'best' (raised in pick()",
        "--debug shows the whole traceback",
    )
    assert "click" not in result.output and "/assay/" not in result.output, result
    if command == ["run"]:
        assert "-m assay run raising_run" in result.text, result
        (log_file,) = (bad_project / "logs").glob("raising_run-*.log")
        assert TRACEBACK in log_file.read_text()  # the whole story stays in the run's log


def test_a_failing_stage_shows_its_code_in_a_project_under_a_folder_named_assay(tmp_path):
    """Frames were told apart by "/assay/" in their path: a project in ~/assay/ showed none."""
    project = copy_project("bad", tmp_path / "assay")

    fails(
        run_cli("run", "failing", cwd=project),
        "Traceback (the stage's code)",
        'raise ValueError(f"cannot handle {len(data)} numbers")',
    )


def test_debug_shows_the_full_traceback(bad_project):
    for args in (["run", "failing"], ["run", "god"], ["run", "raising_run"]):
        result = run_cli("--debug", *args, cwd=bad_project)
        assert result.code != 0, result
        assert TRACEBACK in result.output, result


def test_a_corrupt_cache_file_is_reported_and_recomputed(bad_project):
    run_cli("run", "good", cwd=bad_project)
    data = bad_project / "data" / "cache" / "by-name" / "good" / "alpha" / "load" / "data.pkl"
    data.write_bytes(bytes(len(data.read_bytes())))  # same size: found by its checksum

    result = run_cli("run", "good", "--overwrite-stage", "train", cwd=bad_project)

    assert result.code == 0, result
    assert TRACEBACK not in result.output
    for fragment in ("'data'", "'load'", "'alpha'", "Recomputing"):
        assert fragment in result.text, result
    assert stage_statuses(bad_project)["load:alpha"] == "executed"
    assert assay.load("total", param_set="alpha", project_root=bad_project) == 4
    assert assay.load("data", param_set="alpha", project_root=bad_project) == [0, 1, 2]


@pytest.mark.parametrize(
    "damage",
    [b"", b'{"key": "cut sh', b"{}", b"null", b'{"key": "k", "output": "data"}'],
    ids=["emptied", "cut-short", "empty-object", "null", "no-files"],
)
def test_an_unreadable_sidecar_is_reported_by_verify_and_recomputed(bad_project, damage):
    """Valid JSON that is no record (`{}`) made verify, load and lineage fail with KeyError."""
    run_cli("run", "good", cwd=bad_project)
    folder = bad_project / "data" / "cache" / "by-name" / "good" / "alpha" / "load"
    (folder / "data.meta.json").write_bytes(damage)
    reads = bad_project / "data" / "cache" / "reads"
    for index in reads.glob("*.jsonl"):  # a damaged read index is skipped, never fatal
        index.write_text('[1, 2]\n{"reads": []}\n{"base": "x", "reads": 5}\n' + index.read_text())

    verify = run_cli("cache", "verify", cwd=bad_project)
    assert verify.code == 1, verify
    assert "data.meta.json is missing or unreadable" in verify.text, verify
    lineage = run_cli("lineage", "good/alpha/load/data", cwd=bad_project)
    assert lineage.code == 1 and TRACEBACK not in lineage.output, lineage

    result = run_cli("run", "good", "--overwrite-stage", "train", cwd=bad_project)

    assert result.code == 0, result
    for fragment in ("'data'", "'load'", "'alpha'", "It is not reused"):
        assert fragment in result.text, result
    assert stage_statuses(bad_project)["load:alpha"] == "executed"
    assert assay.load("total", param_set="alpha", project_root=bad_project) == 4
    assert run_cli("cache", "verify", cwd=bad_project).code == 0


@pytest.mark.parametrize("damage", ["deleted", "cut-short"])
def test_a_cached_file_deleted_or_cut_short_is_not_reused(bad_project, damage):
    """Its sidecar alone made it count as cached: a final output whose file was deleted by
    hand stayed missing (and the run said "cached"), to fail only when someone loaded it."""
    assert run_cli("run", "good", cwd=bad_project).code == 0
    folder = bad_project / "data" / "cache" / "by-name" / "good" / "alpha"
    (total,) = [p for p in (folder / "train").glob("total*") if not p.name.endswith("meta.json")]
    if damage == "deleted":
        total.unlink()
    else:
        total.write_bytes(total.read_bytes()[:-1])

    planned = run_cli("run", "good", "--dry", cwd=bad_project)
    assert planned.code == 0, planned
    for fragment in (str(total.resolve()) if damage == "deleted" else "bytes instead of",
                     "'total'", "'train'", "'alpha'", "It is not reused"):  # fmt: skip
        assert fragment in planned.text, planned
    assert total.exists() == (damage != "deleted")  # --dry changes nothing

    why = run_cli("why", "good", cwd=bad_project)
    assert "executes train [alpha]: its cached artifact cannot be reused" in why.text, why

    result = run_cli("run", "good", cwd=bad_project)
    assert result.code == 0 and "It is not reused" in result.text, result
    assert stage_statuses(bad_project)["train:alpha"] == "executed"
    assert stage_statuses(bad_project)["load:alpha"] == "cached"
    assert assay.load("total", param_set="alpha", project_root=bad_project) == 4
    assert run_cli("cache", "verify", cwd=bad_project).code == 0

    again = run_cli("run", "good", cwd=bad_project)
    assert "It is not reused" not in again.text, again
    assert stage_statuses(bad_project)["train:alpha"] == "cached"


AS_NOBODY = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root, to run assay as another user (root may write anywhere)",
)


def as_nobody(project: Path, *args):
    """``python -m assay ARGS`` in ``project`` as the user nobody."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(NO_COLOR="1", COLUMNS="400", HOME=str(project))
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "assay", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = done.stdout + done.stderr
    return SimpleNamespace(code=done.returncode, output=output, text=" ".join(output.split()))


def shared_copy(bad_project: Path) -> Path:
    """A copy of the project that the user nobody can reach (not under root's /tmp/pytest-*),
    with two runs of `good`."""
    project = Path(tempfile.mkdtemp(prefix="assay-read-only-"))
    shutil.copytree(bad_project, project, dirs_exist_ok=True)
    assert run_cli("run", "good", cwd=project).code == 0
    assert run_cli("run", "good", "--set", "seed=9", cwd=project).code == 0
    subprocess.run(["chmod", "-R", "a+rwX", str(project)], check=True)
    return project


def files_under(folder: Path) -> list:
    return sorted((p.relative_to(folder), p.stat().st_size) for p in folder.rglob("*"))


@AS_NOBODY
def test_a_read_only_cache_gets_a_clear_message_and_keeps_everything(bad_project):
    """As a user who cannot write the cache: runs, gc and verify --remove ended in a
    PermissionError traceback, and gc said it had removed what was still there."""
    project = shared_copy(bad_project)
    (damaged,) = list((project / "data" / "cache").rglob("data.pkl"))[:1]
    damaged.write_bytes(b"not a pickle")
    subprocess.run(["chmod", "-R", "a-w", str(project / "data" / "cache")], check=True)
    before = files_under(project / "data")
    try:
        fails(as_nobody(project, "run", "good", "--overwrite"), "cannot be written to",
              "--dry-cache")  # fmt: skip
        fails(as_nobody(project, "cache", "gc", "--older-than", "0"), "Could not remove",
              "Permission")  # fmt: skip
        fails(as_nobody(project, "cache", "verify", "--remove"), "Could not remove",
              "Permission")  # fmt: skip
        assert files_under(project / "data") == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(project)], check=True)
        shutil.rmtree(project)


@AS_NOBODY
def test_a_read_only_project_can_be_browsed_and_says_what_it_cannot_do(bad_project):
    """A colleague's project: `ls`, `show` and `compare` failed ("attempt to write a
    readonly database": WAL mode writes a file beside the store), `report` with a
    traceback."""
    project = shared_copy(bad_project)
    subprocess.run(["chmod", "-R", "a-w", str(project)], check=True)
    before = files_under(project)
    try:
        for args in (["ls"], ["show", "latest"], ["compare", "1", "2"]):
            result = as_nobody(project, *args)
            assert result.code == 0 and TRACEBACK not in result.output, result.output
        assert "seed" in as_nobody(project, "compare", "1", "2").text  # the --set seed=9
        fails(as_nobody(project, "report", "latest"), "Permission denied", "reports")
        assert files_under(project) == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(project)], check=True)
        shutil.rmtree(project)


@pytest.mark.parametrize("value", ['""', "5", "true"], ids=["empty", "number", "boolean"])
def test_a_path_setting_that_is_not_a_path_is_named(bad_project, value):
    """An empty cache_dir would have put the cache's folders in the project root."""
    (bad_project / "assay.toml").write_text(f"cache_dir = {value}\n")
    fails(
        run_cli("run", "good", cwd=bad_project),
        "assay.toml, line 1: cache_dir must be a path in quotes",
        'cache_dir = "data/cache"',
    )
    assert not (bad_project / "objects").exists()


def test_init_s_settings_file_shows_every_setting_with_its_default(tmp_path):
    """It said "the values shown are the defaults" but left out local_cache_dir and
    cache_options; uncommented, it must be a valid file that changes nothing."""
    from assay.config import ProjectConfig

    def relative(root):
        config = ProjectConfig.load(root)  # the file is read: it must be valid TOML
        return {f.name: str(getattr(config, f.name)).replace(str(root), ".")
                for f in fields(config)}  # fmt: skip

    assert run_cli("init", tmp_path / "study", cwd=tmp_path).code == 0
    settings = tmp_path / "study" / "assay.toml"
    text = settings.read_text()
    shown = [line[2:] for line in text.splitlines() if line.startswith("# ") and " = " in line]
    assert {line.split(" = ")[0] for line in shown} == {
        f.name for f in fields(ProjectConfig) if f.name not in ("root", "cache_url")
    }
    settings.write_text("\n".join(shown) + "\n")
    (tmp_path / "bare").mkdir()
    assert relative(tmp_path / "study") == relative(tmp_path / "bare")


def test_a_negative_age_for_cache_gc_is_refused(bad_project):
    result = run_cli("cache", "gc", "--older-than", "-1", cwd=bad_project)
    assert result.code == 2 and "-1" in result.text and ">=0" in result.text.replace(" ", ""), (
        result
    )


def test_a_run_store_that_is_not_sqlite_is_named_and_left_alone(bad_project):
    store = bad_project / "assay.db"
    garbage = b"this is not a database\n" * 200
    store.write_bytes(garbage)

    for args in (["run", "good"], ["ls"], ["show", "latest"]):
        fails(run_cli(*args, cwd=bad_project), "assay.db")

    assert store.read_bytes() == garbage


def test_ctrl_c_records_an_interrupted_run_and_keeps_the_cache(tmp_project, calls: Calls):
    (tmp_project / "interrupt.flag").touch()

    result = run_cli("run", "flaky", cwd=tmp_project)

    assert result.code == 130, result
    assert TRACEBACK not in result.output
    assert "Interrupted" in result.text
    assert "interrupted" in run_cli("ls", cwd=tmp_project).text
    assert "first:a" in calls.take()

    (tmp_project / "interrupt.flag").unlink()
    assert run_cli("run", "flaky", cwd=tmp_project).code == 0
    assert "first:a" not in calls.take()


# -- a damaged or mistyped cache folder, a folder for an experiment, a reserved name -----------


def test_a_file_in_place_of_a_cache_folder_is_named_not_a_traceback(bad_project):
    """A by-name folder replaced by a file gave os.makedirs' traceback from the run; with
    objects/ replaced by a file, cache verify and ls said the cache was empty (exit 0)."""
    assert run_cli("run", "good", cwd=bad_project).code == 0
    cache = bad_project / "data" / "cache"
    shutil.rmtree(cache / "by-name" / "good")
    (cache / "by-name" / "good").write_text("x")

    fails(
        run_cli("run", "good", cwd=bad_project),
        f"{cache / 'by-name' / 'good'} is a file, not a folder",
        "Remove or move it",
    )

    shutil.rmtree(cache / "objects")
    (cache / "objects").write_text("x")
    for command in ("verify", "ls", "gc"):
        fails(
            run_cli("cache", command, cwd=bad_project),
            f"The cache folder {cache} is damaged: {cache / 'objects'} is a file",
            "Remove or move it",
        )


def test_cache_commands_say_there_is_no_cache_at_a_missing_folder(bad_project):
    """A mistyped --cache folder was "The cache is empty." / "0 artifact(s) checked, 0
    failed", exit 0: it looked like a healthy cache. A run still creates a new folder."""
    missing = bad_project / "no" / "such-cache"
    for command in ("ls", "verify", "gc"):
        fails(
            run_cli("cache", command, "--cache", missing, cwd=bad_project),
            f"There is no cache at {missing}",
        )
    assert not missing.exists()

    assert run_cli("run", "good", "--cache", missing, cwd=bad_project).code == 0
    listed = run_cli("cache", "ls", "--cache", missing, cwd=bad_project)
    assert listed.code == 0 and "3 artifact(s)" in listed.text, listed


def test_an_experiment_without_get_params_run_without_a_parameter_file(bad_project):
    """The message spoke of what "a parameter file must define", though none was given."""
    (bad_project / "experiments" / "no_sets.py").write_text(
        "from experiments.good import load, train\n\n\ndef run(param_sets, manager):\n    pass\n"
    )
    fails(
        run_cli("run", "no_sets", cwd=bad_project),
        "no_sets.py has no get_params() function",
        "Pass a parameter file with -p FILE",
        "or add to the experiment a get_params() function",
    )


def test_a_folder_given_as_the_experiment_is_said_to_be_a_folder(bad_project):
    """`assay run ./experiments` said "//experiments.py does not exist"."""
    folder = bad_project / "experiments"
    for ref in ("./experiments", "experiments", str(folder)):
        result = fails(
            run_cli("run", ref, cwd=bad_project),
            f"The experiment '{ref}' is a folder ({folder}), not a .py file",
            "good.py",
        )
        assert "//" not in result.text
    fails(
        run_cli("run", "good", "-p", "./params", cwd=bad_project),
        f"The parameter file './params' is a folder ({bad_project / 'params'})",
    )
    missing = fails(run_cli("run", "./nothere", cwd=bad_project), "nothere.py does not exist")
    assert "//" not in missing.text


@pytest.mark.parametrize(
    ("reserved", "holder"),
    [
        ("aggregate", "aggregate stages"),
        ("aggregate-84c02854", "aggregate stages"),  # an aggregate's folder
        ("none", "made without a parameter set"),
    ],
)
def test_a_parameter_set_with_a_reserved_name_is_refused(bad_project, reserved, holder):
    """Its results went to by-name/EXPERIMENT/aggregate/ (or none/), mixed with those of
    the aggregate stages (or of records made without parameters)."""
    (bad_project / "params" / "named_reserved.py").write_text(
        "from experiments.good import Params\n\n\n"
        "def get_params():\n"
        f'    return [Params(name="alpha"), Params(name="{reserved}")]\n'
    )
    fails(
        run_cli("run", "good", "-p", "named_reserved", cwd=bad_project),
        f"parameter set is named '{reserved}'",
        f"reserved for {'' if 'aggregate' in reserved else 'stages run on records '}{holder}",
        "Rename the parameter set",
    )
    assert not (bad_project / "data" / "cache" / "objects").exists()


def test_a_parameter_set_named_with_half_a_character_is_refused(bad_project):
    """A lone surrogate (from bytes decoded with surrogateescape) ended the run in a raw
    UnicodeEncodeError."""
    (bad_project / "params" / "surrogate.py").write_text(
        "from experiments.good import Params\n\n\n"
        "def get_params():\n"
        '    return [Params(name="alpha"), Params(name="b\\udc80c")]\n'
    )
    fails(
        run_cli("run", "good", "-p", "surrogate", cwd=bad_project),
        "has a name that is not valid text",
        "position 1",
        "Give it a name of whole characters",
    )
    assert not (bad_project / "data" / "cache" / "objects").exists()


def test_an_operating_system_error_on_a_given_path_is_one_paragraph(tmp_path: Path):
    """`assay init /proc/x` ended in a FileNotFoundError traceback, `assay ui --port 99999`
    in an OverflowError one."""
    fails(run_cli("init", "/proc/assay-here", cwd=tmp_path), "/proc/assay-here")

    port = run_cli("ui", "--port", "99999", cwd=tmp_path)
    assert port.code == 2 and TRACEBACK not in port.output, port
    assert "99999 is not in the range 0<=x<=65535" in port.text, port


class _NeedsTwo(Exception):
    def __new__(cls, first, second):
        return super().__new__(cls, first, second)


@pytest.mark.parametrize(
    "original, also",
    [
        (ValueError("v"), ValueError),
        (KeyError("k"), KeyError),
        (FileNotFoundError(2, "gone"), OSError),
        (_NeedsTwo(1, 2), None),  # its __new__ wants its own arguments: a plain StageFailed
        (SystemExit(3), None),
    ],
)
def test_a_stage_failure_is_also_the_stage_s_own_exception_type(original, also):
    from assay.errors import StageFailed

    failed = StageFailed.of("Stage 's' failed: boom", stage="s", record_name="p", original=original)

    assert isinstance(failed, StageFailed) and failed.original is original
    assert str(failed) == "Stage 's' failed: boom"  # not KeyError's quoted form
    assert type(failed) is StageFailed if also is None else isinstance(failed, also)
    assert _round_trip(failed).stage == "s"


def _round_trip(value):
    """pickle.dumps and loads, without the reducers other libraries put in copyreg for
    exception classes (importing distributed installs tblib's, which cannot rebuild
    _NeedsTwo: that would make this test depend on which tests ran before it)."""
    import copyreg
    import io

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.dispatch_table = {
        kind: reducer
        for kind, reducer in copyreg.dispatch_table.items()
        if not (isinstance(kind, type) and issubclass(kind, BaseException))
    }
    pickler.dump(value)
    return pickle.loads(buffer.getvalue())


def test_a_stage_failure_keeps_the_exception_s_attributes_also_from_a_worker():
    """`except CalledProcessError as e: e.returncode` worked serially only for attributes
    in __dict__ (OSError's errno was None), and from a worker not at all."""
    import subprocess

    from assay import remote
    from assay.errors import StageFailed

    for original, expected in [
        (FileNotFoundError(2, "gone", "x.csv"), {"errno": 2, "filename": "x.csv"}),
        (subprocess.CalledProcessError(3, ["false"]), {"returncode": 3, "cmd": ["false"]}),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), {"reason": "bad", "start": 0}),
    ]:
        serial = StageFailed.of("m", stage="s", record_name="p", original=original)
        sent = remote.sent_exception(remote._pickled_exception(original))  # as from a worker
        stand_in = remote.RemoteStageError(type(original).__name__, str(original), "")
        from_worker = StageFailed.of(
            "m", stage="s", record_name="p", original=stand_in,
            original_type=type(original), attributes_from=sent,
        )  # fmt: skip
        for failed in (serial, from_worker):
            assert isinstance(failed, type(original))
            assert {k: getattr(failed, k) for k in expected} == expected


def test_exception_attributes_survive_the_pickling_a_dask_worker_has_registered():
    """distributed, imported in a Dask worker, registers tblib's pickling for every
    exception class; with it UnicodeDecodeError arrived without its reason, and an
    exception whose __new__ takes arguments could not be rebuilt."""
    import copyreg

    from tblib import pickling_support

    from assay import remote

    before = dict(copyreg.dispatch_table)
    try:
        pickling_support.install(UnicodeDecodeError, _NeedsTwo)
        decode = remote.sent_exception(
            remote._pickled_exception(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"))
        )
        two = remote.sent_exception(remote._pickled_exception(_NeedsTwo(1, 2)))
    finally:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(before)
    assert (decode.reason, decode.start) == ("bad", 0)
    assert type(two) is _NeedsTwo and two.args == (1, 2)


def test_a_stage_that_sets_a_parameter_field_is_stopped_with_a_message(tmp_path: Path):
    """Curifactory lets a stage set `record.params.n = 3` for later stages; here the change
    was silently lost (stages see a tracking copy), so the later stage got the old value."""
    from dataclasses import dataclass

    from assay.errors import StageFailed

    @dataclass
    class Params(assay.ExperimentParameters):
        n_features: int | None = None

        def doubled(self):
            self._memo = 2 * (self.n_features or 1)  # an attribute of its own: allowed
            return self._memo

    @assay.stage(outputs=["x"])
    def load(record):
        record.params.doubled()
        record.params.n_features = 3
        return 1

    manager = assay.ArtifactManager("params", project_root=tmp_path)
    with pytest.raises(StageFailed) as caught:
        load(assay.Record(manager, Params(name="a")))

    message = str(caught.value)
    assert "Stage 'load' failed for parameter set 'a'" in message
    assert "set record.params.n_features = 3 (parameter set 'a'). A parameter set cannot" in message
    assert "get_params" in message

    # An aggregate's input records too (serially the change reached the stages after it,
    # keyed on the old value; in workers it was lost)
    @assay.aggregate(outputs=["y"])
    def tamper(record, records):
        for other in records:
            other.params.n_features = 1000
        return 1

    with pytest.raises(StageFailed, match=r"n_features = 1000 \(parameter set 'b'\)"):
        tamper(assay.Record(manager, None), records=[assay.Record(manager, Params(name="b"))])


LOCKER = """
import os
import sqlite3
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher

HELD = []


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 1


@assay.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    if os.environ.get("ASSAY_TEST_LOCK"):  # another program takes the run store meanwhile
        held = sqlite3.connect(os.environ["ASSAY_TEST_LOCK"], isolation_level=None)
        held.execute("BEGIN EXCLUSIVE")
        HELD.append(held)
    return record.params.n


def get_params():
    return [Params(name="a")]


def run(param_sets, manager):
    make(assay.Record(manager, param_sets[0]))
"""


def test_a_run_whose_store_stays_locked_at_its_end_says_so_and_keeps_its_artifacts(
    tmp_project: Path, monkeypatch
):
    """Its record was lost without a word in its log (the log had only its first line), no
    report, and `assay show` later said it was killed."""
    import sys

    from assay.errors import RunStoreError

    (tmp_project / "experiments" / "locker.py").write_text(LOCKER)
    assay.run_experiment("locker", project_root=tmp_project)  # the run store exists
    monkeypatch.setattr("assay.store.BUSY_TIMEOUT_S", 0.5)
    monkeypatch.setenv("ASSAY_TEST_LOCK", str(tmp_project / "assay.db"))

    try:
        with pytest.raises(RunStoreError):
            assay.run_experiment("locker", project_root=tmp_project, overwrite=True)
    finally:
        # The experiment's module (by its file: a test module may have a HELD of its own).
        experiment = str(tmp_project / "experiments" / "locker.py")
        (locker,) = [
            m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == experiment
        ]
        for held in locker.HELD:
            held.close()  # rolls its transaction back
        locker.HELD.clear()  # as the module holds it in a new process (the stage reads it)

    (log,) = [p for p in (tmp_project / "logs").glob("locker-0002-*.log")]
    said = log.read_text()
    assert "Run 2 ended (completed) but could not be recorded in the run store" in said
    assert "run the same command again to record a run that reuses them" in said
    monkeypatch.delenv("ASSAY_TEST_LOCK")
    manager = assay.run_experiment("locker", project_root=tmp_project)
    assert [n.status for n in manager.plan.nodes] == ["cached"], manager.plan.nodes[0].reason


# -- names picked from duplicates; run() and get_params() of the wrong shape; folders ---------

DUPLICATES_AND_OTHERS = """
from experiments.good import Params


def get_params():
    return [Params(name="a", seed=1), Params(name="a", seed=2), Params(name="b", seed=3)]
"""


@pytest.mark.parametrize("selection", [["-n", "a"], ["-n", "b"], ["-i", "0"]])
def test_names_given_with_duplicate_names_in_the_files_are_refused(bad_project, selection):
    """`-p dup` was refused, but `-p dup -n a` ran only the set of seed 2, silently."""
    (bad_project / "params" / "dup.py").write_text(DUPLICATES_AND_OTHERS)
    fails(
        run_cli("run", "good", "-p", "dup", *selection, cwd=bad_project),
        "'a' by item 0 of get_params() in params/dup.py and item 1 of",
        "unique",
    )
    assert not (bad_project / "data" / "cache" / "objects").exists()
    assert not (bad_project / "assay.db").exists()


WRONG_RUN = """
from experiments.good import Params, get_params


def run():
    pass
"""

WRONG_GET_PARAMS = """
from experiments.good import Params, run


def get_params(size):
    return [Params(name="a", size=size)]
"""


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        pytest.param(
            WRONG_RUN,
            ["wrong_shape.py is defined as run()", "def run(param_sets, manager):"],
            id="run",
        ),
        pytest.param(
            WRONG_GET_PARAMS,
            ["is defined as get_params(size)", "without arguments", "def get_params():"],
            id="get_params",
        ),
    ],
)
def test_run_or_get_params_with_the_wrong_signature_says_which_is_expected(
    bad_project, source, fragments
):
    """`def run(): pass` printed a raw traceback (TypeError: run() takes 0 positional
    arguments but 2 were given)."""
    (bad_project / "experiments" / "wrong_shape.py").write_text(source)
    fails(run_cli("run", "wrong_shape", cwd=bad_project), *fragments)
    assert not (bad_project / "assay.db").exists()  # refused before the run began


def test_a_module_given_to_run_experiment_is_checked_like_a_file(bad_project):
    import types

    module = types.ModuleType("notebook_experiment")
    module.run = lambda: None
    with pytest.raises(assay.AssayError, match=r"defined as run\(\)"):
        assay.run_experiment(
            module, param_sets=[assay.ExperimentParameters(name="a")], project_root=bad_project
        )


@pytest.mark.parametrize("setting", ["logs_dir", "reports_dir"])
def test_a_logs_or_reports_folder_that_cannot_be_made_is_named_before_the_run_begins(
    bad_project, setting
):
    """ASSAY_LOGS_DIR=notadir (a file) said "File exists: .../notadir", not that it was
    the logs folder, and `assay show latest` then said the run was interrupted, killed."""
    ok = run_cli("run", "good", cwd=bad_project)
    assert ok.code == 0, ok
    (bad_project / "notadir").touch()
    variable = f"ASSAY_{setting.upper()}"

    result = fails(
        run_cli("run", "good", "--overwrite", cwd=bad_project, env={variable: "notadir"}),
        f"(setting {setting})",
        "notadir is a file, not a folder",
        f"{variable}=notadir",
    )
    assert "Nothing was run" in result.text
    with RunStore(bad_project / "assay.db") as store:
        store.settle_abandoned_runs()
        runs = store.list_runs()
    assert [(r.number, r.status) for r in runs] == [(1, "completed")]


def test_a_failure_as_the_run_begins_is_recorded_as_a_failure_with_its_reason(
    bad_project, monkeypatch
):
    """A failure after the run began in the run store but before it was under way left it
    `running`, and then "interrupted ... killed"."""

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("assay.experiment.ProgressFile", broken)
    with pytest.raises(OSError):
        assay.run_experiment("good", project_root=bad_project)
    with RunStore(bad_project / "assay.db") as store:
        store.settle_abandoned_runs()
        (run,) = store.list_runs()
    assert run.status == "failed"
    assert "No space left on device" in run.error


def test_a_stage_that_changes_a_parameter_list_in_place_is_stopped(tmp_path: Path):
    """`record.params.layers.append(3)` reached later stages serially (under keys of the
    old value, so a re-run recomputed everything) and was lost in workers."""
    from dataclasses import dataclass, field

    from assay.errors import StageError

    @dataclass
    class Params(assay.ExperimentParameters):
        layers: list = field(default_factory=lambda: [1, 2])

    @assay.stage(outputs=["x"])
    def build(record):
        record.params.layers.append(3)
        return len(record.params.layers)

    manager = assay.ArtifactManager("inplace", project_root=tmp_path)
    with pytest.raises(StageError, match=r"changed record.params.layers in place"):
        build(assay.Record(manager, Params(name="a")))


def test_a_record_made_with_something_else_than_a_parameter_set_says_so(tmp_path: Path):
    """It failed later with "'dict' object has no attribute 'params_hash'"."""
    from assay.errors import ParameterError

    manager = assay.ArtifactManager("odd", project_root=tmp_path)
    with pytest.raises(ParameterError, match=r"takes a parameter set .* not dict \{'a': 1\}"):
        assay.Record(manager, {"a": 1})


def test_assay_ls_refuses_a_negative_limit(tmp_project: Path):
    result = run_cli("ls", "-n", "-1", cwd=tmp_project)
    assert result.code == 2 and "-1 is not in the range x>=0" in result.text, result


def test_a_parameter_file_path_with_another_suffix_is_not_taken_for_the_py_file(
    tmp_path: Path,
):
    """``-p params/example.txt`` ran ``params/example.py``; an existing ``notes.txt`` was
    said to be a missing ``notes.py``."""
    project = copy_project("basic", tmp_path)
    (project / "params" / "notes.txt").write_text("not parameters\n")

    typo = run_cli("run", "diamond", "-p", "params/two.txt", cwd=project)
    text = run_cli("run", "diamond", "-p", "params/notes.txt", cwd=project)

    assert typo.code == 1 and "The parameter file params/two.txt does not exist" in typo.text
    assert "give its name: 'two'" in typo.text, typo
    assert text.code == 1, text
    assert "The parameter file params/notes.txt is not a Python file" in text.text, text
    assert not (project / "assay.db").exists()  # nothing ran


CHANGED_IN_RUN = """
from dataclasses import dataclass, replace

import assay
from assay.caching import JsonCacher


@dataclass
class P(assay.ExperimentParameters):
    k: int = 1


@assay.stage(outputs=["a"], cachers=[JsonCacher])
def sa(record):
    return record.params.k


def get_params():
    return [P(name="p")]


def run(param_sets, manager):
    for params in param_sets:
        params.k = 2  # before its record: fine
        sa(assay.Record(manager, params))
        params.k = 5  # after: its stage would run with 5, keyed on 2
"""


def test_run_changing_a_parameter_set_after_making_its_record_is_refused(tmp_path: Path):
    """The stages ran after run() with the last value, keyed on the value at their call:
    from the second run on, an edit of that value reused the old result."""
    project = copy_project("basic", tmp_path)
    (project / "experiments" / "changed_in_run.py").write_text(CHANGED_IN_RUN)

    result = fails(
        run_cli("run", "changed_in_run", cwd=project),
        "Parameter set 'p' cannot change now (its field 'k' set to 5 at",
        "changed_in_run.py, line 26",
        "dataclasses.replace(params, k=...)",
    )
    assert not (project / "data" / "cache" / "objects").exists(), result
    (project / "experiments" / "changed_in_run.py").write_text(
        CHANGED_IN_RUN.replace("        params.k = 5", "        replace(params, k=5)")
    )
    assert run_cli("run", "changed_in_run", cwd=project).code == 0
    assert assay.load("a", param_set="p", project_root=project) == 2


CHANGES_A_VALUE = """
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import assay
from assay.caching import JsonCacher


@dataclass
class Model:
    depth: int = 3


@dataclass
class P(assay.ExperimentParameters):
    arr: np.ndarray = field(default_factory=lambda: np.array([1.0, 2.0, 3.0]))
    model: Model = field(default_factory=Model)
    df: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"a": [3, 1, 2]}))
    nested: tuple = field(default_factory=lambda: ([1, 2], "x"))


@assay.stage(outputs=["out"], cachers=[JsonCacher])
def change(record):
    p = record.params
    CHANGE
    return 1


def get_params():
    return [P(name="p")]


def run(param_sets, manager):
    change(assay.Record(manager, param_sets[0]))
"""


@pytest.mark.parametrize(
    ("change", "field_name"),
    [("a = p.arr; a /= a.sum()", "arr"), ("p.model.depth += 1", "model"),
     ("p.df.sort_values('a', inplace=True)", "df"), ("p.nested[0].append(99)", "nested")],
    ids=["array", "dataclass", "frame", "list-in-tuple"],
)  # fmt: skip
def test_a_stage_changing_a_parameter_value_in_place_is_refused(tmp_path, change, field_name):
    """Only list, dict and set fields were checked: the later stages saw the changed array,
    object or frame under the key of the value before."""
    project = copy_project("basic", tmp_path)
    (project / "experiments" / "changes.py").write_text(CHANGES_A_VALUE.replace("CHANGE", change))

    fails(
        run_cli("run", "changes", cwd=project),
        f"Stage 'change' changed record.params.{field_name} in place",
        "Work on a copy",
    )
