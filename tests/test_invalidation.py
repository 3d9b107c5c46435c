"""Stale-result cases (issue 7): every edit recomputes exactly what it must, and no more.

Each test copies ``tests/resources/projects/invalidation`` into ``tmp_path``:
``lab/`` is the project and ``site/`` holds ``tinypkg``, a stand-in for an
installed package (it has a ``tinypkg-1.0.dist-info``) that is put on
``PYTHONPATH``. Every run is ``python -m assay run ...`` in a fresh
subprocess, as a researcher's next ``assay run`` would be, so edited sources
are read by a new interpreter. Stages append ``stage:set`` to ``calls.txt``
when they really execute; each case asserts exactly which stage runs executed
on the re-run (zero needless recomputations) and that every cached value is
the one the current code and parameters compute (zero stale results).

The ``chain`` experiment (see ``lab/experiments/chain.py``)::

    load -> transform (lib.features.scale, imported by name; reads `factor` in it)
         -> enrich    (lib.features.shift through `import lib.features as f`; SHIFT)
         -> fit       (the project class lib.models.Model; the constant RATE)
         -> pack      (tinypkg.triple, an installed package)
    -> combine (the module's helper `total`) -> report (reads the late parameter `offset`)

Smaller experiments beside it: ``pooled`` (the chain plus an aggregate),
``named`` (``record.params.name`` against ``record.name``), ``wholesale``
(``dataclasses.asdict``), ``replacing`` (``dataclasses.replace``),
``equality`` (``==``), ``lambdas`` (functions held in parameters),
``reach`` (helpers reached indirectly), ``pinned`` (``version=``) and
``noisy`` (``deterministic=False``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

import assay
from conftest import PROJECTS, Calls, edit, on_sys_path, run_cli

CHAIN = ("load", "transform", "enrich", "fit", "pack", "combine", "report")
# Python 3.10's code objects hold no column positions: a lambda is keyed on the whole
# line it sits on there, so an edit beside it recomputes its stages (too much, never too little).
COLUMNS = sys.version_info >= (3, 11)
NEEDS_COLUMNS = pytest.mark.skipif(not COLUMNS, reason="Python 3.10 keys a lambda by its line")
SETS = {"a": {"n": 3, "factor": 2, "offset": 0}, "b": {"n": 4, "factor": 3, "offset": 5}}
"""The parameter sets of ``params/base.py`` (and of ``chain.get_params()``)."""


class Lab:
    """A fresh copy of the fixture, and ways to run, edit and inspect it."""

    def __init__(self, tmp_path: Path):
        self.base = tmp_path / "invalidation"
        shutil.copytree(
            PROJECTS / "invalidation", self.base, ignore=shutil.ignore_patterns("__pycache__")
        )
        self.root = self.base / "lab"
        self.site = self.base / "site"
        self.calls = Calls(self.root)

    def run(self, *args: str, code: int = 0) -> list[str]:
        """Run ``assay run ARGS`` in a new process; the stage runs that executed, sorted."""
        result = run_cli("run", *args, "--no-report", cwd=self.root)
        assert result.code == code, str(result)
        return sorted(self.calls.take())

    def edit(self, path: str, old: str, new: str) -> None:
        """Replace ``old`` by ``new`` in ``path`` (relative to the fixture copy)."""
        edit(self.base / path, old, new)

    def value(self, output: str, param_set: str, experiment: str = "chain"):
        return assay.load(
            output, param_set=param_set, experiment=experiment, project_root=self.root
        )

    def check_chain(
        self, experiment: str = "chain", sets: dict | None = None, **code: Callable
    ) -> None:
        """Every artifact of the chain equals what the current code would compute."""
        for name, params in (sets or SETS).items():
            expected = chain_values(**params, **code)
            found = {output: self.value(output, name, experiment) for output in expected}
            assert found == expected, f"parameter set {name!r}"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    made = Lab(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(made.site))
    return made


def chain_values(
    n: int,
    factor: int,
    offset: int,
    *,
    scale: Callable = lambda x, k: x * k,
    shift: Callable = lambda x: x + 10,
    predict: Callable = lambda x: 2 * x - 1,
    pack: Callable = lambda x: 3 * x,
    total: Callable = sum,
) -> dict:
    """What ``chain`` computes for one parameter set; keywords stand for edited code."""
    data = [i + 1 for i in range(n)]
    values = {
        "data": data,
        "scaled": [scale(x, factor) for x in data],
        "shifted": [shift(x) for x in data],
        "predicted": [predict(x) for x in data],
        "packed": [pack(x) for x in data],
    }
    combined = sum(total(values[k]) for k in ("scaled", "shifted", "predicted", "packed"))
    return {**values, "combined": combined, "final": combined + offset}


def executed(stages: Iterable[str], sets: Iterable[str] = SETS) -> list[str]:
    """``stage:set`` for every stage and set, sorted like :meth:`Lab.run`'s result."""
    return sorted(f"{stage}:{name}" for name in sets for stage in stages)


def baseline(lab: Lab) -> None:
    assert lab.run("chain", "-p", "base") == executed(CHAIN)
    lab.check_chain()


# -- code ---------------------------------------------------------------------------------

SCALE = ("lab/lib/features.py", "[x * params.factor for x in values]")
"""Where ``scale`` computes; tests edit it."""

CODE_EDITS = [
    pytest.param(
        "lab/experiments/chain.py",
        "return sum(values)",
        "return sum(values) + 1",
        ("combine", "report"),
        {"total": lambda v: sum(v) + 1},
        id="helper-in-experiment-module",
    ),
    pytest.param(
        *SCALE,
        "[x * params.factor + 1 for x in values]",
        ("transform", "combine", "report"),
        {"scale": lambda x, k: x * k + 1},
        id="other-module-from-import",
    ),
    pytest.param(
        "lab/lib/features.py",
        "[x + SHIFT for x in values]",
        "[x - SHIFT for x in values]",
        ("enrich", "combine", "report"),
        {"shift": lambda x: x - 10},
        id="other-module-attribute-chain",
    ),
    pytest.param(
        "lab/lib/features.py",
        "SHIFT = 10",
        "SHIFT = 20",
        ("enrich", "combine", "report"),
        {"shift": lambda x: x + 20},
        id="constant-in-other-module",
    ),
    pytest.param(
        "lab/experiments/chain.py",
        "RATE = 2",
        "RATE = 5",
        ("fit", "combine", "report"),
        {"predict": lambda x: 5 * x - 1},
        id="constant-in-experiment-module",
    ),
    pytest.param(
        "lab/lib/models.py",
        "[self.rate * x - 1 for x in values]",
        "[self.rate * x + 1 for x in values]",
        ("fit", "combine", "report"),
        {"predict": lambda x: 2 * x + 1},
        id="method-of-project-class",
    ),
    pytest.param(
        "site/tinypkg-1.0.dist-info/METADATA",
        "Version: 1.0",
        "Version: 1.1",
        ("pack", "combine", "report"),
        {},
        id="package-version",
    ),
]


@pytest.mark.parametrize(("path", "old", "new", "stages", "code"), CODE_EDITS)
def test_code_edit_recomputes_its_stage_and_downstream_and_a_revert_reuses_the_old_results(
    lab: Lab, path: str, old: str, new: str, stages: tuple, code: dict
):
    baseline(lab)
    lab.edit(path, old, new)
    assert lab.run("chain", "-p", "base") == executed(stages)
    lab.check_chain(**code)

    lab.edit(path, new, old)
    assert lab.run("chain", "-p", "base") == [], "the artifacts from before the edit are kept"
    lab.check_chain()


NO_OP_EDITS = [
    pytest.param(
        [
            (
                "lab/experiments/chain.py",
                '    note(record, "combine")\n',
                '    # sum it all\n    note(record, "combine")\n',
            ),
            ("lab/lib/features.py", "    return [x + SHIFT", "    # shift\n    return [x + SHIFT"),
            ("lab/lib/models.py", "x - 1 for x in values]", "x - 1 for x in values]  # note"),
            ("lab/experiments/chain.py", "RATE = 2", "RATE = 2  # tuned by hand"),
        ],
        id="comments-only",
    ),
    pytest.param(
        [
            ("lab/lib/features.py", "by the parameter set's factor", "by `params.factor`"),
            ("lab/experiments/chain.py", "Scale the data", "Scale every value of the data"),
            ("lab/lib/models.py", '"""One prediction per value."""', '"""Predict."""'),
            (
                "lab/experiments/chain.py",
                "def total(values):\n",
                'def total(values):\n    """Sum."""\n',
            ),
            ("lab/experiments/chain.py", '"""A chain whose', '"""The chain whose'),
        ],
        id="docstrings-only",
    ),
    pytest.param(
        [
            (
                "lab/experiments/chain.py",
                "def total(values):\n    return sum(values)",
                "def total( values ):\n\n    return sum(\n        values,\n    )",
            ),
            ("lab/lib/features.py", "[x + SHIFT for x in values]", "[(x+SHIFT)  for x in values]"),
            (
                "lab/lib/models.py",
                "[self.rate * x - 1 for x in values]",
                "[\n            self.rate*x-1\n            for x in values\n        ]",
            ),
            (
                "lab/experiments/chain.py",
                '    note(record, "fit")\n',
                "\n    note(record, 'fit');\n",
            ),
        ],
        id="formatting-only",
    ),
    pytest.param(
        [
            ("lab/lib/features.py", "top = max(values)", "top = max(values) or 1"),
            ("lab/experiments/chain.py", 'TITLE = "Scores"', 'TITLE = "Totals"'),
            (
                "lab/experiments/chain.py",
                "def title():",
                "def subtitle():\n    return 1\n\n\ndef title():",
            ),
        ],
        id="code-no-stage-uses",
    ),
]


@pytest.mark.parametrize("edits", NO_OP_EDITS)
def test_edit_that_changes_no_used_code_recomputes_nothing(lab: Lab, edits: list):
    baseline(lab)
    for path, old, new in edits:
        lab.edit(path, old, new)
    assert lab.run("chain", "-p", "base") == []
    lab.check_chain()


def test_reverting_several_edits_finds_every_earlier_artifact(lab: Lab):
    baseline(lab)
    lab.edit(*SCALE, "[x * params.factor * 2 for x in values]")
    lab.edit("lab/experiments/chain.py", "RATE = 2", "RATE = 3")
    assert lab.run("chain", "-p", "base") == executed(["transform", "fit", "combine", "report"])
    lab.check_chain(scale=lambda x, k: x * k * 2, predict=lambda x: 3 * x - 1)
    assert lab.run("chain", "-p", "base", "--set", "offset=9") == executed(["report"])

    lab.edit("lab/experiments/chain.py", "RATE = 3", "RATE = 2")
    lab.edit(*SCALE[:1], "[x * params.factor * 2 for x in values]", SCALE[1])
    assert lab.run("chain", "-p", "base") == []
    lab.check_chain()


def test_package_source_is_not_keyed_only_its_version(lab: Lab):
    """Packages count by name and version: editing one in place goes unnoticed (documented)."""
    baseline(lab)
    lab.edit("site/tinypkg/__init__.py", "return 3 * x", "return 4 * x")
    assert lab.run("chain", "-p", "base") == []
    lab.check_chain()  # the results of tinypkg 1.0 as installed before: by design

    lab.edit("site/tinypkg-1.0.dist-info/METADATA", "Version: 1.0", "Version: 1.1")
    assert lab.run("chain", "-p", "base") == executed(["pack", "combine", "report"])
    lab.check_chain(pack=lambda x: 4 * x)


def test_a_library_installed_in_editable_mode_is_followed_by_its_source(lab: Lab):
    """``pip install -e ../mylib`` (PEP 610's ``direct_url.json`` says editable): the
    library is the researcher's own code under development, so an edit to it re-runs the
    stages that use it, with no version bump, and a comment added to it re-runs none."""
    info = lab.site / "tinypkg-1.0.dist-info"
    (info / "direct_url.json").write_text(
        json.dumps({"url": lab.site.as_uri(), "dir_info": {"editable": True}})
    )
    baseline(lab)
    lab.edit("site/tinypkg/__init__.py", "return 3 * x", "return 4 * x")
    assert lab.run("chain", "-p", "base") == executed(["pack", "combine", "report"])
    lab.check_chain(pack=lambda x: 4 * x)

    lab.edit("site/tinypkg/__init__.py", "return 4 * x", "return 4 * x  # checked")
    assert lab.run("chain", "-p", "base") == []

    (info / "direct_url.json").write_text(  # installed from a folder, not editable
        json.dumps({"url": lab.site.as_uri(), "dir_info": {}})
    )
    assert lab.run("chain", "-p", "base") == executed(["pack", "combine", "report"])
    lab.edit("site/tinypkg/__init__.py", "return 4 * x  # checked", "return 5 * x")
    assert lab.run("chain", "-p", "base") == []  # keyed by its version again


def test_overwrite_stage_forces_that_stage_and_what_uses_it(lab: Lab):
    baseline(lab)
    downstream = ["transform", "combine", "report"]  # what uses `scaled`, and so on
    assert lab.run("chain", "-p", "base", "--overwrite-stage", "transform") == executed(downstream)
    lab.check_chain()
    assert lab.run("chain", "-p", "base") == []


REACH = ("local", "memo", "decorated", "dispatch", "nested", "methods")
"""The stages of ``reach``: one per way of reaching a helper of ``lib/extras.py``."""


def reach_values(n: int, **changed: Callable) -> dict:
    helpers = {
        "local": lambda x: x + 1,
        "memo": lambda x: x * 10,
        "decorated": lambda x: x**3,
        "dispatch": lambda x: -x,
        "nested": lambda x: x / 2,
        "methods": lambda x: x + 7 + 2 * x,
        **changed,
    }
    return {stage: helper(n) for stage, helper in helpers.items()}


@pytest.mark.parametrize(
    ("old", "new", "stage", "helper"),
    [
        pytest.param("x + 1", "x + 2", "local", lambda x: x + 2, id="imported-inside-the-stage"),
        pytest.param("x * 10", "x * 20", "memo", lambda x: x * 20, id="functools-cache"),
        pytest.param("x**3", "x**2", "decorated", lambda x: x**2, id="project-decorator"),
        pytest.param(
            "return -x", "return -2 * x", "dispatch", lambda x: -2 * x, id="dict-of-functions"
        ),
        pytest.param("x / 2", "x / 4", "nested", lambda x: x / 4, id="nested-function"),
        pytest.param("x + 7", "x + 8", "methods", lambda x: x + 8 + 2 * x, id="classmethod"),
        pytest.param("2 * x", "3 * x", "methods", lambda x: x + 7 + 3 * x, id="staticmethod"),
    ],
)
def test_helper_reached_indirectly_recomputes_its_stage_only(
    lab: Lab, old: str, new: str, stage: str, helper: Callable
):
    assert lab.run("reach", "-p", "base") == executed(REACH)
    lab.edit("lab/lib/extras.py", old, new)
    assert lab.run("reach", "-p", "base") == executed([stage])
    for name, params in SETS.items():
        found = {output: lab.value(output, name, "reach") for output in REACH}
        assert found == reach_values(params["n"], **{stage: helper}), name


def test_version_takes_code_out_of_the_key(lab: Lab):
    """``@stage(version=...)``: edits do not recompute (by design), a new version does."""
    # neither stage reads a parameter: set b reuses what set a computed
    assert lab.run("pinned", "-p", "base") == ["add:a", "make:a"]
    lab.edit("lab/experiments/pinned.py", "return [1, 2, 3]", "return [1, 2, 3, 4]")
    assert lab.run("pinned", "-p", "base") == []
    assert lab.value("total", "b", "pinned") == 6  # pinned: the edit is ignored on purpose
    lab.edit("lab/experiments/pinned.py", 'version="1"', 'version="2"')
    assert lab.run("pinned", "-p", "base") == ["add:a", "make:a"]
    assert lab.value("base", "b", "pinned") == [1, 2, 3, 4]
    assert lab.value("total", "b", "pinned") == 10


def test_non_deterministic_stage_executes_every_time_and_so_does_its_downstream(lab: Lab):
    assert lab.run("noisy", "-p", "base", "-n", "a") == ["average:a", "sample:a"]
    assert lab.run("noisy", "-p", "base", "-n", "a") == ["average:a", "sample:a"]
    noise = lab.value("noise", "a", "noisy")
    assert lab.value("mean", "a", "noisy") == pytest.approx(sum(noise) / len(noise))


# -- parameters ---------------------------------------------------------------------------

PARAMETER_CHANGES = [
    pytest.param(
        ["offset=7"], None, ("report",), ("a", "b"), {"offset": 7}, id="late-parameter-override"
    ),
    pytest.param(
        [],
        ("offset=5", "offset=6"),
        ("report",),
        ("b",),
        {"offset": 6},
        id="late-parameter-one-set",
    ),
    pytest.param(
        [],
        ("factor=3", "factor=4"),
        ("transform", "combine", "report"),
        ("b",),
        {"factor": 4},
        id="parameter-read-inside-helper",
    ),
    pytest.param(["unused=1"], None, (), (), {}, id="parameter-read-by-no-stage"),
    pytest.param(["workers=8"], None, (), (), {}, id="read-but-excluded-by-field-metadata"),
    pytest.param(
        ["verbose=True"], None, (), (), {}, id="read-but-excluded-by-hash-representations"
    ),
]


@pytest.mark.parametrize(("overrides", "file_edit", "stages", "sets", "changed"), PARAMETER_CHANGES)
def test_parameter_change_recomputes_only_the_stages_that_read_it(
    lab: Lab, overrides: list, file_edit: tuple | None, stages: tuple, sets: tuple, changed: dict
):
    baseline(lab)
    args = [arg for override in overrides for arg in ("--set", override)]
    if file_edit:
        lab.edit("lab/params/base.py", *file_edit)
    assert lab.run("chain", "-p", "base", *args) == executed(stages, sets)
    lab.check_chain(sets={k: {**v, **changed} if k in sets else v for k, v in SETS.items()})

    if file_edit:
        lab.edit("lab/params/base.py", *reversed(file_edit))
    assert lab.run("chain", "-p", "base") == []
    lab.check_chain()


def test_grid_over_a_late_parameter_computes_the_shared_stages_once(lab: Lab):
    grid = [f"g-offset={k}" for k in range(3)]
    calls = lab.run("chain", "-p", "grid")
    assert Counter(call.split(":")[0] for call in calls) == {
        "load": 1,
        "transform": 1,
        "enrich": 1,
        "fit": 1,
        "pack": 1,
        "combine": 1,
        "report": 3,
    }
    assert calls == sorted(
        [f"{stage}:{grid[0]}" for stage in CHAIN[:-1]] + executed(["report"], grid)
    )
    lab.check_chain(sets={name: {"n": 3, "factor": 2, "offset": k} for k, name in enumerate(grid)})
    assert lab.run("chain", "-p", "grid") == []


def test_interrupted_grid_relaunched_finishes_only_the_missing_points(lab: Lab):
    grid = [f"g-offset={k}" for k in range(3)]
    flag = lab.root / f"interrupt-{grid[1]}.flag"
    flag.touch()
    calls = lab.run("chain", "-p", "grid", code=130)
    assert calls == executed(CHAIN, grid[:1])
    flag.unlink()
    assert lab.run("chain", "-p", "grid") == executed(["report"], grid[1:])
    lab.check_chain(sets={name: {"n": 3, "factor": 2, "offset": k} for k, name in enumerate(grid)})


def test_asdict_reads_every_field(lab: Lab):
    everything = executed(["load", "snapshot"])
    assert lab.run("wholesale", "-p", "base") == everything
    assert lab.run("wholesale", "-p", "base", "--set", "unused=7") == executed(["snapshot"])
    assert lab.value("fields", "a", "wholesale") == {"n": 3, "unused": 7}
    assert lab.value("data", "b", "wholesale") == [1, 2, 3, 4]
    # asdict read them too, but excluded fields never enter a key
    assert lab.run("wholesale", "-p", "base", "--set", "verbose=true") == []
    assert lab.run("wholesale", "-p", "base", "--set", "workers=3") == []
    # both sets now have n=5: `load` (it reads only n) runs once and b reuses it
    assert lab.run("wholesale", "-p", "base", "--set", "n=5") == [
        "load:a",
        "snapshot:a",
        "snapshot:b",
    ]
    assert lab.value("fields", "b", "wholesale") == {"n": 5, "unused": 0}
    assert lab.value("data", "b", "wholesale") == [1, 2, 3, 4, 5]
    assert lab.run("wholesale", "-p", "base") == []
    assert lab.value("fields", "b", "wholesale") == {"n": 4, "unused": 0}


def test_replace_makes_a_usable_variant_and_reads_every_field(lab: Lab):
    assert lab.run("replacing", "-p", "base") == executed(["vary"])
    assert lab.value("doubled", "a", "replacing") == [4, 8]
    assert lab.value("doubled", "b", "replacing") == [6, 12]
    assert lab.run("replacing", "-p", "base", "--set", "unused=7") == executed(["vary"])


def test_equality_compares_values_and_reads_every_field(lab: Lab):
    assert lab.run("equality", "-p", "base") == executed(["compare"])
    assert lab.value("is_reference", "a", "equality") is True
    assert lab.value("is_reference", "b", "equality") is False
    assert lab.run("equality", "-p", "base", "--set", "unused=7") == executed(["compare"])
    assert lab.value("is_reference", "a", "equality") is False


METHODS = "lab/experiments/methods.py"


@pytest.mark.parametrize(
    ("old", "new", "stage", "values"),
    [
        pytest.param(
            "return x / 2", "return x / 4", "plan", {"schedule": [0.1, 0.025]}, id="method-helper"
        ),
        pytest.param(
            "return [self.lr, halve(self.lr)]",
            "return [self.lr]",
            "plan",
            {"schedule": [0.1]},
            id="method",
        ),
        pytest.param(
            "return self.lr * 2", "return self.lr * 4", "scale", {"scaled": 1.2}, id="property"
        ),
        pytest.param("SCALE = 3", "SCALE = 5", "scale", {"scaled": 1.0}, id="class-constant"),
    ],
)
def test_editing_a_method_of_the_parameter_class_recomputes_the_stages_that_use_it(
    lab: Lab, old: str, new: str, stage: str, values: dict
):
    assert lab.run("methods") == ["plain:m", "plan:m", "scale:m"]
    assert lab.run("methods") == []
    lab.edit(METHODS, old, new)
    why = run_cli("why", "methods", cwd=lab.root)
    assert "which it uses, changed" in why.text, why
    assert lab.run("methods") == [f"{stage}:m"]
    for output, value in values.items():
        assert lab.value(output, "m", "methods") == pytest.approx(value)
    assert lab.run("methods", "--parallel", "2") == []


def test_editing_the_value_of_an_enum_member_in_a_parameter_recomputes_what_uses_it(lab: Lab):
    assert lab.run("enums") == ["rate:adam", "rate:sgd"]
    lab.edit("lab/experiments/enums.py", "ADAM = 0.001", "ADAM = 0.5")
    assert lab.run("enums") == ["rate:adam"]
    assert lab.value("rate", "adam", "enums") == 0.5
    assert lab.value("rate", "sgd", "enums") == 0.1


def test_attributes_made_from_fields_are_not_shared_between_parameter_sets(lab: Lab):
    """A __post_init__ attribute, or a cached_property computed before the stage ran, was
    keyed on no field: every set got the first set's result, in a single run."""
    assert lab.run("derived") == executed(["steps", "scaled"], ["two", "seven"])
    assert [lab.value("steps", name, "derived") for name in ("two", "seven")] == [20, 70]
    assert [lab.value("scaled", name, "derived") for name in ("two", "seven")] == [200, 700]
    lab.edit("lab/experiments/derived.py", 'name="seven", k=7', 'name="seven", k=8')
    assert lab.run("derived") == executed(["steps", "scaled"], ["seven"])
    assert lab.value("steps", "seven", "derived") == 80
    assert lab.value("scaled", "seven", "derived") == 800


def test_a_name_bound_in_a_nested_scope_hides_the_global_only_there(lab: Lab):
    """A lambda's parameter named `score`, or a method named `normalize`, hid the global
    helper of that name from the whole function; a lambda did not follow `module.helper`."""
    assert lab.run("scoped") == ["applied:s", "normal:s", "ranked:s"]
    lab.edit("lab/lib/scoped.py", "return x + 1", "return x + 5")  # score: ranked, applied
    assert lab.run("scoped") == ["applied:s", "ranked:s"]
    assert lab.value("ranked", "s", "scoped") == [7, 6, 5]
    assert lab.value("applied", "s", "scoped") == 12
    lab.edit("lab/lib/scoped.py", "return x / 2", "return x / 4")  # normalize
    assert lab.run("scoped") == ["normal:s"]
    assert lab.value("normal", "s", "scoped") == 2.5


def test_reading_an_undeclared_state_entry_keys_the_stage_on_it(lab: Lab):
    """`record.state["data"]` read without declaring it was keyed on nothing: editing the
    stage that makes it left the reader's old result in place. (On workers, reading an
    undeclared artifact stops with a message: tests/test_parallel.py.)"""
    options = ()
    assert lab.run("undeclared", *options) == ["load:u", "scaled:u", "total:u"]
    assert lab.run("undeclared", *options) == []
    lab.edit("lab/experiments/undeclared.py", "return [1, 2, 3]", "return [1, 2, 30]")
    assert lab.run("undeclared", *options) == ["load:u", "total:u"]
    assert lab.value("total", "u", "undeclared") == 33
    lab.edit("lab/experiments/undeclared.py", 'state["factor"] = 2', 'state["factor"] = 5')
    assert lab.run("undeclared", *options) == ["scaled:u"]
    assert lab.value("scaled", "u", "undeclared") == 15
    assert lab.run("undeclared", *options) == []


OBJECTS = "lab/lib/objects.py"


@pytest.mark.parametrize(
    ("old", "new", "stages", "output", "value"),
    [
        pytest.param("return x * self.k\n\n\nCFG", "return x * self.k + 1\n\n\nCFG",
                     ["constant:o"], "constant", 31, id="method-of-a-dataclass-constant"),
        pytest.param("return x * self.depth", "return x * self.depth + 1", ["nested:o"],
                     "nested", 21, id="method-of-a-nested-dataclass-field"),
        pytest.param("0.1 if self is Opt.SGD", "0.5 if self is Opt.SGD", ["rate:o"], "rate",
                     0.5, id="method-of-an-enum-field"),
        pytest.param("Scaler(k=2).apply", "Scaler(k=3).apply", ["bound:o"], "bound", 30,
                     id="object-of-a-bound-method-constant"),
        pytest.param("return fn(x) * 2", "return fn(x) * 3", ["decorated:o"], "decorated", 33,
                     id="decorator-applied-by-a-call"),
        pytest.param("        return 1\n", "        return 5\n", ["one:o", "spawned:o"],
                     "spawned", 5, id="classes-that-refer-to-each-other"),
    ],
)  # fmt: skip
def test_code_reached_through_objects_is_keyed(
    lab: Lab, old: str, new: str, stages: list, output: str, value
):
    """Each of these edits used to leave the stage's old result in place."""
    first = lab.run("objects")
    assert len(first) == 8 and "weights:aggregate" in first
    lab.edit(OBJECTS, old, new)
    assert lab.run("objects") == stages
    assert lab.value(output, "o", "objects") == value


def test_an_aggregate_is_keyed_on_the_methods_of_its_records_parameter_class(lab: Lab):
    lab.run("objects")
    lab.edit("lab/experiments/objects.py", "return 3", "return 4")
    assert lab.run("objects") == ["weights:aggregate"]
    assert lab.value("weights", "aggregate", "objects") == 4


@pytest.mark.parametrize(
    ("old", "new", "total"),
    [
        pytest.param("DIGITS = 1", "DIGITS = 2", 2.0, id="constant-save-reads"),
        pytest.param("return round(value, DIGITS)", "return round(value)", 2.0,
                     id="helper-save-calls"),
        pytest.param("[float(line)", "[float(line.strip())", 2.0, id="load"),
    ],
)  # fmt: skip
def test_editing_the_projects_own_cacher_recomputes_what_it_keeps(
    lab: Lab, old: str, new: str, total: float
):
    """What a cacher's ``save`` keeps (and its ``load`` gives back) is what later stages
    see: its code counts as the stage's own, and stages with assay's cachers stay."""
    assert lab.run("stored") == ["count:s", "thirds:s", "total:s"]
    assert lab.value("total", "s", "stored") == pytest.approx(0.3 + 0.7 + 1.0)
    lab.edit("lab/lib/storage.py", old, new)
    assert lab.run("stored") == ["thirds:s", "total:s"]
    assert lab.value("total", "s", "stored") == pytest.approx(total)
    assert lab.run("stored") == []


@pytest.mark.parametrize(
    ("old", "new", "stage"),
    [
        pytest.param('re.compile(r"a+")', 're.compile(r"b+")', "words", id="compiled-pattern"),
        pytest.param("SimpleNamespace(k=2)", "SimpleNamespace(k=3)", "spaced", id="namespace"),
        pytest.param('MappingProxyType({"k": 2})', 'MappingProxyType({"k": 3})', "mapped",
                     id="read-only-mapping"),
        pytest.param("Tokenizer(lower=True)", "Tokenizer(lower=False)", "tokens",
                     id="object-with-assay-hash"),
        pytest.param('Decimal("1.5")', 'Decimal("2.5")', "rated", id="decimal"),
        pytest.param("Fraction(1, 3)", "Fraction(2, 3)", "shared", id="fraction"),
    ],
)  # fmt: skip
def test_data_constants_of_less_usual_kinds_are_keyed_by_value(
    lab: Lab, old: str, new: str, stage: str
):
    """They counted by their type only: editing the value recomputed nothing."""
    assert len(lab.run("plainish")) == 6
    lab.edit("lab/experiments/plainish.py", old, new)
    assert lab.run("plainish") == [f"{stage}:p"]


def test_params_name_is_a_read_record_name_is_a_label(lab: Lab):
    assert lab.run("named", "-p", "base") == executed(["count", "tag", "double"])
    lab.edit("lab/params/base.py", 'name="a"', 'name="alpha"')
    assert lab.run("named", "-p", "base") == ["tag:alpha"]
    assert lab.value("tag", "alpha", "named") == "alpha:3"
    assert lab.value("doubled", "alpha", "named") == 6
    assert lab.value("tag", "b", "named") == "b:4"


# -- functions held in parameters ---------------------------------------------------------

CALLABLES = {"lam": [2, 4, 6], "part": [1, 4, 9], "clo": [4, 5, 6]}
"""What ``apply`` makes of [1, 2, 3] for each set of ``params/callables.py``."""


def check_callables(lab: Lab, **changed: list) -> None:
    for name, expected in {**CALLABLES, **changed}.items():
        assert lab.value("applied", name, "lambdas") == expected, name
        assert lab.value("summed", name, "lambdas") == sum(expected), name


def test_functions_in_parameters_stay_cached_across_processes(lab: Lab):
    first = lab.run("lambdas", "-p", "callables")
    assert first == sorted(["numbers:lam", *executed(["apply", "add_up"], CALLABLES)])
    assert lab.run("lambdas", "-p", "callables") == []
    lab.edit("lab/params/callables.py", "import functools\n", "import functools  # std\n\n\n")
    lab.edit(
        "lab/params/callables.py",
        "def get_params():",
        "def other():\n    pass\n\n\ndef get_params():",
    )
    assert lab.run("lambdas", "-p", "callables") == []
    check_callables(lab)


def test_editing_what_a_function_in_a_parameter_calls_recomputes_the_stages_that_call_it(
    lab: Lab,
):
    def values() -> dict:
        return {name: lab.value("applied", name, "lambdas") for name in ("h", "p")}

    first = lab.run("lambdas", "-p", "helped")
    assert first == sorted(["numbers:h", *executed(["apply", "add_up"], "hp")])
    assert lab.run("lambdas", "-p", "helped") == []
    assert values() == {"h": [2, 5, 10], "p": [2, 8, 18]}

    lab.edit("lab/params/helped.py", "return x * x", "return x * x * x")  # both call it
    assert lab.run("lambdas", "-p", "helped") == executed(["apply", "add_up"], "hp")
    assert values() == {"h": [2, 9, 28], "p": [2, 16, 54]}

    lab.edit("lab/params/helped.py", "OFFSET = 1", "OFFSET = 2")  # only h reads it
    assert lab.run("lambdas", "-p", "helped") == executed(["apply", "add_up"], "h")
    assert values() == {"h": [3, 10, 29], "p": [2, 16, 54]}
    assert lab.run("lambdas", "-p", "helped", "--parallel", "2") == []


def test_each_lambda_a_stage_calls_is_keyed_on_its_own_code(lab: Lab):
    """All lambdas of a module have the qualified name ``<lambda>``: the first one's edits
    went unseen when the stage called a second one. And a function held in a constant
    (a table of partials) is keyed on the helpers it calls."""
    source = "lab/experiments/twolambdas.py"
    assert lab.run("twolambdas") == ["both:t"]
    lab.edit(source, "lambda x: x + 1", "lambda x: x + 100")
    assert lab.run("twolambdas") == ["both:t"]
    lab.edit(source, "lambda x: x * 2", "lambda x: x * 3")
    assert lab.run("twolambdas") == ["both:t"]
    assert lab.value("both", "t", "twolambdas") == [103, 9, 8]
    lab.edit(source, "DOUBLE = lambda x: x * 3  # noqa", "DOUBLE = lambda x: x * 3  # x3; noqa")
    assert lab.run("twolambdas") == ([] if COLUMNS else ["both:t"])
    # A helper that a function in a constant table calls:
    lab.edit(source, "return x + k", "return x + 2 * k")
    assert lab.run("twolambdas") == ["both:t"]
    assert lab.value("both", "t", "twolambdas") == [103, 9, 13]


@NEEDS_COLUMNS
def test_editing_next_to_a_lambda_recomputes_nothing(lab: Lab):
    """The lambda is the same function; only the text around it on its line changed."""
    lab.run("lambdas", "-p", "callables")
    lab.edit("lab/params/callables.py", "fn=lambda x: x * 2)", "fn=lambda x: x * 2, size=3)")
    assert lab.run("lambdas", "-p", "callables") == []
    check_callables(lab)


@pytest.mark.parametrize(
    ("old", "new", "name", "applied"),
    [
        pytest.param("lambda x: x * 2", "lambda x: x * 5", "lam", [5, 10, 15], id="lambda-body"),
        pytest.param("exponent=2", "exponent=3", "part", [1, 8, 27], id="partial-argument"),
        pytest.param(
            "return x**exponent",
            "return x**exponent + 1",
            "part",
            [2, 5, 10],
            id="partial-function-body",
        ),
        pytest.param("make_adder(3)", "make_adder(4)", "clo", [5, 6, 7], id="closure-value"),
        pytest.param("return x + step", "return x - step", "clo", [-2, -1, 0], id="closure-body"),
    ],
)
def test_function_in_parameters_edited_recomputes_the_stages_reading_it(
    lab: Lab, old: str, new: str, name: str, applied: list
):
    lab.run("lambdas", "-p", "callables")
    lab.edit("lab/params/callables.py", old, new)
    assert lab.run("lambdas", "-p", "callables") == executed(["apply", "add_up"], [name])
    check_callables(lab, **{name: applied})
    lab.edit("lab/params/callables.py", new, old)
    assert lab.run("lambdas", "-p", "callables") == []
    check_callables(lab)


# -- aggregates ---------------------------------------------------------------------------


def finals(**offsets: int) -> dict:
    sets = {k: {**v, **({"offset": offsets[k]} if k in offsets else {})} for k, v in SETS.items()}
    return {name: chain_values(**params)["final"] for name, params in sets.items()}


def test_aggregate_recomputes_when_any_input_changes(lab: Lab):
    assert lab.run("pooled", "-p", "base") == sorted([*executed(CHAIN), "collect:aggregate"])
    assert lab.value("finals", "aggregate", "pooled") == finals()

    lab.edit("lab/params/base.py", "offset=5", "offset=6")
    assert lab.run("pooled", "-p", "base") == ["collect:aggregate", "report:b"]
    assert lab.value("finals", "aggregate", "pooled") == finals(b=6)

    lab.edit(*SCALE, "[x * params.factor + 1 for x in values]")
    stages = ["transform", "combine", "report"]
    assert lab.run("pooled", "-p", "base") == sorted([*executed(stages), "collect:aggregate"])
    lab.check_chain(
        "pooled",
        sets={"a": SETS["a"], "b": {**SETS["b"], "offset": 6}},
        scale=lambda x, k: x * k + 1,
    )

    lab.edit(*SCALE[:1], "[x * params.factor + 1 for x in values]", SCALE[1])
    lab.edit("lab/params/base.py", "offset=6", "offset=5")
    assert lab.run("pooled", "-p", "base") == []
    assert lab.value("finals", "aggregate", "pooled") == finals()


def test_aggregate_is_keyed_on_the_whole_parameter_sets_it_combines(lab: Lab):
    """Documented rule: an aggregate may read any field of any record it combines.

    Those reads are not tracked, so an aggregate is keyed on the hashes of the
    parameter sets it combines: a field no stage reads still recomputes the
    aggregate (and nothing else).
    """
    lab.run("pooled", "-p", "base")
    assert lab.run("pooled", "-p", "base", "--set", "unused=1") == ["collect:aggregate"]
    assert lab.value("finals", "aggregate", "pooled") == finals()


# -- assay why ----------------------------------------------------------------------------


def will_execute(why_output: str) -> list[str]:
    """``stage:set`` of every ``executes STAGE [SET]: ...`` line of ``assay why``, sorted."""
    lines = re.findall(r"^executes (\S+) \[([^\]]+)\]", why_output, re.M)
    return sorted(f"{stage}:{name}" for stage, name in lines)


def test_why_explains_what_will_execute_and_what_is_reused(lab: Lab):
    if run_cli("why", "--help", cwd=lab.root).code != 0:
        pytest.skip("assay why not implemented yet")
    baseline(lab)
    lab.edit(*SCALE, "[x * params.factor + 1 for x in values]")
    lab.edit("lab/params/base.py", "offset=5", "offset=6")
    lab.edit("site/tinypkg-1.0.dist-info/METADATA", "Version: 1.0", "Version: 1.1")
    result = run_cli("why", "chain", "-p", "base", cwd=lab.root)
    assert result.code == 0, str(result)
    assert lab.calls.take() == [], "assay why executes nothing"
    text = result.text
    for expected in (
        "executes transform [a]: its code changed: function lib.features.scale",
        "- return [x * params.factor for x in values]",
        "+ return [x * params.factor + 1 for x in values]",
        "executes pack [b]: package version changed",
        "1.0 -> tinypkg 1.1",
        "executes report [b]: a parameter it reads changed: offset 5 -> 6",
        "reused load [a]: artifact made by run 1",
        "8 of 14 stage runs execute",
    ):
        assert expected in text, f"{expected!r} missing from:\n{result.output}"
    explained = will_execute(result.output)
    assert explained == executed(["transform", "pack", "combine", "report"])
    assert lab.run("chain", "-p", "base") == explained, "assay why predicted the run"


def test_why_predicts_that_grid_points_share_a_recomputed_early_stage(lab: Lab):
    if run_cli("why", "--help", cwd=lab.root).code != 0:
        pytest.skip("assay why not implemented yet")
    lab.run("chain", "-p", "grid")
    lab.edit(*SCALE, "[x * params.factor + 1 for x in values]")
    result = run_cli("why", "chain", "-p", "grid", cwd=lab.root)
    assert result.code == 0, str(result)
    explained = will_execute(result.output)
    ran = lab.run("chain", "-p", "grid")
    grid = [f"g-offset={k}" for k in range(3)]
    assert ran == sorted(
        ["combine:g-offset=0", "transform:g-offset=0", *executed(["report"], grid)]
    )
    assert explained == ran, f"assay why said:\n{result.output}"


# -- which installed distribution a module belongs to, kept between runs ------------------


def uses_sklearn():
    from sklearn.preprocessing import StandardScaler

    return StandardScaler


@pytest.fixture
def scans(tmp_path: Path, monkeypatch) -> list[int]:
    """Counts real scans of every installed distribution; the map is kept under tmp_path."""
    import importlib.metadata

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    counted: list[int] = []
    real = importlib.metadata.packages_distributions

    def scan():
        counted.append(1)
        return real()

    monkeypatch.setattr(importlib.metadata, "packages_distributions", scan)
    return counted


def test_the_map_of_installed_modules_is_kept_for_the_next_run(tmp_path: Path, scans):
    from assay.codeprint import Fingerprinter

    first = Fingerprinter(tmp_path).fingerprint(uses_sklearn)
    again = Fingerprinter(tmp_path).fingerprint(uses_sklearn)  # the next run

    assert first == again and len(scans) == 1
    assert first[1]["package sklearn"]["version"].startswith("scikit-learn ")
    assert (tmp_path / "user-cache" / "assay" / "installed-modules.json").is_file()


def test_a_broken_or_unwritable_map_of_installed_modules_is_found_afresh(
    tmp_path: Path, scans, monkeypatch
):
    from assay.distributions import installed_modules

    expected = installed_modules()
    kept = tmp_path / "user-cache" / "assay" / "installed-modules.json"
    kept.write_text('{"key": ')
    assert installed_modules() == expected and len(scans) == 2
    assert installed_modules() == expected and len(scans) == 2  # written again, whole

    monkeypatch.setenv("XDG_CACHE_HOME", str(kept))  # a file: no folder can be made there
    assert installed_modules() == expected and len(scans) == 3


def test_modules_named_unlike_their_distribution_are_found_on_python_3_10(monkeypatch):
    """Python 3.10's map reads only top_level.txt, which scikit-learn's wheel (built with
    meson) leaves out: a stage importing sklearn was not keyed on its version there."""
    from assay.distributions import _packages_distributions

    monkeypatch.setattr(sys, "version_info", (3, 10, 13))
    assert _packages_distributions()["sklearn"] == ["scikit-learn"]


FINGERPRINT_OUTSIDE_CODE = """
import json, sys
sys.path[:0] = ["lab", "checkout", "site"]
from assay.codeprint import Fingerprinter
from stages import uses_outside_code
digest, parts = Fingerprinter("lab").fingerprint(uses_outside_code)
print(json.dumps([digest, sorted(parts), parts["package tinypkg"]["version"],
                  "importlib.metadata" in sys.modules]))
"""


def test_code_outside_the_project_is_placed_without_importlib_metadata(tmp_path: Path):
    """A helper from a folder on ``sys.path`` that no distribution claims (a sibling
    checkout) is followed by source, an installed package counts by the version in its
    METADATA, and once the map of installed modules is kept, finding that out imports no
    :mod:`importlib.metadata` (tens of ms of every run's start)."""
    shutil.copytree(PROJECTS / "invalidation" / "site", tmp_path / "site")
    (tmp_path / "lab").mkdir()
    (tmp_path / "checkout").mkdir()
    helper = tmp_path / "checkout" / "labtools.py"
    helper.write_text("def smooth(x):\n    return x + 1\n")
    (tmp_path / "lab" / "stages.py").write_text(
        "from labtools import smooth\nfrom tinypkg import triple\n\n\n"
        "def uses_outside_code(record):\n    return triple(smooth(record.params.n))\n"
    )

    def fingerprint() -> list:
        done = subprocess.run(
            [sys.executable, "-c", FINGERPRINT_OUTSIDE_CODE],
            cwd=tmp_path,
            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "user-cache")},
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)

    digest, parts, version, imported = fingerprint()  # the map is made and kept
    assert "labtools.smooth" in parts and "package tinypkg" in parts and version == "tinypkg 1.0"
    assert fingerprint() == [digest, parts, version, False]

    helper.write_text("def smooth(x):\n    return x + 2\n")
    assert fingerprint()[0] != digest
    edit(tmp_path / "site" / "tinypkg-1.0.dist-info" / "METADATA", "Version: 1.0", "Version: 1.1")
    assert fingerprint()[2] == "tinypkg 1.1"


def test_assay_itself_is_never_part_of_a_key_even_installed_in_editable_mode(tmp_path: Path):
    """assay is an editable install in its own development environment (and in CI), as a
    researcher's library may be; its code is still not the stage's: no part of it enters
    a key, or every assay commit would recompute every project's stages."""
    from assay import distributions
    from assay.codeprint import Fingerprinter

    (tmp_path / "uses_assay.py").write_text(
        "import assay\nfrom assay.humanize import format_duration\n\n\n"
        "def report(record):\n    return format_duration(3.0), assay.load\n"
    )
    with on_sys_path(tmp_path, "uses_assay"):
        from uses_assay import report

        _, parts = Fingerprinter(tmp_path).fingerprint(report)
    folder = distributions.by_name(distributions.metadata_folders()).get("assay")
    if folder is None or distributions.editable_location(folder) is None:
        pytest.skip("assay is not an editable install here: nothing to tell apart")
    assert sorted(parts) == ["uses_assay.report"]


def test_the_environment_and_the_interpreters_state_do_not_enter_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A stage that reads ``os.environ``, ``sys.argv``, ``sys.path`` or ``sys.modules``
    keeps its key when they change (another shell, another way of starting the run, a
    module imported by a thread meanwhile); its own code still counts."""
    from assay.codeprint import Fingerprinter

    stages = tmp_path / "session_stages.py"
    stages.write_text(
        "import os, sys\n\n\n"
        "def look(record):\n"
        "    return (os.environ.get('SCALE'), sys.argv[:1], sys.path[0], 'json' in sys.modules)\n"
    )
    with on_sys_path(tmp_path, "session_stages"):
        from session_stages import look

        digest, parts = Fingerprinter(tmp_path).fingerprint(look)
        monkeypatch.setenv("OLDPWD", "/somewhere/else")
        monkeypatch.setattr(sys, "argv", ["elsewhere"])
        monkeypatch.setitem(sys.modules, "session_stages_neighbour", sys)
        assert Fingerprinter(tmp_path).fingerprint(look) == (digest, parts)
    assert sorted(parts) == ["session_stages.look"]


FINGERPRINT_IN_A_NEW_PROCESS = """
import sys
sys.path.insert(0, ".")
from assay.codeprint import Fingerprinter
from stages import uses_relpath, made_by_exec
for func in (uses_relpath, made_by_exec):
    digest, parts = Fingerprinter(".").fingerprint(func)
    print(digest, sorted(parts))
"""


def test_fingerprints_without_source_are_the_same_in_every_process(tmp_path: Path):
    """Frozen standard-library modules (``os.path``) and ``exec``'d code have no source to
    read; their fingerprint must still not change from one process to the next."""
    (tmp_path / "stages.py").write_text(
        "import os\n\n\n"
        "def uses_relpath(record):\n"
        '    return os.path.relpath("/tmp/a/b", "/tmp")\n\n\n'
        'namespace = {}\nexec("def made_by_exec(xs):\\n    return [x * 2 for x in xs]", namespace)\n'
        'made_by_exec = namespace["made_by_exec"]\n'
    )

    def fingerprints() -> str:
        return subprocess.run(
            [sys.executable, "-c", FINGERPRINT_IN_A_NEW_PROCESS],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    first = fingerprints()
    assert first == fingerprints()
    assert "posixpath" not in first  # the standard library is not the project's code
    assert "made_by_exec" in first


# -- code that objects hold ---------------------------------------------------------------

FINGERPRINT_OF_STAGE = """
import json, sys
sys.path.insert(0, ".")
from assay.codeprint import Fingerprinter
from stages import stage
digest, parts = Fingerprinter(".").fingerprint(stage)
print(json.dumps([digest, sorted(parts)]))
"""


def fingerprint_in_a_new_process(root: Path) -> tuple[str, list[str]]:
    """The digest and part names of ``stages.stage`` in the project at ``root``, as a new
    ``assay run`` would see them."""
    run = subprocess.run(
        [sys.executable, "-c", FINGERPRINT_OF_STAGE],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert run.returncode == 0, run.stderr
    digest, parts = json.loads(run.stdout)
    return digest, parts


def fingerprint_before_and_after(root: Path, lib: str, stage: str, old: str, new: str):
    (root / "lib").mkdir()
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "h.py").write_text(lib)
    (root / "stages.py").write_text(stage)
    before = fingerprint_in_a_new_process(root)
    edit(root / "lib" / "h.py", old, new)
    return before, fingerprint_in_a_new_process(root)


SCALER = "class Scaler:\n    def __init__(self, k):\n        self.k = k\n\n    def apply(self, x):\n        return x * self.k + 1\n"

HELD_BY_OBJECTS = [
    pytest.param(SCALER + "\n\nscaler = Scaler(3)\n",
                 "from lib.h import scaler\n\n\ndef stage(x):\n    return scaler.apply(x)\n",
                 "self.k + 1", "self.k + 2", id="method-of-a-module-level-instance"),
    pytest.param(SCALER + "\n\nscaler = Scaler(3)\n",
                 "import lib.h\n\n\ndef stage(x):\n    return lib.h.scaler.apply(x)\n",
                 "self.k + 1", "self.k + 2", id="instance-through-a-module-chain"),
    pytest.param("class Scorer:\n    def __call__(self, x):\n        return x * 3\n\n\nscore = Scorer()\n",
                 "from lib.h import score\n\n\ndef stage(x):\n    return score(x)\n",
                 "x * 3", "x * 4", id="callable-instance"),
    pytest.param("def helper(x):\n    return x * 3\n\n\nclass Base:\n    def __call__(self, x):\n"
                 "        return self.forward(x)\n\n\nclass Net(Base):\n    def forward(self, x):\n"
                 "        return helper(x)\n\n\nnet = Net()\n",
                 "from lib.h import net\n\n\ndef stage(x):\n    return net(x)\n",
                 "x * 3", "x * 4", id="helper-of-an-instance-method"),
    pytest.param(SCALER + "\n\ndef make():\n    s = Scaler(2)\n\n    def fn(x):\n        return s.apply(x)\n\n"
                 "    return fn\n\n\nscale = make()\n",
                 "from lib.h import scale\n\n\ndef stage(x):\n    return scale(x)\n",
                 "self.k + 1", "self.k + 2", id="instance-in-a-closure"),
    pytest.param("class timed:\n    def __init__(self, fn):\n        self.fn = fn\n\n"
                 "    def __call__(self, *a):\n        return self.fn(*a)\n\n\n"
                 "@timed\ndef f(x):\n    return x + 1\n",
                 "from lib.h import f\n\n\ndef stage(x):\n    return f(x)\n",
                 "x + 1", "x + 2", id="function-a-class-decorator-keeps"),
    pytest.param("import functools\n\n\nclass scaled:\n    def __init__(self, fn):\n        self.fn = fn\n"
                 "        functools.update_wrapper(self, fn)\n\n    def __call__(self, *a):\n"
                 "        return 10 * self.fn(*a)\n\n\ndef base(x):\n    return x + 1\n\n\nf = scaled(base)\n",
                 "from lib.h import f\n\n\ndef stage(x):\n    return f(x)\n",
                 "10 * self.fn", "100 * self.fn", id="class-decorator-applied-by-a-call"),
    pytest.param("from types import SimpleNamespace\n\n\ndef g(x):\n    return x + 1\n\n\n"
                 "def f(x):\n    return g(x) * 2\n\n\nTOOLS = SimpleNamespace(f=f)\n",
                 "from lib.h import TOOLS\n\n\ndef stage(x):\n    return TOOLS.f(x)\n",
                 "x + 1", "x + 2", id="helper-of-a-function-in-a-namespace"),
    pytest.param("import functools\n\n\ndef g(x):\n    return x + 1\n\n\nclass Pipeline:\n"
                 "    def __init__(self, steps):\n        self.steps = steps\n\n\n"
                 "PIPE = Pipeline([functools.partial(g)])\n",
                 "from lib.h import PIPE\n\n\ndef stage(x):\n    return PIPE.steps[0](x)\n",
                 "x + 1", "x + 2", id="function-in-a-list-an-instance-holds"),
    pytest.param("from functools import singledispatch\n\n\n@singledispatch\ndef conv(x):\n"
                 "    return str(x)\n\n\n@conv.register(int)\ndef _(x):\n    return x * 2\n",
                 "from lib.h import conv\n\n\ndef stage(x):\n    return conv(x)\n",
                 "x * 2", "x * 3", id="singledispatch-registration"),
    pytest.param("STEPS = {'add': 1, 'mul': 3}\n",
                 "from lib.h import STEPS\n\n\ndef stage(x):\n    for op, k in STEPS.items():\n"
                 "        x = x + k if op == 'add' else x * k\n    return x\n",
                 "{'add': 1, 'mul': 3}", "{'mul': 3, 'add': 1}", id="order-of-a-dict-constant"),
    pytest.param("def make(weights):\n    def fn(x):\n        return sum(w * x for w in weights)\n\n"
                 "    return fn\n\n\nscore = make([1, 2, 3])\n",
                 "from lib.h import score\n\n\ndef stage(x):\n    return score(x)\n",
                 "[1, 2, 3]", "[1, 2, 4]", id="list-a-closure-reads"),
    pytest.param("def make(config):\n    def fn(x):\n        return x * config.get('scale', 1) + config['shift']\n\n"
                 "    return fn\n\n\nscore = make({'scale': 2, 'shift': 1})\n",
                 "from lib.h import score\n\n\ndef stage(x):\n    return score(x)\n",
                 "'scale': 2", "'scale': 3", id="dict-a-closure-reads"),
]  # fmt: skip


@pytest.mark.parametrize(("lib", "stage", "old", "new"), HELD_BY_OBJECTS)
def test_editing_code_an_object_holds_changes_the_fingerprint(
    tmp_path: Path, lib: str, stage: str, old: str, new: str
):
    """Each of these edits left the stage's old result in place: the object counted by its
    type's name only (or a dict by its items, whatever their order)."""
    before, after = fingerprint_before_and_after(tmp_path, lib, stage, old, new)
    assert before[0] != after[0]


NOT_CODE_EDITS = [
    pytest.param("import functools\n\n\ndef h(x, k):\n    return x * k\n\n\nh3 = functools.partial(h, k=3)\n",
                 "from lib.h import h3\n\n\ndef stage(x):\n    return h3(x)\n",
                 "def h(x, k):\n", 'def h(x, k):\n    """Scale."""\n', id="docstring-of-a-partials-function"),
    pytest.param("import functools\n\n\ndef h(x, k):\n    return x * k\n\n\nh3 = functools.partial(h, k=3)\n",
                 "from lib.h import h3\n\n\ndef stage(x):\n    return h3(x)\n",
                 "return x * k\n", "return x * k  # scale\n", id="comment-in-a-partials-function"),
    pytest.param("def g(x):\n    return x + 100\n\n\nOPS = {'dbl': lambda x: x*2, 'named': g}\n",
                 "from lib.h import OPS\n\n\ndef stage(x):\n    return OPS['dbl'](x) + OPS['named'](x)\n",
                 "lambda x: x*2", "lambda x: x * 2", id="layout-of-a-lambda-in-a-dict",
                 marks=NEEDS_COLUMNS),
    pytest.param("def g(x):\n    return x + 100\n\n\nOPS = {'dbl': lambda x: x*2, 'named': g}\n",
                 "from lib.h import OPS\n\n\ndef stage(x):\n    return OPS['dbl'](x) + OPS['named'](x)\n",
                 "return x + 100", "return (x +\n            100)  # shift", id="layout-of-a-function-in-a-dict"),
    pytest.param(SCALER + "\n\nscaler = Scaler(3)\n",
                 "from lib.h import scaler\n\n\ndef stage(x):\n    return scaler.apply(x)\n",
                 "class Scaler:\n", 'class Scaler:\n    """Scales."""\n', id="docstring-of-an-instances-class"),
]  # fmt: skip


@pytest.mark.parametrize(("lib", "stage", "old", "new"), NOT_CODE_EDITS)
def test_comments_and_layout_of_code_held_in_values_change_no_fingerprint(
    tmp_path: Path, lib: str, stage: str, old: str, new: str
):
    """Functions held in constants were compared by their text: a comment, a docstring or
    a re-wrapped line recomputed the stages using them."""
    before, after = fingerprint_before_and_after(tmp_path, lib, stage, old, new)
    assert before == after


def make_memoised(factor: int):
    """A function closing over containers it fills as it runs, in every way code does."""
    memo: dict = {}
    seen: list = []
    counts: dict = {}
    nested: dict = {"calls": []}

    def fn(x):
        seen.append(x)
        counts[x] = counts.get(x, 0) + 1
        nested["calls"].append(x)
        if x not in memo:
            memo[x] = x * factor
        return memo[x]

    return fn


def make_filled_by_a_nested_helper():
    table: dict = {}

    def fn(x):
        def note():
            table.setdefault(x, []).append(x)

        note()
        return len(table)

    return fn


@pytest.mark.parametrize("make", [lambda: make_memoised(2), make_filled_by_a_nested_helper])
def test_a_container_a_function_fills_as_it_runs_is_not_keyed(tmp_path: Path, make):
    """State a function keeps (a memo, a list of what it saw) would give it another key
    after every call: in a notebook, the next run would recompute for nothing."""
    from assay.codeprint import Fingerprinter

    fn = make()
    before = Fingerprinter(tmp_path).fingerprint(fn)[0]
    fn(1), fn(2)
    assert Fingerprinter(tmp_path).fingerprint(fn)[0] == before


def test_the_setting_beside_a_memo_stays_keyed(tmp_path: Path):
    from assay.codeprint import Fingerprinter

    def digest(fn) -> str:
        return Fingerprinter(tmp_path).fingerprint(fn)[0]

    assert digest(make_memoised(2)) != digest(make_memoised(3))


def test_numpys_global_random_state_is_no_part_of_a_key(tmp_path: Path):
    """A stage calling ``np.random.rand()`` was keyed on the state of numpy's global
    generator, seeded anew in every process: it never came from the cache."""
    (tmp_path / "stages.py").write_text(
        "import numpy as np\n\n\ndef stage(x):\n    return np.random.rand() * x\n"
    )
    first, parts = fingerprint_in_a_new_process(tmp_path)
    assert fingerprint_in_a_new_process(tmp_path)[0] == first
    assert not any("__self__" in part for part in parts), parts


def test_objects_of_installed_and_standard_library_classes_count_by_type_only(tmp_path: Path):
    """A logger or a thread pool at module level adds no part for its class: keys of stages
    that log stay what they were."""
    (tmp_path / "stages.py").write_text(
        "import logging\nfrom concurrent.futures import ThreadPoolExecutor\n\n"
        'LOG = logging.getLogger("x")\nPOOL = ThreadPoolExecutor(1)\n\n\n'
        "def stage(x):\n    LOG.info(x)\n    return POOL.submit(abs, x).result()\n"
    )
    _, parts = fingerprint_in_a_new_process(tmp_path)
    assert parts == ["stages.LOG", "stages.POOL", "stages.stage"]


HELD_EXPERIMENT = """
from dataclasses import dataclass, field

from lib.held import Scaler
from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    base: float = 0.5
    scaler: object = field(default_factory=lambda: Scaler(3))


@dataclass
class Computed(assay.ExperimentParameters):
    base: float = 0.5

    def __post_init__(self):
        self.lr = self.base * 2


@assay.stage(outputs=["scaled"], cachers=[JsonCacher])
def scaled(record):
    note(record, "scaled")
    return record.params.scaler.apply(2)


@assay.stage(outputs=["rate"], cachers=[JsonCacher])
def rate(record):
    note(record, "rate")
    return record.params.lr


def get_params():
    return [Params(name="h"), Computed(name="c")]


def run(param_sets, manager):
    scaled(assay.Record(manager, param_sets[0]))
    rate(assay.Record(manager, param_sets[1]))
"""


@pytest.mark.parametrize(
    ("path", "old", "new", "stage", "value"),
    [
        pytest.param("lab/lib/held.py", "x * self.k", "x * self.k + 1", "scaled:h", 7,
                     id="class-of-an-object-in-a-field"),
        pytest.param("lab/experiments/held.py", "self.base * 2", "self.base * 3", "rate:c", 1.5,
                     id="post-init-setting-what-the-stage-reads"),
    ],
)  # fmt: skip
def test_code_that_makes_what_a_stage_reads_from_its_parameters_is_keyed(
    lab: Lab, path: str, old: str, new: str, stage: str, value
):
    """Editing either left the stage's old result in place."""
    (lab.root / "lib" / "held.py").write_text(
        "class Scaler:\n    def __init__(self, k):\n        self.k = k\n\n"
        "    def apply(self, x):\n        return x * self.k\n"
    )
    (lab.root / "experiments" / "held.py").write_text(HELD_EXPERIMENT)
    assert lab.run("held") == ["rate:c", "scaled:h"]
    lab.edit(path, old, new)
    assert lab.run("held") == [stage]
    output, param_set = stage.split(":")
    assert lab.value(output, param_set, "held") == value


FACTORY_EXPERIMENT = """
from dataclasses import dataclass

from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 2


def make_stage(config, memo):
    @assay.stage(outputs=["scored"], cachers=[JsonCacher])
    def scored(record):
        note(record, "scored")
        if record.params.x not in memo:
            memo[record.params.x] = record.params.x * config["scale"] + config.get("shift", 0)
        return memo[record.params.x]

    return scored


scored = make_stage({"scale": 10, "shift": 1}, {})


def get_params():
    return [Params(name="p")]


def run(param_sets, manager):
    scored(assay.Record(manager, param_sets[0]))
"""


def test_a_dict_a_stage_factory_closes_over_is_keyed_and_a_memo_beside_it_is_not(lab: Lab):
    """Editing the dict a factory-made stage reads loaded the result made with the old
    one: every list, dict or set a function closed over was taken for its state."""
    (lab.root / "experiments" / "factory.py").write_text(FACTORY_EXPERIMENT)
    assert lab.run("factory") == ["scored:p"]
    assert lab.run("factory") == []
    lab.edit("lab/experiments/factory.py", '"scale": 10', '"scale": 100')
    assert lab.run("factory") == ["scored:p"]
    assert lab.value("scored", "p", "factory") == 201

    # The memo the stage fills is its state, not part of its key: a second run in the
    # same process (a notebook), after the first one filled it, reuses that result.
    with on_sys_path(lab.root, "tracking", "experiments", "experiments.factory"):
        assay.run_experiment("factory", project_root=lab.root, report=False, overwrite=True)
        assay.run_experiment("factory", project_root=lab.root, report=False)
    assert sorted(lab.calls.take()) == ["scored:p"]


DIRECT_EXPERIMENT = """
from dataclasses import dataclass, field

from lib.direct import triple
from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    steps: dict = field(default_factory=lambda: {"add": 1, "mul": 3})


@assay.stage(outputs=["stepped"], cachers=[JsonCacher])
def stepped(record):
    note(record, "stepped")
    value = 1
    for op, k in record.params.steps.items():
        value = value + k if op == "add" else value * k
    return value


@assay.stage(outputs=["applied"], cachers=[JsonCacher])
def applied(record, fn):
    note(record, "applied")
    return fn(2)


def get_params():
    return [Params(name="d")]


def run(param_sets, manager):
    stepped(assay.Record(manager, param_sets[0]))
    applied(assay.Record(manager, param_sets[0]), fn=triple)
"""


@pytest.mark.parametrize(
    ("path", "old", "new", "stage", "value"),
    [
        pytest.param("lab/experiments/direct.py", '{"add": 1, "mul": 3}',
                     '{"mul": 3, "add": 1}', "stepped:d", 4, id="dict-field-reordered"),
        pytest.param("lab/lib/direct.py", "x * 3", "x * 4", "applied:d", 8,
                     id="helper-of-a-function-passed-directly"),
    ],
)  # fmt: skip
def test_what_a_stage_is_given_is_keyed_with_its_order_and_its_code(
    lab: Lab, path: str, old: str, new: str, stage: str, value
):
    """Reordering a dict field left the stage's old result in place (its key took the
    set's order-free hash), as did editing a helper of a function passed as an argument
    (only that function's own code was keyed)."""
    (lab.root / "lib" / "direct.py").write_text(
        "def _times(x):\n    return x * 3\n\n\ndef triple(x):\n    return _times(x)\n"
    )
    (lab.root / "experiments" / "direct.py").write_text(DIRECT_EXPERIMENT)
    assert lab.run("direct") == ["applied:d", "stepped:d"]
    assert lab.run("direct") == []
    lab.edit(path, old, new)
    assert lab.run("direct") == [stage]
    output, param_set = stage.split(":")
    assert lab.value(output, param_set, "direct") == value


def test_dunder_methods_that_compute_attributes_count_as_code_the_stage_reads():
    """``__post_init__``, ``__getattr__`` and ``__getattribute__`` make what a stage reads:
    their code is keyed when the stage reads what they make, as a property's is."""
    from dataclasses import dataclass

    from assay.tracking import code_attributes, tracking_copy

    @dataclass
    class Computed(assay.ExperimentParameters):
        base: float = 0.5

        def __post_init__(self):
            self.lr = self.base * 2

        def __getattr__(self, name):
            if name == "half":
                return self.base / 2
            raise AttributeError(name)

    @dataclass
    class Hooked(assay.ExperimentParameters):
        base: float = 0.5

        def __getattribute__(self, name):
            value = super().__getattribute__(name)
            return value * 10 if name == "base" else value

    assert {"__post_init__", "__getattr__"} <= set(code_attributes(Computed))
    assert "__repr__" not in code_attributes(Computed)  # made by @dataclass: not computing

    params, reads = tracking_copy(Computed(name="c"))
    # A tracking copy's class adds assay's hooks, which are no code of the researcher's.
    assert code_attributes(type(params)) == code_attributes(Computed)
    assert params.base == 0.5 and reads == {"base"}
    reads.clear()
    assert params.lr == 1.0
    assert "__post_init__" in reads and "base" in reads
    reads.clear()
    assert params.half == 0.25
    assert reads == {"__getattr__", "base"}

    params, reads = tracking_copy(Hooked(name="h"))
    assert params.base == 5.0  # the class's own hook runs under tracking too
    assert reads == {"base", "__getattribute__"}


STALE_STAGES = """
import assay
from assay.caching import JsonCacher
from stale_lib import bump


@assay.stage(outputs=["bumped"], cachers=[JsonCacher])
def bumped(record):
    return bump(1)
"""


def test_code_edited_after_it_was_imported_is_refused_until_it_is_reloaded(tmp_path: Path):
    """In a notebook, a module edited after its import still ran the old code, whose
    result was cached under the key of the code in the file: a later run (a clean
    ``assay run`` too) reused it."""
    import importlib

    from assay.errors import ProjectError

    (tmp_path / "stale_lib.py").write_text("def bump(x):\n    return x + 1\n")
    (tmp_path / "stale_stages.py").write_text(STALE_STAGES)
    with on_sys_path(tmp_path, "stale_lib", "stale_stages"):
        import stale_stages

        def run() -> assay.Record:
            manager = assay.ArtifactManager("stale", project_root=tmp_path)
            return stale_stages.bumped(assay.Record(manager, assay.ExperimentParameters(name="s")))

        assert run().state["bumped"] == 2
        edit(tmp_path / "stale_lib.py", "x + 1", "x + 2")

        objects = tmp_path / "data" / "cache" / "objects"
        cached = sorted(objects.rglob("*"))
        with pytest.raises(ProjectError, match=r"stale_lib.py changed since .* stale_lib\.bump"):
            run()
        assert sorted(objects.rglob("*")) == cached  # nothing cached under the new key

        # What %autoreload does: the function in use gets the new code.
        stale_stages.bump.__code__ = importlib.reload(sys.modules["stale_lib"]).bump.__code__
        again = run()
        assert again.state["bumped"] == 3 and again._nodes[-1].status == "executed"


def test_a_stage_edited_and_autoreloaded_runs_its_new_code(tmp_path: Path):
    """Classic %autoreload (IPython's update_function) gives the stage a notebook holds
    the new function's attributes, but cannot change its closure: the stage ran its old
    function, and was refused as stale for ever."""
    import importlib

    (tmp_path / "stale_lib.py").write_text("def bump(x):\n    return x + 1\n")
    (tmp_path / "stale_stages.py").write_text(STALE_STAGES)
    with on_sys_path(tmp_path, "stale_lib", "stale_stages"):
        import stale_stages

        held = stale_stages.bumped  # as `from stale_stages import bumped` in a notebook

        def run() -> assay.Record:
            manager = assay.ArtifactManager("stale", project_root=tmp_path)
            return held(assay.Record(manager, assay.ExperimentParameters(name="s")))

        assert run().state["bumped"] == 2
        edit(tmp_path / "stale_stages.py", "return bump(1)", "return bump(1) * 10")
        new = importlib.reload(stale_stages).bumped
        for name in ("__code__", "__defaults__", "__doc__", "__closure__", "__dict__"):
            try:  # what IPython's autoreload does to the function a notebook holds
                setattr(held, name, getattr(new, name))
            except (AttributeError, TypeError):  # __closure__ cannot be set
                pass
        again = run()
        assert again.state["bumped"] == 20 and again._nodes[-1].status == "executed"


WHY_EXPERIMENT = """
from dataclasses import dataclass

from lib.direct import triple
from tracking import note

import assay
from assay.caching import JsonCacher

TABLE = {"t": triple}


@dataclass
class Params(assay.ExperimentParameters):
    fn: object = triple


@assay.stage(outputs=["held"], cachers=[JsonCacher])
def held(record):
    note(record, "held")
    return record.params.fn(2)


@assay.stage(outputs=["tabled"], cachers=[JsonCacher])
def tabled(record):
    note(record, "tabled")
    return TABLE["t"](2)


def get_params():
    return [Params(name="w")]


def run(param_sets, manager):
    held(assay.Record(manager, param_sets[0]))
    tabled(assay.Record(manager, param_sets[0]))
"""


def test_why_names_code_held_in_values_and_renamed_outputs_without_memory_addresses(lab: Lab):
    """A function in a parameter field or a constant was explained by its repr, which
    holds a memory address (`<function f at 0x7f0f...> -> <function f at 0x7f7b...>`), or
    by the same text twice; a renamed output read as "never computed"."""
    (lab.root / "lib" / "direct.py").write_text(
        "def _times(x):\n    return x * 3\n\n\ndef triple(x):\n    return _times(x)\n"
    )
    (lab.root / "experiments" / "why_held.py").write_text(WHY_EXPERIMENT)
    assert lab.run("why_held") == ["held:w", "tabled:w"]
    lab.edit("lab/lib/direct.py", "return _times(x)", "return _times(x) + 1")
    lab.edit("lab/experiments/why_held.py", 'outputs=["tabled"]', 'outputs=["tabled2"]')

    text = run_cli("why", "why_held", cwd=lab.root).text

    assert "0x" not in text, text
    assert re.search(r"held \[w\]: a parameter it reads changed: fn <function triple> \(code "
                     r"\w{12}\) -> <function triple> \(code \w{12}\)", text), text  # fmt: skip
    assert "its code changed: function lib.direct.triple" in text, text
    assert (
        "constant experiments.why_held.TABLE changed where its text does not show it: code it holds"
        in text
    ), text
    assert "its outputs or their cachers changed" in text, text
    assert "never computed" not in text, text


LATER_EXPERIMENT = """
from dataclasses import dataclass

from lib.later import Model
from tracking import note

import assay
from assay.caching import JsonCacher


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 1


@assay.stage(outputs=["extra"], cachers=[JsonCacher])
def extra(record):
    note(record, "extra")
    return Model().extra(1)


@assay.stage(outputs=["rated"], cachers=[JsonCacher])
def rated(record):
    note(record, "rated")
    return Model().score(10)


def get_params():
    return [Params(name="m")]


def run(param_sets, manager):
    rated(extra(assay.Record(manager, param_sets[0])))
"""

LATER_MODULE = """
class Model:
    RATE = 1

    def score(self, x):
        return x * self.RATE


def _extra(self, x):
    return x + 100


def _other(self, x):
    return 0


Model.extra = _extra
Model.RATE = 2
"""


@pytest.mark.parametrize(
    ("old", "new", "stages", "value"),
    [
        # As for the body: part of the class, which both stages use.
        ("return x + 100", "return x + 200", ["extra:m", "rated:m"], ("extra", 201)),
        ("Model.RATE = 2", "Model.RATE = 3", ["extra:m", "rated:m"], ("rated", 30)),
        ("Model.extra = _extra", "Model.extra = _other", ["extra:m", "rated:m"], ("extra", 0)),
    ],
    ids=["method-set-after-the-class", "constant-set-after-the-class", "method-replaced"],
)
def test_what_is_set_on_a_class_after_its_body_is_keyed(
    lab: Lab, old: str, new: str, stages: list, value: tuple
):
    """A method or constant set on a class after its body (``Model.extra = f``,
    ``Model.RATE = 2``) was not in the key: editing it reused the stale result."""
    (lab.root / "lib" / "later.py").write_text(LATER_MODULE)
    (lab.root / "experiments" / "later.py").write_text(LATER_EXPERIMENT)
    assert lab.run("later") == ["extra:m", "rated:m"]
    assert lab.run("later") == []
    lab.edit("lab/lib/later.py", old, new)
    assert lab.run("later") == stages
    assert lab.value(value[0], "m", "later") == value[1]


PATH_EXPERIMENT = """
from dataclasses import dataclass
from pathlib import Path

from tracking import note

import assay
from assay.caching import JsonCacher

DATA = Path(__file__).parent / "words.txt"
FILES = {"words": [DATA]}  # in containers too


@dataclass
class Params(assay.ExperimentParameters):
    x: int = 1


@assay.stage(outputs=["words"], cachers=[JsonCacher])
def words(record):
    note(record, "words")
    return DATA.read_text().split() + [len(FILES["words"])]


def get_params():
    return [Params(name="w")]


def run(param_sets, manager):
    words(assay.Record(manager, param_sets[0]))
"""


def test_a_path_into_the_project_is_keyed_from_the_project_folder(lab: Lab):
    """``DATA = Path(__file__).parent / ...`` tied the key to where the project lay: a
    copy elsewhere (a colleague's clone sharing the cache) recomputed the stage."""
    (lab.root / "experiments" / "words.py").write_text(PATH_EXPERIMENT)
    (lab.root / "experiments" / "words.txt").write_text("a b")
    assert lab.run("words") == ["words:w"]
    moved = lab.base / "moved"
    shutil.copytree(lab.root, moved)

    result = run_cli("run", "words", "--no-report", "--explain", cwd=moved)

    assert result.code == 0, result
    assert "1 cached" in result.text and "executed" not in result.text, result.text
    lab.edit("moved/experiments/words.py", '/ "words.txt"', '/ "other.txt"')
    (moved / "experiments" / "other.txt").write_text("c")
    assert run_cli("run", "words", "--no-report", cwd=moved).code == 0
    assert (moved / "calls.txt").read_text().split() == ["words:w"]  # the edit recomputes


KINDS_OF_CLASSES = """
import abc
import dataclasses
import enum
import typing


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Flags(enum.IntFlag):
    X = 1
    Y = 2


class Point(typing.NamedTuple):
    x: int
    y: int = 2


class Base(abc.ABC):
    @abc.abstractmethod
    def f(self): ...


class Proto(typing.Protocol):
    def g(self) -> int: ...


class Slots:
    __slots__ = ("a",)


@dataclasses.dataclass(slots=True)
class Frozen:
    a: int = 1


def uses():
    return Color.RED, Flags.X, Point(1), Base, Proto, Slots(), Frozen()
"""


def test_what_python_makes_of_a_class_body_is_not_taken_for_later_settings(tmp_path: Path):
    """Enum members, abc's, NamedTuple's and __slots__' own attributes were keyed as set
    after the body: stages using such classes recomputed once after the upgrade, and
    `assay why` named constants nobody set (`Color.BLUE`, `Base._abc_impl`)."""
    from assay.codeprint import Fingerprinter

    (tmp_path / "kinds_of_classes.py").write_text(KINDS_OF_CLASSES)
    with on_sys_path(tmp_path):
        import kinds_of_classes

        _, parts = Fingerprinter(tmp_path).fingerprint(kinds_of_classes.uses)
    del sys.modules["kinds_of_classes"]
    classes = ("Color", "Flags", "Point", "Base", "Proto", "Slots", "Frozen")
    assert {f"kinds_of_classes.{c}" for c in classes} <= set(parts)
    used = {"kinds_of_classes.Color.RED", "kinds_of_classes.Flags.X"}  # read by the code
    assert not [name for name in parts if name.count(".") > 1 and name not in used], parts


CLASS_IN_A_CELL = """
import sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
cells = [
    "import assay, sys\\nfrom assay.caching import JsonCacher",
    "class Model:\\n    factor = 1\\n    def fit(self, xs):\\n        return sum(xs) * self.factor",
    "@assay.stage(outputs=['fitted'], cachers=[JsonCacher])\\n"
    "def fit(record):\\n    return Model().fit([1, 2, 3])",
    "manager = assay.ArtifactManager('cells', project_root=sys.argv[1])\\n"
    "print(fit(assay.Record(manager, assay.ExperimentParameters(name='p'))).state['fitted'])",
    "class Model:\\n    factor = 1\\n    def fit(self, xs):\\n        return max(xs) * self.factor",
    "print(fit(assay.Record(manager, assay.ExperimentParameters(name='p'))).state['fitted'])",
    "class Model:\\n    factor = 10\\n    def fit(self, xs):\\n        return max(xs) * self.factor",
    "print(fit(assay.Record(manager, assay.ExperimentParameters(name='p'))).state['fitted'])",
]
for cell in cells:
    result = shell.run_cell(cell, store_history=True)
    if result.error_in_exec is not None:
        print("ERROR", result.error_in_exec)
"""


def test_a_class_typed_into_a_notebook_cell_is_keyed_by_what_it_holds(tmp_path: Path):
    """Python finds no source for a class defined in a cell; it was keyed by its name
    alone, and its edited version got the old version's cached result (6 three times),
    in that kernel and in the next."""
    pytest.importorskip("IPython")
    done = subprocess.run(
        [sys.executable, "-c", CLASS_IN_A_CELL, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6", "3", "30"], done.stdout + done.stderr


AUTORELOADED_CLASSES = """
import os, sys, time
from pathlib import Path
from IPython.core.interactiveshell import InteractiveShell

root = Path(sys.argv[1])
(root / "ar_lib.py").write_text(
    "class Helper:\\n    factor = 1\\n\\n    def apply(self, x):\\n        return x * self.factor\\n"
)
(root / "ar_stages.py").write_text(
    "from dataclasses import dataclass\\n\\nimport assay\\nfrom assay.caching import JsonCacher\\n"
    "from ar_lib import Helper\\n\\n\\n@dataclass\\nclass Params(assay.ExperimentParameters):\\n"
    "    offset: int = 0\\n\\n    def extra(self):\\n        return self.offset + 1\\n\\n\\n"
    "@assay.stage(outputs=['out'], cachers=[JsonCacher])\\ndef compute(record):\\n"
    "    return Helper().apply(3) + record.params.extra()\\n"
)
sys.path.insert(0, str(root))
shell = InteractiveShell.instance()


def cell(code):
    result = shell.run_cell(code, store_history=True)
    if result.error_in_exec is not None:
        print("ERROR", result.error_in_exec)


def edit(name, old, new):
    path = root / name
    stat = path.stat()
    path.write_text(path.read_text().replace(old, new))
    later = max(stat.st_mtime, time.time()) + 2
    os.utime(path, (later, later))


cell("%load_ext autoreload\\n%autoreload 2")
cell(f"import assay\\nfrom ar_stages import compute, Params\\n"
     f"manager = assay.ArtifactManager('ar', project_root={str(root)!r})")
run = "r = compute(assay.Record(manager, Params(name='p')))\\nprint(r.state['out'], r._nodes[-1].status)"
cell(run)
edit("ar_lib.py", "return x * self.factor", "return x * self.factor * 10")
cell(run)
edit("ar_lib.py", "return x * self.factor * 10", "return x * self.factor")
cell(run)
edit("ar_stages.py", "self.offset + 1", "self.offset + 7")
cell(run)
edit("ar_stages.py", "self.offset + 7", "self.offset + 1")
cell(run)
cell("%autoreload 0")  # not reloaded: the class in memory is not what its file says
edit("ar_lib.py", "return x * self.factor", "return x * self.factor * 10")
cell(run)
"""


def test_classes_edited_and_autoreloaded_run_their_new_code_and_an_undo_is_cached(tmp_path):
    """%autoreload 2 updates a class in place (its object kept, new code in its methods):
    a helper class so updated was refused as code its file no longer says, and a
    parameter class's method recompiled alone was keyed by its bytecode, so undoing the
    edit ran the stage again instead of finding its cached result."""
    pytest.importorskip("IPython")
    done = subprocess.run(
        [sys.executable, "-c", AUTORELOADED_CLASSES, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = re.findall(r"^(?:ERROR .*|\d+ \w+)$", done.stdout, re.MULTILINE)
    expected = ["4 executed", "31 executed", "4 cached", "10 executed", "4 cached"]
    assert printed[:5] == expected, done.stdout + done.stderr
    assert re.match(r"ERROR .*ar_lib.py changed since .* ar_lib\.Helper", printed[5]), printed
