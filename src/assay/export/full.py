"""``assay run ... --store-full``: one self-contained folder per run.

::

    data/runs/diamond-0007-20261125T184512/
        run.json            the full run record (see assay.run_record) + what the export holds
        run.log             the run's console log
        report/             the run's HTML report (when it has one)
        cache/objects/...   every cache entry the run computed or reused, laid out like
        cache/by-name/...   data/cache: the folder serves as a cache (--cache .../cache)
        requirements.txt    the run's Python packages, pinned
        environment.yml     the conda environment (only for runs under conda)
        code/               the project's code (see assay.export.snapshot)
        README.md           what all this is and how to re-run it

Everything inside refers to other things inside by relative paths, so the
folder can be copied anywhere. ``assay reproduce FOLDER`` re-runs it;
``assay export docker RUN`` and ``assay export notebook RUN`` build on it.

A run's code is snapshotted once, by its first export (with ``--store-full``,
as the run ends): a later export of the run, to the same folder or another,
copies that snapshot and its ``export.code`` section rather than today's code.
A first export made after the code changed takes the run's own code from git
(its commit, with the uncommitted changes it recorded); where git cannot give
it, the code as it is now, and ``export.code.note``, the README and a warning
say so (``assay reproduce`` repeats it when the outputs differ).

From Python (for a run that did not use ``--store-full``)::

    from assay.config import ProjectConfig
    from assay.export.full import export_run
    folder = export_run(ProjectConfig.load(), "latest")
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from assay.cache import (
    AGGREGATE,
    CacheStore,
    aggregate_label,
    aggregate_label_of,
    open_cache_at,
    recorded_cache,
)
from assay.errors import AssayError, CorruptArtifactError
from assay.export.destination import (
    EXPORT_FORMAT,
    check_folder,
    is_build_context,
    is_full_export,
    is_notebook,
)
from assay.export.markdown import markdown_code, markdown_text
from assay.export.snapshot import (
    SUBMODULE,
    environment_yml,
    plan_snapshot,
    rebuild_run_code,
    requirements_txt,
    write_snapshot,
)
from assay.keys import split_artifact_key
from assay.provenance import without_secrets
from assay.run_record import (
    build_run_record,
    read_run_record,
    refuse_unfinished,
    run_log_path,
    write_json,
)
from assay.store import RunStore

log = logging.getLogger("assay")

__all__ = [
    "code_note",
    "export_cache_of",
    "export_run",
    "not_included",
    "portable",
    "unsaved_stage_runs",
]

EXPORT_ENTRIES = frozenset(
    {
        "run.json",
        "README.md",
        "run.log",
        "report",
        "cache",
        "code",
        "requirements.txt",
        "environment.yml",
    }
)
"""What an export writes at its top level; anything else in a replaced export is kept."""

RERUN = """\
Re-run it and check that every artifact comes out identical, from the project folder:

    assay reproduce {folder_path}

or from inside this folder (or a copy of it, anywhere): `assay reproduce .`"""

README = """\
# Exported assay run {run_id}

Experiment {experiment}, run {number}, {status}, started {started} on {host}.
Command: {command}
Code: {code}

- `run.json`: everything recorded about the run (parameters, packages, git state,
  stage timings, every artifact with its key and checksum).
- `code/`: the code snapshot ("Code" above says whether it is the run's); `cache/`: the
  artifacts the run used (a usable assay cache: `--cache` this folder or its `cache/`;
  any that changed in the project's cache since the run are left out: see
  `export.artifacts` in `run.json`).
- `requirements.txt` (and `environment.yml` under conda): the run's environment, pinned.
{left_out}
{rerun}

Load an artifact from Python, run in this folder (`project_root="."` makes `cache_dir`
count from here, not from the project folder around it):

    assay.load(key="<key from run.json>", cache_dir="cache", project_root=".")
"""


def export_run(
    config: Any,
    run_ref: int | str,
    *,
    destination: str | os.PathLike | None = None,
    include: list[str] | tuple[str, ...] = (),
) -> Path:
    """Export a run to one self-contained folder and return it.

    Args:
        config: the project's :class:`~assay.config.ProjectConfig`.
        run_ref: the run (number, id, unique id prefix, ``"latest"``, ``-1`` ...).
        destination: the folder to write (default ``data/runs/RUN_ID``): a new or
            empty folder, or an earlier export of the same run, which is replaced (see
            below); another run's export is refused.
        include: glob patterns of files the code snapshot takes although git
            ignores them or they look like secrets.

    A folder that holds anything else is refused before anything is written
    (see :mod:`assay.export.destination`), with one exception: a folder that
    holds only the run's notebook or Docker context (``assay export notebook``
    / ``docker`` of a run without ``--store-full``). Replacing an earlier
    export keeps what it held besides the export's own files (the notebook,
    ``docker/``, ``reproductions/``, your notes): they move into the new one.

    The folder is written under a temporary name and renamed into place, so
    an interrupted export never leaves a half-written folder behind.
    """
    with RunStore(config.store_path) as store:
        record = build_run_record(store, run_ref)
    refuse_unfinished(record["run"], "full")
    run = record["run"]
    target = Path(destination) if destination else Path(config.runs_dir) / run["id"]
    # The run's own folder of data/runs/ may hold what its stages wrote there for it
    # (manager.get_run_output_path()): it stays, beside the export.
    replaceable = _replaceable if destination else (lambda folder: True)
    if destination:
        _refuse_another_run(target, run["id"])
    check_folder(target, root=config.root, what="a full export", replaceable=replaceable)
    # A run's code is snapshotted once: a later export keeps the first one's snapshot.
    earlier = _earlier_export(run["id"], target, Path(config.runs_dir) / run["id"])
    place = target.resolve()  # `-o .`, `-o ..`, a link to an earlier export
    work = place.with_name(f".{place.name}.tmp-{uuid.uuid4().hex[:8]}")
    work.mkdir(parents=True)
    try:
        contents = _fill(work, config, record, list(include), earlier)
        record = portable(record, Path(config.root))
        record["export"] = contents
        write_json(work / "run.json", record)
        problem = _not_rerunnable(record)
        if problem is None:
            rerun = RERUN.format(folder_path=_from_root(place, Path(config.root)))
        else:
            log.warning(
                "Export of run %s: `assay reproduce` cannot re-run it: %s", run["id"], problem
            )
            rerun = f"**`assay reproduce` cannot re-run it:** {markdown_text(problem)}"
        (work / "README.md").write_text(
            README.format(
                run_id=markdown_text(run["id"]),
                experiment=markdown_code(run["experiment"]),
                number=markdown_text(run["number"]),
                status=markdown_text(run["status"]),
                started=markdown_text(run["started"]),
                host=markdown_text(run["host"]),
                command=markdown_code(run["command"]),
                code=_code_line(record),
                rerun=rerun,
                left_out=_left_out(record),
            ),
            encoding="utf-8",
        )
        _put_in_place(work, place)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def not_included(record: dict) -> str | None:
    """Which of the run's artifacts its export holds no copy of, and why (from ``export.
    artifacts``: "1 no longer in the project's cache ...; 2 changed ..."), or ``None``."""
    artifacts = (record.get("export") or {}).get("artifacts") or {}
    changed = {c.get("key") for c in artifacts.get("changed") or [] if isinstance(c, dict)}
    reasons = [
        (len(set(artifacts.get("missing") or [])), "no longer in the project's cache when the "
         "run was exported (removed by `assay cache gc`, or deleted)"),
        (len(changed), "changed in the project's cache since the run (recomputed by a later "
         "run, or damaged)"),
        (len(set(artifacts.get("external") or [])), "files outside the cache (path_override, "
         "file references)"),
        (unsaved_stage_runs(record), "stage run(s) it executed with --dry-cache, which saved "
         "nothing, so their artifacts were never cached or recorded"),
    ]  # fmt: skip
    said = [f"{number} {why}" for number, why in reasons if number]
    return "; ".join(said) if said else None


def unsaved_stage_runs(record: dict) -> int:
    """How many stage runs the run executed with ``--dry-cache``: they saved nothing, so
    the run records none of their artifacts and an export has none to compare with."""
    config = (record.get("run") or {}).get("config") or {}
    if not (isinstance(config, dict) and config.get("dry_cache")):
        return 0
    stages = record.get("stages") or []
    return sum(1 for s in stages if isinstance(s, dict) and s.get("status") == "executed")


def _left_out(record: dict) -> str:
    """The README's paragraph on the artifacts ``cache/`` lacks (``""``: it has them all)."""
    said = not_included(record)
    if said is None:
        return ""
    return (
        f"\n**Not in `cache/`:** of the run's artifacts, {said}. `export.artifacts` in "
        "`run.json` lists them; `assay reproduce` has no copy of them to compare with.\n"
    )


def _not_rerunnable(record: dict) -> str | None:
    """Why ``assay reproduce`` cannot start the exported run again (a parameter file
    outside the project, parameter sets given from Python), or ``None``."""
    from assay.export.reproduce import rerun_spec

    try:
        rerun_spec(record)  # as reproduce reads it: the record with portable paths
    except AssayError as exc:
        return str(exc)
    return None


def _from_root(folder: Path, root: Path) -> str:
    """``folder`` as typed in the project folder ``root`` (absolute outside it), quoted
    for a shell."""
    try:
        return shlex.quote(folder.relative_to(root.resolve()).as_posix())
    except ValueError:
        return shlex.quote(str(folder))


def _refuse_another_run(folder: Path, run_id: str) -> None:
    """Refuse to replace the export of another run (``-o`` an earlier export): it would be
    lost, and what it held besides (its notebook, reproductions) would join this run's."""
    if not is_full_export(folder):
        return
    try:
        other = read_run_record(folder / "run.json")["run"]["id"]
    except (AssayError, KeyError, TypeError):
        other = None
    if other != run_id:
        raise AssayError(
            f"{folder} holds the export of run {other or '(unknown)'}, not of run {run_id}; "
            "writing there would replace it. Choose another folder with -o, or remove it first."
        )


def _replaceable(folder: Path) -> bool:
    """Whether an export may take the place of ``folder``: an earlier export, or a folder
    holding only the run's notebook or Docker context, written by assay."""
    return is_full_export(folder) or all(
        is_notebook(entry) or is_build_context(entry) for entry in folder.iterdir()
    )


def _put_in_place(work: Path, target: Path) -> None:
    """Rename the finished export ``work`` to ``target``. What ``target`` held (an earlier
    export) is set aside first; all but the export's own files then move into the new one."""
    if not target.exists():
        os.replace(work, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(work, target)
    except BaseException:
        os.replace(old, target)
        raise
    for entry in old.iterdir():
        if entry.name not in EXPORT_ENTRIES:
            os.replace(entry, target / entry.name)
    shutil.rmtree(old)


def _relink_report(page: Path, report: Path, config: Any, run: dict) -> None:
    """Point the copied report's links at the export's own files: its links were made
    from ``reports/RUN_ID/`` to the project's log, cache and index of runs."""
    from assay.report.build import format_url

    if not page.is_file():
        return
    moves = {
        os.path.relpath(run_log_path(config, run), report): "../run.log",
        os.path.relpath(Path(config.cache_dir) / "objects", report): "../cache/objects",
        "../index.html": "../README.md",
    }
    text = page.read_text(encoding="utf-8")
    for old, new in moves.items():
        for attribute in ("href", "src"):
            text = text.replace(f'{attribute}="{format_url(old)}', f'{attribute}="{new}')
    page.write_text(_unlink_missing(text, page.parent), encoding="utf-8")


_CACHE_LINK = re.compile(r'<a href="(\.\./cache/[^"]*)"[^>]*>(.*?)</a>', re.DOTALL)


def _unlink_missing(html: str, here: Path) -> str:
    """``html`` (a report page in ``here``) without its links to files of the export's
    cache that the export does not hold (gone from the cache, changed since the run): the
    path stays, unlinked, marked "not in this export" instead of a dead link."""

    def unlink(match: re.Match) -> str:
        target = here / urllib.parse.unquote(match.group(1).split("#")[0].split("?")[0])
        if target.exists():
            return match.group(0)
        why = "not in this export: see export.artifacts in run.json"
        return f'<span class="muted" title="{why}">{match.group(2)} (not in this export)</span>'

    return _CACHE_LINK.sub(unlink, html)


def _fill(
    folder: Path,
    config: Any,
    record: dict,
    include: list[str],
    earlier: tuple[Path, dict] | None,
) -> dict:
    """Write everything but ``run.json`` and the README; return the ``export`` section."""
    run = record["run"]
    contents: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "assay_version": _assay_version(),
        "files": {"record": "run.json", "cache": "cache", "code": "code"},
    }
    kept_cache = CacheStore(earlier[0] / "cache") if earlier is not None else None
    contents["artifacts"] = _copy_artifacts(config, record, folder / "cache", kept_cache)
    log_file = run_log_path(config, run)
    if log_file.is_file():
        shutil.copy2(log_file, folder / "run.log")
        contents["files"]["log"] = "run.log"
    report = Path(config.reports_dir) / run["id"]
    if report.is_dir():
        shutil.copytree(report, folder / "report", symlinks=True)
        _relink_report(folder / "report" / "index.html", report, config, run)
        contents["files"]["report"] = "report"
    provenance = record.get("provenance")
    title = f"Python packages of assay run {run['id']} ({run['python']})"
    (folder / "requirements.txt").write_text(requirements_txt(provenance, title), encoding="utf-8")
    contents["files"]["requirements"] = "requirements.txt"
    environment = environment_yml(provenance)
    if environment is not None:
        (folder / "environment.yml").write_text(environment, encoding="utf-8")
        contents["files"]["environment"] = "environment.yml"
    if earlier is not None:
        contents["code"] = _keep_snapshot(earlier, folder / "code", run["id"], include)
        return contents
    contents["code"] = _snapshot_code(config, record, include, folder, contents["created"])
    return contents


def _snapshot_code(config: Any, record: dict, include: list[str], folder: Path, taken: str):
    """Write the code snapshot into ``folder/code``; return the ``export.code`` section.

    When the files git tracks are no longer as the run had them (another commit now,
    or other uncommitted changes), the run's own are rebuilt from git (see
    :func:`~assay.export.snapshot.rebuild_run_code`). When that cannot be done, the
    files as they are now are taken, and the section (``note``), the README and a
    warning say that they are not the run's. So do they for Python files git did not
    track (taken as they are now) and for submodules (whose code is left out).
    """
    from assay.provenance import capture_git

    git = (record.get("provenance") or {}).get("git") or {}
    scratch = folder / ".run-code"
    run_code = problem = None
    top = Path(config.root)
    try:
        untracked = list(git.get("untracked") or ())
        if git.get("commit"):
            # The project exported, not the folder the run recorded (this may be a copy).
            now = capture_git(config.root)
            top = Path(now.root or config.root)
            if now.commit is None:
                problem = f"git cannot tell which commit the project is at now ({now.error})"
            elif now.commit != git["commit"]:
                problem = f"the project is at commit {now.commit} now"
            elif now.diff != (git.get("diff") or ""):
                problem = "the project has other uncommitted changes now"
            else:  # the files git did not track now are taken too
                untracked += [p for p in now.untracked if p not in untracked]
            if problem:
                try:
                    run_code = rebuild_run_code(config.root, git, scratch)
                    problem = None
                except AssayError as exc:
                    problem += f", and the run's code could not be rebuilt from git ({exc})"
        untracked = [p for p in untracked if _python(top / p)]
        gone = [p for p in untracked if not os.path.lexists(top / p)]  # deleted since
        untracked = [p for p in untracked if p not in gone]
        snapshot = plan_snapshot(config.root, config, include, run=run_code)
        size = write_snapshot(config.root, snapshot, folder / "code")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    when = f"as they were when this export was made ({taken})"
    modules = [item["path"] for item in snapshot.left_out if item["reason"] == SUBMODULE]
    same, note = not untracked and not gone and not modules, None
    if not git.get("commit"):
        same = None
        note = (
            f"The run recorded no git commit ({git.get('error') or 'no commit yet'}), so "
            f"nothing recorded tells whether `code/` (the project's files {when}) is the "
            "run's code."
        )
    elif problem:
        same = False
        note = f"`code/` holds the project's files {when}, NOT the run's code: {problem}."
    elif untracked or gone:
        note = _untracked_note(untracked, gone, when, run_code is not None)
    if run_code is not None and run_code.binary:
        same = False
        note = (note + " " if note else "") + (
            f"The run had changed the binary file(s) {', '.join(run_code.binary)}, whose "
            f"content git's diff does not record: they are {when}."
        )
    if modules:
        note = (note + " " if note else "") + (
            f"`code/` lacks the code of the git submodule(s) {', '.join(modules)}: assay "
            "does not snapshot submodules or repositories inside the project."
        )
    if problem or modules or gone or (run_code is not None and run_code.binary):
        log.warning("Export of run %s: %s", record["run"]["id"], note.replace("`", ""))
    return {
        "source": snapshot.source,
        "files": len(snapshot.files),
        "bytes": size,
        "left_out": snapshot.left_out,
        "included_on_request": include,
        "rebuilt": run_code is not None,
        "same_as_run": same,
        "note": note,
        "taken": taken,
    }


def _untracked_note(untracked: list[str], gone: list[str], when: str, rebuilt: bool) -> str:
    """The note on the Python files git did not track at the run (their content is not
    recorded): those taken as they are now, and those gone since, which ``code/`` lacks."""
    said = []
    if untracked:
        said.append(
            f"git did not track {', '.join(untracked)} at the run{'' if rebuilt else ' or now'}, "
            f"and the run recorded no content of such files: they are {when}."
        )
    if gone:
        said.append(
            f"git did not track {', '.join(gone)} at the run, and the run recorded no content "
            "of such files: they are no longer in the project, so `code/` lacks them."
        )
    return " ".join(said)


def _python(path: Path) -> bool:
    """Whether ``path`` is a Python file, or a folder holding one (what git lists of an
    untracked folder is the folder: ``mylib/``)."""
    if path.suffix == ".py":
        return True
    return path.is_dir() and any(
        name.endswith(".py") for _, _, names in os.walk(path) for name in names
    )


def _earlier_export(run_id: str, *folders: Path) -> tuple[Path, dict] | None:
    """The first of ``folders`` holding an earlier export of run ``run_id`` with its code
    snapshot (``--store-full``, an earlier ``assay export full``), and its ``export``
    section; ``None`` if there is none."""
    for folder in folders:
        if not (folder / "code").is_dir() or not is_full_export(folder):
            continue
        try:
            record = read_run_record(folder / "run.json")
        except AssayError:
            continue
        if (record.get("run") or {}).get("id") == run_id:
            return folder, record["export"]
    return None


def _keep_snapshot(earlier: tuple[Path, dict], code: Path, run_id: str, include: list[str]) -> dict:
    """Copy the code snapshot of an earlier export of the run into ``code``; return its
    ``export.code`` section. A run's code is snapshotted once, by its first export (with
    ``--store-full``, as the run ends): today's code may differ from the run's."""
    folder, export = earlier
    section = dict(export.get("code") or {})
    section.setdefault("taken", export.get("created"))  # exports from before "taken"
    shutil.copytree(folder / "code", code, symlinks=True)
    when = section["taken"] or "earlier"
    if include:
        log.warning(
            "Export of run %s: kept the code snapshot of its earlier export %s (taken %s); "
            "--include applies only to a new snapshot and was ignored. To snapshot the code "
            "as it is now, move that export away first.",
            run_id,
            folder,
            when,
        )
    else:
        log.info("Export of run %s: kept the code snapshot taken %s.", run_id, when)
    return section


def _copy_artifacts(
    config: Any, record: dict, cache_folder: Path, kept: CacheStore | None = None
) -> dict:
    """Copy the cache entries of every artifact the run used; check each copy.

    An artifact is shipped only while the cache holds the bytes the run recorded. One
    that a later run computed again since (same key, other bytes: ``--overwrite`` of a
    non-deterministic stage), or that is damaged in the cache, is left out of the export
    and listed under ``changed``: the export holds no copy of it rather than another
    run's value under this run's key. A stage run none of whose artifacts is shipped is
    left out whole, with its ``by-name`` link.

    ``kept`` is the cache of an earlier export of the run: a stage run that the
    project's cache no longer holds as the run made it (removed by ``assay cache gc``,
    recomputed) is copied from there, so exporting the run again (in place, or
    elsewhere) loses nothing the earlier export held.
    """
    recorded = recorded_cache(record["run"]["config"].get("cache_dir"), config)
    source = open_cache_at(recorded, config)  # --cache, a URL
    target = CacheStore(cache_folder)
    from_kept: set[str] = set()  # stage runs copied from the earlier export
    copied, missing, changed, external = 0, [], [], []
    wanted: dict[str, list[tuple[dict, dict]]] = {}  # stage key -> [(artifact, its sidecar)]
    shipped: dict[str, bool] = {}  # stage key -> whether its entry is in the export
    code_parts: set[str] = set()
    sidecars: dict[str, dict] = {}  # stage key -> a sidecar of it
    for artifact in _distinct(record["artifacts"]):
        stage_key, output = split_artifact_key(artifact["key"])
        meta, problem = _as_recorded(source, artifact)
        if problem is not None and kept is not None:
            earlier, earlier_problem = _as_recorded(kept, artifact)
            if earlier_problem is None:
                meta, problem = earlier, None
                from_kept.add(stage_key)
        if meta is None:
            missing.append(artifact["key"])
            continue
        sidecars.setdefault(stage_key, meta)
        code_parts.update((meta.get("ingredients") or {}).get("code_parts", {}).values())
        shipped.setdefault(stage_key, False)
        if any(Path(f["path"]).is_absolute() for f in meta["files"]):
            external.append(artifact["key"])  # path_override / file references: not portable
            shipped[stage_key] = True  # (its sidecar is in the stage run's folder)
            continue
        if problem is not None:
            # Checked before anything is copied: another run's bytes never enter the export.
            changed.append({"key": artifact["key"], "problem": RECOMPUTED})
            continue
        wanted.setdefault(stage_key, []).append((artifact, meta))
    dropped = {c["key"] for c in changed}
    for stage_key in shipped:
        if not shipped[stage_key] and stage_key not in wanted:
            continue  # every artifact of it changed since the run: nothing to copy
        destination = target.stage_dir(stage_key)
        destination.parent.mkdir(parents=True, exist_ok=True)
        store = kept if stage_key in from_kept and kept is not None else source
        shutil.copytree(store.fetch_stage(stage_key), destination, symlinks=True)
        for artifact, meta in wanted.get(stage_key, []):
            try:
                target.verify(meta)
            except CorruptArtifactError as exc:
                changed.append({"key": artifact["key"], "problem": str(exc)})
                dropped.add(artifact["key"])
                continue
            shipped[stage_key] = True
            copied += 1
        if not shipped[stage_key]:
            shutil.rmtree(destination)
            with contextlib.suppress(OSError):
                destination.parent.rmdir()  # its shard folder, if it holds nothing else
            continue
        for output in target.outputs_of(stage_key):  # the cache as it is now, not the run's
            if f"{stage_key}.{output}" in dropped:
                target.discard(stage_key, output)
    stages = {s["stage"] for s in record["stages"]}
    _copy_key_helpers(source, target, stages, code_parts)
    if from_kept and kept is not None:
        _copy_key_helpers(kept, target, stages, code_parts)
        log.info(
            "Export of run %s: %d stage run(s) copied from its earlier export (the project's "
            "cache no longer holds them as the run made them).",
            record["run"]["id"],
            len(from_kept),
        )
    prefix = record["run"]["config"].get("prefix") or record["run"]["experiment"]
    for stage in record["stages"]:
        if shipped.get(stage.get("key")):
            label = stage["param_set"]
            if label in (None, AGGREGATE):
                label = _aggregate_folder(source, prefix, stage, record, sidecars[stage["key"]])
            target.link(prefix, label, stage["stage"], stage["key"])
    if missing or changed or external:
        log.warning(
            "Export of run %s: %d artifact(s) copied; not exported: %d no longer in the cache, "
            "%d changed since the run (recomputed by a later run, or damaged), %d outside the "
            "cache (path_override / file references). See export.artifacts in run.json.",
            record["run"]["id"],
            copied,
            len(missing),
            len(changed),
            len(external),
        )
    return {"copied": copied, "missing": missing, "changed": changed, "external": external}


def _distinct(artifacts: list[dict]) -> list[dict]:
    """The run's artifacts, each key once: parameter sets that hash alike share their
    artifacts, which ``run.json`` lists once per set (``artifacts``, which ``assay
    reproduce`` checks set by set) but the export holds, and counts, once."""
    first: dict[str, dict] = {}
    for artifact in artifacts:
        first.setdefault(artifact["key"], artifact)
    return list(first.values())


def _as_recorded(store: CacheStore, artifact: dict) -> tuple[dict | None, str | None]:
    """``artifact``'s sidecar in ``store`` and what is wrong with it: ``"missing"`` (no
    sidecar: ``None`` with it), ``"changed"`` (other bytes than the run recorded), or
    ``None`` (as the run made it, or a file outside the cache, which is not compared)."""
    meta = store.read_meta(*split_artifact_key(artifact["key"]))
    if meta is None:
        return None, "missing"
    if any(Path(f["path"]).is_absolute() for f in meta["files"]):
        return meta, None
    recorded = artifact.get("checksum")
    if recorded and recorded != meta["files"][0]["checksum"]:
        return meta, "changed"
    return meta, None


RECOMPUTED = "recomputed by a later run since this one (other bytes under the same key)"
"""Why an artifact of ``export.artifacts.changed`` was left out, when a later run
computed it again (``--overwrite`` of a stage that is not deterministic)."""


def _copy_key_helpers(
    source: CacheStore, target: CacheStore, stages: set[str], digests: set[str]
) -> None:
    """Copy what the cache keeps beside its objects to compute and explain keys.

    The read index (``reads/STAGE.jsonl``: which parameter fields each stage
    read) lets a run using the exported cache find its entries; the code texts
    (``code/``) let ``assay why`` show code differences.
    """
    for stage in sorted(stages):
        for base, reads in source.read_entries(stage):
            target.add_reads(stage, base, reads)
    texts = {}
    for digest in digests:
        if isinstance(digest, str) and len(digest) >= 3:
            text = source.code_text(digest)
            if text is not None:
                texts[digest] = text
    target.put_code_texts(texts)


def portable(record: dict, root: Path) -> dict:
    """The record with paths inside the project made relative, and secrets kept out.

    Cache paths point into the export's ``cache/``; the git diff loses the
    sections of files that look like secrets (see :mod:`assay.export.snapshot`).
    """
    prefixes = sorted({str(root), str(root.resolve())}, key=len, reverse=True)

    def relative(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: relative(v) for k, v in value.items()}
        if isinstance(value, list):
            return [relative(v) for v in value]
        if isinstance(value, str):
            for prefix in prefixes:
                if value == prefix:
                    return "."
                if value.startswith(prefix + os.sep):
                    return value[len(prefix) + 1 :].replace(os.sep, "/")
        return value

    record = relative(record)
    record["run"]["config"]["cache_dir"] = "cache"
    for artifact in record["artifacts"]:
        stage_key = split_artifact_key(artifact["key"])[0]
        parts = artifact["path"].replace(os.sep, "/").split(f"/{stage_key}", 1)
        rest = parts[1] if len(parts) == 2 else ""
        artifact["path"] = f"cache/objects/{stage_key[:2]}/{stage_key}{rest}"
    git = (record.get("provenance") or {}).get("git") or {}
    if git.get("diff"):  # runs record it without secrets; runs from before did not
        git["diff"] = without_secrets(git["diff"])
    return record


def _code_line(record: dict) -> str:
    """The README's ``Code:`` line: the run's git state, and what ``code/`` holds."""
    git = (record.get("provenance") or {}).get("git") or {}
    section = (record.get("export") or {}).get("code") or {}
    line = "not in git"
    if git.get("commit"):
        line = f"git commit {git['commit']}"
        line += " with uncommitted changes" if git.get("dirty") else ""
    if section.get("rebuilt"):
        line += " (`code/` is rebuilt from git: that commit, with the changes the run recorded)"
    elif section.get("same_as_run") and not code_note(section):
        line += " (`code/` is that code)"
    note = code_note(section)
    if note:
        line += f"\n\n**{'Warning' if section.get('same_as_run') is False else 'Note'}:** {note}"
    return line


def code_note(section: dict) -> str | None:
    """Why the code snapshot of an export may not be the run's code (``section`` is its
    ``export.code``), or ``None`` when it is."""
    if section.get("note"):
        return section["note"]
    if section.get("same_as_run") is False:  # exported before assay said why
        return (
            f"`code/` holds the project's files as they were when the export was made "
            f"({section.get('taken') or 'after the run'}), not the run's code "
            "(export.code.same_as_run is false in run.json)."
        )
    return None


def _assay_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("assay")
    except metadata.PackageNotFoundError:
        return "unknown"


def _aggregate_folder(source: Any, prefix: str, stage: dict, record: dict, meta: dict) -> str:
    """The ``by-name`` folder of an aggregate's stage run: the one the project's cache
    links to it, else the one of the records its sidecar ``meta`` says it aggregated
    (its key's ``params``: ``[hash, [[hash, name], ...]]``), else the one an aggregate
    over all the run's parameter sets has."""
    for _, label, _, key in source.named(prefix, AGGREGATE, stage["stage"]):
        if key == stage["key"]:
            return label
    return aggregate_label_of(meta) or aggregate_label(p["name"] for p in record["param_sets"])


def export_cache_of(location: str | os.PathLike | None) -> str | os.PathLike | None:
    """The cache a run is given with ``--cache LOCATION``: for a full export's folder
    (``--cache data/runs/RUN_ID``), its ``cache/`` folder, with a note; otherwise
    ``location`` as it is.

    An export's folder holds its cache in ``cache/``: taken as a cache itself, it has no
    entry, so everything was computed again and a new cache written among the export's
    files.
    """
    if location is None:
        return None
    folder = Path(location)
    if not (folder / "cache").is_dir() or not is_full_export(folder):
        return location
    cache = str(folder / "cache")
    log.warning("%s is an exported run, not a cache: using its cache folder %s.", location, cache)
    return cache


def require_export(folder: str | os.PathLike) -> Path:
    """``folder`` if it holds an exported run (a ``run.json``), else a clear error."""
    folder = Path(folder)
    if (folder / "run.json").is_file():
        return folder
    how = (
        "Export a run with `assay export full RUN` (or `assay run EXPERIMENT --store-full`); "
        "exports are in data/runs/."
    )
    if folder.is_file() and folder.name == "run.json":
        raise AssayError(
            f"{folder} is a file: give the export folder that holds it, {folder.parent}."
        )
    if not folder.exists():
        raise AssayError(
            f"There is no folder {folder}: `assay reproduce` takes the folder of an exported "
            f"run, not a run number or id. {how}"
        )
    if folder.is_file():
        raise AssayError(f"{folder} is a file, not the folder of an exported run. {how}")
    export = next((p for p in folder.resolve().parents if (p / "run.json").is_file()), None)
    if export is not None and is_full_export(export):
        raise AssayError(
            f"{folder} is inside the exported run {export}: give that folder "
            f"(`assay reproduce {shlex.quote(str(export))}`)."
        )
    raise AssayError(f"{folder} is not an exported assay run: it has no run.json. {how}")
