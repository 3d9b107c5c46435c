"""``assay compare RUN RUN``: what differs between two runs, from the run store alone.

::

    from assay.compare import compare_runs
    from assay.store import RunStore

    with RunStore("assay.db") as store:
        diff = compare_runs(store, 6, 7, cache="data/cache")
    diff.params      # [ParamChange("trees_100", "n_trees", 100, 200), ...]
    diff.code        # {"commit": ("3f1c...", "9a0b..."), "dirty": (False, True), ...}
    diff.stage_code  # {"train": [("experiments.iris.fit_model", "5e1f...", "77c0...")]}
    diff.packages    # PackageChanges(added={...}, removed={...}, changed={"numpy": ("1.26.3", "1.26.4")})
    diff.artifacts   # [ArtifactChange("trees_100", "train", "model", "checksum", ...), ...]

Parameter sets are matched by name and compared field by field (nested
fields with dots, as ``assay params`` shows them). Artifacts are matched by
parameter set, stage and output name; one *changed* when its key differs
(different code, parameters or inputs) or, with the same key, its checksum
(a non-deterministic stage, or the cache entry was recomputed).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from assay.params import item_by_item_as_in
from assay.run_record import ignored_lazy

__all__ = ["ArtifactChange", "PackageChanges", "ParamChange", "RunComparison", "compare_runs"]

_MISSING: Any = "(not set)"


class ParamChange(NamedTuple):
    """One field of one parameter set with different values in the two runs."""

    param_set: str
    field: str
    a: Any
    b: Any


class ArtifactChange(NamedTuple):
    """One artifact that differs: ``what`` is ``"key"``, ``"checksum"``, ``"only in A"`` or
    ``"only in B"``; ``a`` and ``b`` are the differing keys or checksums (or ``None``)."""

    param_set: str | None
    stage: str
    name: str
    what: str
    a: str | None
    b: str | None


@dataclass
class PackageChanges:
    """How the installed Python packages differ (``None`` fields: a run recorded none)."""

    added: dict[str, str] = field(default_factory=dict)
    """Packages only run B had, with their versions."""
    removed: dict[str, str] = field(default_factory=dict)
    """Packages only run A had."""
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Packages both had, in different versions: name → (A's, B's)."""
    recorded: tuple[bool, bool] = (True, True)
    """Whether each run recorded its packages at all."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class RunComparison:
    """Everything that differs between run A and run B (see :func:`compare_runs`)."""

    a: Any
    """Run A's :class:`~assay.store.RunInfo`."""
    b: Any
    """Run B's :class:`~assay.store.RunInfo`."""
    settings: list[tuple[str, Any, Any]] = field(default_factory=list)
    """Run-level differences: ``(what, A's, B's)`` for experiment, overrides, notes,
    python, ..."""
    sets_only_a: list[str] = field(default_factory=list)
    """Parameter sets only run A used."""
    sets_only_b: list[str] = field(default_factory=list)
    """Parameter sets only run B used."""
    params: list[ParamChange] = field(default_factory=list)
    """Fields that differ between parameter sets of the same name."""
    code: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """Differences in the code's git state: ``commit``, ``dirty``, ``branch``, ``diff``,
    ``untracked`` (the untracked files only A had, and those only B had), and
    ``state`` when only one run's is known (``"unknown: git is not installed ..."``): the
    other's commit, dirty flag and branch are then ``None``, not a clean tree."""
    stage_code: dict[str, list[tuple[str, str | None, str | None]]] = field(default_factory=dict)
    """Stages whose code differs (their function, or a helper or constant they use), from
    the code each run recorded for its stages in the run store (or, for runs from before
    it did, their artifacts' sidecars): stage → ``(function or constant, A's digest, B's
    digest)`` for each that differs (``None``: not used). Seen with or without git."""
    stage_code_unknown: list[str] = field(default_factory=list)
    """Stages whose artifacts changed key but whose code cannot be compared: a run from
    before assay kept the code of its stages in the run store, and the cache no longer
    holds the sidecars of its artifacts (``assay cache gc`` removed them), or no cache
    was given. Their code may or may not differ."""
    packages: PackageChanges = field(default_factory=PackageChanges)
    """Differences in installed packages."""
    artifacts: list[ArtifactChange] = field(default_factory=list)
    """Artifacts whose key or checksum differ, or that only one run has."""
    same_artifacts: int = 0
    """Artifacts with the same key and checksum in both runs."""
    unrecorded: list[str] = field(default_factory=list)
    """``"A"`` and/or ``"B"``: a run whose stages the run store does not hold, because it
    is still going on (a run records its stages, artifacts and metrics when it ends) or
    its process was killed before. Artifacts are then not compared (``artifacts`` is
    empty): every one of the other run would seem to be its alone."""

    @property
    def stage_code_summary(self) -> str:
        """``"N stage(s) with other code"``, and for how many stages it is unknown."""
        text = f"{len(self.stage_code)} stage(s) with other code"
        unknown = self.stage_code_unknown
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            text += (
                f", unknown for {len(unknown)} ({shown}: a run from before assay kept the "
                "code of its stages in the run store, and the cache no longer holds the "
                "records of its artifacts to compare)"
            )
        return text

    @property
    def same_run(self) -> bool:
        """Whether A and B are one run (``compare 12 latest`` with 12 the latest)."""
        return self.a.id == self.b.id

    def artifacts_only_in(self, side: str) -> list[ArtifactChange]:
        """The artifacts only run ``"A"`` or only run ``"B"`` has."""
        return [c for c in self.artifacts if c.what == f"only in {side}"]

    @property
    def identical(self) -> bool:
        """Whether nothing but times and numbers differ."""
        return not (
            self.settings or self.sets_only_a or self.sets_only_b or self.params
            or self.code or self.stage_code or self.packages or self.artifacts
            or self.unrecorded
        )  # fmt: skip

    def unrecorded_text(self) -> str:
        """Why artifacts (and metrics) are not compared, or some only, one sentence per run
        concerned; ``""`` when both runs recorded every artifact they made."""
        sentences = []
        for side, run in (("A", self.a), ("B", self.b)):
            if side not in self.unrecorded and _dry_cache(run):
                sentences.append(
                    f"Run {side} ran with --dry-cache: the artifacts it computed were not "
                    "cached, nor recorded, so they show as only in the other run."
                )
        for side in self.unrecorded:
            run = self.a if side == "A" else self.b
            if run.status == "running":
                sentences.append(
                    f"Run {side} is still running: the run store records its stages, "
                    "artifacts and metrics when it ends, so they are not compared yet."
                )
            else:
                sentences.append(
                    f"Run {side} recorded no stages ({run.status}: its process ended before "
                    "it recorded them, e.g. killed), so its artifacts and metrics are not "
                    "compared."
                )
        return " ".join(sentences)


def compare_runs(
    store: Any, ref_a: int | str, ref_b: int | str, cache: Any = None
) -> RunComparison:
    """Compare two runs of the run store (references as for :meth:`RunStore.get_run`).

    Stages whose code changed (``stage_code``) are found from the code each run recorded
    for its stages in the run store. For runs from before assay recorded it there, give
    the project's ``cache`` to find them from their artifacts' sidecars: the cache folder (``"data/cache"``,
    from the current folder) or a :class:`~assay.cache.CacheStore`, e.g. the one the
    project's settings name (a folder or a URL)::

        from assay.cache import open_cache
        from assay.config import ProjectConfig

        diff = compare_runs(store, 6, 7, cache=open_cache(ProjectConfig.load()))
    """
    if isinstance(cache, (str, os.PathLike)):
        from assay.cache import CacheStore

        cache = CacheStore(cache)
    a, b = store.get_run(ref_a), store.get_run(ref_b)
    result = RunComparison(a, b)
    _compare_settings(a, b, result)
    _compare_params(store.param_sets(a.id), store.param_sets(b.id), result)
    prov_a, prov_b = store.provenance(a.id) or {}, store.provenance(b.id) or {}
    _compare_code(prov_a.get("git"), prov_b.get("git"), result)
    result.packages = _compare_packages(prov_a.get("packages"), prov_b.get("packages"))
    result.unrecorded = [
        side for side, run in (("A", a), ("B", b)) if _stages_unrecorded(store, run)
    ]
    if not result.unrecorded:
        _compare_artifacts(store.artifacts(a.id), store.artifacts(b.id), result)
    recorded = [prov.get("stage_code") or {} for prov in (prov_a, prov_b)]
    _compare_stage_code(result, cache, *recorded)
    return result


def _dry_cache(run: Any) -> bool:
    """Whether a run ran with ``--dry-cache`` (it read the cache, never wrote it)."""
    return isinstance(run.config, dict) and bool(run.config.get("dry_cache"))


def _ignored_lazy(run: Any) -> bool:
    """Whether a run ran with ``--ignore-lazy``: as recorded, or for a run recorded before
    assay kept it, as its ``assay run`` command line says."""
    return ignored_lazy({"config": run.config, "command": run.command})


def _stages_unrecorded(store: Any, run: Any) -> bool:
    """Whether a run has not recorded what it did (its stages and artifacts, written
    together as it ends): it is going on, or was stopped (killed) before it could."""
    return (
        run.status in ("running", "interrupted")
        and not store.stages(run.id)
        and not store.artifacts(run.id)
    )


def _compare_stage_code(
    result: RunComparison, cache: Any, code_a: dict | None = None, code_b: dict | None = None
) -> None:
    """Fill ``result.stage_code`` for the stages of artifacts whose key changed, and
    ``result.stage_code_unknown`` with the stages whose code cannot be compared.

    The code each stage ran with is in each run's provenance (``code_a``, ``code_b``,
    kept in the run store); for runs from before assay recorded it there, the
    artifacts' sidecars tell, while the cache holds them."""
    compared: set[str] = set()
    uncertain: dict[str, None] = {}
    for change in result.artifacts:
        if change.what != "key" or change.stage in result.stage_code:
            continue
        uncertain.setdefault(change.stage)
        parts = [
            _recorded_parts(recorded, change.stage) or _code_parts(cache, key)
            for recorded, key in ((code_a, change.a), (code_b, change.b))
        ]
        if None in parts:
            continue  # one of them is no longer cached
        compared.add(change.stage)
        before, after = parts
        changed = sorted(
            (name, before.get(name), after.get(name))
            for name in {*before, *after}
            if before.get(name) != after.get(name)
        )
        if changed:
            result.stage_code[change.stage] = changed
    result.stage_code_unknown = [
        s for s in uncertain if s not in compared and s not in result.stage_code
    ]


def _recorded_parts(recorded: dict | None, stage: str) -> dict | None:
    """``{function or constant: digest}`` of a stage's code as its run recorded it."""
    parts = (recorded or {}).get(stage)
    return parts if isinstance(parts, dict) and parts else None


def _code_parts(cache: Any, artifact: str | None) -> dict | None:
    """``{function or constant: digest}`` of the code that made an artifact, or ``None``."""
    if cache is None:
        return None
    stage_key, _, output = (artifact or "").partition(".")
    meta = cache.read_meta(stage_key, output) if output else None
    parts = ((meta or {}).get("ingredients") or {}).get("code_parts")
    return parts if isinstance(parts, dict) else None


def _compare_settings(a: Any, b: Any, result: RunComparison) -> None:
    pairs = [
        ("experiment", a.experiment, b.experiment),
        ("python", a.python, b.python),
        ("platform", a.platform, b.platform),
        ("host", a.host, b.host),
        ("status", a.status, b.status),
        ("notes", a.notes, b.notes),
    ]
    for name in ("overrides", "param_files", "names", "indices", "prefix", "lazy"):
        pairs.append((name, a.config.get(name), b.config.get(name)))
    pairs.append(("dry_cache", _dry_cache(a), _dry_cache(b)))  # unset: runs before it was kept
    pairs.append(("ignore_lazy", _ignored_lazy(a), _ignored_lazy(b)))
    result.settings = [(name, x, y) for name, x, y in pairs if x != y]


def _compare_params(sets_a: list, sets_b: list, result: RunComparison) -> None:
    by_a = {p.name: p for p in sets_a}
    by_b = {p.name: p for p in sets_b}
    result.sets_only_a = [n for n in by_a if n not in by_b]
    result.sets_only_b = [n for n in by_b if n not in by_a]
    for name in by_a:
        if name not in by_b:
            continue
        values_a = item_by_item_as_in(by_a[name].values, by_b[name].values)
        values_b = item_by_item_as_in(by_b[name].values, by_a[name].values)
        if values_a == values_b and by_a[name].cls == by_b[name].cls:
            continue
        for key in dict.fromkeys([*values_a, *values_b]):
            x, y = values_a.get(key, _MISSING), values_b.get(key, _MISSING)
            if key != "name" and x != y:
                result.params.append(ParamChange(name, key, x, y))
        if by_a[name].cls != by_b[name].cls:
            result.params.append(ParamChange(name, "(class)", by_a[name].cls, by_b[name].cls))


def _compare_code(git_a: dict | None, git_b: dict | None, result: RunComparison) -> None:
    git_a, git_b = git_a or {}, git_b or {}
    errors = git_a.get("error"), git_b.get("error")
    if errors[0] != errors[1]:  # git was not installed, or not a repository, for one run
        result.code["state"] = tuple(f"unknown: {e}" if e else "recorded" for e in errors)
    for name in ("commit", "dirty", "branch"):
        x, y = (None if error else git.get(name) for git, error in zip((git_a, git_b), errors))
        if x != y:
            result.code[name] = (x, y)
    if (git_a.get("dirty") or git_b.get("dirty")) and git_a.get("diff") != git_b.get("diff"):
        result.code["diff"] = (len(git_a.get("diff") or ""), len(git_b.get("diff") or ""))
    untracked_a, untracked_b = (set(git.get("untracked") or ()) for git in (git_a, git_b))
    if untracked_a != untracked_b:  # files git did not track: only in A, only in B
        only = sorted(untracked_a - untracked_b), sorted(untracked_b - untracked_a)
        result.code["untracked"] = tuple(", ".join(names) or None for names in only)


def _compare_packages(a: dict | None, b: dict | None) -> PackageChanges:
    changes = PackageChanges(recorded=(a is not None, b is not None))
    if a is None or b is None:
        return changes
    changes.added = {n: v for n, v in b.items() if n not in a}
    changes.removed = {n: v for n, v in a.items() if n not in b}
    changes.changed = {n: (a[n], b[n]) for n in a if n in b and a[n] != b[n]}
    return changes


def _compare_artifacts(arts_a: list, arts_b: list, result: RunComparison) -> None:
    def labelled(artifacts: list) -> dict[tuple, Any]:
        seen: dict[tuple, int] = defaultdict(int)
        out = {}
        for art in artifacts:
            label = (art.param_set, art.stage, art.name)
            out[(*label, seen[label])] = art
            seen[label] += 1
        return out

    by_a, by_b = labelled(arts_a), labelled(arts_b)
    for label in dict.fromkeys([*by_a, *by_b]):
        x, y = by_a.get(label), by_b.get(label)
        where = label[:3]
        if y is None:
            result.artifacts.append(ArtifactChange(*where, "only in A", x.key, None))
        elif x is None:
            result.artifacts.append(ArtifactChange(*where, "only in B", None, y.key))
        elif x.key != y.key:
            result.artifacts.append(ArtifactChange(*where, "key", x.key, y.key))
        elif x.checksum and y.checksum and x.checksum != y.checksum:
            result.artifacts.append(ArtifactChange(*where, "checksum", x.checksum, y.checksum))
        else:
            result.same_artifacts += 1
