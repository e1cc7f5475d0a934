"""Experiments: named groups of runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from ctloop._internal.ids import new_id, now_ms
from ctloop.errors import Conflict, NotFound
from ctloop.store._sql import upsert
from ctloop.store.tables import experiments, runs


def create(conn: Connection, name: str, description: str | None = None) -> dict[str, Any]:
    """Insert a new experiment; :class:`Conflict` if the name is taken."""
    if get_by_name(conn, name) is not None:
        raise Conflict(f"experiment {name!r} already exists")
    row = {"id": new_id(), "name": name, "description": description, "created_at": now_ms()}
    conn.execute(experiments.insert().values(**row))
    return row


def get_or_create(conn: Connection, name: str) -> dict[str, Any]:
    """The experiment called ``name``, created if missing (safe under concurrency)."""
    found = get_by_name(conn, name)
    if found is not None:
        return found
    stmt = (
        upsert(conn, experiments)
        .values(id=new_id(), name=name, description=None, created_at=now_ms())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    conn.execute(stmt)
    found = get_by_name(conn, name)
    assert found is not None
    return found


def get_by_name(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(experiments).where(experiments.c.name == name)).mappings().first()
    return dict(row) if row else None


def get(conn: Connection, name_or_id: str) -> dict[str, Any]:
    """An experiment by name (or id); :class:`NotFound` naming it otherwise."""
    found = get_by_name(conn, name_or_id)
    if found is None:
        row = (
            conn.execute(select(experiments).where(experiments.c.id == name_or_id))
            .mappings()
            .first()
        )
        found = dict(row) if row else None
    if found is None:
        raise NotFound(
            f"no experiment named {name_or_id!r}; list them with: ctloop experiments list"
        )
    return found


def list_all(conn: Connection) -> list[dict[str, Any]]:
    """Every experiment with its run count, newest first."""
    counts = (
        select(runs.c.experiment_id, func.count().label("run_count"))
        .group_by(runs.c.experiment_id)
        .subquery()
    )
    stmt = (
        select(experiments, func.coalesce(counts.c.run_count, 0).label("run_count"))
        .select_from(experiments.outerjoin(counts, counts.c.experiment_id == experiments.c.id))
        .order_by(experiments.c.created_at.desc(), experiments.c.name)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]
