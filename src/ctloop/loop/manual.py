"""A person's request for a retrain: a ``manual_trigger`` event the controller acts on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctloop.errors import InvalidInput
from ctloop.loop.entities import LoopEvent
from ctloop.loop.events import EVENT_MANUAL_TRIGGER

if TYPE_CHECKING:
    from ctloop.client import Client

__all__ = ["request_manual"]

_MAX_REASON = 300  # characters of the reason shown in the event's summary


def request_manual(
    client: Client, deployment: str, reason: str, actor: str | None = None
) -> LoopEvent:
    """Ask for a retrain of ``deployment``: record a ``manual_trigger`` event.

    The controller starts the retrain when the guards allow (``ctloop loop trigger``). The
    event is written without an owner, so it never contends for the controller's lease;
    ``actor`` (default: the user) is kept in the summary and ``evidence["requested_by"]``.

    Raises:
        InvalidInput: a reason that is not text, or a policy without ``manual: true``.
        NotFound: an unknown deployment, or one without a loop policy.
    """
    from ctloop._internal.environment import current_user

    if not isinstance(reason, str):
        raise InvalidInput(f"reason={reason!r}: give the reason for the retrain as text")
    if actor is not None and (not isinstance(actor, str) or not actor.strip()):
        raise InvalidInput(f"actor={actor!r}: give a name, or None for the current user")
    stored = client.loop.get_policy(deployment)
    if not (stored.policy.get("triggers") or {}).get("manual"):
        raise InvalidInput(
            f"the loop policy of deployment '{deployment}' does not allow manual retrains; "
            "set triggers.manual: true in it and apply it again"
        )
    who = actor.strip() if actor is not None else current_user()
    text = " ".join(reason.split()) or "no reason given"
    shown = text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"
    return client.loop.record(
        deployment,
        kind=EVENT_MANUAL_TRIGGER,
        summary=f"manual retrain requested by {who}: {shown}",
        evidence={"requested_by": who, "reason": text},
    )
