"""``ctloop.pipelines.step_context()``: where the running step is, for code inside a step."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.client import Client

__all__ = ["StepContext", "step_context"]


@dataclass(frozen=True)
class StepContext:
    """The step run a piece of code runs in.

    Attributes:
        client: the store the pipeline runs against (register models, read datasets…).
        pipeline_run_id: the pipeline run.
        step_run_id: this step's run.
        step: the step's name in the graph.
        attempt: 1 for the first attempt, 2 for the first retry …
        tracking_run_id: the pipeline's tracking run (what ``ctloop.log_*`` logs to).
    """

    client: Client
    pipeline_run_id: str
    step_run_id: str
    step: str
    attempt: int
    tracking_run_id: str | None


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "ctloop_step_context", default=None
)


def step_context() -> StepContext:
    """The context of the step running now; :class:`InvalidInput` outside a step."""
    found = _current.get()
    if found is None:
        raise InvalidInput(
            "step_context() is only available inside a step while a pipeline runs it"
        )
    return found
