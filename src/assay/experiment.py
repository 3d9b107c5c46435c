"""Running a whole experiment: what ``assay run`` does, as one function call.

::

    import assay
    manager = assay.run_experiment("iris", ["grid"])        # like `assay run iris -p grid`
    manager.records[0].state["score"]

The steps: load the experiment and its parameter sets, apply ``--names`` /
``--indices`` / ``--set``, open a run in the run store and a log file, let the
experiment's ``run()`` *plan* every stage call, decide from the cache what
must execute, execute it, and record the outcome (completed, failed or
interrupted) with every stage's timing and every artifact's key.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import gc
import logging
import numbers
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from assay import cache_writing
from assay.compat import names_curifactory_has
from assay.config import ProjectConfig
from assay.errors import (
    AssayError,
    ConfigError,
    ParameterError,
    PlanStops,
    ProjectError,
    RunStoreError,
    StageFailed,
    Terminated,
    UnknownStageError,
    stop_behind,
)
from assay.executor import get_executor, sigterm_as_usual_in_children
from assay.manager import ArtifactManager
from assay.params import (
    ExperimentParameters,
    apply_overrides,
    check_pinned_hashes,
    check_unique_names,
    describe,
    thaw_all,
)
from assay.project import (
    check_experiment,
    load_experiment,
    load_param_sets,
    project_root_for,
)
from assay.run_record import logs_dir_setting, record_provenance, write_run_record
from assay.runlog import run_log
from assay.runner import Observer, ProgressFile
from assay.store import ArtifactInfo, ParamSetInfo, RunStore, StageRunInfo

log = logging.getLogger("assay")
_FILE_ONLY = {"console": False}  # the caller shows these errors itself


_CURIFACTORY_POSITIONAL = (
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
    "parallel",
    "parallel_mode",
    "parallel_lock",
    "parallel_queue",
    "run_num_override",
    "run_ts_override",
    "lazy",
    "ignore_lazy",
    "report",
    "no_dag",
    "map_only",
    "hashes_only",
    "paths_only",
    "print_params",
    "no_color",
    "quiet",
    "progress",
    "plain",
    "notes",
    "all_loggers",
)
"""Curifactory's ``run_experiment`` parameters after its first two, in its order: the
meaning of positional arguments after ``experiment`` and ``param_files``."""


_OPTION_SPELLINGS = {
    "no_log": ("--no-log", "log_file=False"),
    "no_report": ("--no-report", "report=False"),
    "set": ("--set", 'overrides=["field=value"]'),
    "params": ("-p/--params", 'param_files=["grid"] (the second argument)'),
    "global_indices": ("--global-indices", "indices=[...]"),
    "cache": ("--cache", "cache_dir="),
    "overwrite_stage": ("--overwrite-stage", "overwrite_stages=[...]"),
}
"""``assay run`` options whose keyword is not the option's name: the name, spelled as a
keyword, is refused with the keyword to use."""


def _refuse_option_spellings(keywords: dict[str, Any]) -> None:
    for name in keywords:
        if name in _OPTION_SPELLINGS:
            option, keyword = _OPTION_SPELLINGS[name]
            raise TypeError(
                f"run_experiment() got an unexpected keyword argument {name!r}: "
                f"`assay run {option}` is {keyword} here."
            )


def _one_or_more(value: Any) -> list[Any] | None:
    """A single parameter file, name, index, override, stage or pattern as a list of one
    (``param_files="grid"`` is ``["grid"]``, not the files ``g``, ``r``, ``i``, ``d``),
    with paths as strings (``Path("params/grid.py")``); ``None`` as given."""
    if isinstance(value, (str, os.PathLike, int)) and not isinstance(value, bool):
        value = [value]
    if value is None:
        return None
    return [os.fspath(item) if isinstance(item, os.PathLike) else item for item in value]


def _curifactory_positional(
    given: dict[str, Any], positional: tuple, keywords: dict[str, Any]
) -> dict[str, Any]:
    """``run_experiment``'s keyword arguments for a call with Curifactory's positional
    arguments after the first two: each under its Curifactory name (assay's where it is
    the same), skipped when ``None`` (each one's "not given"), with ``keywords``."""
    import inspect

    if len(positional) > len(_CURIFACTORY_POSITIONAL):
        raise TypeError(
            f"run_experiment() takes at most {2 + len(_CURIFACTORY_POSITIONAL)} positional "
            f"arguments but {2 + len(positional)} were given"
        )
    defaults = {name: p.default for name, p in inspect.signature(run_experiment).parameters.items()}
    arguments = dict(given)
    curifactory = dict(keywords)
    for name, value in zip(_CURIFACTORY_POSITIONAL, positional):
        if value is None:
            continue
        if name in arguments:  # the same name in assay (dry, prefix, lazy, ...)
            twice = arguments[name] != defaults[name]
            arguments[name] = value
        else:
            twice = name in curifactory
            curifactory[name] = value
        if twice:
            raise TypeError(f"run_experiment() got multiple values for argument {name!r}")
    return {**arguments, **curifactory}


def run_experiment(
    experiment: str | ModuleType | None = None,
    param_files: Sequence[str] | None = None,
    *curifactory_positional: Any,
    param_sets: Sequence[Any] | None = None,
    names: Sequence[str] | None = None,
    indices: Sequence[int] | None = None,
    overrides: Sequence[str] | None = None,
    overwrite: bool = False,
    overwrite_stages: Sequence[str] | None = None,
    dry: bool = False,
    dry_cache: bool = False,
    prefix: str | None = None,
    cache_dir: str | Path | None = None,
    lazy: bool = False,
    ignore_lazy: bool = False,
    notes: str | None = None,
    log_file: bool = True,
    project_root: str | Path | None = None,
    command: str | None = None,
    observer: Observer | None = None,
    verbose: bool = False,
    parallel: int | None = None,
    executor: str | None = None,
    dask_address: str | None = None,
    report: bool = True,
    store_full: bool = False,
    store_full_include: Sequence[str] = (),
    notebook: bool = False,
    docker: bool = False,
    **curifactory_arguments: Any,
) -> ArtifactManager:
    """Run an experiment end to end and return its manager.

    Args:
        experiment: a module name in ``experiments/``, a path to a ``.py``
            file, or an imported module with a ``run(param_sets, manager)``.
        param_files: parameter files (names in ``params/`` or paths); without
            them the experiment's own ``get_params()`` is used.
        param_sets: parameter sets to use directly instead of files.
        names: run only the parameter sets with these names.
        indices: run only the parameter sets at these positions.
        overrides: ``"field=value"`` strings applied to every set (``--set``).
        overwrite: recompute every stage.
        overwrite_stages: names of stages to recompute.
        dry: plan and decide only; nothing is executed or written. Where ``run()``
            reads a result that is not cached, the plan stops (``.plan_stops`` says
            why) and what was planned before stands.
        dry_cache: execute, read the cache, but never write to it.
        prefix: file artifacts under this name in ``by-name/``.
        cache_dir: use another cache folder.
        lazy: treat every output as ``Lazy``.
        ignore_lazy: treat ``Lazy`` outputs as ordinary ones.
        notes: free text recorded with the run.
        log_file: write the run's console log to ``logs/``; ``False`` is ``--no-log``
            (the run's record, ``logs/RUN_ID.json``, is written either way).
        project_root: the project folder (default: found from the cwd).
        command: the command line to record (default: the Python process's own,
            ``python script.py ...`` or ``python -c CODE``: ``sys.orig_argv``).
        observer: progress hooks (see :class:`assay.runner.Observer`).
        verbose: log every stage run.
        parallel: run stages on this many local worker processes.
        executor: ``"serial"`` (default), ``"process"`` (what ``parallel``
            selects) or ``"dask"``.
        dask_address: the scheduler of an existing Dask cluster (with
            ``executor="dask"``); without it a local cluster is started.
        report: write the run's HTML report in ``reports/`` and rebuild the
            index of runs (also after a failure); ``False`` is ``--no-report`` (an
            index already there is rebuilt all the same: it lists the run, marked as
            having no report).
        store_full: after a completed run, export it to ``data/runs/RUN_ID/``
            (see :mod:`assay.export.full`); ``--store-full``.
        store_full_include: glob patterns of files to put in that export's code
            snapshot although git ignores them or they look like secrets.
        notebook: after a completed run, write a notebook that reloads its
            artifacts (``--notebook``; see :mod:`assay.export.notebook`).
        docker: after a completed run, export it and write a Docker build context
            for it, built if Docker runs here (``--docker``).
        *curifactory_positional: Curifactory's positional arguments after the first
            two, in its order (``overwrite_override``, ``cache_dir_override``, ``mngr``,
            ``log``, ``log_debug``, ``dry``, ``dry_cache``, ``store_full``, ...), each
            taken as if given by its Curifactory name (``None`` as not given). assay's
            own arguments after ``param_files`` are keyword-only.
        **curifactory_arguments: Curifactory's names for these arguments
            (``param_set_names``, ``stage_overwrites``, ``overwrite_override``,
            ``log``, ``build_notebook``, ``no_dag``...), so that a script written for
            Curifactory runs unchanged (see :mod:`assay.compat`).

    Returns:
        The :class:`~assay.ArtifactManager`: ``.records`` with their states,
        ``.plan`` with every stage run's status, ``.run_info`` (the run-store
        entry; ``None`` for a dry run) and ``.results`` (what ``run()``
        returned).

    Raises:
        AssayError: bad input (its message says what and where); a stage's own
            exception arrives as :class:`~assay.errors.StageFailed`, which is
            also an instance of the stage's exception type (``except ValueError``
            catches a stage's ``ValueError``, as with Curifactory).
    """
    if curifactory_positional:
        given = {
            k: v
            for k, v in locals().items()
            if k not in ("curifactory_positional", "curifactory_arguments")
        }
        return run_experiment(
            **_curifactory_positional(given, curifactory_positional, curifactory_arguments)
        )
    if curifactory_arguments:
        _refuse_option_spellings(curifactory_arguments)
        given = {
            k: v
            for k, v in locals().items()
            if k not in ("curifactory_positional", "curifactory_arguments")
        }
        from assay.compat import translate_run_arguments

        return run_experiment(
            **translate_run_arguments(run_experiment, given, curifactory_arguments)
        )
    if experiment is None:
        raise TypeError("run_experiment() needs the experiment (a name, a path or a module).")
    param_files, names, indices, overrides, overwrite_stages, store_full_include = map(
        _one_or_more, (param_files, names, indices, overrides, overwrite_stages, store_full_include)
    )
    _refuse_in_a_starting_worker()
    store_full = store_full or docker
    if project_root is None:  # a path to another project's experiment: its project
        project_root = project_root_for(experiment)
    config = ProjectConfig.load(project_root).with_cache_dir(cache_dir)
    _check_worker_count(parallel)
    executor_name = executor or ("process" if parallel else "serial")
    if dask_address and executor_name != "dask":
        raise ConfigError("--dask-address needs --executor dask.")
    if parallel and executor_name == "serial":
        raise ConfigError(
            f"--parallel {parallel} asks for worker processes, but --executor serial runs "
            "every stage in this process. Leave out one of them (--parallel alone uses "
            "--executor process)."
        )
    options: dict[str, Any] = {"workers": parallel} if parallel else {}
    if executor_name == "dask":
        options["address"] = dask_address
    with _Workers(None if dry else executor_name, options, config) as workers:
        module = (
            experiment
            if isinstance(experiment, ModuleType)
            else load_experiment(experiment, config)
        )
        if isinstance(experiment, ModuleType):
            check_experiment(module)  # as load_experiment checks a file it imports
        workers.warm_up(module)
        experiment_name = _experiment_name(experiment, module, config)
        sets_given = param_sets is not None
        if param_sets is None:
            param_sets = load_param_sets(list(param_files or []), module, config)
            workers.warm_up_params(param_sets, module)
        selected = select(list(param_sets), names=names, indices=indices)
        if overrides:
            selected = apply_overrides(selected, list(overrides))
        check_unique_names(selected)
        check_pinned_hashes(selected)
        if overwrite and not sets_given:
            _mark_overwritten(selected)

        manager = ArtifactManager(
            experiment_name,
            dry=dry,
            dry_cache=dry_cache,
            prefix=prefix,
            lazy=lazy,
            ignore_lazy=ignore_lazy,
            notes=notes,
            overwrite=overwrite,
            overwrite_stages=list(overwrite_stages or ()),
            run_line=command or shlex.join(sys.orig_argv),
            config=config,
        )
        if observer is not None:
            manager.runner.observer = observer
        # Before anything runs (or is planned: a plan reads the cache, which a file in its
        # place would turn into an error in the experiment's run()).
        manager.cache.check_usable(write=not (dry or dry_cache))
        if dry:
            _plan(manager, module, selected)  # nothing frozen: the plan is the caller's
            return manager
        _check_overwrite_stages_before_the_run(manager, module, selected)
        # The run's log and progress file go to logs/, its report to reports/, its exports
        # to data/runs/, its record to the run store: a folder that cannot be made is said
        # now, before the run begins.
        config.make_folders(
            "store_path",
            "logs_dir",
            *(["reports_dir"] if report else []),
            *(["runs_dir"] if store_full or notebook else []),
        )

        store = RunStore(config.store_path)
        store.settle_abandoned_runs()
        manager.run_info = store.begin_run(
            experiment_name,
            command=manager.run_line,
            notes=notes,
            param_names=[p.name for p in selected],
            config={
                "overrides": list(overrides or []),
                "executor": executor_name,
                "parallel": parallel,
                "dask_address": dask_address,
                # Where the command was typed, if not the project's folder: its paths are
                # relative to that folder.
                "cwd": None if Path.cwd() == config.root else os.getcwd(),
                "overwrite": overwrite,
                "overwrite_stages": sorted(overwrite_stages or []),
                "dry_cache": dry_cache,
                "lazy": lazy,
                "ignore_lazy": ignore_lazy,
                "prefix": manager.prefix,
                "cache_dir": config.cache_location,
                "logs_dir": logs_dir_setting(config),  # where its log is, set as it was
                "experiment_file": getattr(module, "__file__", None),
                "experiment": experiment if isinstance(experiment, str) else None,
                "param_files": [_from_root(p, config.root) for p in param_files or []],
                "param_sets_given": sets_given,
                "names": list(names or []),
                "indices": list(indices or []),
            },
        )

        def keep_provenance() -> None:  # git and packages: while workers start on the stages
            manager.run_info = record_provenance(store, manager.run_info, config)

        manager.runner.while_waiting.append(keep_provenance)
        try:  # a failure before the run's log exists: recorded as failed
            log_path = config.logs_dir / f"{manager.run_id}.log" if log_file else None
            config.make_folders("logs_dir")
            if log_path is not None:
                log_path.open("a", encoding="utf-8").close()  # run_log appends to it
            progress = ProgressFile(
                config.logs_dir / f"{manager.run_id}.progress.json", manager.runner.observer
            )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                stopped = isinstance(exc, KeyboardInterrupt)
                store.finish_run(
                    manager.run_id,
                    "interrupted" if stopped else "failed",
                    error=(
                        "Interrupted before it began."
                        if stopped
                        else f"The run could not begin: {exc}"
                        if isinstance(exc, AssayError)
                        else f"The run could not begin: {type(exc).__name__}: {exc}"
                    ),
                )
            store.close()
            raise
        manager.runner.observer = progress
        status, error = "failed", None
        unrecorded: RunStoreError | None = None
        with (
            run_log(log_path, verbose=verbose) as written_log,
            cache_writing.held_for_the_run(),
            _plan_set_aside() as set_aside,
            _sigterm_stops_the_run(),
        ):
            log.info(
                "Run %d (%s): experiment %s, %d parameter set(s)",
                manager.run_number,
                manager.run_id,
                experiment_name,
                len(selected),
            )
            if not selected and not sets_given:
                log.warning(
                    "get_params() returned no parameter sets: the experiment's run() gets an "
                    "empty list."
                )
            try:
                with _stops_unwrapped():
                    # Hashes every set: one that cannot be hashed fails the run here, in its log.
                    store.record_param_sets(
                        manager.run_id,
                        [
                            ParamSetInfo(
                                p.name, manager.params_hash(p), _qualified(type(p)), describe(p)
                            )
                            for p in selected
                        ],
                    )
                    _plan(manager, module, selected, set_aside, workers)
                    remaining = manager.runner.unsettled()
                    to_run = sum(1 for n in remaining if n.status == "run")
                    if to_run:
                        workers.fit(to_run)
                        manager.runner.executor = workers.take(manager.runner.executor)
                    else:
                        workers.stop()  # everything is cached: no worker is needed
                    manager.runner.execute(remaining)
                    manager.runner.restore_reportables(manager.plan.nodes)
                status = "completed"
            except KeyboardInterrupt as exc:
                status, error = (
                    "interrupted",
                    (
                        "Stopped by SIGTERM (a batch system's time limit, or kill)."
                        if isinstance(exc, Terminated)
                        else "Interrupted by the user (Ctrl-C)."
                    ),
                )
                kept = (
                    "--dry-cache cached nothing" if dry_cache else "finished artifacts stay cached"
                )
                log.warning("Run %d interrupted; %s.", manager.run_number, kept)
                _name_run_files(exc, log_path, config, manager, report)
                raise
            except StageFailed as exc:
                error = str(exc)
                worker_traceback = getattr(exc.original, "traceback_text", None)
                if worker_traceback:  # as the worker formatted it, with chained causes
                    log.error("%s\n%s", exc, worker_traceback.rstrip(), extra=_FILE_ONLY)
                else:
                    log.error("%s", exc, exc_info=exc.original, extra=_FILE_ONLY)
                _name_run_files(exc, log_path, config, manager, report)
                raise
            except AssayError as exc:
                error = str(exc)
                log.error("%s", exc, extra=_FILE_ONLY)
                _name_run_files(exc, log_path, config, manager, report)
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.error("The run failed", exc_info=exc, extra=_FILE_ONLY)  # raised as it is
                _name_run_files(exc, log_path, config, manager, report)
                raise
            except SystemExit as exc:  # the experiment's own code, outside any stage
                error = (
                    f"The experiment's code called sys.exit({exc.code!r}) outside a stage, "
                    "so the run stopped. Raise an exception to stop a run with a message."
                )
                log.error("%s", error, extra=_FILE_ONLY)
                failure = ProjectError(error)
                _name_run_files(failure, log_path, config, manager, report)
                raise failure from exc
            finally:
                with _stops_unwrapped():
                    manager.runner.do_while_waiting()  # if the run never waited for workers
                manager.runner.executor.shutdown()
                manager.runner.drop_claims()
                manager.runner.observer = progress.inner
                progress.close()
                incomplete = written_log.incomplete() if written_log else None
                if incomplete:
                    error = f"{error}\n{incomplete}" if error else incomplete
                try:
                    with _collector_paused():  # rows for every stage run: nothing cyclic
                        _record_metrics(store, manager)
                        _record_outcome(store, manager, status, error)
                        write_run_record(store, config, manager.run_id)
                except RunStoreError as exc:  # locked by another program for too long, full
                    kept = (
                        "With --dry-cache it wrote nothing to the cache: what it computed is "
                        "computed again next time"
                        if dry_cache
                        else "The artifacts its stages finished are cached: run the same "
                        "command again to record a run that reuses them"
                    )
                    unrecorded = RunStoreError(
                        f"Run {manager.run_number} ended ({status}) but could not be recorded "
                        f"in the run store: {exc} {kept}. No report was written."
                    )
                    unrecorded.__cause__ = exc
                    # Raised below for the command line to show, unless the run's own error
                    # (a run not completed) is on its way: then the console hears of it here.
                    log.error("%s", unrecorded, extra=_FILE_ONLY if status == "completed" else {})
                log.info(
                    "Run %d %s: %s",
                    manager.run_number,
                    status,
                    summarize(manager.plan.nodes, status),
                )
                unexported = _unexported(manager.run_number, status, store_full, notebook, docker)
                if unexported:
                    log.warning("%s", unexported)
                store.close()
                if report and unrecorded is None:
                    from assay.report import write_report

                    write_report(manager)
                elif unrecorded is None:  # --no-report: the index still lists every run
                    from assay.report import refresh_index

                    refresh_index(config)
        if unrecorded is not None:
            _name_run_files(unrecorded, log_path, config, manager, report=False)
            raise unrecorded
        if store_full:
            from assay.export.full import export_run

            manager.exports["full"] = export_run(config, manager.run_id, include=store_full_include)
        if notebook:
            from assay.export.notebook import write_notebook

            manager.exports["notebook"] = write_notebook(config, manager.run_id)
            log.info("Notebook: %s", manager.exports["notebook"])
        if docker:
            from assay.export.docker import build_image, export_docker_context

            context = export_docker_context(config, manager.run_id)
            manager.exports["docker"] = (context.folder, build_image(context)[1])
            log.info("Docker build context: %s. %s", *manager.exports["docker"])
        return manager


def _unexported(
    number: int, status: str, store_full: bool, notebook: bool, docker: bool
) -> str | None:
    """What to say when a run asked to be exported (``--store-full``, ``--notebook``,
    ``--docker``) did not complete: exports are written for a completed run only."""
    asked = [
        (flag, command)
        for flag, command, on in (
            ("--store-full", "full", store_full and not docker),
            ("--docker", "docker", docker),
            ("--notebook", "notebook", notebook),
        )
        if on
    ]
    if status == "completed" or not asked:
        return None
    flags = " and ".join(flag for flag, _ in asked)
    commands = " and ".join(f"`assay export {command} {number}`" for _, command in asked)
    return (
        f"Run {number} {status}, so {flags} exported nothing (exports are written after a "
        f"completed run). {commands} export{'s' if len(asked) == 1 else ''} it as it is."
    )


class _Workers:
    """The run's executor, started before the experiment is even loaded.

    Worker processes (or a Dask cluster) take a while to start and to import
    the project; starting them first lets that overlap with loading, planning
    and recording the run. If the run then needs no worker (everything is
    cached, or it failed early), they are stopped at once.
    """

    def __init__(self, name: str | None, options: dict, config: ProjectConfig):
        self.executor = get_executor(name, **options) if name not in (None, "serial") else None
        self.root = str(config.root)
        if self.executor is not None:
            from assay import remote

            remote.import_machinery()  # before the workers fork: they inherit it
            self.executor.warm_up(remote.start_worker, not self.executor.own_workers)

    def warm_up(self, module: ModuleType) -> None:
        """Have each worker import the experiment now."""
        if self.executor is not None:
            from assay import remote
            from assay.worker_code import project_sources

            module_file = getattr(module, "__file__", None)
            sources, cwd = project_sources(self.root), os.getcwd()
            self.executor.warm_up(
                remote.warm_up, module.__name__, module_file, self.root, sources, cwd
            )

    def warm_up_params(self, param_sets: Sequence[Any], experiment: ModuleType) -> None:
        """Have each worker import the parameter files whose classes the parameter sets
        are of, where ``import`` cannot find them by name (files outside the project):
        a worker unpickles the sets of its tasks. The others it imports by name."""
        if self.executor is None:
            return
        from assay import remote
        from assay.project import UNIMPORTABLE_PREFIX
        from assay.worker_code import project_sources

        names = dict.fromkeys(type(p).__module__ for p in param_sets)
        modules = [
            sys.modules[name]
            for name in names
            if name.startswith(UNIMPORTABLE_PREFIX)
            and name != experiment.__name__
            and getattr(sys.modules.get(name), "__file__", None)
        ]
        if modules:
            sources, cwd = project_sources(self.root), os.getcwd()
            for module in modules:
                self.executor.warm_up(
                    remote.warm_up, module.__name__, module.__file__, self.root, sources, cwd
                )

    def fit(self, stage_runs: int) -> None:
        """The run is planned, with ``stage_runs`` stage runs to execute: start no more
        workers than that, if they have not started (see :meth:`Executor.fit`)."""
        if self.executor is not None:
            asked = getattr(self.executor, "asked", None)
            self.executor.fit(stage_runs)
            if asked is not None and self.executor.workers < asked:
                log.info(
                    "Starting %d worker process%s, not %d: the run has %d stage run%s to execute.",
                    self.executor.workers,
                    "" if self.executor.workers == 1 else "es",
                    asked,
                    stage_runs,
                    "" if stage_runs == 1 else "s",
                )

    def take(self, default: Any) -> Any:
        """The executor, for the run to use (``default`` if there is none); what the
        researcher should know about its workers is logged as it is taken (the run's log
        is open by then)."""
        executor, self.executor = self.executor, None
        for note in executor.notes() if executor is not None else ():
            log.warning("%s", note)
        return executor or default

    def stop(self) -> None:
        """Stop the workers at once (the run does not need them)."""
        if self.executor is not None:
            executor, self.executor = self.executor, None
            executor.abort()

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _from_root(name: str, root: Path) -> str:
    """A parameter file as the run record keeps it: a path given from a subfolder
    (``../params/grid.py``) relative to the project root, so that the run can be
    reproduced from its export; a name (``grid``) as given."""
    path = Path(name)
    if not path.is_file():
        return str(name)
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:  # outside the project: as given (reproduce says it is not exported)
        return str(path.resolve())


def _check_worker_count(parallel: Any) -> None:
    """Refuse a ``parallel=`` that is no number of worker processes (0 or None: serially).

    ``parallel=-1``, joblib's "every core", ran one worker without a word.
    """
    whole = isinstance(parallel, numbers.Integral) and not isinstance(parallel, bool)
    if parallel is None or (whole and parallel >= 0):
        return
    from assay.executor import usable_cores

    raise ConfigError(
        f"parallel={parallel!r} is not a number of worker processes: give a whole number, "
        f"such as parallel={usable_cores()} (the CPU cores this process may use), or "
        "leave it out to run serially."
    )


def _refuse_in_a_starting_worker() -> None:
    """Stop a run started by a worker process that is importing the researcher's script.

    A spawned worker (a Dask local cluster's, or ``--parallel`` where forking is
    unsafe) runs the script that started the run once more, from the top; a run
    started there would start a cluster of its own, whose workers do the same.
    """
    multiprocessing = sys.modules.get("multiprocessing")  # a spawned worker has it
    if multiprocessing is not None and getattr(
        multiprocessing.current_process(), "_inheriting", False
    ):
        raise ProjectError(
            "run_experiment() was called by a worker process while it started: worker "
            "processes import the script that started the run again, from the top. Call "
            'run_experiment() under `if __name__ == "__main__":` in that script.'
        )


def _plan(
    manager: ArtifactManager,
    module: ModuleType,
    param_sets: list,
    set_aside: bool = False,
    workers: _Workers | None = None,
) -> None:
    """Let the experiment plan its stage calls, then decide what must execute.

    The collector pauses while the experiment plans; with ``set_aside`` the plan
    is then frozen, for :func:`_plan_set_aside` to unfreeze when the run ends.
    Stage runs that ``run()`` needs results of while it plans execute then, on the
    run's ``workers`` if it has some.
    """
    runner = manager.runner
    runner.planning = True
    has_workers = workers is not None and workers.executor is not None
    runner.claim_workers = workers.take if has_workers else None
    try:
        with _collector_paused(freeze=set_aside) as collecting:
            runner.collect_while_executing = collecting
            manager.results = module.run(param_sets, manager)
    except PlanStops as stop:  # a plan that executes nothing: what it has so far stands
        manager.plan_stops = str(stop)
        log.info("%s", stop)
    finally:
        runner.planning = False
        runner.claim_workers = None
        thaw_all()
    _check_overwrite_stages(manager)
    runner.decide(runner.unsettled())
    runner.observer.planned(manager.plan)


def _mark_overwritten(param_sets: Sequence[Any]) -> None:
    """Set ``overwrite=True`` on the parameter sets of a run made with ``--overwrite``, as
    Curifactory does: a stage that reads ``record.params.overwrite`` sees the flag. Only
    for sets made for this run from parameter files; sets passed in from Python are yours
    and stay as they are (``overwrite`` is not part of a set's hash)."""
    for params in param_sets:
        if isinstance(params, ExperimentParameters):
            params.overwrite = True


def _check_overwrite_stages_before_the_run(
    manager: ArtifactManager, module: ModuleType, param_sets: list
) -> None:
    """Refuse ``--overwrite-stage NAME`` before the run begins (nothing executed, no run
    recorded) when no stage called in the run has that name: a mistyped name, or a stage
    the run does not call (only for parameter sets left out with ``-n``/``-i``, or never).

    A plan made as ``--dry`` of the same parameter sets (executing nothing, writing
    nothing) tells, stages that ``run()`` makes as it plans included. A plan that stops
    short, or fails (the run meets that again and records it), leaves the question to the
    check after the run's own plan.
    """
    if not manager.overwrite_stages:
        return
    trial = ArtifactManager(
        manager.experiment_name,
        dry=True,
        prefix=manager.prefix,
        overwrite_stages=sorted(manager.overwrite_stages),
        config=manager.config,
    )
    try:
        _plan(trial, module, param_sets)
    except UnknownStageError:
        raise
    except Exception:  # the run's own plan meets it again, and records it
        pass


def _check_overwrite_stages(manager: ArtifactManager) -> None:
    """Stop once the run is planned if ``--overwrite-stage`` names no stage of it (it
    would be ignored: nothing recomputed). A plan that stopped short cannot tell."""
    functions = {node.spec.name for node in manager.plan.nodes}
    unknown = sorted(set(manager.overwrite_stages) - set(functions))
    if unknown and manager.plan_stops is None:
        close = [difflib.get_close_matches(n, list(functions), n=1) for n in unknown]
        hints = [
            f"{n!r} (did you mean {c[0]!r}?)" if c else repr(n) for n, c in zip(unknown, close)
        ]
        raise UnknownStageError(
            f"--overwrite-stage {', '.join(hints)}: no stage called in this run has that "
            f"name. Its stages: {', '.join(sorted(functions)) or 'none'}."
        )


@contextlib.contextmanager
def _stops_unwrapped() -> Iterator[None]:
    """A Ctrl-C or SIGTERM that Python wrapped in another error (one that lands in an
    import's class body arrives as a ``RuntimeError``) stops the run as it should."""
    try:
        yield
    except Exception as exc:
        stop = stop_behind(exc)
        if stop is None:
            raise
        raise stop from exc


@contextlib.contextmanager
def _sigterm_stops_the_run() -> Iterator[None]:
    """SIGTERM (a SLURM or PBS job's time limit, ``kill``) stops the run as Ctrl-C does.

    By default it would end the process at once: the run left ``running`` in the
    run store for good, and ``--parallel`` workers left behind. The first SIGTERM
    raises :class:`~assay.errors.Terminated` instead; a second one acts as usual.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, previous)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    sigterm_as_usual_in_children(stop)  # a stage's multiprocessing.Pool: not the run's
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is stop:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _plan_set_aside() -> Iterator[bool]:
    """For a run: whether its plan may be frozen; unfreezes it when the run ends, however.

    The plan lives for the whole run: 5 objects or more per stage run, half a million
    for 10,000 parameter sets. Every full collection of Python's cyclic garbage
    collector walks all of them again, which took a fifth of such a run, and none of
    them is garbage. So the collector pauses while the experiment plans, and what
    exists then is frozen (:func:`gc.freeze`): later collections during the run skip
    it. The run's end unfreezes it, and any cyclic garbage the planning left is
    collected as usual from then on; objects that are no longer referenced are freed
    at once, as ever. A program that froze objects itself keeps its own arrangement:
    nothing is frozen, or unfrozen, for it.
    """
    ours = not gc.get_freeze_count()
    try:
        yield ours
    finally:
        if ours:
            gc.unfreeze()


@contextlib.contextmanager
def _collector_paused(freeze: bool = False) -> Iterator[bool]:
    """No cyclic garbage collection in this block (the collector is left as it was; the
    block gets whether it was on); with ``freeze``, what exists at its end is frozen
    before the collector resumes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield enabled
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def select(
    param_sets: list, names: Sequence[str] | None = None, indices: Sequence[int] | None = None
) -> list:
    """The parameter sets picked by ``--names`` and ``--indices`` (all if neither is given):
    those named, in the parameter files' order, then those at the positions given.

    The names of all the sets must be unique first (:func:`check_unique_names`): with
    two sets of one name, ``--names`` could pick only one of them, silently.
    """
    check_unique_names(param_sets)
    if not names and not indices:
        return param_sets
    by_name = {p.name: p for p in param_sets}
    for name in names or ():
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"No parameter set named {name!r}.{hint} Available: {', '.join(list(by_name)[:20])}"
                + (" ..." if len(by_name) > 20 else "")
            )
    # In the parameter files' order, as Curifactory's --names keeps it: `-n b -n a` and
    # `-n a -n b` are one run (an aggregate over them is not computed again for the other).
    chosen = [p for p in param_sets if p.name in set(names or ())]
    for index in indices or ():
        if not -len(param_sets) <= index < len(param_sets):
            raise ParameterError(_out_of_range(index, len(param_sets)))
        chosen.append(param_sets[index])
    unique: dict[int, Any] = {}
    for p in chosen:
        unique.setdefault(id(p), p)
    return list(unique.values())


def _out_of_range(index: int, count: int) -> str:
    """What ``--indices`` says of a position past the sets: which positions there are, from
    either end, and how a range reads (``2-10`` asked for 2 to 9: the index said may be
    one the user never typed)."""
    if not count:
        return f"Index {index} (--indices / --global-indices) is out of range: there are no parameter sets."
    return (
        f"Index {index} (--indices / --global-indices) is out of range: there are {count} "
        f"parameter sets (0 to {count - 1}), or -{count} to -1 counting from the end. A "
        f"range A-B picks A to B-1: 0-{count} picks all of them."
    )


def summarize(nodes: list, run_status: str | None = None) -> str:
    """``"12 executed, 30 cached, 2 not needed"``: a one-line account of a run's stages
    (of an interrupted one if ``run_status`` says so: a stage Ctrl-C stopped is no failure)."""
    counts: dict[str, int] = {}
    for node in nodes:
        status = _stopped_or(node.status, run_status)
        counts[status] = counts.get(status, 0) + 1
    order = ["executed", "cached", "unneeded", "failed", "run", "running", "planned"]
    words = {
        "unneeded": "not needed",
        "run": "not started",
        "planned": "not started",
        "running": "interrupted",
    }
    parts = [f"{counts[s]} {words.get(s, s)}" for s in order if counts.get(s)]
    return ", ".join(parts) or "no stages"


def _stopped_or(status: str, run_status: str | None) -> str:
    """A stage run's plan status, with ``"running"`` for one the run's stop abandoned.

    Executed in this process when Ctrl-C came, it ends ``"failed"`` in the plan; sent to a
    worker (executing there, or queued) when the run stopped, it stays ``"running"``.
    """
    return "running" if status == "failed" and run_status == "interrupted" else status


_STAGE_STATUS = {
    "executed": "executed",
    "cached": "cached",
    "failed": "failed",
    "running": "interrupted",
}
"""A stage run's status in the run store, from its status in the plan (after
:func:`_stopped_or`). ``"running"`` is a stage run the run's stop abandoned (executing, or
sent to a worker, when a stage failed elsewhere or the run was interrupted): only the
stage that raised is ``"failed"``. Any other never started: ``"skipped"``."""


def record_session(manager: ArtifactManager) -> Path | None:
    """Record what a manager used in a notebook has run so far as a run of the run store,
    and write its report (see :meth:`ArtifactManager.generate_report`)."""
    from assay.metrics import record_run_metrics
    from assay.report import write_report

    config = manager.config
    sets = session_param_sets(manager)
    with RunStore(config.store_path) as store:
        if manager.run_info is None:
            manager.run_info = store.begin_run(
                manager.experiment_name,
                command=manager.run_line or "(interactive session)",
                notes=manager.notes,
                param_names=list(sets),
                started=manager._made,  # the session's start, not this call's
                config={
                    "interactive": True,
                    "prefix": manager.prefix,
                    "cache_dir": config.cache_location,
                    "dry_cache": manager.dry_cache,
                    "lazy": manager.lazy,
                    "ignore_lazy": manager.ignore_lazy,
                },
            )
            manager.run_info = record_provenance(store, manager.run_info, config)
        else:  # reported before: recorded again, with what ran since
            store.forget_details(manager.run_id)
            store.set_param_names(manager.run_id, list(sets))
        store.record_param_sets(
            manager.run_id,
            [
                ParamSetInfo(p.name, manager.params_hash(p), _qualified(type(p)), describe(p))
                for p in sets.values()
            ],
        )
        record_run_metrics(store, manager)
        # A stage that failed and was then called again and ran (fixed in a later cell)
        # does not make the session a failed run.
        later = {
            (n.spec.name, n.record_label): i
            for i, n in enumerate(manager.plan.nodes)
            if n.status in _MADE_OR_REUSED
        }
        failed = [
            n
            for i, n in enumerate(manager.plan.nodes)
            if n.status == "failed" and later.get((n.spec.name, n.record_label), -1) < i
        ]
        error = (
            failed[0].error
            or f"Stage {failed[0].spec.name!r} failed for parameter set {failed[0].record_label!r}."
            if failed
            else None
        )
        finished = [n.started + (n.duration or 0.0) for n in manager.plan.nodes if n.started]
        ended = (
            datetime.datetime.fromtimestamp(max(finished), tz=datetime.timezone.utc)
            if finished
            else None
        )  # the last stage's end, not this call's
        _record_outcome(store, manager, "failed" if failed else "completed", error, ended)
        write_run_record(store, config, manager.run_id)
    return write_report(manager, raise_errors=True)


def session_param_sets(manager: ArtifactManager) -> dict[str, Any]:
    """The parameter sets of a notebook session's records, by name, in the order first used.

    A notebook's cell is often run again with new values under the same name: that name
    then stands for the values used last, as the metrics it logged (their final values)
    and the record a later cell reads do. The values it replaces are named in a warning.
    """
    sets: dict[str, Any] = {}
    for record in manager.records:
        params = record.params
        if params is None or record.is_aggregate:
            continue
        earlier = sets.get(params.name)
        if earlier is not None and manager.params_hash(earlier) != manager.params_hash(params):
            log.warning(
                "Parameter set %r was used with other values earlier in this session (%s): "
                "the run records the last ones, and the stage runs of both under that name. "
                "Give each variant a name of its own to keep them apart.",
                params.name,
                _changed_values(earlier, params),
            )
        sets[params.name] = params
    return sets


def _changed_values(before: Any, after: Any) -> str:
    """``lr: 0.1 -> 0.2, depth: 3 -> absent``: the fields whose shown values differ."""
    old, new = describe(before), describe(after)
    changed = [
        f"{key}: {old.get(key, 'absent')!r} -> {new.get(key, 'absent')!r}"
        for key in dict.fromkeys([*old, *new])
        if key != "name" and old.get(key, "absent") != new.get(key, "absent")
    ]
    return ", ".join(changed) or "values that hash differently"


def _record_metrics(store: RunStore, manager: ArtifactManager) -> None:
    """Write the run's metrics to the run store, if a stage logged any.

    A :class:`~assay.metrics.Metrics` reportable exists only once its module is
    imported (by ``record.log_metric``, or by unpickling cached or sent reportables),
    so a run without one skips importing that module (5 ms).
    """
    with contextlib.suppress(Exception):  # record_run_metrics says why, if it matters
        manager.runner.restore_reportables(manager.plan.nodes)
    if "assay.metrics" in sys.modules:
        from assay.metrics import record_run_metrics

        record_run_metrics(store, manager)


def _name_run_files(
    exc: BaseException, log_path: Path | None, config: Any, manager: Any, report: bool
) -> None:
    """Note on a run's exception where its log and report are (written as it ends), for
    the command line to show under its message."""
    report_path = config.reports_dir / manager.run_id / "index.html" if report else None
    exc.assay_run_files = (log_path, report_path)  # type: ignore[attr-defined]


_MADE_OR_REUSED = frozenset({"executed", "cached", "unneeded"})
"""Stage run statuses whose cached outputs the run made or took from the cache."""


def _stage_code(nodes: list) -> dict[str, dict[str, str]]:
    """``{stage: {function or constant: digest}}``: the code each stage of a run had (for
    ``assay compare``, once gc has removed the sidecars that record it too)."""
    code: dict[str, dict[str, str]] = {}
    for node in nodes:
        if node.spec.name not in code and node.code_parts:
            code[node.spec.name] = {n: part["digest"] for n, part in node.code_parts.items()}
    return code


def _record_outcome(
    store: RunStore,
    manager: ArtifactManager,
    status: str,
    error: str | None,
    ended: datetime.datetime | None = None,
):
    stages, artifacts = [], []
    cache, root = manager.cache, manager.config.root
    inside = f"{os.path.abspath(root)}{os.sep}"
    stamps: dict[int, str] = {}  # most stage runs of a big run start in the same seconds
    for node in manager.plan.nodes:
        started = None
        if node.started:
            second = int(node.started)
            started = stamps.get(second)
            if started is None:
                started = stamps[second] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        stages.append(
            StageRunInfo(
                node.record_label,
                node.spec.name,
                _STAGE_STATUS.get(_stopped_or(node.status, status), "skipped"),
                key=node.key,
                started=started,
                duration_s=node.duration,
            )
        )
        if node.status not in _MADE_OR_REUSED:  # failed, stopped, never ran: made nothing
            continue
        for artifact in node.outputs:
            if artifact.cacher is not None and artifact.cached and node.key is not None:
                artifacts.append((node, artifact, node.status == "executed"))
    # Reused artifacts that were never loaded: their checksums are in the run store
    # (from the run that computed them), or else in their sidecars.
    unknown = [a.key for _, a, _ in artifacts if a.meta is None]
    known = store.known_checksums(unknown) if unknown else {}
    rows = []
    for node, artifact, computed in artifacts:
        meta = artifact.meta
        if meta is None and artifact.key not in known:
            meta = manager.cache.read_meta(node.key, artifact.name)
        if meta is not None:
            first = (meta.get("files") or [{}])[0]
            checksum, size, filename = first.get("checksum"), meta.get("size"), first.get("path")
        else:
            (checksum, size), filename = known[artifact.key], None
        path = cache.where(node.key, filename)
        if not cache.remote and path.startswith(inside) and os.path.normpath(path) == path:
            path = path[len(inside) :]  # what os.path.relpath gives, 5 times faster
        else:
            path = _shown(path, root, cache.remote)
        rows.append(
            ArtifactInfo(
                artifact.key,
                artifact.name,
                node.spec.name,
                node.record_label,
                path,
                checksum,
                size,
                "computed" if computed else "reused",
                f"{type(artifact.cacher).__module__}.{type(artifact.cacher).__qualname__}",
            )
        )
    store.record_stages(manager.run_id, stages)
    store.record_artifacts(manager.run_id, rows)
    store.record_stage_code(manager.run_id, _stage_code(manager.plan.nodes))
    store.finish_run(manager.run_id, status, error=error, ended=ended)
    manager.run_info = store.get_run(manager.run_number)


def _shown(path: str, root: Path, remote: bool) -> str:
    """A cache path as the run store keeps it: relative to the project, or the URL."""
    if remote:
        return path
    try:
        return os.path.relpath(path, root)
    except ValueError:  # another drive
        return path


def _experiment_name(ref: str | ModuleType, module: ModuleType, config: ProjectConfig) -> str:
    """The experiment's name in runs, the store and the cache: its module's path under
    ``experiments/`` (``subexp.example`` for ``experiments/subexp/example.py``), as
    Curifactory names it; a file elsewhere by its stem."""
    path = Path(getattr(module, "__file__", None) or "").resolve()
    try:
        inside = path.relative_to(config.experiments_dir.resolve())
    except ValueError:
        inside = None
    if inside is not None and path.suffix == ".py":
        return ".".join(inside.with_suffix("").parts)
    if isinstance(ref, ModuleType):
        return module.__name__.rsplit(".", 1)[-1]
    return Path(str(ref)).stem


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def elapsed(start: float) -> str:
    """Seconds since ``start`` (a ``time.perf_counter()`` value), formatted."""
    return f"{time.perf_counter() - start:.2f}s"


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
