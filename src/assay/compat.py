"""Curifactory's names for :func:`assay.run_experiment`'s arguments.

A script written for Curifactory calls
``run_experiment("iris", ["base"], param_set_names=["big"], stage_overwrites=["train"],
overwrite_override=False, log=True, no_dag=True)``. With ``import assay as cf`` the same
call runs: each Curifactory name is translated to assay's (``param_set_names`` →
``names``, ``stage_overwrites`` → ``overwrite_stages``, ...), names for Curifactory's
own console and process machinery are accepted and change nothing, and the few that
assay does differently say what to use instead.

It also holds what assay says when code reaches for one of Curifactory's names that assay
does not have (:data:`CURIFACTORY_ONLY`): what to use instead, rather than Python's bare
"has no attribute".

Differences kept on purpose: ``param_set_indices`` index the combined list of
parameter sets, as ``global_param_set_indices`` do (in Curifactory they index each
parameter file's list; the same with one file), and the call returns the manager
rather than ``(results, manager)``: the results are ``manager.results``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from assay.errors import ParameterError

__all__ = [
    "CURIFACTORY_ONLY",
    "NotInAssayError",
    "missing_attribute",
    "missing_module_name",
    "names_curifactory_has",
    "parse_indices",
    "translate_run_arguments",
]

RENAMED = {
    "experiment_name": "experiment",
    "param_set_names": "names",
    "param_set_indices": "indices",
    "global_param_set_indices": "indices",
    "stage_overwrites": "overwrite_stages",
    "overwrite_override": "overwrite",
    "cache_dir_override": "cache_dir",
    "run_string": "command",
    "log": "log_file",
    "log_debug": "verbose",
    "build_notebook": "notebook",
    "build_docker": "docker",
}
"""Curifactory's name → assay's, for arguments that mean the same."""

PLAN_ONLY = ("map_only", "hashes_only", "paths_only", "print_params")
"""Curifactory's modes that show something about the run and execute nothing: a dry run
here, whose manager holds the plan (``.plan``), the artifacts' paths and the hashes."""

NO_EFFECT = (
    "no_dag",
    "log_errors",
    "parallel_mode",
    "parallel_lock",
    "parallel_queue",
    "run_num_override",
    "run_ts_override",
    "no_color",
    "quiet",
    "progress",
    "plain",
    "all_loggers",
)
"""Curifactory's console and process machinery: accepted, nothing to do here. (assay runs
as ``--no-dag`` does where ``run()`` reads a result: what it reads executes first.)"""

REFUSED = {
    "mngr": (
        "run_experiment() makes its own manager and returns it. To run stages in a manager "
        "you hold, call them on assay.Record(manager, params) (README, 'In a notebook')."
    ),
}


def translate_run_arguments(
    function: Callable, given: dict[str, Any], curifactory: dict[str, Any]
) -> dict[str, Any]:
    """``function``'s keyword arguments: those ``given`` (assay's names), with the
    ``curifactory`` ones translated in.

    Raises:
        TypeError: an unknown name, or an argument given under both names (as Python
            says for any function).
    """
    defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()}
    arguments = dict(given)
    for name, value in curifactory.items():
        if name in REFUSED:
            raise TypeError(f"run_experiment() does not take {name!r}: {REFUSED[name]}")
        if name in NO_EFFECT:
            continue
        if name in PLAN_ONLY:
            target, value = "dry", bool(value) or arguments["dry"]
        elif name in RENAMED:
            target = RENAMED[name]
        else:
            raise TypeError(f"run_experiment() got an unexpected keyword argument {name!r}")
        if target == "indices" and value is not None:
            try:
                value = parse_indices(value)
            except ValueError as exc:
                raise ParameterError(f"{name}: {exc}") from None
        if target == "overwrite" and value is None:  # Curifactory's "as the sets say"
            continue
        if target != "dry" and arguments[target] != defaults[target]:
            raise TypeError(
                f"run_experiment() got {target!r} twice: as {target!r} and as "
                f"Curifactory's {name!r}. Give one of them."
            )
        arguments[target] = value
    return arguments


def parse_indices(values: Iterable[Any]) -> list[int]:
    """Positions of parameter sets: ``3``, ``"-1"``, or a range as Curifactory writes it
    (``"1-3"``: 1 and 2).

    Raises:
        ValueError: an entry that is neither (the message says how to write one).
    """
    positions: list[int] = []
    for value in values:
        text = str(value).strip()
        start, dash, end = text.lstrip("-").partition("-")
        try:
            if not dash:
                positions.append(int(text))
                continue
            first, stop = int(start), int(end)
        except ValueError:
            first = stop = 0
        if text.startswith("-") or first >= stop:
            raise ValueError(
                f"{text!r} is neither a position (3, -1) nor a range A-B with A < B "
                "(1-3 means 1 and 2, as in Curifactory)."
            )
        positions.extend(range(first, stop))
    return positions


# -- Curifactory's names that assay does not have ----------------------------------------

_PLAN = (
    "assay plans the whole run before executing it, without a mapping pass: the plan is "
    "manager.plan (its .nodes), and `assay run EXPERIMENT --dry` prints it"
)
_MACHINERY = "it belongs to Curifactory's own process and report machinery; nothing uses it here"
_STORE = (
    "assay records every run in its run store by itself: `assay show RUN`, "
    "assay.store.RunStore(...).provenance(RUN) for the environment, and --store-full "
    "(or ArtifactManager(store_full=True) with generate_report()) for a copy of the run"
)
_RUN_INFO = (
    "read manager.run_info (.status: running, completed, failed or interrupted; .error), "
    "which is None until the run is recorded"
)
_ARTIFACTS = (
    "a record's artifacts are record.state (record.state.is_loaded(name) tells whether one "
    "is in memory); what each stage read and made is in manager.plan and `assay lineage`"
)
_HASH = "a record's hash is fixed when it is made: record.get_hash()"

CURIFACTORY_ONLY: dict[str, dict[str, str]] = {
    "ArtifactManager": {
        **dict.fromkeys(
            ("map", "map_mode", "map_records", "update_map_progress", "map_progress"), _PLAN
        ),
        **dict.fromkeys(("artifacts", "mapped_artifacts"), _ARTIFACTS),
        **dict.fromkeys(("store", "stored", "write_run_env_output"), _STORE),
        **dict.fromkeys(("conda_env", "pip_freeze", "os"), _STORE),
        **dict.fromkeys(("status", "error", "error_thrown", "interactive"), _RUN_INFO),
        "reproduction_line": (
            "export the run with --store-full and re-run it with `assay reproduce FOLDER`"
        ),
        "param_file_param_sets": (
            "the parameter files are manager.parameter_files, the sets "
            "manager.get_all_param_sets() (a record's hash: record.get_hash())"
        ),
        "get_artifact_filename": (
            "assay names a cached file after its output (NAME.EXT in the stage's folder): "
            "record.get_path(NAME) gives the path"
        ),
        **dict.fromkeys(
            (
                "parallel_lock",
                "parallel_mode",
                "notebooks_path",
                "report_css_path",
                "live_report_paths",
                "live_report_path_generated",
            ),
            _MACHINERY,
        ),
    },
    "Record": {
        **dict.fromkeys(
            (
                "state_artifact_reps",
                "stage_inputs",
                "stage_outputs",
                "stage_inputs_names",
                "stage_kwargs_keys",
                "stage_suppress_missing",
                "cached",
                "record_index",
            ),
            _ARTIFACTS + " (a record's position: record.get_record_index())",
        ),
        **dict.fromkeys(
            ("unstored_tracked_paths", "stored_paths", "store_tracked_paths"),
            "assay keeps every file record.get_path() gives with the stage's outputs and "
            "copies it with --store-full by itself",
        ),
        "set_hash": _HASH,
        "set_aggregate": (
            "an aggregate stage marks its record itself (record.is_aggregate, record.combo_hash)"
        ),
    },
    "FigureReporter": {
        "fig": (
            "the figure is drawn when the reporter is made, so that it may be closed and "
            "a reused stage reports it without matplotlib: reporter.data holds the image "
            "(reporter.kwargs what was passed to savefig)"
        ),
    },
    "LatexTableReporter": {
        **dict.fromkeys(
            ("df", "kwargs"),
            "the table is written as LaTeX when the reporter is made: reporter.latex",
        ),
    },
    "assay": {
        **dict.fromkeys(("dag", "utils"), _MACHINERY),
        "docker": "use `assay run --docker` or run_experiment(docker=True)",
        "notebook": "use `assay run --notebook` or run_experiment(notebook=True)",
    },
    "assay.caching": {
        "RawJupyterNotebookCacher": (
            "cache the notebook's cells with JsonCacher, or write the file with "
            "record.get_path() and keep it with FileReferenceCacher"
        ),
    },
    "assay.experiment": {
        **dict.fromkeys(
            ("list_experiments", "list_params", "regex_lister"),
            "the experiments are the modules of experiments/ (tab completion of `assay run` "
            "lists them), and `assay params EXPERIMENT -p FILE` lists a file's parameter sets",
        ),
        "collect_parameter_sets": (
            "assay.project.load_param_sets(files, module, config) loads them, and "
            "run_experiment(..., names=, indices=) selects among them"
        ),
    },
    "assay.hashing": {
        **dict.fromkeys(
            ("hash_param_set", "compute_hash", "add_params_combo_hash"),
            "params.params_hash() gives a parameter set's hash, record.get_hash() a "
            "record's (an aggregate's too)",
        ),
        **dict.fromkeys(
            (
                "get_param_set_hash_values",
                "get_parameter_hash_value",
                "param_set_string_hash_representations",
            ),
            "record.field_hashes() gives each field's hash, and `assay why` says which "
            "field changed a result",
        ),
    },
    "assay.record": {
        "CacheAwareDict": "a record's state is assay.record.State (record.state.resolve too)",
        **dict.fromkeys(("ArtifactRepresentation", "MapArtifactRepresentation"), _ARTIFACTS),
    },
    "assay.reporting": {
        **dict.fromkeys(
            (
                "run_report",
                "render_report_head",
                "render_report_info_block",
                "render_report_toc",
                "render_report_reportables_toc",
                "render_report_all_reportables",
                "render_report_stage_map",
                "render_report_detailed_stage_maps",
                "render_report_argset_dump",
                "render_reportable",
                "prepare_report_path",
                "update_report_index",
            ),
            "a run writes its report itself; `assay report RUN` writes it again, and "
            "manager.generate_report() writes a notebook session's",
        ),
        **dict.fromkeys(
            ("map_single_svg", "map_full_svg", "render_graph"),
            "the DAG is in the report, and manager.display_stage_graph() shows it in a notebook",
        ),
    },
    "assay.store": {
        "ManagerStore": (
            "assay.store is assay's run store: assay.store.RunStore(path).list_runs(), "
            "get_run(RUN), ... (`assay ls`, `assay show RUN`)"
        ),
    },
    "assay.project": {"initialize_project": "run `assay init` in the project's folder"},
    "assay.staging": {
        **dict.fromkeys(
            ("ExecutingWithSkippedInputError", "SkippedOutput"),
            "assay skips no stage whose output a later stage needs, so nothing of that kind "
            "is raised or handed to a stage",
        ),
    },
}
"""Curifactory's public names that assay does not have, by where Curifactory has them
(a class, or a module), with what to use instead. Read by the ``__getattr__`` of those
classes and modules."""


class NotInAssayError(ImportError):
    """A module-level name of Curifactory's that assay does not have.

    An ``ImportError``, so that ``from assay.hashing import compute_hash``, written for
    Curifactory, says what to use instead (Python would replace an ``AttributeError``
    there by a bare "cannot import name")."""


def missing_attribute(owner: object, name: str) -> AttributeError:
    """The error for ``owner.name`` (an instance) when it has no such attribute: Python's,
    or, for a name of Curifactory's, one that says what to use instead."""
    kind = type(owner).__name__
    instead = next(
        (
            CURIFACTORY_ONLY[cls.__name__][name]
            for cls in type(owner).__mro__
            if name in CURIFACTORY_ONLY.get(cls.__name__, {})
        ),
        None,
    )
    if instead is None:
        return AttributeError(f"{kind!r} object has no attribute {name!r}")
    return AttributeError(f"{kind}.{name} is Curifactory's; assay has no such thing: {instead}.")


def missing_module_name(module: str, name: str) -> Exception:
    """The error for ``module.name`` when the module has no such name (see
    :func:`missing_attribute`); a :class:`NotInAssayError` for a name of Curifactory's."""
    instead = CURIFACTORY_ONLY.get(module, {}).get(name)
    if instead is None:
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    curifactory = "curifactory" + module.removeprefix("assay")
    return NotInAssayError(
        f"{curifactory}.{name} is Curifactory's; {module} has no such thing: {instead}.",
        name=module,
    )


def names_curifactory_has(module: str) -> Callable[[str], NoReturn]:
    """The ``__getattr__`` of assay's ``module``: a name it lacks raises
    :func:`missing_module_name`'s error, which for a name of Curifactory's says what to
    use instead."""

    def __getattr__(name: str) -> NoReturn:
        raise missing_module_name(module, name)

    return __getattr__
