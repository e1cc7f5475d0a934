"""One error shape for every failure: ``{"error": {"code": "NOT_FOUND", "message": "…"}}``.

ctloop's own errors keep their status and code; FastAPI's request validation becomes a 400
``INVALID_INPUT`` listing each problem; unknown routes and methods keep 404/405; anything
else is a 500 ``INTERNAL`` (a bug: it is logged with its traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ctloop.errors import CtloopError

log = logging.getLogger("ctloop.server")

_HTTP_CODES = {
    400: "INVALID_INPUT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error shape."""

    @app.exception_handler(CtloopError)
    async def ctloop_error(_: Request, exc: CtloopError) -> JSONResponse:
        return error_response(exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_location(e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(400, "INVALID_INPUT", "invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        response = error_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            500, "INTERNAL", f"unexpected {type(exc).__name__}; this is a ctloop bug, see the log"
        )
