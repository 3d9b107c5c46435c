"""More of Curifactory's API as its users call it (with ``import assay as cf``): positional
arguments in Curifactory's order, ``LatexTableReporter``'s keyword arguments, the xml
``PandasCacher`` and ``Procedure``'s bookkeeping.

Each test failed before the fix it is named after; the experiment ``diamond`` of
``tests/resources/projects/basic`` is ``load -> double, square -> combine`` per parameter
set (``a``, ``b``), then the aggregate ``summarize``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pytest

import assay
from assay.caching import JsonCacher, PandasCacher
from assay.reporting import LatexTableReporter
from conftest import Calls, load_experiment_module

CURIFACTORY_MANAGER_ORDER = [
    "experiment_name",
    "store_full",
    "dry",
    "dry_cache",
    "prefix",
    "run_line",
    "parallel_lock",
    "parallel_mode",
    "lazy",
    "ignore_lazy",
    "notes",
    "manager_cache_path",
    "cache_path",
    "runs_path",
    "logs_path",
    "notebooks_path",
    "reports_path",
    "report_css_path",
    "status_override",
    "suppress_live_log",
    "live_log_debug",
    "disable_non_cf_loggers",
]
"""``curifactory.ArtifactManager.__init__``'s parameters (0.20.5), in order."""

CURIFACTORY_RUN_ORDER = [
    "experiment_name",
    "param_files",
    "overwrite_override",
    "cache_dir_override",
    "mngr",
    "log",
    "log_debug",
    "dry",
    "dry_cache",
    "store_full",
    "log_errors",
    "prefix",
    "build_docker",
    "build_notebook",
    "run_string",
    "stage_overwrites",
    "param_set_names",
    "param_set_indices",
    "global_param_set_indices",
]
"""The first parameters of ``curifactory.experiment.run_experiment`` (0.20.5), in order."""


def curifactory_positional(function_order: list[str], **values) -> list:
    """Positional arguments for a Curifactory call: ``values`` at their places, ``None``
    before them."""
    last = max(function_order.index(name) for name in values)
    return [values.get(name) for name in function_order[: last + 1]]


# -- ArtifactManager ------------------------------------------------------------------


def test_artifact_manager_takes_curifactorys_positional_order(tmp_project: Path, calls: Calls):
    """``ArtifactManager("nb", True)`` was a dry manager (assay's second parameter was
    ``dry``); in Curifactory it is ``store_full=True``, and the stages execute."""
    parameters = inspect.signature(assay.ArtifactManager).parameters.values()
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == CURIFACTORY_MANAGER_ORDER

    diamond = load_experiment_module(tmp_project, "diamond")
    manager = assay.ArtifactManager("nb", True, project_root=tmp_project)
    assert manager.store_full and not manager.dry and not manager.dry_cache
    record = diamond.load(assay.Record(manager, diamond.Params(name="a")))
    assert record.state["data"] == [0, 1, 2]
    assert calls.take() == ["load:a"]

    every = assay.ArtifactManager(
        *curifactory_positional(
            CURIFACTORY_MANAGER_ORDER,
            experiment_name="all",
            dry=True,
            dry_cache=True,
            prefix="shared",
            run_line="experiment all",
            lazy=True,
            notes="by position",
            cache_path="other-cache",
        ),
        project_root=tmp_project,
    )
    assert every.experiment_name == "all" and not every.store_full
    assert every.dry and every.dry_cache and every.lazy and not every.ignore_lazy
    assert (every.prefix, every.run_line, every.notes) == (
        "shared",
        "experiment all",
        "by position",
    )
    assert Path(every.cache_path) == tmp_project / "other-cache"

    # assay's own arguments are keyword-only, and keyword calls work as before
    with pytest.raises(TypeError):
        assay.ArtifactManager(*[None] * (len(CURIFACTORY_MANAGER_ORDER) + 1))
    keywords = assay.ArtifactManager(
        "kw", dry=True, overwrite=True, overwrite_stages=["load"], project_root=tmp_project
    )
    assert keywords.dry and keywords.overwrite and keywords.overwrite_stages == {"load"}


# -- LatexTableReporter ---------------------------------------------------------------


def test_latex_table_reporter_passes_its_arguments_to_the_styler():
    """Curifactory passes them to ``df.style.to_latex()``: ``hrules=True`` was a TypeError
    (``DataFrame.to_latex`` has no ``hrules``)."""
    frame = pd.DataFrame({"a": [1.5, 2.25], "b": ["x", "y"]})

    ruled = LatexTableReporter(frame, name="t", hrules=True, caption="Results")
    assert ruled.latex == frame.style.to_latex(hrules=True, caption="Results")
    assert "\\toprule" in ruled.latex and "\\caption{Results}" in ruled.latex
    assert LatexTableReporter(frame).latex == frame.style.to_latex()  # no rules by default

    # what only DataFrame.to_latex takes still goes there (assay's earlier behaviour)
    formatted = LatexTableReporter(frame, float_format="%.3f", index=False)
    assert formatted.latex == frame.to_latex(float_format="%.3f", index=False)
    assert LatexTableReporter(frame["a"]).latex == frame[["a"]].style.to_latex()
    with pytest.raises(TypeError):
        LatexTableReporter(frame, no_such_argument=1)


# -- PandasCacher ---------------------------------------------------------------------


def test_xml_pandas_cacher_does_not_add_an_index_column(tmp_project: Path):
    """Curifactory writes xml with ``index=False``: a frame came back from the cache with
    an extra ``index`` column."""
    assert PandasCacher(format="xml").to_args == {"index": False}
    assert PandasCacher(format="json").to_args == {"double_precision": 15}
    assert PandasCacher(format="hdf5").to_args == {"key": "df"}
    assert PandasCacher(format="csv").read_args == {"index_col": 0}
    assert PandasCacher(format="xml", to_args={}).to_args == {}

    cacher = PandasCacher(format="xml", read_args={"parser": "etree"})
    cacher.to_args["parser"] = "etree"  # lxml need not be installed

    @assay.stage(outputs=["df"], cachers=[cacher])
    def make(record):
        return pd.DataFrame({"x": [1.5, 2.5], "s": ["u", "v"]}, index=[10, 20])

    @assay.stage(inputs=["df"], outputs=["columns"], cachers=[JsonCacher])
    def columns(record, df):
        return list(df.columns)

    for _ in range(2):  # executed, then loaded from the cache by a new manager
        manager = assay.ArtifactManager("xml", project_root=tmp_project)
        record = columns(make(assay.Record(manager, assay.ExperimentParameters(name="p"))))
        assert record.state["columns"] == ["x", "s"]
        assert list(record.state["df"].columns) == ["x", "s"]
    assert [n.status for n in manager.plan.nodes] == ["cached", "cached"]


# -- run_experiment -------------------------------------------------------------------


def test_run_experiment_takes_curifactorys_positional_arguments(tmp_project: Path, calls: Calls):
    """``run_experiment("diamond", None, True)`` (``overwrite_override=True``) was a
    TypeError: assay's arguments after the second were keyword-only."""
    first = assay.run_experiment("diamond", [], project_root=tmp_project)
    assert first.run_info is not None and len(calls.take()) == 9

    overwritten = assay.run_experiment("diamond", None, True, project_root=tmp_project)
    assert overwritten.overwrite and len(calls.take()) == 9
    reused = assay.run_experiment("diamond", None, None, project_root=tmp_project)
    assert not reused.overwrite and calls.take() == []

    def positional(**values):
        return curifactory_positional(CURIFACTORY_RUN_ORDER, **values)[2:]

    dry = assay.run_experiment("diamond", [], *positional(dry=True), project_root=tmp_project)
    assert dry.dry and dry.run_info is None
    names = assay.run_experiment(
        "diamond",
        [],
        *positional(param_set_names=["b"], stage_overwrites=["square"], prefix="other"),
        project_root=tmp_project,
    )
    assert [r.name for r in names.records if r.params is not None] == ["b"]
    assert names.prefix == "other"
    assert "square:b" in calls.take()  # stage_overwrites

    with pytest.raises(TypeError, match="multiple values for argument 'dry'"):
        assay.run_experiment("diamond", [], *positional(dry=True), dry=True)
    with pytest.raises(TypeError, match="multiple values for argument 'param_set_names'"):
        assay.run_experiment(
            "diamond", [], *positional(param_set_names=["a"]), param_set_names=["b"]
        )
    with pytest.raises(TypeError, match="got 'overwrite' twice"):
        assay.run_experiment("diamond", [], True, overwrite=True, project_root=tmp_project)
    with pytest.raises(TypeError, match="makes its own manager"):
        assay.run_experiment("diamond", [], None, None, object(), project_root=tmp_project)
    with pytest.raises(TypeError, match="positional arguments"):
        assay.run_experiment("diamond", [], *[None] * 60)
    assert calls.take() == []


# -- Procedure ------------------------------------------------------------------------


def test_a_procedure_keeps_only_the_records_it_made(tmp_project: Path, calls: Calls):
    """``proc.run(None, record=r)`` added ``r`` to ``proc.records``; in Curifactory only
    the records a procedure creates are there, and so an aggregate with
    ``previous_proc=proc`` saw other records."""
    diamond = load_experiment_module(tmp_project, "diamond")
    manager = assay.ArtifactManager("procedures", project_root=tmp_project)
    first = assay.Procedure([diamond.load], manager)
    second = assay.Procedure([diamond.double, diamond.square, diamond.combine], manager)

    made = []
    for params in diamond.get_params():
        record = first.run(params)
        made.append(record)
        assert second.run(None, record=record) is record
        assert second.record is record
    assert first.records == made and second.records == []
    assert made[1].state["combined"] == {"sum": 32, "n": 3}

    over_first = assay.Procedure([diamond.summarize], manager, previous_proc=first).run(None)
    assert over_first.state["summary"] == {"a": 11, "b": 32}
    assert set(over_first.input_records) == set(made)


def test_a_procedure_may_have_no_stages(tmp_project: Path):
    """``Procedure([])`` was a ValueError; Curifactory takes it. Its ``run`` makes the
    record (Curifactory's fails there, with an UnboundLocalError)."""
    diamond = load_experiment_module(tmp_project, "diamond")
    manager = assay.ArtifactManager("empty", project_root=tmp_project)
    empty = assay.Procedure([], manager)
    record = empty.run(diamond.Params(name="a"))
    assert record.params.name == "a" and record.stages == []
    assert empty.records == [record] and record in manager.records
