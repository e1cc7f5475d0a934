from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ctloop.errors import InvalidInput
from ctloop.monitoring.alerts import (
    Alert,
    AlertManager,
    DriftShareAbove,
    ErrorRateAbove,
    FeatureScoreAbove,
    LatencyAbove,
    LogSink,
    Observations,
    PerformanceBelow,
    SinkOutcome,
    SlackSink,
    WebhookSink,
    rules_from_config,
    sinks_from_config,
)
from ctloop.monitoring.estimation import EstimatedPerformance, MetricEstimate
from ctloop.monitoring.performance import HealthRow, WindowPerformance
from ctloop.monitoring.results import DatasetDrift, DriftResult

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# --- observations ---------------------------------------------------------------------------


def drift(scores: dict[str, float], threshold: float = 0.2, method: str = "psi") -> DatasetDrift:
    columns = [
        DriftResult(c, "numeric", method, s, threshold, drifted=s >= threshold)
        for c, s in scores.items()
    ]
    share = sum(r.drifted for r in columns) / len(columns)
    return DatasetDrift(columns, drift_share=0.5, drifted_share=share, drifted=share >= 0.5)


def window(hour: int, accuracy: float | None, labelled: int = 100) -> WindowPerformance:
    start = NOW.replace(hour=hour)
    return WindowPerformance(
        start=start,
        end=start + timedelta(hours=1),
        task="binary",
        predictions=200,
        labelled=labelled,
        label_share=labelled / 200,
        delay_median_s=60.0,
        delay_p90_s=120.0,
        metrics=None if accuracy is None else {"accuracy": accuracy, "f1": 0.5},
    )


def estimated(value: float, rows: int = 500) -> EstimatedPerformance:
    estimate = MetricEstimate("roc_auc", value, 0.02, value - 0.04, value + 0.04, 0.85)
    return EstimatedPerformance(rows=rows, z=2.0, metrics={"roc_auc": estimate})


def health(
    hour: int,
    version: str = "3",
    errors: int = 0,
    rows: int = 100,
    p99: float | None = 50.0,
    p50: float | None = 10.0,
    variant: str = "",
) -> HealthRow:
    start = NOW.replace(hour=hour)
    return HealthRow(
        start=start,
        end=start + timedelta(hours=1),
        model_version=version,
        variant=variant,
        rows=rows,
        requests=rows,
        errors=errors,
        error_rate=errors / rows,
        latency_p50_ms=p50,
        latency_p99_ms=p99,
        latency_mean_ms=p50,
    )


def seen(**kwargs: Any) -> Observations:
    return Observations("churn", **kwargs)


# --- rules ----------------------------------------------------------------------------------


def test_drift_share_fires_above_the_threshold_only() -> None:
    rule = DriftShareAbove(0.5, severity="critical")
    at_edge = drift({"age": 0.3, "plan": 0.3, "charges": 0.1, "tenure": 0.1})  # share 0.5
    assert rule.evaluate(seen(dataset_drift=at_edge)) is None
    assert rule.evaluate(seen()) is None
    above = drift({"age": 0.3, "plan": 0.3, "charges": 0.4, "tenure": 0.1})  # share 0.75
    alert = rule.evaluate(seen(dataset_drift=above, report_id="r1"), now=NOW)
    assert alert is not None
    assert alert.value == 0.75 and alert.threshold == 0.5 and alert.severity == "critical"
    assert "0.75" in alert.message and "0.5" in alert.message and "'churn'" in alert.message
    assert "3 of 4 columns" in alert.message and "age, plan, charges" in alert.message
    assert alert.evidence["drifted_columns"] == ["age", "plan", "charges"]
    assert alert.created_at == NOW and alert.report_id == "r1"
    assert alert.rule == {"kind": "drift_share_above", "threshold": 0.5, "severity": "critical"}


def test_feature_score_fires_for_its_feature_and_method_only() -> None:
    rule = FeatureScoreAbove("age", 0.25)
    assert rule.evaluate(seen(dataset_drift=drift({"age": 0.25, "plan": 0.9}))) is None
    alert = rule.evaluate(seen(dataset_drift=drift({"age": 0.26, "plan": 0.0})))
    assert alert is not None
    assert "feature 'age'" in alert.message and "0.26" in alert.message
    assert "0.25" in alert.message and "psi" in alert.message
    assert alert.evidence["column"] == "age" and alert.evidence["score"] == 0.26
    assert rule.evaluate(seen(dataset_drift=drift({"plan": 0.9}))) is None  # not tested
    ks_only = FeatureScoreAbove("age", 0.25, method="ks")
    assert ks_only.evaluate(seen(dataset_drift=drift({"age": 0.9}))) is None
    assert ks_only.evaluate(seen(dataset_drift=drift({"age": 0.9}, method="ks"))) is not None


def test_realised_performance_judges_the_latest_window_with_enough_labels() -> None:
    rule = PerformanceBelow("accuracy", 0.8, min_labels=50)
    assert rule.evaluate(seen(performance=[window(1, 0.8)])) is None
    alert = rule.evaluate(seen(performance=[window(1, 0.9), window(2, 0.79)]))
    assert alert is not None
    assert "realised accuracy 0.79 is below 0.8" in alert.message
    assert alert.evidence["start"] == NOW.replace(hour=2).isoformat()
    # the latest window has too few labels: the one before it counts
    thin = [window(1, 0.7), window(2, 0.95, labelled=10)]
    assert rule.evaluate(seen(performance=thin)) is not None
    # a good recent window is not overruled by a bad older one
    assert rule.evaluate(seen(performance=[window(1, 0.5), window(2, 0.85)])) is None
    assert rule.evaluate(seen(performance=[window(1, None)])) is None
    assert PerformanceBelow("roc_auc", 0.8).evaluate(seen(performance=[window(1, 0.1)])) is None


def test_estimated_performance_fires_below_the_threshold() -> None:
    rule = PerformanceBelow("roc_auc", 0.8, source="estimated", min_labels=100)
    assert rule.evaluate(seen(estimated=estimated(0.8))) is None
    assert rule.evaluate(seen(estimated=estimated(0.5, rows=99))) is None
    assert rule.evaluate(seen(performance=[window(1, 0.1)])) is None
    alert = rule.evaluate(seen(estimated=estimated(0.79)))
    assert alert is not None
    assert "estimated roc_auc 0.79 is below 0.8" in alert.message
    assert "500 unlabelled rows" in alert.message
    assert alert.evidence["lower"] == pytest.approx(0.75)


def test_error_rate_fires_on_the_worst_version_of_the_latest_window() -> None:
    rule = ErrorRateAbove(0.05, min_rows=10)
    at_edge = [health(2, "3", errors=1), health(2, "4", errors=5)]  # 1 %, 5 %
    assert rule.evaluate(seen(health=at_edge)) is None
    alert = rule.evaluate(seen(health=[health(2, "3", errors=1), health(2, "4", errors=6)]))
    assert alert is not None
    assert "error rate 6.0% is above 5.0%" in alert.message
    assert "version 4" in alert.message and "6 of 100 rows" in alert.message
    # an older window's errors do not count; nor do windows below min_rows
    assert rule.evaluate(seen(health=[health(1, errors=90), health(2, errors=0)])) is None
    assert rule.evaluate(seen(health=[health(2, errors=5, rows=9)])) is None


def test_latency_fires_above_the_threshold_for_the_chosen_quantile() -> None:
    rule = LatencyAbove(200)
    assert rule.evaluate(seen(health=[health(2, p99=200.0)])) is None
    assert rule.evaluate(seen(health=[health(2, p99=None)])) is None
    alert = rule.evaluate(seen(health=[health(2, p99=201.0, variant="canary")]))
    assert alert is not None
    assert "p99 latency 201 ms is above 200 ms" in alert.message
    assert "variant canary" in alert.message
    median = LatencyAbove(20, quantile="p50")
    assert median.evaluate(seen(health=[health(2, p99=900.0, p50=20.0)])) is None
    assert median.evaluate(seen(health=[health(2, p99=9.0, p50=21.0)])) is not None


def test_alert_round_trips_through_json() -> None:
    alert = DriftShareAbove(0.1).evaluate(seen(dataset_drift=drift({"age": 0.9})), now=NOW)
    assert alert is not None
    data = json.loads(json.dumps(alert.to_dict()))
    assert data["kind"] == "drift_share_above" and data["created_at"] == NOW.isoformat()
    assert Alert.from_dict(data) == alert


# --- configuration --------------------------------------------------------------------------


def test_rules_from_config_builds_every_kind() -> None:
    rules = rules_from_config(
        [
            {"kind": "drift_share_above", "threshold": 0.3, "severity": "critical"},
            {"kind": "feature_score_above", "feature": "age", "threshold": 0.25},
            {"kind": "performance_below", "metric": "f1", "threshold": 0.6},
            {"kind": "error_rate_above", "threshold": 0.01},
            {"kind": "latency_above", "threshold_ms": 250, "quantile": "p50"},
        ]
    )
    assert rules == [
        DriftShareAbove(0.3, severity="critical"),
        FeatureScoreAbove("age", 0.25),
        PerformanceBelow("f1", 0.6),
        ErrorRateAbove(0.01),
        LatencyAbove(250, quantile="p50"),
    ]
    assert rules_from_config([r.to_dict() for r in rules]) == rules


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            [{"kind": "error_rate_above", "threshold": 0.1}] * 2
            + [{"kind": "drift_share_above", "threshold": "high"}],
            "rules[2].threshold must be a number, got 'high'",
        ),
        ([{"kind": "drift", "threshold": 0.1}], "rules[0].kind 'drift' is not a rule"),
        ([{"threshold": 0.1}], "rules[0].kind is missing"),
        (
            [{"kind": "latency_above", "threshold_ms": 1}, {"kind": "drift_share_above"}],
            "rules[1].threshold is required for drift_share_above",
        ),
        (
            [{"kind": "drift_share_above", "treshold": 0.1}],
            "rules[0] has unknown key 'treshold' for drift_share_above",
        ),
        ([{"kind": "drift_share_above", "threshold": 1.5}], "rules[0].threshold must be between"),
        ([{"kind": "drift_share_above", "threshold": True}], "must be a number, got True"),
        (
            [{"kind": "drift_share_above", "threshold": 0.1, "severity": "fatal"}],
            "rules[0].severity must be one of warning, critical, got 'fatal'",
        ),
        (
            [{"kind": "latency_above", "threshold_ms": 9, "quantile": "p95"}],
            "rules[0].quantile must be one of p50, p99, mean, got 'p95'",
        ),
        (
            [{"kind": "performance_below", "metric": "rmse", "threshold": 3}],
            "rules[0].metric 'rmse' is better when lower",
        ),
        (
            [{"kind": "error_rate_above", "threshold": 0.1, "min_rows": -1}],
            "rules[0].min_rows must be a whole number >= 0, got -1",
        ),
        (["drift_share_above"], "rules[0] must be a mapping"),
        ({"kind": "drift_share_above"}, "rules must be a list of rule mappings, got dict"),
    ],
)
def test_rules_from_config_names_the_bad_entry(specs: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        rules_from_config(specs)
    assert message in str(info.value)


def test_constructing_a_bad_rule_names_the_class_and_parameter() -> None:
    with pytest.raises(InvalidInput, match=r"FeatureScoreAbove\.feature must be a non-empty"):
        FeatureScoreAbove("", 0.1)


# --- the manager: cooldown and de-duplication -----------------------------------------------


@dataclass
class Recorder:
    """A sink that keeps what it was sent."""

    name: str = "recorder"
    alerts: list[Alert] = field(default_factory=list)

    def send(self, alert: Alert) -> SinkOutcome:
        self.alerts.append(alert)
        return SinkOutcome(self.name, ok=True)


def test_cooldown_suppresses_the_same_key_and_expires() -> None:
    sink = Recorder()
    manager = AlertManager([DriftShareAbove(0.1)], [sink], cooldown=timedelta(minutes=30))
    drifting = seen(dataset_drift=drift({"age": 0.9}))
    assert len(manager.run(drifting, now=NOW)) == 1
    assert manager.run(drifting, now=NOW + timedelta(minutes=29, seconds=59)) == []
    again = manager.run(drifting, now=NOW + timedelta(minutes=30))
    assert len(again) == 1 and again[0].delivered
    assert [a.created_at for a in sink.alerts] == [NOW, NOW + timedelta(minutes=30)]
    # the cooldown restarts from the last time it fired
    assert manager.run(drifting, now=NOW + timedelta(minutes=45)) == []


def test_other_features_and_deployments_are_not_suppressed() -> None:
    sink = Recorder()
    rules = [FeatureScoreAbove("age", 0.2), FeatureScoreAbove("plan", 0.2)]
    manager = AlertManager(rules, [sink])
    age_only = drift({"age": 0.9, "plan": 0.0})
    assert len(manager.run(seen(dataset_drift=age_only), now=NOW)) == 1
    both = drift({"age": 0.9, "plan": 0.9})
    later = manager.run(seen(dataset_drift=both), now=NOW + timedelta(minutes=1))
    assert [d.alert.evidence["column"] for d in later] == ["plan"]
    other = Observations("fraud", dataset_drift=both)
    assert len(manager.run(other, now=NOW + timedelta(minutes=2))) == 2
    assert len({a.dedup_key for a in sink.alerts}) == 4


def test_state_survives_a_restart_through_a_dict() -> None:
    clock = [NOW]
    first = AlertManager([DriftShareAbove(0.1)], [Recorder()], clock=lambda: clock[0])
    drifting = seen(dataset_drift=drift({"age": 0.9}))
    assert len(first.run(drifting)) == 1
    saved = json.loads(json.dumps(first.state_to_dict()))
    assert list(saved.values()) == [NOW.isoformat()]
    clock[0] = NOW + timedelta(minutes=10)
    second = AlertManager([DriftShareAbove(0.1)], [Recorder()], state=saved, clock=lambda: clock[0])
    assert second.run(drifting) == []
    # keys past their cooldown are not worth keeping
    assert second.state_to_dict(now=NOW + timedelta(hours=1)) == {}
    with pytest.raises(InvalidInput, match="must be an ISO 8601 time, got 'yesterday'"):
        AlertManager([], state={"k": "yesterday"})


def test_a_broken_sink_is_reported_and_the_others_still_get_the_alert() -> None:
    class Broken:
        name = "broken"

        def send(self, alert: Alert) -> SinkOutcome:
            raise RuntimeError("disk full")

    sink = Recorder()
    manager = AlertManager([DriftShareAbove(0.1)], [Broken(), sink])
    [delivery] = manager.run(seen(dataset_drift=drift({"age": 0.9})), now=NOW)
    assert delivery.outcomes[0] == SinkOutcome("broken", ok=False, error="RuntimeError: disk full")
    assert delivery.outcomes[1].ok and delivery.delivered and len(sink.alerts) == 1


def test_log_sink_logs_at_the_alert_severity(caplog: pytest.LogCaptureFixture) -> None:
    manager = AlertManager(
        [DriftShareAbove(0.1), DriftShareAbove(0.2, severity="critical")], [LogSink()]
    )
    with caplog.at_level(logging.WARNING, logger="ctloop.alerts"):
        deliveries = manager.run(seen(dataset_drift=drift({"age": 0.9})), now=NOW)
    assert [d.outcomes[0].ok for d in deliveries] == [True, True]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.CRITICAL]
    assert "drift share 1 is above 0.2" in caplog.records[1].getMessage()


# --- sinks against a real HTTP receiver on loopback -----------------------------------------


class Receiver:
    """An HTTP server on a free loopback port that records each request and answers with
    the next status of ``statuses`` (200 once they run out)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def json(self, i: int) -> Any:
        return json.loads(self.requests[i]["body"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def an_alert(feature: str = "age") -> Alert:
    alert = FeatureScoreAbove(feature, 0.2).evaluate(
        seen(dataset_drift=drift({feature: 0.5}), report_id="rep-1"), now=NOW
    )
    assert alert is not None
    return alert


def test_webhook_posts_the_alert_as_json(receiver: Receiver) -> None:
    sink = WebhookSink(f"{receiver.url}/hooks/ml", headers={"Authorization": "Bearer t0k"})
    alert = an_alert()
    outcome = sink.send(alert)
    assert outcome == SinkOutcome(sink.name, ok=True, attempts=1, status=200)
    [request] = receiver.requests
    assert request["path"] == "/hooks/ml"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Authorization"] == "Bearer t0k"
    body = receiver.json(0)
    assert body == json.loads(json.dumps(alert.to_dict()))
    assert body["kind"] == "feature_score_above" and body["deployment"] == "churn"
    assert body["value"] == 0.5 and body["threshold"] == 0.2 and body["report_id"] == "rep-1"
    assert body["evidence"]["column"] == "age" and "feature 'age'" in body["message"]
    assert "/hooks" not in sink.name  # a webhook path may be its secret


def test_slack_payload_has_text_and_blocks(receiver: Receiver) -> None:
    alert = an_alert(feature="<!channel> & co")
    assert SlackSink(receiver.url).send(alert).ok
    body = receiver.json(0)
    assert body["text"] == f"[warning] {alert.message}"
    types = [b["type"] for b in body["blocks"]]
    assert types == ["header", "section", "section", "context"]
    assert body["blocks"][0]["text"]["type"] == "plain_text"
    section = body["blocks"][1]["text"]
    assert section["type"] == "mrkdwn"
    assert "&lt;!channel&gt; &amp; co" in section["text"] and "<!channel>" not in section["text"]
    fields = dict(f["text"].split("\n", 1) for f in body["blocks"][2]["fields"])
    assert fields["*Deployment*"] == "churn" and fields["*Threshold*"] == "0.2"
    assert "rep-1" in body["blocks"][3]["elements"][0]["text"]


def test_webhook_retries_a_server_error(receiver: Receiver) -> None:
    waits: list[float] = []
    receiver.statuses = [500, 200]
    outcome = WebhookSink(receiver.url, backoff=0.25, sleep=waits.append).send(an_alert())
    assert outcome.ok and outcome.attempts == 2 and outcome.status == 200
    assert len(receiver.requests) == 2 and receiver.json(0) == receiver.json(1)
    assert waits == [0.25]


def test_webhook_gives_up_after_its_attempts(receiver: Receiver) -> None:
    waits: list[float] = []
    receiver.statuses = [503, 503, 503, 200]
    sink = WebhookSink(receiver.url, attempts=3, backoff=0.1, sleep=waits.append)
    outcome = sink.send(an_alert())
    assert not outcome.ok and outcome.attempts == 3 and outcome.status == 503
    assert outcome.error is not None and "HTTP 503" in outcome.error
    assert len(receiver.requests) == 3 and waits == [0.1, 0.2]


def test_webhook_does_not_retry_a_client_error(receiver: Receiver) -> None:
    receiver.statuses = [400]
    outcome = WebhookSink(receiver.url, sleep=lambda s: None).send(an_alert())
    assert not outcome.ok and outcome.attempts == 1 and outcome.status == 400
    assert len(receiver.requests) == 1


def test_unreachable_webhook_is_reported_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = closed_port_url()
    manager = AlertManager(
        [DriftShareAbove(0.1)],
        [WebhookSink(url, timeout=2, sleep=lambda s: None), LogSink()],
    )
    with caplog.at_level(logging.WARNING):
        [delivery] = manager.run(seen(dataset_drift=drift({"age": 0.9})), now=NOW)
    webhook, log = delivery.outcomes
    assert not webhook.ok and webhook.attempts == 2 and webhook.status is None
    assert webhook.error is not None and "Connect" in webhook.error
    assert log.ok and delivery.delivered
    assert any("not delivered" in r.getMessage() for r in caplog.records)
    assert "/hook" not in caplog.text


def test_webhook_rejects_a_url_that_is_not_http() -> None:
    with pytest.raises(InvalidInput, match="is not an http:// or https:// URL"):
        WebhookSink("ftp://example.com/hook")
    with pytest.raises(InvalidInput, match="attempts=0"):
        WebhookSink("http://127.0.0.1/hook", attempts=0)


def test_sinks_from_config_builds_each_kind(receiver: Receiver) -> None:
    log, hook, slack = sinks_from_config(
        [
            {"kind": "log", "logger": "ops"},
            {"kind": "webhook", "url": receiver.url, "headers": {"X-Token": "abc"}, "attempts": 3},
            {"kind": "slack", "url": receiver.url, "timeout": 1.5},
        ]
    )
    assert isinstance(log, LogSink) and log.logger.name == "ops"
    assert isinstance(hook, WebhookSink) and hook.attempts == 3
    assert isinstance(slack, SlackSink) and slack.timeout == 1.5
    assert hook.send(an_alert()).ok
    assert receiver.requests[0]["headers"]["X-Token"] == "abc"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([{"kind": "log"}, {"kind": "webhook"}], "sinks[1].url is required for webhook"),
        ([{"kind": "email"}], "sinks[0].kind 'email' is not a sink"),
        ([{"kind": "slack", "url": "http://x", "headers": {}}], "sinks[0] has unknown key"),
        ([{"kind": "webhook", "url": "http://x", "timeout": "5"}], "sinks[0].timeout must be a"),
        ([{"kind": "webhook", "url": "http://x", "attempts": 1.5}], "sinks[0].attempts must be"),
        ([{"kind": "webhook", "url": "hooks.example.com"}], "sinks[0]: webhook url"),
        ({"kind": "log"}, "sinks must be a list of sink mappings"),
    ],
)
def test_sinks_from_config_names_the_bad_entry(specs: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        sinks_from_config(specs)
    assert message in str(info.value)
