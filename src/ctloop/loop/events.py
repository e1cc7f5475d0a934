"""The kinds of loop events: what the controller writes, and what the triggers read back.

Every :class:`~ctloop.loop.entities.LoopEvent` has a ``kind``. The controller writes these
(``client.loop.transition`` / ``client.loop.record``); :mod:`ctloop.loop.triggers` reads
them to know when the last retrain started and ended, which reports and dataset versions
a trigger already spent, and whether a manual retrain is pending. Use the constants, never
the text, so a typo is an import error rather than a trigger that never fires.

What each kind's ``evidence`` and ``links`` hold, where the triggers rely on it:

- ``triggered``, ``trigger_ignored``: ``links`` as :func:`ctloop.loop.triggers.decision_links`
  gives them (``report_ids``, ``dataset``, ``manual_event_id``, ``schedule_due``,
  ``triggers``); what they name is spent and does not fire again.
- ``training_started``: ``evidence["dataset"]`` is the dataset version the retrain reads,
  as ``NAME@N`` (resolved: never ``@latest``), when it reads one.
"""

from __future__ import annotations

__all__ = [
    "EVENT_ANALYSIS",
    "EVENT_CANARY_STEP",
    "EVENT_GATE_FAILED",
    "EVENT_GATE_PASSED",
    "EVENT_KINDS",
    "EVENT_MANUAL_TRIGGER",
    "EVENT_NOTE",
    "EVENT_PROMOTED",
    "EVENT_REJECTED",
    "EVENT_ROLLED_BACK",
    "EVENT_TRAINED",
    "EVENT_TRAINING_STARTED",
    "EVENT_TRIGGERED",
    "EVENT_TRIGGER_IGNORED",
    "RETRAIN_ENDED",
    "SPENDING",
]

#: One or more triggers fired and the controller moved to TRIGGERED (links: what fired).
EVENT_TRIGGERED = "triggered"
#: Triggers fired during a canary and ``during_canary: ignore`` dropped them (links: what
#: fired, now spent).
EVENT_TRIGGER_IGNORED = "trigger_ignored"
#: A person asked for a retrain (``ctloop loop trigger``); pending until a retrain starts.
EVENT_MANUAL_TRIGGER = "manual_trigger"
#: The pipeline run of a retrain started (evidence ``dataset``: the version it reads).
EVENT_TRAINING_STARTED = "training_started"
#: A model was retrained outside the controller and the fact recorded with
#: ``client.loop.record`` (a person, another system): like ``promoted``, it ends a retrain
#: for the cooldown and the triggers. The controller records how its own training ended as
#: ``gate_passed``, ``gate_failed`` or ``rejected``.
EVENT_TRAINED = "trained"
#: The candidate passed the gate against the champion.
EVENT_GATE_PASSED = "gate_passed"
#: The candidate failed the gate against the champion.
EVENT_GATE_FAILED = "gate_failed"
#: The canary moved to a new step (a share of traffic).
EVENT_CANARY_STEP = "canary_step"
#: One analysis of the canary against the champion (its checks and their verdicts).
EVENT_ANALYSIS = "analysis"
#: The candidate took all traffic and became the champion.
EVENT_PROMOTED = "promoted"
#: The canary was stopped and the champion given all traffic back.
EVENT_ROLLED_BACK = "rolled_back"
#: The retrain ended without a canary (failed gate, failed pipeline).
EVENT_REJECTED = "rejected"
#: Anything else worth keeping in the history; no trigger reads it.
EVENT_NOTE = "note"

#: Every kind above.
EVENT_KINDS = (
    EVENT_TRIGGERED,
    EVENT_TRIGGER_IGNORED,
    EVENT_MANUAL_TRIGGER,
    EVENT_TRAINING_STARTED,
    EVENT_TRAINED,
    EVENT_GATE_PASSED,
    EVENT_GATE_FAILED,
    EVENT_CANARY_STEP,
    EVENT_ANALYSIS,
    EVENT_PROMOTED,
    EVENT_ROLLED_BACK,
    EVENT_REJECTED,
    EVENT_NOTE,
)

#: The kinds after which the last retrain counts as finished: reports built before the
#: newest of them judged the model (or the data) that retrain replaced.
RETRAIN_ENDED = (EVENT_TRAINED, EVENT_PROMOTED, EVENT_ROLLED_BACK, EVENT_REJECTED)

#: The kinds whose ``links`` spend what they name (reports, a dataset version, a manual
#: request, a scheduled time): it does not fire a trigger again.
SPENDING = (EVENT_TRIGGERED, EVENT_TRIGGER_IGNORED, EVENT_TRAINING_STARTED)
