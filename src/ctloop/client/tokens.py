"""``client.tokens``: bearer tokens for a ``ctloop server --auth``.

A token is a random secret with a recognisable prefix (``ctl_…``, so secret scanners and
people can tell what it is). The store keeps only its sha256; the secret is shown once, by
:meth:`TokensAPI.create`. Tokens are managed where the store is (local backend only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ctloop._internal.ids import ms_to_datetime, now_ms
from ctloop._internal.names import check_name
from ctloop.client._local import LocalContext
from ctloop.errors import InvalidInput
from ctloop.store import tokens as repo

__all__ = ["TOKEN_PREFIX", "Token", "TokenScope", "TokensAPI", "hash_secret"]

TOKEN_PREFIX = "ctl_"
# Writing last_used_at on every request would turn every read into a write transaction.
LAST_USED_INTERVAL_MS = 60_000


class TokenScope(StrEnum):
    """What a token may do; each scope includes the ones before it."""

    READ = "read"  # GET and HEAD
    WRITE = "write"  # also POST, PUT, PATCH, DELETE
    ADMIN = "admin"  # also the admin routes (reserved for a later version)

    def allows(self, needed: TokenScope) -> bool:
        """Whether a token of this scope may do what ``needed`` requires."""
        order = list(TokenScope)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Token:
    """A stored API token (never its secret)."""

    id: str
    name: str | None
    scope: TokenScope
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    """The sha256 hex digest a secret is stored as."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_from_row(row: dict[str, Any]) -> Token:
    created = ms_to_datetime(row["created_at"])
    assert created is not None
    return Token(
        id=row["id"],
        name=row["name"],
        scope=TokenScope(row["scope"]),
        created_at=created,
        last_used_at=ms_to_datetime(row["last_used_at"]),
        revoked_at=ms_to_datetime(row["revoked_at"]),
    )


def _scope(value: str) -> TokenScope:
    try:
        return TokenScope(value)
    except ValueError:
        raise InvalidInput(
            f"invalid token scope {value!r}: use one of read, write, admin"
        ) from None


class TokensAPI:
    """Create, list, revoke and check API tokens."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

    def create(self, scope: str, name: str | None = None) -> tuple[Token, str]:
        """A new token and its secret; the secret cannot be read back later.

        Args:
            scope: ``read``, ``write`` or ``admin``.
            name: an optional unique name (e.g. ``ci``) to find and revoke it by.

        Raises:
            InvalidInput: an unknown scope or a malformed name.
            Conflict: the name is taken (also by a revoked token).
        """
        checked = _scope(scope)
        if name is not None:
            check_name(name, "token")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._ctx.db.write() as conn:
            row = repo.create(conn, name=name, scope=checked.value, token_hash=hash_secret(secret))
        return token_from_row(row), secret

    def list(self) -> list[Token]:
        """Every token, active and revoked, oldest first."""
        with self._ctx.db.read() as conn:
            return [token_from_row(r) for r in repo.list_all(conn)]

    def get(self, id_or_name: str) -> Token:
        """A token by id or name; :class:`~ctloop.errors.NotFound` otherwise."""
        with self._ctx.db.read() as conn:
            return token_from_row(repo.get(conn, id_or_name))

    def revoke(self, id_or_name: str) -> Token:
        """Revoke a token at once (revoking a revoked token changes nothing)."""
        with self._ctx.db.write() as conn:
            row = repo.get(conn, id_or_name)
            row["revoked_at"] = repo.revoke(conn, row["id"])
        return token_from_row(row)

    def verify(self, secret: str) -> Token | None:
        """The active token whose secret this is, or None; records when it was last used."""
        if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX):
            return None
        digest = hash_secret(secret)
        with self._ctx.db.read() as conn:
            row = repo.find_by_hash(conn, digest)
        # The lookup is by digest, so timing says nothing about the secret; compare anyway
        # in constant time so correctness never rests on the database's string equality.
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            return None
        if row["revoked_at"] is not None:
            return None
        now = now_ms()
        last = row["last_used_at"]
        if last is None or now - last >= LAST_USED_INTERVAL_MS:
            with self._ctx.db.write() as conn:
                repo.touch(conn, row["id"], now, LAST_USED_INTERVAL_MS)
            row["last_used_at"] = now
        return token_from_row(row)
