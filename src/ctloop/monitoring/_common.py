"""Helpers the monitoring modules share: JSON-safe numbers and class-name matching."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ctloop.errors import InvalidInput

__all__ = ["class_names", "json_float", "positive_class"]


def json_float(value: Any) -> float | None:
    """A float, or None for missing and non-finite values (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def class_names(values: pd.Series) -> list[str]:
    """Class values as the names ``p.<class>`` columns use: ``1``, ``1.0`` and ``"1"`` are
    all ``"1"``, so labels sent as text still match integer predictions."""
    out = []
    for v in values.tolist():
        if isinstance(v, float | np.floating) and float(v).is_integer():
            v = int(v)
        out.append(str(v))
    return out


def positive_class(classes: list[str], positive_label: Any) -> str:
    """The positive class of a binary model: ``positive_label`` when given, else
    ``1``/``True``/``yes`` when the classes are those, else the last class in sorted order."""
    if positive_label is not None:
        name = class_names(pd.Series([positive_label], dtype=object))[0]
        if name not in classes:
            raise InvalidInput(f"positive_label={positive_label!r} is not one of {classes}")
        return name
    for candidate in ("1", "True", "true", "yes"):
        if candidate in classes:
            return candidate
    return sorted(classes)[-1]
