"""Numbers as people read them: sizes and durations in listings, reports and the dashboard;
and text as a terminal can show it safely."""

from __future__ import annotations

import re


def format_size(n: float | None) -> str:
    """``20480`` -> ``"20.5 kB"``; ``None`` -> ``""``."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns at GB


def format_duration(seconds: float | None) -> str:
    """``0.042`` -> ``"0.04 s"``; ``75`` -> ``"1 min 15 s"``; ``None`` -> ``""``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def printable(text: object) -> str:
    """``text`` as it can safely be shown on a terminal: each control character but
    newline and tab is written as its escape (``\\x1b``) instead of being sent.

    Parameter-set names, notes and error texts come from experiment files and from run
    stores or exports that others made; an escape sequence in one must not recolour,
    retitle or (OSC 52) fill the clipboard of the terminal of whoever lists the runs.
    Use it for every such text printed outside rich markup; :func:`shown` for markup.
    """
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and newline, DEL, and C1 controls (0x9b starts a sequence too)."""
