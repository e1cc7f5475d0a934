"""The inference server exports the newest monitoring report of its deployment as gauges."""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from ctloop import Client
from ctloop.monitoring.estimation import ConfidenceBasedEstimator
from ctloop.monitoring.report import Report, build_report
from ctloop.serving.app import create_inference_app
from ctloop.serving.replica import DeploymentSource
from ctloop.serving.server import ServeConfig

pytest.importorskip("uvicorn")


def until(check: Callable[[], Any], *, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn server on a free loopback port, in a thread."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    until(lambda: server.started or not thread.is_alive(), what="the server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def gauge(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text, or None when it is absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 200), "spend": rng.uniform(5, 80, 200)})
    labels = ((frame["spend"] > 40) ^ (frame["age"] > 60)).to_numpy().astype(np.int64)
    with contextlib.closing(
        Client(store=str(tmp_path / "store"), artifacts=str(tmp_path / "artifacts"))
    ) as c:
        run = c.runs.create("churn", capture_code=False)
        model = LogisticRegression().fit(frame, labels)
        c.runs.log_model(run.id, model, "model", input_example=frame.head(20))
        c.models.register(run.id, "model", name="churn")
        c.deployments.create("churn", "churn/1")
        yield c


def a_report(shift: float, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"age": rng.normal(40, 10, 2000), "spend": rng.normal(50, 5, 2000)})
    current = pd.DataFrame(
        {"age": rng.normal(40 + shift, 10, 2000), "spend": rng.normal(50, 5, 2000)}
    )
    scores = rng.uniform(0, 1, 2000)
    truth = (rng.uniform(0, 1, 2000) < scores).astype(int)
    estimator = ConfidenceBasedEstimator().fit(np.column_stack([1 - scores, scores]), truth)
    estimated = estimator.estimate(np.column_stack([1 - scores, scores])[:500])
    report = build_report(reference, current, deployment="churn", estimated=estimated)
    assert report.estimated_performance, "the report must carry an estimate for this test"
    return report


def test_the_newest_report_becomes_gauges_and_a_newer_one_replaces_it(
    client: Client, tmp_path: Path
) -> None:
    server_client = Client(store=str(tmp_path / "store"), artifacts=str(tmp_path / "artifacts"))
    app = create_inference_app(
        DeploymentSource(server_client, "churn"),
        config=ServeConfig(poll_seconds=0.1, monitor_poll_seconds=0.1),
        log_root=str(tmp_path / "artifacts"),
        on_close=server_client.close,
    )
    with serving(app) as url:
        until(
            lambda: httpx.get(f"{url}/v2/health/ready").status_code == 200,
            what="the deployment to load",
        )
        metrics = httpx.get(f"{url}/metrics").text
        assert gauge(metrics, "ctloop_dataset_drift_share", deployment="churn") is None

        first = a_report(shift=8.0, seed=1)
        client.monitors.add_report(first)
        text = until(
            lambda: (
                (t := httpx.get(f"{url}/metrics").text)
                and gauge(t, "ctloop_dataset_drift_share", deployment="churn") is not None
                and t
            ),
            what="the gauges to show the first report",
        )
        columns = {c["column"]: c for c in first.dataset_drift["columns"]}
        for name, column in columns.items():
            value = gauge(
                text,
                "ctloop_feature_drift_score",
                deployment="churn",
                feature=name,
                method=column["method"],
            )
            assert value == pytest.approx(column["score"])
            drifted = gauge(text, "ctloop_feature_drifted", deployment="churn", feature=name)
            assert drifted == (1.0 if column["drifted"] else 0.0)
        assert columns["age"]["drifted"] and not columns["spend"]["drifted"]
        assert gauge(text, "ctloop_dataset_drift_share", deployment="churn") == pytest.approx(
            first.dataset_drift["drifted_share"]
        )
        estimates: dict[str, Any] = first.estimated_performance[-1]["metrics"]  # type: ignore[index]
        for metric, estimate in estimates.items():
            shown = gauge(text, "ctloop_estimated_performance", deployment="churn", metric=metric)
            assert shown is not None
            if estimate["value"] is None:
                assert math.isnan(shown)
            else:
                assert shown == pytest.approx(estimate["value"])
        stamp = gauge(text, "ctloop_monitor_report_timestamp_seconds", deployment="churn")
        assert stamp == pytest.approx(first.created_at.timestamp(), abs=1e-4)

        second = a_report(shift=0.0, seed=3)
        client.monitors.add_report(second)
        until(
            lambda: (
                gauge(
                    httpx.get(f"{url}/metrics").text,
                    "ctloop_monitor_report_timestamp_seconds",
                    deployment="churn",
                )
                == pytest.approx(second.created_at.timestamp(), abs=1e-4)
            ),
            what="the gauges to move to the second report",
        )
        text = httpx.get(f"{url}/metrics").text
        assert gauge(text, "ctloop_dataset_drift_share", deployment="churn") == pytest.approx(
            second.dataset_drift["drifted_share"]
        )
        assert gauge(text, "ctloop_feature_drifted", deployment="churn", feature="age") == 0.0


def test_monitoring_gauges_render_in_multiprocess_mode(tmp_path: Path) -> None:
    """Several workers write their gauges to shared files; /metrics shows the newest value."""
    code = textwrap.dedent(
        """
        from ctloop.serving.metrics import ServingMetrics
        first, second = ServingMetrics(), ServingMetrics()
        first.drift_share.labels("churn").set(0.25)
        second.drift_share.labels("churn").set(0.5)
        second.feature_drift.labels("churn", "age", "ks").set(0.001)
        print(first.render().decode())
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert gauge(out, "ctloop_dataset_drift_share", deployment="churn") == 0.5
    assert gauge(
        out, "ctloop_feature_drift_score", deployment="churn", feature="age", method="ks"
    ) == pytest.approx(0.001)
