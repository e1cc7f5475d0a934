"""The app factory: ``create_app(settings)`` → a FastAPI app serving one ctloop store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

import ctloop
from ctloop.server.errors import install_error_handlers
from ctloop.server.routers import (
    artifacts,
    datasets,
    deployments,
    experiments,
    health,
    loop,
    models,
    monitors,
    objects,
    pipelines,
    runs,
)

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.settings import Settings

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None, *, client: Client | None = None, auth: bool = False
) -> FastAPI:
    """A REST server for the store named by ``settings`` (or wrapping ``client``).

    With ``auth`` every request but ``/healthz`` and the API description needs a bearer
    token of the store (see :mod:`ctloop.server.auth`).

    The store is opened in the app's lifespan (so importing or building the app touches no
    database) and closed at shutdown unless the caller passed its own ``client``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ctloop.client import Client

        own = client is None
        app.state.client = client if client is not None else Client(settings=settings)
        try:
            yield
        finally:
            if own:
                app.state.client.close()

    app = FastAPI(
        title="ctloop",
        version=ctloop.__version__,
        summary="Control plane of a ctloop store: experiments, runs, artifacts, datasets.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    if auth:
        from ctloop.server.auth import AuthMiddleware

        app.add_middleware(AuthMiddleware)
    app.include_router(health.router)
    app.include_router(experiments.router, prefix=API_PREFIX)
    app.include_router(runs.router, prefix=API_PREFIX)
    app.include_router(models.router, prefix=API_PREFIX)
    app.include_router(objects.router, prefix=API_PREFIX)
    app.include_router(artifacts.router, prefix=API_PREFIX)
    app.include_router(datasets.router, prefix=API_PREFIX)
    app.include_router(pipelines.router, prefix=API_PREFIX)
    app.include_router(deployments.router, prefix=API_PREFIX)
    app.include_router(monitors.router, prefix=API_PREFIX)
    app.include_router(loop.router, prefix=API_PREFIX)
    return app
