"""The HTTP backend: what the resource APIs of a remote client share.

Requests go to a ``ctloop server`` (``CTLOOP_STORE=http://host:port``). Error bodies
``{"error": {"code", "message"}}`` turn back into the same :class:`~ctloop.errors.CtloopError`
subclass the server raised, so code behaves the same on either backend. Idempotent requests
are retried on connection errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ctloop.errors import MissingExtraError, StoreError, error_for_code
from ctloop.settings import Settings

API = "/api/v1"
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}


class HttpContext:
    """An ``httpx`` session on one ctloop server."""

    def __init__(self, settings: Settings) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise MissingExtraError("httpx", "server", "a ctloop server store") from exc
        self.settings = settings
        self.url = settings.store_url().rstrip("/")
        headers = {"User-Agent": "ctloop-client"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._httpx = httpx
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=settings.http.timeout)

    def _unreachable(self, exc: Exception) -> StoreError:
        return StoreError(
            f"cannot reach the ctloop server at {self.url}: {exc}; check the URL in "
            "CTLOOP_STORE and that `ctloop server` is running there"
        )

    def raise_for_error(self, response: Any) -> None:
        """Raise the server's error as the matching CtloopError subclass."""
        if response.status_code < 400:
            return
        try:
            body = response.json()
            err = body["error"]
            code, message = str(err["code"]), str(err["message"])
        except (ValueError, KeyError, TypeError):
            text = response.text[:300] if hasattr(response, "text") else ""
            code, message = "INTERNAL", f"server answered {response.status_code}: {text}"
        raise error_for_code(code, message)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request under ``/api/v1`` and return the decoded JSON (None for 204)."""
        attempts = 1 + (self.settings.http.retries if method in _IDEMPOTENT else 0)
        for attempt in range(attempts):
            try:
                response = self.http.request(
                    method,
                    API + path,
                    json=json,
                    params=params,
                    content=content,
                    headers=headers,
                )
                break
            except self._httpx.TransportError as exc:
                if attempt + 1 == attempts:
                    raise self._unreachable(exc) from exc
                time.sleep(0.2 * 2**attempt)
        self.raise_for_error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Any]:
        """A streamed response (downloads); errors are raised before the body is read."""
        try:
            with self.http.stream(method, API + path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    self.raise_for_error(response)
                yield response
        except self._httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def close(self) -> None:
        self.http.close()
