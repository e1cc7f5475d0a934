"""Executors: where step attempts run. The runner decides what runs when; they only run it.

- ``inline``: in the calling thread, one at a time (for debugging: breakpoints work);
  timeouts cannot be enforced there.
- ``local``: a pool of worker processes on this machine; independent branches run in
  parallel, a timed-out attempt's process is killed and replaced.
- ``ray``: each attempt is a Ray task (``ray.init()`` locally, or ``address=`` of a
  cluster); artifacts travel through the artifact store, never through the driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.pipelines.worker import StepOutcome, StepTask

__all__ = ["EXECUTORS", "Executor", "make_executor"]

EXECUTORS = ("inline", "local", "ray")


class Executor(Protocol):
    """Runs step attempts; handles are opaque to the runner."""

    name: str
    enforces_timeouts: bool
    needs_settings: bool  # tasks must carry the store's settings (other processes)
    max_parallel: int  # attempts it runs at once

    def submit(self, task: StepTask) -> Any:
        """Start an attempt; returns its handle."""

    def wait(self, handles: list[Any], timeout: float | None) -> list[tuple[Any, StepOutcome]]:
        """Block until at least one attempt ends or ``timeout`` seconds pass; the ended ones."""

    def cancel(self, handle: Any) -> None:
        """Stop an attempt that is still running (its outcome is never reported)."""

    def close(self) -> None:
        """Release workers."""


def make_executor(
    name: str, client: Client, *, max_workers: int | None = None, ray_address: str | None = None
) -> Executor:
    """The executor called ``name``."""
    if name == "inline":
        from ctloop.pipelines.executors.inline import InlineExecutor

        return InlineExecutor(client)
    if name == "local":
        from ctloop.pipelines.executors.local import ProcessExecutor

        return ProcessExecutor(max_workers=max_workers)
    if name == "ray":
        from ctloop.pipelines.executors.ray import RayExecutor

        return RayExecutor(address=ray_address, max_workers=max_workers)
    raise InvalidInput(f"unknown executor {name!r}; use one of: {', '.join(EXECUTORS)}")
