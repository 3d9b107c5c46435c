"""What the provenance commands print: show's provenance lines, compare, lineage, exports.

Kept apart from :mod:`assay.cli_output` so each command's printing sits with
its kind; every function takes a rich ``Console`` and plain library results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from assay.cli_output import shown as escape  # rich's escape, control characters shown

_STATUS_STYLE = {
    "identical": "green",
    "equivalent": "cyan",
    "different": "red",
    "missing": "yellow",
    "damaged": "red",
}


def provenance_rows(run: Any, provenance: dict | None) -> list[tuple[str, str]]:
    """The ``assay show`` lines about code and environment: git, packages, conda."""
    if provenance is None:
        stopped = {"failed": "failed", "interrupted": "was interrupted"}.get(run.status)
        if stopped:  # as it began (a parameter set that cannot be hashed, ...)
            return [("provenance", f"not recorded: the run {stopped} before it was captured")]
        return [("provenance", "not recorded (a run from before assay recorded it)")]
    git = provenance.get("git") or {}
    if git.get("error"):
        code = f"unknown: {git['error']}"
    elif git.get("commit"):
        code = git["commit"] + (" (dirty: uncommitted changes)" if git.get("dirty") else "")
        code += f" on {git['branch']}" if git.get("branch") else " (detached HEAD)"
    else:
        code = "a git repository without commits"
    rows = [("git commit", code)]
    changed = len(git.get("modified") or []) + len(git.get("untracked") or [])
    if git.get("dirty"):
        rows.append(
            ("changes", f"{len(git.get('modified') or [])} modified, "
                        f"{len(git.get('untracked') or [])} untracked file(s)")
        )  # fmt: skip
    elif changed:
        rows.append(("changes", f"{changed} file(s)"))
    packages = provenance.get("packages") or {}
    editable = provenance.get("editable") or {}
    rows.append(
        (
            "packages",
            f"{len(packages)} installed" + (f", {len(editable)} editable" if editable else ""),
        )
    )
    conda = provenance.get("conda")
    if conda:
        rows.append(("conda", f"{conda.get('name')} ({conda.get('prefix')}), "
                              f"{len(conda.get('packages') or {})} packages"))  # fmt: skip
    return rows


def print_comparison(console: Console, diff: Any) -> None:
    """``assay compare A B``."""
    a, b = diff.a, diff.b
    if diff.same_run:
        console.print(
            f"RUN A and RUN B are the same run, {a.number} ({escape(a.id)}). No differences: "
            "to compare, give two runs (the second RUN defaults to latest)."
        )
        return
    console.print(f"[bold]A[/] run {a.number} ({escape(a.id)})  vs  [bold]B[/] run {b.number} "
                  f"({escape(b.id)})")  # fmt: skip
    if diff.identical:
        console.print(
            f"No differences in parameters, code, packages or artifacts "
            f"({diff.same_artifacts} artifact(s) identical)."
        )
        return
    table = Table(title="differences", show_lines=False)
    for column in ("what", "where", "A", "B"):
        table.add_column(column, overflow="fold")
    for name, x, y in diff.settings:
        table.add_row("setting", name, _text(x), _text(y))
    for name in diff.sets_only_a:
        table.add_row("parameter set", escape(name), "used", "-")
    for name in diff.sets_only_b:
        table.add_row("parameter set", escape(name), "-", "used")
    for change in diff.params:
        table.add_row(
            "parameter", f"{escape(change.param_set)}: {escape(change.field)}",
            _text(change.a), _text(change.b),
        )  # fmt: skip
    for name, (x, y) in diff.code.items():
        if name == "diff":
            table.add_row("code", "uncommitted diff", f"{x} chars", f"{y} chars")
        else:
            table.add_row("code", name, _text(x), _text(y))
    for stage, parts in diff.stage_code.items():
        for name, x, y in parts:
            shown = [digest[:12] if digest else "(not used)" for digest in (x, y)]
            table.add_row("stage code", escape(f"{stage}: {name}"), *shown)
    for stage in diff.stage_code_unknown:  # its artifacts' records are gone from the cache
        table.add_row("stage code", escape(stage), "unknown", "unknown")
    packages = diff.packages
    if packages.recorded != (True, True):
        shown = ["recorded" if r else "not recorded" for r in packages.recorded]
        table.add_row("packages", "(list)", *shown)
    for name, version in packages.added.items():
        table.add_row("package", escape(name), "-", version)
    for name, version in packages.removed.items():
        table.add_row("package", escape(name), version, "-")
    for name, (x, y) in packages.changed.items():
        table.add_row("package", escape(name), x, y)
    for change in diff.artifacts:
        where = f"{change.param_set or '-'} / {change.stage} / {change.name}"
        what = {"key": "artifact key", "checksum": "artifact checksum"}.get(
            change.what, f"artifact {change.what}"
        )
        table.add_row(what, escape(where), change.a or "-", change.b or "-")
    if table.row_count:
        console.print(table)
    console.print(
        f"{len(diff.params)} parameter difference(s), {_code_summary(diff)}, "
        f"{len(packages.added) + len(packages.removed) + len(packages.changed)} in packages, "
        f"{_artifact_summary(diff)}."
    )
    if diff.unrecorded_text():
        console.print(diff.unrecorded_text(), soft_wrap=True)


def _artifact_summary(diff: Any) -> str:
    """``"2 artifact(s) changed, 3 only in A, 5 identical"``."""
    if diff.unrecorded:
        return f"artifacts not compared (run {' and '.join(diff.unrecorded)} recorded none)"
    only_a, only_b = diff.artifacts_only_in("A"), diff.artifacts_only_in("B")
    changed = len(diff.artifacts) - len(only_a) - len(only_b)
    parts = [f"{changed} artifact(s) changed"]
    parts += [
        f"{len(only)} only in {side}" for side, only in (("A", only_a), ("B", only_b)) if only
    ]
    return ", ".join([*parts, f"{diff.same_artifacts} identical"])


def _code_summary(diff: Any) -> str:
    """How the code differs, in words: the stages whose code changed, and the git state."""
    if not (diff.a.git_commit or diff.b.git_commit):
        git = "not in a git repository"
    elif diff.code:
        git = "git " + ", ".join(diff.code) + " differ"
    else:
        git = "same git state"
    return f"{diff.stage_code_summary} ({git})"


def lineage_tree(node: Any) -> Tree:
    """A rich Tree of an :class:`assay.lineage.LineageNode`."""
    tree = Tree(_artifact_label(node))
    _fill(tree, node)
    return tree


def _fill(tree: Tree, node: Any) -> None:
    if node.problem:
        tree.add(f"[yellow]{escape(node.problem)}[/]")
    if node.stage is None:
        return
    if node.seen:
        tree.add("[dim](made as shown above)[/]")
        return
    if node.run:
        run = node.run
        text = f"run {run.get('number')} ({escape(str(run.get('id')))})"
        if run.get("started"):
            text += f", {run['started'][:19].replace('T', ' ')} UTC"
        if run.get("git_commit"):
            text += f", commit {run['git_commit']}" + (
                " [red](dirty)[/]" if run.get("git_dirty") else ""
            )
        if run.get("project"):  # made by another project sharing the cache
            text += f", in project {escape(run['project'])}"
        tree.add(text)
    else:
        tree.add("made outside a recorded run (a notebook)")
    stage = f"stage [bold]{escape(node.stage)}[/]"
    if node.code:
        stage += f", code fingerprint {node.code[:16]}"
    tree.add(stage)
    label = f"parameter set [bold]{escape(str(node.param_set))}[/]"
    if node.aggregated is not None:
        label += f" (aggregates {node.aggregated} record(s))"
    if node.params:
        shown = ", ".join(f"{k}={v}" for k, v in node.params.items() if k != "name")
        label += f": {escape(shown[:300])}"
    elif node.params_hash:
        label += f", hash {node.params_hash[:16]}"
    if node.reads is not None:
        label += f" [dim](the stage read: {escape(', '.join(node.reads) or 'no field')})[/]"
    tree.add(label)
    for item in node.inputs:
        if item.node is not None:
            branch = tree.add(f"input [bold]{escape(item.name)}[/] ← " + _artifact_label(item.node))
            _fill(branch, item.node)
        else:
            tree.add(f"input [bold]{escape(item.name)}[/]: a value passed in (hash "
                     f"{escape(str(item.value_hash))[:16]})")  # fmt: skip


def _artifact_label(node: Any) -> str:
    size = f", {node.size} B" if node.size is not None else ""
    checksum = f", checksum {node.checksum}" if node.checksum else ""
    return f"[bold cyan]{escape(node.output)}[/]  key {escape(node.key)}{checksum}{size}"


def print_reproduction(console: Console, result: Any) -> None:
    """``assay reproduce``: one row per artifact, then the verdict."""
    table = Table(title=f"reproduction of {escape(result.folder.name)}")
    for column in ("status", "parameter set", "stage", "output", "detail"):
        table.add_column(column, overflow="fold")
    for check in result.checks:
        style = _STATUS_STYLE.get(check.status, "yellow")
        table.add_row(
            f"[{style}]{check.status}[/]",
            escape(check.param_set or "-"),
            escape(check.stage),
            escape(check.name),
            escape(check.detail),
        )
    console.print(table)
    counts = result.counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    which = f"run {result.run_id}" if result.run_id else "it stopped before its run was recorded"
    console.print(f"Re-ran in {escape(str(result.workdir))} ({escape(which)}).",
                  soft_wrap=True)  # fmt: skip
    if result.original_status != "completed":
        ended = _ENDED.get(result.original_status, f"ended {result.original_status}")
        console.print(
            f"[yellow]The exported run {escape(ended)}[/] (it did not complete): "
            f"only the {len(result.checks)} artifact(s) it made are compared.",
            soft_wrap=True,
        )
    if result.unsaved:
        console.print(
            f"[yellow]The exported run ran with --dry-cache:[/] the {result.unsaved} stage "
            "run(s) it executed saved nothing, so there is nothing of theirs to compare.",
            soft_wrap=True,
        )
    if result.new:
        console.print(f"{len(result.new)} artifact(s) the original run did not have.")
    if result.failed_alike:
        console.print(
            f"[yellow]The re-run failed as the exported run did:[/] {escape(result.rerun_error)}",
            soft_wrap=True,
        )
    elif result.returncode != 0:
        console.print(f"[red]The re-run failed (exit status {result.returncode}).[/]")
        if result.left_out:
            console.print(
                "The code snapshot left out "
                f"{escape(', '.join(result.left_out))}: if the run read one of them (a data "
                "file), move this export away and export the run again with "
                f"`assay export full {escape(result.original_run or 'RUN')} --include GLOB` "
                "(or run with "
                "`--store-full-include GLOB`).",
                soft_wrap=True,
            )
    if result.packages:
        console.print(
            f"[yellow]{len(result.packages)} package(s) differ from the run's[/] (run → "
            f"reproduction), which can explain differences: {escape(_packages(result.packages))}",
            soft_wrap=True,
        )
    if not result.exact and result.code_note:
        console.print(
            f"[yellow]The export's code may not be the run's code, which can explain "
            f"differences:[/] {escape(result.code_note)}",
            soft_wrap=True,
        )
    verdict = "[green]exact[/]" if result.exact else "[red]not exact[/]"
    if result.exact and counts.get("equivalent"):
        verdict = "[green]exact in values[/] (some saved bytes differ)"
    console.print(f"{summary or 'no artifacts'}: the reproduction is {verdict}.")


_ENDED = {"failed": "failed", "interrupted": "was interrupted", "running": "had not ended"}


def _packages(changes: dict, shown: int = 10) -> str:
    """``numpy 1.26.3 → 2.1.3, scipy 1.11.0 → not installed`` (the first ``shown``)."""
    words = [f"{name} {was} → {now or 'not installed'}" for name, (was, now) in changes.items()]
    more = f", and {len(words) - shown} more" if len(words) > shown else ""
    return ", ".join(words[:shown]) + more


def print_exports(console: Console, manager: Any) -> None:
    """After ``assay run --store-full / --notebook / --docker``: name the exports the run
    wrote (``manager.exports``)."""
    exports = manager.exports
    if "full" in exports:
        print_written(console, "Exported to", exports["full"])
    if "notebook" in exports:
        print_written(console, "Notebook", exports["notebook"])
    if "docker" in exports:
        folder, built = exports["docker"]
        print_written(console, "Docker build context", folder)
        console.print(escape(built), soft_wrap=True)


def print_written(console: Console, what: str, path: Path) -> None:
    """``Notebook: notebooks/run.ipynb``: a file or folder written, as it opens from here."""
    console.print(f"{what}: {escape(path_from_here(path))}", soft_wrap=True)


def path_from_here(path: str | Path) -> str:
    """``path`` as it opens from the current folder: relative to it when inside it
    (``logs/run.log``, also from a sub-folder of the project), else absolute."""
    absolute = Path(path).absolute()
    here = Path.cwd()
    for there in (absolute, absolute.resolve()):  # resolved: a project reached by a link
        if there.is_relative_to(here):
            return str(there.relative_to(here))
    return str(absolute)


def _text(value: Any) -> str:
    text = "-" if value is None else str(value)
    return escape(text if len(text) <= 200 else text[:197] + "...")
