"""Starting an inference server: what TARGET names, and one or several worker processes.

``ctloop serve TARGET`` accepts a deployment name, a model reference (``churn@champion``,
``churn/3``; an ad-hoc deployment that follows the reference) or a model package folder
(what ``ctloop build`` puts in an image). :func:`serve` resolves it once in the parent
process, so a wrong target fails before any worker starts, then runs uvicorn. With
``workers > 1`` uvicorn spawns fresh interpreters that rebuild the app from
:data:`SPEC_ENV` (:func:`app_from_env`); they share nothing but the store and the artifact
store, and their Prometheus metrics are summed through a shared folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput, NotFound
from ctloop.serving.app import create_inference_app
from ctloop.serving.server import ServeConfig

if TYPE_CHECKING:
    from types import FrameType

    from fastapi import FastAPI

    from ctloop.client import Client
    from ctloop.serving.replica import Source

__all__ = ["SPEC_ENV", "ServeSpec", "app_from_env", "build_app", "resolve_target", "serve"]

SPEC_ENV = "CTLOOP_SERVE_SPEC"


@dataclass(frozen=True)
class ServeSpec:
    """Everything a worker needs to build the same app as its siblings.

    ``kind`` is ``deployment``, ``ref`` or ``package`` (see :func:`resolve_target`).
    """

    kind: str
    target: str
    name: str | None = None
    store: str | None = None
    artifacts: str | None = None
    trust: bool = False
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSpec:
        return cls(**json.loads(text))


def resolve_target(client: Client | None, target: str) -> str:
    """What ``target`` names: ``package`` (a folder), ``deployment`` or ``ref``.

    A plain name is a deployment when one is stored under it, else the newest version of
    the model of that name.

    Raises:
        NotFound: nothing of that name: says how to list deployments and models.
    """
    from ctloop.models.package import MANIFEST_FILE

    path = Path(target).expanduser()
    if path.is_dir():
        if (path / MANIFEST_FILE).is_file():
            return "package"
        raise InvalidInput(
            f"{target!r} is a folder but not a model package (it has no {MANIFEST_FILE})"
        )
    if client is None:
        raise InvalidInput(f"{target!r} is not a model package folder")
    if "@" not in target and "/" not in target and ":" not in target:
        try:
            client.deployments.get(target)
            return "deployment"
        except NotFound:
            pass
    try:
        client.models.resolve(target)
    except NotFound:
        raise NotFound(
            f"nothing to serve named {target!r}: it is not a deployment (ctloop deployments "
            "list), a model version (ctloop models list) or a model package folder"
        ) from None
    return "ref"


def _client(spec: ServeSpec) -> Client:
    from ctloop.client import Client
    from ctloop.settings import load_settings

    overrides = {k: v for k, v in (("store", spec.store), ("artifacts", spec.artifacts)) if v}
    return Client(settings=load_settings(**overrides))


def log_root_of(client: Client | None, spec: ServeSpec) -> tuple[str, dict[str, Any] | None]:
    """Where the prediction and feedback logs go: the store's artifact root."""
    from ctloop.artifacts.filesystems import s3_storage_options
    from ctloop.settings import load_settings

    settings = client.settings if client is not None else None
    if settings is None:
        overrides = {k: v for k, v in (("store", spec.store), ("artifacts", spec.artifacts)) if v}
        settings = load_settings(**overrides)
    store = settings.store or ""
    if store.startswith(("http://", "https://")) and not settings.artifacts:
        raise InvalidInput(
            "serving from a ctloop server needs --artifacts: the artifact store (a folder or "
            "s3://…) the server uses, so the prediction log lands where monitors read it"
        )
    root = settings.artifacts_root()
    return root, (s3_storage_options(settings) if "://" in root else None)


def build_app(spec: ServeSpec) -> FastAPI:
    """The app of one worker for ``spec`` (a fresh client of its own)."""
    config = ServeConfig(**spec.config)
    client = _client(spec) if spec.kind != "package" else None
    source: Source
    if spec.kind == "deployment":
        from ctloop.serving.replica import DeploymentSource

        assert client is not None
        source = DeploymentSource(client, spec.target)
    elif spec.kind == "ref":
        from ctloop.serving.replica import ModelRefSource

        assert client is not None
        source = ModelRefSource(
            client, spec.target, name=spec.name, log_payloads=config.log_payloads
        )
    elif spec.kind == "package":
        from ctloop.serving.replica import PackageSource

        source = PackageSource(
            spec.target,
            name=spec.name or Path(spec.target).resolve().name,
            version=_package_version(spec.target),
            trust=spec.trust,
        )
    else:
        raise InvalidInput(f"unknown serve target kind {spec.kind!r}")
    root, options = log_root_of(client, spec) if config.log_payloads else (None, None)
    return create_inference_app(
        source,
        config=config,
        log_root=root,
        storage_options=options,
        on_close=client.close if client is not None else None,
    )


def _package_version(folder: str) -> int:
    """The registered version a built package came from (``build.json`` beside it), or 1."""
    info = Path(folder).resolve().parent / "build.json"
    try:
        version = json.loads(info.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return 1
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def app_from_env() -> FastAPI:
    """uvicorn's app factory in each worker: the app described by ``$CTLOOP_SERVE_SPEC``."""
    text = os.environ.get(SPEC_ENV)
    if not text:
        raise InvalidInput(f"{SPEC_ENV} is not set; start workers with ctloop serve")
    _tune_interpreter()
    return _ready_before_accepting(build_app(ServeSpec.from_json(text)))


SWITCH_INTERVAL_SECONDS = 0.001


def _tune_interpreter() -> None:
    """Hand the GIL over every 1 ms instead of 5 ms in a serving process.

    The event loop shares the interpreter with the prediction threads and the log
    writer; with Python's default 5 ms a request that becomes ready while another thread
    holds the GIL can wait that long, which showed up in p99 latency.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


WORKER_READY_WAIT_SECONDS = 120.0


def _ready_before_accepting(app: FastAPI) -> FastAPI:
    """Hold a worker's startup until its models are loaded (or a time limit passes).

    Workers share one listening socket and each answers ``/v2/health/ready`` for itself
    only, so a worker still loading would take connections, answer 503 while a sibling
    already said ready. A worker accepts nothing before its startup ends, so the kernel
    gives the connections to the ready siblings meanwhile. After the limit it accepts
    anyway (and answers 503 with the load error until it converges).
    """
    import asyncio
    import contextlib
    import time
    from collections.abc import AsyncIterator

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            replica = a.state.server.replica
            deadline = time.monotonic() + WORKER_READY_WAIT_SECONDS
            while not replica.ready and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            yield state

    app.router.lifespan_context = lifespan
    return app


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(spec: ServeSpec, *, host: str, port: int, workers: int = 1) -> None:
    """Run the server until interrupted (SIGINT/SIGTERM write the logs' last rows first)."""
    import uvicorn

    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {workers}")
    _tune_interpreter()
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "loop": "auto",
        "http": "auto",
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        # After a graceful shutdown uvicorn re-raises the SIGTERM it caught, so the process
        # would die of it (exit -15) although every log row was written; exit 0 instead,
        # as the multi-worker supervisor does. A SIGTERM before uvicorn listens exits too.
        if threading.current_thread() is not threading.main_thread():
            uvicorn.run(build_app(spec), **kwargs)  # uvicorn captures no signals there
            return
        previous = signal.signal(signal.SIGTERM, _exit_quietly)
        try:
            uvicorn.run(build_app(spec), **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)
        return
    from ctloop.serving.metrics import MULTIPROC_ENV

    metrics_dir = tempfile.mkdtemp(prefix="ctloop-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    os.environ[SPEC_ENV] = spec.to_json()
    try:
        uvicorn.run("ctloop.serving.launch:app_from_env", factory=True, workers=workers, **kwargs)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
