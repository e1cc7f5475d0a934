"""The one-item forms of the runs API, shared by the local and the HTTP backend.

Each backend implements ``log_params`` and ``log_batch``; these shortcuts are defined once
on top of them, so the two backends cannot drift apart on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class RunsShortcuts:
    """``log_param``, ``log_metric`` and ``log_metrics`` in terms of the batch calls."""

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Any] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        raise NotImplementedError

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Record one param (see ``log_params``)."""
        self.log_params(run_id, {key: value})

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Write one metric point now (the :class:`~ctloop.Run` handle batches instead)."""
        self.log_batch(run_id, metrics=[(key, value, step, timestamp)])

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int | None = None
    ) -> None:
        """Write several metrics at one step now."""
        self.log_batch(run_id, metrics=[(k, v, step, None) for k, v in metrics.items()])
