"""Curifactory code that behaved otherwise under assay (migration findings, session 31).

Each test is a small Curifactory-style project run with ``assay run`` (or a live manager),
with only its imports renamed, and failed before the fix it is named after.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli


def make_project(root: Path, experiment: str, name: str = "exp") -> Path:
    """A project folder with ``experiments/NAME.py`` holding ``experiment``."""
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "__init__.py").write_text("")
    (root / "experiments" / f"{name}.py").write_text(textwrap.dedent(experiment))
    return root


# -- a cacher a stage makes itself --------------------------------------------------------

SIDE_CACHER = """
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher, PickleCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 3


    @cf.stage(inputs=None, outputs=["n"], cachers=[JsonCacher])
    def make(record):
        extra = PickleCacher(record=record, name="extra")
        extra.save({"n": record.params.n})
        print("EXTRA", extra.get_path())
        return record.params.n


    def get_params():
        return [Params(name="three")]


    def run(param_sets, manager):
        for param_set in param_sets:
            make(cf.Record(manager, param_set))
"""


def test_a_cacher_a_stage_makes_with_its_record_writes_in_the_stages_folder(tmp_path: Path):
    """``PickleCacher(record=record, name="extra").save(...)`` inside a stage, as Curifactory
    allows, failed with "has no place to write yet: use it in a stage"."""
    root = make_project(tmp_path, SIDE_CACHER)
    result = run_cli("run", "exp", cwd=root)
    assert result.code == 0, result
    path = Path(result.stdout.split("EXTRA ", 1)[1].split()[0])
    assert path.name == "extra.pkl" and path.is_file()
    assert (path.parent / "n.json").is_file()  # beside the stage's own output

    again = run_cli("run", "exp", cwd=root)
    assert again.code == 0 and "1 cached" in again.text, again
    assert path.is_file()


def test_a_cacher_without_record_or_path_says_what_to_give_it(tmp_path: Path):
    from assay.caching import PickleCacher

    with pytest.raises(RuntimeError, match="record=record.*path_override"):
        PickleCacher(name="loose").save(1)


# -- run_experiment()'s result ------------------------------------------------------------

RETURNS = """
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 3


    @cf.stage(inputs=None, outputs=["n"], cachers=[JsonCacher])
    def make(record):
        return record.params.n


    def get_params():
        return [Params(name="three")]


    def run(param_sets, manager):
        return [make(cf.Record(manager, p)).state["n"] for p in param_sets]
"""


def test_unpacking_run_experiment_as_curifactorys_pair_says_what_it_returns(tmp_path: Path):
    """``results, manager = run_experiment(...)`` (Curifactory's return value) failed with
    Python's "cannot unpack non-iterable ArtifactManager object", which does not say what
    to write instead."""
    root = make_project(tmp_path, RETURNS)
    (root / "script.py").write_text(
        "from assay.experiment import run_experiment\n"
        "try:\n"
        "    results, manager = run_experiment('exp')\n"
        "except TypeError as exc:\n"
        "    print('MESSAGE', exc)\n"
        "manager = run_experiment('exp')\n"
        "print('RESULTS', manager.results)\n"
    )
    proc = subprocess.run(
        [sys.executable, "script.py"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "manager = run_experiment(...)" in proc.stdout
    assert "manager.results" in proc.stdout
    assert "RESULTS [3]" in proc.stdout


# -- ImageReporter(image_path=...) --------------------------------------------------------

IMAGE = """
    import base64
    from dataclasses import dataclass

    import assay as cf
    from assay.reporting import ImageReporter

    PNG = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 3


    @cf.stage(inputs=None, outputs=[])
    def plot(record):
        path = record.get_path("dot.png")
        with open(path, "wb") as f:
            f.write(PNG)
        record.report(ImageReporter(image_path=path, name="dot"))


    def get_params():
        return [Params(name="three")]


    def run(param_sets, manager):
        for param_set in param_sets:
            plot(cf.Record(manager, param_set))
"""


def test_an_image_reporter_takes_curifactorys_image_path_keyword(tmp_path: Path):
    """``ImageReporter(image_path=...)``, Curifactory's name for the file, failed the stage
    with "unexpected keyword argument 'image_path'"."""
    root = make_project(tmp_path, IMAGE)
    result = run_cli("run", "exp", cwd=root)
    assert result.code == 0, result
    report = next((root / "reports").glob("exp-*/index.html")).read_text()
    assert "dot.png" in report or "<img" in report
    images = [p for p in (root / "reports").rglob("*.png")]
    assert images, "the image was not copied beside the report"


def test_an_image_reporter_given_no_file_or_two_says_so():
    from assay.reporting import ImageReporter

    with pytest.raises(TypeError, match="once"):
        ImageReporter()
    with pytest.raises(TypeError, match="once"):
        ImageReporter("a.png", image_path="b.png")


# -- a reportable that cannot be cached ---------------------------------------------------

UNPICKLABLE = """
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher
    from assay.reporting import JsonReporter, Reportable


    @dataclass
    class Params(cf.ExperimentParameters):
        n: int = 3


    class Computed(Reportable):
        def __init__(self, compute, name=None, group=None):
            self.compute = compute
            super().__init__(name=name, group=group)

        def html(self):
            return f"<p>computed {self.compute()}</p>"


    @cf.stage(inputs=None, outputs=["n"], cachers=[JsonCacher])
    def make(record):
        record.report(Computed(lambda: 42, name="computed"))
        if record.params.n > 3:
            record.report(JsonReporter({"kept": True}, name="kept"))
        return record.params.n


    def get_params():
        return [Params(name="three"), Params(name="four", n=4)]


    def run(param_sets, manager):
        for param_set in param_sets:
            make(cf.Record(manager, param_set))
"""


def test_a_reused_stage_whose_reportables_could_not_be_cached_gives_no_false_alarm(
    tmp_path: Path,
):
    """A custom reportable holding a lambda is warned about once, when the stage runs; the
    run that reused the stage then warned "Cached reportables of stage 'make' not
    restored: ... _reportables.meta.json is missing or unreadable", as if the cache were
    damaged."""
    root = make_project(tmp_path, UNPICKLABLE)
    first = run_cli("run", "exp", cwd=root)
    assert first.code == 0, first
    assert "cannot be cached" in first.text

    again = run_cli("run", "exp", cwd=root)
    assert again.code == 0 and "2 cached" in again.text, again
    assert "WARNING" not in again.output, again
    report = sorted((root / "reports").glob("exp-*/index.html"))[-1].read_text()
    assert "kept&quot;: true" in report  # the one that could be cached is reported on reuse
