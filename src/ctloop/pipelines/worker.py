"""Running one attempt of one step, wherever the executor runs it.

The same function runs in the driver (``inline``), in a worker process (``local``) and in a
Ray task (``ray``): read the inputs from the artifact store by digest, call the function
with the pipeline's tracking run active (so ``ctloop.log_metric`` inside a step lands on
it), capture what it prints, write each output to the artifact store. Only references
travel back; no executor ships a large object through the driver.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ctloop._internal.ids import now_ms
from ctloop.pipelines.entities import ArtifactRef

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.pipelines.steps import Step
    from ctloop.settings import Settings

__all__ = ["StepOutcome", "StepTask", "execute"]

LOG_LIMIT = 4 * 1024 * 1024  # characters of stdout/stderr kept per attempt (the tail)


@dataclass
class StepTask:
    """One attempt of one step: everything a worker needs, all of it small."""

    step: Step
    node: str  # the step's name in the graph
    step_run_id: str
    attempt: int
    params: dict[str, Any]
    inputs: dict[str, ArtifactRef]
    settings: Settings | None = None  # for workers in other processes to open the store
    tracking_run_id: str | None = None
    pipeline_run_id: str = ""
    echo: bool = True  # also print what the step prints (it is captured either way)


@dataclass
class StepOutcome:
    """What an attempt produced: output references, or the error; its logs; its warnings."""

    ok: bool
    start_ms: int
    end_ms: int
    outputs: dict[str, ArtifactRef] = field(default_factory=dict)
    error: str | None = None
    logs: dict[str, str] = field(default_factory=dict)  # stream -> digest of its text
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (category, message)


_clients: dict[tuple[str, str], Client] = {}
_clients_lock = threading.Lock()


def _client_for(settings: Settings) -> Client:
    """One client per store per worker process, reused by every task it runs."""
    from ctloop.client import Client

    key = (settings.store_url(), settings.artifacts_root())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(settings=settings)
        return client


def execute(task: StepTask, client: Client | None = None, *, echo: bool = True) -> StepOutcome:
    """Run one attempt of a step; never raises for the step's own errors.

    Args:
        task: the attempt.
        client: the store (the driver's own, inline); else opened from ``task.settings``.
        echo: also pass what the step prints through to this process's stdout/stderr.
    """
    from ctloop.pipelines import materializers
    from ctloop.tracking.run import describe_error

    start = now_ms()
    if client is None:
        assert task.settings is not None, "a worker needs the store's settings"
        client = _client_for(task.settings)
    out = io.StringIO()
    err = io.StringIO()
    outcome = StepOutcome(ok=False, start_ms=start, end_ms=start)
    try:
        kwargs = dict(task.params)
        for arg, ref in task.inputs.items():
            kwargs[arg] = materializers.load(ref, client.objects)
        with (
            _captured(out, err, echo),
            _tracking(client, task.tracking_run_id),
            _context(client, task),
        ):
            result = task.step.fn(**kwargs)
        values = _split(task, result)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name, value in values.items():
                outcome.outputs[name] = materializers.save(
                    value, client.objects, what=f"output {name!r} of step {task.node!r}"
                )
        outcome.warnings = [(w.category.__name__, str(w.message)) for w in caught]
        outcome.ok = True
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from a step is a failure of that step too
        outcome.error = describe_error(exc)
    outcome.end_ms = now_ms()
    for stream, buffer in (("stdout", out), ("stderr", err)):
        text = buffer.getvalue()
        if text:
            if len(text) > LOG_LIMIT:
                text = f"[first {len(text) - LOG_LIMIT} characters dropped]\n" + text[-LOG_LIMIT:]
            with contextlib.suppress(Exception):  # logs never fail a step
                outcome.logs[stream] = client.objects.put_bytes(text.encode("utf-8")).digest
    return outcome


def _split(task: StepTask, result: Any) -> dict[str, Any]:
    names = task.step.output_names
    if len(names) == 1:
        return {names[0]: result}
    if not isinstance(result, tuple | list) or len(result) != len(names):
        from ctloop.errors import InvalidInput

        got = f"{len(result)} values" if isinstance(result, tuple | list) else type(result).__name__
        raise InvalidInput(
            f"step {task.node!r} declares {len(names)} outputs ({', '.join(names)}) but "
            f"returned {got}; return a tuple of {len(names)}"
        )
    return dict(zip(names, result, strict=True))


class _Tee(io.TextIOBase):
    """Write to a buffer, and to the original stream when echoing."""

    def __init__(self, buffer: io.StringIO, original: TextIO | None) -> None:
        self._buffer = buffer
        self._original = original

    def write(self, s: str) -> int:
        self._buffer.write(s)
        if self._original is not None:
            self._original.write(s)
        return len(s)

    def flush(self) -> None:
        if self._original is not None:
            self._original.flush()


@contextlib.contextmanager
def _captured(out: io.StringIO, err: io.StringIO, echo: bool) -> Iterator[None]:
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = _Tee(out, old_out if echo else None)
    sys.stderr = _Tee(err, old_err if echo else None)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old_out, old_err


@contextlib.contextmanager
def _context(client: Client, task: StepTask) -> Iterator[None]:
    from ctloop.pipelines.context import StepContext, _current

    token = _current.set(
        StepContext(
            client=client,
            pipeline_run_id=task.pipeline_run_id,
            step_run_id=task.step_run_id,
            step=task.node,
            attempt=task.attempt,
            tracking_run_id=task.tracking_run_id,
        )
    )
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def _tracking(client: Client, run_id: str | None) -> Iterator[None]:
    """Make the pipeline's tracking run the active one while the step runs."""
    if run_id is None:
        yield
        return
    from ctloop.tracking import fluent
    from ctloop.tracking.run import Run

    run = Run(client, client.runs.get(run_id))
    with fluent._lock:
        fluent._stack.append(run)
    try:
        yield
    finally:
        try:
            run._buffer.close()  # flush the step's metrics; the pipeline ends the run
        finally:
            fluent._pop(run)
