"""Static HTML reports: one page per run, an index of runs, and the DAG picture.

After every ``assay run`` (unless ``--no-report``), and at the end of a failed
or interrupted one, :func:`write_report` writes::

    reports/
        index.html                 every run of the run store, newest first
        <run_id>/
            index.html             the run's page
            run.json               the plain run record the page is built from
            dag.svg                the DAG picture (also inline in the page)
            reportables/<n>.html   each reportable's HTML
            files/<n>/...          files reportables rendered (figures, images, .tex)

Pages are built from ``run.json`` and the fragments only, never from live
objects, so :func:`rebuild_reports` (``assay report``) can rebuild any run's
page later; for a run without a ``run.json`` it makes one from the run store.
Everything opens from the file system: no server, network or script.

This package is imported only when a report is written (it needs Jinja2).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("assay")

__all__ = ["rebuild_reports", "refresh_index", "report_dir", "write_report"]


def report_dir(config: Any, run_id: str) -> Path:
    """The folder of a run's report: ``reports/<run_id>/``."""
    return Path(config.reports_dir) / run_id


def write_report(manager: Any, raise_errors: bool = False) -> Path | None:
    """Write the report of a run that just ended, and rebuild the index of runs.

    Returns the run page's path, or ``None`` if there is nothing to report (a
    dry run, or a manager without a run-store entry). A problem while writing
    the report is logged as a warning and does not fail the run (unless
    ``raise_errors``).
    """
    if getattr(manager, "run_info", None) is None:
        return None
    try:
        return _write_report(manager)
    except Exception as exc:
        if raise_errors:
            raise
        log.warning(
            "The report of run %s could not be written: %s: %s. Rebuild it later with "
            "`assay report %s`.",
            manager.run_id,
            type(exc).__name__,
            exc,
            manager.run_number,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return None


def _write_report(manager: Any) -> Path:
    import dataclasses

    from assay.report.build import build_run_page, write_record
    from assay.report.collect import collect_run
    from assay.store import RunStore

    config = manager.config
    run_dir = report_dir(config, manager.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunStore(config.store_path) as store:
        param_sets = [dataclasses.asdict(p) for p in store.param_sets(manager.run_id)]
    _restore_reportables(manager)
    record = collect_run(manager, run_dir, param_sets)
    write_record(run_dir, record)
    page = build_run_page(run_dir, record)
    _rebuild_index(config)
    log.debug("Report written to %s", page)
    return page


def _restore_reportables(manager: Any) -> None:
    """After a failure, reused stages have not yet got their cached reportables back."""
    try:
        manager.runner.restore_reportables(manager.plan.nodes)
    except Exception as exc:  # the report shows what it can
        log.warning("Cached reportables could not be restored for the report: %s", exc)


def refresh_index(config: Any) -> Path | None:
    """Rebuild ``reports/index.html`` after a run made without a report (``--no-report``),
    so that it lists that run too, marked as having none; ``None`` when the project has no
    index yet (``--no-report`` makes no ``reports/`` folder). A problem is logged as a
    warning and does not fail the run."""
    if not (Path(config.reports_dir) / "index.html").is_file():
        return None
    try:
        return _rebuild_index(config)
    except Exception as exc:
        log.warning(
            "The index of runs, %s, could not be brought up to date: %s: %s. Rebuild it "
            "with `assay report`.",
            Path(config.reports_dir) / "index.html",
            type(exc).__name__,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return None


def _rebuild_index(config: Any) -> Path:
    """Rebuild ``reports/index.html`` from the run store (one process at a time)."""
    from assay.report.build import build_index
    from assay.store import RunStore

    reports = Path(config.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    with _locked(reports / ".index.lock"), RunStore(config.store_path) as store:
        return build_index(reports, store.list_runs(limit=None))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (POSIX); where there is none, just go ahead.

    Two runs that end together then write the index one after the other, and
    the second one's listing includes both.
    """
    try:
        import fcntl
    except ImportError:  # Windows: the index is written atomically all the same
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rebuild_reports(
    config: Any, refs: list[str] | None = None, all_runs: bool = False
) -> list[Path]:
    """Rebuild run pages (from their ``run.json``, or from the run store) and the index.

    Args:
        config: the project's :class:`~assay.config.ProjectConfig`.
        refs: runs by number, id (or a unique start of it), ``latest``, ``-1``, ...;
            default: the latest run.
        all_runs: rebuild every run's page.

    Returns:
        The pages written, the index last.
    """
    from assay.report.build import (
        DamagedRecord,
        build_run_page,
        damage_errors,
        load_record,
        write_record,
    )
    from assay.report.collect import record_from_store
    from assay.store import RunStore

    pages: list[Path] = []
    with RunStore(config.store_path) as store:
        if all_runs:
            runs = list(reversed(store.list_runs(limit=None)))
        else:
            named = [store.get_run(ref) for ref in (refs or ["latest"])]
            runs = list({run.id: run for run in named}.values())  # `3 latest`: run 3 once
        for run in runs:
            run_dir = report_dir(config, run.id)
            page = None
            if (run_dir / "run.json").exists():
                try:
                    record = load_record(run_dir)
                    if record.get("source") != "store":  # else made afresh, as the store is now
                        record["run"] = _fresh_run(record["run"], run)
                        record["project_root"] = str(config.root)  # the project may have moved
                        page = build_run_page(run_dir, record)
                except DamagedRecord as exc:
                    _set_aside(run_dir, str(exc))
                except damage_errors() as exc:
                    _set_aside(
                        run_dir,
                        f"{run_dir / 'run.json'} is damaged: its page cannot be made from it "
                        f"({type(exc).__name__}: {exc}).",
                    )
                else:
                    if page is not None:
                        write_record(run_dir, record)
            if page is None:
                run_dir.mkdir(parents=True, exist_ok=True)
                record = record_from_store(store, run, run_dir, config)
                write_record(run_dir, record)
                page = build_run_page(run_dir, record)
            pages.append(page)
    pages.append(_rebuild_index(config))
    return pages


def _set_aside(run_dir: Path, problem: str) -> None:
    """Keep a damaged ``run.json`` beside the one made from the run store, and say so."""
    damaged = run_dir / "run.json"
    kept = run_dir / "run.json.damaged"
    number = 1
    while kept.exists():
        number += 1
        kept = run_dir / f"run.json.damaged-{number}"
    damaged.replace(kept)
    log.warning(
        "%s The report is made from the run store instead (its only reportables are the "
        "metrics); the damaged file is kept as %s.",
        problem,
        kept,
    )


def _fresh_run(recorded: dict, run: Any) -> dict:
    """The run's entry as the store has it now (e.g. a run left "running" since ended)."""
    from assay.report.collect import run_info_dict

    fresh = run_info_dict(run)
    return {**recorded, **fresh}
