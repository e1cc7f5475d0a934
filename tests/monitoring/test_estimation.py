"""Estimated performance: the confidence-based estimator."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from ctloop.datasets import churn
from ctloop.errors import InvalidInput
from ctloop.monitoring.estimation import ConfidenceBasedEstimator


def as_json(value: Any) -> Any:
    """Round-trip through strict JSON: fails on NaN, numpy scalars and datetimes."""
    return json.loads(json.dumps(value, allow_nan=False))


def test_estimates_track_realised_performance_under_covariate_shift() -> None:
    shift = churn.Drift(
        start=8_000,
        kind="covariate",
        features={"contract": {"month-to-month": 0.85}, "monthly_charges": {"shift": 10.0}},
    )
    data = churn.generate(20_000, seed=3, drift=[shift])
    train, reference, live = data.iloc[:4_000], data.iloc[4_000:8_000], data.iloc[8_000:]
    model = HistGradientBoostingClassifier(
        max_iter=60, categorical_features="from_dtype", random_state=0
    ).fit(*churn.split(train))
    estimator = ConfidenceBasedEstimator(metrics=("accuracy", "f1", "roc_auc"))
    estimator.fit(model.predict_proba(reference[churn.FEATURES]), reference[churn.TARGET])

    inside = dict.fromkeys(estimator.metrics, 0)
    estimated, realised = [], []
    for w in range(20):
        part = live.iloc[w * 600 : (w + 1) * 600]
        proba = model.predict_proba(part[churn.FEATURES])
        y = part[churn.TARGET].to_numpy()
        truth = {
            "accuracy": accuracy_score(y, proba.argmax(axis=1)),
            "f1": f1_score(y, proba.argmax(axis=1)),
            "roc_auc": roc_auc_score(y, proba[:, 1]),
        }
        result = estimator.estimate(proba)
        for name, value in truth.items():
            m = result[name]
            assert m.lower is not None and m.upper is not None
            inside[name] += m.lower <= value <= m.upper
        estimated.append(result["accuracy"].value)
        realised.append(truth["accuracy"])
    assert all(count >= 17 for count in inside.values()), inside  # z=2: ~95 %
    # the shift costs accuracy, and the estimate sees it without a single label
    before = estimator.reference_metrics_["accuracy"]
    assert np.mean(realised) < before - 0.02
    assert np.mean(estimated) < before - 0.02
    assert abs(np.mean(estimated) - np.mean(realised)) < 0.02
    assert as_json(result.to_dict())["metrics"]["roc_auc"]["reference"] is not None


def test_estimates_for_multiclass_and_one_column_binary_scores() -> None:
    rng = np.random.default_rng(5)
    # a calibrated multiclass model: labels drawn from the probabilities it reports
    proba = rng.dirichlet([2, 2, 2], 6_000)
    labels = np.array([rng.choice(3, p=p) for p in proba])
    frame = pd.DataFrame(proba, columns=["p.x", "p.y", "p.z"])
    estimator = ConfidenceBasedEstimator(metrics=("accuracy", "f1", "roc_auc"), z=3.0)
    estimator.fit(frame.iloc[:3_000], np.array(["x", "y", "z"])[labels[:3_000]])
    assert estimator.classes_ == ["x", "y", "z"]
    result = estimator.estimate(frame.iloc[3_000:][["p.z", "p.y", "p.x"]])  # order by name
    y, pred = labels[3_000:], proba[3_000:].argmax(axis=1)
    truth = {
        "accuracy": accuracy_score(y, pred),
        "f1": f1_score(y, pred, average="macro"),
        "roc_auc": roc_auc_score(y, proba[3_000:], multi_class="ovr"),
    }
    for name, value in truth.items():
        m = result[name]
        assert m.lower is not None and m.upper is not None
        assert m.lower <= value <= m.upper, (name, m, value)

    p1 = rng.uniform(size=4_000)
    y = np.where(rng.uniform(size=4_000) < p1, "yes", "no")
    binary = ConfidenceBasedEstimator(calibration=None).fit(p1[:2_000], y[:2_000])
    assert binary.classes_ == ["no", "yes"]
    est = binary.estimate(p1[2_000:])
    real = accuracy_score(y[2_000:], np.where(p1[2_000:] >= 0.5, "yes", "no"))
    assert est["accuracy"].value == pytest.approx(real, abs=0.03)


def test_estimator_errors() -> None:
    with pytest.raises(InvalidInput, match="not fitted"):
        ConfidenceBasedEstimator().estimate(np.ones((3, 2)) / 2)
    with pytest.raises(InvalidInput, match="cannot estimate"):
        ConfidenceBasedEstimator(metrics=("mae",)).fit(np.full(4, 0.5), [0, 1, 0, 1])
    with pytest.raises(InvalidInput, match="one class only"):
        ConfidenceBasedEstimator().fit(np.full((4, 1), 1.0), [0, 0, 0, 0])
    fitted = ConfidenceBasedEstimator().fit(np.linspace(0, 1, 50), [0, 1] * 25)
    with pytest.raises(InvalidInput, match="do not match the classes"):
        fitted.estimate(np.ones((3, 3)) / 3)
