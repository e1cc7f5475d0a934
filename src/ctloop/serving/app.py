"""The inference server: one deployment behind four protocols, logged and measured.

``create_inference_app(source, …)`` gives a FastAPI app whose lifespan starts a
:class:`~ctloop.serving.replica.Replica` (which loads the deployment's versions and keeps
converging on it) and the prediction and feedback logs. Endpoints:

- Open Inference Protocol (KServe V2): ``GET /v2``, ``/v2/health/live``,
  ``/v2/health/ready``, ``/v2/models/{name}[/versions/{v}]`` and ``…/ready``,
  ``POST /v2/models/{name}[/versions/{v}]/infer``;
- KServe V1: ``POST /v1/models/{name}:predict``; MLflow scoring: ``POST /invocations``,
  ``GET /ping``, ``GET /version``; plain: ``POST /predict``;
- ``POST /feedback``, ``GET /metrics`` (Prometheus), ``GET /`` (what is served now).

Each request reads the replica's state once, is routed (by weight, stickily with a key),
parsed and validated against the routed version's signature, and predicted through that
version's micro-batcher. Bad input is a 4xx listing every problem, never a 500. Shadow
versions get a copy of the rows through a bounded queue, off the request path.

This module holds the routes and their OpenAPI bodies; the per-process state behind them
is :class:`~ctloop.serving.server.InferenceServer` and feedback bodies are checked by
:func:`~ctloop.serving.feedback.parse_feedback`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

import ctloop
from ctloop.errors import CtloopError
from ctloop.serving.metrics import CONTENT_TYPE
from ctloop.serving.protocols import oip
from ctloop.serving.server import (
    _MLFLOW,
    _OIP,
    _PLAIN,
    _V1,
    InferenceServer,
    ServeConfig,
    _json,
    _pinned,
    _Protocol,
)

if TYPE_CHECKING:
    from ctloop.serving.replica import Source

__all__ = ["ServeConfig", "create_inference_app"]


# --- the app ----------------------------------------------------------------------------------

_OIP_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "parameters": {"type": "object"},
                    "inputs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "shape", "datatype", "data"],
                            "properties": {
                                "name": {"type": "string"},
                                "shape": {"type": "array", "items": {"type": "integer"}},
                                "datatype": {"type": "string"},
                                "parameters": {"type": "object"},
                                "data": {"type": "array"},
                            },
                        },
                    },
                    "outputs": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
    "required": True,
}
_INSTANCES_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"instances": {"type": "array", "items": {"type": "object"}}},
            }
        }
    },
    "required": True,
}
_MLFLOW_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "dataframe_split": {"type": "object"},
                    "dataframe_records": {"type": "array", "items": {"type": "object"}},
                    "instances": {"type": "array"},
                    "inputs": {},
                },
            }
        }
    },
    "required": True,
}
_FEEDBACK_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Feedback"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Feedback"}},
                ]
            }
        }
    },
    "required": True,
}


def create_inference_app(
    source: Source,
    *,
    config: ServeConfig | None = None,
    log_root: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    on_close: Callable[[], None] | None = None,
) -> FastAPI:
    """The inference server app for one deployment.

    Args:
        source: what to serve (see :mod:`ctloop.serving.replica`).
        config: limits, batching, polling and logging (defaults: :class:`ServeConfig`).
        log_root: the artifact store root the prediction and feedback logs go under; None
            keeps no logs.
        storage_options: fsspec options for an ``s3://`` ``log_root``.
        on_close: called at shutdown after the logs are written (e.g. to close a client).
    """
    server = InferenceServer(
        source,
        config=config or ServeConfig(),
        log_root=log_root,
        storage_options=storage_options,
        on_close=on_close,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title="ctloop inference server",
        version=ctloop.__version__,
        summary="Predictions over the Open Inference Protocol, KServe V1, MLflow scoring "
        "and a plain JSON API, with feedback and Prometheus metrics.",
        lifespan=lifespan,
    )
    app.state.server = server
    _routes(app, server)
    return app


def _routes(app: FastAPI, server: InferenceServer) -> None:  # noqa: C901 - one place for all
    def bad(exc: Exception, protocol: _Protocol = _OIP) -> Response:
        status = exc.http_status if isinstance(exc, CtloopError) else 400
        return _json(protocol.error(exc), status)

    # --- Open Inference Protocol ------------------------------------------------------------

    @app.get("/v2", tags=["oip"], summary="Server metadata")
    async def v2_metadata() -> Response:
        return _json(oip.server_metadata())

    @app.get("/v2/health/live", tags=["oip"], summary="Liveness: the process answers")
    async def v2_live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready", tags=["oip"], summary="Readiness: every routed version loaded")
    async def v2_ready() -> Response:
        ready = server.replica.ready
        return _json({"ready": ready}, 200 if ready else 503)

    def metadata(name: str, version: str | None) -> Response:
        try:
            state = server.state_or_raise(name)
            if version is not None:
                served, _ = _pinned(state, version)
                versions: list[Any] = [served.version]
            else:
                top = max(state.desired.routes, key=lambda r: r.weight)
                served = state.versions[top.version]
                versions = list(state.versions)
        except Exception as exc:
            return bad(exc)
        return _json(
            oip.model_metadata(
                state.name, versions, served.signature, served.model.is_classifier, served.classes
            )
        )

    @app.get("/v2/models/{name}", tags=["oip"], summary="Model metadata")
    async def v2_model(name: str) -> Response:
        return metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}", tags=["oip"], summary="Version metadata")
    async def v2_model_version(name: str, version: str) -> Response:
        return metadata(name, version)

    def model_ready(name: str, version: str | None) -> Response:
        state = server.replica.state
        if state is None:
            return _json({"name": name, "ready": False}, 503)
        try:
            state = server.state_or_raise(name)
            if version is not None:
                _pinned(state, version)
        except Exception as exc:
            return bad(exc)
        return _json({"name": state.name, "ready": True})

    @app.get("/v2/models/{name}/ready", tags=["oip"], summary="Model readiness")
    async def v2_model_ready(name: str) -> Response:
        return model_ready(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["oip"], summary="Version ready")
    async def v2_version_ready(name: str, version: str) -> Response:
        return model_ready(name, version)

    @app.post(
        "/v2/models/{name}/infer",
        tags=["oip"],
        summary="Predict (routed by the deployment's traffic split)",
        openapi_extra={"requestBody": _OIP_BODY},
    )
    async def v2_infer(name: str, request: Request) -> Response:
        return await server.infer(request, _OIP, name)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["oip"],
        summary="Predict with one version",
        openapi_extra={"requestBody": _OIP_BODY},
    )
    async def v2_infer_version(name: str, version: str, request: Request) -> Response:
        return await server.infer(request, _OIP, name, version)

    # --- KServe V1, MLflow, plain -----------------------------------------------------------

    @app.post(
        "/v1/models/{name}:predict",
        tags=["kserve-v1"],
        summary="Predict (KServe V1)",
        openapi_extra={"requestBody": _INSTANCES_BODY},
    )
    async def v1_predict(name: str, request: Request) -> Response:
        return await server.infer(request, _V1, name)

    @app.get("/v1/models/{name}", tags=["kserve-v1"], summary="Model status (KServe V1)")
    async def v1_model(name: str) -> Response:
        try:
            state = server.state_or_raise(name)
        except Exception as exc:
            return bad(exc)
        return _json({"name": state.name, "ready": True})

    @app.post(
        "/invocations",
        tags=["mlflow"],
        summary="Predict (MLflow scoring protocol)",
        openapi_extra={"requestBody": _MLFLOW_BODY},
    )
    async def invocations(request: Request) -> Response:
        return await server.infer(request, _MLFLOW)

    @app.get("/ping", tags=["mlflow"], summary="MLflow health check")
    async def ping() -> Response:
        ready = server.replica.ready
        return Response("\n", status_code=200 if ready else 503, media_type="text/plain")

    @app.get("/version", tags=["mlflow"], summary="Server version")
    async def version() -> Response:
        return Response(ctloop.__version__, media_type="text/plain")

    @app.post(
        "/predict",
        tags=["plain"],
        summary="Predict: records in, predictions with ids out",
        openapi_extra={"requestBody": _INSTANCES_BODY},
    )
    async def predict(request: Request) -> Response:
        return await server.infer(request, _PLAIN)

    # --- feedback, metrics, info ------------------------------------------------------------

    @app.post(
        "/feedback",
        tags=["feedback"],
        summary="Ground truth for earlier predictions",
        openapi_extra={"requestBody": _FEEDBACK_BODY},
    )
    async def feedback(request: Request) -> Response:
        return await server.feedback(request)

    @app.get("/metrics", tags=["metrics"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(server.render_metrics(), media_type=CONTENT_TYPE)

    @app.get("/", tags=["info"], summary="What this replica serves now")
    async def info() -> Response:
        return _json(server.describe())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Feedback"] = {
                "type": "object",
                "required": ["prediction_id"],
                "properties": {
                    "prediction_id": {"type": "string"},
                    "label": {},
                    "value": {"type": "number"},
                },
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
