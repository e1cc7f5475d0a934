"""What the parts of the controller share: its attributes and the one way it moves state.

:class:`~ctloop.loop.controller.Controller` is assembled from parts kept beside what they
call (:class:`~ctloop.loop.training.TrainingSteps`, :class:`~ctloop.loop.canary.
RolloutActions`); each part reads these attributes and records every change through
:meth:`ControllerPart._move`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName
    from ctloop.loop.policy import Policy

log = logging.getLogger("ctloop.loop")


class ControllerPart:
    """The controller's attributes, as its parts see them (see the module docstring)."""

    client: Client
    deployment: str
    policy: Policy
    clock: Callable[[], datetime]
    owner: str
    lease_seconds: float

    def renew_lease(self) -> None:
        """Take or extend the lease (``Conflict`` when another controller holds it)."""
        self.client.loop.acquire_lease(self.deployment, self.owner, self.lease_seconds)

    def _move(
        self,
        state: LoopState,
        to: LoopStateName,
        *,
        kind: str,
        summary: str,
        data: dict[str, Any],
        step: int | None = None,
        candidate: int | None = None,
        evidence: dict[str, Any] | None = None,
        links: dict[str, Any] | None = None,
    ) -> LoopEvent:
        """Move ``state`` to ``to`` and write the event, under this controller's lease."""
        _, event = self.client.loop.transition(
            self.deployment,
            expected_revision=state.revision,
            to_state=to,
            step=step,
            candidate_version=candidate,
            data=data,
            kind=kind,
            summary=summary,
            evidence=evidence,
            links=links,
            owner=self.owner,
        )
        log.info("%s: %s → %s: %s", self.deployment, state.state, to, summary)
        return event
