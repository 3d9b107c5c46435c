"""Checks ``@assay.stage`` and ``@assay.aggregate`` make of a stage's declaration.

A declaration that cannot work is refused when the stage is called, the moment
Curifactory refuses it (SPEC section 2), before anything runs, with a message
naming the stage, the output, the value at fault and where the stage is defined,
rather than with a traceback halfway through a run (SPEC section 10). Only
``cachers=`` given one cacher where a list is meant is refused by the decorator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import assay
from assay.caching import Cacheable, JsonCacher, PathRef, PickleCacher
from assay.errors import CachersMismatchError, StageError
from assay.staging import get_spec
from conftest import copy_project, run_cli

WHAT_A_CACHER_IS = "(a class from assay.caching, an instance of one, or None)"


class TextCacher(Cacheable):
    """A project's own cacher: a Cacheable subclass from outside assay."""

    def save(self, obj):
        with open(self.get_path(".txt"), "w") as handle:
            handle.write(str(obj))

    def load(self):
        with open(self.get_path(".txt")) as handle:
            return handle.read()


def _declare(cachers, outputs=("a", "b")):
    @assay.stage(outputs=list(outputs), cachers=cachers)
    def first(record):
        return 1, 2

    return first


@pytest.fixture
def record(tmp_path: Path) -> assay.Record:
    """A record of a live manager, to call stages on."""
    manager = assay.ArtifactManager("checks", project_root=tmp_path)
    return assay.Record(manager, assay.ExperimentParameters(name="p"))


def _call(cachers, record, outputs=("a", "b")) -> None:
    _declare(cachers, outputs)(record)


@pytest.mark.parametrize(
    "cachers",
    [
        [PickleCacher, JsonCacher],
        [PickleCacher, None],
        [None, None],
        (JsonCacher(subdir="scores"), PathRef(extension=".png")),
        [TextCacher, TextCacher()],
    ],
    ids=["classes", "a-class-and-none", "all-none", "instances-in-a-tuple", "own-cacheable"],
)
def test_cacheable_classes_instances_and_none_are_accepted(cachers):
    assert get_spec(_declare(cachers)).cachers == list(cachers)


def _pickle_cacher_factory():
    return PickleCacher()


@pytest.mark.parametrize(
    ("cachers", "shown"),
    [
        ([int, None], "int for output 'a'"),
        ([PickleCacher, "pickle"], "'pickle' for output 'b'"),
        ([PickleCacher, str], "str for output 'b'"),
        ([None, 3], "3 for output 'b'"),
        ([_pickle_cacher_factory, None], "<function _pickle_cacher_factory"),
    ],
    ids=["a-builtin-class", "text", "a-class-that-is-no-cacher", "a-number", "a-factory"],
)
def test_an_entry_that_is_not_a_cacher_is_refused_when_the_stage_is_called(cachers, shown, record):
    """``cachers=[int]`` failed at run time: AttributeError: 'int' object has no attribute
    'name'."""
    _declare(cachers)  # the module that declares it imports, as with Curifactory
    with pytest.raises(StageError) as info:
        _call(cachers, record)
    message = str(info.value)
    assert f"The cacher {shown}" in message
    assert f"of stage 'first' is not a Cacheable {WHAT_A_CACHER_IS}." in message
    assert "PickleCacher" in message  # how to fix it


def test_the_message_names_the_stage_output_and_value_as_the_tester_asked(record):
    @assay.stage(outputs=["a"], cachers=[int])
    def first(record):
        return 1

    with pytest.raises(StageError) as info:
        first(record)
    assert str(info.value).startswith(
        f"The cacher int for output 'a' of stage 'first' is not a Cacheable {WHAT_A_CACHER_IS}."
    )
    line = first.__wrapped__.__code__.co_firstlineno
    assert str(info.value).endswith(
        f" The stage is defined in {os.path.relpath(__file__)}, line {line}."
    )


def test_every_bad_entry_is_named_at_once(record):
    with pytest.raises(StageError) as info:
        _call([int, "json"], record)
    assert (
        f"Stage 'first' has 2 cachers that are not Cacheables {WHAT_A_CACHER_IS}: "
        "int for output 'a'; 'json' for output 'b'."
    ) in str(info.value)


def test_an_aggregate_refuses_a_bad_cacher_too(record):
    @assay.aggregate(inputs=None, outputs=["best"], cachers=[dict])
    def pick(record, records):
        return {}

    with pytest.raises(StageError, match=r"The cacher dict for output 'best' of aggregate 'pick'"):
        pick(assay.Record(record.manager, None), [record])


def test_a_cacher_from_another_package_is_named_in_full(record):
    fake = type("PickleCacher", (), {"__module__": "curifactory.caching"})
    with pytest.raises(StageError) as info:
        _call([fake, None], record)
    message = str(info.value)
    assert "The cacher curifactory.caching.PickleCacher for output 'a'" in message
    assert "import them from assay.caching" in message


@pytest.mark.parametrize(
    ("cachers", "message"),
    [
        (PickleCacher, "has cachers=PickleCacher, but cachers takes a list with one cacher "),
        (JsonCacher(), "one cacher per output: cachers=[JsonCacher("),
        ("pickle", "has cachers='pickle', but cachers takes a list"),
        (3, "has cachers=3, but cachers takes a list"),
    ],
    ids=["a-class", "an-instance", "text", "a-number"],
)
def test_one_cacher_where_a_list_is_meant_is_refused(cachers, message):
    """``cachers=PickleCacher`` raised TypeError: 'type' object is not iterable."""
    with pytest.raises(StageError) as info:
        _declare(cachers, outputs=["a"])
    assert str(info.value).startswith("Stage 'first' ")
    assert message in str(info.value)


def test_a_wrong_count_is_still_reported_as_a_mismatch(record):
    with pytest.raises(CachersMismatchError):
        _call([int], record)


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry"])
def test_the_command_line_prints_a_bad_cacher_without_a_traceback(tmp_path: Path, dry: bool):
    project = copy_project("bad", tmp_path)
    (project / "experiments" / "bad_cacher.py").write_text(
        "import assay\n"
        "from experiments.good import get_params  # noqa: F401\n"
        "\n"
        "\n"
        "@assay.stage(outputs=['a'], cachers=[int])\n"
        "def first(record):\n"
        "    return 1\n"
        "\n"
        "\n"
        "def run(param_sets, manager):\n"
        "    for params in param_sets:\n"
        "        first(assay.Record(manager, params))\n"
    )
    result = run_cli("run", "bad_cacher", *(["--dry"] if dry else []), cwd=project)
    assert result.code not in (0, None), result
    assert "Traceback" not in result.output, result
    assert "AttributeError" not in result.output, result
    assert "bad_cacher.py" in result.text, result
    assert (
        f"The cacher int for output 'a' of stage 'first' is not a Cacheable {WHAT_A_CACHER_IS}."
    ) in result.text, result


IN_IPYTHON = '''
import sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
shell.run_cell("import assay, sys", store_history=True)
shell.run_cell("""
@assay.stage(outputs=["a"], cachers=[int])
def first(record):
    return 1
""", store_history=True)
result = shell.run_cell("""
manager = assay.ArtifactManager("checks", project_root=sys.argv[1])
first(assay.Record(manager, assay.ExperimentParameters(name="p")))
""", store_history=True)
print(result.error_in_exec)
'''


def test_a_stage_typed_into_a_notebook_is_placed_in_its_cell(tmp_path: Path):
    """The message named the kernel's temporary file (/tmp/ipykernel_.../1234.py) where
    the researcher needs the cell."""
    pytest.importorskip("IPython")
    done = subprocess.run(
        [sys.executable, "-c", IN_IPYTHON, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "is not a Cacheable" in done.stdout
    assert done.stdout.strip().endswith("The stage is defined in notebook cell In[2], line 1.")


# -- declarations a researcher gets slightly wrong (issue-6 bad-input walkthrough) ----------


def test_a_single_name_for_inputs_or_outputs_is_refused_not_read_letter_by_letter(record):
    """``outputs="model"`` was read as five outputs ``m, o, d, e, l``."""

    @assay.stage(outputs="model", cachers=[PickleCacher])
    def fit(record):
        return 1

    @assay.stage(inputs="model", outputs=["score"])
    def score(record, model):
        return model

    with pytest.raises(StageError, match=r"outputs='model': a single name.*outputs=\['model'\]"):
        fit(record)
    with pytest.raises(StageError, match=r"inputs='model': a single name.*inputs=\['model'\]"):
        score(record)


def test_a_misspelled_input_is_told_the_parameter_it_likely_means(record):
    """It said to add a parameter named ``trian``."""

    @assay.stage(inputs=["trian"], outputs=["model"])
    def fit(record, train):
        return train

    with pytest.raises(StageError, match=r"Did you mean 'train'"):
        fit(record)


def test_an_aggregate_without_its_records_parameter_is_refused_at_its_call(record):
    """``def compare(record, scores)`` failed as it ran, with "got multiple values for
    argument 'scores'"."""

    @assay.aggregate(inputs=["scores"], outputs=["best"])
    def compare(record, scores):
        return max(scores.values())

    aggregate_record = assay.Record(record.manager, None)
    with pytest.raises(StageError, match=r"def compare\(record, records, scores\)"):
        compare(aggregate_record)


def test_a_list_returned_for_several_outputs_is_said_to_be_one_value():
    from assay.errors import OutputSignatureError
    from assay.staging import StageSpec

    spec = StageSpec(func=len, name="split", inputs=[], outputs=["train", "test"], cachers=None)
    with pytest.raises(OutputSignatureError, match=r"returned a list of 2 \(one value"):
        spec.split_outputs([1, 2], "p")
    assert spec.split_outputs((1, 2), "p") == (1, 2)


def test_a_parameter_set_passed_where_a_record_goes_is_told_to_make_a_record():
    """It raised "'Params' object has no attribute 'manager'"."""

    @assay.stage(outputs=["data"])
    def make_data(record):
        return 1

    with pytest.raises(
        StageError, match=r"called with an object of type ExperimentParameters where a record"
    ):
        make_data(assay.ExperimentParameters(name="p"))
