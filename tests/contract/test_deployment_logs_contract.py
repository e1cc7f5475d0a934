"""``client.deployments.predictions/feedback/joined`` on every backend.

The logs are written the way an inference server writes them (a :class:`PayloadLog` under
the store's artifact root); the client reads them back locally with DuckDB, or over HTTP
through the server's ``/deployments/{name}/logs/{kind}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ctloop.errors import InvalidInput
from ctloop.serving.payload_log import PayloadLog
from ctloop.settings import load_settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _root(client: Any, tmp_path: Path) -> str:
    if client.remote:  # the store the test server serves (see the contract conftest)
        return load_settings(store=str(tmp_path / "served")).artifacts_root()
    return str(client.settings.artifacts_root())


@pytest.fixture
def logged(backend_client: Any, tmp_path: Path) -> Any:
    """Deployment 'churn-api': 3 predictions (two on March 1st, one on the 2nd), 2 labels."""
    root = _root(backend_client, tmp_path)
    with PayloadLog(root, "churn-api", "predictions", replica="r1") as preds:
        for i, day in enumerate((1, 1, 2)):
            preds.append(
                [
                    {
                        "prediction_id": f"p{i}",
                        "request_id": f"r{i}",
                        "timestamp": T0.replace(day=day, minute=i),
                        "model_version": "2",
                        "variant": "champion",
                        "prediction": i % 2,
                        "latency_ms": 1.5,
                        "status": "ok",
                        "features": {"age": 20 + i, "spend": 9.5 * i},
                        "probabilities": {"0": 0.25, "1": 0.75},
                    }
                ]
            )
    with PayloadLog(root, "churn-api", "feedback", replica="r1") as feedback:
        feedback.append(
            [
                {"prediction_id": "p0", "label": 1, "timestamp": T0.replace(hour=13)},
                {"prediction_id": "p2", "label": 0, "timestamp": T0.replace(day=2, hour=13)},
            ]
        )
    return backend_client


def test_predictions_come_back_with_their_features_and_probabilities(logged: Any) -> None:
    frame = logged.deployments.predictions("churn-api")
    assert list(frame["prediction_id"]) == ["p0", "p1", "p2"]
    assert list(frame["f.age"]) == [20, 21, 22]
    assert list(frame["p.1"]) == [0.75] * 3
    assert set(frame["model_version"]) == {"2"} and set(frame["variant"]) == {"champion"}
    assert str(frame["timestamp"].dt.tz) == "UTC"


def test_a_time_window_keeps_only_its_rows(logged: Any) -> None:
    frame = logged.deployments.predictions("churn-api", since="2026-03-02")
    assert list(frame["prediction_id"]) == ["p2"]
    frame = logged.deployments.predictions("churn-api", until=T0.replace(day=2))
    assert list(frame["prediction_id"]) == ["p0", "p1"]


def test_feedback_and_the_joined_view(logged: Any) -> None:
    feedback = logged.deployments.feedback("churn-api")
    assert sorted(feedback["prediction_id"]) == ["p0", "p2"]
    joined = logged.deployments.joined("churn-api").set_index("prediction_id")
    assert joined.loc["p0", "label"] == 1 and joined.loc["p2", "label"] == 0
    assert joined["label"].isna().tolist() == [False, True, False]
    assert len(joined) == 3


def test_an_unlogged_deployment_reads_as_empty_with_the_core_columns(backend_client: Any) -> None:
    frame = backend_client.deployments.predictions("never-served")
    assert len(frame) == 0
    assert {"prediction_id", "timestamp", "model_version", "variant"} <= set(frame.columns)


def test_a_bad_window_or_name_is_refused(logged: Any) -> None:
    with pytest.raises(InvalidInput, match="not a date or time"):
        logged.deployments.predictions("churn-api", since="yesterday-ish")
    with pytest.raises(InvalidInput):
        logged.deployments.feedback("../etc")


def test_live_figures_add_up_the_replicas_that_reported_recently(
    backend_client: Any, tmp_path: Path
) -> None:
    from ctloop.serving import status

    root = _root(backend_client, tmp_path)
    assert backend_client.deployments.live("churn-api") is None  # nothing runs
    inf = float("inf")
    for replica, ok, errors in (("a", 90, 1), ("b", 10, 0)):
        figures = {
            "versions": {
                "3": {"variant": "champion", "ok": ok, "client_errors": 2, "errors": errors}
            },
            "latency_buckets": [[0.005, ok / 2], [0.01, ok], [inf, ok + 2 + errors]],
            "log_rows": ok,
            "log_dropped": 0,
            "shadow_dropped": 1,
            "in_flight": 0,
        }
        status.write_status(
            root, "churn-api", replica, {"ready": True, "revision": 4, "figures": figures}
        )
    live = backend_client.deployments.live("churn-api")
    assert live is not None
    assert (live["replicas"], live["ready"], live["revisions"]) == (2, 2, ["4"])
    assert live["versions"]["3"] == {
        "variant": "champion",
        "ok": 100,
        "client_errors": 4,
        "errors": 1,
        "requests": 105,
    }
    assert live["requests"] == 105 and live["log_rows"] == 100 and live["shadow_dropped"] == 2
    assert 0 < live["p50_ms"] <= 10.0
    status.remove_status(root, "churn-api", "a")
    assert backend_client.deployments.live("churn-api")["replicas"] == 1
