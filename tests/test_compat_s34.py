"""A Curifactory project moved to assay by renaming its imports (migration findings,
session 34).

Each test is a small Curifactory-style project (``import assay as cf``) run as its user
would run it, checking what Curifactory 0.20 gives for the same code.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import assay
from conftest import run_cli


def make_project(root: Path, experiment: str) -> Path:
    """A project folder with ``experiments/compat_s34.py``."""
    (root / "experiments").mkdir(parents=True)
    (root / "experiments" / "__init__.py").write_text("")
    (root / "experiments" / "compat_s34.py").write_text(textwrap.dedent(experiment))
    return root


# -- reportables of a stage reused from another parameter set -------------------------------

SHARED_DATA = """
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        seed: int = 1
        alpha: float = 1.0


    @cf.stage(inputs=None, outputs=["data"], cachers=[JsonCacher])
    def make_data(record):
        data = list(range(record.params.seed, record.params.seed + 3))
        record.report(cf.reporting.JsonReporter({"n": len(data)}))
        record.report(cf.reporting.JsonReporter(data, name="sample"))
        return data


    def get_params():
        # the three sets share make_data (alpha is not read there): it runs once
        return [Params(name="base"), Params(name="low", alpha=0.1), Params(name="high", alpha=10)]


    def run(param_sets, manager):
        for params in param_sets:
            make_data(cf.Record(manager, params))
"""


def qualified_names(manager) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for reportable in manager.reportables:
        names.setdefault(reportable.record.params.name, []).append(reportable.qualified_name)
    return names


def test_reportables_of_a_reused_stage_are_named_after_their_own_parameter_set(tmp_path: Path):
    root = make_project(tmp_path, SHARED_DATA)
    expected = {
        name: [f"{name}_make_data_0", f"{name}_make_data_sample"]
        for name in ("base", "low", "high")
    }

    first = assay.run_experiment("compat_s34", project_root=root, report=False)
    assert qualified_names(first) == expected
    # a later run takes the stage from the cache for every set
    again = assay.run_experiment("compat_s34", project_root=root, names=["high", "low"])
    assert qualified_names(again) == {name: expected[name] for name in ("low", "high")}
    page = (Path(again.reports_path) / again.run_id / "index.html").read_text()
    assert page.count("low_make_data_0") == 1 and page.count("high_make_data_0") == 1
    assert "base_make_data_0" not in page


# -- classes whose instances have code ------------------------------------------------------


def test_a_parameter_holding_the_class_of_functions_hashes(tmp_path: Path):
    """``types.FunctionType`` (and Cython's function class) has a ``__code__`` attribute
    for its instances; hashing the class itself read it as its own code and crashed."""
    import types
    from dataclasses import dataclass

    @dataclass
    class Params(assay.ExperimentParameters):
        accepts: type = types.FunctionType

    functions, methods = Params(name="f"), Params(name="m", accepts=types.MethodType)
    assert functions.params_hash() == Params(name="again").params_hash()
    assert functions.params_hash() != methods.params_hash()


# -- --lazy and outputs pickle cannot store -------------------------------------------------

HOLDS_A_LOCK = """
    import threading
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        a: int = 1


    @cf.stage(inputs=None, outputs=["x", "lock"])
    def make(record):
        return record.params.a, threading.Lock()


    @cf.stage(inputs=["x", "lock"], outputs=["y"], cachers=[JsonCacher])
    def use(record, x, lock):
        with lock:
            return x * 2


    def get_params():
        return [Params(name="one")]


    def run(param_sets, manager):
        for params in param_sets:
            use(make(cf.Record(manager, params)))
"""


def test_lazy_saying_an_output_cannot_be_pickled_says_lazy_gave_it_the_cacher(tmp_path: Path):
    """Curifactory's --lazy gives the outputs of a stage without cachers a PickleCacher. When
    pickle refuses one, "give this output no cacher (None)" alone is no help: it has none."""
    root = make_project(tmp_path, HOLDS_A_LOCK)
    assert run_cli("run", "compat_s34", cwd=root).code == 0

    lazy = run_cli("run", "compat_s34", "--lazy", "--overwrite", cwd=root)
    assert lazy.code != 0
    message = " ".join(lazy.stderr.split())
    assert "'lock' of stage 'make'" in message
    assert "--lazy gave it a PickleCacher" in message, message
    assert "cachers=[PickleCacher, None]" in message, message
    assert "Traceback" not in lazy.stderr


# -- stages called on an aggregate's record after it -----------------------------------------

TWO_AGGREGATES = """
    from dataclasses import dataclass

    import assay as cf
    from assay.caching import JsonCacher


    @dataclass
    class Params(cf.ExperimentParameters):
        a: int = 1


    @cf.stage(inputs=None, outputs=["x"], cachers=[JsonCacher])
    def make(record):
        return record.params.a


    @cf.aggregate(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
    def add_up(record, records, x):
        return sum(x.values())


    @cf.stage(inputs=["total"], outputs=["shown"], cachers=[JsonCacher])
    def show(record, total):
        return {"total": total, "hash": record.get_hash()}


    def get_params():
        return [Params(name="one"), Params(name="two", a=2), Params(name="three", a=3)]


    def run(param_sets, manager):
        records = [make(cf.Record(manager, params)) for params in param_sets]
        show(add_up(cf.Record(manager, None), records[:2]))
        show(add_up(cf.Record(manager, None), records[1:]))
"""


def shown_by_name(root: Path) -> dict[str, dict]:
    import json

    by_name = root / "data" / "cache" / "by-name" / "compat_s34"
    return {
        folder.name: json.loads((folder / "show" / "shown.json").read_text())
        for folder in sorted(by_name.iterdir())
        if (folder / "show").exists()
    }


def test_a_stage_after_an_aggregate_is_filed_with_it_and_sees_its_hash(tmp_path: Path):
    """Curifactory keys the stages called on an aggregate's record after it by the
    aggregate's combo hash. Both were filed under ``by-name/.../no_parameters/show`` (the
    second hid the first), and under --parallel the stage's record.get_hash() was "None"."""
    root = make_project(tmp_path / "serial", TWO_AGGREGATES)
    assert run_cli("run", "compat_s34", cwd=root).code == 0
    serial = shown_by_name(root)
    assert sorted(serial) == sorted(f for f in serial if f.startswith("aggregate-"))
    assert sorted(v["total"] for v in serial.values()) == [3, 5]
    assert len({v["hash"] for v in serial.values()} | {"None"}) == 3

    root = make_project(tmp_path / "parallel", TWO_AGGREGATES)
    assert run_cli("run", "compat_s34", "--parallel", "2", cwd=root).code == 0
    assert shown_by_name(root) == serial
