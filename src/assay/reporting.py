"""Reportables: what stages add to a run's report with ``record.report(...)``.

A reportable turns something a stage computed (a table, a figure, a dict of
scores) into HTML for the run's report. Stages create them and hand them to
the record::

    @assay.stage(inputs=["model"], outputs=["score"])
    def evaluate(record, model):
        score = model.score(...)
        record.report(JsonReporter({"accuracy": score}, name="scores"))
        return score

Write your own by subclassing :class:`Reportable` and defining ``html()``
(and ``render()`` if it writes files, such as images, beside the report).
"""

from __future__ import annotations

import html as _html
import json
from typing import Any

__all__ = ["JsonReporter", "Reportable"]


class Reportable:
    """Base class of everything a stage can put into the report.

    Args:
        name: a short name, shown as the reportable's title; it also names any
            file the reportable writes. Defaults to a running number.
        group: reportables of a record with the same group are shown together.

    Attributes set by ``record.report``: ``record``, ``stage`` and
    ``qualified_name`` (unique in the run, e.g. ``"trees_10_train_scores"``).
    ``path`` is the folder a reportable may write files into (set before
    ``render()`` is called).
    """

    def __init__(self, name: str | None = None, group: str | None = None):
        self.name = name
        self.group = group
        self.qualified_name = name
        self.record: Any = None
        self.stage = ""
        self.path = ""
        self.rendered = False

    def html(self) -> str | list[str]:
        """The HTML for the report (a string or a list of lines); escape user text."""
        raise NotImplementedError(f"{type(self).__name__} must define html().")

    def render(self) -> None:
        """Write any files the HTML refers to into ``self.path`` (optional)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, stage={self.stage!r})"


class JsonReporter(Reportable):
    """A dict (or anything JSON-able) shown as indented JSON.

    ``record.report(JsonReporter({"accuracy": 0.93, "n": 150}, name="scores"))``
    """

    def __init__(self, dictionary: Any, name: str | None = None, group: str | None = None):
        super().__init__(name=name, group=group)
        self.data = dictionary

    def html(self) -> str:
        text = json.dumps(self.data, indent=4, default=str)
        return f"<pre>{_html.escape(text)}</pre>"
