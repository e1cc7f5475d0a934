"""One error shape for every failure: ``{"error": {"code": "NOT_FOUND", "message": "…"}}``.

ctloop's own errors keep their status and code; FastAPI's request validation becomes a 400
``INVALID_INPUT`` listing each problem; unknown routes and methods keep 404/405; anything
else is a 500 ``INTERNAL`` (a bug: it is logged with its traceback).

The OpenAPI description says so: every operation documents ``4XX`` with this shape (the
``Error`` schema) in place of FastAPI's default 422 ``HTTPValidationError``, which this
server never sends.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "The shape of every failure.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "examples": ["NOT_FOUND"]},
                "message": {"type": "string"},
            },
            "required": ["code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_VALIDATION_REF = "#/components/schemas/HTTPValidationError"


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Describe the one error shape in an OpenAPI document (in place), and return it.

    Every operation gets ``4XX`` → ``Error``; FastAPI's 422 ``HTTPValidationError`` goes
    (request validation answers 400 here); 4xx responses a route declares without a body
    get the ``Error`` body.
    """
    for operation in (op for item in spec.get("paths", {}).values() for op in item.values()):
        responses = operation.setdefault("responses", {})
        validation = responses.get("422", {}).get("content", {}).get("application/json", {})
        if validation.get("schema", {}).get("$ref") == _VALIDATION_REF:
            del responses["422"]
        for status, response in responses.items():
            if status.startswith("4") and "content" not in response:
                response["content"] = copy.deepcopy(_ERROR_CONTENT)
        responses.setdefault(
            "4XX",
            {
                "description": "invalid input (400), not found (404), conflict (409), too "
                "large (413)…: the code says which",
                "content": copy.deepcopy(_ERROR_CONTENT),
            },
        )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)  # only the 422 responses removed above used them
    return spec


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error shape, and describe it in the app's OpenAPI."""
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(build_openapi())  # FastAPI caches the document it builds
        return build_openapi()

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(CtloopError)
    async def ctloop_error(_: Request, exc: CtloopError) -> JSONResponse:
        return error_response(exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_location(e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(400, "INVALID_INPUT", "invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        response = error_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            500, "INTERNAL", f"unexpected {type(exc).__name__}; this is a ctloop bug, see the log"
        )
