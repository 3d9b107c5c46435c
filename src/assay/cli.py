"""The ``assay`` command line: thin wrappers that parse, call the library, and print.

Tab completion (bash; README for zsh and fish)::

    eval "$(_ASSAY_COMPLETE=bash_source assay)"

(``zsh_source`` / ``fish_source`` for other shells). Heavy modules (rich, the
runner) are imported inside the commands, so ``assay --help`` answers fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from assay import cli_complete as complete
from assay.errors import AssayError

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _debug_after_the_command(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["assay.debug"] = True  # ctx.meta is shared with the group's context


def _with_debug(command: click.Command) -> None:
    """Let ``--debug`` follow the command's name too (``assay run X --debug``)."""
    command.params.append(
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_debug_after_the_command,
            help="Show full tracebacks for errors (as `assay --debug ...`).",
        )
    )


class _Command(click.Command):
    """An assay command: takes ``--debug`` wherever it is put."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _with_debug(self)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            hint = _CURIFACTORY_FLAGS.get(exc.option_name) if ctx.info_name == "run" else None
            if hint is None:
                raise
            raise click.UsageError(
                f"{exc.option_name} is an option of Curifactory's `experiment` command that "
                f"`assay run` does not have: {hint}",
                ctx,
            ) from None


_CURIFACTORY_FLAGS = {
    "--print-params": "`assay params EXPERIMENT -p FILE` lists the parameter sets, their "
    "hashes and how they differ.",
    "--hashes": "`assay params EXPERIMENT -p FILE` shows each parameter set's hash.",
    "--map": "`assay run ... --dry` shows the plan (what executes, what is cached, which run "
    "made it) and runs nothing; `assay why` says why each stage executes.",
    "--plain": "output is plain when it is not a terminal, or with NO_COLOR=1 set.",
    "--no-color": "set NO_COLOR=1 for output without colours.",
    "--progress": "progress is shown on a terminal anyway; --quiet hides it.",
    "--log-errors": "errors always go to the run's log (logs/RUN_ID.log) and the console.",
    "--all-loggers": "the run's log takes every logger's messages (INFO and above) already.",
    "--parallel-safe": "runs may share a cache at the same time without it; leave it out.",
}
"""Flags of Curifactory's ``experiment`` that ``assay run`` lacks: what to use instead."""


class _SubGroup(click.Group):
    """A group of assay commands (``export``, ``cache``)."""

    command_class = _Command

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _with_debug(self)


# Commands that only read: interrupted, they have nothing to tell about what is kept.
_READING_COMMANDS = {"params", "why", "ls", "show", "compare", "lineage"}


class _Group(click.Group):
    """Turns assay's errors into one-paragraph messages (tracebacks with --debug)."""

    command_class = _Command
    group_class = _SubGroup

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
            from assay.errors import Terminated

            stopped = "Stopped by SIGTERM." if isinstance(exc, Terminated) else "Interrupted."
            after = _after_interruption(ctx, exc)
            _console(stderr=True).print(f"[yellow]{stopped}[/]" + (f" {after}" if after else ""))
            _print_run_files(exc)
            sys.exit(143 if isinstance(exc, Terminated) else 130)


def _after_interruption(ctx: click.Context, exc: KeyboardInterrupt) -> str:
    """What an interrupted command leaves, in rich markup: for ``assay run``, what stays
    cached and how to go on (unless the run's log just said what stays cached)."""
    from rich.markup import escape

    from assay.cli_output import what_is_kept

    if "assay.run" not in ctx.meta:
        if ctx.invoked_subcommand in _READING_COMMANDS:
            return "Nothing was changed: this command only reads."
        return ""
    command, unwritten = ctx.meta["assay.run"]
    go_on = "" if unwritten else " to continue where it stopped"
    if os.environ.get("ASSAY_RUN_AGAIN"):  # the run of `assay reproduce`: name that command
        go_on += f": {escape(command)}"
    # A run that had begun logged "Run N interrupted; finished artifacts stay cached."
    said = getattr(exc, "assay_run_files", None) and not unwritten
    kept = "" if said else escape(what_is_kept(unwritten)) + " "
    return f"{kept}Run the same command again{go_on}."


def _os_error_text(exc: OSError) -> str:
    """An operating system error in one line that names its path(s), with a hint."""
    text = exc.strerror or str(exc)
    if exc.filename is not None:
        text += f": {exc.filename}"
    if exc.filename2 is not None:
        text += f" -> {exc.filename2}"
    return f"{text}. (--debug shows where it happened.)"


def _fail(exc: BaseException | str, code: int = 1) -> None:
    from assay.cli_output import shown

    _console(stderr=True).print(f"[bold red]Error:[/] {shown(str(exc))}")
    _print_run_files(exc)
    sys.exit(code)


def _print_run_files(exc: BaseException | str) -> None:
    """Under the message of a run that failed or stopped: where its log and report are."""
    files = zip(("Log", "Report"), getattr(exc, "assay_run_files", ()))
    _print_files(_console(stderr=True), list(files))


def _print_files(console, files: list[tuple[str, Path | None]]) -> None:
    """``Log: logs/...`` lines for the files that exist, as paths that open from here."""
    from assay.cli_provenance import path_from_here

    for label, path in files:
        if path is not None and path.exists():
            text = f"{label}: {path_from_here(path)}"
            console.print(text, style="dim", soft_wrap=True, markup=False)


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


class _RunRef(click.ParamType):
    """A run: its number, its id (or a unique start of it), ``latest`` or -1, -2 ..."""

    name = "run"

    def convert(self, value, param, ctx):
        # The commands taking RUN let unknown options through, so that -1 is a run; a
        # mistyped option (--bogus) is still an option, not a run reference.
        if isinstance(value, str) and value.startswith("--"):
            raise click.NoSuchOption(value, ctx=ctx)
        return value

    def shell_complete(self, ctx, param, incomplete):
        return complete.completer(complete.complete_runs)(ctx, param, incomplete)


_RUN = _RunRef()


_NAMES_OPTION = click.option(
    "--names",
    "-n",
    multiple=True,
    metavar="NAME",
    shell_complete=complete.completer(complete.complete_set_names),
    help="Only these parameter sets.",
)
_INDICES_OPTION = click.option(
    "--indices",
    "-i",
    "--global-indices",
    multiple=True,
    type=_INDICES,
    callback=lambda ctx, param, groups: [i for group in groups for i in group],
    metavar="I",
    help="Only the sets at these positions (-1: the last; a range A-B as in Curifactory: "
    "A to B-1).",
)


def _field_equals_value(ctx: click.Context, param: click.Parameter, values: tuple) -> tuple:
    """``--set`` values, each ``FIELD=VALUE``: another form is a usage error (exit status 2),
    as a malformed ``--indices`` is, said before anything is loaded."""
    from assay.errors import AssayError
    from assay.params import split_override

    for value in values:
        try:
            split_override(value)
        except AssayError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return values


def _a_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--prefix``: a name, or nothing (the experiment's name); only blanks are a usage
    error (exit status 2), said in the option's words rather than ArtifactManager's."""
    if value is not None and value and not value.strip():
        raise click.BadParameter(
            f"{value!r} is only blanks, which names no folder. Give a name (artifacts are "
            "filed under by-name/PREFIX/ in the cache), or leave --prefix out to file them "
            "under the experiment's name.",
            ctx=ctx,
            param=param,
        )
    return value


def _run_selection(command):
    """The options that choose what a run covers, shared by `run` and `why`."""
    options = [
        click.argument("experiment", shell_complete=complete.complete_modules("experiments_dir")),
        click.option(
            "-p",
            "--params",
            "param_files",
            multiple=True,
            metavar="PARAMFILE",
            shell_complete=complete.complete_modules("params_dir"),
            help="A parameter file (name in params/ or path); repeat to combine several.",
        ),
        _NAMES_OPTION,
        _INDICES_OPTION,
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="FIELD=VALUE",
            callback=_field_equals_value,
            help="Override a parameter for this run (e.g. --set n_trees=500).",
        ),
        click.option("--overwrite", is_flag=True, help="Recompute every stage."),
        click.option(
            "--overwrite-stage",
            "overwrite_stages",
            multiple=True,
            metavar="STAGE",
            shell_complete=complete.completer(complete.complete_stages),
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
@click.option(
    "--prefix",
    callback=_a_name,
    help="File artifacts under this name instead of the experiment's.",
)
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
    from assay.errors import StageFailed, UnknownStageError
    from assay.experiment import run_experiment

    given = click.get_current_context().params
    _refuse_conflicting_flags(given)
    _check_overrides(overrides)
    planning_only = dry or paths
    if planning_only:
        _warn_ignored_flags(given)
    console = _console()
    observer = ProgressObserver(console, quiet=quiet, explain=explain and not dry)
    # What a failure or Ctrl-C message says this run left, and the command to run again.
    unwritten = "--dry" if dry else "--paths" if paths else "--dry-cache" if dry_cache else None
    click.get_current_context().meta["assay.run"] = (_again_command(), unwritten)
    if notebook and not planning_only:  # written after the run: its folder is checked now
        from assay.config import ProjectConfig
        from assay.project import project_root_for

        ProjectConfig.load(project_root_for(experiment)).make_folders("runs_dir")
    _spawn_without_this_script()
    selection = dict(
        _selection(names, indices, overrides, overwrite, overwrite_stages, prefix, cache_dir),
        lazy=lazy,
        ignore_lazy=ignore_lazy,
    )
    try:
        manager = run_experiment(
            experiment,
            list(param_files),
            **selection,
            dry=planning_only,
            dry_cache=dry_cache,
            notes=notes,
            log_file=not no_log,
            report=not no_report,
            observer=observer,
            verbose=verbose,
            parallel=parallel,
            executor=executor,
            dask_address=dask_address,
            store_full=store_full and not planning_only,
            store_full_include=list(store_full_include),
            notebook=notebook and not planning_only,
            docker=docker and not planning_only,
        )
    except StageFailed as exc:
        observer.close()
        ctx = click.get_current_context()
        if ctx.meta.get("assay.debug"):
            raise
        from assay.cli_output import print_stage_failure

        print_stage_failure(_console(stderr=True), exc, _again_command(), unwritten)
        _print_run_files(exc)
        sys.exit(1)
    except UnknownStageError as exc:
        _unknown_stage(exc)
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

            print_exports(console, manager)


def _unknown_stage(exc: AssayError) -> NoReturn:
    """``--overwrite-stage`` naming no stage of the run: a usage error (exit status 2), as
    a mistyped option is, when it is said before the run begins. A run already recorded
    (the name was known to be wrong only once the run planned) fails as runs do."""
    if getattr(exc, "assay_run_files", None):
        raise exc
    raise click.UsageError(str(exc)) from None


# Pairs of `assay run` options that ask for opposite things.
_CONFLICTS = [
    ("quiet", "verbose", "--quiet and --verbose ask for opposite things"),
    ("lazy", "ignore_lazy", "--lazy and --ignore-lazy ask for opposite things"),
    ("dry", "paths", "--dry prints the plan and --paths where artifacts are cached"),
]

# What `assay run --dry` / `--paths` leave unused: nothing runs and no run is recorded.
_UNUSED_WHEN_PLANNING = {
    "dry_cache": "--dry-cache", "notes": "--notes", "explain": "--explain (with --paths)",
    "no_log": "--no-log", "no_report": "--no-report", "parallel": "--parallel",
    "executor": "--executor", "dask_address": "--dask-address", "store_full": "--store-full",
    "store_full_include": "--store-full-include", "notebook": "--notebook",
    "docker": "--docker",
}  # fmt: skip


def _refuse_conflicting_flags(given: dict) -> None:
    """A usage error (exit status 2) for options of `assay run` that cannot go together."""
    for first, second, why in _CONFLICTS:
        if given.get(first) and given.get(second):
            raise click.UsageError(f"{why}: give one.")
    executor, parallel = given.get("executor"), given.get("parallel")
    if parallel and executor == "serial":
        raise click.UsageError(
            f"--parallel {parallel} asks for worker processes, but --executor serial runs "
            "every stage in this process. Leave out one of them (--parallel alone uses "
            "--executor process)."
        )
    if given.get("dask_address") and executor != "dask":
        raise click.UsageError("--dask-address is the scheduler of --executor dask: add it.")
    if given.get("store_full_include") and not (given.get("store_full") or given.get("docker")):
        raise click.UsageError(
            "--store-full-include adds files to the export that --store-full (or --docker) "
            "writes, and neither is given: add --store-full, or leave --store-full-include out."
        )


def _check_overrides(overrides: tuple[str, ...]) -> None:
    """Refuse ``--set`` giving one field twice (which value was meant?)."""
    from assay.params import field_path

    seen: dict[str, str] = {}
    for override in overrides:
        field = ".".join(field_path(override.partition("=")[0]))  # layers[1] is layers.1
        if field in seen and "=" in override:
            raise click.UsageError(
                f"--set gives {field} twice ({seen[field]} and {override}): give it once."
            )
        seen[field] = override


def _warn_ignored_flags(given: dict) -> None:
    """``--dry`` / ``--paths`` plan only: say which other options therefore do nothing."""
    unused = [
        flag
        for name, flag in _UNUSED_WHEN_PLANNING.items()
        if given.get(name) and (name != "explain" or given.get("paths"))
    ]
    if unused:
        planning = "--paths" if given.get("paths") else "--dry"
        _console(stderr=True).print(
            f"[yellow]Note:[/] {planning} only plans (nothing runs, no run is recorded), so "
            f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} nothing here.",
            soft_wrap=True,
        )


def _selection(names, indices, overrides, overwrite, overwrite_stages, prefix, cache_dir) -> dict:
    """``run_experiment``'s keywords for the options `assay run` and `assay why` share."""
    return dict(
        names=list(names),
        indices=list(indices),
        overrides=list(overrides),
        overwrite=overwrite,
        overwrite_stages=list(overwrite_stages),
        prefix=prefix,
        cache_dir=_from_here(cache_dir),
        command=_command_line(),
    )


def _again_command() -> str:
    """The command a failed or interrupted run tells the user to run again: the one typed,
    or, for the run ``assay reproduce`` starts, that ``assay reproduce`` command (which it
    passes down as ``ASSAY_RUN_AGAIN``; its own ``python -m assay run`` is internal)."""
    return os.environ.get("ASSAY_RUN_AGAIN") or _command_line()


def _command_line() -> str:
    """The command as it was typed: ``assay run ...``, ``python -m assay run ...`` or
    ``/other/venv/bin/assay run ...`` (an ``assay`` that is not the one on PATH)."""
    import shlex
    import shutil

    script = Path(sys.argv[0])
    if script.name == "__main__.py" and script.parent.name == "assay":  # python -m assay
        return shlex.join(sys.orig_argv)
    on_path = shutil.which("assay")
    same = on_path is not None and script.is_file() and script.samefile(on_path)
    return shlex.join(["assay" if same or not script.is_file() else sys.argv[0], *sys.argv[1:]])


# -- params -----------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("experiment", shell_complete=complete.complete_modules("experiments_dir"))
@click.option(
    "-p",
    "--params",
    "param_files",
    multiple=True,
    metavar="PARAMFILE",
    shell_complete=complete.complete_modules("params_dir"),
    help="A parameter file; repeat to combine.",
)
@_NAMES_OPTION
@_INDICES_OPTION
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="FIELD=VALUE",
    callback=_field_equals_value,
    help="Apply an override first.",
)
@click.option("--all-fields", is_flag=True, help="Show every field, not only those that differ.")
def params(experiment, param_files, names, indices, overrides, all_fields):
    """List the parameter sets of a run: names, hashes, and how they differ.

    -n and -i pick the sets as `assay run` would."""
    from assay.cli_output import print_params
    from assay.config import ProjectConfig
    from assay.experiment import select
    from assay.params import apply_overrides, check_pinned_hashes, check_unique_names
    from assay.project import load_experiment, load_param_sets, project_root_for

    _check_overrides(overrides)
    config = ProjectConfig.load(project_root_for(experiment))
    module = load_experiment(experiment, config)
    every = sets = load_param_sets(list(param_files), module, config)
    if names or indices:
        sets = select(sets, names=list(names), indices=list(indices))
    position = {id(p): i for i, p in enumerate(every)}  # each set's -i, as in the file
    in_file = [position[id(p)] for p in sets]
    if overrides:
        sets = apply_overrides(sets, list(overrides))
    print_params(_console(), sets, all_fields=all_fields, indices=in_file)
    check_unique_names(sets)
    check_pinned_hashes(sets)


@main.command(context_settings=_CONTEXT)
@_run_selection
@click.option(
    "--prefix",
    callback=_a_name,
    help="The name artifacts are filed under (default: the experiment's).",
)
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
    from assay.errors import UnknownStageError
    from assay.experiment import run_experiment
    from assay.why import explain

    _check_overrides(overrides)
    selection = _selection(
        names, indices, overrides, overwrite, overwrite_stages, prefix, cache_dir
    )
    try:
        manager = run_experiment(experiment, list(param_files), dry=True, **selection)
    except UnknownStageError as exc:
        _unknown_stage(exc)
    print_explanations(_console(), explain(manager))
    print_plan_stops(_console(), manager)


# -- the run store ----------------------------------------------------------------------


@main.command("ls", context_settings=_CONTEXT)
@click.option(
    "--experiment",
    "-e",
    shell_complete=complete.completer(complete.complete_experiment_runs),
    help="Only runs of this experiment.",
)
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

    console = _console()
    unrun = _project_without_runs()
    if unrun is not None:
        console.print(
            f"No runs yet in the project {unrun}: run an experiment with "
            "`assay run EXPERIMENT`, and it is listed here.",
            soft_wrap=True,
            markup=False,
        )
        return
    with _store() as store:
        shown = store.list_runs(experiment=experiment, status=status, limit=limit or None)
        if not shown and experiment is not None:
            known = store.experiments()
            if experiment not in known:
                console.print(_no_runs_of(experiment, known), soft_wrap=True, markup=False)
                return
        every = store.count_runs(experiment=experiment, status=status) if limit else len(shown)
    print_runs(console, shown)
    if len(shown) < every:
        console.print(
            f"{len(shown)} of {every} runs shown; -n 0 shows all, -n N the newest N.",
            style="dim",
        )


def _no_runs_of(experiment: str, known: list[str]) -> str:
    """``assay ls -e NAME`` when no run is of NAME: which experiments have runs."""
    if not known:
        return f"No runs of experiment {experiment!r}: the run store has no runs yet."
    return (
        f"No runs of experiment {experiment!r}. There are runs of: {', '.join(known)} "
        "(give one of them with -e, or none to list every run)."
    )


@main.command(context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_ref", metavar="[RUN]", type=_RUN, default="latest")
def show(run_ref):
    """Show one run: RUN is its number, id (or a prefix), or 'latest' / -1, -2 ...
    (default: latest)."""
    from assay.cli_output import print_run
    from assay.config import ProjectConfig
    from assay.run_record import run_log_path

    console = _console()
    with _store() as store:
        run = store.get_run(run_ref)
        print_run(console, store, run)
    config = ProjectConfig.load()
    _print_files(
        console,
        [
            ("Log", run_log_path(config, run)),
            ("Report", config.reports_dir / run.id / "index.html"),
        ],
    )


@main.command(context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_refs", metavar="[RUN]...", nargs=-1, type=_RUN)
@click.option("--all", "all_runs", is_flag=True, help="Rebuild the report of every run.")
def report(run_refs, all_runs):
    """Rebuild HTML reports and the index of runs (reports/index.html).

    RUN is a number, an id (or a unique start of it), or 'latest' / -1, -2 ...
    (default: latest). A run's page is rebuilt from its reports/RUN_ID/run.json,
    or, for a run without one (--no-report), from the run store.
    """
    from assay.cli_provenance import path_from_here
    from assay.config import ProjectConfig
    from assay.report import rebuild_reports

    if run_refs and all_runs:
        raise click.UsageError(
            f"--all rebuilds the report of every run, RUN ({' '.join(run_refs)}) of some: "
            "give one of them."
        )
    _store().close()  # a clear message when there is no run store yet
    config = ProjectConfig.load()
    pages = rebuild_reports(config, list(run_refs), all_runs=all_runs)
    console = _console()
    for page in pages:
        console.print(path_from_here(page), soft_wrap=True, markup=False)


def _project_without_runs() -> Path | None:
    """The project folder the current folder is in, if no run has been recorded there yet
    (no run store); ``None`` otherwise, or outside any project (where :func:`_store` says
    that there is no run store, as the folder may be the wrong one)."""
    from assay.config import ProjectConfig, enclosing_project

    root = enclosing_project(Path.cwd())
    if root is None or ProjectConfig.load(root).store_path.exists():
        return None
    return root


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
@click.argument("run_a", metavar="RUN", type=_RUN)
@click.argument("run_b", metavar="[RUN]", type=_RUN, default="latest")
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
        if diff.same_run or diff.unrecorded:  # metrics are recorded as a run ends
            return
        changes = compare_metrics(store.path, diff.a.number, diff.b.number)
        print_metric_changes(_console(), changes)


@main.command(context_settings=_CONTEXT)
@click.argument("artifact", shell_complete=complete.completer(complete.complete_artifacts))
@click.option(
    "--cache", "-c", "cache_dir", type=click.Path(file_okay=False), help="The cache folder."
)
def lineage(artifact, cache_dir):
    """Show how ARTIFACT was made: run, stage code, parameters and upstream artifacts.

    ARTIFACT is EXPERIMENT/PARAMETER-SET/STAGE/OUTPUT (as under data/cache/by-name/),
    a path to a cached file or stage folder, or an artifact key (<stage key>.<output>).
    """
    from assay.cli_provenance import lineage_tree
    from assay.lineage import lineage as find_lineage

    _console().print(lineage_tree(find_lineage(artifact, cache_dir=_from_here(cache_dir))))


@main.command(context_settings=_CONTEXT)
@click.argument("folder", type=click.Path())  # require_export says what is wrong with it
@click.option(
    "--workdir",
    type=click.Path(),
    help="Re-run in this new folder, or in one where this export's reproduction ran before "
    "(default: FOLDER/reproductions/<time>/).",
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
@click.argument("run_ref", metavar="[RUN]", type=_RUN, default="latest")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="The folder to write.")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Also snapshot these files (when the code is snapshotted now).",
)
def export_full(run_ref, output, include):
    """Write RUN's self-contained folder (what --store-full writes) to data/runs/RUN_ID/.

    RUN is a number, an id (or a unique start of it), or 'latest' / -1, -2 ...
    (default: latest).

    The code is snapshotted by a run's first export (--store-full, as the run
    ends); a later export of the run keeps that snapshot, not today's code.
    """
    from assay.cli_provenance import print_written
    from assay.config import ProjectConfig
    from assay.export.full import export_run

    _store().close()
    config = ProjectConfig.load()
    folder = export_run(config, run_ref, destination=output, include=list(include))
    print_written(_console(), "Exported to", folder)


@export.command("docker", context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_ref", metavar="[RUN]", type=_RUN, default="latest")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="The context folder.")
@click.option("--tag", help="The image's name (default: assay-RUN_ID, in lower case).")
@click.option("--no-build", is_flag=True, help="Only write the context; do not build.")
def export_docker(run_ref, output, tag, no_build):
    """Write a Dockerfile and build context that re-create RUN; build it if Docker runs.

    RUN is a number, an id, or 'latest' / -1, -2 ... (default: latest).

    The context holds the code, the pinned environment, the run's cache and a
    wheel of assay (default: data/runs/RUN_ID/docker/).
    """
    from assay.cli_output import shown
    from assay.cli_provenance import print_written
    from assay.config import ProjectConfig
    from assay.export.docker import build_image, export_docker_context

    _store().close()
    config = ProjectConfig.load()
    context = export_docker_context(config, run_ref, destination=output, tag=tag)
    console = _console()
    print_written(console, "Docker build context", context.folder)
    if no_build:
        console.print(f"Build it with: {shown(context.build_command)}", soft_wrap=True)
        return
    built, message = build_image(context)
    console.print(message, soft_wrap=True)


@export.command("notebook", context_settings={**_CONTEXT, "ignore_unknown_options": True})
@click.argument("run_ref", metavar="[RUN]", type=_RUN, default="latest")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The .ipynb to write.")
def export_notebook(run_ref, output):
    """Write a Jupyter notebook that loads RUN's artifacts and can re-run it.

    RUN is a number, an id, or 'latest' / -1, -2 ... (default: latest).
    """
    from assay.cli_provenance import print_written
    from assay.config import ProjectConfig
    from assay.export.notebook import write_notebook

    _store().close()
    config = ProjectConfig.load()
    path = write_notebook(config, run_ref, destination=output)
    print_written(_console(), "Notebook", path)


# -- cache ------------------------------------------------------------------------------


_CACHE_OPTION = click.option(
    "--cache", "-c", "cache_dir", type=click.Path(file_okay=False), help="The cache folder."
)


@main.group(context_settings=_CONTEXT)
def cache():
    """List, verify and clean the artifact cache."""


@cache.command("ls", context_settings=_CONTEXT)
@click.option(
    "--experiment",
    "-e",
    shell_complete=complete.completer(complete.complete_cached_experiments),
    help="Only artifacts filed under this experiment.",
)
@_CACHE_OPTION
def cache_ls(experiment, cache_dir):
    """List cached artifacts by experiment, parameter set and stage.

    The data column is the size of each artifact's files; below the table, what their
    stage run folders hold in all (records, kept reportables, ...) and the whole cache.
    """
    from assay.cache_admin import list_entries
    from assay.cli_output import print_cache_entries

    print_cache_entries(_console(), list_entries(_cache(cache_dir), experiment=experiment))


@cache.command("verify", context_settings=_CONTEXT)
@click.option(
    "--remove",
    is_flag=True,
    help="Remove the entries that fail (a stage run left with no artifact goes whole, with "
    "its by-name links).",
)
@_CACHE_OPTION
def cache_verify(remove, cache_dir):
    """Check every artifact against its recorded size and checksum."""
    from assay.cache_admin import verify_all
    from assay.cli_output import shown
    from assay.config import ProjectConfig

    console = _console()
    store_path = ProjectConfig.load().store_path
    removed: list[str] = []
    checked, bad = verify_all(
        _cache(cache_dir), remove=remove, store_path=store_path, removed=removed
    )
    for _meta, problem in bad:
        console.print(f"[red]FAILED[/] {shown(problem)}")
    for path in removed:
        console.print(f"Removed {shown(path)}", soft_wrap=True)
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
@click.option(
    "--all-projects",
    is_flag=True,
    help="Also remove entries that other projects sharing this cache made (kept by default: "
    "only their own run store knows whether their latest runs use them).",
)
@_CACHE_OPTION
def cache_gc(older_than, dry, all_projects, cache_dir):
    """Remove unfinished writes and entries no experiment links to any more."""
    from assay.cache_admin import collect_garbage, latest_runs_keys
    from assay.config import ProjectConfig

    console = _console()
    store_path = ProjectConfig.load().store_path
    removed, freed = collect_garbage(
        _cache(cache_dir),
        older_than_days=older_than,
        dry=dry,
        keep=latest_runs_keys(store_path),
        all_projects=all_projects,
        store_path=store_path,
    )
    from assay.cli_output import print_gc_result

    print_gc_result(console, removed, freed, dry)


def _cache(cache_dir):
    from assay.cache import open_cache
    from assay.config import ProjectConfig

    return open_cache(ProjectConfig.load().with_cache_dir(_from_here(cache_dir)))


def _from_here(cache_dir):
    return complete.cache_from_command_line(cache_dir)


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

    try:
        serve(project, host=host, port=port, open_browser=open_browser, echo=click.echo)
    except KeyboardInterrupt:  # how it is meant to stop: not a failure (exit status 0)
        click.echo("Dashboard stopped.")


# -- init -------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("folder", default=".", type=click.Path(file_okay=False))
def init(folder):
    """Create a new project in FOLDER: folders, an example experiment and parameter file."""
    from assay.cli_output import print_init
    from assay.scaffold import init_project

    print_init(_console(), init_project(Path(folder)), folder)


if __name__ == "__main__":  # pragma: no cover
    main()
