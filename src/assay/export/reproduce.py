"""``assay reproduce FOLDER``: re-run an exported run and check every artifact.

Given a folder written by ``--store-full`` (see :mod:`assay.export.full`),
possibly copied to another machine::

    from assay.export.reproduce import reproduce

    result = reproduce("data/runs/iris-0007-20261125T184512")
    result.exact                   # True if every artifact came out identical
    for check in result.checks:
        print(check.status, check.stage, check.name, check.detail)

What happens:

1. The code snapshot is copied to a fresh working folder
   (``FOLDER/reproductions/<time>/`` unless ``workdir`` is given), which gets
   its own empty cache, run store, logs and reports.
2. The experiment runs there in a new Python process, exactly as recorded:
   same parameter files, ``--names``, ``--indices``, ``--set`` overrides and
   ``--prefix``, with ``--overwrite`` so every stage is recomputed (with
   ``reuse=True`` the exported cache is copied in first and nothing is forced,
   so only stages whose code or parameters changed recompute; an entry that is
   not the run's artifact as ``run.json`` records it is left out of that copy).
3. Each artifact of the exported run is compared with the new one: identical
   (same checksum), different (with a description for tables, arrays and
   JSON; see :mod:`assay.export.differences`), missing, damaged (the exported
   copy) or not exported (see :data:`STATUSES`). Artifacts are
   loaded for that description only after their checksum is verified, so a
   tampered file is never unpickled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assay.cache import CacheStore
from assay.errors import AssayError, CorruptArtifactError
from assay.export.differences import describe_difference, values_equal
from assay.export.full import code_note, require_export, unsaved_stage_runs
from assay.keys import split_artifact_key
from assay.run_record import ignored_lazy, read_run_record

log = logging.getLogger("assay")

__all__ = ["ArtifactCheck", "RerunSpec", "Reproduction", "reproduce", "rerun_spec"]

STATUSES = ("identical", "equivalent", "different", "missing", "damaged", "not exported")
"""What an artifact check can find. Only ``identical`` (same checksum) counts as
reproduced exactly; ``equivalent`` (equal values when loaded, other bytes, as a
pickle can be) counts too with ``equivalent_ok``. ``damaged``: the exported copy
fails its checksum, or its sidecar is unreadable or gone. ``not exported``: the
export was made without a copy (``export.artifacts`` in ``run.json``: gone from
the cache, changed since the run, or outside the cache)."""


@dataclass
class ArtifactCheck:
    """How one artifact of the exported run compares with the reproduction's."""

    param_set: str | None
    """The parameter set (``"aggregate"`` for aggregates)."""
    stage: str
    """The stage that produced it."""
    name: str
    """The output's name."""
    key: str
    """Its key in the exported run."""
    status: str
    """One of :data:`STATUSES`."""
    detail: str = ""
    """How it differs, or why it is missing."""


@dataclass
class Reproduction:
    """The outcome of :func:`reproduce`."""

    folder: Path
    """The exported run."""
    workdir: Path
    """Where it was re-run (code, cache, run store)."""
    command: list[str]
    """The command that re-ran it."""
    returncode: int
    """The re-run's exit status (0: it completed)."""
    run_id: str | None
    """The new run's id in the working folder's run store, if it started."""
    checks: list[ArtifactCheck] = field(default_factory=list)
    """One per artifact of the exported run."""
    new: list[str] = field(default_factory=list)
    """Keys of artifacts the new run made that the exported run did not have."""

    equivalent_ok: bool = False
    """Whether ``equivalent`` artifacts count as reproduced (see :data:`STATUSES`)."""
    code_note: str | None = None
    """Why the export's code snapshot may not be the run's code (from its ``run.json``),
    which can explain differences; ``None`` when it is the run's."""
    left_out: list[str] = field(default_factory=list)
    """What the code snapshot left out, as ``PATH (REASON)`` (``export.code.left_out``):
    a re-run that fails may have needed one of them."""
    original_run: str = ""
    """The exported run's id."""
    packages: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    """Packages the run had in another version than the reproduction, or that it lacks:
    name → (the run's version, the reproduction's, ``None`` if not installed), which can
    explain differences."""
    original_status: str = "completed"
    """How the exported run ended (``completed``, ``failed``, ``interrupted``): only the
    artifacts it made before it stopped are compared."""
    original_error: str | None = None
    """The exported run's error, if it failed."""
    rerun_error: str | None = None
    """The re-run's error as its run store recorded it, if it failed."""
    unsaved: int = 0
    """Stage runs the exported run executed with ``--dry-cache``: they saved nothing, so
    there is nothing of theirs to compare, and the reproduction cannot be called exact."""

    @property
    def failed_alike(self) -> bool:
        """Whether the exported run failed and the re-run failed with the same error."""
        return (
            self.original_status == "failed"
            and self.returncode != 0
            and self.rerun_error is not None
            and self.rerun_error == self.original_error
        )

    @property
    def exact(self) -> bool:
        """Whether the run completed (or failed as the exported run did) and every
        artifact came out identical (or equivalent, with ``equivalent_ok``)."""
        accepted = ("identical", "equivalent") if self.equivalent_ok else ("identical",)
        ended_alike = self.returncode == 0 or self.failed_alike
        compared = all(c.status in accepted for c in self.checks)
        return ended_alike and compared and not self.unsaved

    def counts(self) -> dict[str, int]:
        """``{status: number of artifacts}``."""
        counts = dict.fromkeys(STATUSES, 0)
        for check in self.checks:
            counts[check.status] += 1
        return counts


@dataclass
class RerunSpec:
    """How to start a recorded run again: the pieces of its ``assay run`` command."""

    experiment: str
    param_files: list[str]
    names: list[str]
    indices: list[int]
    overrides: list[str]
    prefix: str | None
    lazy: bool
    ignore_lazy: bool = False
    """The run treated ``Lazy`` outputs as ordinary ones (``--ignore-lazy``): a stage
    given a ``Lazy("x", resolve=False)`` output got its value, not a handle."""
    dry_cache: bool = False
    """The run read the cache but wrote nothing to it (``--dry-cache``)."""

    def cli_args(self) -> list[str]:
        """``["run", EXPERIMENT, "-p", ...]``: the arguments after ``assay`` that start the
        run again as it was made (with every flag that changes what it computes or saves)."""
        args = ["run", self.experiment]
        for flag, values in (
            ("-p", self.param_files),
            ("--names", self.names),
            ("--indices", self.indices),
            ("--set", self.overrides),
        ):
            for value in values:
                args += [flag, str(value)]
        if self.prefix:
            args += ["--prefix", self.prefix]
        if self.lazy:
            args.append("--lazy")
        if self.ignore_lazy:
            args.append("--ignore-lazy")
        if self.dry_cache:
            args.append("--dry-cache")
        return args


def rerun_spec(record: dict, root: str | os.PathLike | None = None) -> RerunSpec:
    """The :class:`RerunSpec` of a run record; ``root`` makes absolute project paths relative.

    Raises :class:`~assay.errors.AssayError` when the run cannot be started
    from files (its parameter sets were passed in from Python, its experiment
    module has no file, or a file lies outside the project).
    """
    run = record["run"]
    config = run.get("config") or {}
    if config.get("interactive"):
        raise AssayError(
            f"Run {run['id']} recorded the stages a notebook or script ran on a live "
            "manager (ArtifactManager.generate_report()), not an experiment, so it cannot be "
            "started again. Its artifacts can still be loaded and checked (assay lineage, "
            "assay cache verify); an experiment module run with `assay run` can be reproduced."
        )
    if config.get("param_sets_given"):
        raise AssayError(
            f"Run {run['id']} got its parameter sets from Python (run_experiment(param_sets=...)), "
            "not from parameter files, so it cannot be started again from its files. Put the "
            "sets in a parameter file's get_params() and run it with -p."
        )
    experiment = config.get("experiment")
    if not experiment and not config.get("experiment_file") and "param_files" in config:
        name = run.get("experiment") or "experiment"
        raise AssayError(
            f"Run {run['id']} ran the experiment module {name!r}, which has no file (its code "
            "was defined in a notebook, or made in Python), so it cannot be started again "
            f"from files. Put the code in experiments/{name}.py and run it with `assay run "
            f"{name}`. This run's artifacts can still be loaded and checked (assay.load, "
            "assay lineage, assay cache verify)."
        )
    if not experiment or "/" in experiment or os.sep in experiment or experiment.endswith(".py"):
        experiment = _inside(config.get("experiment_file") or experiment, root, "experiment")
    prefix = config.get("prefix")
    ignore_lazy = ignored_lazy(run)
    if "param_files" not in config:  # recorded before assay kept them: read the command line
        config = {**config, **_from_command(run.get("command") or "")}
    return RerunSpec(
        experiment=experiment,
        param_files=[_inside(p, root, "parameter file") for p in config.get("param_files") or []],
        names=list(config.get("names") or []),
        indices=[int(i) for i in config.get("indices") or []],
        overrides=list(config.get("overrides") or []),
        prefix=prefix if prefix and prefix != run["experiment"] else None,
        lazy=bool(config.get("lazy")),
        ignore_lazy=ignore_lazy,
        dry_cache=bool(config.get("dry_cache")),
    )


def reproduce(
    folder: str | os.PathLike,
    *,
    workdir: str | os.PathLike | None = None,
    reuse: bool = False,
    python: str | None = None,
    quiet: bool = False,
    equivalent_ok: bool = False,
) -> Reproduction:
    """Re-run the exported run in ``folder`` and compare its artifacts (see the module docs).

    Args:
        folder: a folder written by ``--store-full``.
        workdir: where to re-run it: a new or empty folder, or one where an earlier
            ``reproduce`` of this export ran (it failed, was interrupted): that is reused.
        reuse: start from the exported cache and recompute only what changed,
            instead of recomputing everything.
        python: the Python interpreter to run it with (default: this one).
        quiet: capture the re-run's console output instead of showing it.
        equivalent_ok: count artifacts whose bytes differ but whose loaded values
            are equal (a pickled model can be) as reproduced.
    """
    again = _again(folder, workdir, reuse, equivalent_ok)
    folder = require_export(folder).resolve()
    record = read_run_record(folder / "run.json")
    # Saving what it computes, even for a run made with --dry-cache: that is what is compared.
    spec = replace(rerun_spec(record), dry_cache=False)
    workdir = Path(workdir).absolute() if workdir else _new_workdir(folder)  # the re-run's cwd
    code = _code_snapshot(folder)
    earlier = _check_workdir(workdir, folder, record["run"]["id"])
    _refuse_links_out(workdir, code)
    for name in earlier:  # the earlier attempt's copy of the code: the export's may differ
        with contextlib.suppress(OSError):
            (workdir / name).unlink()
    shutil.copytree(code, workdir, symlinks=True, dirs_exist_ok=True)
    copied = sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if not p.is_dir())
    marker = {"export": str(folder), "run": record["run"]["id"], "code": copied}
    (workdir / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    if not any((workdir / n).exists() for n in ("assay.toml", "experiments", "pyproject.toml")):
        (workdir / "assay.toml").write_text("# Made by `assay reproduce`: the project root.\n")
    cache = workdir / "data" / "cache"
    if reuse:
        _reuse_exported_cache(record, folder / "cache", cache)
    command = [python or sys.executable, "-m", "assay", *spec.cli_args()]
    command += ["--cache", str(cache), "--notes", f"reproduction of {record['run']['id']}"]
    if not reuse:
        command.append("--overwrite")
    earlier_runs = _run_ids(workdir / "assay.db")  # of an earlier attempt here
    proc = subprocess.run(
        command,
        cwd=workdir,
        env={**_environment(workdir), "ASSAY_RUN_AGAIN": again},
        stdin=subprocess.DEVNULL,
        capture_output=quiet,
        text=True,
    )
    result = Reproduction(folder, workdir, command, proc.returncode, None)
    result.equivalent_ok = equivalent_ok
    result.code_note = code_note((record.get("export") or {}).get("code") or {})
    result.original_status = str(record["run"].get("status") or "completed")
    result.original_error = record["run"].get("error")
    result.unsaved = unsaved_stage_runs(record)
    result.original_run = str(record["run"].get("id") or "")
    for item in ((record.get("export") or {}).get("code") or {}).get("left_out") or []:
        if isinstance(item, dict) and item.get("path"):
            result.left_out.append(f"{item['path']} ({item.get('reason') or 'left out'})")
    new_artifacts = _new_artifacts(workdir / "assay.db", result, earlier_runs)
    result.packages = _package_changes(record, workdir / "assay.db", result.run_id)
    _compare(record, CacheStore(folder / "cache"), CacheStore(cache), new_artifacts, result)
    return result


# -- comparing ----------------------------------------------------------------------------


def _compare(record: dict, old: CacheStore, new: CacheStore, made: list, result: Reproduction):
    by_key = {a.key: a for a in made}
    by_label: dict[tuple, list] = defaultdict(list)
    for artifact in made:
        by_label[(artifact.param_set, artifact.stage, artifact.name)].append(artifact)
    used: set[str] = set()
    exported = (record.get("export") or {}).get("artifacts", {})
    not_exported = dict.fromkeys(exported.get("missing", []), "it was no longer in the cache")
    not_exported.update(dict.fromkeys(exported.get("external", []), "it is outside the cache"))
    # Changed since the run (a later run recomputed it, or it was damaged): an export made
    # before such copies were left out may still hold the later run's, which is no copy of
    # this run's artifact either.
    for entry in exported.get("changed", []):
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            not_exported[entry["key"]] = _changed(entry.get("problem"))
    saved_path = list(sys.path)
    sys.path.insert(0, str(result.workdir))  # classes of pickled values live in the code
    try:
        for artifact in record["artifacts"]:
            label = (artifact["param_set"], artifact["stage"], artifact["name"])
            check = ArtifactCheck(*label, key=artifact["key"], status="missing")
            result.checks.append(check)
            match = by_key.get(artifact["key"])
            if match is None:  # the key changed (other code or parameters): same place then
                candidates = by_label[label]
                match = next((a for a in candidates if a.key not in used), None)
                match = match or (candidates[0] if candidates else None)
            if match is not None:
                used.add(match.key)  # reproduced, whether or not there is a copy to compare
            if artifact["key"] in not_exported:
                why = not_exported[artifact["key"]]
                check.status, check.detail = _not_exported(artifact, why, match, new)
                continue
            old_meta = old.read_meta(*_split(artifact["key"]))
            if old_meta is None:  # run.json says it was exported
                check.status, check.detail = "damaged", _lost(old, artifact["key"])
                continue
            damage = _damage(artifact, old, old_meta)
            if damage:
                check.status, check.detail = "damaged", damage
                continue
            if match is None:
                check.detail = "the reproduction did not produce it"
                continue
            new_meta = new.read_meta(*_split(match.key))
            if new_meta is None:
                check.detail = "the reproduction recorded it, but its cache entry is missing"
                continue
            if _files(old_meta) == _files(new_meta):
                check.status = "identical"
                continue
            check.status, check.detail = _describe(old, old_meta, new, new_meta)
    finally:
        sys.path[:] = saved_path
    result.new = list(dict.fromkeys(a.key for a in made if a.key not in used))


def _reuse_exported_cache(record: dict, exported: Path, cache: Path) -> list[str]:
    """Copy the export's cache to ``cache`` for ``--reuse``, keeping only the entries that
    are the run's artifacts as ``run.json`` records them; return the keys left out.

    A copied entry is loaded by the re-run as a cache hit, and its sidecar alone cannot
    tell a tampered entry (a file and its sidecar changed together) from the run's: an
    entry whose file fails its checksum, whose sidecar's checksum is not the one
    ``run.json`` records, or that is no artifact of the run is removed from the copy, so
    the re-run computes it again instead of unpickling it.
    """
    shutil.copytree(exported, cache, symlinks=True, dirs_exist_ok=True)
    copy = CacheStore(cache)
    artifacts = {a["key"]: a for a in record["artifacts"]}
    left_out = []
    for folder in copy.stage_folders():
        for output in folder.outputs:
            key = f"{folder.key}.{output}"
            meta = copy.read_meta(folder.key, output)
            if key not in artifacts:
                problem = "it is no artifact of the exported run"
            elif meta is None:
                problem = "its sidecar cannot be read"
            else:
                problem = _damage(artifacts[key], copy, meta)
            if problem:
                copy.discard(folder.key, output)
                left_out.append(key)
                log.warning(
                    "--reuse: not reusing %s from the export (%s): the re-run computes it.",
                    key,
                    problem,
                )
    return left_out


def _changed(problem: Any) -> str:
    """Why an artifact listed under ``export.artifacts.changed`` is not in the export."""
    from assay.export.full import RECOMPUTED

    if not problem or problem == RECOMPUTED or str(problem).startswith("recomputed by a later"):
        return "it changed since the run (a later run recomputed it, with other bytes)"
    return f"it changed since the run (damaged in the cache: {problem})"


def _not_exported(artifact: dict, why: str, match: Any, new: CacheStore) -> tuple[str, str]:
    """``(status, detail)`` of an artifact the export holds no copy of: the detail says
    whether the reproduction made it, and with the checksum ``run.json`` records or not."""
    detail = f"{why}, so the export holds no copy to compare"
    if match is None:
        return "not exported", f"{detail}; the reproduction did not produce it"
    new_meta = new.read_meta(*_split(match.key))
    recorded = artifact.get("checksum")
    if new_meta is None or not new_meta.get("files"):
        return "not exported", f"{detail}; the reproduction recorded it, but has no cache entry"
    if not recorded:
        return "not exported", f"{detail}; the reproduction made it (run.json records no checksum)"
    same = len(new_meta["files"]) == 1 and new_meta["files"][0].get("checksum") == recorded
    bytes_ = "the checksum run.json records" if same else "other bytes than run.json records"
    return "not exported", f"{detail}; the reproduction recomputed it, with {bytes_}"


def _lost(cache: CacheStore, key: str) -> str:
    """Why the export has no readable sidecar of an artifact it copied."""
    sidecar = Path(cache.meta_path(*_split(key)))
    if sidecar.exists():
        return f"the exported copy's sidecar {sidecar.name} cannot be read; not loaded"
    return "the exported copy is gone from the export's cache/ (no sidecar); nothing to compare"


def _damage(artifact: dict, cache: CacheStore, meta: dict) -> str | None:
    """Why the exported copy cannot be trusted (it is then never loaded), or ``None``."""
    recorded = artifact.get("checksum")
    if recorded and recorded != meta["files"][0]["checksum"]:
        return "the exported copy's sidecar does not match run.json; not loaded"
    try:
        cache.verify(meta)
    except CorruptArtifactError as exc:
        return f"the exported copy is damaged; not loaded: {exc}"
    return None


def _describe(old: CacheStore, old_meta: dict, new: CacheStore, new_meta: dict):
    """``(status, detail)`` for two versions whose bytes differ: different or equivalent."""
    from assay.loading import load_artifact

    sizes = f"{old_meta.get('size')} → {new_meta.get('size')} bytes"
    try:
        before = load_artifact(old, old_meta)  # verifies the checksum before loading
        after = load_artifact(new, new_meta)
    except CorruptArtifactError as exc:
        return "different", f"checksums differ ({sizes}); not loaded: {exc}"
    except Exception as exc:  # a missing package, a cacher that cannot load here, ...
        return "different", f"checksums differ ({sizes}); could not be loaded to compare: {exc}"
    try:
        if values_equal(before, after):
            return "equivalent", "equal values when loaded, but the saved bytes differ"
        return "different", describe_difference(before, after)
    except Exception as exc:
        return "different", f"checksums differ ({sizes}); {type(exc).__name__} comparing: {exc}"


def _files(meta: dict) -> list[tuple[str, str]]:
    files = meta["files"]
    cacher = str((meta.get("cacher") or {}).get("class", ""))
    if cacher.endswith(".FileReferenceCacher") and len(files) > 1:
        # Its own file lists paths, which differ from folder to folder: the files they
        # name (written in the stage's folder, listed after it) are what is compared.
        files = files[1:]
    return sorted((Path(f["path"]).name, f["checksum"]) for f in files)


def _split(key: str) -> tuple[str, str]:
    return split_artifact_key(key)


def _run_ids(store_path: Path) -> set[str]:
    """The ids of the runs in the run store ``store_path`` (none if there is none)."""
    from assay.store import RunStore

    if not store_path.exists():
        return set()
    with RunStore(store_path) as store:
        return {run.id for run in store.list_runs(limit=None)}


def _package_changes(record: dict, store_path: Path, run_id: str | None) -> dict:
    """The packages the exported run had that the reproduction has in another version, or
    not at all (``{name: (run's, reproduction's or None)}``); ``{}`` if either run
    recorded none. Packages only the reproduction has change nothing the run did."""
    from assay.store import RunStore

    before = (record.get("provenance") or {}).get("packages")
    if run_id is None or not isinstance(before, dict):
        return {}
    with RunStore(store_path) as store:
        after = (store.provenance(run_id) or {}).get("packages")
    if not isinstance(after, dict):
        return {}
    return {
        name: (v, after.get(name)) for name, v in sorted(before.items()) if after.get(name) != v
    }


def _new_artifacts(store_path: Path, result: Reproduction, earlier: set[str]) -> list:
    """The artifacts of the reproduction's run: the newest in the working folder's run
    store, unless it is one of ``earlier`` (an earlier attempt's: this one did not start)."""
    from assay.store import RunStore

    if not store_path.exists():
        return []
    with RunStore(store_path) as store:
        runs = store.list_runs(limit=1)
        if not runs or runs[0].id in earlier:
            return []
        result.run_id, result.rerun_error = runs[0].id, runs[0].error
        return store.artifacts(runs[0].id)


# -- the working folder -------------------------------------------------------------------


def _code_snapshot(folder: Path) -> Path:
    """The export's ``code/`` folder. It is always called that: a path ``run.json`` gives
    is not followed (``/etc`` or ``../..`` would copy files from outside the export). A
    link in it that leads out of it is refused: copied into the working folder, it would
    have the re-run write there (``code/data`` → another folder: its cache)."""
    code = folder / "code"
    if code.is_symlink() or not code.is_dir():
        raise AssayError(
            f"{folder} has no code snapshot ({code} is missing, or is a link out of the "
            "export): export the run again (`assay export full RUN`) and reproduce that."
        )
    inside = code.resolve()
    for path in code.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(inside):
            raise AssayError(
                f"{path} in the export's code snapshot links out of it (to "
                f"{path.resolve()}); assay never writes such links, and the re-run would "
                "write through it. Remove the link, or export the run again."
            )
    return code


def _refuse_links_out(workdir: Path, code: Path) -> None:
    """Refuse a workdir where a folder the code snapshot is copied into (and an earlier
    attempt's copy removed from) links out of it: that would write or remove files there."""
    root = workdir.resolve()
    folders = [code, *(p for p in code.rglob("*") if p.is_dir() and not p.is_symlink())]
    for folder in folders:
        there = workdir / folder.relative_to(code)
        if there.exists() and not there.resolve().is_relative_to(root):
            raise AssayError(
                f"{workdir} cannot be reused: {there} links out of it (to {there.resolve()}), "
                "and the export's code would be copied there, replacing files. Remove the "
                "link, or give another --workdir."
            )


MARKER = ".assay-reproduction.json"
"""The file that marks a working folder as one ``assay reproduce`` made, and of which
exported run: running the same ``assay reproduce`` again may reuse it."""


def _again(folder: Any, workdir: Any, reuse: bool, equivalent_ok: bool) -> str:
    """The ``assay reproduce`` command that does this again, as the user would type it
    (paths as given): what the re-run says to run after a failure or Ctrl-C, instead of
    its own internal ``python -m assay run ...``."""
    import shlex

    words = ["assay", "reproduce", os.fspath(folder)]
    if workdir is not None:
        words += ["--workdir", os.fspath(workdir)]
    words += ["--reuse"] * reuse + ["--equivalent-ok"] * equivalent_ok
    return shlex.join(words)


def _check_workdir(workdir: Path, folder: Path, run_id: str) -> list[str]:
    """Refuse a working folder that exists, unless it is empty or holds an earlier attempt
    to reproduce this same export (its :data:`MARKER` says so), which is reused: return
    the files that attempt copied from the code snapshot (to be copied afresh), ``[]``
    otherwise. Nothing else in it is deleted (its cache, run store, logs, what the user
    added); the new run joins the earlier ones in its run store."""
    if not workdir.exists():
        return []
    if not workdir.is_dir():
        raise AssayError(f"The working folder {workdir} is a file; give a folder.")
    if not any(workdir.iterdir()):
        return []  # an empty folder
    try:
        earlier = json.loads((workdir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = None
    if not isinstance(earlier, dict):
        raise AssayError(
            f"The working folder {workdir} exists already and is not an earlier reproduction "
            "of this export; give another one (a new folder), or remove it first."
        )
    if earlier.get("run") != run_id or earlier.get("export") != str(folder):
        raise AssayError(
            f"The working folder {workdir} holds a reproduction of "
            f"{earlier.get('export') or 'another export'} (run {earlier.get('run')}), not of "
            f"{folder} (run {run_id}); give another one."
        )
    log.info("Reusing %s, where this export was reproduced before.", workdir)
    names = earlier.get("code") or []
    return [
        n
        for n in names
        if isinstance(n, str) and not Path(n).is_absolute() and ".." not in Path(n).parts
    ]


def _new_workdir(folder: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    candidate = folder / "reproductions" / stamp
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / "reproductions" / f"{stamp}-{number}"
    candidate.parent.mkdir(parents=True, exist_ok=True)
    return candidate


def _environment(workdir: Path) -> dict[str, str]:
    """The re-run's environment: everything of its own inside ``workdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(
        ASSAY_STORE_PATH=str(workdir / "assay.db"),
        ASSAY_LOGS_DIR=str(workdir / "logs"),
        ASSAY_REPORTS_DIR=str(workdir / "reports"),
        ASSAY_RUNS_DIR=str(workdir / "data" / "runs"),
        GIT_CEILING_DIRECTORIES=str(workdir.parent),  # not the repository around the export
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _from_command(command: str) -> dict[str, list[str]]:
    """``-p``, ``--names`` and ``--indices`` from a recorded ``assay run`` command line."""
    import shlex

    flags = {"-p": "param_files", "--params": "param_files", "-n": "names",
             "--names": "names", "-i": "indices", "--indices": "indices"}  # fmt: skip
    found: dict[str, list[str]] = {"param_files": [], "names": [], "indices": []}
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if words[:2] != ["assay", "run"]:
        raise AssayError(
            f"The run record does not say which parameter files the run used, and its command "
            f"({command!r}) is not an `assay run` command to read them from."
        )
    for flag, value in zip(words, words[1:]):
        if flag in flags:
            found[flags[flag]].append(value)
    return found


def _inside(path: str | None, root: Any, what: str) -> str:
    """A project path as a relative one (the snapshot has only the project's files)."""
    if not path:
        raise AssayError(f"The run record does not say which {what} the run used.")
    if not os.path.isabs(path):
        return path
    if root is not None:
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    raise AssayError(
        f"The run used the {what} {path}, which is outside the project, so it is not in the "
        "code snapshot. Move it into the project (e.g. params/) and run again."
    )
