"""Triggers and guards read off a real SQLite store: reports, datasets, lineage, events."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ctloop.datasets import churn
from ctloop.demo import _baseline, _features
from ctloop.errors import InvalidInput
from ctloop.loop.entities import LoopEvent, LoopStateName
from ctloop.loop.events import (
    EVENT_KINDS,
    EVENT_MANUAL_TRIGGER,
    EVENT_NOTE,
    EVENT_PROMOTED,
    EVENT_REJECTED,
    EVENT_TRAINED,
    EVENT_TRAINING_STARTED,
    EVENT_TRIGGER_IGNORED,
    EVENT_TRIGGERED,
)
from ctloop.loop.policy import Policy, parse_policy
from ctloop.loop.triggers import (
    TRIGGER_ORDER,
    GuardBlock,
    TriggerDecision,
    blocked_by_guards,
    decision_links,
    evaluate_triggers,
    request_manual,
    trigger_events,
)
from ctloop.monitoring.estimation import EstimatedPerformance, MetricEstimate
from ctloop.monitoring.performance import WindowPerformance
from ctloop.monitoring.report import Report, build_report

#: What the champion's training run logged (the pipeline's evaluate step logs these keys).
CHAMPION_METRICS = {"accuracy": 0.81, "roc_auc": 0.84}
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


@dataclass
class Store:
    client: Any
    folder: Path


def register(client: Any, folder: Path, model: str, dataset: str, rows: int = 600) -> None:
    """``model``/1, a logistic regression on churn rows logged as ``dataset``@1, with its
    evaluation metrics, made the champion."""
    data = churn.generate(rows, seed=3)
    path = folder / f"{dataset}.parquet"
    data.to_parquet(path, index=False)
    version = client.datasets.add(path, dataset)
    run = client.runs.create(model, capture_code=False)
    client.runs.log_input(run.id, version, "training")
    client.runs.log_batch(run.id, [(k, v, 0, None) for k, v in CHAMPION_METRICS.items()])
    x = _features(data)
    client.runs.log_model(run.id, _baseline(x).fit(x, data[churn.TARGET]), input_example=x)
    client.models.register(run.id, name=model)
    client.models.set_alias(model, "champion", 1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from ctloop import Client

    folder = tmp_path_factory.mktemp("triggers")
    client = Client(store=str(folder / "store"))
    register(client, folder, "churn", "churn-train")
    yield Store(client, folder)
    client.close()


_names = itertools.count(1)


@pytest.fixture
def dep(store: Store) -> str:
    """A new deployment of churn@champion with a stored policy (manual: true)."""
    name = f"churn-{next(_names)}"
    store.client.deployments.create(name, "churn@champion")
    store.client.loop.set_policy(name, source="manual: true", policy=policy().to_dict())
    return name


def policy(**triggers: Any) -> Policy:
    spec: dict[str, Any] = {"pipeline": "examples.churn.pipeline:churn_pipeline"}
    spec["guards"] = triggers.pop("guards", None) or {}
    spec["triggers"] = triggers or {"manual": True}
    return parse_policy(spec)


def short(report: Report) -> str:
    return f"{report.id[:8]}…"


def add_report(
    client: Any,
    deployment: str,
    at: datetime,
    *,
    share: float = 0.0,
    drifted: Sequence[str] = (),
    realised: Sequence[WindowPerformance] | None = None,
    estimated: EstimatedPerformance | None = None,
) -> Report:
    """A stored report built at ``at``: ``drifted`` columns drifted (most severe first),
    the dataset drift share ``share``, and the performance given."""
    columns = [
        {"column": c, "drifted": True, "method": "psi", "threshold": 0.1, "score": 1.0 - i / 10}
        for i, c in enumerate(drifted)
    ] + [{"column": "tenure", "drifted": False, "method": "psi", "threshold": 0.1, "score": 0.01}]
    report = Report(
        id=uuid.uuid4().hex,
        created_at=at,
        deployment=deployment,
        reference={"rows": 600},
        window={"rows": 500},
        dataset_drift={"drifted": share >= 0.5, "drifted_share": share, "columns": columns},
        realised_performance=None if realised is None else [w.to_dict() for w in realised],
        estimated_performance=(
            None if estimated is None else [{"start": None, "end": None, **estimated.to_dict()}]
        ),
    )
    client.monitors.add_report(report)
    return report


def window(labelled: int, **metrics: float) -> WindowPerformance:
    return WindowPerformance(
        start=None,
        end=None,
        task="binary",
        predictions=labelled * 2,
        labelled=labelled,
        label_share=0.5,
        delay_median_s=3600.0,
        delay_p90_s=7200.0,
        metrics=dict(metrics),
    )


def estimate(metric: str, value: float, reference: float) -> EstimatedPerformance:
    band = MetricEstimate(metric, value, 0.01, value - 0.02, value + 0.02, reference)
    return EstimatedPerformance(rows=500, z=1.96, metrics={metric: band})


def record(client: Any, deployment: str, kind: str, **fields: Any) -> LoopEvent:
    event: LoopEvent = client.loop.record(deployment, kind=kind, summary=kind, **fields)
    return event


def evaluate(store: Store, dep: str, pol: Policy, now: datetime | None = None) -> list[Any]:
    events = trigger_events(store.client, dep)
    return evaluate_triggers(store.client, dep, pol, now=now or datetime.now(UTC), events=events)


def made_event(kind: str, at: datetime, seq: int, **fields: Any) -> LoopEvent:
    """An event as the store returns it, at a chosen time (guards are pure over events)."""
    return LoopEvent(
        id=uuid.uuid4().hex,
        deployment="churn",
        seq=seq,
        created_at=at,
        from_state=LoopStateName.STABLE,
        to_state=LoopStateName.STABLE,
        kind=kind,
        summary=kind,
        evidence=fields.get("evidence", {}),
        links=fields.get("links", {}),
        actor="controller",
    )


def past(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


# --- drift ------------------------------------------------------------------------------------


def test_drift_fires_on_consecutive_reports_naming_values_and_thresholds(
    store: Store, dep: str
) -> None:
    pol = policy(drift={"share": 0.3, "consecutive": 2})
    older = add_report(store.client, dep, past(20), share=0.5, drifted=["contract", "tenure_x"])
    newer = add_report(
        store.client, dep, past(10), share=0.42, drifted=["monthly_charges", "contract"]
    )

    [decision] = evaluate(store, dep, pol)

    assert decision.kind == "drift"
    assert decision.summary == (
        f"dataset drift share 0.42, 0.50 >= 0.30 in 2 consecutive reports "
        f"({short(newer)}, {short(older)}); drifted: monthly_charges, contract"
    )
    assert decision.links == {"report_ids": [newer.id, older.id]}
    assert decision.evidence["share"] == 0.3
    assert [r["drift_share"] for r in decision.evidence["reports"]] == [0.42, 0.5]


def test_drift_needs_every_report_of_the_run_to_drift(store: Store, dep: str) -> None:
    pol = policy(drift={"share": 0.3, "consecutive": 2})
    add_report(store.client, dep, past(30), share=0.6, drifted=["contract"])
    add_report(store.client, dep, past(20), share=0.1, drifted=["contract"])
    add_report(store.client, dep, past(10), share=0.6, drifted=["contract"])
    assert evaluate(store, dep, pol) == []  # the newest two: drifted, then not

    add_report(store.client, dep, past(5), share=0.3, drifted=["contract"])  # 0.3 >= 0.3
    assert [d.kind for d in evaluate(store, dep, pol)] == ["drift"]
    assert evaluate(store, dep, policy(drift={"share": 0.3, "consecutive": 3})) == []


def test_drift_needs_as_many_reports_as_consecutive(store: Store, dep: str) -> None:
    pol = policy(drift={"share": 0.3, "consecutive": 2})
    assert evaluate(store, dep, pol) == []
    add_report(store.client, dep, past(10), share=0.9, drifted=["contract"])
    assert evaluate(store, dep, pol) == []


def test_drift_ignores_reports_built_before_the_last_retrain_ended(store: Store, dep: str) -> None:
    pol = policy(drift={"share": 0.3, "consecutive": 2})
    add_report(store.client, dep, past(30), share=0.8, drifted=["contract"])
    add_report(store.client, dep, past(20), share=0.8, drifted=["contract"])
    assert len(evaluate(store, dep, pol)) == 1

    ended = record(store.client, dep, EVENT_PROMOTED)
    assert evaluate(store, dep, pol) == []
    first = add_report(store.client, dep, ended.created_at + timedelta(milliseconds=1), share=0.8)
    assert evaluate(store, dep, pol) == []  # one report after it, two needed
    second = add_report(store.client, dep, ended.created_at + timedelta(milliseconds=2), share=0.8)
    [decision] = evaluate(store, dep, pol)
    assert decision.links["report_ids"] == [second.id, first.id]

    time.sleep(0.01)  # the next event is written after both reports
    for kind in (EVENT_TRAINED, EVENT_REJECTED):  # each ends a retrain too
        record(store.client, dep, kind)
        assert evaluate(store, dep, pol) == []


def test_drift_does_not_fire_twice_on_the_same_reports(store: Store, dep: str) -> None:
    pol = policy(drift={"share": 0.3, "consecutive": 2})
    add_report(store.client, dep, past(30), share=0.8, drifted=["contract"])
    add_report(store.client, dep, past(20), share=0.8, drifted=["contract"])
    decisions = evaluate(store, dep, pol)
    assert len(decisions) == 1
    record(store.client, dep, EVENT_TRIGGERED, links=decision_links(decisions))

    assert evaluate(store, dep, pol) == []
    # one new report is not a run of two: the older one is spent
    add_report(store.client, dep, past(5), share=0.8, drifted=["contract"])
    assert evaluate(store, dep, pol) == []
    newest = add_report(store.client, dep, past(1), share=0.8, drifted=["contract"])
    [decision] = evaluate(store, dep, pol)
    assert decision.links["report_ids"][0] == newest.id


def test_drift_fires_on_a_named_feature_below_the_share(store: Store, dep: str) -> None:
    pol = policy(drift={"share": 0.3, "features": ["contract", "tenure"], "consecutive": 2})
    older = add_report(store.client, dep, past(20), share=0.45, drifted=["monthly_charges"])
    newer = add_report(store.client, dep, past(10), share=0.1, drifted=["contract"])

    [decision] = evaluate(store, dep, pol)

    assert decision.summary == (
        f"drift in 2 consecutive reports ({short(newer)} watched contract drifted, "
        f"{short(older)} share 0.45 >= 0.30); drifted: contract"
    )
    assert decision.evidence["reports"][0]["watched_drifted"] == ["contract"]
    assert decision.evidence["reports"][0]["by_share"] is False

    only_features = policy(drift={"share": None, "features": ["tenure"], "consecutive": 1})
    assert evaluate(store, dep, only_features) == []  # tenure did not drift
    add_report(store.client, dep, past(5), share=0.9, drifted=["monthly_charges"])
    assert evaluate(store, dep, only_features) == []  # the share is not looked at
    add_report(store.client, dep, past(1), share=0.05, drifted=["tenure"])
    [decision] = evaluate(store, dep, only_features)
    assert decision.summary.startswith("drift in the newest report (")
    assert decision.summary.endswith(" watched tenure drifted); drifted: tenure")


def test_drift_on_reports_built_from_data(store: Store, dep: str) -> None:
    """The monitor's own reports: a shifted window drifts, a like one does not."""
    reference = churn.generate(2_000, seed=1)
    like = churn.generate(2_000, seed=1, offset=5_000)
    shifted = churn.generate(
        2_000,
        seed=1,
        offset=5_000,
        drift=churn.Drift(
            start=0,
            kind="covariate",
            features={"monthly_charges": {"shift": 40.0}, "contract": {"month-to-month": 0.9}},
        ),
    )
    columns = ["monthly_charges", "contract", "tenure_months"]
    columns = [c for c in columns if c in reference.columns]

    def stored(frame: pd.DataFrame, minutes: float) -> Report:
        report = build_report(reference, frame, columns=columns, deployment=dep)
        report = replace(report, created_at=past(minutes))
        store.client.monitors.add_report(report)
        return report

    pol = policy(drift={"share": 0.5, "consecutive": 2})
    stored(shifted, 30)
    stored(like, 20)
    stored(shifted, 10)
    assert evaluate(store, dep, pol) == []
    newest = stored(shifted, 5)
    [decision] = evaluate(store, dep, pol)
    assert decision.links["report_ids"][0] == newest.id
    assert "monthly_charges" in decision.summary.split("drifted: ")[1]


# --- performance ------------------------------------------------------------------------------


def test_performance_realised_below_a_threshold(store: Store, dep: str) -> None:
    pol = policy(
        performance={"metric": "accuracy", "source": "realised", "below": 0.8, "min_labels": 100}
    )
    report = add_report(store.client, dep, past(10), realised=[window(400, accuracy=0.71)])

    [decision] = evaluate(store, dep, pol)

    assert decision.kind == "performance"
    assert decision.summary == (
        f"realised accuracy 0.71 < 0.80 in the newest report ({short(report)}); labelled rows 400"
    )
    assert decision.evidence["reports"][0]["value"] == 0.71
    assert decision.evidence["compared_with"] == "the absolute threshold 0.8"
    assert decision.links == {"report_ids": [report.id]}


def test_performance_realised_with_too_few_labels_does_not_fire(store: Store, dep: str) -> None:
    pol = policy(
        performance={"metric": "accuracy", "source": "realised", "below": 0.8, "min_labels": 100}
    )
    add_report(store.client, dep, past(10), realised=[window(99, accuracy=0.5)])
    assert evaluate(store, dep, pol) == []
    # the newest window with enough labels judges: here an earlier one, too low
    add_report(
        store.client, dep, past(5), realised=[window(300, accuracy=0.6), window(20, accuracy=0.9)]
    )
    [decision] = evaluate(store, dep, pol)
    assert "labelled rows 300" in decision.summary


def test_performance_realised_drop_compares_with_the_champion_at_training(
    store: Store, dep: str
) -> None:
    pol = policy(
        performance={
            "metric": "roc_auc",
            "source": "realised",
            "drop": 0.05,
            "min_labels": 100,
            "consecutive": 2,
        }
    )
    older = add_report(store.client, dep, past(20), realised=[window(300, roc_auc=0.77)])
    newer = add_report(store.client, dep, past(10), realised=[window(350, roc_auc=0.78)])

    [decision] = evaluate(store, dep, pol)

    assert decision.summary == (
        "realised roc_auc 0.78, 0.77 more than 0.05 below the champion churn/1's 0.84 at "
        f"training in 2 consecutive reports ({short(newer)}, {short(older)}); "
        "labelled rows 350, 300"
    )
    assert decision.evidence["champion"] == "churn/1"
    assert decision.evidence["champion_value"] == 0.84
    assert "training run of the champion churn/1" in decision.evidence["compared_with"]

    add_report(store.client, dep, past(5), realised=[window(300, roc_auc=0.80)])  # 0.04 below
    assert evaluate(store, dep, pol) == []
    # the same values against an absolute threshold below them do not fire
    below = policy(performance={"metric": "roc_auc", "source": "realised", "below": 0.75})
    assert evaluate(store, dep, below) == []


def test_performance_estimated_drop_uses_the_estimates_reference(store: Store, dep: str) -> None:
    pol = policy(performance={"metric": "accuracy", "source": "estimated", "drop": 0.05})
    add_report(store.client, dep, past(20), estimated=estimate("accuracy", 0.78, 0.80))
    assert evaluate(store, dep, pol) == []  # 0.02 below its reference

    report = add_report(store.client, dep, past(10), estimated=estimate("accuracy", 0.70, 0.80))
    [decision] = evaluate(store, dep, pol)
    assert decision.summary == (
        f"estimated accuracy 0.70 more than 0.05 below its reference 0.80 in the newest "
        f"report ({short(report)})"
    )
    assert decision.evidence["reports"][0]["reference"] == 0.8
    assert decision.evidence["reports"][0]["lower"] == pytest.approx(0.68)


def test_performance_estimated_below_on_built_reports(store: Store, dep: str) -> None:
    """Estimates riding on :func:`build_report`, as the monitor stores them."""
    frame = churn.generate(300, seed=4)

    def stored(value: float, minutes: float) -> Report:
        report = build_report(
            frame,
            frame,
            columns=["monthly_charges"],
            deployment=dep,
            estimated=estimate("roc_auc", value, 0.84),
        )
        report = replace(report, created_at=past(minutes))
        store.client.monitors.add_report(report)
        return report

    pol = policy(
        performance={"metric": "roc_auc", "source": "estimated", "below": 0.7, "consecutive": 2}
    )
    stored(0.65, 30)
    stored(0.72, 20)
    first = stored(0.69, 10)
    assert evaluate(store, dep, pol) == []
    second = stored(0.6999, 5)  # shown with enough digits to tell it from 0.70
    [decision] = evaluate(store, dep, pol)
    assert decision.summary == (
        f"estimated roc_auc 0.6999, 0.69 < 0.70 in 2 consecutive reports "
        f"({short(second)}, {short(first)})"
    )


def test_performance_without_a_champion_metric_cannot_judge_a_drop(store: Store, dep: str) -> None:
    pol = policy(performance={"metric": "f1", "source": "realised", "drop": 0.05})
    add_report(store.client, dep, past(10), realised=[window(500, f1=0.1)])
    assert evaluate(store, dep, pol) == []  # the champion's run logged no f1


# --- schedule ---------------------------------------------------------------------------------


def test_schedule_every_counts_from_the_policy_then_from_the_last_retrain(
    store: Store, dep: str
) -> None:
    pol = policy(schedule={"every": "7d"})
    set_at = store.client.loop.get_policy(dep).created_at
    assert evaluate(store, dep, pol, now=set_at + timedelta(days=6, hours=23)) == []
    [decision] = evaluate(store, dep, pol, now=set_at + timedelta(days=7))
    assert decision.kind == "schedule"
    assert "after the policy was set" in decision.summary

    started = record(store.client, dep, EVENT_TRAINING_STARTED)
    assert evaluate(store, dep, pol, now=started.created_at + timedelta(days=6)) == []
    [decision] = evaluate(store, dep, pol, now=started.created_at + timedelta(days=7))
    assert decision.links == {"schedule_due": (started.created_at + timedelta(days=7)).isoformat()}


def test_schedule_summary_and_cron(store: Store, dep: str) -> None:
    started = made_event(EVENT_TRAINING_STARTED, T0, 1)
    every = policy(schedule={"every": "1d"})
    [decision] = evaluate_triggers(
        store.client, dep, every, now=T0 + timedelta(days=2), events=[started]
    )
    assert decision.summary == (
        "schedule every 1d: due 2026-03-03 10:00 UTC, 1d after the last retrain started "
        "2026-03-02 10:00 UTC"
    )

    cron = policy(schedule={"cron": "0 3 * * MON"})
    due = datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
    kwargs: dict[str, Any] = {"events": [started]}
    assert (
        evaluate_triggers(store.client, dep, cron, now=due - timedelta(minutes=1), **kwargs) == []
    )
    [decision] = evaluate_triggers(store.client, dep, cron, now=due, **kwargs)
    assert decision.summary == (
        "schedule cron '0 3 * * MON': due 2026-03-09 03:00 UTC, the first time after the "
        "last retrain started 2026-03-02 10:00 UTC"
    )
    assert decision.evidence["due"] == due.isoformat()
    # a week's outage fires once, for the first missed time, not once per missed time
    [late] = evaluate_triggers(store.client, dep, cron, now=due + timedelta(days=14), **kwargs)
    assert late.links["schedule_due"] == due.isoformat()


def test_schedule_dropped_while_a_canary_ran_counts_from_then(store: Store, dep: str) -> None:
    pol = policy(schedule={"every": "1d"})
    events = [
        made_event(EVENT_TRAINING_STARTED, T0, 1),
        made_event(EVENT_TRIGGER_IGNORED, T0 + timedelta(days=1), 2, links={"schedule_due": "x"}),
    ]
    now = T0 + timedelta(days=1, hours=12)
    assert evaluate_triggers(store.client, dep, pol, now=now, events=events) == []
    # an ignored drift trigger does not move the schedule
    events[1] = made_event(EVENT_TRIGGER_IGNORED, T0 + timedelta(days=1), 2, links={})
    assert len(evaluate_triggers(store.client, dep, pol, now=now, events=events)) == 1


# --- new data ---------------------------------------------------------------------------------


def test_new_data_fires_on_a_version_newer_than_the_champions_and_the_last_retrains(
    store: Store,
) -> None:
    client = store.client
    register(client, store.folder, "nd", "nd-data", rows=300)
    client.deployments.create("nd", "nd@champion")
    client.loop.set_policy("nd", source="new_data", policy=policy().to_dict())
    pol = policy(new_data={"dataset": "nd-data"})
    assert evaluate(store, "nd", pol) == []  # the champion was trained on nd-data@1

    def add_version(seed: int) -> Any:
        path = store.folder / f"nd-{seed}.parquet"
        churn.generate(50, seed=seed).to_parquet(path, index=False)
        return client.datasets.add(path, "nd-data")

    v2 = add_version(20)
    [decision] = evaluate(store, "nd", pol)
    assert decision.kind == "new_data"
    added = v2.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert decision.summary.startswith(f"new data: nd-data@2 was added {added}")
    assert decision.summary.endswith(
        "; the champion nd/1 was trained on nd-data@1; no retrain has used nd-data yet"
    )
    assert decision.links == {"dataset": "nd-data@2"}
    assert decision.evidence["champion_trained_on"] == 1

    record(client, "nd", EVENT_TRAINING_STARTED, evidence={"dataset": "nd-data@2"})
    assert evaluate(store, "nd", pol) == []
    add_version(21)
    [decision] = evaluate(store, "nd", pol)
    assert decision.links == {"dataset": "nd-data@3"}
    assert decision.summary.endswith("the last retrain used nd-data@2")
    record(client, "nd", EVENT_TRIGGER_IGNORED, links=decision_links([decision]))
    assert evaluate(store, "nd", pol) == []  # dropped during a canary: spent


def test_new_data_on_an_unknown_dataset_does_not_fire(store: Store, dep: str) -> None:
    assert evaluate(store, dep, policy(new_data={"dataset": "no-such-data"})) == []


# --- manual -----------------------------------------------------------------------------------


def test_manual_request_fires_until_a_retrain_starts(store: Store, dep: str) -> None:
    pol = policy(manual=True)
    assert evaluate(store, dep, pol) == []
    event = request_manual(store.client, dep, "  new  pricing\nlaunched ", actor="alice")
    assert event.kind == EVENT_MANUAL_TRIGGER
    assert event.summary == "manual retrain requested by alice: new pricing launched"

    [decision] = evaluate(store, dep, pol)
    assert decision.kind == "manual"
    when = event.created_at.strftime("%Y-%m-%d %H:%M")
    assert decision.summary.startswith(f"manual retrain requested by alice at {when}")
    assert decision.summary.endswith(": new pricing launched")
    assert decision.links == {"manual_event_id": event.id}
    assert len(evaluate(store, dep, pol)) == 1  # still pending: nothing started

    record(store.client, dep, EVENT_TRAINING_STARTED)
    assert evaluate(store, dep, pol) == []
    request_manual(store.client, dep, "again")
    assert [d.kind for d in evaluate(store, dep, pol)] == ["manual"]
    assert evaluate(store, dep, policy(schedule={"every": "30d"})) == []  # manual off


def test_manual_request_refused_when_the_policy_does_not_allow_it(store: Store, dep: str) -> None:
    off = policy(drift=True)
    store.client.loop.set_policy(dep, source="drift: true", policy=off.to_dict())
    with pytest.raises(InvalidInput, match="does not allow manual retrains"):
        request_manual(store.client, dep, "please")
    with pytest.raises(InvalidInput, match="reason"):
        request_manual(store.client, dep, None)  # type: ignore[arg-type]


# --- all together -----------------------------------------------------------------------------


def test_decisions_come_in_priority_order(store: Store, dep: str) -> None:
    pol = policy(
        manual=True,
        drift={"share": 0.3, "consecutive": 1},
        performance={"metric": "accuracy", "source": "estimated", "below": 0.9},
        schedule={"every": "1d"},
    )
    report = add_report(
        store.client,
        dep,
        past(5),
        share=0.6,
        drifted=["contract"],
        estimated=estimate("accuracy", 0.7, 0.8),
    )
    request_manual(store.client, dep, "now")
    set_at = store.client.loop.get_policy(dep).created_at

    decisions = evaluate(store, dep, pol, now=set_at + timedelta(days=2))

    assert [d.kind for d in decisions] == ["manual", "performance", "drift", "schedule"]
    assert [d.kind for d in decisions] == [k for k in TRIGGER_ORDER if k != "new_data"]
    links = decision_links(decisions)
    assert links["triggers"] == ["manual", "performance", "drift", "schedule"]
    assert links["report_ids"] == [report.id]  # once, though two triggers read it
    assert set(links) == {"triggers", "report_ids", "manual_event_id", "schedule_due"}

    fired = record(store.client, dep, EVENT_TRIGGERED, links=links)
    # all spent; the schedule counts from when it fired
    assert evaluate(store, dep, pol, now=fired.created_at + timedelta(hours=23)) == []
    [again] = evaluate(store, dep, pol, now=fired.created_at + timedelta(days=1))
    assert "1d after the last scheduled trigger fired" in again.summary


def test_trigger_events_reads_only_the_kinds_triggers_need(store: Store, dep: str) -> None:
    record(store.client, dep, EVENT_NOTE)
    started = record(store.client, dep, EVENT_TRAINING_STARTED)
    events = trigger_events(store.client, dep)
    assert [e.id for e in events] == [started.id]
    assert set(EVENT_KINDS) >= {EVENT_TRIGGERED, EVENT_MANUAL_TRIGGER, EVENT_NOTE}


def test_decisions_are_frozen() -> None:
    decision = TriggerDecision("manual", "asked")
    with pytest.raises(AttributeError):
        decision.kind = "drift"  # type: ignore[misc]


# --- guards -----------------------------------------------------------------------------------


def guarded(**guards: Any) -> Policy:
    return policy(manual=True, guards=guards)


def test_cooldown_counts_from_the_end_of_the_last_retrain() -> None:
    pol = guarded(cooldown="6h")
    events = [
        made_event(EVENT_TRAINING_STARTED, T0, 1),
        made_event(EVENT_PROMOTED, T0 + timedelta(hours=2), 2),
    ]
    now = T0 + timedelta(hours=3, minutes=5)

    block = blocked_by_guards(pol, now=now, events=events, state=LoopStateName.STABLE)

    assert isinstance(block, GuardBlock)
    assert str(block) == (
        "cooldown: the last retrain ended 2026-03-02 12:00 UTC (1h 5m ago); the next may "
        "start after 2026-03-02 18:00 UTC (cooldown 6h)"
    )
    assert block.guard == "cooldown" and block.until == T0 + timedelta(hours=8)
    assert not block.drop
    assert (
        blocked_by_guards(pol, now=T0 + timedelta(hours=8), events=events, state="STABLE") is None
    )
    assert blocked_by_guards(guarded(cooldown=0), now=now, events=events, state="STABLE") is None


def test_cooldown_counts_from_a_start_that_never_ended() -> None:
    events = [
        made_event(EVENT_PROMOTED, T0, 1),
        made_event(EVENT_TRAINING_STARTED, T0 + timedelta(hours=1), 2),
    ]
    block = blocked_by_guards(
        guarded(cooldown="6h"), now=T0 + timedelta(hours=2), events=events, state="STABLE"
    )
    assert block is not None
    assert block.reason.startswith(
        "cooldown: the last retrain started 2026-03-02 11:00 UTC (1h ago) and has not ended"
    )


def test_max_retrains_per_day_counts_starts_in_the_last_24_hours() -> None:
    pol = guarded(cooldown=0, max_retrains_per_day=2)
    events = [
        made_event(EVENT_TRAINING_STARTED, T0 - timedelta(hours=30), 1),
        made_event(EVENT_TRAINING_STARTED, T0, 2),
        made_event(EVENT_TRAINING_STARTED, T0 + timedelta(hours=5), 3),
    ]
    now = T0 + timedelta(hours=6)
    block = blocked_by_guards(pol, now=now, events=events, state="STABLE")
    assert block is not None and block.guard == "max_retrains_per_day"
    assert block.reason == (
        "max_retrains_per_day: 2 retrains started in the 24 h before 2026-03-02 16:00 UTC "
        "(the limit is 2); the next may start after 2026-03-03 10:00 UTC"
    )
    after = T0 + timedelta(days=1, seconds=1)
    assert blocked_by_guards(pol, now=after, events=events, state="STABLE") is None
    assert (
        blocked_by_guards(
            guarded(cooldown=0, max_retrains_per_day=3), now=now, events=events, state="STABLE"
        )
        is None
    )


@pytest.mark.parametrize("state", ["TRIGGERED", "TRAINING", "GATED", "CANARY"])
def test_during_canary_modes(state: str) -> None:
    defer = blocked_by_guards(guarded(during_canary="defer"), now=T0, events=[], state=state)
    assert defer is not None and not defer.drop and defer.guard == "during_canary"
    assert str(defer) == (
        f"during_canary: defer: a retrain is under way (state {state}); the triggers wait "
        "until it ends"
    )
    ignore = blocked_by_guards(guarded(during_canary="ignore"), now=T0, events=[], state=state)
    assert ignore is not None and ignore.drop
    assert "the triggers are dropped" in ignore.reason
    assert (
        blocked_by_guards(guarded(during_canary="restart"), now=T0, events=[], state=state) is None
    )


def test_restart_still_obeys_the_cooldown_and_settled_states_are_free() -> None:
    events = [made_event(EVENT_TRAINED, T0, 1)]
    restart = guarded(during_canary="restart", cooldown="1h")
    block = blocked_by_guards(
        restart, now=T0 + timedelta(minutes=10), events=events, state="CANARY"
    )
    assert block is not None and block.guard == "cooldown"
    for state in ("STABLE", "PROMOTED", "ROLLED_BACK", "REJECTED"):
        assert blocked_by_guards(guarded(), now=T0, events=[], state=state) is None


def test_guards_read_the_state_from_the_store(store: Store, dep: str) -> None:
    client = store.client
    state = client.loop.state(dep)
    state, _ = client.loop.transition(
        dep,
        expected_revision=state.revision,
        to_state="CANARY",
        step=0,
        data={},
        kind=EVENT_TRAINING_STARTED,
        summary="started",
    )
    events = trigger_events(client, dep)
    block = blocked_by_guards(
        guarded(cooldown=0), now=datetime.now(UTC), events=events, state=state
    )
    assert block is not None and block.guard == "during_canary"
