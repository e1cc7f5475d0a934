"""Module-level tracking: ``ctloop.start_run`` and ``ctloop.log_*`` on the active run.

The active run is process-wide (a stack, for nested runs), so worker threads log to the
run their parent started. Logging with no active run starts one in the ``default``
experiment, as MLflow does; such a run is ended at interpreter exit (FAILED if the process
dies of an uncaught exception).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.tracking.entities import RunArtifact, RunInput, RunStatus
from ctloop.tracking.run import Run, describe_error

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion

PARENT_TAG = "ctloop.parent_run_id"

_lock = threading.RLock()
_stack: list[Run] = []
_hooks_installed = False


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        _end_all(status, describe_error(exc))
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_all, RunStatus.FINISHED, None)


def _end_all(status: RunStatus, error: str | None) -> None:
    while True:
        with _lock:
            if not _stack:
                return
            run = _stack[-1]
        try:
            run.end(status, error)
        except Exception as exc:  # at exit: report, never raise
            print(f"ctloop: could not end run {run.id}: {exc}", file=sys.stderr)
            with _lock:
                if _stack and _stack[-1] is run:
                    _stack.pop()


def _pop(run: Run) -> None:
    with _lock:
        if run in _stack:
            _stack.remove(run)


def start_run(
    experiment: str = "default",
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    nested: bool = False,
    client: Client | None = None,
) -> Run:
    """Start a run and make it the active one; use it as a context manager.

    Args:
        experiment: experiment name (created if missing).
        name: run name (default: a random readable one).
        tags: initial tags.
        nested: allow starting inside an active run (the child is tagged with its parent).
        client: the store to log to (default: ``ctloop.Client()`` from the environment).

    Example::

        with ctloop.start_run(experiment="churn") as run:
            run.log_param("max_depth", 6)
            run.log_metric("auc", 0.91, step=10)
    """
    from ctloop.client.default import default_client

    with _lock:
        parent = _stack[-1] if _stack else None
        if parent is not None and not nested:
            raise InvalidInput(
                f"run {parent.id} ({parent.name!r}) is already active; end it first with "
                "ctloop.end_run(), or pass nested=True to start a child run"
            )
        c = client or default_client()
        all_tags = dict(tags or {})
        if parent is not None:
            all_tags.setdefault(PARENT_TAG, parent.id)
        run = Run(c, c.runs.create(experiment, name, all_tags))
        run._on_end.append(_pop)
        _stack.append(run)
        _install_exit_hooks()
    return run


def active_run() -> Run | None:
    """The innermost active run, or None."""
    with _lock:
        return _stack[-1] if _stack else None


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (no-op without one)."""
    run = active_run()
    if run is not None:
        run.end(status)


def _run() -> Run:
    run = active_run()
    if run is None:
        run = start_run(name=None)
    return run


def log_param(key: str, value: Any) -> None:
    """Log a param to the active run (starting one if none is active)."""
    _run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _run().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric point to the active run (buffered)."""
    _run().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _run().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    _run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _run().set_tags(tags)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> RunArtifact:
    """Store a file or folder as an artifact of the active run."""
    return _run().log_artifact(path, name)


def log_input(dataset_version: DatasetVersion | str, context: str | None = "training") -> RunInput:
    """Record a dataset version (or ``NAME@V``) as an input of the active run."""
    return _run().log_input(dataset_version, context)
