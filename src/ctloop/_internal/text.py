"""Text for people: cut to a size, durations as ``6h``."""

from __future__ import annotations

from datetime import timedelta

__all__ = ["clip", "format_duration"]


def clip(text: str, size: int) -> str:
    """``text``, or its first ``size - 1`` characters and an ellipsis when it is longer."""
    return text if len(text) <= size else text[: size - 1] + "…"


def format_duration(span: timedelta) -> str:
    """``timedelta(hours=6)`` → ``"6h"``: the largest of d, h, m that divides it, else
    seconds (``"90s"``, ``"1.5s"``), as ``ctloop.monitoring.windows.parse_window`` reads."""
    seconds = span.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
