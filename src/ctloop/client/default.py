"""The process-wide default client that module-level functions (``ctloop.start_run``,
``ctloop.add_dataset`` …) use: built on first use from the environment, rebuilt when the
``CTLOOP_*`` environment it came from changes."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctloop.client import Client

_lock = threading.Lock()
_client: Client | None = None
_key: tuple[tuple[str, str], ...] | None = None


def _env_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CTLOOP_")))


def default_client() -> Client:
    """The shared :class:`~ctloop.Client` for the current ``CTLOOP_*`` settings and folder."""
    global _client, _key
    key = (*_env_key(), ("cwd", os.getcwd()))
    with _lock:
        if _client is None or key != _key:
            from ctloop.client import Client

            if _client is not None:
                _client.close()
            _client = Client()
            _key = key
        return _client


def reset_default_client() -> None:
    """Forget the shared client (tests, or after changing settings in process)."""
    global _client, _key
    with _lock:
        if _client is not None:
            _client.close()
        _client, _key = None, None
