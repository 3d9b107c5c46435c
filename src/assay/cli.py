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
        except KeyboardInterrupt:
            _console(stderr=True).print(
                "[yellow]Interrupted.[/] Finished artifacts stay cached; run the same command "
                "again to continue where it stopped."
            )
            sys.exit(130)


def _fail(exc: BaseException, code: int = 1) -> None:
    from rich.markup import escape

    _console(stderr=True).print(f"[bold red]Error:[/] {escape(str(exc))}")
    sys.exit(code)


def _console(stderr: bool = False):
    from rich.console import Console

    # Bind the real streams now: during a run they are teed into the log file,
    # which should not receive the progress bar's redraws.
    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False)


@click.group(cls=_Group, context_settings=_CONTEXT)
@click.version_option(package_name="assay", message="assay %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """assay: orchestrated, parameterized, cached, reproducible experiments.

    Start with `assay init` in an empty folder, then `assay run example -p example`.
    """
    ctx.meta["assay.debug"] = debug


# -- run --------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("experiment", shell_complete=_complete_modules("experiments_dir"))
@click.option(
    "-p",
    "--params",
    "param_files",
    multiple=True,
    metavar="PARAMFILE",
    shell_complete=_complete_modules("params_dir"),
    help="A parameter file (name in params/ or path); repeat to combine several.",
)
@click.option("--names", "-n", multiple=True, metavar="NAME", help="Run only these parameter sets.")
@click.option(
    "--indices",
    "-i",
    multiple=True,
    type=int,
    metavar="I",
    help="Run only the sets at these positions.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Override a parameter for this run (e.g. --set n_trees=500).",
)
@click.option("--overwrite", is_flag=True, help="Recompute every stage.")
@click.option(
    "--overwrite-stage",
    "overwrite_stages",
    multiple=True,
    metavar="STAGE",
    help="Recompute the named stage(s).",
)
@click.option("--dry", is_flag=True, help="Show the plan (what executes, what is cached) and stop.")
@click.option("--dry-cache", is_flag=True, help="Read the cache but never write to it.")
@click.option("--prefix", help="File artifacts under this name instead of the experiment's.")
@click.option(
    "--cache", "cache_dir", type=click.Path(file_okay=False), help="Use this cache folder."
)
@click.option("--lazy", is_flag=True, help="Treat every output as Lazy (keep memory low).")
@click.option("--ignore-lazy", is_flag=True, help="Treat Lazy outputs as ordinary ones.")
@click.option("--notes", help="A note recorded with the run.")
@click.option(
    "--paths", is_flag=True, help="List where every artifact of the run is cached, and stop."
)
@click.option("--no-log", is_flag=True, help="Do not write the run's log file.")
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
    paths,
    no_log,
    parallel,
    executor,
    dask_address,
    verbose,
    quiet,
):
    """Run EXPERIMENT (a module in experiments/ or a path to a .py file).

    Stages whose outputs are cached are skipped; the run is recorded in assay.db
    and its log written to logs/.
    """
    from assay.cli_output import ProgressObserver, print_paths, print_plan, print_run_result
    from assay.errors import StageFailed
    from assay.experiment import run_experiment

    console = _console()
    observer = ProgressObserver(console, quiet=quiet)
    planning_only = dry or paths
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
            cache_dir=cache_dir,
            lazy=lazy,
            ignore_lazy=ignore_lazy,
            notes=notes,
            log_file=not no_log,
            observer=observer,
            verbose=verbose,
            parallel=parallel,
            executor=executor,
            dask_address=dask_address,
            command=_command_line(),
        )
    except StageFailed as exc:
        observer.close()
        ctx = click.get_current_context()
        if ctx.meta.get("assay.debug"):
            raise
        from assay.cli_output import print_stage_failure

        print_stage_failure(_console(stderr=True), exc, _command_line())
        sys.exit(1)
    finally:
        observer.close()
    if paths:
        print_paths(console, manager)
    elif dry:
        print_plan(console, manager)
    else:
        print_run_result(console, manager, quiet=quiet)


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
    "--limit", "-n", default=20, show_default=True, help="How many runs to show (0: all)."
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
    return RunStore(config.store_path)


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
    type=float,
    default=None,
    metavar="DAYS",
    help="Also remove linked entries not used for this many days.",
)
@click.option("--dry", is_flag=True, help="Only list what would be removed.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="The cache folder.")
def cache_gc(older_than, dry, cache_dir):
    """Remove unfinished writes and entries no experiment links to any more."""
    from assay.cache_admin import collect_garbage

    console = _console()
    removed, freed = collect_garbage(_cache(cache_dir), older_than_days=older_than, dry=dry)
    verb = "Would remove" if dry else "Removed"
    for path in removed:
        console.print(f"{verb} {path}")
    console.print(
        f"{verb} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}, {freed / 1e6:.1f} MB."
    )


def _cache(cache_dir):
    from assay.cache import CacheStore
    from assay.config import ProjectConfig

    return CacheStore(ProjectConfig.load().with_cache_dir(cache_dir).cache_dir)


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
    console.print(
        "\nNext: [bold]assay run example -p example[/] "
        + (f"(from {folder})" if folder != "." else "")
    )


if __name__ == "__main__":  # pragma: no cover
    main()
