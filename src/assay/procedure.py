"""Procedures: a fixed list of stages, run on a new record for each parameter set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from assay.errors import NoArtifactManagerError
from assay.record import Record


class Procedure:
    """A named sequence of stages, run in order on one record (Curifactory API).

    ::

        train_and_score = assay.Procedure([load_data, train, score], manager)
        for params in param_sets:
            train_and_score.run(params)

    Args:
        stages: stage functions, called in order (none: ``run`` only makes the record).
        manager: the manager records are created on (or given to ``run``).
        name: a label for the procedure.
        previous_proc: a procedure whose records the first stage (usually an
            aggregate) receives.
        records: records the first stage (an aggregate) receives.
    """

    def __init__(
        self,
        stages: Sequence[Callable],
        manager: Any = None,
        name: str | None = None,
        previous_proc: Procedure | None = None,
        records: list[Record] | None = None,
    ):
        self.stages = list(stages)
        self.manager = manager
        self.name = name
        self.previous_proc = previous_proc
        self.use_records = records
        self.records: list[Record] = []
        """The records this procedure created (not those given to ``run(record=...)``), as
        in Curifactory: what a procedure with ``previous_proc=`` this one aggregates."""
        self.record: Record | None = None

    def run(
        self,
        param_set: Any,
        record: Record | None = None,
        hide: bool = False,
        manager: Any = None,
        records: list[Record] | None = None,
    ) -> Record:
        """Run every stage on ``record`` (a new one for ``param_set`` if not given, added
        to :attr:`records`) and return the record."""
        if self.manager is None:
            self.manager = manager
        if self.manager is None:
            raise NoArtifactManagerError(
                "Procedure.run needs a manager: Procedure(stages, manager), or "
                "procedure.run(params, manager=manager)."
            )
        if records is not None:
            self.use_records = records
        if record is None:
            record = Record(self.manager, param_set, hide=hide)
            self.records.append(record)
        self.record = record
        if not self.stages:
            return record
        first, *rest = self.stages
        if self.previous_proc is not None:
            first(record, self.previous_proc.records)
        elif self.use_records is not None:
            first(record, self.use_records)
        else:
            first(record)
        for stage_function in rest:
            stage_function(record)
        return record
