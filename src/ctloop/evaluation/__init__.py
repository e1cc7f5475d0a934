"""Evaluating models on a holdout, and gating a candidate against the champion.

::

    from ctloop.evaluation import Gate, evaluate, evaluate_champion

    candidate = evaluate(model, X_holdout, y_holdout)            # logged to the active run
    champion = evaluate_champion(client, "churn", X_holdout, y_holdout)   # None at first
    result = Gate(["f1 >= 0.6"], bootstrap={"metric": "roc_auc"}).check(candidate, champion)
    print(result)
    if result.passed:
        ...

Names load lazily: importing this package does not import numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "BootstrapCheck": "ctloop.evaluation.gate",
    "BootstrapInterval": "ctloop.evaluation.bootstrap",
    "CheckResult": "ctloop.evaluation.result",
    "Evaluation": "ctloop.evaluation.scoring",
    "Gate": "ctloop.evaluation.gate",
    "GateResult": "ctloop.evaluation.result",
    "Improvement": "ctloop.evaluation.gate",
    "Threshold": "ctloop.evaluation.gate",
    "evaluate": "ctloop.evaluation.scoring",
    "evaluate_champion": "ctloop.evaluation.scoring",
    "evaluate_predictions": "ctloop.evaluation.scoring",
    "metric_interval": "ctloop.evaluation.bootstrap",
    "paired_bootstrap": "ctloop.evaluation.bootstrap",
}

__all__ = [
    "BootstrapCheck",
    "BootstrapInterval",
    "CheckResult",
    "Evaluation",
    "Gate",
    "GateResult",
    "Improvement",
    "Threshold",
    "evaluate",
    "evaluate_champion",
    "evaluate_predictions",
    "metric_interval",
    "paired_bootstrap",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ctloop.evaluation.bootstrap import BootstrapInterval, metric_interval, paired_bootstrap
    from ctloop.evaluation.gate import BootstrapCheck, Gate, Improvement, Threshold
    from ctloop.evaluation.result import CheckResult, GateResult
    from ctloop.evaluation.scoring import (
        Evaluation,
        evaluate,
        evaluate_champion,
        evaluate_predictions,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctloop.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
