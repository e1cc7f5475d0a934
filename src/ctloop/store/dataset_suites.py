"""SQL for validation suites attached to dataset versions: the only module that queries them.

A suite is attached under a name (``default`` unless said otherwise); attaching again under
the same name replaces the link. The suite's YAML is an object in the artifact store; the
row holds its digest. Rows come back as plain dicts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from ctloop._internal.ids import now_ms
from ctloop.store._sql import upsert
from ctloop.store.tables import dataset_suites

__all__ = ["attach", "get", "list_for_version"]

Row = dict[str, Any]


def attach(
    conn: Connection,
    *,
    dataset_version_id: str,
    name: str,
    digest: str,
    created_by: str | None = None,
) -> Row:
    """Link the suite object ``digest`` to a version under ``name`` (replacing a link of
    that name). Call inside a write transaction; returns the row as stored."""
    values: Row = {
        "dataset_version_id": dataset_version_id,
        "name": name,
        "digest": digest,
        "created_at": now_ms(),
        "created_by": created_by,
    }
    statement = upsert(conn, dataset_suites).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["dataset_version_id", "name"],
            set_={k: values[k] for k in ("digest", "created_at", "created_by")},
        )
    )
    return values


def get(conn: Connection, dataset_version_id: str, name: str) -> Row | None:
    """The suite attached to a version under ``name``, or None."""
    query = select(dataset_suites).where(
        dataset_suites.c.dataset_version_id == dataset_version_id,
        dataset_suites.c.name == name,
    )
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def list_for_version(conn: Connection, dataset_version_id: str) -> list[Row]:
    """Every suite attached to a version, by name."""
    query = (
        select(dataset_suites)
        .where(dataset_suites.c.dataset_version_id == dataset_version_id)
        .order_by(dataset_suites.c.name)
    )
    return [dict(r) for r in conn.execute(query).mappings()]
