"""The metrics ctloop evaluates models with, and which way each one is better.

This module names the metrics and says which way each is better (pure Python, so a gate
spec can be read without numpy); :mod:`ctloop.evaluation.kernels` computes them.

Classification (``binary`` and ``multiclass``):

=================== ============ =========================================================
metric              better       definition
=================== ============ =========================================================
``accuracy``        higher       share of rows whose predicted label is the true one
``precision``       higher       binary: of the positive class; multiclass: macro average
``recall``          higher       binary: of the positive class; multiclass: macro average
``f1``              higher       binary: of the positive class; multiclass: macro average
``roc_auc``         higher       binary: of the positive class's score; multiclass: macro
                                 average of one-vs-rest AUCs
``log_loss``        lower        mean negative log probability of the true class (needs
                                 ``predict_proba``), probabilities clipped to [eps, 1-eps]
``*_weighted``      higher       multiclass only: precision/recall/f1 averaged with class
                                 support as weights
=================== ============ =========================================================

Multiclass averaging is **macro** for ``precision``, ``recall`` and ``f1``: every class
counts the same, so a model that gives up on a rare class is penalised even when it is
right on the common ones. The support-weighted averages are reported next to them as
``precision_weighted``, ``recall_weighted`` and ``f1_weighted``. A class takes part in an
average when it occurs among the true or the predicted labels, as in scikit-learn.

Regression: ``rmse`` (lower), ``mae`` (lower), ``r2`` (higher).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctloop.errors import InvalidInput

__all__ = [
    "ALIASES",
    "METRICS",
    "MetricSpec",
    "available",
    "canonical",
    "higher_is_better",
    "improvement",
    "spec",
]

BINARY = "binary"
MULTICLASS = "multiclass"
REGRESSION = "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
_CLASSIFICATION = frozenset({BINARY, MULTICLASS})


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name, which way is better, and the tasks it applies to."""

    name: str
    higher_is_better: bool
    tasks: frozenset[str]
    needs_probabilities: bool = False
    needs_scores: bool = False
    description: str = ""


METRICS: dict[str, MetricSpec] = {
    s.name: s
    for s in (
        MetricSpec("accuracy", True, _CLASSIFICATION, description="share of correct labels"),
        MetricSpec("precision", True, _CLASSIFICATION, description="positive/macro precision"),
        MetricSpec("recall", True, _CLASSIFICATION, description="positive/macro recall"),
        MetricSpec("f1", True, _CLASSIFICATION, description="positive/macro F1"),
        MetricSpec(
            "roc_auc", True, _CLASSIFICATION, needs_scores=True, description="ROC AUC (OvR macro)"
        ),
        MetricSpec(
            "log_loss",
            False,
            _CLASSIFICATION,
            needs_probabilities=True,
            description="mean negative log-likelihood of the true class",
        ),
        MetricSpec("precision_weighted", True, frozenset({MULTICLASS})),
        MetricSpec("recall_weighted", True, frozenset({MULTICLASS})),
        MetricSpec("f1_weighted", True, frozenset({MULTICLASS})),
        MetricSpec("rmse", False, frozenset({REGRESSION}), description="root mean squared error"),
        MetricSpec("mae", False, frozenset({REGRESSION}), description="mean absolute error"),
        MetricSpec("r2", True, frozenset({REGRESSION}), description="coefficient of determination"),
    )
}

# Other spellings people use (the demo logs ``auc`` and ``logloss``).
ALIASES: dict[str, str] = {
    "acc": "accuracy",
    "auc": "roc_auc",
    "rocauc": "roc_auc",
    "f1_score": "f1",
    "logloss": "log_loss",
    "cross_entropy": "log_loss",
    "r_squared": "r2",
    "r2_score": "r2",
}


def canonical(name: str) -> str:
    """The registered name of a metric (``auc`` → ``roc_auc``); unknown names unchanged."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


def spec(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of ``name`` (aliases allowed).

    Raises:
        InvalidInput: for a metric ctloop does not know, listing the ones it does.
    """
    found = METRICS.get(canonical(name))
    if found is None:
        raise InvalidInput(
            f"unknown metric {name!r}; use one of {', '.join(METRICS)} "
            f"(or the aliases {', '.join(sorted(ALIASES))})"
        )
    return found


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better (False for losses and errors)."""
    return spec(name).higher_is_better


def improvement(name: str, candidate: Any, champion: Any) -> Any:
    """How much better ``candidate`` is than ``champion`` on metric ``name``.

    This is the one place metric direction is applied: ``candidate - champion`` for
    higher-is-better metrics, ``champion - candidate`` for losses and errors, so a positive
    result always means the candidate is better. Works on floats and numpy arrays alike.
    """
    diff = candidate - champion
    return diff if higher_is_better(name) else -diff


def available(task: str, score_kind: str | None) -> list[str]:
    """The metrics :func:`compute` gives for ``task`` with scores of ``score_kind``.

    ``score_kind`` is ``"probability"`` (from ``predict_proba``), ``"decision"`` (from
    ``decision_function``: ROC AUC but no log loss) or None (labels only).
    """
    out = []
    for s in METRICS.values():
        if task not in s.tasks:
            continue
        if s.needs_probabilities and score_kind != "probability":
            continue
        if s.needs_scores and score_kind is None:
            continue
        out.append(s.name)
    return out
