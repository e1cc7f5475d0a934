"""The errors ctloop raises.

Every error ctloop raises on purpose derives from :class:`CtloopError`. Each family also
derives from the built-in it resembles, so ``except LookupError`` keeps working for code
that never heard of ctloop, and carries the HTTP status the server answers it with::

    CtloopError (Exception)                      500
    ├── InvalidInput (ValueError)                400
    │   ├── IntegrityError                       422   stored content failed its digest
    │   └── PayloadTooLarge                      413   request or upload over the limit
    ├── NotFound (LookupError)                   404
    ├── Unauthenticated (PermissionError)        401
    ├── Conflict                                 409
    ├── PermissionDenied (PermissionError)       403
    ├── MissingExtraError (ImportError)          501
    └── StoreError (RuntimeError)                503
        └── StoreOutdated                        503   schema older than this ctloop

Messages say what was wrong, with the value, and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "CtloopError",
    "IntegrityError",
    "InvalidInput",
    "MissingExtraError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "StoreError",
    "StoreOutdated",
    "Unauthenticated",
    "error_for_code",
]


class CtloopError(Exception):
    """Root of every error ctloop raises on purpose."""

    http_status: int = 500
    code: str = "INTERNAL"  # the error code of the REST API's error body

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(CtloopError, ValueError):
    """A value given to ctloop is malformed or out of range."""

    http_status = 400
    code = "INVALID_INPUT"


class IntegrityError(InvalidInput):
    """Stored content does not match its recorded digest (corrupted or tampered)."""

    http_status = 422
    code = "INTEGRITY_ERROR"


class NotFound(CtloopError, LookupError):
    """A named thing (run, experiment, dataset, object…) does not exist."""

    http_status = 404
    code = "NOT_FOUND"


class Conflict(CtloopError):
    """The request contradicts stored state (e.g. re-setting a param to a new value)."""

    http_status = 409
    code = "CONFLICT"


class Unauthenticated(CtloopError, PermissionError):
    """No valid credentials were given (a server with --auth wants a token)."""

    http_status = 401
    code = "UNAUTHENTICATED"


class PermissionDenied(CtloopError, PermissionError):
    """The caller may not do this."""

    http_status = 403
    code = "PERMISSION_DENIED"


class MissingExtraError(CtloopError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""

    http_status = 501
    code = "MISSING_EXTRA"

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        why = f" for {purpose}" if purpose else ""
        super().__init__(
            f"the optional package '{package}' is needed{why}; "
            f"install it with: pip install 'ctloop[{extra}]'"
        )
        self.package = package
        self.extra = extra
        self.purpose = purpose

    def __reduce__(self) -> tuple[type[MissingExtraError], tuple[str, str, str]]:
        # Errors cross process boundaries (pipeline workers, Ray); the default pickling
        # would call __init__ with the message alone and fail.
        return (type(self), (self.package, self.extra, self.purpose))


class StoreError(CtloopError, RuntimeError):
    """The metadata store or artifact store cannot be reached or used."""

    http_status = 503
    code = "STORE_ERROR"


class StoreOutdated(StoreError):
    """The metadata store's schema is older than this version of ctloop expects."""

    code = "STORE_OUTDATED"


class PayloadTooLarge(InvalidInput):
    """A request body or upload exceeds the server's limit."""

    http_status = 413
    code = "PAYLOAD_TOO_LARGE"


def _families() -> list[type[CtloopError]]:
    found: list[type[CtloopError]] = []
    stack: list[type[CtloopError]] = [CtloopError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def error_for_code(code: str, message: str) -> CtloopError:
    """The error an HTTP client raises for a server's error body: the server's own class."""
    for cls in _families():
        if cls.code == code:
            err = cls.__new__(cls)
            CtloopError.__init__(err, message)
            return err
    return CtloopError(message)
