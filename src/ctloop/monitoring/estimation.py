"""Estimated performance: how good are the predictions likely to be, before labels arrive?

:class:`ConfidenceBasedEstimator` implements confidence-based performance estimation (the
CBPE idea NannyML describes): calibrate the model's probabilities on labelled reference
data, then read expected confusion counts — and so expected accuracy, F1 and ROC AUC — off
the calibrated probabilities of unlabelled rows, with an error band per metric.

Results are dataclasses with ``to_dict()`` returning plain JSON values (NaN → None).
``docs/monitoring.md`` explains the method and its limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ctloop.errors import InvalidInput
from ctloop.evaluation import kernels
from ctloop.evaluation.metrics import BINARY, MULTICLASS
from ctloop.monitoring._common import class_names, json_float, positive_class

if TYPE_CHECKING:
    from typing import Self

__all__ = ["ConfidenceBasedEstimator", "EstimatedPerformance", "MetricEstimate"]

#: Metrics :class:`ConfidenceBasedEstimator` can estimate.
ESTIMABLE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class MetricEstimate:
    """One estimated metric with its error band.

    Attributes:
        metric: the metric name.
        value: the estimate.
        sigma: the standard deviation of (realised − estimated) on reference samples of
            this window's size: how far the realised value typically lands from the estimate.
        lower, upper: ``value ∓ z·sigma``, clipped to the metric's range [0, 1].
        reference: the realised value on the whole reference data.
    """

    metric: str
    value: float | None
    sigma: float | None
    lower: float | None
    upper: float | None
    reference: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": json_float(self.value),
            "sigma": json_float(self.sigma),
            "lower": json_float(self.lower),
            "upper": json_float(self.upper),
            "reference": json_float(self.reference),
        }


@dataclass(frozen=True)
class EstimatedPerformance:
    """Estimated performance of one window of unlabelled predictions."""

    rows: int
    z: float
    metrics: dict[str, MetricEstimate]

    def __getitem__(self, metric: str) -> MetricEstimate:
        return self.metrics[metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "z": self.z,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
        }


class ConfidenceBasedEstimator:
    """Estimate a classifier's accuracy, F1 and ROC AUC from its probabilities alone.

    ``fit`` learns, on labelled reference data, a monotone map from each class's score to
    the observed frequency of that class (isotonic regression, one-vs-rest; binary models
    calibrate the positive class only). ``estimate`` applies it to unlabelled rows: a row
    whose calibrated probability of class *k* is ``q`` is, in expectation, ``q`` of a
    true *k* and ``1 − q`` of something else, so summing gives expected confusion counts:

    - accuracy: the mean calibrated probability of the predicted class;
    - precision, recall, F1: from expected TP (Σ q of the predicted class over rows
      predicted *k*), predicted count and expected actual count (Σ q of *k*) per class;
      binary: of the positive class; multiclass: macro;
    - ROC AUC: the ROC curve of expected TPR and FPR at every threshold of the model's
      own score (the rows ranked by the raw score, weighted by ``q`` and ``1 − q``),
      integrated by the trapezoid rule; multiclass: macro one-vs-rest.

    The band: the realised metric of *n* rows scatters around its expected value even when
    the estimate is exact. For a window of *n* rows, the estimator draws ``chunks``
    bootstrap samples of *n* reference rows, computes realised and estimated value on
    each, and reports ``sigma`` = the standard deviation of their difference, and
    ``value ± z·sigma``. The reference's calibrated probabilities for this are
    cross-fitted (five folds), so the band also carries the calibration's own error.

    The estimate holds while P(label | features) is unchanged (covariate shift, within
    the region the reference covered). Concept drift — the same inputs, new labels — is
    invisible to it; only realised performance shows that.

    Args:
        metrics: which of ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc``.
        calibration: ``"isotonic"``, or None to trust the model's probabilities as they are.
        positive_label: the positive class of a binary model; default ``1``/``True`` when
            the classes are those, else the last class in sorted order.
        z: band half-width in sigmas (2 ≈ 95 % when the errors are normal).
        chunks: bootstrap samples of the reference per window size.
        seed: for the folds and the bootstrap.
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("accuracy", "f1", "roc_auc"),
        calibration: str | None = "isotonic",
        positive_label: Any = None,
        *,
        z: float = 2.0,
        chunks: int = 100,
        seed: int = 0,
    ) -> None:
        self.metrics = metrics
        self.calibration = calibration
        self.positive_label = positive_label
        self.z = z
        self.chunks = chunks
        self.seed = seed

    def fit(self, probabilities: Any, labels: Any, predictions: Any = None) -> Self:
        """Calibrate on labelled reference data.

        Args:
            probabilities: a DataFrame with one column per class (``p.<class>`` or
                ``<class>``), an ``(n, k)`` array whose columns are the sorted classes of
                ``labels``, or, for a binary model, a 1-d array of positive-class scores.
            labels: the true classes.
            predictions: the model's predicted classes; default: the most probable class.
        """
        unknown = [m for m in self.metrics if m not in ESTIMABLE_METRICS]
        if unknown:
            raise InvalidInput(f"cannot estimate {unknown}: choose from {ESTIMABLE_METRICS}")
        if self.calibration not in ("isotonic", None):
            raise InvalidInput(f"calibration={self.calibration!r}: use 'isotonic' or None")
        names = class_names(pd.Series(np.asarray(labels, dtype=object)))
        seen = sorted(set(names))
        positive = positive_class(seen, self.positive_label) if len(seen) == 2 else None
        self.classes_, scores = _score_matrix(probabilities, seen, None, positive)
        if len(self.classes_) < 2:
            raise InvalidInput("the reference has one class only; need at least two")
        index = {c: i for i, c in enumerate(self.classes_)}
        unseen = sorted(set(names) - set(index))
        if unseen:
            raise InvalidInput(f"labels {unseen} have no probability column {self.classes_}")
        y = np.array([index[v] for v in names], dtype=np.int64)
        if len(y) != len(scores):
            raise InvalidInput(f"{len(scores)} probability rows but {len(y)} labels")
        self.positive_ = index[positive_class(self.classes_, self.positive_label)]
        pred = self._predicted(scores, predictions)
        self.calibrators_ = self._fit_calibrators(scores, y)
        q = _cross_fitted(self, scores, y)
        self._reference = (scores, q, pred, y)
        self.reference_metrics_ = {
            m: json_float(kernels.point(self._rows(y, pred, scores), m)) for m in self.metrics
        }
        self._sigma_cache: dict[int, dict[str, float]] = {}
        return self

    def estimate(self, probabilities: Any, predictions: Any = None) -> EstimatedPerformance:
        """Expected metrics of unlabelled rows, with their error bands."""
        if not hasattr(self, "classes_"):
            raise InvalidInput("the estimator is not fitted: call fit(...) on reference data")
        positive = self.classes_[self.positive_]
        _, scores = _score_matrix(probabilities, self.classes_, self.classes_, positive)
        pred = self._predicted(scores, predictions)
        n = len(scores)
        values = _expected(self, scores, self.calibrate(scores), pred) if n else {}
        sigma = self._sigma(n) if n else {}
        out = {}
        for m in self.metrics:
            v, s = json_float(values.get(m)), sigma.get(m)
            lo = hi = None
            if v is not None and s is not None and math.isfinite(s):
                lo, hi = max(0.0, v - self.z * s), min(1.0, v + self.z * s)
            out[m] = MetricEstimate(m, v, json_float(s), lo, hi, self.reference_metrics_.get(m))
        return EstimatedPerformance(rows=n, z=self.z, metrics=out)

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities for an ``(n, k)`` score matrix."""
        return _apply_calibrators(self.calibrators_, scores, self.positive_)

    # internals

    def _predicted(self, scores: np.ndarray, predictions: Any) -> np.ndarray:
        if predictions is None:
            return np.asarray(scores.argmax(axis=1), dtype=np.int64)
        index = {c: i for i, c in enumerate(self.classes_)}
        names = class_names(pd.Series(np.asarray(predictions, dtype=object)))
        unknown = sorted(set(names) - set(index))
        if unknown:
            raise InvalidInput(f"predictions {unknown} are not among the classes {self.classes_}")
        return np.array([index[v] for v in names], dtype=np.int64)

    def _fit_calibrators(self, scores: np.ndarray, y: np.ndarray) -> list[Any] | None:
        if self.calibration is None:
            return None
        from sklearn.isotonic import IsotonicRegression

        columns = [self.positive_] if len(self.classes_) == 2 else range(len(self.classes_))
        out: list[Any] = [None] * len(self.classes_)
        for k in columns:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            out[k] = iso.fit(scores[:, k], (y == k).astype(np.float64))
        return out

    def _rows(self, y: np.ndarray, pred: np.ndarray, scores: np.ndarray) -> kernels.Rows:
        k = len(self.classes_)
        return kernels.Rows(
            BINARY if k == 2 else MULTICLASS, y, pred, scores, n_classes=k, positive=self.positive_
        )

    def _sigma(self, n: int) -> dict[str, float]:
        """Std of (realised − estimated) over bootstrap samples of ``n`` reference rows."""
        if n not in self._sigma_cache:
            scores, q, pred, y = self._reference
            rng = np.random.default_rng([self.seed, n])
            diffs: dict[str, list[float]] = {m: [] for m in self.metrics}
            for _ in range(self.chunks):
                i = rng.integers(0, len(y), n)
                expected = _expected(self, scores[i], q[i], pred[i])
                rows = self._rows(y[i], pred[i], scores[i])
                for m in self.metrics:
                    diffs[m].append(kernels.point(rows, m) - expected[m])
            self._sigma_cache[n] = {m: _nanstd(d) for m, d in diffs.items()}
        return self._sigma_cache[n]


def _cross_fitted(est: ConfidenceBasedEstimator, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Calibrated reference probabilities, each row from calibrators fitted without it."""
    if est.calibration is None:
        return _apply_calibrators(None, scores, est.positive_)
    from sklearn.model_selection import KFold

    q = np.empty_like(scores)
    folds = KFold(n_splits=min(5, len(y)), shuffle=True, random_state=est.seed)
    for train, test in folds.split(scores):
        fitted = est._fit_calibrators(scores[train], y[train])
        q[test] = _apply_calibrators(fitted, scores[test], est.positive_)
    return q


def _apply_calibrators(calibrators: list[Any] | None, scores: np.ndarray, positive: int) -> Any:
    if calibrators is None:
        total = scores.sum(axis=1, keepdims=True)
        return scores / np.where(total > 0, total, 1.0)
    if len(calibrators) == 2:
        p = calibrators[positive].predict(scores[:, positive])
        q = np.empty_like(scores)
        q[:, positive], q[:, 1 - positive] = p, 1.0 - p
        return q
    q = np.column_stack([c.predict(scores[:, k]) for k, c in enumerate(calibrators)])
    total = q.sum(axis=1, keepdims=True)
    # one-vs-rest maps need not sum to 1; a row they all map to 0 keeps the model's scores
    return np.where(total > 0, q / np.where(total > 0, total, 1.0), scores)


def _expected(
    est: ConfidenceBasedEstimator, scores: np.ndarray, q: np.ndarray, pred: np.ndarray
) -> dict[str, float]:
    """Expected metric values given calibrated probabilities ``q`` (see the class doc)."""
    n, k = q.shape
    pred_onehot = np.zeros((n, k))
    pred_onehot[np.arange(n), pred] = 1.0
    tp = (q * pred_onehot).sum(axis=0)
    predicted = pred_onehot.sum(axis=0)
    actual = q.sum(axis=0)
    binary = k == 2
    out = {}
    for m in est.metrics:
        if m == "accuracy":
            out[m] = float(tp.sum() / n)
            continue
        if m == "roc_auc":
            cols = [est.positive_] if binary else range(k)
            per_class = np.array([_expected_auc(scores[:, c], q[:, c]) for c in cols])
        else:
            den = {"precision": predicted, "recall": actual, "f1": (predicted + actual) / 2}[m]
            per_class = np.where(den > 0, tp / np.where(den > 0, den, 1.0), 0.0)
            if binary:
                per_class = per_class[[est.positive_]]
            else:
                per_class = np.where(predicted + actual > 0, per_class, np.nan)
        out[m] = float(np.nanmean(per_class)) if np.isfinite(per_class).any() else math.nan
    return out


def _expected_auc(score: np.ndarray, q: np.ndarray) -> float:
    """Area under the ROC curve of expected TPR and FPR over the thresholds of ``score``."""
    order = np.argsort(-score, kind="stable")
    s, w = score[order], q[order]
    tp, fp = np.cumsum(w), np.cumsum(1.0 - w)
    if tp[-1] <= 0 or fp[-1] <= 0:
        return math.nan
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last row of each tied score
    tpr = np.r_[0.0, tp[ends] / tp[-1]]
    fpr = np.r_[0.0, fp[ends] / fp[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _score_matrix(
    probabilities: Any, classes: list[str], expected: list[str] | None, positive: str | None
) -> tuple[list[str], np.ndarray]:
    """(class names, ``(n, k)`` float scores) from the accepted probability shapes; 1-d
    scores are those of the ``positive`` class of a binary model."""
    if isinstance(probabilities, pd.DataFrame):
        names = [str(c).removeprefix("p.") for c in probabilities.columns]
        matrix = probabilities.to_numpy(dtype="float64")
        if expected is not None:
            missing = sorted(set(expected) - set(names))
            if missing:
                raise InvalidInput(f"no probability column for classes {missing}")
            matrix = matrix[:, [names.index(c) for c in expected]]
            names = list(expected)
    else:
        matrix = np.asarray(probabilities, dtype="float64")
        names = list(expected if expected is not None else classes)
        if matrix.ndim == 1:
            if len(names) != 2 or positive is None:
                raise InvalidInput(
                    f"1-d probabilities mean a binary model, but the classes are {names}"
                )
            pair = [1.0 - matrix, matrix] if names[1] == positive else [matrix, 1.0 - matrix]
            matrix = np.column_stack(pair)
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise InvalidInput(
                f"probabilities of shape {matrix.shape} do not match the classes {names}; "
                "pass a DataFrame with one column per class"
            )
    if not np.isfinite(matrix).all():
        raise InvalidInput("probabilities contain NaN or infinite values; drop those rows first")
    return names, matrix


def _nanstd(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
