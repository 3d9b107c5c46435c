"""Tab completion for the ``assay`` command line (see :mod:`assay.cli` for enabling it).

Completers read files only (the project's folders, the run store, the cache's by-name
folder), never an experiment; on any error they offer nothing rather than a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

_COMPLETED_RUNS = 200  # the newest runs whose numbers, ids and names are offered


def completer(find: Callable[[click.Context, str], list]) -> Callable:
    """A ``shell_complete`` function offering ``find(ctx, incomplete)``, or nothing if it fails."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        from click.shell_completion import CompletionItem

        try:
            found = find(ctx, incomplete)
        except Exception:  # a broken assay.toml, an unreadable store: no candidates
            return []
        return [c if isinstance(c, CompletionItem) else CompletionItem(c) for c in found]

    return complete


def _looks_like_path(incomplete: str) -> bool:
    return "/" in incomplete or incomplete.endswith(".py") or incomplete.startswith((".", "~"))


def complete_modules(folder_setting: str) -> Callable:
    """Shell completion for an experiment or parameter file: a name in its folder
    (``sub.name`` for ``sub/name.py``), or a path once what is typed looks like one."""

    def find(ctx: click.Context, incomplete: str) -> list:
        from click.shell_completion import CompletionItem

        from assay.config import ProjectConfig

        if _looks_like_path(incomplete):
            return [CompletionItem(incomplete, type="file")]
        folder = getattr(ProjectConfig.load(), folder_setting)
        modules = [p.relative_to(folder).with_suffix("").parts for p in folder.rglob("*.py")]
        names = (
            ".".join(parts)
            for parts in modules
            if not any(part.startswith(("_", ".")) for part in parts)  # .ipynb_checkpoints/
        )
        return sorted(n for n in names if n.startswith(incomplete))

    return completer(find)


def _completion_store():
    """The project's run store to read candidates from (an error if there is none)."""
    from assay.config import ProjectConfig
    from assay.store import RunStore

    path = ProjectConfig.load().store_path
    if not path.is_file():
        raise FileNotFoundError(path)
    return RunStore(path)


def complete_runs(ctx: click.Context, incomplete: str) -> list:
    """Run numbers (or ids, once a letter is typed) and ``latest``, newest first."""
    from click.shell_completion import CompletionItem

    with _completion_store() as store:
        runs = store.list_runs(limit=_COMPLETED_RUNS)
    found = []
    if runs and "latest".startswith(incomplete):
        found.append(CompletionItem("latest", help=runs[0].id))
    for run in runs:
        if incomplete.isdigit() or not incomplete:
            if str(run.number).startswith(incomplete):
                found.append(CompletionItem(str(run.number), help=f"{run.id} {run.status}"))
        elif run.id.startswith(incomplete):
            found.append(CompletionItem(run.id, help=run.status))
    return found


def _typed_experiment(ctx: click.Context) -> str | None:
    """The experiment's name as runs record it, from the EXPERIMENT typed before (if any)."""
    # Before an option still waiting for its value (`-n <TAB>`), click leaves it unparsed.
    typed = ctx.params.get("experiment") or next(iter(ctx.args), None)
    if not typed:
        return None
    return Path(typed).stem if _looks_like_path(typed) else typed


def _runs_of_typed_experiment(ctx: click.Context) -> list:
    with _completion_store() as store:
        return store.list_runs(experiment=_typed_experiment(ctx), limit=_COMPLETED_RUNS)


def complete_set_names(ctx: click.Context, incomplete: str) -> list:
    """``-n``: the parameter-set names the experiment's recent runs used."""
    names = dict.fromkeys(n for run in _runs_of_typed_experiment(ctx) for n in run.param_names)
    return [n for n in names if n.startswith(incomplete)]


def complete_stages(ctx: click.Context, incomplete: str) -> list:
    """``--overwrite-stage``: the stages of the experiment's latest run."""
    runs = _runs_of_typed_experiment(ctx)
    if not runs:
        return []
    with _completion_store() as store:
        stages = dict.fromkeys(s.stage for s in store.stages(runs[0].id))
    return [s for s in stages if s.startswith(incomplete)]


def complete_experiment_runs(ctx: click.Context, incomplete: str) -> list:
    """``ls -e``: the experiments the run store has runs of."""
    with _completion_store() as store:
        runs = store.list_runs(limit=None)
    return sorted({r.experiment for r in runs if r.experiment.startswith(incomplete)})


def _by_name_folder(ctx: click.Context) -> Path:
    """The ``by-name`` folder of the cache ``--cache`` (or the project's settings) names."""
    from assay.config import ProjectConfig

    config = ProjectConfig.load().with_cache_dir(
        cache_from_command_line(ctx.params.get("cache_dir"))
    )
    if config.cache_url:  # a cache at a URL: not listed for completion
        raise FileNotFoundError(config.cache_url)
    return config.cache_dir / "by-name"


def complete_cached_experiments(ctx: click.Context, incomplete: str) -> list:
    """``cache ls -e``: the experiments the cache files artifacts under."""
    return sorted(p.name for p in _by_name_folder(ctx).iterdir() if p.name.startswith(incomplete))


def complete_artifacts(ctx: click.Context, incomplete: str) -> list:
    """``lineage``: EXPERIMENT/PARAMETER-SET/STAGE/OUTPUT as the cache's by-name folder
    holds them (the levels typed are matched, not listed), or a path once one is typed."""
    from click.shell_completion import CompletionItem

    if incomplete.startswith(("/", ".", "~")):
        return [CompletionItem(incomplete, type="file")]
    typed = incomplete.split("/")
    found: list[str] = []

    def walk(folder: Path, parts: list[str]) -> None:
        depth = len(parts)
        if depth == 3:  # a stage's folder: its outputs are the names of its sidecars
            outputs = (p.name[: -len(".meta.json")] for p in folder.glob("*.meta.json"))
            children = [name for name in outputs if not name.startswith("_")]  # assay's own
        else:
            children = [p.name for p in folder.iterdir() if p.is_dir()]
        for name in sorted(children):
            if depth < len(typed) - 1 and name != typed[depth]:
                continue
            if depth == len(typed) - 1 and not name.startswith(typed[depth]):
                continue
            if depth == 3:
                found.append("/".join([*parts, name]))
            elif len(found) < 2000:
                walk(folder / name, [*parts, name])

    walk(_by_name_folder(ctx), [])
    return found


def cache_from_command_line(cache_dir: str | None) -> Path | None:
    """``--cache DIR``: a relative folder is taken from the current folder, as ``-p`` and
    experiment paths are (``cache_dir`` in assay.toml is taken from the project root). An
    exported run's folder means its ``cache/`` folder."""
    if cache_dir is None:
        return None
    from assay.config import from_command_line
    from assay.export.full import export_cache_of

    return export_cache_of(from_command_line(cache_dir))
