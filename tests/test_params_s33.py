"""Parameter sets as a researcher writes them: parameter files, --set, assay params."""

from __future__ import annotations

import os
import subprocess
import sys
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


def _project(root: Path, experiment: str, source: str, tail: str = _STAGE_AND_RUN) -> Path:
    """A project at ``root`` with one experiment, ``experiments/EXPERIMENT.py``: ``source``
    (its parameter classes and ``get_params``), then ``tail`` (a stage and ``run``)."""
    (root / "experiments").mkdir(parents=True)
    (root / "params").mkdir()
    text = textwrap.dedent(source) + tail
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


def test_a_set_value_the_class_refuses_is_a_parameter_error_before_the_run(tmp_path: Path):
    """``--set opt.lr=-1`` refused by the class's own ``__post_init__`` (an ``assert``, a
    ``KeyError``) stopped the run as if a stage had failed: the user's traceback, then
    "Stages that finished are cached. Fix the problem and run the same command again"."""
    project = _project(
        tmp_path,
        "params33_checked",
        """
        from dataclasses import dataclass, field

        import assay


        @dataclass
        class Optimizer:
            lr: float = 0.1

            def __post_init__(self):
                assert self.lr > 0, "lr must be positive"


        @dataclass
        class Params(assay.ExperimentParameters):
            optimizer: Optimizer = field(default_factory=Optimizer)
            kind: str = "a"

            def __post_init__(self):
                if self.kind not in ("a", "b"):
                    raise KeyError(self.kind)


        def get_params():
            return [Params(name="first"), Params(name="second", kind="b")]
        """,
    )
    source = project / "experiments" / "params33_checked.py"
    lines = source.read_text().splitlines()
    for override, error, raising in [
        ("optimizer.lr=-1", "AssertionError: lr must be positive", "assert self.lr > 0"),
        ("kind=c", "KeyError: 'c'", "raise KeyError"),
    ]:
        line = next(i for i, text in enumerate(lines, 1) if raising in text)
        for command in ("params", "run"):
            result = run_cli(command, "params33_checked", "--set", override, cwd=project)
            assert result.code not in (0, None), result
            assert "Traceback" not in result.output, result
            assert "Stages that finished" not in result.text, result
            assert f"parameter set 'first' (Params) refuses {override}" in result.text, result
            assert f"{error} (raised at {source}, line {line})" in result.text, result
        assert not (project / "assay.db").exists()

    result = run_cli("run", "params33_checked", "--set", "optimizer.lr=0.5", cwd=project)
    assert result.code == 0, result


def test_a_parameter_class_with_slots_reaches_its_stages(tmp_path: Path):
    """``@dataclass(slots=True)`` keeps every field in a slot, and the copy of the set a
    stage gets (which notes the fields read) copied only ``__dict__``: the stage failed
    with "AttributeError: 'Params' object has no attribute 'lr'" for "parameter set ''"."""
    project = _project(
        tmp_path,
        "params33_slots",
        """
        from dataclasses import dataclass
        from pathlib import Path

        import assay
        from assay.caching import JsonCacher


        @dataclass(slots=True, kw_only=True)
        class Params(assay.ExperimentParameters):
            lr: float = 0.5
            steps: int


        @assay.stage(inputs=None, outputs=["product"], cachers=[JsonCacher])
        def multiply(record):
            product = record.params.lr * record.params.steps
            with Path("seen.txt").open("a") as seen:
                seen.write(f"{record.name}={product}\\n")
            return product


        def get_params():
            return [Params(name="two", steps=2), Params(name="four", steps=4)]


        def run(param_sets, manager):
            for params in param_sets:
                multiply(assay.Record(manager, params))
        """,
        tail="",
    )
    seen = project / "seen.txt"

    result = run_cli("run", "params33_slots", cwd=project)
    assert result.code == 0, result
    assert seen.read_text().splitlines() == ["two=1.0", "four=2.0"]

    seen.unlink()
    result = run_cli("run", "params33_slots", "--set", "lr=2", "--parallel", "2", cwd=project)
    assert result.code == 0, result
    assert sorted(seen.read_text().splitlines()) == ["four=8.0", "two=4.0"]

    result = run_cli("run", "params33_slots", "--set", "lr=2", cwd=project)
    assert result.code == 0, result
    assert "2 cached" in result.text, result


def test_assay_params_on_a_narrow_terminal_shows_every_field_and_name(tmp_path: Path):
    """`assay params --all-fields` in an 80-column terminal squeezed a set of sixteen
    fields into columns of no width: no name, no value, nothing but borders."""
    fields = "".join(f"    field_{i}: int = {i}\n" for i in range(16))
    project = _project(
        tmp_path,
        "params33_wide",
        "from dataclasses import dataclass\n\n"
        "import assay\n\n\n"
        "@dataclass\n"
        "class Params(assay.ExperimentParameters):\n"
        f"{fields}\n\n"
        "def get_params():\n"
        "    return [Params(name='first'), Params(name='second', field_15=99)]\n",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(COLUMNS="80", NO_COLOR="1", TERM="dumb")
    shown = subprocess.run(
        [sys.executable, "-m", "assay", "params", "params33_wide", "--all-fields"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    words = shown.stdout.split()
    for word in ["first", "second", "Params", "99", *(f"field_{i}" for i in range(16))]:
        assert word in words, shown.stdout


def test_set_names_enum_members_in_lists_and_as_assay_params_shows_them(tmp_path: Path):
    """``--set steps="['FLIP']"`` for ``steps: list[Augment]`` was refused ("expected
    Augment items, got 'FLIP'") with no form it took, though a ``list[Path]`` takes text;
    and ``--set optimizer=Optimizer.ADAM``, the value as `assay params` shows it, was
    refused too ("expected one of SGD, ADAM")."""
    project = _project(
        tmp_path,
        "params33_enums",
        """
        import enum
        from dataclasses import dataclass, field
        from pathlib import Path

        import assay
        from assay.caching import JsonCacher


        class Optimizer(enum.Enum):
            SGD = "sgd"
            ADAM = "adam"


        class Augment(enum.Enum):
            FLIP = 1
            CROP = 2


        @dataclass
        class Params(assay.ExperimentParameters):
            optimizer: Optimizer = Optimizer.SGD
            steps: list[Augment] = field(default_factory=list)


        @assay.stage(inputs=None, outputs=["used"], cachers=[JsonCacher])
        def train(record):
            used = [record.params.optimizer.value, *(s.name for s in record.params.steps)]
            Path("seen.txt").write_text(" ".join(used))
            return used


        def get_params():
            return [Params(name="only")]


        def run(param_sets, manager):
            for params in param_sets:
                train(assay.Record(manager, params))
        """,
        tail="",
    )
    shown = run_cli("params", "params33_enums", "--all-fields", cwd=project)
    assert "Optimizer.SGD" in shown.text, shown

    overrides = ["--set", "optimizer=Optimizer.ADAM", "--set", "steps=['CROP', 'FLIP']"]
    result = run_cli("run", "params33_enums", *overrides, cwd=project)
    assert result.code == 0, result
    assert (project / "seen.txt").read_text() == "adam CROP FLIP"

    result = run_cli("run", "params33_enums", "--set", "steps=['ZOOM']", cwd=project)
    assert result.code not in (0, None), result
    assert "Params.steps: expected Augment items, got 'ZOOM'" in result.text, result


def test_set_reaches_a_field_of_a_named_tuple_by_its_name(tmp_path: Path):
    """``--set point.x=3`` for a ``NamedTuple`` field was refused with a suggestion that
    failed in turn: "pick an item by its position first, as in --set point.0.x=VALUE"."""
    project = _project(
        tmp_path,
        "params33_namedtuple",
        """
        from dataclasses import dataclass
        from typing import NamedTuple

        import assay


        class Point(NamedTuple):
            x: int = 1
            y: float = 2.0


        @dataclass
        class Params(assay.ExperimentParameters):
            point: Point = Point()


        def get_params():
            return [Params(name="only")]
        """,
    )
    result = run_cli(
        "params", "params33_namedtuple", "--set", "point.x=3", "--all-fields", cwd=project
    )
    assert result.code == 0, result
    assert "Point(x=3, y=2.0)" in result.text, result

    result = run_cli(
        "params", "params33_namedtuple", "--set", "point.y=4", "--all-fields", cwd=project
    )
    assert "Point(x=1, y=4.0)" in result.text, result

    result = run_cli("params", "params33_namedtuple", "--set", "point.z=4", cwd=project)
    assert result.code not in (0, None), result
    assert "Params.point has no field 'z'. Valid fields: x, y" in result.text, result


def test_two_sets_with_one_hand_set_hash_but_other_values_are_refused(tmp_path: Path):
    """``replace(BASE, name="b", seed=2)`` of a ``BASE`` with a hand-set ``hash`` keeps
    that hash: both sets ran under it, and "b" silently got the result of "a"."""
    project = _project(
        tmp_path,
        "params33_pinned",
        """
        from dataclasses import dataclass, replace
        from pathlib import Path

        import assay
        from assay.caching import JsonCacher


        @dataclass
        class Params(assay.ExperimentParameters):
            seed: int = 1


        BASE = Params(name="a", hash="pinned-by-hand")


        @assay.stage(inputs=None, outputs=["tenfold"], cachers=[JsonCacher])
        def tenfold(record):
            return record.params.seed * 10


        @assay.stage(inputs=["tenfold"], outputs=[])
        def write(record, tenfold):
            with Path("seen.txt").open("a") as seen:
                seen.write(f"{record.name}={tenfold}\\n")


        def get_params():
            return [BASE, replace(BASE, name="b", seed=2)]


        def run(param_sets, manager):
            for params in param_sets:
                write(tenfold(assay.Record(manager, params)))
        """,
        tail="",
    )
    for command in ("run", "params"):
        result = run_cli(command, "params33_pinned", cwd=project)
        assert result.code not in (0, None), result
        assert "Traceback" not in result.output, result
        assert (
            "Parameter sets 'a' and 'b' have the same hand-set hash 'pinned-by-hand' but "
            "differ (seed)" in result.text
        ), result
    assert not (project / "seen.txt").exists()
    assert not (project / "assay.db").exists()

    # The same values under one hash are one set's results: allowed, as are others' own.
    result = run_cli("run", "params33_pinned", "-n", "a", cwd=project)
    assert result.code == 0, result
    assert (project / "seen.txt").read_text() == "a=10\n"
