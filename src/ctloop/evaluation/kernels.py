"""Metric values for many row weightings at once.

Every metric is computed from per-row data (:class:`Rows`) and a matrix of row weights
``W`` of shape ``(B, n)``: row ``b`` of ``W`` says how often each holdout row counts in
replicate ``b``. The reported value is ``W = ones((1, n))``; a bootstrap resample is ``W``
= how many times each row was drawn. One implementation serves both, so the value a gate
reads and the bootstrap around it can never disagree, and ``B`` resamples cost a few
matrix products instead of ``B`` Python loops. Definitions: :mod:`ctloop.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ctloop.evaluation.metrics import BINARY, spec

__all__ = ["Rows", "compute", "point"]


class Rows:
    """The per-row data of one evaluation, and what the metric kernels derive from it.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true: class indices (int) for classification, values (float) for regression.
        y_pred: predicted class indices, or predicted values.
        scores: ``(n, k)`` class scores in class-index order (classification), or None.
        n_classes: ``k`` (classification).
        positive: index of the positive class (binary).
    """

    def __init__(
        self,
        task: str,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        scores: np.ndarray | None = None,
        n_classes: int = 0,
        positive: int = 1,
    ) -> None:
        self.task = task
        self.y_true = y_true
        self.y_pred = y_pred
        self.scores = scores
        self.n_classes = n_classes
        self.positive = positive
        self.n = len(y_true)

    # --- derived per-row arrays (computed once, reused by every replicate) --------------

    @cached_property
    def correct(self) -> np.ndarray:
        return (self.y_true == self.y_pred).astype(np.float64)

    @cached_property
    def true_onehot(self) -> np.ndarray:
        return _onehot(self.y_true, self.n_classes)

    @cached_property
    def pred_onehot(self) -> np.ndarray:
        return _onehot(self.y_pred, self.n_classes)

    @cached_property
    def hit_onehot(self) -> np.ndarray:
        return self.true_onehot * self.pred_onehot

    @cached_property
    def row_log_loss(self) -> np.ndarray:
        assert self.scores is not None
        eps = np.finfo(np.float64).eps
        p = self.scores[np.arange(self.n), self.y_true]
        return -np.log(np.clip(p, eps, 1 - eps))

    @cached_property
    def error(self) -> np.ndarray:
        return self.y_pred - self.y_true

    @cached_property
    def centred_y(self) -> np.ndarray:
        # R² is shift-invariant; centring first keeps W @ y² - n·mean² from cancelling
        return self.y_true - self.y_true.mean()

    def auc_parts(self, column: int) -> AucParts:
        """What the ROC AUC of class ``column`` against the rest needs, computed once."""
        cache: dict[int, AucParts] = self.__dict__.setdefault("_auc_parts", {})
        if column not in cache:
            assert self.scores is not None
            score = self.scores[:, column]
            is_pos = self.y_true == column
            positives = np.flatnonzero(is_pos)
            negatives = np.flatnonzero(~is_pos)
            negatives = negatives[np.argsort(score[negatives], kind="stable")]
            neg_scores = score[negatives]
            below = np.searchsorted(neg_scores, score[positives], side="left")
            upto = np.searchsorted(neg_scores, score[positives], side="right")
            tied = bool(np.any(upto > below))
            cache[column] = AucParts(positives, negatives, below, upto if tied else None)
        return cache[column]


@dataclass(frozen=True)
class AucParts:
    """Rows of one class (``positives``), the other rows sorted by score (``negatives``),
    and for each positive how many negatives score below it (``below``) and at most as
    much (``upto``; None when no positive ties a negative)."""

    positives: np.ndarray
    negatives: np.ndarray
    below: np.ndarray
    upto: np.ndarray | None


def _onehot(index: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(index), k), dtype=np.float64)
    out[np.arange(len(index)), index] = 1.0
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, 0.0)


# --- kernels: (rows, W) -> one value per row of W -------------------------------------------


def _accuracy(r: Rows, w: np.ndarray) -> np.ndarray:
    return np.asarray((w @ r.correct) / w.sum(axis=1))


def _counts(r: Rows, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per replicate and class: true positives, predicted count, true count (B × k)."""
    return w @ r.hit_onehot, w @ r.pred_onehot, w @ r.true_onehot


def _per_class(kind: str, tp: np.ndarray, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    if kind == "precision":
        return _ratio(tp, pred)
    if kind == "recall":
        return _ratio(tp, true)
    return _ratio(2 * tp, pred + true)


def _averaged(kind: str, average: str) -> Callable[[Rows, np.ndarray], np.ndarray]:
    def kernel(r: Rows, w: np.ndarray) -> np.ndarray:
        tp, pred, true = _counts(r, w)
        values = _per_class(kind, tp, pred, true)
        if r.task == BINARY:
            return np.asarray(values[:, r.positive])
        if average == "weighted":
            return _ratio((values * true).sum(axis=1), true.sum(axis=1))
        present = (pred + true) > 0  # classes among the true or predicted labels
        return _ratio((values * present).sum(axis=1), present.sum(axis=1).astype(np.float64))

    return kernel


def _auc_one(r: Rows, w: np.ndarray, column: int) -> np.ndarray:
    """Weighted ROC AUC of one class against the rest, ties counted half (Mann-Whitney U).

    The negatives are sorted by score once. Per replicate, a cumulative sum of their
    weights in that order gives, for every positive, the weight of the negatives scoring
    below it (a gather at a precomputed position), so B replicates cost O(B·n) with no
    per-replicate sort.
    """
    p = r.auc_parts(column)
    cum = np.zeros((w.shape[0], len(p.negatives) + 1))
    np.cumsum(w[:, p.negatives], axis=1, out=cum[:, 1:])
    below = cum[:, p.below]
    if p.upto is not None:
        below += 0.5 * (cum[:, p.upto] - below)
    w_pos = w[:, p.positives]
    num = (w_pos * below).sum(axis=1)
    den = w_pos.sum(axis=1) * cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _roc_auc(r: Rows, w: np.ndarray) -> np.ndarray:
    if r.task == BINARY:
        return _auc_one(r, w, r.positive)
    per_class = np.stack([_auc_one(r, w, c) for c in range(r.n_classes)], axis=1)
    defined = ~np.isnan(per_class)
    total = np.where(defined, per_class, 0.0).sum(axis=1)
    count = defined.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _log_loss(r: Rows, w: np.ndarray) -> np.ndarray:
    return np.asarray((w @ r.row_log_loss) / w.sum(axis=1))


def _rmse(r: Rows, w: np.ndarray) -> np.ndarray:
    return np.asarray(np.sqrt((w @ (r.error**2)) / w.sum(axis=1)))


def _mae(r: Rows, w: np.ndarray) -> np.ndarray:
    return np.asarray((w @ np.abs(r.error)) / w.sum(axis=1))


def _r2(r: Rows, w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1)
    y = r.centred_y
    mean = (w @ y) / total
    ss_tot = np.maximum(w @ (y**2) - total * mean**2, 0.0)
    ss_res = w @ (r.error**2)
    # scikit-learn's force_finite: a constant target scores 1 when predicted exactly, else 0
    constant = ss_tot <= 1e-12 * (w @ (y**2))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 1.0 - ss_res / np.where(constant, 1.0, ss_tot)
    return np.where(constant, np.where(ss_res == 0, 1.0, 0.0), value)


_KERNELS: dict[str, Callable[[Rows, np.ndarray], np.ndarray]] = {
    "accuracy": _accuracy,
    "precision": _averaged("precision", "macro"),
    "recall": _averaged("recall", "macro"),
    "f1": _averaged("f1", "macro"),
    "precision_weighted": _averaged("precision", "weighted"),
    "recall_weighted": _averaged("recall", "weighted"),
    "f1_weighted": _averaged("f1", "weighted"),
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}


def compute(rows: Rows, name: str, weights: np.ndarray | None = None) -> np.ndarray:
    """Metric ``name`` for each row of ``weights`` (default: every row once → one value).

    Args:
        rows: the per-row data.
        name: a metric name (aliases allowed).
        weights: ``(B, n)`` non-negative row weights, e.g. bootstrap counts.

    Returns:
        An array of ``B`` values (NaN where the metric is undefined, such as ROC AUC on a
        resample with one class only).
    """
    kernel = _KERNELS[spec(name).name]
    w = np.ones((1, rows.n)) if weights is None else weights
    return kernel(rows, w)


def point(rows: Rows, name: str) -> float:
    """The value of metric ``name`` on all rows, as a float (NaN when undefined)."""
    return float(compute(rows, name)[0])
