"""Holdouts for the evaluation tests: synthetic data and models fitted on it (helpers)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any


@dataclass
class Holdout:
    """Training rows, holdout rows and models fitted on the training rows."""

    x_train: Any
    y_train: Any
    x: Any
    y: Any
    strong: Any
    weak: Any


def sk_log_loss(y: Any, proba: Any, **kwargs: Any) -> float:
    """scikit-learn's log loss, across its rename of ``y_pred`` to ``y_proba`` (1.9)."""
    from sklearn.metrics import log_loss

    if "y_proba" in inspect.signature(log_loss).parameters:
        return float(log_loss(y, y_proba=proba, **kwargs))
    return float(log_loss(y, proba, **kwargs))


class Columns:
    """A fitted estimator that looks at the first ``k`` columns only (a weaker model)."""

    def __init__(self, model: Any, k: int) -> None:
        self.model = model
        self.k = k
        self._estimator_type = "classifier" if hasattr(model, "classes_") else "regressor"
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_

    def predict(self, x: Any) -> Any:
        return self.model.predict(x[:, : self.k])

    def predict_proba(self, x: Any) -> Any:
        return self.model.predict_proba(x[:, : self.k])
