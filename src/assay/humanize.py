"""Numbers as people read them: sizes and durations in listings, reports and the dashboard."""

from __future__ import annotations


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
