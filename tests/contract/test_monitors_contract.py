"""``client.monitors`` on every backend: SQLite, PostgreSQL and over HTTP."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ctloop
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.monitoring.alerts import Alert, AlertManager, Delivery, SinkOutcome
from ctloop.monitoring.entities import Monitor, ReportSummary
from ctloop.monitoring.report import Report, build_report

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_active_run() -> Iterator[None]:
    yield
    while ctloop.active_run() is not None:
        ctloop.end_run()


@pytest.fixture(scope="module")
def frames() -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"age": rng.normal(40, 5, 200).round(1), "spend": rng.normal(20, 3, 200).round(2)}
    )
    current = pd.DataFrame(
        {
            "age": rng.normal(55, 5, 200).round(1),  # shifted: drifts
            "spend": rng.normal(20, 3, 200).round(2),
            "ts": pd.date_range("2026-03-01 10:00", periods=200, freq="min", tz="UTC"),
        }
    )
    model = LogisticRegression().fit(reference, (reference["age"] > 40).astype(int))
    return {"reference": reference, "current": current, "model": model}


@pytest.fixture(scope="module")
def profile(frames: dict[str, Any]) -> dict[str, Any]:
    from ctloop.monitoring.profiles import ReferenceProfile

    return ReferenceProfile.from_frame(frames["reference"], sample_size=50).to_dict()


def _register(client: Any, frames: dict[str, Any], name: str, count: int) -> None:
    for _ in range(count):
        with ctloop.start_run(experiment=name, client=client) as run:
            run.log_model(frames["model"], input_example=frames["reference"].head(3))
        client.models.register(run.id, name=name)


@pytest.fixture
def churn(backend_client: Any, frames: dict[str, Any]) -> Any:
    """Model 'churn' with versions 1-3, ``champion`` on 2, deployment 'churn-api' on 3."""
    _register(backend_client, frames, "churn", 3)
    backend_client.models.set_alias("churn", "champion", 2)
    backend_client.deployments.create("churn-api", "churn/3")
    return backend_client


def _report(frames: dict[str, Any], deployment: str | None, at: datetime) -> Report:
    report = build_report(frames["reference"], frames["current"], deployment=deployment)
    return dataclasses.replace(report, created_at=at)


def _alert(deployment: str, at: datetime, key: str = "drift", **extra: Any) -> Alert:
    return Alert(
        id=uuid.uuid4().hex,
        rule={"kind": "drift_share_above", "threshold": 0.3},
        deployment=deployment,
        severity="critical",
        message="half of the features drifted",
        value=0.5,
        threshold=0.3,
        evidence={"drifted": ["age"], "score": extra.pop("score", 1.5)},
        created_at=at,
        dedup_key=f"{key}:{deployment}",
        report_id=extra.pop("report_id", None),
    )


# --- monitors -----------------------------------------------------------------------------


def test_create_resolves_the_alias_and_keeps_the_defaults(churn: Any, profile: Any) -> None:
    m = churn.monitors.create("churn-api", reference="churn@champion", profile=profile)
    assert isinstance(m, Monitor)
    assert (m.deployment, m.reference, m.reference_given) == (
        "churn-api",
        "churn/2",
        "churn@champion",
    )
    assert (m.window, m.drift_share, m.features, m.rules, m.sinks) == ("1h", 0.5, None, [], [])
    assert m.cooldown_seconds == 1800 and m.cooldown == timedelta(minutes=30)
    assert m.profile == profile and m.estimation is None and m.created_by
    assert m.created_at == m.updated_at
    assert churn.monitors.get("churn-api") == m
    assert churn.monitors.list() == [m]
    churn.models.set_alias("churn", "champion", 1)  # the monitor keeps what it resolved
    assert churn.monitors.get("churn-api").reference == "churn/2"


def test_every_setting_round_trips(churn: Any, profile: Any) -> None:
    rules = [{"kind": "drift_share_above", "threshold": 0.3, "severity": "critical"}]
    sinks = [{"kind": "log"}, {"kind": "webhook", "url": "https://ops.example.com/hook"}]
    m = churn.monitors.create(
        "churn-api",
        reference="churn",
        profile=profile,
        features=["age"],
        window="last:5000",
        drift_share=1,
        rules=rules,
        sinks=sinks,
        cooldown=timedelta(hours=2),
        estimation={"classes": [0, 1], "scores": [0.1, 0.9]},
    )
    assert (m.reference, m.reference_given, m.features) == ("churn/3", "churn", ["age"])
    assert (m.window, m.last_rows, m.drift_share) == ("last:5000", 5000, 1.0)
    assert (m.rules, m.sinks, m.cooldown_seconds) == (rules, sinks, 7200.0)
    assert m.estimation == {"classes": [0, 1], "scores": [0.1, 0.9]}
    assert churn.monitors.get("churn-api") == m
    quiet = churn.monitors.create(
        "churn-api", reference="churn/1", profile=profile, cooldown=0, replace=True
    )
    assert quiet.cooldown_seconds == 0 and quiet.window == "1h"


def test_a_second_monitor_conflicts_unless_replaced(churn: Any, profile: Any) -> None:
    first = churn.monitors.create("churn-api", reference="churn/1", profile=profile)
    with pytest.raises(Conflict, match="'churn-api' has a monitor already; pass replace=True"):
        churn.monitors.create("churn-api", reference="churn/2", profile=profile)
    assert churn.monitors.get("churn-api").reference == "churn/1"
    second = churn.monitors.create(
        "churn-api", reference="churn@champion", profile=profile, window="30m", replace=True
    )
    assert (second.id, second.created_at) == (first.id, first.created_at)
    assert (second.reference, second.window) == ("churn/2", "30m")
    assert second.updated_at >= first.updated_at
    assert churn.monitors.list() == [second]


def test_delete_removes_the_monitor_and_keeps_reports(
    churn: Any, profile: Any, frames: Any
) -> None:
    churn.monitors.create("churn-api", reference="churn/1", profile=profile)
    churn.monitors.add_report(_report(frames, "churn-api", T0))
    churn.monitors.delete("churn-api")
    assert churn.monitors.list() == []
    for call in (churn.monitors.get, churn.monitors.delete):
        with pytest.raises(NotFound, match="'churn-api' has no monitor; create one with"):
            call("churn-api")
    assert len(churn.monitors.reports("churn-api")) == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"window": "1 hour"}, "window '1 hour' is not a duration"),
        ({"window": "last:0"}, "must count at least 1 row"),
        ({"window": "last5000"}, "write the newest rows as last:N"),
        ({"drift_share": 0}, "drift_share=0 must be a number above 0 and at most 1"),
        ({"drift_share": 1.5}, "drift_share=1.5 must be a number above 0"),
        ({"drift_share": True}, "drift_share=True must be a number"),
        ({"rules": [{"kind": "nope"}]}, "rules\\[0\\].kind 'nope' is not a rule"),
        (
            {"rules": [{"kind": "drift_share_above", "threshold": "high"}]},
            "rules\\[0\\].threshold",
        ),
        ({"sinks": [{"kind": "webhook"}]}, "sinks\\[0\\].url is required for webhook"),
        ({"sinks": {"kind": "log"}}, "sinks must be a list of sink mappings"),
        ({"features": ["tenure"]}, "features tenure are not in the profile; it has: age, spend"),
        ({"features": ["age", "age"]}, "feature 'age' appears twice"),
        ({"profile": {"columns": []}}, "profile is not a reference profile"),
        ({"cooldown": "soon"}, "cooldown 'soon' is not a duration"),
        ({"cooldown": -1}, "cooldown -1 must be zero or more"),
        ({"reference": "runs:/abc123/model"}, "names a run's package"),
    ],
)
def test_bad_settings_are_refused_naming_the_problem(
    churn: Any, profile: Any, change: dict[str, Any], expected: str
) -> None:
    args: dict[str, Any] = {"reference": "churn/1", "profile": profile, **change}
    with pytest.raises(InvalidInput, match=expected):
        churn.monitors.create("churn-api", **args)
    assert churn.monitors.list() == []


def test_references_must_exist_and_be_of_the_deployments_model(
    churn: Any, profile: Any, frames: Any
) -> None:
    monitors = churn.monitors
    with pytest.raises(NotFound, match="no deployment named 'churn-apj'; did you mean 'churn-api'"):
        monitors.create("churn-apj", reference="churn/1", profile=profile)
    with pytest.raises(NotFound, match="model 'churn' has no version 9 \\(latest is 3\\)"):
        monitors.create("churn-api", reference="churn/9", profile=profile)
    with pytest.raises(NotFound, match="has no alias 'challenger' \\(it has: champion\\)"):
        monitors.create("churn-api", reference="churn@challenger", profile=profile)
    _register(churn, frames, "fraud", 1)
    with pytest.raises(
        InvalidInput, match="names model 'fraud', but deployment 'churn-api' serves"
    ):
        monitors.create("churn-api", reference="fraud/1", profile=profile)
    assert monitors.list() == []
    with pytest.raises(NotFound, match="no deployment named 'nope'"):
        monitors.get("nope")


def test_a_large_profile_is_stored_whole(churn: Any) -> None:
    import numpy as np
    import pandas as pd

    from ctloop.monitoring.profiles import ReferenceProfile

    rng = np.random.default_rng(1)
    wide = pd.DataFrame({f"x{i}": rng.normal(size=5000) for i in range(12)})
    big = ReferenceProfile.from_frame(wide, sample_size=5000).to_dict()
    assert len(str(big)) > 1_000_000
    m = churn.monitors.create("churn-api", reference="churn/1", profile=big)
    assert churn.monitors.get("churn-api").profile == m.profile == big


# --- reports ------------------------------------------------------------------------------


def test_reports_are_listed_newest_first_with_their_summary(churn: Any, frames: Any) -> None:
    monitors = churn.monitors
    assert monitors.reports("churn-api") == [] and monitors.latest_report("churn-api") is None
    made = [_report(frames, "churn-api", T0 + timedelta(hours=h)) for h in range(3)]
    summary = monitors.add_report(made[0], html_uri="file:///tmp/r0.html")
    for report in made[1:]:
        monitors.add_report(report)
    assert isinstance(summary, ReportSummary)
    assert (summary.id, summary.deployment, summary.created_at) == (made[0].id, "churn-api", T0)
    assert (summary.rows, summary.drifted, summary.html_uri) == (200, True, "file:///tmp/r0.html")
    assert summary.drifted_features == made[0].drifted_columns and "age" in summary.drifted_features
    assert summary.drift_share == made[0].dataset_drift["drifted_share"]
    assert summary.window_start == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert summary.window_end == datetime(2026, 3, 1, 13, 19, tzinfo=UTC)
    listed = monitors.reports("churn-api")
    assert [r.id for r in listed] == [made[2].id, made[1].id, made[0].id]
    assert listed[-1] == summary
    assert [r.id for r in monitors.reports("churn-api", limit=2)] == [made[2].id, made[1].id]
    since = monitors.reports("churn-api", since=(T0 + timedelta(hours=1)).isoformat())
    assert [r.id for r in since] == [made[2].id, made[1].id]
    naive = monitors.reports("churn-api", since=datetime(2026, 3, 1, 14))  # naive = UTC
    assert [r.id for r in naive] == [made[2].id]


def test_a_report_comes_back_whole(churn: Any, frames: Any) -> None:
    report = _report(frames, "churn-api", T0)
    churn.monitors.add_report(report)
    assert churn.monitors.report(report.id).to_dict() == report.to_dict()
    latest = _report(frames, "churn-api", T0 + timedelta(minutes=5))
    churn.monitors.add_report(latest)
    found = churn.monitors.latest_report("churn-api")
    assert found is not None and found.to_dict() == latest.to_dict()
    assert found.histograms and found.drifted_columns == report.drifted_columns


def test_bad_reports_are_refused(churn: Any, frames: Any) -> None:
    monitors = churn.monitors
    report = _report(frames, "churn-api", T0)
    monitors.add_report(report)
    with pytest.raises(Conflict, match=f"a report with id '{report.id}' is stored already"):
        monitors.add_report(report)
    with pytest.raises(InvalidInput, match="the report names no deployment"):
        monitors.add_report(_report(frames, None, T0))
    with pytest.raises(NotFound, match="no deployment named 'gone'"):
        monitors.add_report(_report(frames, "gone", T0))
    with pytest.raises(InvalidInput, match="add_report takes a Report"):
        monitors.add_report(report.to_dict())
    with pytest.raises(NotFound, match="no report with id 'abc'"):
        monitors.report("abc")
    with pytest.raises(InvalidInput, match="limit=0 must be a whole number from 1"):
        monitors.reports("churn-api", limit=0)
    with pytest.raises(InvalidInput, match="since='yesterday' is not a date"):
        monitors.reports("churn-api", since="yesterday")
    assert len(monitors.reports("churn-api")) == 1


# --- alerts -------------------------------------------------------------------------------


def test_alerts_are_stored_with_their_deliveries(churn: Any) -> None:
    churn.deployments.create("other", "churn/1")
    outcomes = [
        SinkOutcome("log", ok=True),
        SinkOutcome(
            "webhook https://ops.example.com", ok=False, attempts=3, status=503, error="down"
        ),
    ]
    first = Delivery(_alert("churn-api", T0, score=math.nan, report_id="r1"), outcomes)
    later = Delivery(_alert("churn-api", T0 + timedelta(hours=1), key="latency"), [])
    stored = churn.monitors.add_alerts("churn-api", [first, later])
    assert [d.alert.id for d in stored] == [first.alert.id, later.alert.id]
    assert stored[0].outcomes == outcomes and stored[0].alert.evidence["score"] is None
    elsewhere = Delivery(_alert("other", T0 + timedelta(hours=2)), [SinkOutcome("log", ok=True)])
    churn.monitors.add_alerts("other", [elsewhere])

    mine = churn.monitors.alerts("churn-api")
    assert [d.alert.id for d in mine] == [later.alert.id, first.alert.id]
    assert mine[1] == stored[0] and mine[1].alert.report_id == "r1"
    assert mine[1].alert.created_at == T0 and not mine[0].delivered and mine[1].delivered
    everything = churn.monitors.alerts()
    assert [d.alert.deployment for d in everything] == ["other", "churn-api", "churn-api"]
    assert [d.alert.id for d in churn.monitors.alerts(limit=1)] == [elsewhere.alert.id]
    since = churn.monitors.alerts("churn-api", since=T0 + timedelta(minutes=1))
    assert [d.alert.id for d in since] == [later.alert.id]


def test_last_fired_is_the_cooldown_state(churn: Any) -> None:
    monitors = churn.monitors
    assert monitors.last_fired("churn-api") == {}
    monitors.add_alerts("churn-api", [Delivery(_alert("churn-api", T0))])
    monitors.add_alerts(
        "churn-api",
        [
            Delivery(_alert("churn-api", T0 + timedelta(hours=3))),
            Delivery(_alert("churn-api", T0 + timedelta(hours=1), key="latency")),
        ],
    )
    state = monitors.last_fired("churn-api")
    assert state == {
        "drift:churn-api": T0 + timedelta(hours=3),
        "latency:churn-api": T0 + timedelta(hours=1),
    }
    manager = AlertManager([], cooldown=timedelta(hours=1), state=state)
    assert manager.state_to_dict(now=T0 + timedelta(hours=3, minutes=30)) == {
        "drift:churn-api": (T0 + timedelta(hours=3)).isoformat()
    }


def test_bad_alerts_are_refused(churn: Any) -> None:
    monitors = churn.monitors
    delivery = Delivery(_alert("churn-api", T0))
    with pytest.raises(InvalidInput, match="is an alert of deployment 'other', not 'churn-api'"):
        monitors.add_alerts("churn-api", [Delivery(_alert("other", T0))])
    with pytest.raises(InvalidInput, match="add_alerts takes a list of Delivery"):
        monitors.add_alerts("churn-api", delivery)
    with pytest.raises(NotFound, match="no deployment named 'gone'"):
        monitors.add_alerts("gone", [Delivery(_alert("gone", T0))])
    monitors.add_alerts("churn-api", [delivery])
    with pytest.raises(Conflict, match="is stored already"):
        monitors.add_alerts("churn-api", [delivery, Delivery(_alert("churn-api", T0))])
    assert [d.alert.id for d in monitors.alerts("churn-api")] == [delivery.alert.id]
    with pytest.raises(NotFound, match="no deployment named 'gone'"):
        monitors.alerts("gone")


# --- a deployment takes its monitoring with it --------------------------------------------


def test_deleting_a_deployment_deletes_its_monitor_reports_and_alerts(
    churn: Any, profile: Any, frames: Any
) -> None:
    monitors = churn.monitors
    churn.deployments.create("kept", "churn/1")
    monitors.create("churn-api", reference="churn/1", profile=profile)
    monitors.create("kept", reference="churn/1", profile=profile)
    report = _report(frames, "churn-api", T0)
    monitors.add_report(report)
    monitors.add_report(_report(frames, "kept", T0))
    monitors.add_alerts("churn-api", [Delivery(_alert("churn-api", T0))])
    monitors.add_alerts("kept", [Delivery(_alert("kept", T0))])

    churn.deployments.delete("churn-api")
    assert [m.deployment for m in monitors.list()] == ["kept"]
    with pytest.raises(NotFound, match=f"no report with id '{report.id}'"):
        monitors.report(report.id)
    assert [d.alert.deployment for d in monitors.alerts()] == ["kept"]
    churn.deployments.create("churn-api", "churn/2")  # the name again: nothing carried over
    with pytest.raises(NotFound, match="'churn-api' has no monitor"):
        monitors.get("churn-api")
    assert monitors.reports("churn-api") == [] and monitors.alerts("churn-api") == []
    assert monitors.last_fired("churn-api") == {}
    assert len(monitors.reports("kept")) == 1
