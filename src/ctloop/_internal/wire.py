"""Plain JSON values from ctloop's entities, for the REST API and ``--json`` output.

Dataclasses become objects, datetimes ISO 8601 strings, enums their values, paths strings,
and non-finite floats the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JSON has no
such numbers; pydantic and ``float()`` read these strings back).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any


def to_wire(value: Any) -> Any:
    """``value`` as JSON-ready Python data (see the module docstring for the rules)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if value is None or isinstance(value, str | int | bool):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_wire(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_wire(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return to_wire(value.item())
    return value
