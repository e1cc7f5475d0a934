"""Realised performance and serving health."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from ctloop.errors import InvalidInput
from ctloop.monitoring.performance import realised_performance, serving_health
from ctloop.serving.log_reader import joined
from ctloop.serving.payload_log import PayloadLog

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def as_json(value: Any) -> Any:
    """Round-trip through strict JSON: fails on NaN, numpy scalars and datetimes."""
    return json.loads(json.dumps(value, allow_nan=False))


# --- realised performance -------------------------------------------------------------------


def binary_log(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A joined log over three hours: two versions, 2/3 of rows labelled, labels as text."""
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p1).astype(int)
    ts = pd.Series([T0 + timedelta(seconds=18 * i) for i in range(n)])  # 3 h
    delay = pd.to_timedelta(rng.integers(60, 3_600, n), unit="s")
    labelled = np.arange(n) % 3 != 0
    return pd.DataFrame(
        {
            "prediction_id": [f"id{i}" for i in range(n)],
            "timestamp": ts.dt.tz_convert("UTC"),
            "model_version": np.where(np.arange(n) % 2 == 0, "1", "2"),
            "variant": "champion",
            "prediction": (p1 >= 0.5).astype(int),
            "status": "ok",
            "p.0": 1 - p1,
            "p.1": p1,
            "label": pd.Series(y.astype(str), dtype=object).where(labelled),
            "value": np.nan,
            "feedback_time": (ts + delay).where(labelled),
        }
    )


def test_realised_classification_metrics_match_scikit_learn() -> None:
    served = binary_log()
    served.loc[5, ["status", "prediction", "p.0", "p.1"]] = ["error: boom", None, np.nan, np.nan]
    shadow = binary_log(seed=1).assign(variant="shadow", label=None, model_version="9")
    (window,) = realised_performance(pd.concat([served, shadow], ignore_index=True))
    log = served
    ok = log[(log["status"] == "ok") & log["label"].notna()]
    y, pred = ok["label"].astype(int), ok["prediction"].astype(int)
    assert window.task == "binary"
    assert window.predictions == len(log) - 1 and window.labelled == len(ok)
    assert window.label_share == pytest.approx(len(ok) / (len(log) - 1))
    assert window.metrics is not None
    assert window.metrics["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert window.metrics["precision"] == pytest.approx(precision_score(y, pred))
    assert window.metrics["recall"] == pytest.approx(recall_score(y, pred))
    assert window.metrics["f1"] == pytest.approx(f1_score(y, pred))
    assert window.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, ok["p.1"]))
    assert window.metrics["log_loss"] == pytest.approx(log_loss(y, ok[["p.0", "p.1"]]))
    delays = (ok["feedback_time"] - ok["timestamp"]).dt.total_seconds()
    assert window.delay_median_s == pytest.approx(delays.median())
    assert window.delay_p90_s == pytest.approx(delays.quantile(0.9))
    assert [v.model_version for v in window.by_version] == ["1", "2"]
    v1 = ok[ok["model_version"] == "1"]
    assert window.by_version[0].labelled == len(v1)
    assert window.by_version[0].metrics is not None
    assert window.by_version[0].metrics["accuracy"] == pytest.approx(
        accuracy_score(v1["label"].astype(int), v1["prediction"].astype(int))
    )
    assert as_json(window.to_dict())["start"] == T0.isoformat()


def test_realised_windows_and_min_labels() -> None:
    log = binary_log()
    windows = realised_performance(log, window="1h", min_labels=100)
    assert [w.start for w in windows] == [T0 + timedelta(hours=h) for h in range(3)]
    assert all(w.end == w.start + timedelta(hours=1) for w in windows if w.start is not None)
    assert [w.predictions for w in windows] == [200, 200, 200]
    assert all(w.metrics is not None for w in windows)  # ~133 labels each
    first = windows[0].metrics
    hour = log[(log["timestamp"] < T0 + timedelta(hours=1)) & log["label"].notna()]
    assert first is not None
    assert first["accuracy"] == pytest.approx(
        accuracy_score(hour["label"].astype(int), hour["prediction"])
    )
    # per version, ~67 labels each: below min_labels
    assert [v.metrics for v in windows[0].by_version] == [None, None]
    assert [v.labelled for v in windows[0].by_version] == [66, 67]
    with pytest.raises(InvalidInput, match="fixed duration"):
        realised_performance(log, window="1 fortnight")


def test_realised_regression_and_multiclass() -> None:
    rng = np.random.default_rng(1)
    n = 200
    truth = rng.normal(10, 2, n)
    reg = pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=n, freq="1min"),
            "prediction": truth + rng.normal(0, 1, n),
            "value": truth,
            "label": None,
        }
    )
    (window,) = realised_performance(reg)
    assert window.task == "regression" and window.metrics is not None
    assert window.metrics["mae"] == pytest.approx(mean_absolute_error(truth, reg["prediction"]))
    assert window.metrics["r2"] == pytest.approx(r2_score(truth, reg["prediction"]))

    proba = rng.dirichlet([1, 1, 1], n)
    labels = np.array(["a", "b", "c"])
    multi = pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=n, freq="1min"),
            "prediction": labels[proba.argmax(axis=1)],
            "label": labels[[rng.choice(3, p=p) for p in proba]],
            **{f"p.{c}": proba[:, i] for i, c in enumerate(labels)},
        }
    )
    (window,) = realised_performance(multi)
    assert window.task == "multiclass" and window.metrics is not None
    assert window.metrics["f1"] == pytest.approx(
        f1_score(multi["label"], multi["prediction"], average="macro")
    )
    assert window.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(multi["label"], proba, multi_class="ovr", average="macro")
    )


def test_realised_performance_reads_a_real_log(tmp_path: Path) -> None:
    root = str(tmp_path)
    rows, feedback = [], []
    for i in range(40):
        p = 0.9 if i % 2 else 0.2
        rows.append(
            {
                "prediction_id": f"p{i}",
                "timestamp": T0 + timedelta(minutes=i),
                "model_version": "3",
                "variant": "champion",
                "prediction": int(p > 0.5),
                "probabilities": {"0": 1 - p, "1": p},
                "latency_ms": 2.0,
                "status": "ok",
            }
        )
        if i < 30:  # the last ten have no truth yet; every fifth prediction was wrong
            truth = int(p > 0.5) if i % 5 else 1 - int(p > 0.5)
            when = T0 + timedelta(minutes=i, hours=2)
            feedback.append({"prediction_id": f"p{i}", "timestamp": when, "label": truth})
    with PayloadLog(root, "churn", "predictions", replica="r1") as log:
        log.append(rows)
    with PayloadLog(root, "churn", "feedback", replica="r1") as log:
        log.append(feedback)
    (window,) = realised_performance(joined(root, "churn"), min_labels=10)
    assert (window.predictions, window.labelled) == (40, 30)
    assert window.metrics is not None and window.metrics["accuracy"] == pytest.approx(0.8)
    assert window.delay_median_s == pytest.approx(7_200)


# --- serving health -------------------------------------------------------------------------


def test_serving_health_per_version_and_variant() -> None:
    rng = np.random.default_rng(2)
    n = 1_000
    log = pd.DataFrame(
        {
            "request_id": [f"r{i // 4}" for i in range(n)],  # four rows a request
            "timestamp": pd.date_range(T0, periods=n, freq="10s"),
            "model_version": np.where(np.arange(n) % 5 == 0, "2", "1"),
            "variant": np.where(np.arange(n) % 5 == 0, "canary", "champion"),
            "latency_ms": rng.exponential(5, n),
            "status": np.where(np.arange(n) % 50 == 0, "error: timeout", "ok"),
        }
    )
    rows = serving_health(log)
    assert [(r.model_version, r.variant) for r in rows] == [("1", "champion"), ("2", "canary")]
    canary = log[log["variant"] == "canary"]
    r = rows[1]
    assert r.rows == len(canary) == 200
    assert r.requests == canary["request_id"].nunique()
    assert r.errors == 20 and r.error_rate == pytest.approx(0.1)
    assert rows[0].errors == 0
    assert r.latency_p50_ms == pytest.approx(np.quantile(canary["latency_ms"], 0.5))
    assert r.latency_p99_ms == pytest.approx(np.quantile(canary["latency_ms"], 0.99))
    hourly = serving_health(log, window="1h")
    assert sum(h.rows for h in hourly) == n
    assert {h.start for h in hourly} == {T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)}
    assert as_json([h.to_dict() for h in hourly])[0]["start"] == T0.isoformat()
    assert serving_health(log.iloc[:0]) == []
