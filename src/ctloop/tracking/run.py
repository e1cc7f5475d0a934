"""``ctloop.Run``: the handle of a live run, returned by ``ctloop.start_run``."""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ctloop._internal.ids import now_ms
from ctloop.tracking import validation as check
from ctloop.tracking.buffer import MetricBuffer
from ctloop.tracking.entities import RunArtifact, RunInput, RunRecord, RunStatus

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion


def describe_error(exc: BaseException) -> str:
    """The text recorded on a FAILED run: type, message, traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}: {exc}\n\n{tb}"


class Run:
    """A live run: log params, metrics, tags, artifacts and inputs to it.

    Used as a context manager it ends itself: FINISHED on a normal exit, FAILED (with the
    error recorded) on an exception, KILLED on ``KeyboardInterrupt``. Metrics are buffered
    and written in batches by a background thread; everything is durable once the run has
    ended (or after :meth:`flush`).
    """

    def __init__(self, client: Client, record: RunRecord) -> None:
        self._client = client
        self.id: str = record.id
        self.name: str = record.name
        self.experiment: str = record.experiment
        self.experiment_id: str = record.experiment_id
        tracking = client.settings.tracking
        self._buffer = MetricBuffer(
            client.runs, record.id, tracking.flush_interval, tracking.batch_size
        )
        self._params: dict[str, str] = {}
        self._ended = False
        self._on_end: list[Any] = []

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} experiment={self.experiment!r}>"

    # --- params and tags (written at once: few and important) -----------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record a param (stored as ``str(value)``); params never change once set."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several params in one write."""
        clean = {check.key(k, "param"): check.param_value(k, v) for k, v in params.items()}
        new = {k: v for k, v in clean.items() if self._params.get(k) != v}
        if new:
            self._client.runs.log_params(self.id, new)
            self._params.update(new)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (tags, unlike params, may be changed)."""
        self._client.runs.set_tags(self.id, {key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._client.runs.set_tags(self.id, tags)

    # --- metrics (buffered) --------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Log one point; ``step`` defaults to 0, ``timestamp`` (ms) to now.

        NaN and ±inf are accepted and stored as such.
        """
        k = check.key(key, "metric")
        self._buffer.add(
            (
                k,
                check.metric_value(k, value),
                check.step_value(k, step),
                int(timestamp) if timestamp is not None else now_ms(),
            )
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log several metrics at the same step."""
        ts = now_ms()
        for key, value in metrics.items():
            self.log_metric(key, value, step, ts)

    def flush(self) -> None:
        """Write buffered metrics now."""
        self._buffer.flush()

    # --- artifacts and inputs ------------------------------------------------------------

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> RunArtifact:
        """Store a file or folder (content-addressed) under ``name`` within the run."""
        return self._client.runs.log_artifact(self.id, path, name)

    def log_model(
        self,
        model: Any,
        name: str = "model",
        input_example: Any = None,
        flavor: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RunArtifact:
        """Log ``model`` as a model package (signature, requirements, lineage) named ``name``.

        ``input_example`` (e.g. the training frame) gives the signature: column names,
        types and nullability. ``flavor`` is detected when None: ``xgboost``, ``lightgbm``,
        ``sklearn`` (skops) or ``python`` (cloudpickle).
        """
        return self._client.runs.log_model(
            self.id, model, name, input_example=input_example, flavor=flavor, metadata=metadata
        )

    def log_input(
        self, dataset_version: DatasetVersion | str, context: str | None = "training"
    ) -> RunInput:
        """Record a dataset version (or ``NAME@V``) as an input of this run."""
        return self._client.runs.log_input(self.id, dataset_version, context)

    # --- life cycle ------------------------------------------------------------------------

    def record(self) -> RunRecord:
        """The run as stored now (flushes pending metrics first)."""
        if not self._ended:
            self.flush()
        return self._client.runs.get(self.id)

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self, status: RunStatus | str = RunStatus.FINISHED, error: str | None = None) -> None:
        """Flush metrics and set the final status (idempotent)."""
        if self._ended:
            return
        self._ended = True
        try:
            self._buffer.close()
        finally:
            self._client.runs.end(self.id, status, error)
            for callback in self._on_end:
                callback(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end(RunStatus.FINISHED)
        elif isinstance(exc, KeyboardInterrupt):
            self.end(RunStatus.KILLED, "KeyboardInterrupt")
        elif isinstance(exc, SystemExit) and exc.code in (0, None):
            self.end(RunStatus.FINISHED)
        else:
            self.end(RunStatus.FAILED, describe_error(exc))
