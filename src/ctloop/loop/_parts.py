"""What the parts of the controller share: its attributes and the one way it moves state.

:class:`~ctloop.loop.controller.Controller` is assembled from parts kept beside what they
call (:class:`~ctloop.loop.training.TrainingSteps`, :class:`~ctloop.loop.canary.
RolloutActions`); each part reads these attributes and records every change through
``_move``, which the controller defines.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName
    from ctloop.loop.policy import Policy


class ControllerPart:
    """The controller's attributes, as its parts see them (see the module docstring)."""

    client: Client
    deployment: str
    policy: Policy
    clock: Callable[[], datetime]

    if TYPE_CHECKING:

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
        ) -> LoopEvent: ...
