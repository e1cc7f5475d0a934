"""Multivariate drift: the domain classifier."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.datasets import churn
from ctloop.errors import InvalidInput
from ctloop.monitoring.multivariate import domain_classifier


def as_json(value: Any) -> Any:
    """Round-trip through strict JSON: fails on NaN, numpy scalars and datetimes."""
    return json.loads(json.dumps(value, allow_nan=False))


def test_domain_classifier_sees_no_drift_between_samples_of_one_distribution() -> None:
    reference = churn.generate(2_000, seed=4)
    current = churn.generate(2_000, seed=4, offset=2_000)
    # default columns: the shared ones minus event_time, which would separate the periods
    result = domain_classifier(reference, current, cv=3)
    assert "event_time" not in result.columns and "age" in result.columns
    assert abs(result.roc_auc - 0.5) < 0.05
    assert not result.drifted
    assert result.reference_rows == result.current_rows == 2_000
    assert as_json(result.to_dict())["drifted"] is False


def test_domain_classifier_flags_a_shifted_feature_and_ranks_it_first() -> None:
    shift = churn.Drift(start=0, kind="covariate", features={"age": {"shift": 12.0}})
    reference = churn.generate(2_000, seed=4)
    current = churn.generate(2_000, seed=4, offset=2_000, drift=[shift])
    result = domain_classifier(reference[churn.FEATURES], current[churn.FEATURES], cv=3)
    assert result.drifted and result.roc_auc > 0.7
    assert result.top_features[0] == "age"
    importances = [v for _, v in result.importances]
    assert importances == sorted(importances, reverse=True)
    assert importances[0] > 5 * max(importances[1], 0.01)
    out = as_json(result.to_dict())
    assert out["importances"][0]["feature"] == "age"


def test_domain_classifier_subsamples_and_handles_missing_and_text() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=3_000), "kind": rng.choice(["a", "b", None], 3_000)})
    cur = pd.DataFrame({"x": rng.normal(size=900), "kind": rng.choice(["a", "c"], 900)})
    ref.loc[::7, "x"] = np.nan
    result = domain_classifier(ref, cur, cv=3, max_rows=1_000)
    assert (result.reference_rows, result.current_rows) == (1_000, 900)
    assert result.drifted and result.top_features[0] == "kind"  # a new level, no missing


def test_domain_classifier_rejects_bad_arguments() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0)})
    with pytest.raises(InvalidInput, match="not in both frames"):
        domain_classifier(frame, frame, columns=["y"])
    with pytest.raises(InvalidInput, match="at least 2 folds"):
        domain_classifier(frame, frame, cv=1)
    with pytest.raises(InvalidInput, match="need at least cv=5"):
        domain_classifier(frame, frame.head(3))
