"""Checks on what runs log: keys, param and tag values, metric values and steps."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from ctloop._internal.names import check_key
from ctloop.errors import InvalidInput

MAX_PARAM_VALUE = 8000
MAX_TAG_VALUE = 8000

_checked_keys: set[tuple[str, str]] = set()


def key(value: Any, what: str) -> str:
    """A valid param/metric/tag key (memoised: hot loops log the same keys)."""
    if isinstance(value, str) and (what, value) in _checked_keys:
        return value
    check_key(value, what)
    if len(_checked_keys) < 100_000:
        _checked_keys.add((what, value))
    return str(value)


def param_value(k: str, value: Any) -> str:
    """Params are stored as strings (``str(value)``), at most 8000 characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE:
        raise InvalidInput(
            f"param {k!r} is {len(text)} characters long; the limit is {MAX_PARAM_VALUE}: "
            "log long values as an artifact instead"
        )
    return text


def tag_value(k: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE:
        raise InvalidInput(
            f"tag {k!r} is {len(text)} characters long; the limit is {MAX_TAG_VALUE}"
        )
    return text


def metric_value(k: str, value: Any) -> float:
    """A metric value as float. NaN and ±inf are allowed (and stored as such), like MLflow."""
    if isinstance(value, float):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar / 0-d array
        try:
            item = value.item()
        except (ValueError, TypeError):
            item = None
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return float(item)
    raise InvalidInput(
        f"metric {k!r} got {value!r} of type {type(value).__name__}; metric values must be "
        "real numbers (log text as a tag or param)"
    )


def step_value(k: str, step: Any) -> int:
    if step is None:
        return 0
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        return int(step)
    if isinstance(step, float) and step.is_integer() and math.isfinite(step):
        return int(step)
    raise InvalidInput(f"metric {k!r} got step {step!r}; steps must be integers")


MetricPoint = tuple[str, float, int, int]  # key, value, step, timestamp (ms)


def clean_batch(
    metrics: Iterable[Any],
    params: Mapping[str, Any] | None,
    tags: Mapping[str, Any] | None,
    now: int,
) -> tuple[list[MetricPoint], dict[str, str], dict[str, str]]:
    """Validate a batch: metric points (``Metric`` objects or ``(key, value, step, ms)``
    tuples; a missing timestamp becomes ``now``), params and tags, with the messages every
    backend shares."""
    points: list[MetricPoint] = []
    for m in metrics:
        if hasattr(m, "key") and hasattr(m, "timestamp"):  # a Metric
            k, v, s, t = m.key, m.value, m.step, int(m.timestamp.timestamp() * 1000)
        else:
            k, v, s, t = m
        k = key(k, "metric")
        points.append((k, metric_value(k, v), step_value(k, s), int(t) if t else now))
    clean_params = {key(k, "param"): param_value(k, v) for k, v in (params or {}).items()}
    clean_tags = {key(k, "tag"): tag_value(k, v) for k, v in (tags or {}).items()}
    return points, clean_params, clean_tags
