"""What stops a retrain from starting now: the policy's guards.

:func:`blocked_by_guards` returns a :class:`GuardBlock` naming the guard, its values and
when it lifts, or None. It reads the loop's own events (:mod:`ctloop.loop.events`) and
writes nothing; :mod:`ctloop.loop.triggers` says what would start one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ctloop._internal.text import format_duration
from ctloop.errors import InvalidInput
from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName
from ctloop.loop.events import EVENT_TRAINING_STARTED, RETRAIN_ENDED

if TYPE_CHECKING:
    from ctloop.loop.policy import Policy

__all__ = ["IN_FLIGHT", "GuardBlock", "ago", "blocked_by_guards", "newest", "utc", "when"]

#: The states in which a retrain is under way; ``guards.during_canary`` applies in them.
IN_FLIGHT = (
    LoopStateName.TRIGGERED,
    LoopStateName.TRAINING,
    LoopStateName.GATED,
    LoopStateName.CANARY,
)


@dataclass(frozen=True)
class GuardBlock:
    """Why a retrain may not start now; ``str(block)`` is the sentence.

    Attributes:
        guard: ``during_canary``, ``cooldown`` or ``max_retrains_per_day``.
        reason: one sentence naming the guard, its values and when it lifts.
        drop: True when the triggers are to be dropped, not kept waiting
            (``during_canary: ignore``): record them in a ``trigger_ignored`` event with
            :func:`decision_links`, which spends them.
        until: when the guard lifts, if that is known (cooldown, daily limit).
    """

    guard: str
    reason: str
    drop: bool = False
    until: datetime | None = None

    def __str__(self) -> str:
        return self.reason


def blocked_by_guards(
    policy: Policy,
    *,
    now: datetime,
    events: Sequence[LoopEvent],
    state: LoopState | LoopStateName | str,
) -> GuardBlock | None:
    """Why a retrain may not start now under ``policy.guards``, or None when it may.

    Checked in this order, the first that applies wins:

    - ``during_canary``, when ``state`` is one of :data:`IN_FLIGHT`: ``defer`` blocks (the
      triggers are evaluated again once the retrain ends; report-based ones then read only
      reports built after it), ``ignore`` blocks with ``drop=True`` (the caller records the
      triggers as ``trigger_ignored``, spending them), ``restart`` does not block: the
      controller rolls the candidate back and starts over, and the other guards still
      apply to that new retrain;
    - ``cooldown``: measured from the newest event of a kind in
      :data:`~ctloop.loop.events.RETRAIN_ENDED`, or from the last ``training_started`` when
      that is newer (a retrain that never wrote how it ended);
    - ``max_retrains_per_day``: ``training_started`` events in the 24 hours before ``now``.

    Args:
        policy: the policy whose guards apply.
        now: the time to judge at (naive means UTC).
        events: the deployment's loop events, as for :func:`evaluate_triggers`.
        state: where the controller is (a :class:`LoopState`, or a state name).
    """
    guards = policy.guards
    at = utc(now)
    ordered = sorted(events, key=lambda e: e.seq)
    name = LoopStateName(state.state if isinstance(state, LoopState) else str(state).upper())
    if name in IN_FLIGHT and guards.during_canary != "restart":
        if guards.during_canary == "ignore":
            return GuardBlock(
                "during_canary",
                f"during_canary: ignore: a retrain is under way (state {name.value}), so "
                "the triggers are dropped",
                drop=True,
            )
        return GuardBlock(
            "during_canary",
            f"during_canary: defer: a retrain is under way (state {name.value}); the "
            "triggers wait until it ends",
        )
    if guards.cooldown > timedelta(0):
        ended = newest(ordered, RETRAIN_ENDED)
        started = newest(ordered, (EVENT_TRAINING_STARTED,))
        anchor: LoopEvent | None
        if started is not None and (ended is None or started.seq > ended.seq):
            anchor, what = started, "started {when} ({ago} ago) and has not ended"
        else:
            anchor, what = ended, "ended {when} ({ago} ago)"
        if anchor is not None and anchor.created_at + guards.cooldown > at:
            until = anchor.created_at + guards.cooldown
            done = what.format(when=when(anchor.created_at), ago=ago(at - anchor.created_at))
            return GuardBlock(
                "cooldown",
                f"cooldown: the last retrain {done}; the next may start after {when(until)} "
                f"(cooldown {format_duration(guards.cooldown)})",
                until=until,
            )
    day_ago = at - timedelta(days=1)
    recent = [
        e for e in ordered if e.kind == EVENT_TRAINING_STARTED and day_ago < e.created_at <= at
    ]
    if len(recent) >= guards.max_retrains_per_day:
        until = recent[-guards.max_retrains_per_day].created_at + timedelta(days=1)
        return GuardBlock(
            "max_retrains_per_day",
            f"max_retrains_per_day: {len(recent)} retrains started in the 24 h before "
            f"{when(at)} (the limit is {guards.max_retrains_per_day}); the next may start "
            f"after {when(until)}",
            until=until,
        )
    return None


# --- time helpers (also used by the triggers) ---------------------------------------------


def newest(events: Sequence[LoopEvent], kinds: Sequence[str]) -> LoopEvent | None:
    """The newest event of one of ``kinds`` (``events`` ordered by seq)."""
    return next((e for e in reversed(events) if e.kind in kinds), None)


def utc(when: datetime) -> datetime:
    if not isinstance(when, datetime):
        raise InvalidInput(f"now={when!r}: give a datetime (UTC)")
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def when(when: datetime) -> str:
    at = utc(when)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC" if at.second else "%Y-%m-%d %H:%M UTC")


def ago(span: timedelta) -> str:
    """``timedelta(hours=1, minutes=5)`` → ``"1h 5m"``: the two largest units."""
    seconds = max(int(span.total_seconds()), 0)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2]) or "0s"
