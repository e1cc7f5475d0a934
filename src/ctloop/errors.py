"""The errors ctloop raises.

Every error ctloop raises on purpose derives from :class:`CtloopError`. Each family also
derives from the built-in it resembles, so ``except LookupError`` keeps working for code
that never heard of ctloop, and carries the HTTP status the server answers it with::

    CtloopError (Exception)                      500
    ├── InvalidInput (ValueError)                400
    │   └── IntegrityError                       422   stored content failed its digest
    ├── NotFound (LookupError)                   404
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
    "PermissionDenied",
    "StoreError",
    "StoreOutdated",
]


class CtloopError(Exception):
    """Root of every error ctloop raises on purpose."""

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(CtloopError, ValueError):
    """A value given to ctloop is malformed or out of range."""

    http_status = 400


class IntegrityError(InvalidInput):
    """Stored content does not match its recorded digest (corrupted or tampered)."""

    http_status = 422


class NotFound(CtloopError, LookupError):
    """A named thing (run, experiment, dataset, object…) does not exist."""

    http_status = 404


class Conflict(CtloopError):
    """The request contradicts stored state (e.g. re-setting a param to a new value)."""

    http_status = 409


class PermissionDenied(CtloopError, PermissionError):
    """The caller may not do this."""

    http_status = 403


class MissingExtraError(CtloopError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""

    http_status = 501

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


class StoreOutdated(StoreError):
    """The metadata store's schema is older than this version of ctloop expects."""
