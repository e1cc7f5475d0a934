"""When to retrain, and what stops it: the policy's triggers and guards, read off the store.

:func:`evaluate_triggers` looks at what the store holds for a deployment — the monitor's
reports, dataset versions, the champion's lineage and metrics, the loop's own events —
and returns a :class:`TriggerDecision` for every trigger of the policy that fires now, in
the fixed order of :data:`TRIGGER_ORDER`. :func:`blocked_by_guards` says why a retrain may
not start now (a :class:`GuardBlock`), or None. Neither trains, moves traffic or writes
anything: the controller does, and records what it did as events
(:mod:`ctloop.loop.events`), which is how the next evaluation knows what was spent.

How each trigger reads the store:

- **drift**: the newest ``consecutive`` reports built after the last retrain ended (the
  newest event of a kind in :data:`~ctloop.loop.events.RETRAIN_ENDED`) must each have
  drifted: a drift share of at least ``share``, *or* any of the named ``features`` among
  its drifted features (either condition is enough for a report; ``share: null`` leaves
  the features only).
- **performance**: the same newest ``consecutive`` reports must each be too low. With
  ``source: realised`` a report judges by its newest realised window with at least
  ``min_labels`` labelled rows and a value of the metric; ``below`` is absolute, ``drop``
  is from the champion's value of the metric logged by its training run (the version's
  metrics at registration, e.g. the pipeline's ``roc_auc`` on its holdout). With
  ``source: estimated`` a report judges by its newest estimate; ``drop`` is from the
  estimate's own ``reference`` (the champion's realised value on the reference data). A
  report that cannot judge (too few labels, no estimate) breaks the run.
- **schedule**: ``every`` has passed, or the cron expression's first time has come, since
  the last retrain started, or since the schedule last fired or was dropped, whichever is
  newest (with none of these, since the policy was first set). A controller that was down
  fires once, for the first time it missed.
- **new_data**: the dataset's latest version is newer than the version the champion was
  trained on (its lineage) and newer than the one the last retrain used (the
  ``training_started`` event's ``evidence["dataset"]``).
- **manual**: a :data:`~ctloop.loop.events.EVENT_MANUAL_TRIGGER` event
  (:func:`request_manual`) that no retrain has started since; only when the policy has
  ``manual: true``.

A trigger does not fire twice on the same thing: the controller writes
:func:`decision_links` into the ``links`` of its ``triggered`` event (or of a
``trigger_ignored`` event when it drops the triggers), and reports, dataset versions,
manual requests and scheduled times named in those links are spent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctloop.errors import NotFound
from ctloop.loop.entities import LoopEvent
from ctloop.loop.events import (
    EVENT_MANUAL_TRIGGER,
    EVENT_TRAINING_STARTED,
    EVENT_TRIGGER_IGNORED,
    RETRAIN_ENDED,
    SPENDING,
)
from ctloop.loop.guards import IN_FLIGHT, GuardBlock, blocked_by_guards
from ctloop.loop.guards import newest as _newest
from ctloop.loop.guards import utc as _utc
from ctloop.loop.guards import when as _when
from ctloop.loop.manual import request_manual
from ctloop.loop.policy import format_duration

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.loop.policy import (
        DriftTrigger,
        NewDataTrigger,
        PerformanceTrigger,
        Policy,
        ScheduleTrigger,
    )
    from ctloop.monitoring.entities import ReportSummary
    from ctloop.registry.entities import Lineage

__all__ = [
    "IN_FLIGHT",
    "TRIGGER_KINDS",
    "TRIGGER_ORDER",
    "GuardBlock",
    "TriggerDecision",
    "blocked_by_guards",
    "decision_links",
    "evaluate_triggers",
    "request_manual",
    "trigger_events",
]

#: The order decisions come in: a person's request first, then the live model's quality,
#: the data it sees, new data to learn from, and the clock last.
TRIGGER_ORDER = ("manual", "performance", "drift", "new_data", "schedule")

#: The event kinds :func:`evaluate_triggers` and :func:`blocked_by_guards` read.
TRIGGER_KINDS = tuple(dict.fromkeys((*SPENDING, *RETRAIN_ENDED, EVENT_MANUAL_TRIGGER)))


_SHOWN_FEATURES = 5
_MAX_REASON_IN_SUMMARY = 300


@dataclass(frozen=True)
class TriggerDecision:
    """A trigger that fires now, and why.

    Attributes:
        kind: ``manual``, ``performance``, ``drift``, ``new_data`` or ``schedule``.
        summary: one sentence for ``ctloop loop history``, naming values and thresholds.
        evidence: the numbers behind it, with the thresholds (JSON).
        links: what it spends (JSON): ``report_ids``, ``dataset`` (``NAME@N``),
            ``manual_event_id`` or ``schedule_due`` (ISO 8601).
    """

    kind: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict, hash=False)
    links: dict[str, Any] = field(default_factory=dict, hash=False)


# --- evaluating the triggers ------------------------------------------------------------------


def evaluate_triggers(
    client: Client,
    deployment: str,
    policy: Policy,
    *,
    now: datetime,
    events: Sequence[LoopEvent],
) -> list[TriggerDecision]:
    """Every trigger of ``policy`` that fires now for ``deployment``, in :data:`TRIGGER_ORDER`.

    Args:
        client: the store to read.
        deployment: the deployment's name.
        policy: its policy.
        now: the time to judge the schedule at (naive means UTC).
        events: the deployment's loop events of at least the kinds in
            :data:`TRIGGER_KINDS`, complete (:func:`trigger_events` reads them); any order.

    Raises:
        NotFound: an unknown deployment.
    """
    look = _Look(client, deployment, policy, _utc(now), sorted(events, key=lambda e: e.seq))
    triggers = policy.triggers
    found = [
        _manual(look) if triggers.manual else None,
        _performance(look, triggers.performance) if triggers.performance else None,
        _drift(look, triggers.drift) if triggers.drift else None,
        _new_data(look, triggers.new_data) if triggers.new_data else None,
        _schedule(look, triggers.schedule) if triggers.schedule else None,
    ]
    return [d for d in found if d is not None]


def decision_links(decisions: Iterable[TriggerDecision]) -> dict[str, Any]:
    """The links of the ``triggered`` (or ``trigger_ignored``) event written for
    ``decisions``: each decision's links merged, ``report_ids`` joined without repeats,
    and ``triggers`` listing their kinds. Writing them spends what they name."""
    out: dict[str, Any] = {"triggers": []}
    report_ids: list[str] = []
    for decision in decisions:
        out["triggers"].append(decision.kind)
        for key, value in decision.links.items():
            if key == "report_ids":
                report_ids.extend(r for r in value if r not in report_ids)
            else:
                out[key] = value
    if report_ids:
        out["report_ids"] = report_ids
    return out


def trigger_events(client: Client, deployment: str) -> list[LoopEvent]:
    """Every event of ``deployment`` of the kinds in :data:`TRIGGER_KINDS`, oldest first:
    what :func:`evaluate_triggers` and :func:`blocked_by_guards` need as ``events``.

    Raises:
        NotFound: an unknown deployment.
    """
    page = 1000
    out: list[LoopEvent] = []
    after: int | None = None
    while True:
        batch = client.loop.events(deployment, kinds=TRIGGER_KINDS, limit=page, after_seq=after)
        out.extend(batch)
        if len(batch) < page:
            return out
        after = batch[-1].seq


# --- what one evaluation reads ----------------------------------------------------------------


class _Look:
    """One evaluation's view of the store: the inputs, and what it read once."""

    def __init__(
        self,
        client: Client,
        deployment: str,
        policy: Policy,
        now: datetime,
        events: list[LoopEvent],
    ) -> None:
        self.client, self.deployment, self.policy = client, deployment, policy
        self.now, self.events = now, events
        self._champion: tuple[Lineage | None, str] | None = None

    @property
    def model(self) -> str:
        return self.policy.model or self.client.deployments.get(self.deployment).model

    def champion(self) -> tuple[Lineage | None, str]:
        """The lineage of ``MODEL@champion`` (None when there is none), and that ref."""
        if self._champion is None:
            ref = f"{self.model}@champion"
            try:
                self._champion = (self.client.models.lineage(ref), ref)
            except NotFound:
                self._champion = (None, ref)
        return self._champion

    def spent(self, key: str) -> list[Any]:
        """The values of ``links[key]`` of the spending events, oldest first."""
        return [e.links[key] for e in self.events if e.kind in SPENDING and key in e.links]

    def fresh_reports(self, count: int) -> list[ReportSummary]:
        """The newest ``count`` reports built after the last retrain ended, newest first,
        stopping at the first one a trigger spent (fewer than ``count``: not enough)."""
        ended = _newest(self.events, RETRAIN_ENDED)
        cutoff = None if ended is None else ended.created_at
        spent = {r for ids in self.spent("report_ids") for r in ids}
        # a few more than needed: `since` includes reports built in the cutoff's millisecond
        reports = self.client.monitors.reports(self.deployment, limit=count + 10, since=cutoff)
        out: list[ReportSummary] = []
        for summary in reports:
            if cutoff is not None and summary.created_at <= cutoff:
                continue
            if summary.id in spent or len(out) == count:
                break
            out.append(summary)
        return out


# --- the triggers -----------------------------------------------------------------------------


def _manual(look: _Look) -> TriggerDecision | None:
    request = _newest(look.events, (EVENT_MANUAL_TRIGGER,))
    if request is None or any(e.kind in SPENDING and e.seq > request.seq for e in look.events):
        return None
    who = str(request.evidence.get("requested_by") or request.actor)
    reason = str(request.evidence.get("reason") or "no reason given")
    return TriggerDecision(
        kind="manual",
        summary=(
            f"manual retrain requested by {who} at {_when(request.created_at)}: "
            f"{_clip(reason, _MAX_REASON_IN_SUMMARY)}"
        ),
        evidence={
            "requested_by": who,
            "reason": reason,
            "requested_at": request.created_at.isoformat(),
        },
        links={"manual_event_id": request.id},
    )


def _drift(look: _Look, trigger: DriftTrigger) -> TriggerDecision | None:
    run = look.fresh_reports(trigger.consecutive)
    if len(run) < trigger.consecutive:
        return None
    rows: list[dict[str, Any]] = []
    for report in run:
        share = report.drift_share
        by_share = trigger.share is not None and share is not None and share >= trigger.share
        watched = [f for f in report.drifted_features if f in trigger.features]
        if not (by_share or watched):
            return None
        rows.append(
            {
                "id": report.id,
                "created_at": report.created_at.isoformat(),
                "drift_share": share,
                "drifted_features": list(report.drifted_features),
                "by_share": by_share,
                "watched_drifted": watched,
            }
        )
    drifted = _features(run[0].drifted_features)
    if all(r["by_share"] for r in rows):
        assert trigger.share is not None
        shares = ", ".join(_fmt(r["drift_share"], trigger.share) for r in rows)
        summary = (
            f"dataset drift share {shares} >= {_fmt(trigger.share)} in {_where(run)}; "
            f"drifted: {drifted}"
        )
    else:
        clauses = ", ".join(f"{_short(r['id'])} {_drift_clause(r, trigger)}" for r in rows)
        place = "the newest report" if len(run) == 1 else f"{len(run)} consecutive reports"
        summary = f"drift in {place} ({clauses}); drifted: {drifted}"
    return TriggerDecision(
        kind="drift",
        summary=summary,
        evidence={
            "share": trigger.share,
            "features": list(trigger.features),
            "consecutive": trigger.consecutive,
            "reports": rows,
        },
        links={"report_ids": [r.id for r in run]},
    )


def _drift_clause(row: dict[str, Any], trigger: DriftTrigger) -> str:
    if row["by_share"]:
        assert trigger.share is not None
        return f"share {_fmt(row['drift_share'], trigger.share)} >= {_fmt(trigger.share)}"
    return f"watched {', '.join(row['watched_drifted'])} drifted"


def _performance(look: _Look, trigger: PerformanceTrigger) -> TriggerDecision | None:
    run = look.fresh_reports(trigger.consecutive)
    if len(run) < trigger.consecutive:
        return None
    metric, realised = trigger.metric, trigger.source == "realised"
    champion_value: float | None = None
    champion_ref = None
    if realised and trigger.drop is not None:
        lineage, _ = look.champion()
        if lineage is None:
            return None
        champion_ref = lineage.version.ref
        champion_value = _finite(lineage.version.metrics.get(metric))
        if champion_value is None:
            return None
    rows: list[dict[str, Any]] = []
    for summary in run:
        report = look.client.monitors.report(summary.id)
        if realised:
            row = _realised_window(report.realised_performance, metric, trigger.min_labels)
            if row is not None:
                row["reference"] = champion_value
        else:
            row = _estimated_window(report.estimated_performance, metric)
        if row is None:
            return None
        value, reference = row["value"], row["reference"]
        if trigger.below is not None:
            low = value < trigger.below
        else:
            assert trigger.drop is not None
            low = reference is not None and reference - value > trigger.drop
        if not low:
            return None
        rows.append({"id": summary.id, **row})
    evidence: dict[str, Any] = {
        "metric": metric,
        "source": trigger.source,
        "below": trigger.below,
        "drop": trigger.drop,
        "consecutive": trigger.consecutive,
    }
    if realised:
        evidence["min_labels"] = trigger.min_labels
    where = _where(run)
    if trigger.below is not None:
        values = ", ".join(_fmt(r["value"], trigger.below) for r in rows)
        summary_text = f"{trigger.source} {metric} {values} < {_fmt(trigger.below)} in {where}"
        evidence["compared_with"] = f"the absolute threshold {trigger.below}"
    else:
        assert trigger.drop is not None
        drop = trigger.drop
        values = ", ".join(_fmt(r["value"], r["reference"] - drop) for r in rows)
        if realised:
            assert champion_value is not None
            against = f"the champion {champion_ref}'s {_fmt(champion_value)} at training"
            evidence["compared_with"] = (
                f"the {metric} logged by the training run of the champion {champion_ref}"
            )
            evidence["champion"] = champion_ref
            evidence["champion_value"] = champion_value
        else:
            refs = list(dict.fromkeys(_fmt(r["reference"]) for r in rows))
            against = f"its reference {', '.join(refs)}"
            evidence["compared_with"] = (
                "each estimate's reference: the champion's realised value on the monitor's "
                "reference data"
            )
        summary_text = (
            f"{trigger.source} {metric} {values} more than {_fmt(drop)} below {against} in {where}"
        )
    if realised:
        summary_text += f"; labelled rows {', '.join(str(r['labelled']) for r in rows)}"
    evidence["reports"] = rows
    return TriggerDecision(
        kind="performance",
        summary=summary_text,
        evidence=evidence,
        links={"report_ids": [r.id for r in run]},
    )


def _realised_window(
    windows: list[dict[str, Any]] | None, metric: str, min_labels: int
) -> dict[str, Any] | None:
    """The newest window with ``min_labels`` labelled rows and a value of ``metric``."""
    for window in reversed(windows or []):
        labelled = int(window.get("labelled") or 0)
        value = _finite((window.get("metrics") or {}).get(metric))
        if labelled >= min_labels and value is not None:
            return {
                "value": value,
                "labelled": labelled,
                "window_start": window.get("start"),
                "window_end": window.get("end"),
            }
    return None


def _estimated_window(windows: list[dict[str, Any]] | None, metric: str) -> dict[str, Any] | None:
    """The newest estimate of ``metric``, with its band and reference."""
    if not windows:
        return None
    window = windows[-1]
    estimate = (window.get("metrics") or {}).get(metric) or {}
    value = _finite(estimate.get("value"))
    if value is None:
        return None
    return {
        "value": value,
        "reference": _finite(estimate.get("reference")),
        "lower": _finite(estimate.get("lower")),
        "upper": _finite(estimate.get("upper")),
        "rows": window.get("rows"),
        "window_start": window.get("start"),
        "window_end": window.get("end"),
    }


def _new_data(look: _Look, trigger: NewDataTrigger) -> TriggerDecision | None:
    name = trigger.dataset
    try:
        latest_number = look.client.datasets.info(name).latest_version
    except NotFound:
        return None
    if latest_number is None:
        return None
    lineage, champion_ref = look.champion()
    trained: int | None = None
    if lineage is not None:
        used = [i for i in lineage.inputs if i.dataset == name]
        training = [i for i in used if i.context == "training"] or used
        trained = max((i.version for i in training), default=None)
    retrained = [
        v
        for v in (
            *(
                _version_of(e.evidence.get("dataset"), name)
                for e in look.events
                if e.kind == EVENT_TRAINING_STARTED
            ),
            *(_version_of(d, name) for d in look.spent("dataset")),
        )
        if v is not None
    ]
    last_used = max(retrained, default=None)
    if latest_number <= max(trained or 0, last_used or 0):
        return None
    latest = look.client.datasets.get(f"{name}@{latest_number}")
    parts = []
    if lineage is not None:
        champion = lineage.version.ref
        parts.append(
            f"the champion {champion} was trained on {name}@{trained}"
            if trained is not None
            else f"the champion {champion} was not trained on {name}"
        )
    else:
        parts.append(f"there is no champion ({champion_ref})")
    parts.append(
        f"the last retrain used {name}@{last_used}"
        if last_used is not None
        else f"no retrain has used {name} yet"
    )
    return TriggerDecision(
        kind="new_data",
        summary=f"new data: {latest.ref} was added {_when(latest.created_at)}; " + "; ".join(parts),
        evidence={
            "dataset": name,
            "latest": latest_number,
            "added_at": latest.created_at.isoformat(),
            "champion": None if lineage is None else lineage.version.ref,
            "champion_trained_on": trained,
            "last_retrain_used": last_used,
        },
        links={"dataset": latest.ref},
    )


def _version_of(value: Any, name: str) -> int | None:
    """The version number of ``name`` in ``NAME@N`` (or ``{"name", "version"}``), or None."""
    if isinstance(value, dict):
        if value.get("name") == name and isinstance(value.get("version"), int):
            return int(value["version"])
        return None
    if isinstance(value, str) and "@" in value:
        base, _, number = value.rpartition("@")
        if base == name and number.isdigit():
            return int(number)
    return None


def _schedule(look: _Look, trigger: ScheduleTrigger) -> TriggerDecision | None:
    anchor: datetime | None = None
    since = ""
    for event in reversed(look.events):
        if event.kind == EVENT_TRAINING_STARTED:
            anchor, since = event.created_at, "the last retrain started"
            break
        if event.kind in SPENDING and "schedule_due" in event.links:
            anchor = event.created_at
            since = (
                "a scheduled retrain was dropped"
                if event.kind == EVENT_TRIGGER_IGNORED
                else "the last scheduled trigger fired"
            )
            break
    if anchor is None:
        try:
            anchor = look.client.loop.get_policy(look.deployment).created_at
        except NotFound:
            return None  # no policy stored: nothing to count from
        since = "the policy was set"
    due = _utc(trigger.next_fire(anchor))
    if due > look.now:
        return None
    if trigger.cron is not None:
        spec, gap = f"cron '{trigger.cron}'", "the first time after"
    else:
        assert trigger.every is not None
        spec, gap = (
            f"every {format_duration(trigger.every)}",
            f"{format_duration(trigger.every)} after",
        )
    return TriggerDecision(
        kind="schedule",
        summary=f"schedule {spec}: due {_when(due)}, {gap} {since} {_when(anchor)}",
        evidence={
            "every": None if trigger.every is None else format_duration(trigger.every),
            "cron": trigger.cron,
            "since": anchor.isoformat(),
            "since_what": since,
            "due": due.isoformat(),
            "now": look.now.isoformat(),
        },
        links={"schedule_due": due.isoformat()},
    )


# --- helpers ----------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: float, near: float | None = None) -> str:
    """Two decimals, or as many more as it takes to tell ``value`` from ``near``."""
    text = f"{value:.2f}"
    if near is None or value == near:
        return text
    for digits in range(3, 7):
        if text != f"{near:.{digits - 1}f}":
            break
        text = f"{value:.{digits}f}"
    return text


def _short(report_id: str) -> str:
    return f"{report_id[:8]}…"


def _where(run: Sequence[ReportSummary]) -> str:
    ids = ", ".join(_short(r.id) for r in run)
    if len(run) == 1:
        return f"the newest report ({ids})"
    return f"{len(run)} consecutive reports ({ids})"


def _features(names: Sequence[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:_SHOWN_FEATURES])
    return shown if len(names) <= _SHOWN_FEATURES else f"{shown} … ({len(names)} in all)"


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
