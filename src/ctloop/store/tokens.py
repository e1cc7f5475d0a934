"""SQL for API tokens: the only module that queries the ``api_tokens`` table.

The table holds the sha256 of each secret, never the secret. Rows come back as plain dicts
without the hash (nothing above this module needs it).
"""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import Connection, or_, select, update

from ctloop._internal.ids import new_id, now_ms
from ctloop.errors import Conflict, NotFound
from ctloop.store.tables import api_tokens

__all__ = ["create", "find_by_hash", "get", "list_all", "revoke", "touch"]

Row = dict[str, Any]

_PUBLIC = [c for c in api_tokens.c if c.name != "token_hash"]


def create(conn: Connection, *, name: str | None, scope: str, token_hash: str) -> Row:
    """Insert a token; :class:`Conflict` if ``name`` is taken (revoked tokens keep theirs)."""
    if name is not None:
        taken = conn.execute(select(api_tokens.c.revoked_at).where(api_tokens.c.name == name))
        row = taken.first()
        if row is not None:
            state = "a revoked token" if row[0] is not None else "an active token"
            raise Conflict(
                f"{state} is already named {name!r}; token names are never reused, so pick "
                "another (see them with: ctloop tokens list)"
            )
    row_values: Row = {
        "id": new_id(),
        "name": name,
        "scope": scope,
        "token_hash": token_hash,
        "created_at": now_ms(),
        "last_used_at": None,
        "revoked_at": None,
    }
    conn.execute(api_tokens.insert().values(**row_values))
    del row_values["token_hash"]
    return row_values


def list_all(conn: Connection) -> list[Row]:
    """Every token (active and revoked), oldest first."""
    stmt = select(*_PUBLIC).order_by(api_tokens.c.created_at, api_tokens.c.id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def get(conn: Connection, id_or_name: str) -> Row:
    """A token by id or name; :class:`NotFound` naming it otherwise."""
    stmt = select(*_PUBLIC).where(
        or_(api_tokens.c.id == id_or_name, api_tokens.c.name == id_or_name)
    )
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    if not rows:
        names = [n for n in conn.execute(select(api_tokens.c.name)).scalars() if n]
        close = difflib.get_close_matches(id_or_name, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise NotFound(
            f"no token with id or name {id_or_name!r}; {hint}list them with: ctloop tokens list"
        )
    # An id is 32 hex characters; should a name look the same, the id wins.
    rows.sort(key=lambda r: r["id"] != id_or_name)
    return rows[0]


def find_by_hash(conn: Connection, token_hash: str) -> Row | None:
    """The token whose secret hashes to ``token_hash`` (with its stored hash), or None."""
    stmt = select(api_tokens).where(api_tokens.c.token_hash == token_hash)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def revoke(conn: Connection, token_id: str) -> int | None:
    """Mark a token revoked now (a no-op if it already is); returns its ``revoked_at``."""
    now = now_ms()
    conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    stmt = select(api_tokens.c.revoked_at).where(api_tokens.c.id == token_id)
    value = conn.execute(stmt).scalar()
    return None if value is None else int(value)


def touch(conn: Connection, token_id: str, now: int, min_interval_ms: int) -> None:
    """Record a use, unless one was recorded less than ``min_interval_ms`` ago."""
    conn.execute(
        update(api_tokens)
        .where(
            api_tokens.c.id == token_id,
            or_(
                api_tokens.c.last_used_at.is_(None),
                api_tokens.c.last_used_at <= now - min_interval_ms,
            ),
        )
        .values(last_used_at=now)
    )
