"""Recorded text (names, commands, notes) inside the Markdown that exports write: the
notebook's Markdown cells and the READMEs. It shows as written: no heading, emphasis,
link, HTML tag or formula is made of it, and it cannot end a code span early.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["markdown_code", "markdown_text"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MARKUP = re.compile(r"([\\`*_\[\]<>&~|$#])")
"""What makes markup inside a line (``#``: a heading's closing marks; ``$``: Jupyter's
formulas; ``~`` and ``|``: GitHub's strikethrough and tables). The text never starts a
line, so list and quote marks (``-``, ``1.``, ``>``) need nothing."""


def markdown_text(value: Any) -> str:
    """``value`` as literal text inside a line of Markdown: the characters that make markup
    escaped with a backslash (``a_b *c*`` stays ``a_b *c*``, ``<b>`` shows as ``<b>``), line
    breaks and other control characters made spaces (a heading stays one line). Dates,
    paths and ids stay as they are, so the file reads well as plain text too."""
    return _MARKUP.sub(r"\\\1", _CONTROL.sub(" ", str(value)))


def markdown_code(value: Any) -> str:
    """``value`` as a Markdown code span, fenced by more backticks than it holds in a row."""
    text = _CONTROL.sub(" ", str(value))
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"  # Markdown drops one space on each side
