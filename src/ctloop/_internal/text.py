"""Text for people: cut to a size."""

from __future__ import annotations

__all__ = ["clip"]


def clip(text: str, size: int) -> str:
    """``text``, or its first ``size - 1`` characters and an ellipsis when it is longer."""
    return text if len(text) <= size else text[: size - 1] + "…"
