"""The runner keeps its promises in three corners found by probing it.

- A stage that changes a cached input in place (``x.append(99)``) changes it for no
  other stage: a serial run leaves the bytes a ``--parallel`` run and a re-run leave.
- ``overwrite=True`` on a parameter set recomputes what uses its stages' outputs (an
  aggregate over it), as ``--overwrite-stage`` does.
- A cached file deleted by hand, for a stage whose reads depend on its parameters
  (several read sets for one base), does not execute it when everything after it is
  cached, and the explanation says the artifact was removed, not "never computed".

Each test writes a small project into ``tmp_path`` and runs ``python -m assay`` in a
subprocess, as a researcher would.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

from conftest import run_cli


def project(root: Path, experiment: str, source: str) -> Path:
    """A project at ``root`` with one experiment ``experiment`` (its module's source)."""
    (root / "experiments").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "assay.toml").write_text("")
    (root / "experiments" / "__init__.py").write_text("")
    (root / "experiments" / f"{experiment}.py").write_text(textwrap.dedent(source))
    return root


def run(root: Path, *args: object) -> str:
    """``assay run ARGS`` in ``root``; what it printed (it must succeed)."""
    result = run_cli("run", *args, "--no-report", cwd=root)
    assert result.code == 0, result
    return result.text


def artifacts(root: Path) -> dict[str, str]:
    """Each cached artifact file (not sidecars) by its by-name path, with its sha256."""
    by_name = root / "data" / "cache" / "by-name"
    found = {}
    for link in sorted(by_name.rglob("*")):
        if link.is_symlink():
            for path in sorted(link.resolve().iterdir()):
                if not path.name.startswith(("_", ".")) and not path.name.endswith(".meta.json"):
                    found[f"{link.relative_to(by_name)}/{path.name}"] = hashlib.sha256(
                        path.read_bytes()
                    ).hexdigest()
    return found


def value(root: Path, experiment: str, param_set: str, stage: str, output: str):
    folder = root / "data" / "cache" / "by-name" / experiment
    if param_set == "aggregate":  # filed as aggregate-DIGEST (of its sets' names)
        (link,) = folder.glob(f"aggregate-*/{stage}")
    else:
        link = folder / param_set / stage
    return json.loads((link / f"{output}.json").read_text())


# -- 1. a stage that changes its input in place ---------------------------------------------

MUTATE = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    a: int = 1


@assay.stage(outputs=["x"], cachers=[PickleCacher])
def make(record):
    return [1, 2]


@assay.stage(inputs=["x"], outputs=["n"], cachers=[JsonCacher])
def count(record, x):
    x.append(99)  # changes its input in place
    return len(x)


@assay.stage(inputs=["x"], outputs=["c"], cachers=[JsonCacher])
def copy_x(record, x):
    return list(x)


@assay.stage(inputs=["x"], outputs=["g"], cachers=[JsonCacher])
def grow(record, x):
    x.extend([7, 8])  # in place too, on a branch
    return len(x)


@assay.stage(inputs=["x"], outputs=["s"], cachers=[JsonCacher])
def show(record, x):
    return list(x)


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    record = make(assay.Record(manager, param_sets[0]))
    copy_x(count(record))
    show(grow(record.make_copy()))
"""


def test_a_stage_changing_a_cached_input_in_place_changes_it_for_no_later_stage(tmp_path):
    serial = project(tmp_path / "serial", "mu", MUTATE)
    parallel = project(tmp_path / "parallel", "mu", MUTATE)

    run(serial, "mu")
    run(parallel, "mu", "--parallel", "2")

    assert value(serial, "mu", "p", "copy_x", "c") == [1, 2]
    assert value(serial, "mu", "p", "show", "s") == [1, 2]  # the branch's own copy too
    made = artifacts(serial)
    assert made == artifacts(parallel)
    assert len(made) == 5

    # A re-run that executes only the later stages finds the same inputs.
    run(serial, "mu", "--overwrite-stage", "copy_x", "--overwrite-stage", "show")
    assert artifacts(serial) == made


def test_a_stage_changing_a_cached_state_entry_it_reads_changes_it_for_no_later_stage(
    tmp_path,
):
    root = project(
        tmp_path / "lab",
        "poke",
        """
        from dataclasses import dataclass

        import assay
        from assay.caching import JsonCacher


        @dataclass
        class Params(assay.ExperimentParameters):
            a: int = 1


        @assay.stage(outputs=["x"], cachers=[JsonCacher])
        def make(record):
            return {"seen": []}


        @assay.stage(outputs=["n"], cachers=[JsonCacher])
        def poke(record):
            record.state["x"]["seen"].append("poke")  # read without declaring it
            return 1


        @assay.stage(inputs=["x"], outputs=["c"], cachers=[JsonCacher])
        def copy_x(record, x):
            return x


        def get_params():
            return [Params(name="p")]


        def run(param_sets, manager):
            copy_x(poke(make(assay.Record(manager, param_sets[0]))))
        """,
    )

    run(root, "poke")

    assert value(root, "poke", "p", "copy_x", "c") == {"seen": []}


# -- 2. overwrite=True reaches what uses the stages it recomputes ---------------------------


def test_overwrite_true_recomputes_an_aggregate_over_the_set(tmp_path):
    root = project(
        tmp_path / "lab",
        "ow",
        """
        from dataclasses import dataclass
        from pathlib import Path

        import assay
        from assay.caching import JsonCacher


        @dataclass
        class Params(assay.ExperimentParameters):
            a: int = 1


        @assay.stage(outputs=["o"], cachers=[JsonCacher])
        def draw(record):  # another result every time it runs (a fresh data file, say)
            with open("draws.txt", "a") as handle:
                handle.write(f"{record.params.a}\\n")
            return len(Path("draws.txt").read_text().splitlines())


        @assay.aggregate(inputs=["o"], outputs=["g"], cachers=[JsonCacher])
        def collect(record, records, o):
            return sorted(o.values())


        @assay.stage(inputs=["g"], outputs=["t"], cachers=[JsonCacher])
        def total(record, g):
            return sum(g)


        def get_params():
            return [Params(name="p", overwrite=True), Params(name="q", a=2)]


        def run(param_sets, manager):
            for params in param_sets:
                draw(assay.Record(manager, params))
            total(collect(assay.Record(manager, None)))
        """,
    )

    run(root, "ow")
    assert value(root, "ow", "aggregate", "collect", "g") == [1, 2]

    explained = run(root, "ow", "--explain")

    assert value(root, "ow", "p", "draw", "o") == 3
    assert value(root, "ow", "aggregate", "collect", "g") == [2, 3]
    assert value(root, "ow", "aggregate", "total", "t") == 5
    assert (
        "executes collect [aggregate]: it uses what draw [p] recomputes (parameter set 'p' "
        "has overwrite=True)" in explained
    )
    assert "reused draw [q]" in explained
    assert "3 executed, 1 cached" in explained


# -- 3. a cached file deleted by hand ----------------------------------------------------------

BRANCHING = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    mode: str = "x"
    x: int = 1
    y: int = 2


@assay.stage(outputs=["a"], cachers=[JsonCacher])
def first(record):  # reads x or y, as mode says: two read sets for one base
    p = record.params
    return p.x if p.mode == "x" else p.y


@assay.stage(inputs=["a"], outputs=["b"], cachers=[JsonCacher])
def second(record, a):
    return a * 10


def get_params():
    return [Params(name="px", mode="x"), Params(name="py", mode="y")]


def run(param_sets, manager):
    for p in param_sets:
        second(first(assay.Record(manager, p)))
"""


def test_a_deleted_file_of_a_stage_with_several_read_sets_is_not_recomputed_for_nothing(
    tmp_path,
):
    root = project(tmp_path / "lab", "br", BRANCHING)
    run(root, "br")
    by_name = root / "data" / "cache" / "by-name" / "br"
    assert len((root / "data" / "cache" / "reads" / "first.jsonl").read_text().splitlines()) == 2

    # The older read set, then the newer one (with the first file still missing).
    for param_set, done in (("px", "3 cached, 1 not needed"), ("py", "2 cached, 2 not needed")):
        (by_name / param_set / "first" / "a.json").unlink()

        why = run_cli("why", "br", cwd=root)
        assert why.code == 0, why
        assert f"not needed first [{param_set}]" in why.text
        assert "0 of 4 stage runs execute" in why.text
        assert done in run(root, "br")
        # That run threw away what was left of the entry: the next one still knows.
        assert done in run(root, "br")
    assert value(root, "br", "px", "second", "b") == 10
    assert value(root, "br", "py", "second", "b") == 20


def test_a_deleted_file_is_explained_as_removed_not_as_never_computed(tmp_path):
    root = project(tmp_path / "lab", "br", BRANCHING)
    run(root, "br")
    px = root / "data" / "cache" / "by-name" / "br" / "px"
    (px / "first" / "a.json").unlink()
    (px / "second" / "b.json").unlink()

    explained = run(root, "br", "--explain")

    assert "never computed" not in explained
    assert "executes first [px]: its cached artifact cannot be reused: Cached artifact 'a'" in (
        explained
    )
    assert "a.json is missing" in explained
    assert "2 executed, 2 cached" in explained

    # An entry an earlier run threw away (it found a file missing, and needed none).
    (px / "first" / "a.json").unlink()
    assert "3 cached, 1 not needed" in run(root, "br")
    (px / "second" / "b.json").unlink()

    why = run_cli("why", "br", cwd=root)

    assert why.code == 0, why
    assert (
        "executes first [px]: no cached artifact: the one last made for this parameter set "
        "was removed from the cache" in why.text
    )
    assert "never computed" not in why.text


# -- found on a second look ------------------------------------------------------------------

RE_KEYED = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    model: str = "logistic"
    C: float = 1.0
    n_estimators: int = 10


@assay.stage(outputs=["model"], cachers=[JsonCacher])
def train(record):
    p = record.params
    if p.model == "logistic":  # reads C or n_estimators: two read sets
        return {"kind": "logistic", "C": p.C}
    return {"kind": "forest", "trees": p.n_estimators}


@assay.stage(inputs=["model"], outputs=["summary"], cachers=[JsonCacher])
def describe(record, model):
    return dict(model)


@assay.stage(inputs=["summary"], outputs=["score"], cachers=[JsonCacher])
def evaluate(record, summary):
    return summary


def get_params():
    return [Params(name="run")]


def run(param_sets, manager):
    evaluate(describe(train(assay.Record(manager, param_sets[0]))))
"""


def test_a_stage_keyed_again_as_it_runs_has_the_stages_after_it_keyed_again(tmp_path):
    """A stage whose predicted key (from another read set) was wrong was keyed again
    before it ran, but the stages after it kept keys made from the wrong one: evaluate
    was filed under a key that a later run predicted, and reused a stale result."""
    root = project(tmp_path / "p", "grid", RE_KEYED)
    for settings in (
        ("C=1.0",),
        ("model=forest",),
        ("C=2.0",),
        ("model=forest", "n_estimators=50"),
    ):
        args = [a for s in settings for a in ("--set", s)]
        run(root, "grid", *args)
        params = dict(s.split("=") for s in settings)
        forest = params.get("model") == "forest"
        expected = (
            {"kind": "forest", "trees": int(params.get("n_estimators", 10))}
            if forest
            else {"kind": "logistic", "C": float(params["C"])}
        )
        got = value(root, "grid", "run", "evaluate", "score")
        assert got == expected, settings
        again = run(root, "grid", *args)  # the same command: all cached
        assert "3 cached" in again, again


READ_IN_RUN = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher, PickleCacher


@dataclass
class Params(assay.ExperimentParameters):
    n: int = 3


@assay.stage(outputs=["xs"], cachers=[PickleCacher])
def make(record):
    return list(range(record.params.n))


@assay.stage(inputs=["xs"], outputs=["h"], cachers=[JsonCacher])
def mutate(record, xs):
    xs.append(7)  # in place
    return list(xs)


@assay.aggregate(inputs=["xs"], outputs=["agg"], cachers=[JsonCacher])
def grow_all(record, records, xs):
    out = []
    for r, v in sorted(xs.items(), key=lambda item: item[0].name):
        v.append(-1)  # in place, once per record
        out.append([r.name, list(v)])
    return out


def get_params():
    return [Params(name="a"), Params(name="b", n=4)]


def run(param_sets, manager):
    records = [make(assay.Record(manager, p)) for p in param_sets]
    mutate(records[0])
    print("RUN READS", records[0].state["xs"])
    grow_all(assay.Record(manager, None), records=[*records, records[0].make_copy()])
"""


def test_run_and_an_aggregate_over_a_copy_see_cached_values_as_workers_do(tmp_path):
    """``run()`` reading an output right after a stage changed it in place got the
    changed list; an aggregate over a record and its make_copy() got one object twice,
    so the copy's entry held both appends. Workers give neither."""
    serial = project(tmp_path / "serial", "reads", READ_IN_RUN)
    parallel = project(tmp_path / "parallel", "reads", READ_IN_RUN)

    printed = run(serial, "reads")
    run(parallel, "reads", "--parallel", "2")

    assert "RUN READS [0, 1, 2]" in printed, printed
    expected = [["a", [0, 1, 2, -1]], ["a", [0, 1, 2, -1]], ["b", [0, 1, 2, 3, -1]]]
    assert value(serial, "reads", "aggregate", "grow_all", "agg") == expected
    assert artifacts(serial) == artifacts(parallel)


NAMED_FILES = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class P(assay.ExperimentParameters):
    a: int = 1
    n_jobs: int = 1
    hash_representations: dict = assay.set_hash_functions(n_jobs=None)


@assay.stage([], ["val"], [JsonCacher(path_override="out/{params.name}_val.json")])
def compute(record):
    return {"a": record.params.a * 10}


@assay.stage(["val"], ["doubled"], [JsonCacher])
def double(record, val):
    return {"who": record.params.name, "a2": val["a"] * 2}


def get_params():
    return [P(name="serial"), P(name="parallel4", n_jobs=4)]


def run(param_sets, manager):
    for p in param_sets:
        double(compute(assay.Record(manager, p)))
"""


def test_a_path_override_naming_parameters_writes_each_set_s_own_file(tmp_path: Path):
    """Two sets hashing alike (the name is not hashed, nor ``n_jobs`` here) were one stage
    run: only ``out/serial_val.json`` was written, and loading ``parallel4``'s failed, on
    every run, ``--overwrite-stage`` too (found by a Curifactory comparison)."""
    root = project(tmp_path / "named", "named_files", NAMED_FILES)

    first = run(root, "named_files")
    again = run(root, "named_files")

    assert "4 executed" in first and "4 cached" in again, (first, again)
    for name in ("serial", "parallel4"):
        assert json.loads((root / "out" / f"{name}_val.json").read_text()) == {"a": 10}


FORGETFUL = """
from dataclasses import dataclass

import assay
from assay.caching import JsonCacher


@dataclass
class P(assay.ExperimentParameters):
    a: int = 1


@assay.stage([], ["model"], [JsonCacher])
def fit(record):
    model = {"slope": record.params.a}  # and no return


@assay.stage([], ["scores"], [JsonCacher])
def score(record):
    return record.params.a


@assay.aggregate(["scroes"], ["board"], [JsonCacher])
def compare(record, records, scroes):
    return sorted(scroes.values())


def get_params():
    return [P(name="one"), P(name="two", a=2)]


def run(param_sets, manager):
    for p in param_sets:
        score(fit(assay.Record(manager, p)))
    compare(assay.Record(manager, None))
"""


def test_a_forgotten_return_and_an_aggregate_input_nobody_holds_are_warned_of(tmp_path: Path):
    """Both ran silently: ``fit`` cached None for ``model``, and ``compare`` (its input
    misspelled) cached an empty board."""
    root = project(tmp_path / "forgetful", "forgetful", FORGETFUL)

    said = run(root, "forgetful")

    assert ("WARNING: Stage 'fit' for parameter set 'one' returned None for its output "
            "'model' (no `return`?)") in said, said  # fmt: skip
    assert ("WARNING: Aggregate 'compare': none of the 2 record(s) it combines holds 'scroes', "
            "so it gets an empty dict for it. Did you mean 'scores'?") in said, said  # fmt: skip


NESTED_NAME = """
from dataclasses import dataclass, field

import assay
from assay.caching import JsonCacher


@dataclass
class DataParams(assay.ExperimentParameters):
    n: int = 10


@dataclass
class P(assay.ExperimentParameters):
    data: DataParams = field(default_factory=lambda: DataParams(name="mnist"))


@assay.stage(outputs=["loaded"], cachers=[JsonCacher])
def load(record):
    return f"loaded {record.params.data.name} n={record.params.data.n}"


def get_params():
    return [P(name="p")]


def run(param_sets, manager):
    for p in param_sets:
        load(assay.Record(manager, p))
"""

CIFAR = """
from experiments.nested_name import DataParams, P


def get_params():
    return [P(name="p", data=DataParams(name="cifar"))]
"""


def test_the_name_of_a_parameter_set_held_in_a_field_keys_the_stages_that_read_it(
    tmp_path: Path,
):
    """``data=DataParams(name="cifar")`` reused the result made for ``name="mnist"``: a
    parameter set's name is no part of its hash, nested or not."""
    root = project(tmp_path / "nested", "nested_name", NESTED_NAME)
    (root / "params" / "cifar.py").write_text(CIFAR)

    run(root, "nested_name")
    second = run(root, "nested_name", "-p", "cifar")

    assert "1 executed" in second, second
    import assay

    assert assay.load("loaded", param_set="p", project_root=root) == "loaded cifar n=10"
