"""Realised model performance and serving health, per window of the prediction log.

Two questions a monitor asks of a window of traffic:

- :func:`realised_performance` — *how good were the predictions that have labels?* Over
  the frame :func:`ctloop.serving.log_reader.joined` returns, per time window and per
  model version, with the share of rows labelled and how late the labels came.
- :func:`serving_health` — *is the service answering?* Rows, requests, error rate and
  latency percentiles per version and variant, from the prediction log.

Whether the window as a whole looks different is :mod:`ctloop.monitoring.multivariate`;
how good the predictions are likely to be before labels arrive is
:mod:`ctloop.monitoring.estimation`.

Every result is a dataclass with ``to_dict()`` returning plain JSON values (NaN → None,
times as ISO 8601 strings). ``docs/monitoring.md`` explains the methods and their limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from ctloop.errors import InvalidInput
from ctloop.evaluation import kernels
from ctloop.evaluation.metrics import BINARY, MULTICLASS, REGRESSION
from ctloop.monitoring._common import class_names, json_float, positive_class

__all__ = [
    "HealthRow",
    "VersionPerformance",
    "WindowPerformance",
    "realised_performance",
    "serving_health",
]

#: Metrics :func:`realised_performance` reports, per task.
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")


# --- realised performance -------------------------------------------------------------------


@dataclass(frozen=True)
class VersionPerformance:
    """One model version's share of a window."""

    model_version: str
    predictions: int
    labelled: int
    metrics: dict[str, float | None] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "predictions": self.predictions,
            "labelled": self.labelled,
            "metrics": _metrics_dict(self.metrics),
        }


@dataclass(frozen=True)
class WindowPerformance:
    """Realised performance of one window of predictions joined with their feedback.

    Attributes:
        start, end: the window (``end`` exclusive); without a window length, the first and
            last prediction time.
        task: ``binary``, ``multiclass`` or ``regression``.
        predictions: rows served without error in the window.
        labelled: of those, rows with feedback.
        label_share: ``labelled / predictions`` (None for an empty window).
        delay_median_s, delay_p90_s: seconds from prediction to feedback, over the
            labelled rows.
        metrics: metric name → value (None where undefined), or None with fewer than
            ``min_labels`` labelled rows.
        by_version: the same per model version.
    """

    start: datetime | None
    end: datetime | None
    task: str
    predictions: int
    labelled: int
    label_share: float | None
    delay_median_s: float | None
    delay_p90_s: float | None
    metrics: dict[str, float | None] | None
    by_version: list[VersionPerformance] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "task": self.task,
            "predictions": self.predictions,
            "labelled": self.labelled,
            "label_share": json_float(self.label_share),
            "delay_median_s": json_float(self.delay_median_s),
            "delay_p90_s": json_float(self.delay_p90_s),
            "metrics": _metrics_dict(self.metrics),
            "by_version": [v.to_dict() for v in self.by_version],
        }


def realised_performance(
    joined: pd.DataFrame,
    *,
    task: str | None = None,
    positive_label: Any = None,
    window: str | pd.Timedelta | None = None,
    min_labels: int = 30,
    include_shadow: bool = False,
) -> list[WindowPerformance]:
    """Performance of the labelled predictions, per window and model version.

    Rows whose ``status`` is not ``ok`` are left out (they have no prediction; see
    :func:`serving_health`), and so are shadow answers (``variant == "shadow"``): they
    get prediction ids of their own, which feedback never names. Classification reports
    ``accuracy``, ``precision``, ``recall``, ``f1`` (binary: of the positive class;
    multiclass: macro), and
    ``roc_auc`` and ``log_loss`` when the log has ``p.<class>`` columns; regression
    reports ``mae``, ``rmse`` and ``r2``. Definitions are those of
    :mod:`ctloop.evaluation.metrics`, so a window's value and an offline evaluation agree.

    Args:
        joined: predictions with their feedback, as :func:`ctloop.serving.log_reader.joined`
            returns them (``timestamp``, ``prediction``, ``p.*``, ``label``, ``value``,
            ``feedback_time``, ``model_version``, ``status``).
        task: ``classification`` or ``regression``; default: classification when any row
            has a ``label`` or a ``p.*`` column exists, regression when rows have a
            ``value``.
        positive_label: the positive class of a binary model; default ``1``/``True`` when
            the classes are those, else the last class in sorted order.
        window: a fixed duration (``"1h"``, ``"1D"``, a Timedelta) to cut the frame into
            windows aligned on multiples of it; None: one window over all rows.
        min_labels: fewer labelled rows than this give ``metrics=None``.
        include_shadow: keep the shadow rows (e.g. to count them).

    Returns:
        one :class:`WindowPerformance` per non-empty window, oldest first.
    """
    if task not in (None, "classification", "regression"):
        raise InvalidInput(f"task={task!r}: use 'classification', 'regression' or None")
    frame = joined
    if "status" in frame.columns:
        frame = frame[frame["status"].fillna("ok") == "ok"]
    if not include_shadow and "variant" in frame.columns:
        frame = frame[frame["variant"].fillna("") != "shadow"]
    if task is None:
        task = _infer_task(frame)
    out = []
    for start, end, part in _windows(frame, window):
        out.append(_window_performance(part, start, end, task, positive_label, min_labels))
    return out


def _infer_task(frame: pd.DataFrame) -> str:
    has_label = "label" in frame.columns and frame["label"].notna().any()
    has_value = "value" in frame.columns and frame["value"].notna().any()
    if has_label or (not has_value and any(c.startswith("p.") for c in frame.columns)):
        return "classification"
    if has_value:
        return "regression"
    numeric = "prediction" in frame.columns and pd.api.types.is_float_dtype(frame["prediction"])
    return "regression" if numeric else "classification"


def _window_performance(
    part: pd.DataFrame,
    start: datetime | None,
    end: datetime | None,
    task: str,
    positive_label: Any,
    min_labels: int,
) -> WindowPerformance:
    target = "label" if task == "classification" else "value"
    truth = part[target] if target in part.columns else pd.Series(np.nan, index=part.index)
    labelled = truth.notna() & part["prediction"].notna()
    kind = REGRESSION
    classes: list[str] = []
    if task == "classification":
        classes = _classes(part, labelled)
        kind = BINARY if len(classes) <= 2 else MULTICLASS

    def measure(rows: pd.DataFrame) -> dict[str, float | None] | None:
        if len(rows) < max(min_labels, 1):
            return None
        if task == "regression":
            return _regression_metrics(rows)
        return _classification_metrics(rows, classes, positive_label)

    delay = None
    if "feedback_time" in part.columns and labelled.any():
        late = pd.to_datetime(part.loc[labelled, "feedback_time"], utc=True) - pd.to_datetime(
            part.loc[labelled, "timestamp"], utc=True
        )
        delay = late.dt.total_seconds().astype("float64").dropna()
    versions = []
    if "model_version" in part.columns:
        for version, rows in part.groupby(part["model_version"].astype(str), sort=True):
            mask = labelled.loc[rows.index]
            versions.append(
                VersionPerformance(str(version), len(rows), int(mask.sum()), measure(rows[mask]))
            )
    n, k = len(part), int(labelled.sum())
    return WindowPerformance(
        start=start,
        end=end,
        task=kind,
        predictions=n,
        labelled=k,
        label_share=k / n if n else None,
        delay_median_s=float(delay.median()) if delay is not None and len(delay) else None,
        delay_p90_s=float(delay.quantile(0.9)) if delay is not None and len(delay) else None,
        metrics=measure(part[labelled]),
        by_version=versions,
    )


def _classes(part: pd.DataFrame, labelled: pd.Series) -> list[str]:
    """Class names: those of the ``p.*`` columns in log order, then any other label or
    prediction seen, sorted."""
    classes = [c[2:] for c in part.columns if c.startswith("p.")]
    labels = class_names(part.loc[labelled, "label"])
    seen = set(labels) | set(class_names(part.loc[labelled, "prediction"]))
    return classes + sorted(seen - set(classes))


def _classification_metrics(
    rows: pd.DataFrame, classes: list[str], positive_label: Any
) -> dict[str, float | None]:
    index = {c: i for i, c in enumerate(classes)}
    y_true = np.array([index[v] for v in class_names(rows["label"])], dtype=np.int64)
    y_pred = np.array([index[v] for v in class_names(rows["prediction"])], dtype=np.int64)
    p_cols = [c for c in rows.columns if c.startswith("p.")]
    scores = None
    if p_cols:
        scores = np.zeros((len(rows), len(classes)))
        scores[:, : len(p_cols)] = rows[p_cols].to_numpy(dtype="float64", na_value=np.nan)
        if np.isnan(scores).any():  # rows logged without probabilities: no score metrics
            scores = None
    binary = len(classes) <= 2
    positive = index.get(positive_class(classes, positive_label), 1) if binary else 0
    r = kernels.Rows(
        BINARY if binary else MULTICLASS,
        y_true,
        y_pred,
        scores,
        n_classes=max(len(classes), 2),
        positive=positive,
    )
    names = [m for m in CLASSIFICATION_METRICS if scores is not None or m in _LABEL_ONLY]
    return {m: json_float(kernels.point(r, m)) for m in names}


_LABEL_ONLY = frozenset({"accuracy", "precision", "recall", "f1"})


def _regression_metrics(rows: pd.DataFrame) -> dict[str, float | None]:
    y_true = rows["value"].to_numpy(dtype="float64")
    y_pred = pd.to_numeric(rows["prediction"], errors="coerce").to_numpy(dtype="float64")
    ok = np.isfinite(y_pred)
    r = kernels.Rows(REGRESSION, y_true[ok], y_pred[ok])
    return {m: json_float(kernels.point(r, m)) if ok.any() else None for m in REGRESSION_METRICS}


# --- serving health -------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthRow:
    """Volume, errors and latency of one model version and variant in one window."""

    start: datetime | None
    end: datetime | None
    model_version: str
    variant: str
    rows: int
    requests: int
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_mean_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "model_version": self.model_version,
            "variant": self.variant,
            "rows": self.rows,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": json_float(self.error_rate),
            "latency_p50_ms": json_float(self.latency_p50_ms),
            "latency_p99_ms": json_float(self.latency_p99_ms),
            "latency_mean_ms": json_float(self.latency_mean_ms),
        }


def serving_health(
    predictions: pd.DataFrame, *, window: str | pd.Timedelta | None = None
) -> list[HealthRow]:
    """Rows, requests, errors and latency per model version and variant.

    Args:
        predictions: the prediction log (``timestamp``, ``model_version``, ``variant``,
            ``status``, ``latency_ms``, ``request_id``).
        window: a fixed duration to cut the log into windows; None: one window.

    Returns:
        one :class:`HealthRow` per window, version and variant, in that order. ``rows``
        counts logged rows (one per instance), ``requests`` distinct ``request_id`` values;
        an error is a row whose ``status`` is not ``ok``; latency percentiles are over all
        rows with a latency.
    """
    out = []
    for start, end, part in _windows(predictions, window):
        keys = [
            part[c].astype("string").fillna("") if c in part.columns else pd.Series("", part.index)
            for c in ("model_version", "variant")
        ]
        for (version, variant), rows in part.groupby(keys, sort=True):
            status = rows["status"] if "status" in rows.columns else pd.Series("ok", rows.index)
            errors = int((status.fillna("ok") != "ok").sum())
            latency = (
                rows["latency_ms"].astype("float64").dropna()
                if "latency_ms" in rows.columns
                else pd.Series(dtype="float64")
            )
            has_id = "request_id" in rows.columns
            out.append(
                HealthRow(
                    start=start,
                    end=end,
                    model_version=str(version),
                    variant=str(variant),
                    rows=len(rows),
                    requests=int(rows["request_id"].nunique()) if has_id else len(rows),
                    errors=errors,
                    error_rate=errors / len(rows),
                    latency_p50_ms=float(latency.quantile(0.5)) if len(latency) else None,
                    latency_p99_ms=float(latency.quantile(0.99)) if len(latency) else None,
                    latency_mean_ms=float(latency.mean()) if len(latency) else None,
                )
            )
    return out


# --- helpers --------------------------------------------------------------------------------


def _windows(
    frame: pd.DataFrame, window: str | pd.Timedelta | None
) -> Iterator[tuple[datetime | None, datetime | None, pd.DataFrame]]:
    """Non-empty windows ``[start, end)`` aligned on multiples of ``window``, oldest first."""
    if len(frame) == 0:
        return
    if "timestamp" not in frame.columns:
        if window is not None:
            raise InvalidInput("windows need a 'timestamp' column")
        yield None, None, frame
        return
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    if window is None:
        yield _time(ts.min()), _time(ts.max()), frame
        return
    try:
        step = pd.Timedelta(window)
    except ValueError:
        raise InvalidInput(
            f"window={window!r} is not a fixed duration: use e.g. '15min', '1h', '1D'"
        ) from None
    if step <= pd.Timedelta(0):
        raise InvalidInput(f"window={window!r} must be longer than zero")
    starts = ts.dt.floor(step)
    for start, part in frame.groupby(starts, sort=True):
        begin = pd.Timestamp(cast(Any, start))
        yield _time(begin), _time(begin + step), part


def _time(value: Any) -> datetime | None:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _metrics_dict(metrics: dict[str, float | None] | None) -> dict[str, float | None] | None:
    return None if metrics is None else {k: json_float(v) for k, v in metrics.items()}
