"""Small SQL helpers shared by the repository modules (dialect-aware upserts, chunks)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")


def upsert(conn: Connection, table: Table) -> Any:
    """An ``INSERT`` that supports ``on_conflict_do_update/nothing`` on this dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """Slices of at most ``size`` (keeps bound-parameter counts under database limits)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
