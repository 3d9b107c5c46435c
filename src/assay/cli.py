"""The ``assay`` command line: thin wrappers that parse, call the library, and print.

Tab completion (bash)::

    eval "$(_ASSAY_COMPLETE=bash_source assay)"

(``zsh_source`` / ``fish_source`` for other shells). Heavy modules (rich, the
runner) are imported inside the commands, so ``assay --help`` answers fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from assay.errors import AssayError

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _complete_modules(folder_setting: str):
    """Shell completion for experiment / parameter-file names."""

    def complete(ctx, param, incomplete):
        from assay.config import ProjectConfig

        try:
            folder = getattr(ProjectConfig.load(), folder_setting)
        except AssayError:
            return []
        return [
            p.stem
            for p in sorted(folder.glob("*.py"))
            if p.stem.startswith(incomplete) and not p.stem.startswith("_")
        ]

    return complete


class _Group(click.Group):
    """Turns assay's errors into one-paragraph messages (tracebacks with --debug)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AssayError as exc:
            if ctx.meta.get("assay.debug"):
                raise
            _fail(exc)
        except PermissionError as exc:  # a folder of someone else's, a read-only share
            if ctx.meta.get("assay.debug"):
                raise
            _fail(
                f"Permission denied: {exc.filename or exc}. This command writes there; run it "
                "where you may write (your own copy of the project), or as the folder's owner."
            )
        except Exception as exc:  # the experiment's own code, outside any stage (its run())
            if ctx.meta.get("assay.debug"):
                raise
            from assay.cli_output import code_frames, print_code_failure

            frames = code_frames(exc.__traceback__)
            if not frames and isinstance(exc, OSError):  # a path given, a disk, a port
                _fail(_os_error_text(exc))
            if not frames:  # nothing of the researcher's: a bug of assay's, show it all
                raise
            command, unwritten = ctx.meta.get("assay.run", (None, None))
            print_code_failure(_console(stderr=True), exc, frames, command, unwritten)
            _print_run_files(exc)
            sys.exit(1)
        except KeyboardInterrupt as exc:
            from rich.markup import escape

            from assay.cli_output import what_is_kept
            from assay.errors import Terminated

            stopped = "Stopped by SIGTERM." if isinstance(exc, Terminated) else "Interrupted."
            _, unwritten = ctx.meta.get("assay.run", (None, None))
            go_on = "" if unwritten else " to continue where it stopped"
            _console(stderr=True).print(
                f"[yellow]{stopped}[/] {escape(what_is_kept(unwritten))} Run the same command "
                f"again{go_on}."
            )
            _print_run_files(exc)
            sys.exit(143 if isinstance(exc, Terminated) else 130)


def _os_error_text(exc: OSError) -> str:
    """An operating system error in one line that names its path(s), with a hint."""
    text = exc.strerror or str(exc)
    if exc.filename is not None:
        text += f": {exc.filename}"
    if exc.filename2 is not None:
        text += f" -> {exc.filename2}"
    return f"{text}. (--debug shows where it happened.)"


def _fail(exc: BaseException | str, code: int = 1) -> None:
    from rich.markup import escape

    _console(stderr=True).print(f"[bold red]Error:[/] {escape(str(exc))}")
    _print_run_files(exc)
    sys.exit(code)


def _print_run_files(exc: BaseException | str) -> None:
    """Under the message of a run that failed or stopped: where its log and report are."""
    from rich.markup import escape

    console = _console(stderr=True)
    for label, path in zip(("Log", "Report"), getattr(exc, "assay_run_files", ())):
        if path is not None and path.exists():
            try:
                path = path.relative_to(Path.cwd())
            except ValueError:
                pass
            console.print(f"{label}: {escape(str(path))}", style="dim", soft_wrap=True)


def _spawn_without_this_script() -> None:
    """Let worker processes start without running the ``assay`` script again.

    A spawned process (a ``--parallel`` worker, a local Dask cluster's worker)
    first runs its parent's main script again. For the ``assay`` command that
    script is pip's wrapper, which imports the whole command line: about 50 ms
    per worker, at the moment the workers and the planning share the cores.
    It defines nothing a stage needs, so it is marked as what ``python -m assay``
    runs, a ``__main__`` module that multiprocessing leaves out.
    """
    script = sys.modules.get("__main__")
    if getattr(script, "__spec__", True) is None and getattr(script, "main", None) is main:
        from importlib.machinery import ModuleSpec

        script.__spec__ = ModuleSpec("assay.__main__", None)


def _console(stderr: bool = False):
    from rich.console import Console

    from assay.runlog import silence

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # The reader went away (`assay run ... | head`): rich would exit at once, in
            # the middle of a run. Go on instead, without output; the run's log has it.
            self.quiet = True
            silence(self.file)

    # Bind the real streams now: during a run they are teed into the log file,
    # which should not receive the progress bar's redraws.
    return _Console(file=sys.stderr if stderr else sys.stdout, highlight=False)


@click.group(cls=_Group, context_settings=_CONTEXT)
@click.version_option(package_name="assay", message="assay %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """assay: orchestrated, parameterized, cached, reproducible experiments.

    Start with `assay init` in an empty folder, then `assay run example -p example`.
    """
    ctx.meta["assay.debug"] = debug


class _Indices(click.ParamType):
    """A position (``3``, ``-1``) or a range as Curifactory writes it (``1-3``: 1 and 2)."""

    name = "index"

    def convert(self, value, param, ctx):
        from assay.compat import parse_indices

        if isinstance(value, list):
            return value
        try:
            return parse_indices([value])
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_INDICES = _Indices()


def _run_selection(command):
    """The options that choose what a run covers, shared by `run` and `why`."""
    options = [
        click.argument("experiment", shell_complete=_complete_modules("experiments_dir")),
        click.option(
            "-p",
            "--params",
            "param_files",
            multiple=True,
            metavar="PARAMFILE",
            shell_complete=_complete_modules("params_dir"),
            help="A parameter file (name in params/ or path); repeat to combine several.",
        ),
        click.option(
            "--names", "-n", multiple=True, metavar="NAME", help="Only these parameter sets."
        ),
        click.option(
            "--indices",
            "-i",
            "--global-indices",
            multiple=True,
            type=_INDICES,
            callback=lambda ctx, param, groups: [i for group in groups for i in group],
            metavar="I",
            help="Only the sets at these positions (a range A-B as in Curifactory: A to B-1).",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="FIELD=VALUE",
            help="Override a parameter for this run (e.g. --set n_trees=500).",
        ),
        click.option("--overwrite", is_flag=True, help="Recompute every stage."),
        click.option(
            "--overwrite-stage",
            "overwrite_stages",
            multiple=True,
            metavar="STAGE",
            help="Recompute the named stage(s) and every stage downstream of them.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# -- run --------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@_run_selection
@click.option("--dry", is_flag=True, help="Show the plan (what executes, what is cached) and stop.")
@click.option("--dry-cache", is_flag=True, help="Read the cache but never write to it.")
@click.option("--prefix", help="File artifacts under this name instead of the experiment's.")
@click.option(
    "--cache",
    "-c",
    "cache_dir",
    type=click.Path(file_okay=False),
    help="Use this cache folder (or a cache at a URL, e.g. s3://bucket/cache).",
)
@click.option("--lazy", is_flag=True, help="Treat every output as Lazy (keep memory low).")
@click.option("--ignore-lazy", is_flag=True, help="Treat Lazy outputs as ordinary ones.")
@click.option("--notes", help="A note recorded with the run.")
@click.option(
    "--explain", is_flag=True, help="Say why each stage executes or is reused (see `assay why`)."
)
@click.option(
    "--paths", is_flag=True, help="List where every artifact of the run is cached, and stop."
)
@click.option("--no-log", is_flag=True, help="Do not write the run's log file.")
@click.option("--no-report", is_flag=True, help="Do not write the run's HTML report.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    metavar="N",
    help="Run stages on N local worker processes.",
)
@click.option(
    "--executor",
    type=click.Choice(["serial", "process", "dask"]),
    help="Where stages run (default: serial; --parallel selects process).",
)
@click.option(
    "--dask-address",
    metavar="ADDR",
    help="Use the Dask scheduler at ADDR (tcp://HOST:8786) with --executor dask.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every stage run.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and the final line.")
@click.option(
    "--store-full",
    "-s",
    is_flag=True,
    help="Export the run to data/runs/RUN_ID/: record, log, report, artifacts, environment, code.",
)
@click.option(
    "--store-full-include",
    multiple=True,
    metavar="GLOB",
    help="Put files matching GLOB in the code snapshot although git ignores them or they "
    "look like secrets (.env, keys).",
)
@click.option("--notebook", is_flag=True, help="Write a notebook that reloads the run's artifacts.")
@click.option(
    "--docker",
    is_flag=True,
    help="Write a Docker build context for the run (implies --store-full); build it if "
    "Docker runs.",
)
@click.option(
    "--no-dag",
    is_flag=True,
    help="Accepted for Curifactory's command lines: assay always runs as Curifactory's "
    "--no-dag does where run() reads results (what it reads executes first).",
)
def run(
    experiment,
    param_files,
    names,
    indices,
    overrides,
    overwrite,
    overwrite_stages,
    dry,
    dry_cache,
    prefix,
    cache_dir,
    lazy,
    ignore_lazy,
    notes,
    explain,
    paths,
    no_log,
    no_report,
    parallel,
    executor,
    dask_address,
    verbose,
    quiet,
    store_full,
    store_full_include,
    notebook,
    docker,
    no_dag,
):
    """Run EXPERIMENT (a module in experiments/ or a path to a .py file).

    Stages whose outputs are cached are skipped; the run is recorded in assay.db
    and its log written to logs/.
    """
    from assay.cli_output import (
        ProgressObserver,
        print_paths,
        print_plan,
        print_plan_stops,
        print_run_result,
    )
    from assay.errors import StageFailed
    from assay.experiment import run_experiment

    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose ask for opposite things: give one.")
    if lazy and ignore_lazy:
        raise click.UsageError("--lazy and --ignore-lazy ask for opposite things: give one.")
    console = _console()
    observer = ProgressObserver(console, quiet=quiet, explain=explain and not dry)
    planning_only = dry or paths
    # What a failure or Ctrl-C message says this run left, and the command to run again.
    unwritten = "--dry" if dry else "--paths" if paths else "--dry-cache" if dry_cache else None
    click.get_current_context().meta["assay.run"] = (_command_line(), unwritten)
    if notebook and not planning_only:  # written after the run: its folder is checked now
        from assay.config import ProjectConfig

        ProjectConfig.load().make_folders("runs_dir")
    _spawn_without_this_script()
    try:
        manager = run_experiment(
            experiment,
            list(param_files),
            names=list(names),
            indices=list(indices),
            overrides=list(overrides),
            overwrite=overwrite,
            overwrite_stages=list(overwrite_stages),
            dry=planning_only,
            dry_cache=dry_cache,
            prefix=prefix,
            cache_dir=_from_here(cache_dir),
            lazy=lazy,
            ignore_lazy=ignore_lazy,
            notes=notes,
            log_file=not no_log,
            report=not no_report,
            observer=observer,
            verbose=verbose,
            parallel=parallel,
            executor=executor,
            dask_address=dask_address,
            command=_command_line(),
            store_full=(store_full or docker) and not planning_only,
            store_full_include=list(store_full_include),
        )
    except StageFailed as exc:
        observer.close()
        ctx = click.get_current_context()
        if ctx.meta.get("assay.debug"):
            raise
        from assay.cli_output import print_stage_failure

        print_stage_failure(_console(stderr=True), exc, _command_line(), unwritten)
        _print_run_files(exc)
        sys.exit(1)
    finally:
        observer.close()
    if paths:
        print_paths(console, manager)
        print_plan_stops(console, manager)
    elif dry and explain:
        from assay.cli_output import print_explanations
        from assay.why import explain as explain_plan

        print_explanations(console, explain_plan(manager))
        print_plan_stops(console, manager)
    elif dry:
        print_plan(console, manager)
    else:
        print_run_result(console, manager, quiet=quiet)
        if store_full or notebook or docker:
            from assay.cli_provenance import print_exports

            print_exports(console, manager, notebook=notebook, docker=docker)


def _command_line() -> str:
    import shlex

    return shlex.join(["assay", *sys.argv[1:]])


# -- params -----------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("experiment", shell_complete=_complete_modules("experiments_dir"))
@click.option(
    "-p",
    "--params",
    "param_files",
    multiple=True,
    metavar="PARAMFILE",
    shell_complete=_complete_modules("params_dir"),
    help="A parameter file; repeat to combine.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="FIELD=VALUE", help="Apply an override first."
)
@click.option("--all-fields", is_flag=True, help="Show every field, not only those that differ.")
def params(experiment, param_files, overrides, all_fields):
    """List the parameter sets of a run: names, hashes, and how they differ."""
    from assay.cli_output import print_params
    from assay.config import ProjectConfig
    from assay.params import apply_overrides, check_unique_names
    from assay.project import load_experiment, load_param_sets

    config = ProjectConfig.load()
    module = load_experiment(experiment, config)
    sets = load_param_sets(list(param_files), module, config)
    if overrides:
        sets = apply_overrides(sets, list(overrides))
    print_params(_console(), sets, all_fields=all_fields)
    check_unique_names(sets)


@main.command(context_settings=_CONTEXT)
@_run_selection
@click.option("--prefix", help="The name artifacts are filed under (default: the experiment's).")
@click.option(
    "--cache",
    "-c",
    "cache_dir",
    type=click.Path(file_okay=False),
    help="The cache folder the run would use, as `assay run --cache` (or a cache at a URL).",
)
def why(
    experiment,
    param_files,
    names,
    indices,
    overrides,
    overwrite,
    overwrite_stages,
    prefix,
    cache_dir,
):
    """Say, for every stage run, why it would execute or which run's artifact it reuses.

    Nothing is executed or written: this is `assay run --dry --explain`.
    """
    from assay.cli_output import print_explanations, print_plan_stops
    from assay.experiment import run_experiment
    from assay.why import explain

    manager = run_experiment(
        experiment,
        list(param_files),
        names=list(names),
        indices=list(indices),
        overrides=list(overrides),
        overwrite=overwrite,
        overwrite_stages=list(overwrite_stages),
        prefix=prefix,
        cache_dir=_from_here(cache_dir),
        dry=True,
        command=_command_line(),
    )
    print_explanations(_console(), explain(manager))
    print_plan_stops(_console(), manager)


# -- the run store ----------------------------------------------------------------------


@main.command("ls", context_settings=_CONTEXT)
@click.option("--experiment", "-e", help="Only runs of this experiment.")
@click.option(
    "--status",
    "-s",
    type=click.Choice(["running", "completed", "failed", "interrupted"]),
    help="Only runs with this status.",
)
@click.option(
    "--limit",
    "-n",
    default=20,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many runs to show (0: all).",
)
def ls_runs(experiment, status, limit):
    """List past runs, newest first."""
    from assay.cli_output import print_runs

    with _store() as store:
        runs = store.list_runs(experiment=experiment, status=status, limit=limit or None)
        print_runs(_console(), runs)


@main.command(context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_ref", metavar="RUN", default="latest")
def show(run_ref):
    """Show one run: RUN is its number, id (or a prefix), or 'latest' / -1, -2 ..."""
    from assay.cli_output import print_run

    with _store() as store:
        print_run(_console(), store, store.get_run(run_ref))


@main.command(context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_refs", metavar="[RUN]...", nargs=-1)
@click.option("--all", "all_runs", is_flag=True, help="Rebuild the report of every run.")
def report(run_refs, all_runs):
    """Rebuild HTML reports and the index of runs (reports/index.html).

    RUN is a number, an id (or a unique start of it), or 'latest' / -1, -2 ...
    (default: latest). A run's page is rebuilt from its reports/RUN_ID/run.json,
    or, for a run without one (--no-report), from the run store.
    """
    from assay.config import ProjectConfig
    from assay.report import rebuild_reports

    _store().close()  # a clear message when there is no run store yet
    config = ProjectConfig.load()
    pages = rebuild_reports(config, list(run_refs), all_runs=all_runs)
    console = _console()
    for page in pages:
        console.print(str(_relative(page, config.root)), soft_wrap=True)


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def _store():
    from assay.config import ProjectConfig
    from assay.errors import RunStoreError
    from assay.store import RunStore

    config = ProjectConfig.load()
    if not config.store_path.exists():
        raise RunStoreError(
            f"No run store at {config.store_path}: no experiment has run in this project yet "
            "(or you are in another folder). Run one with `assay run EXPERIMENT`."
        )
    store = RunStore(config.store_path)
    store.settle_abandoned_runs()  # runs killed on this machine are not "running" any more
    return store


# -- provenance: compare, lineage, reproduce, export -------------------------------------


def _project_cache():
    """The project's cache, to read sidecars from; ``None`` if it cannot be opened."""
    from assay.cache import open_cache
    from assay.config import ProjectConfig
    from assay.errors import AssayError

    try:
        return open_cache(ProjectConfig.load())
    except (AssayError, OSError):
        return None


@main.command(context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_a", metavar="RUN")
@click.argument("run_b", metavar="RUN", default="latest")
def compare(run_a, run_b):
    """Show what differs between two runs: parameters, code, packages, artifacts, metrics.

    RUN is a number, an id (or a unique start of it), or 'latest' / -1, -2 ...
    (the second RUN defaults to latest).
    """
    from assay.cli_output import print_metric_changes
    from assay.cli_provenance import print_comparison
    from assay.compare import compare_runs
    from assay.metrics import compare_metrics

    with _store() as store:
        diff = compare_runs(store, run_a, run_b, cache=_project_cache())
        print_comparison(_console(), diff)
        changes = compare_metrics(store.path, diff.a.number, diff.b.number)
        print_metric_changes(_console(), changes)


@main.command(context_settings=_CONTEXT)
@click.argument("artifact")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="The cache folder.")
def lineage(artifact, cache_dir):
    """Show how ARTIFACT was made: run, stage code, parameters and upstream artifacts.

    ARTIFACT is EXPERIMENT/PARAMETER-SET/STAGE/OUTPUT (as under data/cache/by-name/),
    a path to a cached file or stage folder, or an artifact key (<stage key>.<output>).
    """
    from assay.cli_provenance import lineage_tree
    from assay.lineage import lineage as find_lineage

    _console().print(lineage_tree(find_lineage(artifact, cache_dir=_from_here(cache_dir))))


@main.command(context_settings=_CONTEXT)
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--workdir",
    type=click.Path(),
    help="Re-run in this new folder (default: FOLDER/reproductions/<time>/).",
)
@click.option(
    "--reuse",
    is_flag=True,
    help="Start from the exported cache: recompute only what changed (default: recompute all).",
)
@click.option(
    "--equivalent-ok",
    is_flag=True,
    help="Count artifacts with other bytes but equal values when loaded as reproduced.",
)
def reproduce(folder, workdir, reuse, equivalent_ok):
    """Re-run an exported run (--store-full) and check every artifact comes out identical.

    Exits with status 0 only if every artifact is identical (same checksum).
    """
    from assay.cli_provenance import print_reproduction
    from assay.export.reproduce import reproduce as run_reproduction

    result = run_reproduction(folder, workdir=workdir, reuse=reuse, equivalent_ok=equivalent_ok)
    print_reproduction(_console(), result)
    sys.exit(0 if result.exact else 1)


@main.group(context_settings=_CONTEXT)
def export():
    """Export a run: a full folder, a Docker build context, or a Jupyter notebook."""


@export.command("full", context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_ref", metavar="RUN", default="latest")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="The folder to write.")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Also snapshot these files (when the code is snapshotted now).",
)
def export_full(run_ref, output, include):
    """Write RUN's self-contained folder (what --store-full writes) to data/runs/RUN_ID/.

    The code is snapshotted by a run's first export (--store-full, as the run
    ends); a later export of the run keeps that snapshot, not today's code.
    """
    from assay.cli_provenance import print_written
    from assay.config import ProjectConfig
    from assay.export.full import export_run

    _store().close()
    config = ProjectConfig.load()
    folder = export_run(config, run_ref, destination=output, include=list(include))
    print_written(_console(), "Exported to", folder, config.root)


@export.command("docker", context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_ref", metavar="RUN", default="latest")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="The context folder.")
@click.option("--tag", help="The image's name (default: assay-RUN_ID, in lower case).")
@click.option("--no-build", is_flag=True, help="Only write the context; do not build.")
def export_docker(run_ref, output, tag, no_build):
    """Write a Dockerfile and build context that re-create RUN; build it if Docker runs.

    The context holds the code, the pinned environment, the run's cache and a
    wheel of assay (default: data/runs/RUN_ID/docker/).
    """
    from assay.config import ProjectConfig
    from assay.export.docker import build_image, export_docker_context

    _store().close()
    config = ProjectConfig.load()
    context = export_docker_context(config, run_ref, destination=output, tag=tag)
    console = _console()
    console.print(f"Docker build context: {context.folder}", soft_wrap=True)
    if no_build:
        console.print(f"Build it with: {context.build_command}", soft_wrap=True)
        return
    built, message = build_image(context)
    console.print(message, soft_wrap=True)


@export.command("notebook", context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_ref", metavar="RUN", default="latest")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The .ipynb to write.")
def export_notebook(run_ref, output):
    """Write a Jupyter notebook that loads RUN's artifacts and can re-run it."""
    from assay.cli_provenance import print_written
    from assay.config import ProjectConfig
    from assay.export.notebook import write_notebook

    _store().close()
    config = ProjectConfig.load()
    path = write_notebook(config, run_ref, destination=output)
    print_written(_console(), "Notebook", path, config.root)


# -- cache ------------------------------------------------------------------------------


@main.group(context_settings=_CONTEXT)
def cache():
    """List, verify and clean the artifact cache."""


@cache.command("ls", context_settings=_CONTEXT)
@click.option("--experiment", "-e", help="Only artifacts filed under this experiment.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="The cache folder.")
def cache_ls(experiment, cache_dir):
    """List cached artifacts by experiment, parameter set and stage."""
    from assay.cache_admin import list_entries
    from assay.cli_output import print_cache_entries

    print_cache_entries(_console(), list_entries(_cache(cache_dir), experiment=experiment))


@cache.command("verify", context_settings=_CONTEXT)
@click.option("--remove", is_flag=True, help="Remove the entries that fail.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="The cache folder.")
def cache_verify(remove, cache_dir):
    """Check every artifact against its recorded size and checksum."""
    from assay.cache_admin import verify_all

    console = _console()
    checked, bad = verify_all(_cache(cache_dir), remove=remove)
    for _meta, problem in bad:
        console.print(f"[red]FAILED[/] {problem}")
    console.print(
        f"{checked} artifact(s) checked, {len(bad)} failed"
        + (" (removed)" if remove and bad else "")
    )
    if bad and not remove:
        sys.exit(1)


@cache.command("gc", context_settings=_CONTEXT)
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Also remove linked entries last written more than this many days ago.",
)
@click.option("--dry", is_flag=True, help="Only list what would be removed.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="The cache folder.")
def cache_gc(older_than, dry, cache_dir):
    """Remove unfinished writes and entries no experiment links to any more."""
    from assay.cache_admin import collect_garbage, latest_runs_keys
    from assay.config import ProjectConfig

    console = _console()
    keep = latest_runs_keys(ProjectConfig.load().store_path)
    removed, freed = collect_garbage(
        _cache(cache_dir), older_than_days=older_than, dry=dry, keep=keep
    )
    from assay.cli_output import print_gc_result

    print_gc_result(console, removed, freed, dry)


def _cache(cache_dir):
    from assay.cache import open_cache
    from assay.config import ProjectConfig

    return open_cache(ProjectConfig.load().with_cache_dir(_from_here(cache_dir)))


def _from_here(cache_dir):
    """``--cache DIR``: a relative folder is taken from the current folder, as ``-p`` and
    experiment paths are (``cache_dir`` in assay.toml is taken from the project root). An
    exported run's folder means its ``cache/`` folder."""
    if cache_dir is None:
        return None
    from assay.config import from_command_line
    from assay.export.full import export_cache_of

    return export_cache_of(from_command_line(cache_dir))


# -- ui ---------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Port to listen on (default: a free one)."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but 127.0.0.1/localhost prints a token to use.",
)
@click.option(
    "--project", type=click.Path(file_okay=False, exists=True), help="The project folder."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a browser.")
def ui(port, host, project, open_browser):
    """Serve a live dashboard of the runs: browse, compare, sweep, trace artifacts.

    Read-only; needs `pip install 'assay[ui]'`. Stop it with Ctrl-C.
    """
    from assay.ui import serve

    serve(project, host=host, port=port, open_browser=open_browser, echo=click.echo)


# -- init -------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("folder", default=".", type=click.Path(file_okay=False))
def init(folder):
    """Create a new project in FOLDER: folders, an example experiment and parameter file."""
    from assay.scaffold import create_project

    created = create_project(Path(folder))
    console = _console()
    for path in created:
        console.print(f"created {path}")
    import shlex

    from rich.markup import escape

    console.print(
        "\nNext: [bold]assay run example -p example[/] "
        + (f"(after cd {escape(shlex.quote(folder))})" if folder != "." else "")
    )


if __name__ == "__main__":  # pragma: no cover
    main()
