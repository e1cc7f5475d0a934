"""Identifiers and clocks."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """A new random 32-hex-character id (runs, experiments, dataset versions…)."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Milliseconds since the epoch, the unit every timestamp is stored in."""
    return time.time_ns() // 1_000_000


def ms_to_datetime(ms: int | None) -> datetime | None:
    """A stored millisecond timestamp as an aware UTC datetime."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
