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

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctloop._internal.text import clip, format_duration
from ctloop.errors import NotFound
from ctloop.loop._look import Look, TriggerDecision
from ctloop.loop._report_triggers import drift, performance
from ctloop.loop.entities import LoopEvent
from ctloop.loop.events import (
    EVENT_MANUAL_TRIGGER,
    EVENT_TRAINING_STARTED,
    EVENT_TRIGGER_IGNORED,
    RETRAIN_ENDED,
    SPENDING,
)
from ctloop.loop.guards import IN_FLIGHT, GuardBlock, blocked_by_guards, newest, utc, when
from ctloop.loop.manual import request_manual

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.loop.policy import (
        NewDataTrigger,
        Policy,
        ScheduleTrigger,
    )

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


_MAX_REASON_IN_SUMMARY = 300


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
    look = Look(client, deployment, policy, utc(now), sorted(events, key=lambda e: e.seq))
    triggers = policy.triggers
    found = [
        _manual(look) if triggers.manual else None,
        performance(look, triggers.performance) if triggers.performance else None,
        drift(look, triggers.drift) if triggers.drift else None,
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


# --- the triggers -----------------------------------------------------------------------------


def _manual(look: Look) -> TriggerDecision | None:
    request = newest(look.events, (EVENT_MANUAL_TRIGGER,))
    if request is None or any(e.kind in SPENDING and e.seq > request.seq for e in look.events):
        return None
    who = str(request.evidence.get("requested_by") or request.actor)
    reason = str(request.evidence.get("reason") or "no reason given")
    return TriggerDecision(
        kind="manual",
        summary=(
            f"manual retrain requested by {who} at {when(request.created_at)}: "
            f"{clip(reason, _MAX_REASON_IN_SUMMARY)}"
        ),
        evidence={
            "requested_by": who,
            "reason": reason,
            "requested_at": request.created_at.isoformat(),
        },
        links={"manual_event_id": request.id},
    )


def _new_data(look: Look, trigger: NewDataTrigger) -> TriggerDecision | None:
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
        summary=f"new data: {latest.ref} was added {when(latest.created_at)}; " + "; ".join(parts),
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


def _schedule(look: Look, trigger: ScheduleTrigger) -> TriggerDecision | None:
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
    due = utc(trigger.next_fire(anchor))
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
        summary=f"schedule {spec}: due {when(due)}, {gap} {since} {when(anchor)}",
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
