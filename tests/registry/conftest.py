"""Registry fixtures: a small fitted model, and runs that logged it as a model package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def churn_model() -> tuple[Any, Any]:
    """A fitted scikit-learn classifier and the frame it was trained on."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(
        {"age": [22, 35, 47, 58, 29, 63], "spend": [9.5, 20.0, 31.0, 48.5, 12.0, 55.0]}
    )
    return LogisticRegression().fit(frame, [0, 0, 1, 1, 0, 1]), frame


@pytest.fixture
def model_run(client: Any, churn_model: tuple[Any, Any]) -> Callable[..., str]:
    """Make a run that logged a model package with ``log_model``; returns the run id."""
    model, frame = churn_model

    def make(
        metrics: dict[str, float] | None = None, path: str = "model", experiment: str = "churn"
    ) -> str:
        run = client.runs.create(experiment, capture_code=False)
        if metrics:
            client.runs.log_metrics(run.id, metrics)
        client.runs.log_model(run.id, model, path, input_example=frame)
        return str(run.id)

    return make
