"""The ``ray`` executor: each step attempt is a Ray task.

``ray.init()`` starts a local cluster when none is running (or joins ``address=``); it is
left running for later pipelines of this process, as Ray's own libraries do. Tasks carry
only references: each reads its inputs from and writes its outputs to the artifact store,
so on a real cluster that store must be shared (S3, or a path every node mounts). The
project's own modules travel by value, so nodes need only ctloop and the libraries used.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from ctloop.errors import MissingExtraError

if TYPE_CHECKING:
    from ctloop.pipelines.worker import StepOutcome, StepTask


def _run_task(payload: bytes, path: list[str]) -> bytes:
    """The Ray task: unpickle, run, return the pickled outcome."""
    import pickle

    from ctloop.pipelines.executors._payload import loads_task
    from ctloop.pipelines.worker import StepOutcome, execute

    for entry in path:  # the driver's import path, where it exists on this node
        if entry not in sys.path:
            sys.path.append(entry)
    try:
        task = loads_task(payload)
    except Exception as exc:
        from ctloop._internal.ids import now_ms
        from ctloop.tracking.run import describe_error

        now = now_ms()
        outcome = StepOutcome(ok=False, start_ms=now, end_ms=now, error=describe_error(exc))
    else:
        outcome = execute(task, echo=task.echo)
    return pickle.dumps(outcome)


class RayExecutor:
    """Run attempts as Ray tasks, at most ``max_workers`` at once (default: cluster CPUs)."""

    name = "ray"
    enforces_timeouts = True
    needs_settings = True

    def __init__(self, address: str | None = None, max_workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise MissingExtraError("ray", "ray", "the ray executor") from None
        self._ray = ray
        if not ray.is_initialized():
            ray.init(
                address=address,
                include_dashboard=False,
                ignore_reinit_error=True,
                log_to_driver=True,
            )
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.max_parallel = max(1, max_workers or cpus)
        self._remote = ray.remote(max_retries=0, num_cpus=1)(_run_task)
        self._path = [p for p in sys.path if p]

    def submit(self, task: StepTask) -> Any:
        from ctloop.pipelines.executors._payload import dumps_task

        return self._remote.remote(dumps_task(task, by_value=True), self._path)

    def wait(self, handles: list[Any], timeout: float | None) -> list[tuple[Any, StepOutcome]]:
        import pickle

        from ctloop.pipelines.worker import StepOutcome

        if not handles:
            return []
        ray = self._ray
        ready, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(handles, num_returns=len(handles), timeout=0)
        done = []
        for ref in ready:
            try:
                outcome = pickle.loads(ray.get(ref))
            except Exception as exc:  # the task's worker died, or Ray failed it
                now = int(time.time() * 1000)
                outcome = StepOutcome(
                    ok=False, start_ms=now, end_ms=now, error=f"{type(exc).__name__}: {exc}"
                )
            done.append((ref, outcome))
        return done

    def cancel(self, handle: Any) -> None:
        self._ray.cancel(handle, force=True)

    def close(self) -> None:
        """Ray stays up for the next pipeline of this process (``ray.shutdown()`` ends it)."""
