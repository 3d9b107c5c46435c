"""The runner: turns a plan into work — decide, look up, submit, record.

Three steps, always in this order:

1. **plan** — every stage call becomes a :class:`~assay.plan.StageNode` with
   its cache key; its outputs are looked up in the cache (a ``stat``, no load).
2. **decide** — walking the DAG backwards, a stage run executes when it has
   no outputs, is forced (``--overwrite``, ``--overwrite-stage``, a parameter
   set with ``overwrite=True``), or some output is not cached *and* something
   needs it (a stage that executes, or nothing downstream at all). Everything
   else is ``cached`` or ``unneeded``, and is never loaded unless read.
3. **execute** — stage runs are handed to an executor (:mod:`assay.executor`)
   as their dependencies finish. A stage gets each cached input as the cache
   holds it: loaded for it, unless no stage that ran since it was loaded was
   given it (see :meth:`Runner._load_afresh`); an input without a cacher comes
   from memory. A cache file that fails its checksum is reported, thrown away
   and recomputed by running its producer.

In a notebook (no ``run()`` being planned) each stage call is planned,
decided and executed at once, through the same code. An experiment whose
``run()`` reads a stage's output (as Curifactory's may) has what is planned so
far decided and executed at that moment, and planning then goes on
(:meth:`Runner.value_of`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from assay import cache_writing, worker_output
from assay.cache import CacherMetadata, link_label
from assay.caching import Cacheable, PickleCacher
from assay.errors import (
    AssayError,
    CacheError,
    CorruptArtifactError,
    OutputSignatureError,
    PlanningError,
    StageError,
    StageFailed,
    stop_behind,
)
from assay.executor import Executor, get_executor
from assay.hashing import hash_value
from assay.keys import ALL, EVERY_FIELD, HAND_SET, REPORTABLES, STATE_READ, read_key
from assay.plan import MISSING, Artifact, Plan, StageNode, missing_state_input, plan_stops
from assay.record import NotSentToWorker
from assay.staging import StageSpec, check_suppressed_inputs
from assay.tracking import code_attributes, code_of_attribute, tracking_copy

if TYPE_CHECKING:
    from assay.manager import ArtifactManager
    from assay.record import Record

log = logging.getLogger("assay")

HAND_OUT_S = 0.02
"""How long the first wait for workers lets the executor hand out the submitted stage runs
before this process does its own deferred work (:attr:`Runner.while_waiting`)."""

SLOTS_RECHECK_S = 1.0
"""While stage runs wait for a worker: how often the run looks whether workers joined
(a Dask cluster that grows), to count the stage runs they took as started."""


class WorkerLost(AssayError):
    """A worker process died (killed, out of memory) while it ran a stage."""


class Observer:
    """Hooks for progress displays; the default does nothing."""

    def planned(self, plan: Plan) -> None:
        """The plan is decided: ``node.status`` says what will happen to each stage run."""

    def stage_queued(self, node: StageNode) -> None:
        """A stage run was sent to workers that are all busy: it waits for one
        (:meth:`stage_started` follows when one takes it)."""

    def stage_started(self, node: StageNode) -> None:
        """A stage run starts executing."""

    def stage_finished(self, node: StageNode) -> None:
        """A stage run finished (``node.status`` is ``executed`` or ``failed``)."""


class Slots:
    """Which of the stage runs sent to workers are running, and which wait for one.

    An executor runs as many stage runs at once as it has workers (threads, on
    Dask), first sent first run, and queues the rest. Of the stage runs sent and
    not back yet, the first :meth:`Executor.slots` therefore run: progress
    displays hear of a stage run's start when it gets a place among them
    (:meth:`Observer.stage_started`), and of it waiting before that
    (:meth:`Observer.stage_queued`). ``node.started`` is this estimate until the
    worker's result says when the stage really started.
    """

    def __init__(self, executor: Executor, observer: Observer):
        self.executor = executor
        self.observer = observer
        self.running: set[int] = set()
        self.waiting: dict[int, StageNode] = {}  # in the order sent

    def sent(self, node: StageNode) -> None:
        """``node`` was just submitted."""
        if self.waiting or not self._free():
            self.waiting[id(node)] = node
            node.started = None
            self.observer.stage_queued(node)
        else:
            self._start(node)

    def back(self, node: StageNode) -> None:
        """``node``'s result (or failure) came back: its place is free (:meth:`refill`
        gives it to the next one once its end is told)."""
        if self.waiting.pop(id(node), None) is not None:
            # It ran before the count had it running (a worker of a Dask cluster that
            # had taken more than one task): its start is told before its end.
            self._start(node)
        self.running.discard(id(node))

    def refill(self) -> None:
        """Count as started the stage runs that free places (or new workers) took."""
        while self.waiting and self._free():
            self._start(self.waiting.pop(next(iter(self.waiting))))

    def _free(self) -> bool:
        slots = self.executor.slots()
        return slots is None or len(self.running) < slots

    def _start(self, node: StageNode) -> None:
        self.running.add(id(node))
        node.started = time.time()
        self.observer.stage_started(node)


class ProgressFile(Observer):
    """Keeps ``logs/RUN_ID.progress.json`` up to date for the dashboard, then removes it.

    A background thread writes it (atomically) twice a second while something
    changed, so stages pay nothing for it; it wraps the observer the caller
    gave (a progress bar, say).
    """

    def __init__(self, path: Any, inner: Observer):
        import threading

        self.path = path
        self.inner = inner
        self.total = 0
        self.done = 0
        self.current: dict[int, str] = {}
        self.queued: set[int] = set()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_writing, daemon=True)
        self._thread.start()

    def planned(self, plan: Plan) -> None:
        # Stage runs that run() needed results of while it was planned are done already.
        self.total = self.done + sum(1 for n in plan.nodes if n.status == "run")
        self._note_change()
        self.inner.planned(plan)

    def stage_queued(self, node: StageNode) -> None:
        self.queued.add(id(node))
        self._note_change()
        self.inner.stage_queued(node)

    def stage_started(self, node: StageNode) -> None:
        self.queued.discard(id(node))
        self.current[id(node)] = f"{node.spec.name} [{node.record_label}]"
        self._note_change()
        self.inner.stage_started(node)

    def stage_finished(self, node: StageNode) -> None:
        self.queued.discard(id(node))
        self.current.pop(id(node), None)
        self.done += 1
        self._note_change()
        self.inner.stage_finished(node)

    def _note_change(self) -> None:
        # Set only when clear: set() takes a lock, and a big run changes 100,000 times. The
        # writer clears the flag before it reads the counts, so it sees this change.
        if not self._changed.is_set():
            self._changed.set()

    def close(self) -> None:
        """The run is over (the run store has the rest): stop writing, remove the file."""
        import contextlib
        import os

        self._stop.set()
        self._changed.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _keep_writing(self) -> None:
        while not self._stop.is_set():
            self._changed.wait()
            if self._stop.is_set():
                return
            self._changed.clear()
            self._write()
            self._stop.wait(0.5)

    def _write(self) -> None:
        import json
        import os

        data = {
            "total": self.total,
            "done": self.done,
            "current": list(self.current.values()),
            "queued": len(self.queued),
        }
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w") as handle:
                handle.write(json.dumps(data))
            os.replace(temporary, self.path)
        except (OSError, RuntimeError):  # a courtesy: never a reason to stop a run
            pass


class Runner:
    """Plans and executes the stage runs of one manager."""

    def __init__(self, manager: ArtifactManager, executor: Executor | None = None):
        self.manager = manager
        self.plan = Plan(self, all_lazy=manager.lazy, ignore_lazy=manager.ignore_lazy)
        self.executor = executor or get_executor("serial")
        self.observer: Observer = Observer()
        self.planning = False
        """True while an experiment's ``run()`` is being planned."""
        self.loaded: list[Artifact] = []
        """Artifacts earlier runs made that this run read from the cache (not those it
        made itself and read back)."""
        self.snapshot_wanted: set[int] = set()
        """Artifacts a copy of their record inherited while not cached: their values are
        kept as made (:attr:`snapshots`), as a stage may change them in place later."""
        self.snapshots: dict[int, Any] = {}
        self.computed: set[str] = set()
        """Keys of the stage runs executed in this run: another stage run with the same
        key reuses them, even under ``--overwrite`` (a key is computed once per run). In a
        notebook each stage call is a run of its own here: a call that is forced
        (``overwrite=True``, ``overwrite_stages`` set since) executes again."""
        self._code: dict = {}
        self._attribute_code: dict[tuple[type, str], str] = {}
        self._fingerprinter = None
        self._setting: tuple[dict[str, str], str] | None = None
        self._deferred: list[StageNode] = []
        self._worker_output = worker_output.OutputFolder()
        self._redone: dict[int, str] = {}  # stage run -> why what it uses is recomputed
        self._restored: set[tuple[int, str]] = set()  # (stage run, key): hand-set state given
        self.warned_folders: set[tuple[str, str]] = set()
        """(Stage, stage whose folder it reached without taking its outputs): warned once
        (see :meth:`Record._warn_uncovered`)."""
        self.upstream_seen: tuple[Any, set[int]] = (None, set())
        """The stage run that last reached another's folder, and what its key covers."""
        self.damaged: dict[tuple[str, str], str] = {}  # (key, output) -> what is wrong with it
        self.placed: dict[str, tuple[str, str, str, str]] = {}
        """Each file a ``path_override`` names that a stage run saved or reused, by absolute
        path: ``(key, output, stage, parameter set)`` of the last (see :meth:`_check_placed`)."""
        self.claims_scope: str | None = None
        """While stage runs of this session are executed by other processes too (workers):
        the name under which the files in :attr:`placed` are claimed in the cache, for every
        process of the run to see (see :meth:`CacheStore.claim_file`)."""
        self.handed: dict[int, Artifact] | None = None
        """While a stage runs in this process: the artifacts it was given (inputs, and
        entries of ``record.state`` it read). Once it has run, those a cache holds are
        loaded again when next read (:meth:`_load_afresh`)."""
        self._settled = 0
        """``plan.nodes[:_settled]`` were decided and executed while ``run()`` was planned,
        because it read an output (:meth:`_run_planned_so_far`)."""
        self.claim_workers: Callable[[Executor], Executor] | None = None
        """Set by a run whose workers are started apart: hands them to this runner, for
        stage runs executed while ``run()`` is still being planned."""
        self._first_read: str | None = None  # until a stage called after it is planned
        self._stage_functions: dict[str, Callable] = {}  # name -> function, while planning
        self.collect_while_executing = False
        """Whether Python's garbage collector (paused while ``run()`` is planned) runs while
        stage runs execute during planning."""
        self.while_waiting: list[Callable[[], None]] = []
        """Work of this process that need not delay the first stage run, done once: while
        the first stage runs go on in workers (or, run here, before them). Whoever
        fills it calls :meth:`do_while_waiting` when the run ends, for a run that
        never waited."""

    # -- 1. plan ----------------------------------------------------------------------

    def call_stage(self, spec: StageSpec, record: Record, args, kwargs, records) -> Record:
        """What a decorated stage does when called: plan it, and run it unless planning."""
        manager = self.manager
        if record.manager is not manager:
            raise ValueError("The record belongs to another manager.")
        if manager.current_stage_name:
            raise _called_inside(spec, manager.current_stage_name)
        if not self.planning:
            self._look_again(record)
        else:
            self._check_name(spec)
            if self._first_read is not None:
                self._say_plan_split(spec, record)
        if spec.is_aggregate:
            if records is None:
                records = [r for r in manager.records if r is not record]
            record.is_aggregate = True
            record.input_records = list(records)
            record.combo_hash = hash_value(
                ["aggregate", record._hash, sorted(r.get_hash() for r in records)]
            )
        node = self.plan.add(
            spec, record, args, kwargs, records, self._cachers(spec, record), self.code_of(spec)
        )
        record._stages.append(spec.name)
        record._nodes.append(node)
        for artifact in node.outputs:
            dict.__setitem__(record.state, artifact.name, artifact)
        # A cache at a URL is asked about every planned stage run at once (see decide).
        self.resolve(node, defer=self.planning and self.manager.cache.remote)
        if not self.planning:
            self.decide([node])
            if manager.dry:  # plan only: what would execute, nothing written
                return record
            if node.forced:  # asked for now (overwrite=True, say): not an earlier call's result
                self.computed.discard(node.key)
            self.execute([node])
            if node.status == "cached":
                self.restore_reportables([node])
        return record

    def _check_name(self, spec: StageSpec) -> None:
        """Refuse a second stage function with the name of one called before in this run."""
        first = self._stage_functions.setdefault(spec.name, spec.func)
        if first is not spec.func:
            found = sorted(f"{f.__module__}.{f.__qualname__}" for f in (first, spec.func))
            raise PlanningError(
                f"Two different stages are named {spec.name!r} ({' and '.join(found)}). "
                "Their results would share the cache folder by-name/EXPERIMENT/SET/"
                f"{spec.name}, and --overwrite-stage or assay.load(stage={spec.name!r}) could "
                "not tell them apart. Rename one of the functions."
            )

    def _say_plan_split(self, spec: StageSpec, record: Record) -> None:
        """Once: ``run()`` calls a stage after it read a result, so the stages called
        before the read and those called after it do not run alongside each other."""
        parallel = self.claim_workers is not None or not self.executor.inline
        log.log(
            logging.WARNING if parallel else logging.INFO,
            "run() read %s while the run was being planned, then called stage %r for %r: "
            "stages called after such a read do not run alongside those called before it. "
            "Reading results after every stage call, or in an aggregate stage, lets assay "
            "plan the whole run at once.",
            self._first_read,
            spec.name,
            record.name,
        )
        self._first_read = None

    def _look_again(self, record: Record) -> None:
        """In a notebook, before each stage call: code and parameters may have changed
        since the last cell (a helper redefined, a constant set, a field assigned), so
        fingerprints and hashes are taken afresh rather than remembered."""
        self._code.clear()
        self._attribute_code.clear()
        self._fingerprinter = None
        params = record.params
        if params is not None and not record.is_aggregate:
            self.manager._hashes.pop(id(params), None)
            record._hash = self.manager.params_hash(params)
            record._fields = None

    def _cachers(self, spec: StageSpec, record: Record) -> list:
        declared = spec.cachers
        if declared is None:
            declared = [PickleCacher if self.manager.lazy else None] * len(spec.outputs)
        cachers = []
        for entry, name in zip(declared, spec.output_names):
            if entry is None:
                cachers.append(None)
                continue
            cacher = entry() if isinstance(entry, type) else copy.deepcopy(entry)
            if not spec.is_aggregate or (cacher.name is None and cacher.path_override is None):
                cacher.name = name
            cacher.record = record
            cacher.stage = spec.name
            cacher.check_path_override()
            cachers.append(cacher)
        subdirs: dict[str, str] = {}
        for cacher in cachers:
            if cacher is not None and cacher.subdir:
                other = subdirs.setdefault(cacher.subdir, cacher.name)
                if other != cacher.name:
                    raise StageError(
                        f"Outputs {other!r} and {cacher.name!r} of stage {spec.name!r} both "
                        f"use subdir={cacher.subdir!r}: each output's sub-folder is written "
                        "whole, so one would replace the other's files. Give each its own "
                        "subdir."
                    )
        return cachers

    def code_of(self, spec: StageSpec) -> tuple[str, dict]:
        """The fingerprint of a stage's code and what it uses, once per run; with the
        code of the stage's own cacher classes (a cacher's ``save`` decides what is kept)."""
        found = self._code.get(spec.func)
        if found is not None:
            return found
        cachers = _own_cacher_classes(spec)
        if spec.version is not None:
            part = {"kind": "version", "digest": hash_value(("version", spec.version))}
            part["value"] = f"version {spec.version}"
            found = (part["digest"], {f"{spec.name} (pinned)": part})
            if cachers:
                from assay.codeprint import digest_of

                parts = {**found[1], **self._fingerprints().fingerprint(*cachers)[1]}
                found = (digest_of(parts), parts)
        else:
            found = self._fingerprints().fingerprint(spec.func, *cachers)
        self._code[spec.func] = found
        return found

    def attribute_code(self, cls: type, name: str) -> str:
        """The digest of a parameter class's method, property or constant ``name`` (and of
        what it uses), once per run: a stage that calls it is keyed on it."""
        found = self._attribute_code.get((cls, name))
        if found is None:
            value = code_of_attribute(code_attributes(cls)[name])
            found = self._fingerprints().fingerprint_value(f"{cls.__qualname__}.{name}", value)
            self._attribute_code[(cls, name)] = found
        return found

    def held_code(self, value_hash: str | None, code: list) -> str:
        """A field's hash with the digest of the functions and classes it holds, and of
        what they call (see :func:`assay.tracking.held_code`)."""
        prints = self._fingerprints()
        return hash_value((value_hash, [prints.fingerprint_value("", c) for c in code]))

    def _fingerprints(self) -> Any:
        if self._fingerprinter is None:
            from assay.codeprint import Fingerprinter

            self._fingerprinter = Fingerprinter(self.manager.config.root)
        return self._fingerprinter

    def resolve(self, node: StageNode, defer: bool = False) -> bool:
        """Find ``node``'s key and whether its outputs are cached; True on a full hit.

        A node whose key covers only the fields it reads tries each read set
        recorded for its base (newest first); the first whose outputs are all
        cached wins. Without a hit, one of them gives a predicted key (for
        downstream look-ups, see :meth:`_likeliest`); it is replaced by the real
        one once the stage has run.

        With ``defer``, a node whose key does not depend on what is cached
        (one read set to try) is only keyed now; :meth:`decide` looks up every
        such node at once, which a cache at a URL answers in one batch.
        """
        node.base = base = self.plan.base_of(node)
        node.key = None
        node.stale = False
        for artifact in node.outputs:
            artifact.cached, artifact.meta = False, None
        if base is None:
            return False
        if not node.tracks_reads:
            reads = ALL if node.record.params is not None and not node.spec.is_aggregate else ""
            node.key, node.reads = read_key(base, _fields(node, reads)), reads
            if defer:
                self._deferred.append(node)
                return False
            return self._look_up(node)
        cache = self.manager.cache
        candidates = cache.known_reads(node.spec.name, base)
        if not candidates:  # new code or inputs: a guess
            guess = self._reads_last_time(node)
            candidates = [guess] if guess is not None else []
        if defer and len(candidates) == 1:
            node.key, node.reads = (
                read_key(base, _fields(node, candidates[0])),
                candidates[0],
            )
            self._deferred.append(node)
            return False
        tried = []
        for reads in candidates:
            node.key, node.reads = read_key(base, _fields(node, reads)), reads
            if self._look_up(node):
                return True
            if self._partly_cached(node):  # an output it does not cache is all it lacks
                return False
            tried.append((node.key, reads))
        if tried:
            node.key, node.reads = self._likeliest(node, tried)
            for artifact in node.outputs:
                artifact.cached, artifact.meta = False, None
        return False

    def _reads_last_time(self, node: StageNode) -> frozenset | str | None:
        """What ``node`` most likely reads, its code or inputs new: what its stage read
        last time for this parameter set (in the entry its ``by-name`` link points to)
        if the stage reads different fields for different sets, else what it read last.

        One stage run's fields taken for all made stage runs that read different
        fields look alike: ``train`` of three sets that differ in ``C`` only, keyed on
        the fields a random-forest set had it read, were planned as one stage run
        (``assay why`` said "shared", ``--dry`` counted them once).
        """
        cache, stage = self.manager.cache, node.spec.name
        latest = cache.latest_reads(stage)
        if latest is None or cache.remote or not cache.reads_vary(stage):
            return latest  # at a URL, the sidecar would cost a request per stage run
        output = next((a.name for a in node.outputs if a.cacher is not None), None)
        linked = cache.linked_key(self.manager.prefix, link_label(node), stage)
        if output is None or linked is None:
            return latest
        try:
            meta = cache.read_meta(linked, output)
        except OSError:
            return latest
        reads = ((meta or {}).get("ingredients") or {}).get("reads")
        if isinstance(reads, dict):
            return frozenset(reads)
        return reads if reads in (ALL, "") else latest

    def _likeliest(self, node: StageNode, tried: list[tuple[str, Any]]) -> tuple[str, Any]:
        """Of the ``(key, reads)`` tried for ``node``, none cached, the one the stages after
        it are looked up with: the one whose entry is there but lost a file (deleted by
        hand), else the one its ``by-name`` link points to (an entry a run threw away
        since), else the newest. Those fields are what it reads: if the stages after it
        are cached under it, it need not execute."""
        if len(tried) > 1:
            for key, reads in tried:
                if any((key, a.name) in self.damaged for a in node.outputs):
                    return key, reads
            manager = self.manager
            if not manager.cache.remote:  # a request each there; and files are not checked
                prefix, label = manager.prefix, link_label(node)
                linked = manager.cache.linked_key(prefix, label, node.spec.name)
                for key, reads in tried:
                    if key == linked:
                        return key, reads
        return tried[0]

    def key_on_all(self, node: StageNode) -> None:
        """Key a running stage on its whole parameter set (it asked for its folder)."""
        if node.base is None:
            node.base = self.plan.base_of(node)
        node.tracks_reads = False
        node.reads = ALL if node.record.params is not None and not node.spec.is_aggregate else ""
        node.key = read_key(node.base, _fields(node, node.reads))

    @staticmethod
    def _partly_cached(node: StageNode) -> bool:
        """Whether ``node`` has outputs without a cacher, and every other output cached."""
        return (
            not node.cacheable
            and any(a.cacher is not None for a in node.outputs)
            and all(a.cached for a in node.outputs if a.cacher is not None)
        )

    def _look_up(self, node: StageNode) -> bool:
        """Look ``node``'s outputs up under its key; True if all are cached.

        A stage with an output it does not cache (no cacher) is never a hit, but its
        other outputs are looked up too: a stage that needs only those loads them, and
        the stage runs only when something needs what it does not cache.
        """
        if node.volatile:
            return False
        cache = self.manager.cache
        for artifact in node.outputs:
            cacher = artifact.cacher
            if cacher is None:
                continue
            try:
                meta = cache.entry(node.key, artifact.name, cacher)
            except CorruptArtifactError as exc:
                if (node.key, artifact.name) not in self.damaged:
                    shared = (  # the entry was made for another set with the same key
                        f" Parameter set {node.record_label!r} shares it."
                        if f"(parameter set {node.record_label!r})" not in str(exc)
                        and node.record.params is not None
                        else ""
                    )
                    log.warning(
                        "%s%s It is not reused: the run computes it again if needed.", exc, shared
                    )
                    self.damaged[node.key, artifact.name] = str(exc)
                    if not (self.manager.dry or self.manager.dry_cache):
                        cache.discard(node.key, artifact.name)  # what is left of it
                meta = None
            artifact.cached, artifact.meta = meta is not None, meta
            if artifact.cached and type(cacher).check is not _BASE_CHECK:
                cache.localize(node.key, artifact.name)
                cacher._dir = cache.stage_dir(node.key)
                artifact.cached = _checked(cacher, meta)
            if not artifact.cached:
                artifact.meta = None
                return False
        return node.cacheable

    # -- 2. decide --------------------------------------------------------------------

    def decide(self, nodes: list[StageNode]) -> None:
        """Mark each planned node ``run``, ``cached`` or ``unneeded`` (see module docs)."""
        manager = self.manager
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            manager.cache.prefetch(
                [(n.key, a.name) for n in deferred for a in n.outputs if a.cacher is not None]
            )
            for node in deferred:
                self._look_up(node)
            manager.cache.forget_missing()  # from now on, siblings may write them
        overwrite_stages = manager.overwrite_stages
        first_with_key: dict[str, StageNode] = {}
        for node in nodes:
            # Stage runs that will have the same key: only the first computes it.
            node.shared_with = None
            if node.key is None or not node.outputs or all(a.cached for a in node.outputs):
                continue
            if self.waits_for_state(node):  # its key is known once that one has run
                continue
            earlier = first_with_key.setdefault(node.key, node)
            if earlier is not node:
                node.shared_with = earlier
        # What uses an output of a stage that --overwrite-stage or overwrite=True recomputes
        # is recomputed too: its key (made of the upstream keys) does not change, its input may.
        redone = self._redone  # kept between calls: a later call's stage runs use earlier ones
        for node in nodes:
            if node.spec.name in overwrite_stages:
                redone[id(node)] = f"it uses what --overwrite-stage {node.spec.name} recomputes"
                continue
            cause = next(filter(None, map(self._recomputed, node.deps)), None)
            if cause is not None:
                redone[id(node)] = cause
        if any(n.spec.sets_state for n in nodes):
            self._restore_before_deciding(nodes, redone)
        for node in reversed(nodes):
            params = node.record.params
            node.forced = self._forced(node, redone)
            if not node.outputs:
                node.status, node.reason = "run", "has no outputs"
            elif manager.overwrite:
                node.status, node.reason = "run", "--overwrite"
            elif node.spec.name in overwrite_stages:
                node.status, node.reason = "run", f"--overwrite-stage {node.spec.name}"
            elif params is not None and params.overwrite:
                node.status, node.reason = (
                    "run",
                    f"parameter set {params.name!r} has overwrite=True",
                )
            elif id(node) in redone:
                node.status, node.reason = "run", redone[id(node)]
            elif not node.spec.deterministic:
                node.status, node.reason = "run", "the stage is marked non-deterministic"
            elif node.volatile:
                node.status, node.reason = "run", "an input cannot be hashed: " + node.volatile[0]
            elif setter := self.waits_for_state(node):
                node.status = "run"
                node.reason = (
                    f"it takes what {setter.spec.name} [{setter.record_label}] puts in "
                    "record.state by hand: looked up in the cache once that has run"
                )
            elif all(a.cached for a in node.outputs):
                node.status, node.reason = "cached", ""
            elif (
                not node.consumers
                or self._needed(node)
                or (node.spec.sets_state and any(f.status == "run" for f in node.followers))
            ):
                missing = [a.name for a in node.outputs if not a.cached]
                uncached = [a.name for a in node.outputs if a.cacher is None]
                node.status = "run"
                node.reason = (
                    f"output(s) {uncached} have no cacher"
                    if uncached
                    else f"no cached {', '.join(missing)}"
                )
            else:
                node.status, node.reason = "unneeded", "nothing that executes needs its outputs"
        if log.isEnabledFor(logging.DEBUG):  # --verbose: every stage run, not only those run
            for node in nodes:
                if node.status == "cached":
                    log.debug("%s [%s] reused from the cache", node.spec.name, node.record_label)
                elif node.status == "unneeded":
                    log.debug("%s [%s] not needed: %s", node.spec.name, node.record_label,
                              node.reason)  # fmt: skip

    def shared_earlier(self, node: StageNode) -> StageNode | None:
        """The earlier stage run of this run whose outputs ``node``, planned to execute,
        takes instead (the same key: only the first computes it), or ``None``."""
        if node.forced or not node.outputs or node.volatile or self.waits_for_state(node):
            return None
        return node.shared_with

    def _recomputed(self, dep: StageNode) -> str | None:
        """Why the stages using ``dep``'s outputs execute although they are cached: what
        recomputes ``dep`` whatever the cache holds; ``None`` if nothing does."""
        found = self._redone.get(id(dep))
        params = dep.record.params
        if found is None and params is not None and params.overwrite:
            found = (
                f"it uses what {dep.spec.name} [{dep.record_label}] recomputes (parameter "
                f"set {params.name!r} has overwrite=True)"
            )
        return found

    def _forced(self, node: StageNode, redone: dict[int, str]) -> bool:
        """Whether ``node`` executes whatever the cache holds (--overwrite and the like)."""
        params = node.record.params
        return bool(
            self.manager.overwrite
            or id(node) in redone
            or (params is not None and params.overwrite)
            or not node.spec.deterministic
        )

    def _restore_before_deciding(self, nodes: list[StageNode], redone: dict[int, str]) -> None:
        """Give records now what stages whose outputs are cached (all of them, or all they
        cache) put in ``record.state`` by hand when they ran, and key the stages after them
        again (plan order: a chain of such stages settles in one pass). Those stages then
        need not wait for them: a --dry plan and ``assay why`` say what the run does."""
        for node in nodes:
            if node.stale:
                key = node.key
                self.resolve(node)
                for consumer in node.consumers if node.key != key else ():
                    consumer.stale = True
            if (
                node.spec.sets_state
                and node.key is not None
                and not node.volatile
                and any(a.cacher is not None for a in node.outputs)
                and all(a.cached for a in node.outputs if a.cacher is not None)
                and not self._forced(node, redone)
                and self.waits_for_state(node) is None
            ):
                self._restore(node)

    def waits_for_state(self, node: StageNode) -> StageNode | None:
        """The stage before ``node`` that puts in ``record.state`` by hand what ``node``'s
        key covers (an input it takes from there, an entry it read last time), while that
        stage has yet to run (or give back what it put there when it ran); ``None`` if
        there is none."""
        if not node.after:
            return None
        reads = node.reads if isinstance(node.reads, frozenset) else ()
        if not node.state_inputs and not any(r.startswith(STATE_READ) for r in reads):
            return None
        restored = self._restored
        return next(
            (
                b
                for b in node.after
                if b.status not in ("executed", "cached") and (id(b), b.key) not in restored
            ),
            None,
        )

    @staticmethod
    def _needed(node: StageNode) -> bool:
        """Whether a consumer that will run needs an output of ``node`` that is not cached."""
        uncached = {id(a) for a in node.outputs if not a.cached}
        for consumer in node.consumers:
            if consumer.status != "run":
                continue
            for value in consumer.inputs.values():
                values = value.values() if isinstance(value, dict) else (value,)
                if any(id(v) in uncached for v in values):
                    return True
        return False

    # -- 3. execute -------------------------------------------------------------------

    def execute(self, nodes: list[StageNode]) -> None:
        """Run every node marked ``run``, each once its dependencies have run.

        Ready nodes are submitted one at a time, and finished ones collected
        after each submission; a node made ready by a finished one goes to the
        front of the queue, so a serial run finishes one record's chain before
        it starts the next (depth first: fewer values held in memory).
        """
        try:
            with self.manager.cache.reads_batched():
                self._execute(nodes)
        finally:
            self._worker_output.remove()

    def do_while_waiting(self) -> None:
        """Do :attr:`while_waiting`'s work now, if it is not done yet."""
        work, self.while_waiting = self.while_waiting, []
        for call in work:
            call()

    def _execute(self, nodes: list[StageNode]) -> None:
        if not self.manager.dry_cache:
            self._link_cached(nodes)
        self.restore_hand_set(nodes)
        pending = [n for n in nodes if n.status == "run"]
        if self.executor.inline:
            self.do_while_waiting()
            # Plan order is a topological order: the experiment called stages in it.
            for node in pending:
                self._execute_node(node)
            return
        waiting_on = {}
        ready: deque[StageNode] = deque()
        for node in pending:
            count = sum(1 for d in (*node.deps, *node.after) if d.status == "run")
            waiting_on[id(node)] = count
            if count == 0:
                ready.append(node)
        finished: SimpleQueue = SimpleQueue()
        in_flight = 0
        running: dict[str, list[StageNode]] = {}  # key in flight -> stage runs waiting for it
        remote = self.executor.remote
        if remote and pending:
            from assay.remote import check_sendable, check_shared_cache

            check_shared_cache(self.manager.cache)
            check_sendable(pending, forked=getattr(self.executor, "start_method", "") == "fork")
        slots = Slots(self.executor, self.observer)
        try:
            while ready or in_flight:
                if ready:
                    node = ready.popleft()
                    if node.key in running:  # same key as one in flight: reuse it when done
                        running[node.key].append(node)
                        continue
                    future = (
                        self._submit(node, slots)
                        if remote
                        else self.executor.submit(self._execute_node, node)
                    )
                    future.node, future.key = node, node.key
                    if node.key is not None:
                        running[node.key] = []
                    future.add_done_callback(finished.put)
                    in_flight += 1
                    if finished.empty() and ready:
                        continue
                while in_flight:
                    try:
                        future = self._next_finished(finished, not ready, slots)
                    except Empty:
                        break
                    in_flight -= 1
                    node = future.node
                    same_key = running.pop(future.key, [])
                    if remote:
                        slots.back(node)
                        try:
                            collected = self._collect(node, future, slots)
                        finally:  # a failure too frees a worker, which takes the next
                            slots.refill()
                        if not collected:
                            ready.appendleft(node)  # an input was corrupt: run it again
                            ready.extend(same_key)
                            continue
                    else:
                        future.result()  # re-raises a stage's failure
                    newly_ready = list(same_key)
                    for consumer in (*node.consumers, *node.followers):
                        count = waiting_on.get(id(consumer))
                        if count is not None:
                            waiting_on[id(consumer)] = count - 1
                            if count == 1:
                                newly_ready.append(consumer)
                    ready.extendleft(reversed(newly_ready))
                    # Go on collecting what else has finished (without waiting, now that
                    # something is ready), so that submissions go out together.
        except BaseException:
            if remote and in_flight:
                self._stop_workers()
                for sent in [n for n in self.plan.nodes if n.status == "running"]:
                    self._replay_left(sent)
            raise

    def _stop_workers(self) -> None:
        """Stop the workers at once (the run stops), and clear what they were saving."""
        self.executor.abort()
        stopped = getattr(self.executor, "stopped", ())
        if stopped and self.manager.cache is not None:
            self.manager.cache.clear_after(stopped)

    def _replay_left(self, node: StageNode) -> worker_output.Written | None:
        """Log and print what ``node`` printed and logged on a worker that never sent it
        back (it died, or the run stopped it), as far as it got; what it wrote, if the
        worker kept it (see :mod:`assay.worker_output`)."""
        from assay import remote

        written = self._worker_output.left(node)
        if written is not None:
            remote.replay_events(written.events)
        return written

    def _next_finished(self, finished: SimpleQueue, block: bool, slots: Slots) -> Future:
        """The next finished future; with ``block``, wait for one.

        The first wait is :attr:`while_waiting`'s moment. It waits a little first: the
        executor's threads hand out the stage runs just submitted, and work of this
        process would keep them from the interpreter (it holds the GIL for up to
        ``sys.getswitchinterval()``, 5 ms, at each turn). While stage runs wait for a
        worker, it looks every :data:`SLOTS_RECHECK_S` whether workers joined.
        """
        if block and self.while_waiting:
            try:
                return finished.get(timeout=HAND_OUT_S)
            except Empty:
                self.do_while_waiting()
        while block and slots.waiting:
            try:
                return finished.get(timeout=SLOTS_RECHECK_S)
            except Empty:
                slots.refill()
        return finished.get(block=block)

    # -- remote execution -------------------------------------------------------------

    def _submit(self, node: StageNode, slots: Slots) -> Any:
        """Send one stage run to a worker process (see :mod:`assay.remote`)."""
        import pickle

        from assay import remote
        from assay.worker_code import assay_identity

        # Upstream keys are final now; a sibling may even have made this run's outputs.
        node.record._inherit_late()  # a copy: what its original put in by hand since
        hit = self.resolve(node)
        if hit and not node.volatile and (not node.forced or node.key in self.computed):
            self._reuse(node)
            done: Future = Future()
            done.set_result(None)
            return done
        self.share_claims()  # the workers' files written by path_override, claimed in the cache
        task = remote.make_task(node, self.manager)
        if self.executor.same_machine:
            task.output_file = self._worker_output.path_for(node)
        try:
            payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            remote.check_picklable(task)
            raise
        node.status = "running"
        try:
            future = self.executor.submit(
                remote.run_task,
                "" if self.executor.own_workers else assay_identity(),
                payload,
                *remote.task_module(task, *self._worker_setting()),
            )
        except AssayError:  # the executor's own words (the Dask scheduler is gone)
            node.status = "failed"
            raise
        except RuntimeError as exc:  # BrokenProcessPool & co: a worker died earlier
            node.status = "failed"
            kept = (
                "--dry-cache wrote nothing to the cache: run the same command again"
                if self.manager.dry_cache
                else "Stages that finished are cached: run the same command again to continue"
            )
            raise WorkerLost(
                f"A worker process stopped before stage {node.spec.name!r} for parameter set "
                f"{node.record_label!r} could start ({type(exc).__name__}: {exc}); it may have "
                f"been killed or run out of memory. {kept}."
            ) from exc
        slots.sent(node)  # once sent: the first submission waits for a Dask cluster to start
        return future

    def _worker_setting(self) -> tuple[dict[str, str], str]:
        """Once per run: the project's imported source files and their digests, with those
        of the code outside it that the stages' keys follow by source (a worker holding
        other versions imported reads them again, :mod:`assay.worker_code`), and the
        folder the stages run in (this one, as in a serial run)."""
        if self._setting is None:
            from assay.worker_code import project_sources

            outside = self._fingerprinter.outside_files if self._fingerprinter else ()
            root = str(self.manager.config.root)
            self._setting = (project_sources(root, outside), os.getcwd())
        return self._setting

    def _collect(self, node: StageNode, future: Any, slots: Slots) -> bool:
        """Apply a worker's result to ``node``; False if it must be submitted again
        (``slots``: the stage runs on workers, to name if a worker was lost)."""
        import pickle

        from assay import remote

        try:
            outcome = future.result()
            if outcome is None:  # found cached when it was about to be submitted
                return True
            result = pickle.loads(outcome)
            written = self._worker_output.left(node, read_it=result.forked_output)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            node.status = "failed"
            if isinstance(exc, AssayError):
                raise  # the worker says what is wrong (for instance: it runs other code)
            if not remote.is_worker_loss(exc):
                raise AssayError(
                    f"Stage {node.spec.name!r} for parameter set {node.record_label!r} could not "
                    f"run in a worker ({type(exc).__name__}: {exc}). Workers must see the project "
                    "folder and the cache at the same paths and use the same Python environment; "
                    "`assay --debug run ...` shows the traceback."
                ) from exc
            raise WorkerLost(
                f"A worker process stopped while {self._lost_with(node, exc, slots)} "
                f"({type(exc).__name__}: {exc}). It may have been killed or run out of "
                "memory. Stages that finished are cached: run the same command again to "
                "continue."
                + (
                    ""
                    if any(n.status == "executed" for n in self.plan.nodes)
                    else main_guard_advice()
                )
            ) from exc
        # What the stage logged and printed there, as it did (and the processes it forked).
        remote.replay_events(written.events if written and written.complete else result.events)
        error = result.error
        if error and error.get("corrupt"):
            self._repair_inputs(node)
            node.status = "run"
            return False
        node.started, node.duration = result.started, result.duration  # on the worker
        if result.key != node.key:
            for consumer in node.consumers:
                consumer.stale = True
        node.key, node.reads = result.key or node.key, result.reads
        if result.status == "cached":
            for artifact in node.outputs:  # the worker found them in the shared cache
                artifact.cached = artifact.cacher is not None
            self._reuse(node)
            return True
        if error:
            node.status = "failed"
            node.error = error.get("summary") or error.get("message")
            self._take_reportables(node, result)  # reported before it failed: kept, as serially
            self.observer.stage_finished(node)
            if error.get("signature"):
                raise OutputSignatureError(error["message"])
            original = remote.RemoteStageError(
                error["kind"], error["message"], error["traceback"], error.get("frames", ())
            )
            raise StageFailed.of(
                error["summary"] + _daemon_advice(error),
                stage=node.spec.name,
                record_name=node.record_label,
                original=original,
                original_type=remote.exception_type(error.get("type")),
                attributes_from=remote.sent_exception(error.get("exception")),
            ) from original
        for artifact in node.outputs:
            meta = result.metas.get(artifact.name)
            if meta is not None:
                artifact.meta, artifact.cached = meta, True
                self.manager.cache.remember(meta)
            elif artifact.name in result.values:  # not saved (--dry-cache): as in _execute_node
                artifact.value, artifact.cached = result.values[artifact.name], False
        if not self.manager.dry_cache and not node.volatile:
            self.computed.add(node.key)
            if result.metas:
                self.manager.cache.made_for_the_run(node.key)  # gc leaves it while the run goes on
        for name, value in result.state.items():  # put in the record's state by hand
            dict.__setitem__(node.record.state, name, value)
            node.record._set_by[name] = node.index
        self._take_reportables(node, result)
        node.status = "executed"
        _log_executed(node)
        self.observer.stage_finished(node)
        return True

    def _lost_with(self, node: StageNode, exc: BaseException, slots: Slots) -> str:
        """The stage run(s) a lost worker was running, for the message; the run's other
        workers are stopped first, and what each stage run sent printed and logged there
        is replayed as far as it got (:meth:`_replay_left`).

        A process pool fails every stage run in flight alike when one of its processes
        dies, so ``node``, the first collected, need not be the one: the lost one is the
        stage run whose worker neither finished it nor was stopped by the run (it alone
        is marked failed; the others were interrupted). Where that cannot be told (the
        workers run on other machines, or every one was stopped), every stage run that
        was running on a worker is named, ``node`` marked failed.
        """

        def named(n: StageNode) -> str:
            return f"stage {n.spec.name!r} for parameter set {n.record_label!r}"

        self._stop_workers()
        sent = [node, *(n for n in self.plan.nodes if n is not node and n.status == "running")]
        written = {id(n): self._replay_left(n) for n in sent}
        lost = [n for n in sent if written[id(n)] is not None and written[id(n)].lost]
        if lost:
            node.status = "running"
            for n in lost:
                n.status = "failed"
            if len(lost) == 1:
                return f"it ran {named(lost[0])}"
            return f"they ran these stage runs: {', '.join(named(n) for n in lost)}"
        from concurrent.futures.process import BrokenProcessPool

        running = []
        if isinstance(exc, BrokenProcessPool):
            running = [n for n in sent[1:] if id(n) in slots.running]
        if not running:
            return f"{named(node)} was running or waiting for it"
        listed = ", ".join(named(n) for n in [node, *running])
        return f"these stage runs were running or waiting for it: {listed}"

    def _take_reportables(self, node: StageNode, result: Any) -> None:
        """The reportables (metrics too) a stage run made in its worker."""
        import pickle

        if result.reportables:
            node.reportables = pickle.loads(result.reportables)
            for reportable in node.reportables:
                reportable.record = node.record
            node.record.reportables.extend(node.reportables)
            self.manager.reportables.extend(node.reportables)

    def _repair_inputs(self, node: StageNode) -> None:
        """A worker found a corrupt input: recompute the producers of bad entries here."""
        cache = self.manager.cache
        for dep in node.deps:
            for artifact in dep.outputs:
                meta = cache.read_meta(dep.key, artifact.name) if artifact.cached else None
                if meta is None:
                    continue
                try:
                    cache.verify(meta)
                except CorruptArtifactError as exc:
                    log.warning("%s Recomputing it.", exc)
                    cache.discard(dep.key, artifact.name)
                    artifact.cached = False
                    dep.status = "planned"
                    self._execute_node(dep)

    def _link_cached(self, nodes: list[StageNode]) -> None:
        """File reused stage runs under this experiment's name too (``by-name/``)."""
        prefix = self.manager.prefix
        self._place_reused(nodes)
        self.manager.cache.link_many(
            (prefix, link_label(node), node.spec.name, node.key)
            for node in nodes
            if node.status == "cached"
        )

    def _execute_node(self, node: StageNode) -> None:
        """Execute one stage run in this process: inputs, call, outputs, cache."""
        if node.status in ("executed", "failed", "running", "cached"):
            return
        try:
            self._execute_here(node)
        finally:
            if cache_writing.keeping_fresh():  # it wrote into its cache folder itself
                self.manager.cache.done_writing(node.key)  # linked, or failed

    def _execute_here(self, node: StageNode) -> None:
        manager, spec, record = self.manager, node.spec, node.record
        if record._origin is not None and record._inherit_late():
            node.stale = True  # a copy: what its original put in by hand since, keyed too
        # Upstream keys are final now; a sibling may even have made this run's outputs.
        if node.key is None or node.stale:
            keyed = node.key
            hit = self.resolve(node)
            if node.key != keyed:  # the stages after it were keyed on the one it had
                for consumer in node.consumers:
                    consumer.stale = True
        else:
            hit = node.cacheable and self._look_up(node)
        if hit and not node.volatile and (not node.forced or node.key in self.computed):
            self._reuse(node)
            return
        planned_key = node.key
        outer, self.handed = self.handed, {}
        try:
            inputs = self._resolve_inputs(node)
        except BaseException:
            self.handed = outer
            raise
        node.status = "running"
        cache = manager.cache
        for artifact in node.outputs:
            if getattr(artifact.cacher, "writes_in_place", False) and not manager.dry_cache:
                cache.prepare_in_place(node.key)
        previous = (
            manager.current_stage_name,
            record._node,
            record.stage_cachers,
            record.params,
            record._state_reads,
        )
        reads = None
        if node.tracks_reads:
            record.field_hashes()  # before it runs: the values it is keyed on (see below)
            record.params, reads = tracking_copy(record.params)
            record._state_reads = reads  # undeclared record.state reads are keyed too
        elif record.params is not None:  # keyed on every field: still none may change
            record.params = tracking_copy(record.params)[0]
        tracked = record.params if reads is not None else None
        manager.current_stage_name = spec.name
        record._node = node
        record.stage_cachers = [a.cacher for a in node.outputs]
        before = dict(dict.items(record.state)) if spec.sets_state and node.outputs else None
        self.observer.stage_started(node)
        node.started = time.time()
        start = time.perf_counter()
        try:
            if spec.is_aggregate:
                with _read_only_params(node.records):
                    returned = spec.func(record, node.records, **inputs)
            else:
                returned = spec.func(record, *node.args, **inputs)
        except BaseException as exc:
            node.duration = time.perf_counter() - start
            node.status = "failed"
            self.observer.stage_finished(node)
            if not isinstance(exc, (Exception, SystemExit)):  # Ctrl-C stops the run
                raise
            stop = stop_behind(exc)
            if stop is not None:  # a Ctrl-C or SIGTERM that Python wrapped
                raise stop from exc
            # A stage that calls sys.exit() fails like one that raises: the run records
            # it, with the stage and parameter set, and the other stages keep their results.
            what = (
                f"it called sys.exit({exc.code!r})"
                if isinstance(exc, SystemExit)
                else f"{type(exc).__name__}: {exc}"
            )
            node.error = (
                f"Stage {spec.name!r} failed for parameter set {node.record_label!r}: {what}"
            )
            raise StageFailed.of(
                node.error,
                stage=spec.name,
                record_name=node.record_label,
                original=exc,
            ) from exc
        finally:
            (
                manager.current_stage_name,
                record._node,
                record.stage_cachers,
                record.params,
                record._state_reads,
            ) = previous
            self._load_afresh(record, self.handed)
            self.handed = outer
        node.duration = time.perf_counter() - start
        if tracked is not None and sys.getrefcount(tracked) > _UNSHARED:
            # It handed its parameter set on (`return Model(record.params)`): what reads it
            # later reads it for this stage's results, wholesale.
            reads.add(EVERY_FIELD)
        del tracked
        if reads:
            changed = _changed_in_place(record, reads)
            if changed:
                node.status = "failed"
                self.observer.stage_finished(node)
                raise StageError(
                    f"Stage {spec.name!r} changed record.params.{changed} in place (parameter "
                    f"set {node.record_label!r}): a parameter set cannot change while stages "
                    "run. The stage was keyed on the value before, the stages after it would "
                    "see the new one (and, in worker processes, would not). Work on a copy "
                    f"(`copy.deepcopy(record.params.{changed})`, `array.copy()`, "
                    "`frame.copy()`), or return the new value as an output."
                )
        try:  # raised as itself, as Curifactory does (`except OutputSignatureError`)
            values = spec.split_outputs(returned, node.record_label)
        except OutputSignatureError:
            node.status = "failed"
            self.observer.stage_finished(node)
            raise
        if before is not None:
            node.hand_set = {
                name: value
                for name, value in dict.items(record.state)
                if before.get(name, MISSING) is not value and type(value) is not Artifact
            }
        if reads is not None:
            if node.tracks_reads:
                node.reads = _marked(frozenset(reads))
                node.key = read_key(node.base, _fields(node, node.reads))
            # else the stage asked for its folder and was keyed on every field (ALL)
            if not node.volatile and not manager.dry_cache:
                cache.add_reads(spec.name, node.base, node.reads)
        if node.key != planned_key:
            for consumer in node.consumers:
                consumer.stale = True
        for follower in node.followers:  # what it put in record.state by hand is there now:
            follower.stale = True  # a stage reading it is keyed on it, so key it again
        for artifact, value in zip(node.outputs, values):
            artifact.value = value
        if not manager.dry_cache and not node.volatile:
            self._save_outputs(node)
            self.computed.add(node.key)
        else:  # an entry an earlier run left under this key holds another value than this
            for artifact in node.outputs:
                artifact.cached, artifact.meta = False, None
        if self.snapshot_wanted:
            self._keep_as_made(node)
        node.status = "executed"
        _log_executed(node)
        self.observer.stage_finished(node)

    def _load_afresh(self, record: Record, handed: dict[int, Artifact]) -> None:
        """Have the values a stage was given that a cache holds loaded again when next
        read (unless they cannot change: numbers, strings, tuples of them): a stage that
        changed its input in place (``x.append(...)``) changes it for no other stage, as
        on workers (each loads its own) or on a re-run."""
        for artifact in handed.values():
            if not artifact.cached or artifact.cacher is None:
                continue  # held in memory only (no cacher, --dry-cache): handed on as it is
            if artifact.value is not MISSING and not _immutable(artifact.value):
                artifact.spent = True
            own = record._copies.get(id(artifact), MISSING)  # a copy's own, loaded for it
            if own is not MISSING and not _immutable(own):
                del record._copies[id(artifact)]

    def _keep_as_made(self, node: StageNode) -> None:
        """Values that copies of their record will use and that no cache keeps: a deep copy
        now, before the original's later stages can change them in place."""
        from assay.record import _copied

        for artifact in node.outputs:
            if id(artifact) in self.snapshot_wanted and not artifact.cached:
                self.snapshots[id(artifact)] = _copied(artifact.value, copy)

    def _reuse(self, node: StageNode) -> None:
        """A stage run found cached at the last moment: skip it like a planned hit."""
        node.status, node.reason = "cached", ""
        if not self.manager.dry_cache:
            self._link_cached([node])
        self.restore_reportables([node])
        self.restore_hand_set([node])
        self.observer.stage_finished(node)

    def _resolve_inputs(self, node: StageNode) -> dict:
        inputs = {}
        for name, value in node.inputs.items():
            if isinstance(value, dict):  # an aggregate's: record -> its value
                inputs[name] = {r: _as_seen_by(r, v) for r, v in value.items()}
            else:
                inputs[name] = _as_seen_by(node.record, value)
        absent = []
        for name in node.state_inputs:  # put in record.state by hand by a stage before it
            try:
                inputs[name] = node.record.state[name]
            except (NotSentToWorker, StageFailed):  # a StageFailed may be a KeyError too
                raise
            except KeyError:
                if not node.spec.suppress_missing_inputs:
                    raise missing_state_input(node, name) from None
                absent.append(name)
        inputs.update(node.kwargs)
        # Suppressed, but with no default to take its place: refused as at the call.
        check_suppressed_inputs(
            node.spec, [n for n in absent if n not in inputs], node.record_label
        )
        return inputs

    def _check_placed(self, node: StageNode) -> None:
        """Refuse, before anything of it is saved, a stage run whose ``path_override``
        names a file that another stage run (another parameter set, stage or output, and
        another key) saved or reused in this session: it would replace that file, so the
        entry recording it could never be loaded, and each run would compute both again.

        The same output of the same stage and set saving its file again with a new key
        (its code changed between calls in a notebook) replaces it, as any entry is.
        """
        claims = []
        for artifact in node.outputs:
            cacher = artifact.cacher
            if cacher is None or cacher.path_override is None:
                continue
            path = os.path.abspath(cacher._resolve_override())
            claims.append((path, (node.key, artifact.name, node.spec.name, node.record_label)))
        self._place(claims)

    def _place(self, claims: list[tuple[str, tuple]], refuse: bool = True) -> None:
        """Note that the stage runs ``claims`` names (``(path, (key, output, stage,
        parameter set))``) write those files, or (``refuse``) raise :class:`StageError`
        for one that another stage run of the session wrote (in this process, or in any
        process of the run: see :attr:`claims_scope`)."""
        for path, mine in claims:
            other = self.placed.get(path)
            if other is None and self.claims_scope is not None:
                other = tuple(self.manager.cache.claim_file(self.claims_scope, path, list(mine)))
            if other is not None and other[0] != mine[0] and other[1:] != mine[1:]:
                if refuse:
                    raise StageError(_placed_twice(path, other, mine))
                continue  # entries cached before that record one file: one is damaged
            self.placed[path] = mine

    def _place_reused(self, nodes: list[StageNode]) -> None:
        """Note the files outside the cache that reused stage runs' entries record (a
        ``path_override``'s): a stage run that writes one of them after is refused."""
        claims = []
        for node in nodes:
            if node.status != "cached":
                continue
            for artifact in node.outputs:
                if getattr(artifact.cacher, "path_override", None) is None:
                    continue
                meta = artifact.meta or self.manager.cache.read_meta(node.key, artifact.name)
                for entry in (meta or {}).get("files", ()):
                    if os.path.isabs(entry["path"]):
                        owner = (node.key, artifact.name, node.spec.name, node.record_label)
                        claims.append((entry["path"], owner))
        self._place(claims, refuse=False)

    def share_claims(self, scope: str | None = None) -> None:
        """From now on, claim each file a ``path_override`` names in the cache too, under
        ``scope`` (a worker's: the main process's; else a new one, from the run's id):
        each process of the run refuses a file another claimed for another stage run, as
        a serial run does (see :meth:`_check_placed`). The claims are removed when the
        run ends (:meth:`drop_claims`), or when this runner is gone."""
        if self.manager.dry_cache or (self.claims_scope is not None and scope is None):
            return
        if scope is not None and scope == self.claims_scope:
            return
        if scope is None:  # unique: projects sharing a cache may have runs of one id
            import uuid
            import weakref

            scope = f"{self.manager.run_id or 'session'}-{uuid.uuid4().hex[:12]}"
            weakref.finalize(self, _drop_claims, self.manager.cache, scope, os.getpid())
        self.claims_scope = scope
        placed, self.placed = self.placed, {}
        self._place(list(placed.items()), refuse=False)

    def drop_claims(self) -> None:
        """Remove this run's claims of files (see :meth:`share_claims`): the run ended."""
        if self.claims_scope is not None:
            self.manager.cache.drop_claims(self.claims_scope)
            self.claims_scope = None

    def _save_outputs(self, node: StageNode) -> None:
        """Save what ``node`` made under its key, and file it under its name: one process
        at a time per key (see :meth:`CacheStore.saving`). If another process of the run
        saved the same stage run meanwhile, its entry is taken as this one's."""
        manager, cache = self.manager, self.manager.cache
        if all(artifact.cacher is None for artifact in node.outputs):
            if node.reportables:
                # No output is cached, but a later run that does not need to execute the
                # stage (its consumers are cached) still reports what it reported, as
                # Curifactory does.
                with cache.saving(node.key):
                    self._save_reportables(node, manager.provenance(node))
                    cache.link(manager.prefix, link_label(node), node.spec.name, node.key)  # gc
            return
        self._check_placed(node)
        base = manager.provenance(node)
        with cache.saving(node.key):
            found = self._saved_meanwhile(node)
            run_id = base.get("run_id")
            cached = [a for a in node.outputs if a.cacher is not None]
            if (
                run_id is not None
                and len(found) == len(cached)
                and all(meta.get("run_id") == run_id for meta in found.values())
            ):
                self._take_entry(node, found)
            else:
                self._save_entry(node, base, replace=bool(found))
            cache.flush_reads()  # a cached stage run is found by what it read
            cache.store_texts(node.code_parts)
            cache.link(manager.prefix, link_label(node), node.spec.name, node.key)

    def _saved_meanwhile(self, node: StageNode) -> dict[str, dict]:
        """The sidecars of ``node``'s outputs that are in the cache now, by output (up to
        the first that is not: usually the first is not, looked at with one system call).

        All of them, written by this run: another worker of the run made the same stage
        run, and saved it while this stage ran (a parameter set that differs from this
        one only in fields the stage does not read; the run learns that only once the
        stage has run).
        """
        outputs = [artifact.name for artifact in node.outputs if artifact.cacher is not None]
        return self.manager.cache.saved_now(node.key, outputs)

    def _take_entry(self, node: StageNode, metas: dict[str, dict]) -> None:
        """Take the entry another process of the run saved for the same stage run as
        ``node``'s outputs: the stages after it load them from there, so that every
        parameter set sharing the entry goes on from the same values."""
        log.debug(
            "%s [%s]: another worker saved this stage run first; its entry is used",
            node.spec.name,
            node.record_label,
        )
        for artifact in node.outputs:
            meta = metas.get(artifact.name)
            if meta is None:
                continue
            artifact.meta, artifact.cached, artifact.value = meta, True, MISSING
            artifact.cacher.metadata = CacherMetadata(meta)

    def _save_entry(self, node: StageNode, base: dict, replace: bool) -> None:
        """Save ``node``'s outputs (and what comes with them) under its key (``replace``:
        an entry is there, another run's)."""
        cache = self.manager.cache
        # How many reportables are cached beside (those that could be): a reuse need not
        # look for none.
        base["reportables"] = self._save_reportables(node, base) if node.reportables else 0
        for artifact in node.outputs:
            if artifact.cacher is None:
                continue
            meta = dict(base, duration_s=round(node.duration or 0.0, 6))
            try:
                artifact.meta = cache.save(
                    artifact.cacher,
                    artifact.value,
                    key=node.key,
                    output=artifact.name,
                    meta=meta,
                    replace=replace or artifact.cached or node.forced,
                )
            except CacheError as exc:
                if node.spec.cachers is not None or not self.manager.lazy:
                    raise
                raise CacheError(f"{exc} {_given_by_lazy(node, artifact.name)}") from exc
            artifact.cached = True
            # The stages after it (and run()) get the value as the cache holds it, loaded
            # when first read, as on a re-run or on a worker: a value a cacher does not
            # give back exactly (a tuple saved as JSON, a frame's memory layout) is the
            # same for them wherever and whenever this stage ran.
            artifact.value = MISSING
        if node.hand_set:
            self._save_hand_set(node, base)

    def _save_hand_set(self, node: StageNode, meta: dict) -> None:
        """Keep what a stage put in ``record.state`` by hand beside its outputs, so that
        when it is reused the stages after it find those values as after a run of it."""
        try:
            self.manager.cache.save(
                PickleCacher(name=HAND_SET), node.hand_set, key=node.key, output=HAND_SET, meta=meta
            )
        except CacheError as exc:
            log.warning(
                "Stage %r [%s] put values in record.state by hand (%s) that cannot be cached "
                "(%s): when this stage run is reused, the stages after it will not find them.",
                node.spec.name,
                node.record_label,
                ", ".join(map(repr, node.hand_set)),
                exc.__cause__ or exc,
            )

    def restore_hand_set(self, nodes: list[StageNode]) -> None:
        """Give the records of reused stage runs what those stages put in ``record.state``
        by hand when they ran (kept beside their outputs); the stages after them are marked
        to be keyed again, now that the values are there."""
        for node in nodes:
            if node.status == "cached" and node.spec.sets_state and node.key is not None:
                self._restore(node)

    def _restore(self, node: StageNode) -> None:
        """Put back in ``node``'s record what it put in ``record.state`` by hand when it
        ran (once per stage run and key)."""
        if (id(node), node.key) in self._restored:
            return
        self._restored.add((id(node), node.key))
        cache = self.manager.cache
        if not cache.has(node.key, HAND_SET):
            return
        try:
            values = cache.load(PickleCacher(name=HAND_SET), node.key, HAND_SET)
        except CacheError as exc:
            log.warning(
                "What stage %r put in record.state by hand was not restored: %s",
                node.spec.name,
                exc,
            )
            return
        record = node.record
        for name, value in values.items():
            dict.__setitem__(record.state, name, value)
            record._set_by[name] = node.index
        for follower in node.followers:
            follower.stale = True

    def _save_reportables(self, node: StageNode, meta: dict) -> int:
        """Keep a cached stage's reportables with its outputs, so a reuse reports them too
        (all but those that cannot be pickled, see :func:`picklable_reportables`); how
        many were kept."""
        records = [r.record for r in node.reportables]
        for reportable in node.reportables:
            reportable.record = None

        def save(kept: list) -> int:
            if kept:
                self.manager.cache.save(
                    PickleCacher(name=REPORTABLES),
                    kept,
                    key=node.key,
                    output=REPORTABLES,
                    meta=dict(meta, reportables=len(kept)),
                )
            return len(kept)

        try:
            try:
                return save(node.reportables)
            except CacheError:
                kept = picklable_reportables(node, "cached")
                if len(kept) == len(node.reportables) and all(
                    k is r for k, r in zip(kept, node.reportables)
                ):
                    raise  # not a reportable's fault
                return save(kept)
        except CacheError as exc:  # the disk, say: costs a warning too
            log.warning(
                "The reportables of stage %r (%s) could not be cached, so a later run that "
                "reuses this stage will not show them: %s",
                node.spec.name,
                node.record_label,
                exc,
            )
            return 0
        finally:
            for reportable, record in zip(node.reportables, records):
                reportable.record = record

    def _has_reportables(self, node: StageNode) -> bool:
        """Whether a reused stage run cached reportables.

        The outputs' sidecar, read when the run looked the stage run up, says so (a
        cache at a URL reads it now rather than ask whether the entry is there); a
        sidecar written by an older assay does not, and the entry is looked for.
        """
        cache = self.manager.cache
        for artifact in node.outputs:
            if artifact.cacher is None:
                continue
            meta = artifact.meta
            if meta is None and cache.remote:
                meta = cache.read_meta(node.key, artifact.name)
            if meta is not None and "reportables" in meta:
                return bool(meta["reportables"])
            break
        return cache.has(node.key, REPORTABLES)  # written by an older assay: look

    def restore_reportables(self, nodes: list[StageNode]) -> None:
        """Give reused stage runs their cached reportables (also those not executed because
        nothing needed their uncached outputs); keep the run's order."""
        manager, cache = self.manager, self.manager.cache
        touched = set()
        for node in nodes:
            if (
                node.status not in ("cached", "unneeded")
                or node.reportables
                or node.key is None
                or not self._has_reportables(node)
            ):
                continue
            cacher = PickleCacher(name=REPORTABLES)
            try:
                node.reportables = cache.load(cacher, node.key, REPORTABLES)
            except CacheError as exc:
                log.warning("Cached reportables of stage %r not restored: %s", node.spec.name, exc)
                continue
            for number, reportable in enumerate(node.reportables):
                node.record._take_reportable(reportable, node.spec.name, number)
            touched.add(id(node.record))
        if not touched and not self.executor.remote:
            return
        manager.reportables = _in_stage_order(manager.reportables, self.plan.nodes)
        for record in manager.records:
            if id(record) in touched or self.executor.remote:
                record.reportables = _in_stage_order(record.reportables, record._nodes)

    # -- values on demand -------------------------------------------------------------

    def value_of(self, artifact: Artifact, want_handle: bool = False) -> Any:
        """Load an artifact from the cache, or compute it; recompute a corrupt one.

        Read while ``run()`` is being planned (an experiment written for
        Curifactory may branch on, print or collect its stages' results there), it
        first has every stage run planned so far decided and executed, through
        the run's executor, then planning goes on.
        """
        if self.planning:
            return self._read_while_planning(artifact, want_handle)
        node = artifact.node
        for _attempt in range(3):
            if artifact.spent:  # a stage that ran was given it (run() planned it just now)
                artifact.value = MISSING
            if artifact.value is not MISSING and not (want_handle and artifact.cached):
                return artifact.value
            if artifact.cached and node.status != "running":
                try:
                    if want_handle:  # a copy here of what a URL cache holds, checked
                        self.manager.cache.localize(node.key, artifact.name)
                        artifact.cacher._dir = self.manager.cache.stage_dir(node.key)
                        return None
                    value = self.manager.cache.load(artifact.cacher, node.key, artifact.name)
                except CorruptArtifactError as exc:
                    if node.status == "external":  # produced elsewhere: the caller repairs it
                        raise
                    log.warning("%s Recomputing it.", exc)
                    self.manager.cache.discard(node.key, artifact.name)
                    artifact.cached = False
                    node.status = "planned"
                    continue
                artifact.meta = artifact.cacher.metadata
                # Made in this run: read back, not reused; spent: loaded before, and again.
                if node.status != "executed" and not artifact.spent:
                    self.loaded.append(artifact)
                artifact.spent = False
                if not artifact.lazy:
                    artifact.value = value
                return value
            if node.status == "running":
                break
            node.reason = node.reason or "its output was needed"
            self._execute_node(node)
            if artifact.value is MISSING and not artifact.cached:
                break
        raise RuntimeError(f"{artifact!r} could not be computed or loaded.")

    def unsettled(self) -> list[StageNode]:
        """The stage runs left to decide and execute once ``run()`` is planned: those
        planned after the last read during planning, and those that read found
        ``unneeded`` then (a stage planned since may need them), in plan order."""
        nodes = self.plan.nodes
        earlier = [n for n in nodes[: self._settled] if n.status in ("unneeded", "run")]
        return earlier + nodes[self._settled :]

    def _read_while_planning(self, artifact: Artifact, want_handle: bool) -> Any:
        if self._settled == 0:
            node = artifact.node
            self._first_read = f"{artifact.name!r} (output of stage {node.spec.name!r} for "
            self._first_read += f"{node.record_label!r})"
            log.info(
                "run() reads %s while the run is being planned: the stage runs called so far "
                "execute now, then planning goes on.",
                self._first_read,
            )
        self.planning = False
        try:
            self._run_planned_so_far()
            if self.manager.dry and not artifact.cached:
                raise plan_stops(artifact)
            return self.value_of(artifact, want_handle)
        finally:
            self.planning = True

    def _run_planned_so_far(self) -> None:
        """Decide and execute every stage run planned since the last such call."""
        import gc

        nodes = self.unsettled()
        self._settled = len(self.plan.nodes)
        self.decide(nodes)
        if self.manager.dry:
            return
        if self.claim_workers is not None and any(n.status == "run" for n in nodes):
            self.executor, self.claim_workers = self.claim_workers(self.executor), None
        self._setting = None  # the stages planned since may use more of the project's code
        paused = self.collect_while_executing and not gc.isenabled()
        if paused:
            gc.enable()
        try:
            self.execute(nodes)
        finally:
            if paused:
                gc.disable()


_BASE_CHECK: Callable = Cacheable.check
_ATOMS = frozenset({int, float, complex, bool, str, bytes, type(None), range})


def _log_executed(node: StageNode) -> None:
    """The ``--verbose`` line (and log file line) of a stage run that executed, in this
    process or on a worker (``--parallel``, ``--executor dask``) alike."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s [%s] executed in %.3fs (%s)",
            node.spec.name,
            node.record_label,
            node.duration,
            node.reason,
        )


def _as_seen_by(record: Record, value: Any) -> Any:
    """An input's value for a stage of ``record``: an artifact made on another record
    came through make_copy, so the copy's own (a copy and its original aggregated together
    get one each, as on workers)."""
    if type(value) is not Artifact:
        return value
    own = getattr(value.node, "record", None) is record
    return value.get() if own else record._own(value)


def _immutable(value: Any) -> bool:
    """Whether no stage can change ``value`` in place: a number, a string, ``None``, or a
    tuple or frozenset of such values."""
    kind = type(value)
    if kind in _ATOMS:
        return True
    return (kind is tuple or kind is frozenset) and all(_immutable(v) for v in value)


def _changed_in_place(record: Record, reads: set[str]) -> str | None:
    """A field the stage read whose list, dict or set it changed in place (``append``,
    ``update``): its hash is no longer the one the stage was keyed on; else ``None``."""
    hashes = record.field_hashes()
    for name in reads:
        value = getattr(record.params, name, None)
        if (
            _changeable(value)
            and name in hashes
            and name not in record._shown  # hashed as is, not through a representation
            and hash_value(value, dict_order=True) != hashes[name]
        ):
            return name
    return None


def _changeable(value: Any) -> bool:
    """Whether a stage can change ``value`` in place: a list, dict, set, bytearray, a
    numpy array (``a /= a.sum()``), a pandas frame or series (``inplace=True``), or a
    dataclass that is not frozen (``record.params.model.depth += 1``), or a tuple holding
    one (``params.layers[0].append(...)``)."""
    kind = type(value)
    if kind in (list, dict, set, bytearray):
        return True
    if kind is tuple:
        return any(_changeable(v) for v in value)
    module = kind.__module__.partition(".")[0]
    if module == "pandas":
        return hasattr(value, "iloc")  # a frame or series, not a timestamp
    if module == "numpy":  # an array that may be written to, not a numpy scalar
        return kind.__name__ == "ndarray" and bool(value.flags.writeable)
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and not params.frozen


def _called_inside(spec: StageSpec, running: str) -> StageError:
    """The refusal of stage ``spec`` called from inside stage ``running``.

    Curifactory runs such a call (with a warning that it is not advised), but ``running``'s
    cache key is fixed before it runs, so it could not cover what the inner stage makes (a
    change there would leave its old result reused); and in a worker process the inner
    stage's results would stay in that worker.
    """
    name = spec.name
    outputs = ", ".join(map(repr, spec.output_names))
    takes = (
        f"have {running!r} take what it needs as inputs (@assay.stage(inputs=[{outputs}], "
        f"...) and a parameter of that name), and call `{running}({name}(record))`"
        if spec.output_names
        else f"call `{name}(record)` and then `{running}(record)`"
    )
    return StageError(
        f"Stage {name!r} was called inside stage {running!r}. A stage cannot call another: "
        f"the cache key of {running!r} is fixed before it runs, so it could not cover what "
        f"{name!r} makes, and under --parallel or --executor dask the results of {name!r} "
        f"would stay in the worker. Call both from the experiment's run() instead: {takes}. (To "
        f"share code rather than results, move it to a plain function that both call.)"
    )


@contextlib.contextmanager
def _read_only_params(records: list) -> Any:
    """While an aggregate runs, its input records' parameter sets refuse changes, as a
    stage's own does (:func:`assay.tracking.tracking_copy`): a change would be lost to
    the stages after it in other processes, and to their cache keys."""
    kept = [(r, r.params) for r in records if r.params is not None]
    try:
        for other, params in kept:
            other.params = tracking_copy(params)[0]
        yield
    finally:
        for other, params in kept:
            other.params = params


DAEMONIC = "daemonic processes are not allowed to have children"
"""Python's words when a daemon process (a Dask worker, by default) starts a process."""


def _daemon_advice(error: dict) -> str:
    """What to do when a stage's process pool failed because its Dask worker is a daemon
    (empty for any other failure): the code is fine, the worker's setting is not."""
    if error.get("kind") != "AssertionError" or DAEMONIC not in error.get("message", ""):
        return ""
    return (
        ". The stage starts processes (multiprocessing, concurrent.futures), which Dask's "
        "workers may not do unless started with DASK_DISTRIBUTED__WORKER__DAEMON=False in "
        "their environment (see docs/scaling.md); or run it with --parallel"
    )


def main_guard_advice() -> str:
    """Said where workers could not start, if the run was started by a script of the
    researcher's (``python train.py``): a missing ``__main__`` guard makes each spawned
    worker start a run of its own. Not from ``assay run``, ``python -c`` or a notebook,
    whose workers import no script."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or ""
    if not path.endswith(".py") or Path(path).resolve().is_relative_to(_ASSAY_FOLDER):
        return ""
    return (
        f" If {Path(path).name} does not call run_experiment() under "
        '`if __name__ == "__main__":`, add that guard: worker processes import the script '
        "again, and without it each would start a run of its own."
    )


_ASSAY_FOLDER = Path(__file__).resolve().parent


def _own_cacher_classes(spec: StageSpec) -> list[type]:
    """The stage's cacher classes that are not assay's own (the project's, a lab
    package's): what their ``save`` keeps and their ``load`` gives back is part of what
    later stages see, so their code is keyed as the stage's is."""
    found: list[type] = []
    for entry in spec.cachers or ():
        if entry is None:
            continue
        cls = entry if isinstance(entry, type) else type(entry)
        if cls.__module__.partition(".")[0] != "assay" and cls not in found:
            found.append(cls)
    return found


def _fields(node: StageNode, reads: frozenset | str) -> list[tuple[str, str | None]]:
    """``(field, value hash)`` for the fields a key covers, sorted; a method, property or
    constant of the parameter class that the stage used, with the digest of its code; an
    entry of ``record.state`` it read without declaring it (``state:NAME``), or an input
    it takes from what an earlier stage put there by hand, with what the entry holds now."""
    found = _read_fields(node, reads)
    if node.state_inputs:
        taken = {name for name, _ in found}
        found = sorted(
            found
            + [
                (STATE_READ + name, state_entry_part(node, name))
                for name in node.state_inputs
                if STATE_READ + name not in taken
            ]
        )
    placed = _templated_paths(node)
    return sorted(found + placed) if placed else found


def _checked(cacher: Cacheable, meta: dict) -> bool:
    """What a cacher's own ``check()`` says of the cached entry ``meta``, the entry's
    metadata in ``self.metadata`` and ``self.extra_metadata`` while it runs, as ``load()``
    finds them: a check may read them (``load_metadata()``, as Curifactory's cachers do,
    to compare a format version kept there). Put back after, so that a save of a new
    entry starts from none of the old one's."""
    before = cacher.metadata, cacher.extra_metadata
    cacher.metadata = CacherMetadata(meta)
    cacher.extra_metadata = dict(meta.get("extra") or {})
    try:
        return bool(cacher.check())
    finally:
        cacher.metadata, cacher.extra_metadata = before


def _drop_claims(cache: Any, scope: str, owner: int) -> None:
    """Remove the claims of ``scope`` when the runner that made them is gone, in the
    process that made them (not in a worker forked with a copy of it)."""
    if os.getpid() == owner:
        cache.drop_claims(scope)


def _placed_twice(path: str, first: tuple, then: tuple) -> str:
    """The message for two stage runs whose ``path_override`` names one file: ``first``
    and ``then`` are ``(key, output, stage, parameter set)``."""
    _, output, stage, label = then
    if (first[2], first[3]) == (stage, label):
        whose = f"outputs {first[1]!r} and {output!r} of stage {stage!r}"
    elif first[2] == stage and first[1] == output:
        whose = (
            f"output {output!r} of stage {stage!r} for parameter sets {first[3]!r} and {label!r}"
        )
    else:
        whose = (
            f"output {first[1]!r} of stage {first[2]!r} (parameter set {first[3]!r}) and "
            f"output {output!r} of stage {stage!r} (parameter set {label!r})"
        )
    return (
        f"The path_override of {whose} names one file, {path}: the second would replace "
        f"the first's, whose cached entry could then never be loaded (every run would "
        f"compute both again). Nothing of stage {stage!r} for {label!r} was saved; what "
        "the first saved is kept. "
        "Give each its own file: put {params.name} or {hash} in the path_override "
        '(e.g. "results/{params.name}/' + os.path.basename(path) + '").'
    )


def _templated_paths(node: StageNode) -> list[tuple[str, str]]:
    """``("path_override:OUTPUT", digest)`` for each output whose ``path_override`` names
    parameter fields (``out/{params.name}.json``): the values it names, which its file's
    place depends on. Two parameter sets that hash alike (the name is not hashed, nor a
    field left out with ``set_hash_functions``) but name their files differently were one
    stage run: only the first set's file was written, and the other's could not be loaded."""
    import string

    found = []
    for artifact in node.outputs:
        template = str(getattr(artifact.cacher, "path_override", None) or "")
        if "{params" not in template or node.record.params is None:
            continue
        try:
            fields = sorted(
                {f for _, f, _, _ in string.Formatter().parse(template) if f and f[:6] == "params"}
            )
            values = {f: ("{" + f + "}").format(params=node.record.params) for f in fields}
        except (ValueError, AttributeError, KeyError, IndexError):
            continue  # a template that cannot be filled: check_path_override says so
        found.append((f"path_override:{artifact.name}", hash_value(values)))
    return found


def _read_fields(node: StageNode, reads: frozenset | str) -> list[tuple[str, str | None]]:
    if not reads:
        return []
    record = node.record
    hashes = record.field_hashes()
    if reads != ALL and _read_wholesale(reads):
        # Every field it has now (a field added with the default None, as the set's hash,
        # changes nothing).
        reads = (reads - {EVERY_FIELD}) | frozenset(k for k, v in hashes.items() if v is not None)
    held = record._held  # filled by field_hashes(): functions in fields, keyed on their code
    if held and (reads == ALL or not held.keys().isdisjoint(reads)):
        runner = record.manager.runner
        hashes = {k: runner.held_code(v, held[k]) if k in held else v for k, v in hashes.items()}
    cls = type(record.params)
    code = code_attributes(cls) if record.params is not None else {}
    if "__hash__" in hashes or reads == ALL:
        if "__hash__" in hashes:
            found = [("__hash__", hashes["__hash__"])]
        else:  # the whole parameter set, as its hash sees it: no name, no Nones
            found = [(k, v) for k, v in hashes.items() if v is not None and k != "name"]
        runner = record.manager.runner
        return sorted(found + [(k, runner.attribute_code(cls, k)) for k in code])
    found = []
    for k in reads:
        if k in hashes:
            found.append((k, hashes[k]))
        elif k in code:
            found.append((k, record.manager.runner.attribute_code(cls, k)))
        elif k.startswith(STATE_READ):
            found.append((k, state_entry_part(node, k[len(STATE_READ) :])))
    return sorted(found)


_UNSHARED = 2
"""``sys.getrefcount`` of a stage's tracking copy that nothing but the runner holds (its
own variable and the call's argument)."""

_BOOKKEEPING = frozenset({"hash", "overwrite", "hash_representations"})


def _read_wholesale(reads: frozenset) -> bool:
    """Whether a stage read its parameter set wholesale (``asdict``, ``vars``): its reads
    hold EVERY_FIELD, or (in a read index written before they did) the bookkeeping fields
    that no stage reads one by one but a wholesale read reads with the others."""
    return EVERY_FIELD in reads or reads >= _BOOKKEEPING


def _marked(reads: frozenset) -> frozenset:
    """``reads`` with EVERY_FIELD when they are a wholesale read (``asdict`` reads the
    fields one by one), for the read index and ``assay why``."""
    return reads | {EVERY_FIELD} if _read_wholesale(reads) else reads


def state_entry_part(node: StageNode, name: str) -> str | None:
    """What an undeclared ``record.state`` entry the stage read holds as it is about to run:
    an artifact by its key (``None`` while unknown), a plain value by its hash."""
    try:
        value = node.record.state._visible(name, node)
    except KeyError:
        return "absent"
    if type(value) is Artifact:
        return value.node.key and f"artifact {value.key}"
    try:
        return hash_value(value, dict_order=True)
    except Exception:  # a value the hasher does not understand counts by its type
        return hash_value(("object", type(value).__module__, type(value).__qualname__))


def _given_by_lazy(node: StageNode, output: str) -> str:
    """What to do about an output that ``--lazy`` gave a ``PickleCacher`` (its stage
    declares no cachers, as Curifactory's ``--lazy`` does) and that the cacher refused."""
    example = ", ".join(
        "None" if name == output else "PickleCacher" for name in node.spec.output_names
    )
    return (
        f"(--lazy gave it a PickleCacher: stage {node.spec.name!r} declares no cachers. To "
        f"keep {output!r} out of the cache under --lazy, declare the stage's cachers with None "
        f"for it: cachers=[{example}].)"
    )


def _in_stage_order(reportables: list, nodes: list[StageNode]) -> list:
    """The reportables of ``nodes`` in their order (each stage run's own, then what
    ``run()`` reported after calling it), followed by those of ``reportables`` that are
    on none of them (reported before a record's first stage), which are kept."""
    ordered = [r for n in nodes for r in (*n.reportables, *n.reported_after)]
    on_nodes = {id(r) for r in ordered}
    return ordered + [r for r in reportables if id(r) not in on_nodes]


def picklable_reportables(node: StageNode, why: str) -> list:
    """``node``'s reportables in a form that can be pickled (to cache them, or to send
    them from a worker, once pickling them all failed): one that cannot (it holds a
    lock, a lambda) is replaced by a :class:`~assay.reporting.ReportableCopy` of what it
    shows, with a warning; one whose copy cannot be pickled either is left out. ``why``
    completes "Reportable R of stage S cannot be ..." (e.g. "cached")."""
    import pickle

    from assay.reporting import ReportableCopy

    kept = []
    for reportable in node.reportables:
        try:
            pickle.dumps(reportable, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            kept.append(reportable)
            continue
        held, reportable.record = reportable.record, node.record  # its html() may read it
        try:
            copy = ReportableCopy(reportable)
        finally:
            reportable.record = held
        try:
            pickle.dumps(copy, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            outcome = "it is left out"
        else:
            kept.append(copy)
            outcome = "a copy of the HTML and files it shows now is kept instead"
        log.warning(
            "Reportable %r of stage %r (%s) cannot be %s as it is (%s): %s.",
            reportable.name,
            node.spec.name,
            node.record_label,
            why,
            problem,
            outcome,
        )
    return kept
