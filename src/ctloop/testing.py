"""Helpers for testing code that uses ctloop: a throwaway store, the store environment.

::

    from ctloop.testing import temporary_store

    def test_training_logs_its_metrics():
        with temporary_store(set_env=True) as client:  # real SQLite store, removed after
            train()  # code under test, logging through ctloop's fluent API
            ...  # assert on what client's resource APIs now return

Importing this module is as cheap as ``import ctloop``; the client is imported on use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.client import Client

__all__ = ["running_server", "store_env", "temporary_store"]

_STORE_VARS = ("CTLOOP_STORE", "CTLOOP_ARTIFACTS")


@contextlib.contextmanager
def store_env(
    store: str | os.PathLike[str], artifacts: str | os.PathLike[str] | None = None
) -> Iterator[None]:
    """Point ``CTLOOP_STORE`` (and ``CTLOOP_ARTIFACTS``) at a store for the duration.

    Code that builds its client from the environment (the fluent API, the CLI in a
    subprocess) then uses this store. The previous values are restored on exit.

    Args:
        store: a folder, ``sqlite:///FILE`` or ``postgresql+psycopg://…``.
        artifacts: a folder or ``s3://bucket/prefix``; by default ``CTLOOP_ARTIFACTS`` is
            unset for the duration, so the artifacts live beside the store.
    """
    saved = {name: os.environ.get(name) for name in _STORE_VARS}
    try:
        os.environ["CTLOOP_STORE"] = os.fspath(store)
        if artifacts is None:
            os.environ.pop("CTLOOP_ARTIFACTS", None)
        else:
            os.environ["CTLOOP_ARTIFACTS"] = os.fspath(artifacts)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def temporary_store(*, artifacts: str | None = None, set_env: bool = False) -> Iterator[Client]:
    """A :class:`~ctloop.Client` on a new embedded store in a temporary folder.

    The folder (SQLite database, artifacts, caches) is removed on exit.

    Args:
        artifacts: where artifacts go (e.g. ``s3://bucket/prefix``); default: the folder.
        set_env: also point ``CTLOOP_STORE``/``CTLOOP_ARTIFACTS`` at the store while open
            (see :func:`store_env`), for code that finds its store in the environment.
    """
    from ctloop.client import Client

    folder = Path(tempfile.mkdtemp(prefix="ctloop-store-"))
    try:
        # Artifacts are named explicitly so a CTLOOP_ARTIFACTS in the caller's environment
        # can never send a throwaway store's objects somewhere real.
        art = artifacts if artifacts is not None else str(folder / "artifacts")
        client = Client(store=str(folder), artifacts=art)
        try:
            with store_env(folder, art) if set_env else contextlib.nullcontext():
                yield client
        finally:
            client.close()
    finally:
        if sys.version_info >= (3, 12):
            shutil.rmtree(folder, onexc=_make_writable_and_retry)
        else:
            shutil.rmtree(folder, onerror=_make_writable_and_retry)


def _make_writable_and_retry(func: Any, path: str, _exc: Any) -> None:
    # Stored objects are read-only (they are immutable); where the platform refuses to
    # delete read-only files, make them writable and try once more.
    os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
    func(path)


@contextlib.contextmanager
def running_server(
    store: str | os.PathLike[str],
    *,
    artifacts: str | None = None,
    host: str = "127.0.0.1",
    auth: bool = False,
) -> Iterator[str]:
    """A real ``ctloop server`` (uvicorn) for ``store`` on a free loopback port.

    Yields its base URL (``http://127.0.0.1:PORT``): point ``ctloop.Client(store=url)`` or
    ``CTLOOP_STORE`` at it. The server stops when the block ends. With ``auth`` it runs as
    ``ctloop server --auth``: create tokens with ``Client(store).tokens.create(...)``.
    """
    import socket
    import threading
    import time

    import uvicorn

    from ctloop.server import create_app
    from ctloop.settings import load_settings

    with socket.socket() as sock:
        sock.bind((host, 0))
        port = int(sock.getsockname()[1])
    settings = load_settings(store=str(store), artifacts=artifacts)
    config = uvicorn.Config(
        create_app(settings, auth=auth), host=host, port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"ctloop-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the test server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
