"""SQL for deployments and their revision events.

The only module that queries those tables. Rows come back as plain dicts, with the model's
name joined in. A change locks the deployment's row (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` already serialises writers), writes the next revision and its
event in the caller's transaction, and guards the update on the revision it read, so two
writers can never produce the same revision.
"""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import Connection, Select, delete, select, update

from ctloop._internal.ids import new_id
from ctloop.errors import Conflict, NotFound
from ctloop.store.tables import deployment_events, deployments, registered_models

__all__ = [
    "add",
    "get",
    "list_all",
    "list_events",
    "lock",
    "remove",
    "set_state",
    "unknown",
]

Row = dict[str, Any]


def _select() -> Select[Any]:
    return select(deployments, registered_models.c.name.label("model")).join(
        registered_models, registered_models.c.id == deployments.c.model_id
    )


def unknown(conn: Connection, name: str) -> NotFound:
    """NotFound for deployment ``name``, with the closest existing name as a hint."""
    names = list(conn.execute(select(deployments.c.name)).scalars())
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return NotFound(f"no deployment named '{name}'; {hint}list them with: ctloop deployments list")


def get(conn: Connection, name: str) -> Row:
    """Deployment ``name`` (one indexed read: what replicas poll); NotFound when unknown."""
    row = conn.execute(_select().where(deployments.c.name == name)).mappings().first()
    if row is None:
        raise unknown(conn, name)
    return dict(row)


def list_all(conn: Connection) -> list[Row]:
    """Every deployment, by name."""
    return [dict(r) for r in conn.execute(_select().order_by(deployments.c.name)).mappings()]


def lock(conn: Connection, name: str) -> Row:
    """Deployment ``name``, its row locked until the transaction ends; NotFound when unknown."""
    # FOR UPDATE is a no-op on SQLite, where BEGIN IMMEDIATE already holds the write lock.
    stmt = _select().where(deployments.c.name == name).with_for_update(of=deployments)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise unknown(conn, name)
    return dict(row)


def _event(conn: Connection, deployment_id: str, values: Row, reason: str | None) -> None:
    conn.execute(
        deployment_events.insert().values(
            deployment_id=deployment_id,
            revision=values["revision"],
            routes=values["routes"],
            shadows=values["shadows"],
            sticky_key=values["sticky_key"],
            reason=reason,
            actor=values["actor"],
            created_at=values["now"],
        )
    )


def add(
    conn: Connection,
    *,
    name: str,
    model_id: str,
    routes: list[Row],
    shadows: list[int],
    sticky_key: str | None,
    log_payloads: bool,
    description: str | None,
    actor: str,
    now: int,
) -> str:
    """Insert deployment ``name`` at revision 1 with its first event; its id.

    Raises:
        Conflict: when a deployment of that name exists.
    """
    if conn.execute(select(deployments.c.id).where(deployments.c.name == name)).first():
        raise Conflict(
            f"a deployment named '{name}' exists already; change its traffic with: "
            f"ctloop deployments set-traffic {name} VERSION=WEIGHT …"
        )
    deployment_id = new_id()
    conn.execute(
        deployments.insert().values(
            id=deployment_id,
            name=name,
            model_id=model_id,
            routes=routes,
            shadows=shadows,
            sticky_key=sticky_key,
            log_payloads=log_payloads,
            revision=1,
            description=description,
            created_at=now,
            updated_at=now,
        )
    )
    state = {"revision": 1, "routes": routes, "shadows": shadows, "sticky_key": sticky_key}
    _event(conn, deployment_id, {**state, "actor": actor, "now": now}, None)
    return deployment_id


def set_state(
    conn: Connection,
    current: Row,
    *,
    routes: list[Row],
    shadows: list[int],
    sticky_key: str | None,
    reason: str | None,
    actor: str,
    now: int,
) -> int:
    """Write the next revision of a locked deployment (row from :func:`lock`) and its event.

    Returns:
        The new revision.

    Raises:
        Conflict: when another writer changed the deployment since it was read.
    """
    revision = int(current["revision"]) + 1
    done = conn.execute(
        update(deployments)
        .where(deployments.c.id == current["id"], deployments.c.revision == current["revision"])
        .values(
            routes=routes,
            shadows=shadows,
            sticky_key=sticky_key,
            revision=revision,
            updated_at=now,
        )
    )
    if done.rowcount != 1:
        raise Conflict(f"deployment '{current['name']}' changed meanwhile; read it and try again")
    state = {"revision": revision, "routes": routes, "shadows": shadows, "sticky_key": sticky_key}
    _event(conn, current["id"], {**state, "actor": actor, "now": now}, reason)
    return revision


def list_events(conn: Connection, deployment_id: str) -> list[Row]:
    """The revision events of a deployment, oldest first."""
    stmt = (
        select(deployment_events)
        .where(deployment_events.c.deployment_id == deployment_id)
        .order_by(deployment_events.c.revision)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def remove(conn: Connection, name: str) -> None:
    """Delete deployment ``name`` and its events; NotFound when unknown."""
    done = conn.execute(delete(deployments).where(deployments.c.name == name))
    if done.rowcount == 0:
        raise unknown(conn, name)
