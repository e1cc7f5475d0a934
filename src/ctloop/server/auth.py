"""Bearer-token authentication of ``ctloop server --auth``.

An ASGI middleware guards every path, including ones no route answers (so an anonymous
caller cannot map the API), except the health check and the API description. Without a
valid token a request gets 401 ``UNAUTHENTICATED`` with ``WWW-Authenticate: Bearer``; with
a token whose scope is too small, 403 ``PERMISSION_DENIED``:

=========  ==================================================
scope      may
=========  ==================================================
read       GET, HEAD, OPTIONS
write      also POST, PUT, PATCH, DELETE
admin      also anything under ``/api/v1/admin`` (reserved)
=========  ==================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ctloop.client.tokens import TokenScope
from ctloop.server.errors import error_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ctloop.client import Client

__all__ = ["OPEN_PATHS", "AuthMiddleware", "required_scope"]

# Load balancers probe /healthz without credentials; the API description is public anyway.
OPEN_PATHS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
ADMIN_PREFIX = "/api/v1/admin"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_HOW = "create one where the store is with: ctloop tokens create --scope read"


def required_scope(method: str, path: str) -> TokenScope:
    """The smallest scope that may send ``method`` to ``path``."""
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return TokenScope.ADMIN
    return TokenScope.READ if method.upper() in _READ_METHODS else TokenScope.WRITE


def bearer_secret(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and secret.strip():
                return secret.strip()
            return None
    return None


class AuthMiddleware:
    """Refuse requests without a valid token of a large enough scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # websockets: no route takes them yet, none unguarded
            await send({"type": "websocket.close", "code": 1008})
            return
        secret = bearer_secret(scope)
        if secret is None:
            await self._refuse(
                scope,
                receive,
                send,
                401,
                "this server requires a token: send 'Authorization: Bearer TOKEN' "
                f"(the client reads CTLOOP_TOKEN); {_HOW}",
                'Bearer realm="ctloop"',
            )
            return
        client: Client = scope["app"].state.client
        # The lookup touches the database: keep it off the event loop.
        token = await anyio.to_thread.run_sync(client.tokens.verify, secret)
        if token is None:
            await self._refuse(
                scope,
                receive,
                send,
                401,
                f"the token is not valid (unknown or revoked); {_HOW}",
                'Bearer realm="ctloop", error="invalid_token"',
            )
            return
        needed = required_scope(scope["method"], scope["path"])
        if not token.scope.allows(needed):
            who = f"token {token.name!r}" if token.name else f"token {token.id}"
            await self._refuse(
                scope,
                receive,
                send,
                403,
                f"{who} has scope {token.scope.value!r}, but {scope['method']} "
                f"{scope['path']} needs {needed.value!r}; create one with: "
                f"ctloop tokens create --scope {needed.value}",
                f'Bearer realm="ctloop", error="insufficient_scope", scope="{needed.value}"',
            )
            return
        scope.setdefault("state", {})["token"] = token
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        message: str,
        challenge: str,
    ) -> None:
        code = "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED"
        response: Any = error_response(status, code, message)
        response.headers["WWW-Authenticate"] = challenge
        await response(scope, receive, send)
