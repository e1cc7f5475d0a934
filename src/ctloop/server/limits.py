"""Request limits every router shares: JSON bodies no larger than the server allows."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message


class JsonBodyLimit(APIRoute):
    """A route whose request body may not exceed ``CTLOOP_SERVER_MAX_BODY_BYTES`` (413).

    The limit is read from the served store's settings at request time; it is checked
    against the Content-Length before anything is read and counted while reading, so an
    oversized (or chunked) body is refused without being held in memory. Routes that read
    their body themselves (the object uploads) declare no body field and are not limited
    here: they enforce their own limits.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def limited(request: Request) -> Response:
            limit = int(request.app.state.client.settings.server.max_body_bytes)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _body_too_large(limit)
            received = 0
            receive = request.receive

            async def counted() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _body_too_large(limit)
                return message

            return await handler(Request(request.scope, counted))

        return limited


def _body_too_large(limit: int) -> HTTPException:
    # An HTTPException (not PayloadTooLarge): FastAPI turns other errors raised while it
    # reads a body into a generic 400.
    return HTTPException(
        413,
        f"the request body is over the server's limit of {limit} bytes; its operator can "
        "raise CTLOOP_SERVER_MAX_BODY_BYTES",
    )
