"""The artifact manager: one run of an experiment, or one notebook session.

The command line creates a manager for every ``assay run``; in a notebook you
create one yourself and call stages on records directly, which then execute
at once (reusing the cache exactly as a full run would)::

    manager = assay.ArtifactManager("scratch")
    record = assay.Record(manager, Params(name="try", n_trees=10))
    train(load_data(record))
    record.state["score"]
"""

from __future__ import annotations

import contextlib
import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from assay.cache import open_cache
from assay.config import ProjectConfig
from assay.errors import ProjectError
from assay.plan import ingredients_of
from assay.runner import Runner

if TYPE_CHECKING:
    from assay.executor import Executor
    from assay.plan import Plan, StageNode
    from assay.record import Record
    from assay.reporting import Reportable
    from assay.store import RunInfo


class ArtifactManager:
    """Configuration and state of one run: records, cache, plan, run-store entry.

    Its positional arguments are Curifactory's, in Curifactory's order
    (``ArtifactManager("nb", True)`` is ``store_full=True``); assay's own
    (``overwrite``, ``overwrite_stages``, ``project_root``, ``config``,
    ``executor``) are keyword-only.

    Args:
        experiment_name: names the run; artifacts are filed under it in
            ``data/cache/by-name/`` (unless ``prefix`` is given).
        store_full: :meth:`generate_report` also exports the run (as
            ``--store-full``).
        dry: plan only; execute and write nothing.
        dry_cache: execute, read the cache, but never write to it.
        prefix: file artifacts under this name instead of the experiment's.
        run_line: the command line that started the run, for provenance.
        lazy: treat every output as ``Lazy`` (outputs without a cacher get a
            ``PickleCacher``), to keep memory low.
        ignore_lazy: treat ``Lazy`` outputs as ordinary ones.
        notes: free text recorded with the run.
        manager_cache_path: the folder of the run store (``assay.db``).
        cache_path: the cache folder or fsspec URL (default: the project's ``data/cache``).
        runs_path, logs_path, reports_path: move those folders.
        overwrite: recompute every stage.
        overwrite_stages: names of stages to recompute.
        project_root: the project folder (default: found from the cwd).
        config: the project's configuration (default: loaded from ``project_root``).
        executor: where stage runs execute (default: serially, here).

    ``parallel_lock``, ``parallel_mode``, ``notebooks_path``, ``report_css_path``,
    ``status_override``, ``suppress_live_log``, ``live_log_debug`` and
    ``disable_non_cf_loggers`` concern Curifactory's own machinery and change
    nothing here; they are taken so that its notebooks run.
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        store_full: bool = False,
        dry: bool = False,
        dry_cache: bool = False,
        prefix: str | None = None,
        run_line: str = "",
        parallel_lock: Any = None,
        parallel_mode: bool = False,
        lazy: bool = False,
        ignore_lazy: bool = False,
        notes: str | None = None,
        manager_cache_path: str | Path | None = None,
        cache_path: str | Path | None = None,
        runs_path: str | Path | None = None,
        logs_path: str | Path | None = None,
        notebooks_path: str | Path | None = None,
        reports_path: str | Path | None = None,
        report_css_path: str | Path | None = None,
        status_override: str | None = None,
        suppress_live_log: bool = False,
        live_log_debug: bool = False,
        disable_non_cf_loggers: bool = True,
        *,
        overwrite: bool = False,
        overwrite_stages: list[str] | None = None,
        project_root: str | Path | None = None,
        config: ProjectConfig | None = None,
        executor: Executor | None = None,
    ):
        self.config = config or ProjectConfig.load(project_root)
        if cache_path is not None:
            self.config = self.config.with_cache_dir(cache_path)
        moved = {
            "runs_dir": runs_path,
            "logs_dir": logs_path,
            "reports_dir": reports_path,
            "store_path": Path(manager_cache_path) / "assay.db" if manager_cache_path else None,
        }
        if any(moved.values()):
            import dataclasses

            root = self.config.root
            self.config = dataclasses.replace(
                self.config,
                **{k: (root / Path(v)).resolve() for k, v in moved.items() if v is not None},
            )
        if manager_cache_path and not dry:
            self.config.store_path.parent.mkdir(parents=True, exist_ok=True)
        self.store_full = store_full
        """:meth:`generate_report` also exports the run to ``data/runs/RUN_ID/``."""
        self.experiment_name = _named("experiment_name", experiment_name) or "interactive"
        self.prefix = _named("prefix", prefix) or self.experiment_name
        self.dry = dry
        self.dry_cache = dry_cache
        self.lazy = lazy
        self.ignore_lazy = ignore_lazy
        self.notes = notes
        self.overwrite = overwrite
        self.overwrite_stages = set(overwrite_stages or ())
        self.run_line = run_line
        self.cache = open_cache(self.config)
        self.cache_path = str(self.config.cache_dir)
        """The cache folder (for a cache at a URL: the folder of this machine's copies).
        It exists from the start, as in Curifactory, unless nothing may be written
        (``dry``, ``dry_cache``)."""
        if not (dry or dry_cache):
            with contextlib.suppress(OSError):  # said with a clear message when written to
                os.makedirs(self.cache_path, exist_ok=True)
        self.records: list[Record] = []
        """Every record created on this manager, in order."""
        self.reportables: list[Reportable] = []
        """Everything stages reported, in order."""
        self.current_stage_name = ""
        """The stage executing right now ("" between stages)."""
        self.run_info: RunInfo | None = None
        """The run-store entry, once the run is recorded (``None`` in a notebook)."""
        self._run_seen: tuple[str | None, int | None] = (None, None)
        """In a worker process: the id and number of the main process's run."""
        self._param_files: list[str] = []
        """In a worker process: the main process's run's parameter files."""
        self._made = datetime.datetime.now(datetime.timezone.utc)
        self.results: Any = None
        """What the experiment's ``run()`` returned."""
        self.exports: dict[str, Any] = {}
        """What ``run_experiment(store_full=, notebook=, docker=)`` wrote after the run:
        ``"full"`` (the export folder), ``"notebook"`` (its file) and ``"docker"`` (the
        build context's folder and what building it said)."""
        self.plan_stops: str | None = None
        """Of a plan made without executing (``dry=True``): why it stops short of the
        whole run (``run()`` read a result that is not cached), or ``None``."""
        self.runner = Runner(self, executor)
        self._hashes: dict[int, tuple[Any, str]] = {}
        self._folders: dict[str, str] = {}
        """Folder name -> parameter-set name, of this manager's records (see
        :func:`assay.params.claim_folder`)."""
        self._scratch: str | None = None
        self._git: tuple[str, bool] | None = None
        """The working tree's git commit and dirtiness, once :meth:`_git_state` looked."""
        self._lock: Any = None
        """The open lock file while :meth:`lock` holds it."""

    def scratch_root(self) -> str:
        """Under ``--dry-cache``: a temporary folder for the files stages write themselves
        (``record.get_path``, ``PathRef``), outside the cache, which a dry-cache run never
        writes. Workers write into the same folder; it goes when this manager does (or
        when the process ends).

        It is in the system's temporary folder, but on an existing Dask cluster, whose
        workers may run on other machines, in the project folder, which they share: a
        worker elsewhere wrote into a /tmp folder of its own that the stages after it,
        on other machines, did not see, and that nothing removed."""
        if self._scratch is None:
            import shutil
            import tempfile
            import weakref

            shared = getattr(self.runner.executor, "address", None)
            self._scratch = tempfile.mkdtemp(
                prefix=".assay-dry-cache-" if shared else "assay-dry-cache-",
                dir=self.config.root if shared else None,
            )
            weakref.finalize(self, shutil.rmtree, self._scratch, ignore_errors=True)
        return self._scratch

    def scratch_dir(self, key: str) -> Path:
        """The folder of stage run ``key`` in :meth:`scratch_root`."""
        folder = Path(self.scratch_root()) / key
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def params_hash(self, params: Any) -> str:
        """A parameter set's hash, computed once per object for this manager."""
        found = self._hashes.get(id(params))
        if found is None or found[0] is not params:
            found = self._hashes[id(params)] = (params, params.params_hash())
        return found[1]

    @property
    def plan(self) -> Plan:
        """Every stage run so far (see :mod:`assay.plan`)."""
        return self.runner.plan

    @property
    def run_id(self) -> str | None:
        """The run's id in the run store, or ``None`` if it is not recorded."""
        return self.run_info.id if self.run_info is not None else self._run_seen[0]

    @property
    def run_number(self) -> int | None:
        """The run's number in the run store, or ``None`` if it is not recorded."""
        return self.run_info.number if self.run_info is not None else self._run_seen[1]

    # -- Curifactory's names for the run (for stage code written for it) ----------------

    @property
    def experiment_run_number(self) -> int:
        """Curifactory's name for :attr:`run_number` (0 while the run is not recorded)."""
        return self.run_number or 0

    @property
    def run_timestamp(self) -> datetime.datetime:
        """When the run started (UTC), as its id says; when the manager was made, for a
        manager whose run is not recorded (in a notebook, before ``generate_report()``)."""
        stamp = (self.run_id or "").rpartition("-")[2]
        try:
            started = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%S")
        except ValueError:
            return self._made
        return started.replace(tzinfo=datetime.timezone.utc)

    def get_str_timestamp(self) -> str:
        """:attr:`run_timestamp` as Curifactory writes it (``2026-12-06-T095901``)."""
        return self.run_timestamp.strftime("%Y-%m-%d-T%H%M%S")

    def get_reference_name(self) -> str:
        """The name of this run: its id in the run store (``iris-0007-20261206T095901``),
        what ``assay show`` and the folders of its log, report and export are named by.
        (Curifactory's is ``EXPERIMENT_NUMBER_TIMESTAMP``.)"""
        return self.run_id or (
            f"{self.experiment_name}_{self.experiment_run_number}_{self.get_str_timestamp()}"
        )

    def get_run_output_path(self, obj_name: str | None = None) -> str:
        """A path in this run's own folder of ``data/runs/`` (its ``--store-full`` export),
        for a file a stage writes for this run only: ``obj_name`` in it (its folders are
        made), or the folder itself."""
        folder = os.path.join(str(self.config.runs_dir), self.get_reference_name())
        path = os.path.join(folder, obj_name) if obj_name else folder
        os.makedirs(os.path.dirname(path) if obj_name else path, exist_ok=True)
        return path

    @property
    def reports_path(self) -> str:
        """Where run reports are written (``reports/``)."""
        return str(self.config.reports_dir)

    @property
    def logs_path(self) -> str:
        """Where run logs are written (``logs/``)."""
        return str(self.config.logs_dir)

    @property
    def runs_path(self) -> str:
        """Where runs are exported with ``--store-full`` (``data/runs/``)."""
        return str(self.config.runs_dir)

    @property
    def manager_cache_path(self) -> str:
        """The folder of the run store (``assay.db``): the project folder by default."""
        return str(self.config.store_path.parent)

    @property
    def parameter_files(self) -> list[str]:
        """The parameter files the run was started with (``-p``), as given; ``[]`` for a
        run of the experiment's own ``get_params()`` and in a notebook."""
        if self.run_info is None:
            return list(self._param_files)
        return list(self.run_info.config.get("param_files") or [])

    @property
    def hostname(self) -> str:
        """The name of the machine the run was started on (of this machine, before the run
        is recorded, and in a worker process)."""
        if self.run_info is not None:
            return self.run_info.host
        import socket

        return socket.gethostname()

    @property
    def git_workdir_dirty(self) -> bool:
        """Whether the project's code differed from its git commit when the run started
        (``False`` outside git)."""
        return self._git_state()[1]

    def _git_state(self) -> tuple[str, bool]:
        """The git commit and dirtiness the run recorded; where they are not recorded yet
        (a worker process, a notebook, a stage started while the run still looks them
        up), those of the project's working tree, looked up once."""
        info = self.run_info
        if info is not None and info.git_dirty is not None:
            return info.git_commit or "", info.git_dirty
        if self._git is None:
            from assay.provenance import capture_git
            from assay.run_record import assay_outputs

            found = capture_git(self.config.root, ignore=assay_outputs(self.config))
            self._git = (found.commit or "", bool(found.dirty))
        return self._git

    @property
    def stage_active(self) -> bool:
        """Whether a stage is executing right now (see :attr:`current_stage_name`)."""
        return bool(self.current_stage_name)

    def get_artifact_path(
        self,
        obj_name: str,
        record: Record,
        subdir: str | None = None,
        prefix: str | None = None,
        stage_name: str | None = None,
        store: bool = False,
    ) -> str:
        """A path for a file a stage writes itself: ``record.get_path(obj_name, subdir,
        prefix, stage_name)``, in the stage's cache folder; with ``store=True``, in this
        run's own folder of ``data/runs/`` instead (:meth:`get_run_output_path`)."""
        if store:
            return self.get_run_output_path(obj_name)
        return record.get_path(obj_name, subdir=subdir, prefix=prefix, stage_name=stage_name)

    def lock(self) -> None:
        """Wait until no other process of the project holds the lock, then hold it until
        :meth:`unlock`: for code that writes a file shared by the stages of a ``--parallel``
        run (or by concurrent runs). The lock is the file ``logs/.manager.lock``; holding
        it again before :meth:`unlock` does nothing. Linux and macOS only."""
        if self._lock is not None:
            return
        import fcntl

        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.config.logs_dir / ".manager.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            raise
        self._lock = handle

    def unlock(self) -> None:
        """Let go of the lock :meth:`lock` took (nothing if it is not held)."""
        handle, self._lock = self._lock, None
        if handle is not None:
            handle.close()  # closing the file lets go of the lock

    @property
    def git_commit_hash(self) -> str:
        """The project's git commit when the run started ("" outside git)."""
        return self._git_state()[0]

    def generate_report(self) -> Path | None:
        """Record the stage runs of this manager so far as a run of the run store, and
        write the run's HTML report in ``reports/RUN_ID/``, as Curifactory's
        ``generate_report()`` does in a notebook. The first call gives the session a run
        number (``assay ls`` lists it, the dashboard shows it); later calls record that
        run again with the stages run since, and rewrite its report. Returns the
        report page (``None`` for a dry manager, which records nothing).

        Example::

            manager = assay.ArtifactManager("scratch")
            train(load_data(assay.Record(manager, Params(name="small"))))
            manager.generate_report()  # reports/scratch-0001-.../index.html
        """
        if self.dry:
            return None
        from assay.experiment import record_session

        page = record_session(self)
        if self.store_full:
            from assay.export.full import export_run

            export_run(self.config, self.run_id)
        return page

    def _call_stage(self, spec, record, args, kwargs, records):
        return self.runner.call_stage(spec, record, args, kwargs, records)

    def provenance(self, node: StageNode) -> dict:
        """What an artifact's sidecar records about the stage run that made it."""
        params = node.record.params
        return {
            "stage": node.spec.name,
            "experiment": self.experiment_name,
            "param_set": node.record_label,
            "params_hash": node.record.get_hash(),
            "params_class": type(params).__qualname__ if params is not None else None,
            "run_id": self.run_id,
            "run_number": self.run_number,
            "ingredients": ingredients_of(node),
        }

    # -- Curifactory's notebook displays: each returns HTML Jupyter shows --------------

    def display_info(self) -> Any:
        """The run's details (experiment, run, git commit, parameter sets, notes)."""
        from assay.report.notebook import NotebookHTML, info_html

        return NotebookHTML(info_html(self))

    def display_all_reportables(self) -> Any:
        """Every reportable of the run so far."""
        return self._display(self.reportables, "All reportables")

    def display_record_reportables(self, record: Record) -> Any:
        """The reportables of one record."""
        return self._display(record.reportables, f"Record {record.name}")

    def display_group_reportables(self, group_name: str) -> Any:
        """The reportables made with ``group=group_name``."""
        found = [r for r in self.reportables if r.group == group_name]
        return self._display(found, f"Group {group_name}")

    def display_stage_reportables(self, stage_name: str) -> Any:
        """The reportables made by the stage ``stage_name`` (in every record)."""
        found = [r for r in self.reportables if r.stage == stage_name]
        return self._display(found, f"Stage {stage_name}")

    def display_reportable(self, reportable: Reportable) -> Any:
        """One reportable."""
        from assay.report.notebook import NotebookHTML, inline_html

        return NotebookHTML(inline_html(reportable))

    def display_stage_graph(self) -> Any:
        """The DAG of every stage run so far, as in the report."""
        from assay.report.notebook import NotebookHTML

        return NotebookHTML(self._repr_svg_())

    def get_reportable_groups(self) -> list[str | None]:
        """The ``group`` of every reportable, each once, in order (``None``: no group)."""
        return list(dict.fromkeys(r.group for r in self.reportables))

    def get_grouped_reportables(self) -> dict[str, list[Reportable]]:
        """The reportables made with a ``group``, by group."""
        grouped: dict[str, list[Reportable]] = {}
        for reportable in self.reportables:
            if reportable.group is not None:
                grouped.setdefault(reportable.group, []).append(reportable)
        return grouped

    def get_ungrouped_reportables(self) -> list[Reportable]:
        """The reportables made without a ``group``."""
        return [r for r in self.reportables if r.group is None]

    def get_all_param_sets(self) -> list:
        """The parameter sets of this manager's records, each once (by hash), in order."""
        found: dict[str, Any] = {}
        for record in self.records:
            if record.params is not None:
                found.setdefault(self.params_hash(record.params), record.params)
        return list(found.values())

    def _display(self, reportables: list, title: str) -> Any:
        from assay.report.notebook import NotebookHTML, reportables_html

        return NotebookHTML(reportables_html(reportables, title))

    def _repr_svg_(self) -> str:
        """Jupyter's display: the DAG of every stage run so far (see :mod:`assay.report.dag`)."""
        from assay.report.notebook import dag_svg

        return dag_svg(self)

    def __getattr__(self, name: str) -> NoReturn:
        """A name of Curifactory's manager that assay does not have: says what to use."""
        from assay.compat import missing_attribute

        raise missing_attribute(self, name)

    def __iter__(self) -> NoReturn:
        """A manager is no sequence: ``results, manager = run_experiment(...)``, as written
        for Curifactory's ``(results, manager)``, is told what assay returns instead."""
        raise TypeError(
            "cannot unpack an ArtifactManager: assay's run_experiment() returns the manager, "
            "not Curifactory's (results, manager). Write `manager = run_experiment(...)`; "
            "what the experiment's run() returned is `manager.results`."
        )

    def __repr__(self) -> str:
        return (
            f"ArtifactManager({self.experiment_name!r}, records={len(self.records)}, "
            f"stages={len(self.plan.nodes)})"
        )


def _named(argument: str, value: Any) -> str | None:
    """``value`` of a name argument of :class:`ArtifactManager` (``None`` or ``""``: the
    default), refused at once when it cannot name anything (the run would otherwise
    compute and cache everything, then fail to be recorded)."""
    if value is None or value == "" or (isinstance(value, str) and value.strip()):
        return value or None
    raise ProjectError(
        f"ArtifactManager's {argument} must be a name (a string that is not blank), got "
        f"{value!r}: it names the run in the run store and the folder of its artifacts in "
        "the cache's by-name/."
    )
