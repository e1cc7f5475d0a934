"""The ``inline`` executor: each attempt runs in the calling thread, when submitted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.pipelines.worker import StepOutcome, StepTask


class InlineExecutor:
    """Run attempts one at a time in this thread (debuggers and breakpoints work)."""

    name = "inline"
    enforces_timeouts = False  # a function running in this thread cannot be stopped
    max_parallel = 1
    needs_settings = False

    def __init__(self, client: Client) -> None:
        self._client = client
        self._done: dict[int, StepOutcome] = {}
        self._next = 0

    def submit(self, task: StepTask) -> Any:
        from ctloop.pipelines.worker import execute

        self._next += 1
        self._done[self._next] = execute(task, self._client, echo=task.echo)
        return self._next

    def wait(self, handles: list[Any], timeout: float | None) -> list[tuple[Any, StepOutcome]]:
        return [(h, self._done.pop(h)) for h in handles if h in self._done]

    def cancel(self, handle: Any) -> None:
        self._done.pop(handle, None)

    def close(self) -> None:
        self._done.clear()
