"""What the command line prints: progress, plans, run listings — all with rich."""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from assay.humanize import format_size, printable
from assay.run_record import executed_on, stage_status, stages_ran
from assay.runner import Observer


def shown(text: object) -> str:
    """``text`` to put into rich markup (``console.print(f"Run {shown(name)}")``): its
    brackets print as they are (``[lower]`` is no style) and :func:`printable`."""
    return escape(printable(text))


def _styled(status: str, label: str | None = None) -> str:
    """``status`` in its colour (rich markup), escaped."""
    style = _STATUS_STYLE.get(status)
    text = shown(label if label is not None else status)
    return f"[{style}]{text}[/]" if style else text


_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
    "executed": "green",
    "run": "green",
    "cached": "blue",
    "shared": "blue",
    "unneeded": "dim",
    "skipped": "dim",
}


class ProgressObserver(Observer):
    """A progress bar over the stage runs that execute, with those running now and how
    many wait for a worker (``work [s0], work [s1] (4 queued)``).

    Stage runs that execute while ``run()`` is still being planned (it read one of
    their outputs) show on a bar without a total, which the plan gives it later.
    """

    def __init__(self, console: Console, quiet: bool = False, explain: bool = False):
        self.console = console
        self.quiet = quiet
        self.explain = explain
        self.progress: Progress | None = None
        self.task = None
        self.done = 0
        self.running: dict[int, Any] = {}  # the stage runs, in the order they started
        self.queued: set[int] = set()

    def planned(self, plan: Any) -> None:
        if self.explain:
            from assay.why import explain

            print_explanations(self.console, explain(plan.runner.manager))
        total = self.done + sum(1 for n in plan.nodes if n.status == "run")
        if self.progress is not None:
            self.progress.update(self.task, total=total)
        elif total:
            self._show(total)

    def _show(self, total: int | None) -> None:
        if self.quiet or not self.console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}", markup=False),  # "[lower]": no markup
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("stages", total=total, current="")

    def stage_queued(self, node: Any) -> None:
        self.queued.add(id(node))
        if self.progress is not None:
            self.progress.update(self.task, current=self._current())

    def stage_started(self, node: Any) -> None:
        if self.progress is None and self.done == 0:
            self._show(None)  # run() is still being planned: the total is not known yet
        self.queued.discard(id(node))
        self.running[id(node)] = node
        if self.progress is not None:
            self.progress.update(self.task, current=self._current())

    def stage_finished(self, node: Any) -> None:
        self.done += 1
        self.queued.discard(id(node))
        self.running.pop(id(node), None)
        if self.progress is not None:
            if self.running or self.queued:  # else the last one stays until the next starts
                self.progress.update(self.task, current=self._current())
            self.progress.advance(self.task)

    def _current(self) -> str:
        """The stage runs running (two named, the rest counted) and how many are queued."""
        nodes = list(self.running.values())
        text = ", ".join(printable(f"{n.spec.name} [{n.record_label}]") for n in nodes[:2])
        if len(nodes) > 2:
            text += f" and {len(nodes) - 2} more"
        return f"{text} ({len(self.queued)} queued)" if self.queued else text

    def close(self) -> None:
        """Stop the progress display (safe to call twice)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def print_run_result(console: Console, manager: Any, quiet: bool = False) -> None:
    """The closing lines of ``assay run``."""
    from assay.experiment import summarize

    run = manager.run_info
    unwritten = " (--dry-cache: nothing was written to the cache)" if manager.dry_cache else ""
    console.print(
        f"Run [bold]{run.number}[/] ({shown(run.id)}) {_styled(run.status)} in "
        f"{run.duration_s or 0:.1f}s: {summarize(manager.plan.nodes, run.status)}{unwritten}."
    )
    if quiet:
        return
    from assay.cli_provenance import path_from_here  # it imports this module

    for label, path in (
        ("Log", manager.config.logs_dir / f"{run.id}.log"),
        ("Report", manager.config.reports_dir / run.id / "index.html"),
    ):
        if path.exists():  # as it opens from here: assay may run in a sub-folder
            console.print(f"{label}: {shown(path_from_here(path))}", style="dim", soft_wrap=True)


def print_stage_failure(
    console: Console, exc: Any, command: str, unwritten: str | None = None
) -> None:
    """A failed stage: its own traceback (user code only), the message, how to resume
    (``unwritten``: as for :func:`what_is_kept`)."""
    _print_frames(console, code_frames(exc.original.__traceback__), "the stage's code")
    console.print(f"[bold red]Error:[/] {shown(str(exc))}")
    console.print(_how_to_go_on(command, unwritten))


def what_is_kept(unwritten: str | None = None) -> str:
    """What a failed or stopped ``assay run`` leaves for the next one: the stages that
    finished are cached, unless the option ``unwritten`` (``--dry-cache``, ``--dry``,
    ``--paths``) kept the run from writing."""
    if unwritten == "--dry-cache":
        return (
            "--dry-cache wrote nothing to the cache: what the run computed is computed "
            "again next time."
        )
    if unwritten:
        return f"Nothing was executed or written ({unwritten})."
    return "Stages that finished are cached."


def _how_to_go_on(command: str, unwritten: str | None) -> str:
    go_on = "" if unwritten else " to continue"
    return (
        f"{shown(what_is_kept(unwritten))} Fix the problem and run the same command "
        f"again{go_on}: [bold]{shown(command)}[/]"
    )


def print_code_failure(
    console: Console,
    exc: BaseException,
    frames: list,
    command: str | None,
    unwritten: str | None = None,
) -> None:
    """An exception raised by the experiment's own code outside any stage (its ``run()``,
    a helper it calls): that code's traceback, the message, and how to go on (for
    ``assay run``'s ``command``; ``unwritten`` as for :func:`what_is_kept`)."""
    _print_frames(console, frames, "the experiment's code")
    where = frames[-1]
    console.print(
        f"[bold red]Error:[/] {shown(type(exc).__name__)}: {shown(str(exc))} "
        f"(raised in {shown(where.name)}(), {shown(where.filename)} line {where.lineno}; "
        "--debug shows the whole traceback)"
    )
    if command:
        console.print(_how_to_go_on(command, unwritten))


def code_frames(tb: Any) -> list[traceback.FrameSummary]:
    """The frames of a traceback that are the researcher's code: from the first frame
    outside assay, the standard library and installed packages (the experiment, its
    helpers) to where it was raised, assay's own frames left out. Empty when no frame
    is the researcher's (a problem inside assay or a package: show everything)."""
    frames = traceback.extract_tb(tb)
    first = next((i for i, f in enumerate(frames) if _is_researchers(f.filename)), None)
    if first is None:
        return []
    return [f for f in frames[first:] if not _inside(f.filename, _ASSAY_FOLDER)]


def _print_frames(console: Console, frames: list, whose: str) -> None:
    if frames:
        console.print(f"[dim]Traceback ({whose}):[/]")
        for line in traceback.format_list(frames):
            console.print(shown(line.rstrip()), style="dim")


def _is_researchers(filename: str) -> bool:
    if filename.startswith("<") or os.path.realpath(filename) == _SCRIPT:
        return False  # <frozen runpy>, <string>; the `assay` command's own script
    return not any(_inside(filename, folder) for folder in _NOT_RESEARCHERS)


def _inside(filename: str, folder: str) -> bool:
    return os.path.realpath(filename).startswith(folder)


_ASSAY_FOLDER = os.path.join(os.path.dirname(os.path.realpath(__file__)), "")
_NOT_RESEARCHERS = {
    _ASSAY_FOLDER,
    *(
        os.path.join(os.path.realpath(sysconfig.get_paths()[name]), "")
        for name in ("stdlib", "platstdlib", "purelib", "platlib")
    ),
}
_SCRIPT = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""


def print_plan(console: Console, manager: Any) -> None:
    """The plan of a ``--dry`` run: every stage run and what will happen to it.

    A stage run with the same inputs (the same cache key) as one that executes
    earlier in the run is shown as ``shared``: it reuses that one's outputs, as
    ``assay why`` says.
    """
    table = Table(title=f"Plan of {shown(manager.experiment_name)} (dry run: nothing executed)")
    for column in ("parameter set", "stage", "plan", "why / from"):
        table.add_column(column, overflow="fold")
    counts: dict[str, int] = {}
    from assay.why import own_runs

    own = own_runs(manager)
    for node in manager.plan.nodes:
        status, detail = _planned(manager, node, own)
        counts[status] = counts.get(status, 0) + 1
        label = {"run": "execute", "unneeded": "not needed"}.get(status, status)
        table.add_row(
            shown(node.record_label),
            shown(node.spec.name),
            _styled(status, label),
            shown(detail),
        )
    console.print(table)
    console.print(
        f"{counts.get('run', 0)} to execute, "
        + (f"{counts['shared']} shared, " if counts.get("shared") else "")
        + f"{counts.get('cached', 0)} cached, {counts.get('unneeded', 0)} not needed."
    )
    print_plan_stops(console, manager)


def _planned(manager: Any, node: Any, own: Any) -> tuple[str, str]:
    """What the plan does with one stage run, and why (or which run made its artifact)."""
    if node.status == "cached":
        meta = (
            manager.cache.read_meta(node.key, node.outputs[0].name)
            if node.outputs and node.key
            else None
        )
        number = (meta or {}).get("run_number")
        if number is None:
            return "cached", "cache"
        from assay.why import made_in_project

        elsewhere = made_in_project(manager, meta, own)
        return "cached", f"run {number}" + (f" of {elsewhere}" if elsewhere else "")
    other = manager.runner.shared_earlier(node) if node.status == "run" else None
    if other is not None:
        return "shared", f"same inputs as {other.spec.name} [{other.record_label}]"
    return node.status, node.reason


def print_plan_stops(console: Console, manager: Any) -> None:
    """After a plan made without executing: why it covers only part of the run, if it does."""
    if manager.plan_stops:
        console.print(f"[yellow]{shown(manager.plan_stops)}[/]")


def print_explanations(console: Console, explanations: list) -> None:
    """``assay why``: every stage run, and why it executes or is reused."""
    labels = {
        "run": "[green]executes[/]",
        "executed": "[green]executed[/]",
        "cached": "[blue]reused[/]",
        "shared": "[blue]shared[/]",
        "unneeded": "[dim]not needed[/]",
    }
    for item in explanations:
        head = shown(f"{item.stage} [{item.param_set}]")
        label = labels.get(item.status, item.status)
        console.print(f"{label} {head}: {shown(item.reasons[0])}", soft_wrap=True)
        for reason in item.reasons[1:]:
            console.print(f"    {shown(reason)}", soft_wrap=True)
        for line in item.details:
            style = "red" if line.startswith("-") else "green" if line.startswith("+") else "dim"
            console.print(f"      {shown(line)}", style=style, soft_wrap=True, highlight=False)
    runs = sum(1 for i in explanations if i.status in ("run", "executed"))
    console.print(f"{runs} of {len(explanations)} stage runs execute.")


def print_paths(console: Console, manager: Any) -> None:
    """Where each artifact of the run is (or would be) cached, by the names ``by-name/``
    files it under (an aggregate's folder is ``aggregate-DIGEST``)."""
    from assay.cache import link_label
    from assay.cli_provenance import path_from_here

    for node in manager.plan.nodes:
        if node.key is None:
            where = _unknown_path(node)
        else:
            where = manager.cache.where(node.key)
            where = where if manager.cache.remote else path_from_here(where)
        for artifact in node.outputs:
            if artifact.cacher is None:
                continue
            state = "cached" if artifact.cached else "missing"
            print_tab_separated(
                console, [link_label(node), node.spec.name, artifact.name, state, where]
            )


def print_tab_separated(console: Console, fields: list) -> None:
    """One line of tab-separated fields (``cut -f5`` reads the fifth), written as they
    are: rich's ``print`` turns tabs into spaces. A tab or newline inside a field is
    written as ``\\t`` / ``\\n``, other control characters as :func:`printable` does."""
    if console.quiet:  # silenced: the reader went away
        return
    cells = (printable(f).replace("\t", "\\t").replace("\n", "\\n") for f in fields)
    try:
        console.file.write("\t".join(cells) + "\n")
    except BrokenPipeError:  # `assay run ... --paths | head -1`
        console.on_broken_pipe()


def _unknown_path(node: Any) -> str:
    """What ``--paths`` prints for a stage run whose cache key is not known yet: it waits
    for a stage upstream to run, or (a stage that never ran with this code) for its own
    first run, which says the parameters it reads."""
    if any(dep.key is None for dep in node.deps):
        return "(unknown-until-upstream-runs)"
    return "(unknown-until-it-first-runs)"


def print_params(
    console: Console,
    param_sets: list,
    all_fields: bool = False,
    indices: Sequence[int] | None = None,
) -> None:
    """``assay params``: names, hashes and the fields that differ.

    ``indices``: each set's position among all the sets of the parameter files, as
    ``-i`` takes it (when ``-n`` / ``-i`` picked some of them); default 0, 1, 2 ...
    More fields than the terminal is wide for are shown in several tables, each with
    the sets' names, so that no column is squeezed to nothing.
    """
    from assay.params import describe, diff_fields

    values = [describe(p) for p in param_sets]
    if all_fields:
        fields = [k for k in values[0] if k != "name"] if values else []
    else:
        fields = diff_fields(param_sets)
    positions = list(range(len(param_sets)) if indices is None else indices)
    rows = [
        [str(index), shown(params.name), type(params).__qualname__, params.params_hash()[:12]]
        for index, params in zip(positions, param_sets)
    ]
    for number, group in enumerate(_field_groups(console.width, rows, fields, values)):
        title = f"{len(param_sets)} parameter set(s)" if number == 0 else "(continued)"
        table = Table(title=title)
        table.add_column("#", justify="right", no_wrap=True)
        # Names are what --names takes: a narrow terminal folds them, never cuts them
        # ("…"), or two sets that differ at the end would look the same. Values likewise.
        table.add_column("name", overflow="fold")
        table.add_column("class", overflow="fold")
        table.add_column("hash", no_wrap=True, min_width=12)
        for field in group:
            table.add_column(shown(field), overflow="fold")
        for row, described in zip(rows, values):
            table.add_row(*row, *(shown(str(described.get(f, ""))) for f in group))
        console.print(table)
    if len(param_sets) > 1 and not all_fields:
        differ = ", ".join(fields) if fields else "none: the sets differ only in their names"
        console.print(f"Fields that differ: {shown(differ)}")


_NARROWEST = 10
"""The narrowest ``assay params`` lets a column of text be before it starts another table
(rich folds longer values within it)."""


def _field_groups(
    width: int, rows: list[list[str]], fields: list[str], values: list[dict]
) -> list[list[str]]:
    """``fields`` in groups of as many as fit, each in a column at least
    :data:`_NARROWEST` wide (or as wide as its values), beside the number, name, class
    and hash of ``rows`` in a terminal ``width`` characters wide; one group at least."""

    def narrowest(texts: list[str]) -> int:
        return min(max(map(len, texts), default=0), _NARROWEST) + 3  # 3: borders, padding

    fixed = 1 + sum(narrowest([row[i] for row in rows]) for i in range(3)) + 12 + 3
    groups: list[list[str]] = [[]]
    room = width - fixed
    for field in fields:
        needed = narrowest([field, *(str(v.get(field, "")) for v in values)])
        if groups[-1] and needed > room:
            groups.append([])
            room = width - fixed
        groups[-1].append(field)
        room -= needed
    return groups


def print_runs(console: Console, runs: list) -> None:
    """``assay ls``: one row per run. The parameter sets are summarised (``assay show
    RUN`` names them all), followed by the run's ``--set`` overrides, if any: runs that
    differ only by them look different."""
    if not runs:
        console.print("No runs match.")
        return
    table = Table()
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("experiment", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("started (UTC)", min_width=10)  # narrow: the time under the date
    table.add_column("duration", justify="right", overflow="fold")
    # A name too long for a narrow terminal is folded over lines, never cut: two names
    # that differ at their end must not look alike.
    table.add_column("parameter sets", overflow="fold")
    table.add_column("notes", overflow="fold")
    for run in runs:
        table.add_row(
            str(run.number),
            shown(run.experiment),
            _styled(run.status),
            run.started[:19].replace("T", " "),
            f"{run.duration_s:.1f}s" if run.duration_s is not None else "",
            _sets_and_overrides(run),
            shown(_note_in_list(run.notes)),
        )
    console.print(table)


NOTE_IN_LIST = 80
"""How many characters of a run's notes ``assay ls`` shows (``assay show RUN``: all)."""


def _note_in_list(notes: str | None) -> str:
    """A run's notes as ``assay ls`` shows them: the first line, at most
    :data:`NOTE_IN_LIST` characters, ``…`` where more follows (a note of a page or many
    lines made one run fill the screen)."""
    lines = (notes or "").strip().splitlines() or [""]
    first = " ".join(lines[0].split())
    if len(first) > NOTE_IN_LIST:
        return first[: NOTE_IN_LIST - 1].rstrip() + "…"
    return first + (" …" if len(lines) > 1 else "")


def _sets_and_overrides(run: Any) -> Any:
    """``assay ls``'s cell of a run's parameter sets, and under them its ``--set``
    overrides (folded if they must be, never cut: their values tell runs apart)."""
    sets = Text(printable(_summarised(run.param_names)))
    found = run.config.get("overrides") if isinstance(run.config, dict) else None
    if not found:
        return sets
    overrides = " ".join(printable(item) for item in found)
    return Group(sets, Text.assemble(("--set ", "dim"), overrides, overflow="fold"))


def _summarised(names: list[str], shown_at_most: int = 3) -> str:
    """``"a, b, c (+5 more)"``."""
    more = len(names) - shown_at_most
    listed = ", ".join(names[:shown_at_most])
    return f"{listed} (+{more} more)" if more > 0 else listed


SHOWN_ROWS = 200
"""``assay show`` lists at most this many parameter sets and stage runs."""


def print_run(console: Console, store: Any, run: Any, config: Any = None) -> None:
    """``assay show RUN`` (``config``: the project's settings, where a run still going on
    keeps its progress file; default: those of the project of the current folder)."""
    console.print(f"[bold]Run {run.number}[/]  {shown(run.id)}  {_styled(run.status)}")
    rows = [
        ("experiment", run.experiment),
        ("started", run.started),
        ("ended", run.ended or ""),
        ("duration", f"{run.duration_s:.2f}s" if run.duration_s is not None else ""),
        ("command", run.command),
        ("host / user", f"{run.host} / {run.user}"),
        ("python", run.python),
        ("platform", run.platform),
        ("notes", run.notes or ""),
    ]
    if run.error:
        rows.append(("error", run.error))
    settings = run.config if isinstance(run.config, dict) else {}
    if settings.get("cwd"):  # the command's relative paths are relative to it
        rows.insert(5, ("typed in", settings["cwd"]))
    if settings.get("overrides"):
        rows.append(("overrides", " ".join(settings["overrides"])))
    if settings.get("executor"):
        executed = stages_ran(run.status, (s.status for s in store.stages(run.id)))
        rows.append(("executed on", executed_on(settings, executed)))
    from assay.cli_provenance import provenance_rows

    rows += provenance_rows(run, store.provenance(run.id))
    for name, value in rows:
        console.print(f"  {name:<12} {shown(str(value))}")
    sets = store.param_sets(run.id)
    if sets:
        table = Table(title="parameter sets")
        table.add_column("name", overflow="fold")  # folded, never cut: --names takes them
        table.add_column("hash", no_wrap=True, min_width=12)
        table.add_column("values", overflow="fold")
        for p in sets[:SHOWN_ROWS]:
            # Every field (the table wraps long lines); text quoted, so "[a]" is not a list.
            values = ", ".join(
                f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                for k, v in p.values.items()
                if k != "name"
            )
            table.add_row(shown(p.name), p.hash[:12], shown(values))
        console.print(table)
        if len(sets) > SHOWN_ROWS:
            console.print(f"... and {len(sets) - SHOWN_ROWS} more parameter sets.")
    stages = store.stages(run.id)
    if stages:
        table = Table(title="stages")
        for column in ("parameter set", "stage", "status", "seconds"):
            table.add_column(column, overflow="fold")
        for s in stages[:SHOWN_ROWS]:
            table.add_row(
                shown(s.param_set or ""),
                shown(s.stage),
                _styled(stage_status(s.status, run.status)),
                f"{s.duration_s:.3f}" if s.duration_s is not None else "",
            )
        console.print(table)
        if len(stages) > SHOWN_ROWS:
            console.print(f"... and {len(stages) - SHOWN_ROWS} more stage runs.")
    elif run.status == "running":  # the run store learns its stages when it ends
        print_progress(console, store, run, config)
    artifacts = store.artifacts(run.id)
    if artifacts:
        computed = sum(1 for a in artifacts if a.action == "computed")
        console.print(
            f"artifacts: {computed} computed, {len(artifacts) - computed} reused from the cache"
        )


def print_progress(console: Console, store: Any, run: Any, config: Any = None) -> None:
    """The stage runs of a run still going on that are done and running, and how many
    are pending: from its progress file (``logs/RUN_ID.progress.json``) and the cache,
    as the dashboard reads them (:func:`assay.ui.live.progress`)."""
    from assay.ui.live import progress

    if config is None:
        from assay.config import ProjectConfig

        config = ProjectConfig.load()
    info = progress(run, config, store)
    rows = [(f.get("param_set"), f.get("stage"), "executed") for f in info["finished"]]
    rows += [(*_set_and_stage(text), "running") for text in info["current"]]
    if rows:
        table = Table(title="stages so far")
        for column in ("parameter set", "stage", "status"):
            table.add_column(column, overflow="fold")
        for param_set, stage, status in rows:
            table.add_row(shown(param_set or ""), shown(stage or ""), _styled(status))
        console.print(table)
    console.print(_progress_line(info), soft_wrap=True)
    if info["done_note"]:
        console.print(shown(info["done_note"]), style="dim", soft_wrap=True)


def _set_and_stage(text: str) -> tuple[str, str]:
    """``"train [g-lr=0.1]"`` (as a progress file names a stage run) as ``("g-lr=0.1",
    "train")``."""
    stage, _, label = str(text).partition(" [")
    return label.removesuffix("]"), stage


def _progress_line(info: dict) -> str:
    """``"Of 8 stage run(s) to execute: 3 done, 2 running, 3 pending (1 of them sent to
    workers, waiting for a free one)."``"""
    done, total, running = info["done"] or 0, info["total"], len(info["current"])
    if total is None:
        return f"{done} stage run(s) done, {running} running; how many follow is not known."
    pending = max(total - done - running, 0)
    counts = f"{done} done, {running} running, {pending} pending"
    if info.get("queued"):
        counts += f" ({info['queued']} of them sent to workers, waiting for a free one)"
    if info["total_source"] == "the engine's plan":
        return f"Of {total} stage run(s) to execute: {counts}."
    return f"Of about {total} stage run(s) ({info['total_source']}): {counts}."


def print_cache_entries(console: Console, entries: list[dict]) -> None:
    """``assay cache ls`` (``entries`` from :func:`assay.cache_admin.list_entries`)."""
    if not entries:
        console.print(shown(_nothing_listed(entries)), soft_wrap=True)
        return
    table = Table()
    for column in ("experiment", "parameter set", "stage", "output", "data", "created", "run"):
        table.add_column(column)
    total = 0
    for entry in entries:
        total += entry.get("size") or 0
        table.add_row(
            shown(str(entry.get("experiment"))),
            shown(str(entry.get("param_set"))),
            shown(str(entry.get("stage"))),
            shown(str(entry.get("output"))),
            format_size(entry.get("size") or 0),
            str(entry.get("created", "")),
            str(entry.get("run_number") or ""),
        )
    console.print(table)
    stored = getattr(entries, "artifacts", len(entries))  # a shared one counts once
    size = getattr(entries, "size", total)
    shared = f" ({len(entries)} rows: one that sets share is listed under each)"
    console.print(
        f"{stored} artifact(s), {format_size(size)} of data"
        + (shared if len(entries) > stored else "")
        + "."
    )
    console.print(shown(_disk_use_text(entries)), soft_wrap=True)


def _disk_use_text(entries: Any) -> str:
    """What ``assay cache ls``'s artifacts take on disk, beyond their data (the ``data``
    column counts only the files each artifact's cacher wrote)."""
    on_disk = getattr(entries, "on_disk", 0)
    folders = getattr(entries, "folders", 0)
    text = (
        f"Their {folders} stage run folder(s) hold {format_size(on_disk)} of files in all: "
        "the data, each artifact's record (.meta.json), the stage runs' kept reportables "
        "and state, and files stages wrote there themselves."
    )
    total = getattr(entries, "total", None)
    if total is not None:
        text += (
            f" The whole cache holds {format_size(total)} of files (with stage runs that keep "
            "no artifact, code texts for assay why and compare, read indexes, by-name links)."
        )
    return text


def _nothing_listed(entries: Any) -> str:
    """Why ``assay cache ls`` lists nothing: the cache is empty, or it has nothing filed
    under the experiment asked for (then which experiments it has)."""
    experiment = getattr(entries, "experiment", None)
    if not experiment:
        return "The cache is empty."
    others = getattr(entries, "experiments", None) or []
    if not others:
        return f"The cache has no artifacts of experiment {experiment!r}: it is empty."
    if experiment in others:
        return (
            f"The cache has no artifacts of experiment {experiment!r} left: its by-name "
            "links point to entries that are gone (assay cache gc removes such links)."
        )
    return (
        f"The cache has no artifacts of experiment {experiment!r}. It has artifacts of: "
        f"{', '.join(others)} (give one of them with -e, or none to list every artifact)."
    )


def print_gc_result(console: Console, removed: list[str], freed: int, dry: bool) -> None:
    """``assay cache gc``: what it removed (or would), and the space it frees."""
    verb = "Would remove" if dry else "Removed"
    for path in removed:
        console.print(f"{verb} {shown(path)}", soft_wrap=True)
    entries = f"{len(removed)} entr{'y' if len(removed) == 1 else 'ies'}"
    console.print(f"{verb} {entries}, {format_size(freed)}.")


def print_metric_changes(console: Console, changes: list) -> None:
    """``assay compare``: the final value of each metric in run A and run B ("-": the run
    did not log it; "nan": it logged NaN)."""
    if not changes:
        return
    table = Table(title="metrics (final values)")
    for column in ("parameter set", "stage", "metric", "A", "B", "B - A"):
        table.add_column(column, overflow="fold")
    for change in changes:
        delta = "-" if change.delta is None else f"{change.delta:+.6g}"
        style = "yellow" if change.changed else "cyan" if change.only_in else "dim"
        table.add_row(
            shown(change.param_set or "-"),
            shown(change.stage or "-"),
            shown(change.name),
            _metric_value(change.a, logged=change.only_in != "B"),
            _metric_value(change.b, logged=change.only_in != "A"),
            delta,
            style=style,
        )
    console.print(table)
    console.print(_metric_summary(changes))


def _metric_value(value: float | None, logged: bool) -> str:
    if not logged:
        return "-"
    return "nan" if value is None else f"{value:.6g}"  # the run store keeps NaN as NULL


def _metric_summary(changes: list) -> str:
    """``"2 of 5 metric(s) differ, 1 only in A."``: metrics only one run logged are
    counted apart from those both runs logged."""
    both = [c for c in changes if c.only_in is None]
    only = {side: sum(1 for c in changes if c.only_in == side) for side in ("A", "B")}
    sides = [f"{count} only in {side}" for side, count in only.items() if count]
    if not both:
        return f"No metric logged by both runs: {', '.join(sides)}."
    differ = sum(1 for c in both if c.changed)
    return ", ".join([f"{differ} of {len(both)} metric(s) differ", *sides]) + "."


def print_init(console: Console, done: Any, folder: str) -> None:
    """``assay init FOLDER``: what it made and kept (``done``, from
    :func:`assay.scaffold.init_project`), and the command to run next."""
    for path in done.created:
        console.print(f"created {shown(path)}", soft_wrap=True)
    for path in done.kept:
        console.print(f"kept {shown(path)} (it was there: left as it is)", soft_wrap=True)
    if done.ignore_lines:
        added = " ".join(done.ignore_lines)
        console.print(f"added {shown(added)} to {shown(done.folder / '.gitignore')}")
    here = Path(folder).resolve() == Path.cwd().resolve()
    if not (done.created or done.kept or done.ignore_lines):
        which = "This folder" if here else shown(done.folder)
        console.print(f"{which} is an assay project already: nothing to add.")
    if done.outer is not None:
        console.print(
            f"[yellow]Note:[/] {shown(done.folder.resolve())} is inside the assay project "
            f"{shown(done.outer)}. assay commands run in it (or below it) now use this new "
            "project, its cache and run store, not that one.",
            soft_wrap=True,
        )
    if done.example is None:
        where = done.example_file
        why = (
            f"{shown(where.as_posix())} was there already"
            if where is not None
            else "the experiments folder (setting experiments_dir) is outside the project"
        )
        console.print(
            f"The example was not installed: {why}. Run an experiment of yours with: "
            f"[bold]assay run NAME[/] (NAME: a file in "
            f"{shown(where.parent.as_posix()) + '/' if where is not None else 'that folder'}).",
            soft_wrap=True,
        )
        return
    console.print(f"\nNext: [bold]{shown(done.example)}[/]" + ("" if here else _after_cd(folder)))


def _after_cd(folder: str) -> str:
    """`` (after cd FOLDER)``, quoted for a shell; ``./-x`` for a name ``cd`` would take
    for an option."""
    import shlex

    return f" (after cd {shown(shlex.quote(f'./{folder}' if folder.startswith('-') else folder))})"
