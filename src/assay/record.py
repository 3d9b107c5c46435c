"""Records: the state of one parameter set as it moves through the stages.

``record = assay.Record(manager, params)`` starts an empty record; every stage
called on it reads its inputs from ``record.state`` and writes its outputs
there. ``record.state`` behaves like a dict of artifact name → value; values
that live only in the cache are loaded when read, not before.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from assay.compat import names_curifactory_has
from assay.params import claim_folder
from assay.plan import MISSING, Artifact, short_repr
from assay.staging import Lazy

if TYPE_CHECKING:
    from assay.manager import ArtifactManager
    from assay.params import ExperimentParameters
    from assay.reporting import Reportable


class NotSentToWorker(KeyError):
    """A stage in a worker process read a ``record.state`` entry it did not declare as input.

    A serial run would have given it the value; a worker gets only the stage's
    declared inputs (so that it runs only once they exist). Raised rather than
    answering "absent", which would make the stage's result differ from a
    serial run's.
    """

    def __str__(self) -> str:
        name, why = self.args[0], self.args[1] if len(self.args) > 1 else ""
        if why:
            return (
                f"record.state[{name!r}] holds {why}, so it could not be sent to the worker "
                "process that runs this stage (--parallel, --executor dask). Put a value that "
                f"can be pickled in record.state[{name!r}], or run without --parallel / "
                "--executor."
            )
        return (
            f"record.state[{name!r}] is not an input of this stage, and a stage running in a "
            "worker process (--parallel, --executor dask) gets only its declared inputs. "
            f"Declare it: @stage(inputs=[..., {name!r}])."
        )


@dataclasses.dataclass(frozen=True)
class EarlierRun:
    """In a worker process: a stage run of the record before the one the worker runs.

    A worker's record holds only its own stage; these let
    ``record.get_path(..., stage_name="make")`` and a cacher with ``.stage = "make"``
    find ``make``'s folder there as in a serial run.
    """

    name: str
    key: str | None
    """Its cache key; ``None`` if it had not finished when this stage was sent."""
    status: str
    upstream: bool = True
    """Whether the running stage's key covers it (it takes its outputs, or theirs)."""


class State(dict):
    """A record's artifacts by name; reading an entry loads it if needed.

    Reading ``state["model"]`` gives the value: from memory, from the cache
    (verified against its checksum), or for a ``Lazy(..., resolve=False)``
    output, the ``Lazy`` object. You may also put plain values in
    (``record.state["data"] = df``) for later stages to use.

    While a stage runs, the state holds what the stages called before it on
    this record produced, as in Curifactory: not the running stage's own
    outputs, nor those of stages called after it (``"model" in record.state``
    is ``False`` until the stage that makes it has run, and an output name
    that a later stage reuses still means the earlier stage's value).

    With ``record.state.resolve = False`` (Curifactory's switch), reading a ``Lazy``
    output gives its ``Lazy`` object instead of the value, until you set it back to
    ``True``; other entries are unaffected.
    """

    resolve: bool = True
    """``False``: reading a ``Lazy`` output gives the ``Lazy`` object, not the value."""
    _record: Record | None = None
    _not_sent: Mapping[str, str] = MappingProxyType({})
    """In a worker process: what the stage would also see in a serial run (see
    :class:`NotSentToWorker`)."""

    def _visible(self, name: str, running: Any = None) -> Any:
        """The entry under ``name`` as the running stage sees it; ``KeyError`` if none."""
        if name in self._not_sent:
            raise NotSentToWorker(name, self._not_sent[name])
        value = dict.__getitem__(self, name)
        if running is None and self._record is not None:
            running = self._record._node
        if running is None or type(value) is not Artifact:
            return value
        if getattr(value.node, "index", -1) < running.index:
            return value
        for node in reversed(self._record._nodes):  # what an earlier stage left under the name
            if node.index < running.index:
                for artifact in node.outputs:
                    if artifact.name == name:
                        return artifact
        raise KeyError(name)

    def _names(self, running: Any = None) -> list[str]:
        """The names present now (while ``running`` runs, if given)."""
        names = []
        for name in dict.__iter__(self):
            try:
                self._visible(name, running)
            except KeyError:
                continue
            names.append(name)
        return names

    def _note(self, name: object) -> None:
        """A running stage reads ``name`` without declaring it: its key covers the entry."""
        record = self._record
        reads = record._state_reads if record is not None else None
        if reads is not None and isinstance(name, str) and name not in record._node.inputs:
            from assay.keys import STATE_READ

            reads.add(STATE_READ + name)

    def __setitem__(self, name: str, value: Any) -> None:
        dict.__setitem__(self, name, value)
        record = self._record
        if record is not None:
            record._shared.discard(name)
            record._set_by[name] = record._position()

    def __getitem__(self, name: str) -> Any:
        self._note(name)
        value = self._visible(name)
        record = self._record
        if type(value) is not Artifact:
            if record is not None and name in record._shared:  # inherited: its own copy now
                import copy as copying

                record._shared.discard(name)
                value = _copied(value, copying)
                dict.__setitem__(self, name, value)
                # Its own from now on (what run() does to it stays; see _inherit_late).
                record._set_by.setdefault(name, record._position())
            return value
        if not self.resolve and value.lazy:
            return value.handle()
        return record._own(value) if record is not None else value.get()

    def __contains__(self, name: object) -> bool:
        self._note(name)
        try:
            self._visible(name)  # type: ignore[arg-type]
        except NotSentToWorker:
            raise
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def keys(self):  # type: ignore[override]
        """The names of the artifacts (and values) present now."""
        return self._names()

    def get(self, name: str, default: Any = None) -> Any:
        """``state[name]`` if present, else ``default``."""
        return self[name] if name in self else default  # noqa: SIM401

    def values(self):  # type: ignore[override]
        """Every value, loading those that live only in the cache."""
        return [self[name] for name in self]

    def items(self):  # type: ignore[override]
        """``(name, value)`` pairs, loading values that live only in the cache."""
        return [(name, self[name]) for name in self]

    def is_loaded(self, name: str) -> bool:
        """Whether ``name``'s value is in memory (``False``: it would be loaded)."""
        value = self._visible(name)
        return type(value) is not Artifact or value.value is not MISSING

    def __repr__(self) -> str:
        parts = []
        for name in self:
            value = self._visible(name)
            if type(value) is Artifact and value.value is MISSING:
                parts.append(f"{name!r}: <{'cached' if value.cached else 'not computed'}>")
            else:
                shown = value.value if type(value) is Artifact else value
                text = repr(shown)
                parts.append(f"{name!r}: {text[:60] + '...' if len(text) > 60 else text}")
        return "State({" + ", ".join(parts) + "})"


class Record:
    """The pipeline state of one parameter set: its artifacts and reportables.

    Args:
        manager: the run this record belongs to.
        params: the parameter set, or ``None`` (for instance for an aggregate).
        hide: do not list the record in ``manager.records`` (aggregates called
            without ``records`` then do not see it).

    Example, in a notebook::

        manager = assay.ArtifactManager("scratch")
        record = assay.Record(manager, Params(name="small", n_trees=10))
        train(load_data(record))
        record.state["score"]
    """

    def __init__(
        self,
        manager: ArtifactManager,
        params: ExperimentParameters | None,
        hide: bool = False,
    ):
        if params is not None and not (
            dataclasses.is_dataclass(params) and not isinstance(params, type)
        ):
            from assay.errors import ParameterError

            raise ParameterError(
                f"assay.Record(manager, params) takes a parameter set (an instance of a "
                f"dataclass deriving from assay.ExperimentParameters) or None, not "
                f"{type(params).__name__} {short_repr(params, 80)}."
            )
        self.manager = manager
        self.params = params
        self.state = State()
        """Artifacts by name (see :class:`State`)."""
        self.state._record = self
        self._stages: list[str] = []
        """Names of the stages called on this record, in order (see :attr:`stages`)."""
        self.input_records: list[Record] = []
        """For aggregates and copies: the records this one was built from."""
        self.is_aggregate = False
        self.reportables: list[Reportable] = []
        """What stages reported on this record with :meth:`report`."""
        self.stage_cachers: list | None = None
        """While a stage runs: its cachers, one per output."""
        self.combo_hash: str | None = None
        self._hash = manager.params_hash(params) if params is not None else None
        if manager.runner.planning and params is not None:
            from assay.params import freeze

            freeze(params)  # while run() plans: its stages are keyed on these values
        self._node = None
        self._index: int | None = None
        """This record's position in ``manager.records``, once looked up (in a worker
        process: in the main process's)."""
        self._nodes: list = []
        self._shared: set[str] = set()
        """Plain values a copy got from :meth:`make_copy` and has not read yet: copied at
        the first read (``State.__getitem__``)."""
        self._state_reads: set | None = None
        """While a stage runs: where reads of undeclared state entries are noted."""
        self._earlier: tuple[EarlierRun, ...] = ()
        """In a worker process: this record's stage runs before the running one (see
        :class:`EarlierRun`)."""
        self._barrier = None
        """The last stage without outputs planned on it (see ``StageNode.after``)."""
        self._fields: dict[str, str | None] | None = None
        self._held: dict[str, list] = {}
        """Fields whose values hold functions or classes, with those (filled by
        :meth:`field_hashes`, see :func:`assay.tracking.held_code`)."""
        self._shown: dict[str, str] = {}
        """Fields hashed through a representation of their own (a file's checksum, say):
        that representation, shortened, for sidecars and ``assay why`` (filled by
        :meth:`field_hashes`)."""
        self._copies: dict[int, Any] = {}
        """The values of artifacts inherited by :meth:`make_copy`, copied on first use."""
        self._set_by: dict[str, int] = {}
        """State entries put in by hand: where in the run (see :meth:`_position`)."""
        self._origin: tuple[Record, int] | None = None
        """For a copy: the record it was copied from, and how many stage runs the run had
        planned then (see :meth:`_inherit_late`)."""
        self._copied_after: tuple = ()
        """For a copy: the stage runs its stages start after (those of the record it was
        copied from, planned before the copy), so that what they put in the state by hand
        is there."""
        if not hide:
            if isinstance(getattr(params, "name", None), str):
                claim_folder(manager._folders, params.name)
            manager.records.append(self)

    # -- identity ---------------------------------------------------------------------

    def get_hash(self) -> str:
        """The parameter set's hash (fixed when the record is created), or the aggregate's."""
        if self.is_aggregate and self.combo_hash is not None:
            return self.combo_hash
        return self._hash if self._hash is not None else "None"

    def field_hashes(self) -> dict[str, str | None]:
        """The hash of each parameter field's value, for keys (computed once).

        Fields left out of the hash (``hash_representations``, field metadata)
        are absent; ``None`` values map to ``None``. A parameter set with a
        hand-set ``hash`` has the single entry ``"__hash__"``.
        """
        if self._fields is None:
            from dataclasses import fields

            from assay.hashing import hash_value
            from assay.params import RESERVED_FIELDS
            from assay.tracking import held_code

            params = self.params
            if params is None:
                self._fields = {}
            elif params.hash is not None:
                self._fields = {"__hash__": params.hash}
            else:
                represented = dict(params._hash_fields())
                # The name is no part of a parameter set's identity, but a stage
                # that reads it (to label a result, say) is keyed on it.
                found: dict[str, str | None] = {"name": hash_value(("name", params.name))}
                for f in fields(params):
                    if f.name in represented:
                        # In its order: a stage iterating a dict field may give another
                        # result for another order (the set's own hash ignores it).
                        found[f.name] = hash_value(represented[f.name], dict_order=True)
                        if represented[f.name] is not getattr(params, f.name):
                            self._shown[f.name] = short_repr(represented[f.name], 80)
                        code = held_code(represented[f.name])
                        if code:
                            self._held[f.name] = code
                    elif f.name not in RESERVED_FIELDS and getattr(params, f.name) is None:
                        found[f.name] = None
                self._fields = found
        return self._fields

    @property
    def name(self) -> str:
        """The parameter set's name (``"aggregate"`` / ``"none"`` without one), as a label.

        Reading ``record.name`` in a stage does not count as reading a
        parameter: use it for logs and messages. A stage whose *result*
        depends on the name should read ``record.params.name``, which does
        count (so the result is not reused for another name).
        """
        if self.params is not None:
            try:  # not through a tracking copy's hook; a slots=True class has it in a slot
                return object.__getattribute__(self.params, "name")
            except AttributeError:
                return ""
        return "aggregate" if self.is_aggregate else "none"

    def get_reference_name(self, map: bool = False) -> str:
        """``"Record 3 (trees_10)"``: how logs and reports refer to this record.
        (``map`` is taken for Curifactory's code: assay has no separate mapping pass.)"""
        name = self.name if self.params is not None else None
        return f"Record {self.get_record_index()} ({name})"

    def get_record_index(self, map: bool = False) -> int:
        """This record's position in ``manager.records`` (-1 for a hidden record).
        (``map`` is taken for Curifactory's code: assay has no separate mapping pass.)"""
        if self._index is None:  # (in a worker process it is the main process's)
            try:
                self._index = self.manager.records.index(self)
            except ValueError:
                return -1
        return self._index

    @property
    def stages(self) -> list[str]:
        """Names of the stages called on this record, in order. While one of them runs:
        those up to and including it (``record.stages[-1]`` is the running stage), as in
        Curifactory, where the stages called after it are not known yet; the same in a
        worker process."""
        return self._stages if self._node is None else self._stages_until(self._node)

    def _stages_until(self, running: Any) -> list[str]:
        """:attr:`stages` while the stage run ``running`` (one of this record's) runs."""
        for position, node in enumerate(self._nodes):
            if node is running:
                return self._stages[: len(self._stages) - len(self._nodes) + position + 1]
        return self._stages

    @property
    def output(self) -> Any:
        """The last stage's output(s): one value, or a tuple for several (Curifactory API)."""
        node = self._last_node()
        if node is None or not node.outputs:
            return [] if node is not None else None
        values = tuple(a.get() for a in node.outputs)
        return values[0] if len(values) == 1 else values

    # -- reporting --------------------------------------------------------------------

    def report(self, reportable: Reportable) -> None:
        """Add a reportable (a table, a figure, some JSON, ...) to the run's report."""
        from assay.reporting import not_a_reportable, not_set_up

        if not callable(getattr(reportable, "html", None)):
            raise TypeError(not_a_reportable(reportable))
        problem = not_set_up(reportable)
        if problem:
            raise TypeError(problem)
        running = self._node
        node = running or self._last_node()
        stage_name = node.spec.name if node is not None else ""
        if node is not None:  # numbered within the stage run: the same wherever it ran
            number = len(node.reportables) + len(node.reported_after)
        else:
            number = len(self.manager.reportables)
        self._take_reportable(reportable, stage_name, number)
        self.reportables.append(reportable)
        self.manager.reportables.append(reportable)
        if running is not None:
            running.reportables.append(reportable)
        elif node is not None:  # outside any stage: shown with the last one, not cached
            node.reported_after.append(reportable)

    def _take_reportable(self, reportable: Reportable, stage_name: str, number: int) -> None:
        """Make ``reportable`` this record's, as reported by stage ``stage_name``: its
        ``record``, ``stage`` and ``qualified_name`` (Curifactory's
        ``"[(Aggregate)_][SET_]STAGE_NAME"``, ``number`` standing in for a missing name).

        Also for the reportables of a stage run taken from the cache, which another
        parameter set may have made: they are named after this record's set."""
        from assay.reporting import safe_name

        reportable.record = self
        reportable.stage = stage_name
        prefix = "(Aggregate)_" if self.is_aggregate else ""
        if self.params is not None:
            prefix += f"{self.name}_"  # a label: not a parameter read
        suffix = reportable.name if reportable.name is not None else str(number)
        reportable.qualified_name = safe_name(f"{prefix}{stage_name}_{suffix}")

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Log a scalar metric (``record.log_metric("loss", 0.31, step=5)``).

        Kept in the run store (``assay compare``, ``assay ui``) and shown in the
        report; a stage taken from the cache brings back the metrics it logged.
        See :mod:`assay.metrics`.
        """
        from assay.metrics import log_metric

        log_metric(self, name, value, step)

    # -- files stages write themselves --------------------------------------------------

    def get_path(
        self,
        obj_name: str,
        subdir: str | None = None,
        prefix: str | None = None,
        stage_name: str | None = None,
        track: bool = True,
    ) -> str:
        """A path in the running stage's cache folder for a file the stage writes itself.

        Use it with :class:`~assay.caching.FileReferenceCacher` or
        :class:`~assay.caching.PathRef`: the file lives beside the stage's other
        cached outputs and is checksummed with them.
        """
        folder = self._stage_folder(stage_name)
        if subdir:
            folder = os.path.join(folder, subdir)
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, f"{prefix}_{obj_name}" if prefix else obj_name)

    def get_dir(
        self,
        dir_name_suffix: str,
        subdir: str | None = None,
        prefix: str | None = None,
        stage_name: str | None = None,
        track: bool = True,
    ) -> str:
        """Like :meth:`get_path`, but creates the folder and returns it."""
        path = self.get_path(dir_name_suffix, subdir, prefix, stage_name, track)
        os.makedirs(path, exist_ok=True)
        return path

    def _stage_folder(self, stage_name: str | None) -> str:
        node = self._node
        if stage_name is not None or node is None:
            node = self._stage_run(stage_name)
        if node is None:
            raise RuntimeError(
                "record.get_path() gives a path in a stage's cache folder; call it inside a "
                "stage (or name a stage that ran on this record with stage_name=...)."
            )
        if node.key is None and isinstance(node, EarlierRun):
            running = self._node.spec.name if self._node is not None else "this stage"
            raise RuntimeError(
                f"Stage {node.name!r} had not finished on parameter set {self.name!r} when "
                f"{running!r} started in a worker process (--parallel, --executor dask), "
                f"so its folder is not there yet: {running!r} takes no output of {node.name!r} "
                f"as input, so nothing made it wait. Give {running!r} one of its outputs as "
                "an input (@stage(inputs=[...])), or run without --parallel / --executor."
            )
        self._warn_uncovered(node)
        if node.key is None or (node is self._node and node.tracks_reads):
            # The folder is named by the key: fix it now, on the whole parameter set.
            self.manager.runner.key_on_all(node)
        cache = self.manager.cache
        if self.manager.dry_cache:  # the cache is read, never written
            if node is self._node or node.status in ("executed", "failed"):
                return str(self.manager.scratch_dir(node.key))  # made in this run
            return str(cache.stage_dir(node.key))  # an earlier run's, to read
        if node is self._node:  # the running stage's own: written until it is done
            return str(cache.prepare_in_place(node.key))
        return str(cache.ensure_dir(cache.stage_dir(node.key)))

    def _warn_uncovered(self, node: Any) -> None:
        """While a stage runs: warn, once per pair of stages, if the stage run whose folder
        it reaches is none that its key covers (it takes none of its outputs)."""
        running = self._node
        if running is None or node is running:
            return
        runner = self.manager.runner
        if isinstance(node, EarlierRun):
            name, covered = node.name, node.upstream
        else:
            from assay.plan import upstream_of

            if runner.upstream_seen[0] is not running:  # once per stage run
                runner.upstream_seen = (running, upstream_of(running))
            name, covered = node.spec.name, id(node) in runner.upstream_seen[1]
        warned = runner.warned_folders
        if covered or (running.spec.name, name) in warned:
            return
        warned.add((running.spec.name, name))
        import logging

        logging.getLogger("assay").warning(
            "Stage %r reaches the folder of stage %r (get_path(..., stage_name=%r), or a "
            "cacher with .stage = %r) but takes no output of %r as input: its cache key does "
            "not cover what %r wrote there (after a change to %r, its old result would be "
            "reused), and under --parallel or --executor dask it may start before %r has "
            "finished. Give %r an output of %r as an input (@assay.stage(inputs=[...])).",
            running.spec.name,
            *[name] * 7,
            running.spec.name,
            name,
        )

    def _stage_run(self, stage_name: str | None) -> Any:
        """The latest run of ``stage_name`` (of any stage, if ``None``) on this record: up
        to the running stage while one runs, as a serial run has done no later one yet. A
        copy (:meth:`make_copy`) has the stage runs of its original before it was made."""
        running = self._node
        for node in reversed((*self._copied_after, *self._nodes)):
            later = running is not None and node.index > running.index
            if not later and stage_name in (None, node.spec.name):
                return node
        for run in reversed(self._earlier):  # in a worker: those before it ran elsewhere
            if stage_name in (None, run.name):
                return run
        return None

    def _last_node(self):
        return self._nodes[-1] if self._nodes else None

    # -- copies -----------------------------------------------------------------------

    def make_copy(self, param_set: Any = None, add_to_manager: bool = True) -> Record:
        """A new record starting from this one's state (e.g. to branch a pipeline).

        The copy gets ``param_set`` (default: the same parameters) and the
        artifacts and values in this record's state. Its stages get copies of
        them, as in Curifactory: a stage that changes its input in place (a list
        appended to, a frame edited) changes nothing for the other branches. An
        artifact is copied when the copy first uses it, so one that no stage of
        the copy reads costs no memory.
        """
        copy = Record(
            self.manager,
            param_set if param_set is not None else self.params,
            hide=not add_to_manager,
        )
        copy.input_records = [self]
        dict.update(copy.state, dict.items(self.state))
        copy._shared = {n for n, v in dict.items(self.state) if type(v) is not Artifact}
        copy._barrier = self._barrier
        copy._origin = (self, self._position())
        # On workers its stages start after this record's stages so far (which in turn
        # start after those of the record it was copied from, if any).
        copy._copied_after = tuple(self._nodes) or self._copied_after
        runner = self.manager.runner
        for value in dict.values(self.state):
            if type(value) is Artifact and not value.cached:
                runner.snapshot_wanted.add(id(value))  # kept as made, for the copy
        return copy

    def _position(self) -> int:
        """Where the run is: the running stage run's index, or while ``run()`` plans, the
        number of stage runs planned so far (an order of the run's events)."""
        node = self._node
        return node.index if node is not None else len(self.manager.runner.plan.nodes)

    def _inherit_late(self) -> bool:
        """Before a stage of a copy runs: the values that stages of the original, called
        before :meth:`make_copy`, put in the state by hand once they ran. A run is planned
        before it executes, so at copy time they were not there yet; in Curifactory,
        which executes at once, the copy has them. True if it got any."""
        if self._origin is None:
            return False
        origin, planned = self._origin
        origin._inherit_late()
        got = False
        for name, index in list(origin._set_by.items()):
            if index >= planned or name in self._set_by:  # after the copy, or set here
                continue
            value = dict.get(origin.state, name)
            if type(value) is not Artifact:
                dict.__setitem__(self.state, name, value)
                self._shared.add(name)
                self._set_by[name] = index  # for a copy of this copy
                got = True
        self._origin = None  # once: the stages it waits for have all run by now
        return got

    def _own(self, artifact: Artifact) -> Any:
        """An artifact's value as this record's stages see it: for one made on another
        record (inherited through :meth:`make_copy`), this record's own copy."""
        value = artifact.get()
        if (
            getattr(artifact.node, "record", self) is self
            or artifact.value is MISSING  # loaded from the cache just now: a new object
            or isinstance(value, Lazy)  # a handle (resolve=False): it loads a new one
        ):
            return value
        found = self._copies.get(id(artifact), MISSING)
        if found is MISSING:
            # As it was made (the original's stages may have changed it in place since),
            # as a stage on a worker, which is sent it or loads it, sees it too.
            import copy as copying

            runner = self.manager.runner
            made = runner.snapshots.get(id(artifact), MISSING)
            if made is not MISSING:
                found = _copied(made, copying)
            elif artifact.cached and artifact.cacher is not None:
                found = self.manager.cache.load(artifact.cacher, artifact.node.key, artifact.name)
            else:
                found = _copied(value, copying)
            self._copies[id(artifact)] = found
        return found

    def __getattr__(self, name: str) -> Any:
        """A name of Curifactory's record that assay does not have: says what to use."""
        from assay.compat import missing_attribute

        raise missing_attribute(self, name)

    def __repr__(self) -> str:
        return f"Record({self.name!r}, stages={self.stages})"

    def _repr_html_(self) -> str:
        """Jupyter's display: the record's reportables, inline."""
        from assay.report.notebook import record_html

        return record_html(self)


def _copied(value: Any, copying: Any) -> Any:
    """A deep copy of ``value``; the value itself when it cannot be copied (a connection,
    a lock), as a branch then has to share it."""
    try:
        return copying.deepcopy(value)
    except Exception:
        return value


__getattr__ = names_curifactory_has(__name__)  # says what to use instead
