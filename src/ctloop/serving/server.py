"""The per-process state behind the inference app: replica, logs, metrics, shadows.

:class:`InferenceServer` starts a :class:`~ctloop.serving.replica.Replica` and the
prediction and feedback logs, answers a prediction request in any of the four protocols
(:class:`_Protocol`), hands shadow versions a copy of the rows through a bounded queue,
takes feedback and describes what it serves. :class:`ServeConfig` holds its limits,
batching, polling and logging settings. The HTTP routes are in :mod:`ctloop.serving.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import Response

import ctloop
from ctloop.errors import CtloopError, InvalidInput
from ctloop.serving import protocols
from ctloop.serving import status as live_status
from ctloop.serving.feedback import parse_feedback
from ctloop.serving.metrics import ServingMetrics
from ctloop.serving.monitor_gauges import MonitorGauges
from ctloop.serving.payload_log import Columns, PayloadLog
from ctloop.serving.protocols import kserve_v1, mlflow, plain
from ctloop.serving.replica import DeploymentSource, Replica, ServedVersion, ServingState

if TYPE_CHECKING:
    from ctloop.serving.protocols import ParsedRequest
    from ctloop.serving.replica import Source

__all__ = [
    "HEADER_REQUEST_ID",
    "HEADER_VARIANT",
    "HEADER_VERSION",
    "InferenceServer",
    "ServeConfig",
    "prediction_ids",
    "read_body",
]

log = logging.getLogger(__name__)

HEADER_VERSION = "X-Ctloop-Model-Version"
HEADER_VARIANT = "X-Ctloop-Variant"
HEADER_REQUEST_ID = "X-Request-Id"


@dataclass(frozen=True)
class ServeConfig:
    """How an inference server behaves; every field has a command-line flag.

    Attributes:
        max_body_bytes: larger request bodies are refused with 413 before parsing.
        max_rows: most rows one request may carry.
        max_batch_rows: most rows one micro-batched predict call takes.
        max_wait_ms: how long an idle model waits for other requests to batch with.
        poll_seconds: how often the deployment is re-read.
        monitor_poll_seconds: how often the newest monitoring report of a stored
            deployment is read into the drift gauges (0: never); see
            :mod:`ctloop.serving.monitor_gauges`.
        log_payloads: log served rows (the deployment's own setting must allow it too).
        log_flush_rows: queued log rows that trigger a segment write.
        log_flush_seconds: the longest a logged row waits in memory (lost on a crash).
        log_max_queue_rows: rows the log holds before dropping (and counting) more.
        shadow_queue: shadow requests waiting at most; more are dropped and counted.
    """

    max_body_bytes: int = 8 * 1024 * 1024
    max_rows: int = 10_000
    max_batch_rows: int = 64
    max_wait_ms: float = 0.0
    poll_seconds: float = 1.0
    monitor_poll_seconds: float = 10.0
    log_payloads: bool = True
    log_flush_rows: int = 1000
    log_flush_seconds: float = 5.0
    log_max_queue_rows: int = 100_000
    shadow_queue: int = 1000

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class _Protocol:
    name: str
    parse: Callable[..., ParsedRequest]
    format: Callable[..., dict[str, Any]]
    error: Callable[[BaseException | str], dict[str, Any]]


_OIP = _Protocol("oip", protocols.parse_oip, protocols.format_oip, protocols.error_body)
_V1 = _Protocol(
    "kserve_v1", kserve_v1.parse_kserve_v1, kserve_v1.format_kserve_v1, protocols.error_body
)
_MLFLOW = _Protocol("mlflow", mlflow.parse_mlflow, mlflow.format_mlflow, mlflow.error_body)
_PLAIN = _Protocol("plain", plain.parse_plain, plain.format_plain, plain.error_body)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=dict(headers) if headers else None,
    )


class _Unavailable(CtloopError):
    http_status = 503


class _NotFound(CtloopError):
    http_status = 404


class InferenceServer:
    """The per-process state behind the app: replica, logs, metrics, shadow queue."""

    def __init__(
        self,
        source: Source,
        *,
        config: ServeConfig,
        log_root: str | None,
        storage_options: Mapping[str, Any] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = ServingMetrics()
        self.replica = Replica(
            source,
            poll_seconds=config.poll_seconds,
            max_batch_rows=config.max_batch_rows,
            max_wait_ms=config.max_wait_ms,
            on_loaded=self._loaded,
        )
        self.log_root = log_root
        self.storage_options = storage_options
        self.replica_name = f"{socket.gethostname()}-{os.getpid()}"
        self._logs: dict[tuple[str, str], PayloadLog] = {}
        self._dropped_seen: dict[tuple[str, str], int] = {}
        self._shadow_queue: asyncio.Queue[tuple[ServingState, int, int, Any, str]] | None = None
        self._shadow_tasks: list[asyncio.Task[None]] = []
        self._on_close = on_close
        self._status_name: str | None = None
        self.started = time.time()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._shadow_queue = asyncio.Queue(maxsize=self.config.shadow_queue)
        loop = asyncio.get_running_loop()
        self._shadow_tasks = [loop.create_task(self._shadow_worker()) for _ in range(4)]
        if self.log_root is not None:
            self._shadow_tasks.append(loop.create_task(self._report_status()))
        source = self.replica.source
        if isinstance(source, DeploymentSource) and self.config.monitor_poll_seconds > 0:
            gauges = MonitorGauges(self.metrics, source.client, source.name)
            self._shadow_tasks.append(loop.create_task(self._watch_monitor(gauges)))
        await self.replica.start()

    async def stop(self) -> None:
        for task in self._shadow_tasks:
            task.cancel()
        for task in self._shadow_tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.replica.stop()
        if self.log_root is not None and self._status_name is not None:
            await asyncio.to_thread(
                live_status.remove_status,
                self.log_root,
                self._status_name,
                self.replica_name,
                self.storage_options,
            )
        for payload_log in self._logs.values():
            try:
                payload_log.close()
            except Exception:
                log.exception("could not write the last rows of %s", payload_log.kind)
        if self._on_close is not None:
            self._on_close()

    async def _report_status(self) -> None:
        """Publish this replica's live figures every few seconds (:mod:`ctloop.serving.status`)."""
        assert self.log_root is not None
        while True:
            await asyncio.sleep(live_status.INTERVAL_SECONDS)
            state = self.replica.state
            if state is None:
                continue
            self._status_name = state.name
            report = {**self.describe(), "figures": live_status.counters(self.metrics)}
            try:
                await asyncio.to_thread(
                    live_status.write_status,
                    self.log_root,
                    state.name,
                    self.replica_name,
                    report,
                    self.storage_options,
                )
            except Exception as exc:  # live figures are best effort; serving goes on
                log.warning("cannot publish this replica's status: %s", exc)

    async def _watch_monitor(self, gauges: MonitorGauges) -> None:
        """Keep the drift gauges on the deployment's newest monitoring report."""
        while True:
            try:
                await asyncio.to_thread(gauges.refresh)
            except Exception as exc:  # the gauges are best effort; serving goes on
                log.warning("cannot read the monitoring reports of %r: %s", gauges.deployment, exc)
            await asyncio.sleep(self.config.monitor_poll_seconds)

    def _loaded(self, deployment: str, version: int, seconds: float) -> None:
        self.metrics.model_load.labels(deployment, str(version)).set(seconds)

    # --- logs ---------------------------------------------------------------------------

    def payload_log(self, deployment: str, kind: str) -> PayloadLog | None:
        if self.log_root is None:
            return None
        key = (deployment, kind)
        found = self._logs.get(key)
        if found is None:
            found = PayloadLog(
                self.log_root,
                deployment,
                kind,  # type: ignore[arg-type]
                replica=self.replica_name,
                flush_rows=self.config.log_flush_rows,
                flush_seconds=self.config.log_flush_seconds,
                max_queue_rows=self.config.log_max_queue_rows,
                storage_options=self.storage_options,
            )
            self._logs[key] = found
            self._dropped_seen[key] = 0
            # the series exist from the start (at 0), so rate() and alerts see them
            self.metrics.log_dropped.labels(deployment, kind)
            self.metrics.log_queue.labels(deployment, kind).set(0)
        return found

    def append_log(self, deployment: str, kind: str, rows: list[dict[str, Any]] | Columns) -> int:
        target = self.payload_log(deployment, kind)
        if target is None:
            return 0
        if isinstance(rows, Columns):
            accepted = target.append_columns(rows, len(rows["prediction_id"]))
        else:
            accepted = target.append(rows)
        self.metrics.log_rows.labels(deployment, kind).inc(accepted)
        self._sync_log_metrics(deployment, kind, target)
        return accepted

    def _sync_log_metrics(self, deployment: str, kind: str, target: PayloadLog) -> None:
        key = (deployment, kind)
        dropped = target.rows_dropped
        if dropped > self._dropped_seen[key]:
            self.metrics.log_dropped.labels(deployment, kind).inc(dropped - self._dropped_seen[key])
            self._dropped_seen[key] = dropped
        self.metrics.log_queue.labels(deployment, kind).set(target.queue_depth)

    def render_metrics(self) -> bytes:
        for (deployment, kind), target in list(self._logs.items()):
            self._sync_log_metrics(deployment, kind, target)
        return self.metrics.render()

    # --- answering ----------------------------------------------------------------------

    def state_or_raise(self, model_name: str | None = None) -> ServingState:
        state = self.replica.state
        if state is None:
            why = f": {self.replica.last_error}" if self.replica.last_error else ""
            raise _Unavailable(f"the model is still loading{why}; retry in a moment")
        if model_name is not None and not state.knows(model_name):
            raise _NotFound(
                f"no model named {model_name!r} here; this server serves {state.name!r}"
            )
        return state

    async def infer(
        self,
        request: Request,
        protocol: _Protocol,
        model_name: str | None = None,
        version: str | None = None,
    ) -> Response:
        started = time.perf_counter()
        metrics = self.metrics
        state = self.replica.state
        deployment = state.name if state is not None else "-"
        metrics.in_flight.labels(deployment).inc()
        served: ServedVersion | None = None
        variant = "-"
        status = 500
        try:
            raw = await read_body(request, self.config.max_body_bytes)
            state = self.state_or_raise(model_name)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"the body is not valid JSON: {exc}") from None
            if version is not None:
                served, variant = _pinned(state, version)
            else:
                key = _sticky_key(state.desired.sticky_key, request, body)
                route = state.router.choose(key)
                served, variant = state.versions[route.version], route.variant
            parsed = protocol.parse(body, served.signature, max_rows=self.config.max_rows)
            preds, proba = await served.batcher.predict(parsed.frame)
            n = parsed.n_rows
            ids = prediction_ids(n)
            out = protocol.format(
                parsed,
                preds,
                proba,
                model_name=state.name,
                model_version=served.label,
                classes=served.classes,
                prediction_ids=ids,
            )
            status = 200
        except Exception as exc:
            status = exc.http_status if isinstance(exc, CtloopError) else 500
            if status >= 500 and not isinstance(exc, _Unavailable):
                log.exception("inference failed")
                message: BaseException | str = f"the model failed on this request: {exc}"
            else:
                message = exc
            headers = {}
            if served is not None:
                headers = {HEADER_VERSION: served.label, HEADER_VARIANT: variant}
            return _json(protocol.error(message), status, headers)
        finally:
            seconds = time.perf_counter() - started
            metrics.in_flight.labels(deployment).dec()
            metrics.requests.labels(
                deployment, served.label if served else "", variant, protocol.name, str(status)
            ).inc()
            metrics.duration.labels(deployment, protocol.name).observe(seconds)
        request_id = parsed.id or request.headers.get(HEADER_REQUEST_ID) or ids[0]
        if state.desired.log_payloads and self.config.log_payloads:
            self.append_log(
                state.name,
                "predictions",
                _rows(state, served, variant, parsed, preds, proba, ids, request_id, seconds),
            )
        if state.desired.shadows:
            self._enqueue_shadows(state, served.version, parsed.frame, request_id)
        return _json(out, 200, {HEADER_VERSION: served.label, HEADER_VARIANT: variant})

    # --- shadows ------------------------------------------------------------------------

    def _enqueue_shadows(self, state: ServingState, live: int, frame: Any, request_id: str) -> None:
        assert self._shadow_queue is not None
        for version in state.desired.shadows:
            if version == live:
                continue
            try:
                self._shadow_queue.put_nowait((state, live, version, frame, request_id))
            except asyncio.QueueFull:
                self.metrics.shadow_dropped.labels(state.name, str(version)).inc()

    async def _shadow_worker(self) -> None:
        assert self._shadow_queue is not None
        while True:
            state, live, version, frame, request_id = await self._shadow_queue.get()
            served = state.versions.get(version)
            if served is None:
                continue
            started = time.perf_counter()
            status = "200"
            try:
                live_signature = state.versions[live].signature if live in state.versions else None
                if served.signature is not None and served.signature != live_signature:
                    frame = served.signature.validate(frame)  # the shadow takes other columns
                preds, proba = await served.batcher.predict(frame)
            except Exception as exc:
                status = str(exc.http_status) if isinstance(exc, CtloopError) else "500"
                log.warning("shadow version %s failed on request %s: %s", version, request_id, exc)
                continue
            finally:
                self.metrics.requests.labels(
                    state.name, served.label, "shadow", "shadow", status
                ).inc()
            if state.desired.log_payloads and self.config.log_payloads:
                n = len(frame)
                ids = prediction_ids(n)
                from ctloop.serving.protocols import ParsedRequest

                parsed = ParsedRequest(frame, "shadow", request_id)
                seconds = time.perf_counter() - started
                self.append_log(
                    state.name,
                    "predictions",
                    _rows(state, served, "shadow", parsed, preds, proba, ids, request_id, seconds),
                )

    # --- feedback -----------------------------------------------------------------------

    async def feedback(self, request: Request) -> Response:
        try:
            raw = await read_body(request, self.config.max_body_bytes)
            state = self.state_or_raise()
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"the body is not valid JSON: {exc}") from None
            rows = parse_feedback(body, max_rows=self.config.max_rows)
        except Exception as exc:
            status = exc.http_status if isinstance(exc, CtloopError) else 400
            return _json(plain.error_body(exc), status)
        if self.payload_log(state.name, "feedback") is None:
            return _json({"error": "this server keeps no logs (no artifact store)"}, 409)
        accepted = self.append_log(state.name, "feedback", rows)
        return _json({"accepted": accepted, "dropped": len(rows) - accepted})

    # --- describing ---------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        state = self.replica.state
        info: dict[str, Any] = {
            "server": "ctloop",
            "version": ctloop.__version__,
            "replica": self.replica_name,
            "ready": state is not None,
            "last_error": self.replica.last_error,
            "started": self.started,
        }
        if state is not None:
            d = state.desired
            info.update(
                deployment=d.name,
                model=d.model,
                revision=d.revision,
                routes=[
                    {"version": r.version, "weight": r.weight, "variant": r.variant}
                    for r in d.routes
                ],
                shadows=list(d.shadows),
                sticky_key=d.sticky_key,
                log_payloads=d.log_payloads and self.config.log_payloads,
                loaded={
                    str(v): {
                        "load_seconds": round(s.load_seconds, 4),
                        "loaded_at": str(s.loaded_at),
                    }
                    for v, s in state.versions.items()
                },
            )
        return info


def prediction_ids(n: int) -> list[str]:
    """``n`` unique ids of 32 hex digits: 80 random bits per request, then the row number."""
    if n == 1:
        return [os.urandom(16).hex()]
    prefix = os.urandom(10).hex()
    return [f"{prefix}{i:012x}" for i in range(n)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is read; a
    body without one (chunked) is read up to the limit, so no client can make the server
    hold more than ``limit`` bytes of one request.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        protocols.check_body_size(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        protocols.check_body_size(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _pinned(state: ServingState, version: str) -> tuple[ServedVersion, str]:
    try:
        number = int(version)
    except ValueError:
        raise _NotFound(f"version {version!r} is not a number") from None
    served = state.versions.get(number)
    if served is None:
        held = ", ".join(str(v) for v in state.versions)
        raise _NotFound(
            f"version {version} of {state.name!r} is not served here (these are: {held})"
        )
    return served, state.variant_of(number)


def _sticky_key(spec: str | None, request: Request, body: Any) -> str | None:
    if spec is None:
        return None
    kind, _, name = spec.partition(":")
    if kind == "header":
        return request.headers.get(name)
    value = _field_value(body, name)
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _field_value(body: Any, name: str) -> Any:
    """The first row's value of column ``name`` in a body of any protocol, or None."""
    if not isinstance(body, dict):
        return None
    for key in ("instances", "dataframe_records"):
        rows = body.get(key)
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            return rows[0].get(name)
        if isinstance(rows, dict):  # one record, or columns
            value = rows.get(name)
            return value[0] if isinstance(value, list) and value else value
    split = body.get("dataframe_split")
    if isinstance(split, dict):
        cols, data = split.get("columns"), split.get("data")
        if isinstance(cols, list) and name in cols and isinstance(data, list) and data:
            first = data[0]
            if isinstance(first, list) and len(first) == len(cols):
                return first[cols.index(name)]
    inputs = body.get("inputs")
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
        if "datatype" not in inputs[0]:  # MLflow and KServe V1 "inputs" as records
            return inputs[0].get(name)
        for tensor in inputs:  # OIP: one tensor per column
            if isinstance(tensor, dict) and tensor.get("name") == name:
                data = tensor.get("data")
                while isinstance(data, list) and data:
                    data = data[0]
                return data
    if isinstance(inputs, dict):  # MLflow "inputs" as columns
        col = inputs.get(name)
        return col[0] if isinstance(col, list) and col else None
    return body.get(name)  # one plain record


def _rows(
    state: ServingState,
    served: ServedVersion,
    variant: str,
    parsed: ParsedRequest,
    preds: Any,
    proba: Any,
    ids: list[str],
    request_id: str,
    seconds: float,
) -> Columns:
    """The prediction-log rows of one answered request, column by column."""
    n = len(ids)
    columns = Columns(
        prediction_id=ids,
        request_id=[request_id] * n,
        deployment=[state.name] * n,
        model_version=[served.label] * n,
        variant=[variant] * n,
        prediction=preds.tolist() if hasattr(preds, "tolist") else list(preds),
        latency_ms=[seconds * 1000.0] * n,
        status=["ok"] * n,
    )
    if parsed.values is not None:  # the parser's own lists: no round trip through pandas
        for name, values in parsed.values.items():
            columns[f"f.{name}"] = values
    else:
        for name in parsed.frame.columns:
            columns[f"f.{name}"] = parsed.frame[name].tolist()
    classes = served.classes
    if proba is not None and classes:
        matrix = np.asarray(proba)
        for j, cls in enumerate(classes):
            columns[f"p.{cls}"] = matrix[:, j].tolist()
    return columns
