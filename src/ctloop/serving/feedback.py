"""The body of ``POST /feedback``: ground truth for earlier predictions, checked.

:func:`parse_feedback` turns a feedback body into log rows, or raises
:class:`~ctloop.serving.protocols.RequestInvalid` listing every problem.
"""

from __future__ import annotations

from typing import Any

from ctloop.serving import protocols
from ctloop.serving.protocols._common import scalar_problem

__all__ = ["MAX_PREDICTION_ID", "parse_feedback"]

MAX_PREDICTION_ID = 128


def parse_feedback(body: Any, *, max_rows: int) -> list[dict[str, Any]]:
    """The rows of a ``POST /feedback`` body, or :class:`RequestInvalid` listing every problem.

    The body is one ``{"prediction_id": …, "label": …}`` (or ``"value"`` for a regression
    target), a list of them, or ``{"feedback": [them]}``.
    """
    import math

    items = body.get("feedback", body) if isinstance(body, dict) else body
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise protocols.RequestInvalid(
            [
                'the body must be {"prediction_id": "…", "label": …} (or "value": number), '
                'a list of them, or {"feedback": [them]}'
            ]
        )
    if len(items) > max_rows:
        raise protocols.RequestInvalid(
            [f"{len(items)} feedback items, more than the limit of {max_rows}; send fewer"]
        )
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"item {i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object, got {type(item).__name__}")
            continue
        unknown = sorted(set(item) - {"prediction_id", "label", "value"})
        if unknown:
            problems.append(f"{where}: unknown field(s) {unknown}; use prediction_id, label, value")
        pid = item.get("prediction_id")
        if not isinstance(pid, str) or not 0 < len(pid) <= MAX_PREDICTION_ID:
            problems.append(
                f"{where}: prediction_id must be the id a prediction response gave, got {pid!r}"
            )
        has_label, has_value = "label" in item, "value" in item
        label, value = item.get("label"), item.get("value")
        if has_label == has_value:
            problems.append(f"{where}: give exactly one of 'label' (a class) or 'value' (a number)")
        elif has_label and (label is None or isinstance(label, dict | list)):
            problems.append(f"{where}: label must be a single value, got {label!r}")
        elif has_label and (why := scalar_problem(label)) is not None:
            problems.append(f"{where}: label {why}")  # e.g. an integer the log cannot hold
        elif has_value and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or abs(value) > 1e308
        ):
            problems.append(f"{where}: value must be a finite number, got {value!r}")
        rows.append(
            {
                "prediction_id": pid,
                "label": label if has_label else None,
                "value": float(value) if has_value and isinstance(value, int | float) else None,
            }
        )
    if problems:
        raise protocols.RequestInvalid(problems)
    return rows
