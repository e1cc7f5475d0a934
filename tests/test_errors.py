"""The error hierarchy: families, built-in bases, HTTP statuses, messages."""

from __future__ import annotations

import pickle

import pytest

import ctloop
from ctloop import errors
from ctloop.errors import (
    Conflict,
    CtloopError,
    IntegrityError,
    InvalidInput,
    MissingExtraError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    StoreError,
    StoreOutdated,
    Unauthenticated,
)

# class, the built-in it also is (None: only Exception), its parent family, HTTP status
FAMILIES = [
    (CtloopError, Exception, Exception, 500),
    (InvalidInput, ValueError, CtloopError, 400),
    (IntegrityError, ValueError, InvalidInput, 422),
    (NotFound, LookupError, CtloopError, 404),
    (Conflict, None, CtloopError, 409),
    (PermissionDenied, PermissionError, CtloopError, 403),
    (MissingExtraError, ImportError, CtloopError, 501),
    (StoreError, RuntimeError, CtloopError, 503),
    (StoreOutdated, RuntimeError, StoreError, 503),
    (Unauthenticated, PermissionError, CtloopError, 401),
    (PayloadTooLarge, ValueError, InvalidInput, 413),
]


def _make(cls: type[CtloopError], message: str) -> CtloopError:
    if cls is MissingExtraError:
        return MissingExtraError("ray", "ray", message)
    return cls(message)


@pytest.mark.parametrize(("cls", "builtin", "parent", "status"), FAMILIES)
def test_family(
    cls: type[CtloopError], builtin: type[Exception] | None, parent: type, status: int
) -> None:
    assert issubclass(cls, CtloopError)
    assert issubclass(cls, parent)
    if builtin is not None:
        assert issubclass(cls, builtin)
    assert cls.http_status == status
    exc = _make(cls, "something precise")
    assert exc.http_status == status
    with pytest.raises(CtloopError):
        raise exc


def test_conflict_is_no_value_error() -> None:
    # A conflict is about stored state, not a malformed value: handlers must not mix them.
    assert not issubclass(Conflict, ValueError | LookupError)
    assert not issubclass(NotFound, ValueError)


def test_every_public_error_is_in_the_table() -> None:
    public = {getattr(errors, name) for name in errors.__all__ if name != "error_for_code"}
    assert public == {row[0] for row in FAMILIES}


def test_builtin_handlers_catch_the_families() -> None:
    with pytest.raises(LookupError):
        raise NotFound("run 'abc' not found")
    with pytest.raises(ValueError):
        raise IntegrityError("object is corrupted")
    with pytest.raises(ImportError):
        raise MissingExtraError("s3fs", "s3")


@pytest.mark.parametrize("cls", [row[0] for row in FAMILIES if row[0] is not MissingExtraError])
def test_message_is_preserved(cls: type[CtloopError]) -> None:
    message = "model 'churn' has no version 7 (latest is 5); list them with: ctloop models"
    exc = cls(message)
    assert str(exc) == message
    assert exc.message == message
    assert exc.args == (message,)


@pytest.mark.parametrize("cls", [row[0] for row in FAMILIES])
def test_errors_survive_pickling(cls: type[CtloopError]) -> None:
    # Errors travel from pipeline worker processes and Ray tasks back to the caller.
    exc = _make(cls, "why it failed")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)
    assert back.http_status == exc.http_status


def test_missing_extra_names_the_extra_and_the_install_command() -> None:
    exc = MissingExtraError("ray", "ray", "running steps on a Ray cluster")
    assert exc.package == "ray"
    assert exc.extra == "ray"
    assert "pip install 'ctloop[ray]'" in str(exc)
    assert "'ray'" in str(exc)
    assert "for running steps on a Ray cluster" in str(exc)
    back = pickle.loads(pickle.dumps(exc))
    assert (back.package, back.extra) == ("ray", "ray")


def test_missing_extra_without_purpose() -> None:
    exc = MissingExtraError("psycopg", "postgres")
    assert str(exc) == (
        "the optional package 'psycopg' is needed; install it with: pip install 'ctloop[postgres]'"
    )


def test_public_api_reexports_the_common_families() -> None:
    assert ctloop.CtloopError is CtloopError
    assert ctloop.NotFound is NotFound
    assert ctloop.InvalidInput is InvalidInput
    assert ctloop.Conflict is Conflict


@pytest.mark.parametrize(("cls", "builtin", "parent", "status"), FAMILIES)
def test_error_codes_map_back_to_the_same_class(
    cls: type[CtloopError], builtin: type[Exception] | None, parent: type, status: int
) -> None:
    # What an HTTP client raises for a server's {"error": {"code", "message"}} body.
    again = errors.error_for_code(cls.code, "said by the server")
    assert type(again) is cls
    assert str(again) == "said by the server"


def test_every_family_has_its_own_code() -> None:
    codes = [row[0].code for row in FAMILIES]
    assert len(codes) == len(set(codes))
    assert type(errors.error_for_code("NO_SUCH_CODE", "x")) is CtloopError
