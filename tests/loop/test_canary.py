"""The canary analysis on prediction-log frames: each check passes, fails or waits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctloop.loop.canary import analyse
from ctloop.loop.policy import (
    ErrorRateCheck,
    LatencyCheck,
    MetricCheck,
    PredictionDriftCheck,
    RolloutChecks,
)


def served(
    version: int,
    n: int,
    *,
    positive: float = 0.4,
    errors: float = 0.0,
    latency: float = 3.0,
    variant: str = "champion",
    scores: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    failed = rng.random(n) < errors
    if scores:
        prediction: list[object] = list(rng.beta(2, 5 if positive < 0.5 else 1, size=n))
    else:
        prediction = list((rng.random(n) < positive).astype(int))
    labels = (rng.random(n) < positive).astype(int)
    return pd.DataFrame(
        {
            "model_version": str(version),
            "variant": variant,
            "status": np.where(failed, "error: boom", "ok"),
            "prediction": [None if f else p for f, p in zip(failed, prediction, strict=True)],
            "latency_ms": rng.uniform(latency * 0.5, latency, size=n),
            "label": labels,
        }
    )


def window(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


ALL = RolloutChecks(
    error_rate=ErrorRateCheck(0.01),
    latency=LatencyCheck(100.0),
    prediction_drift=PredictionDriftCheck("jensenshannon", 0.1),
)


def by_name(analysis: object) -> dict[str, str]:
    return {c.name: c.status for c in analysis.checks}  # type: ignore[attr-defined]


def test_a_healthy_canary_passes_every_check() -> None:
    result = analyse(
        window(served(1, 900, seed=1), served(2, 300, variant="canary", seed=2)),
        champion_version=1,
        canary_version=2,
        checks=ALL,
        min_requests=200,
    )
    assert result.passed and result.requests == {"champion": 900, "canary": 300}
    assert by_name(result) == {
        "error_rate": "passed",
        "latency": "passed",
        "prediction_drift": "passed",
    }
    assert "analysis passed" in result.summary() and "300 canary" in result.summary()


def test_too_few_canary_requests_judge_nothing() -> None:
    result = analyse(
        window(served(1, 900), served(2, 50, variant="canary", errors=1.0)),
        champion_version=1,
        canary_version=2,
        checks=ALL,
        min_requests=200,
    )
    assert not result.enough_requests and not result.passed and result.checks == ()
    assert "waiting for requests: 50 canary" in result.summary()


def test_errors_latency_and_a_shifted_prediction_distribution_fail() -> None:
    result = analyse(
        window(
            served(1, 900, seed=1),
            served(2, 300, variant="canary", errors=0.2, latency=400, positive=0.9, seed=2),
        ),
        champion_version=1,
        canary_version=2,
        checks=ALL,
        min_requests=200,
    )
    assert by_name(result) == {
        "error_rate": "failed",
        "latency": "failed",
        "prediction_drift": "failed",
    }
    error = result.checks[0]
    assert error.values["canary"] > 0.15 and error.values["champion"] == 0.0
    assert "error rate" in result.summary() and "FAILED" in result.summary()


def test_scores_are_compared_in_bins_of_the_champion() -> None:
    checks = RolloutChecks(error_rate=None, prediction_drift=PredictionDriftCheck("psi", 0.2))
    same = analyse(
        window(served(1, 2000, scores=True, seed=1), served(2, 1000, scores=True, seed=2)),
        champion_version=1,
        canary_version=2,
        checks=checks,
        min_requests=100,
    )
    shifted = analyse(
        window(
            served(1, 2000, scores=True, seed=1),
            served(2, 1000, scores=True, positive=0.9, seed=2),
        ),
        champion_version=1,
        canary_version=2,
        checks=checks,
        min_requests=100,
    )
    assert same.passed and "scores psi" in same.checks[0].message
    assert not shifted.passed and shifted.checks[0].values["value"] > 0.2


def test_the_metric_check_waits_for_labels_then_compares() -> None:
    checks = RolloutChecks(
        error_rate=None, prediction_drift=None, metric=MetricCheck("accuracy", 0.02, 100)
    )
    champion = served(1, 500, seed=1)
    champion["prediction"] = champion["label"]  # always right
    canary = served(2, 500, variant="canary", seed=2)  # right by chance
    few = analyse(
        window(champion, canary),
        champion_version=1,
        canary_version=2,
        checks=checks,
        min_requests=10,
        joined=window(champion.iloc[:50], canary.iloc[:50]),
    )
    assert by_name(few) == {"metric": "skipped"} and few.passed
    judged = analyse(
        window(champion, canary),
        champion_version=1,
        canary_version=2,
        checks=checks,
        min_requests=10,
        joined=window(champion, canary),
    )
    metric = judged.checks[0]
    assert metric.status == "failed" and metric.values["champion"] == 1.0
    assert metric.values["canary"] < 0.7


def test_shadow_rows_are_not_the_canary() -> None:
    result = analyse(
        window(served(1, 500), served(2, 500, variant="shadow", errors=1.0)),
        champion_version=1,
        canary_version=2,
        checks=ALL,
        min_requests=1,
    )
    assert result.requests["canary"] == 0 and not result.enough_requests
