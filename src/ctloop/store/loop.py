"""SQL for the controller: loop policies, loop states (with their lease) and loop events.

The only module that queries those tables. Rows come back as plain dicts with the
deployment's name joined in (as ``deployment``). Every write locks the deployment's row
first (``SELECT … FOR NO KEY UPDATE`` on PostgreSQL, which still lets other tables insert
rows that refer to it; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so the
revision check, the lease check, the state write and the event's ``seq`` all see one
consistent deployment: two controllers racing on one revision cannot both win, and a
state never changes without its event (they commit together, in the caller's
transaction).

Time is the store's process clock; the functions that read it take ``now_ms`` so tests can
move it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, func, select, update

from ctloop._internal import ids
from ctloop.errors import Conflict
from ctloop.store import deployments as deployments_store
from ctloop.store.tables import deployments, loop_events, loop_policies, loop_states

__all__ = [
    "acquire_lease",
    "get_event",
    "get_policy",
    "get_state",
    "list_events",
    "list_policies",
    "lock",
    "put_policy",
    "record",
    "release_lease",
    "remove_policy",
    "transition",
]

Row = dict[str, Any]
STABLE = "STABLE"


def _named(table: Any) -> Select[Any]:
    return select(table, deployments.c.name.label("deployment")).join(
        deployments, deployments.c.id == table.c.deployment_id
    )


def _clock(now_ms: int | None) -> int:
    return ids.now_ms() if now_ms is None else int(now_ms)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def lock(conn: Connection, name: str) -> str:
    """The id of deployment ``name``, its row locked until the transaction ends.

    Raises:
        NotFound: no deployment has that name.
    """
    stmt = (
        select(deployments.c.id)
        .where(deployments.c.name == name)
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE; a no-op on SQLite
    )
    found = conn.execute(stmt).scalar()
    if found is None:
        raise deployments_store.unknown(conn, name)
    return str(found)


# --- policies -----------------------------------------------------------------------------


def get_policy(conn: Connection, deployment_id: str) -> Row | None:
    """The policy of a deployment, or None."""
    stmt = _named(loop_policies).where(loop_policies.c.deployment_id == deployment_id)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def list_policies(conn: Connection) -> list[Row]:
    """Every policy, by deployment name."""
    stmt = _named(loop_policies).order_by(deployments.c.name)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def put_policy(
    conn: Connection,
    deployment_id: str,
    *,
    source: str,
    policy: dict[str, Any],
    created_by: str | None,
    now_ms: int | None = None,
) -> None:
    """Set the policy of a deployment; replacing one keeps its creation time and creator."""
    now = _clock(now_ms)
    done = conn.execute(
        update(loop_policies)
        .where(loop_policies.c.deployment_id == deployment_id)
        .values(source=source, policy=policy, updated_at=now)
    )
    if not done.rowcount:
        conn.execute(
            loop_policies.insert().values(
                deployment_id=deployment_id,
                source=source,
                policy=policy,
                created_at=now,
                updated_at=now,
                created_by=created_by,
            )
        )


def remove_policy(conn: Connection, deployment_id: str) -> bool:
    """Delete the policy of a deployment; whether there was one."""
    done = conn.execute(delete(loop_policies).where(loop_policies.c.deployment_id == deployment_id))
    return bool(done.rowcount)


# --- state and lease ----------------------------------------------------------------------


def get_state(conn: Connection, deployment_id: str) -> Row | None:
    """The stored state of a deployment, or None (never written: STABLE at revision 0)."""
    stmt = _named(loop_states).where(loop_states.c.deployment_id == deployment_id)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def _fresh_state(name: str, deployment_id: str, now: int) -> Row:
    return {
        "deployment_id": deployment_id,
        "deployment": name,
        "state": STABLE,
        "step": None,
        "candidate_version": None,
        "data": {},
        "revision": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }


def _held_by_other(row: Row | None, owner: str, now: int) -> bool:
    if row is None or row["lease_owner"] in (None, owner):
        return False
    expires = row["lease_expires_at"]
    return expires is not None and int(expires) > now


def _lease_conflict(name: str, row: Row, wanted: str) -> Conflict:
    return Conflict(
        f"deployment '{name}' is leased to '{row['lease_owner']}' until "
        f"{_iso(int(row['lease_expires_at']))}, so '{wanted}' may not act on it; another "
        "controller is running it: wait for that lease to expire or stop that controller"
    )


def acquire_lease(
    conn: Connection, name: str, owner: str, ttl_ms: int, *, now_ms: int | None = None
) -> Row:
    """Give ``owner`` the lease of deployment ``name`` for ``ttl_ms`` from now.

    It succeeds when the lease is free, expired or held by ``owner`` already (then it is
    extended). The state's revision stays.

    Raises:
        NotFound: an unknown deployment.
        Conflict: another owner holds an unexpired lease (the message names it and its
            expiry).
    """
    deployment_id = lock(conn, name)
    now = _clock(now_ms)
    row = get_state(conn, deployment_id)
    if _held_by_other(row, owner, now):
        assert row is not None
        raise _lease_conflict(name, row, owner)
    lease = {"lease_owner": owner, "lease_expires_at": now + ttl_ms}
    if row is None:
        row = {**_fresh_state(name, deployment_id, now), **lease}
        conn.execute(loop_states.insert().values(_columns(row)))
        return row
    conn.execute(
        update(loop_states).where(loop_states.c.deployment_id == deployment_id).values(**lease)
    )
    return {**row, **lease}


def release_lease(conn: Connection, name: str, owner: str) -> Row | None:
    """Free the lease of deployment ``name`` if ``owner`` holds it (else change nothing).

    Returns the state row afterwards, or None when none was ever written.

    Raises:
        NotFound: an unknown deployment.
    """
    deployment_id = lock(conn, name)
    row = get_state(conn, deployment_id)
    if row is None or row["lease_owner"] != owner:
        return row
    free = {"lease_owner": None, "lease_expires_at": None}
    conn.execute(
        update(loop_states).where(loop_states.c.deployment_id == deployment_id).values(**free)
    )
    return {**row, **free}


_CHANGED = ("state", "step", "candidate_version", "data", "revision", "updated_at")


def _columns(row: Row) -> Row:
    return {c.name: row[c.name] for c in loop_states.c}


# --- transitions and events ---------------------------------------------------------------


def _append_event(conn: Connection, deployment_id: str, name: str, values: Row, now: int) -> Row:
    last = conn.execute(
        select(func.max(loop_events.c.seq)).where(loop_events.c.deployment_id == deployment_id)
    ).scalar()
    event = {
        "id": ids.new_id(),
        "deployment_id": deployment_id,
        "seq": int(last or 0) + 1,
        "created_at": now,
        **values,
    }
    conn.execute(loop_events.insert().values(**event))
    return {**event, "deployment": name}


def transition(
    conn: Connection,
    name: str,
    *,
    expected_revision: int,
    state: Row,
    event: Row,
    owner: str | None,
    now_ms: int | None = None,
) -> tuple[Row, Row]:
    """Move deployment ``name`` to ``state`` and append ``event``, if nobody moved it first.

    Args:
        expected_revision: the revision the caller read; the write happens only if the
            stored revision still equals it (compare-and-set).
        state: ``state``, ``step``, ``candidate_version`` and ``data`` to write.
        event: ``kind``, ``summary``, ``evidence``, ``links`` and ``actor`` of the event;
            its ``from_state``/``to_state``, ``seq`` and time are filled in here.
        owner: when given, refuse if another owner holds an unexpired lease.

    Returns:
        The state row written (revision + 1) and the event row appended.

    Raises:
        NotFound: an unknown deployment.
        Conflict: the revision moved, or another owner holds the lease; nothing is written.
    """
    deployment_id = lock(conn, name)
    now = _clock(now_ms)
    row = get_state(conn, deployment_id)
    current = row if row is not None else _fresh_state(name, deployment_id, now)
    if int(current["revision"]) != expected_revision:
        raise Conflict(
            f"the loop state of deployment '{name}' is at revision {current['revision']} "
            f"({current['state']}), not {expected_revision}: something else changed it since "
            f"it was read; read it again with client.loop.state('{name}') and decide anew"
        )
    if owner is not None and _held_by_other(row, owner, now):
        assert row is not None
        raise _lease_conflict(name, row, owner)
    written = {**current, **state, "revision": expected_revision + 1, "updated_at": now}
    if row is None:
        conn.execute(loop_states.insert().values(_columns(written)))
    else:
        done = conn.execute(
            update(loop_states)
            .where(
                loop_states.c.deployment_id == deployment_id,
                loop_states.c.revision == expected_revision,
            )
            .values({k: written[k] for k in _CHANGED})
        )
        if done.rowcount != 1:  # the lock makes this unreachable; the guard makes it certain
            raise Conflict(f"the loop state of deployment '{name}' changed while written")
    appended = _append_event(
        conn,
        deployment_id,
        name,
        {**event, "from_state": current["state"], "to_state": written["state"]},
        now,
    )
    return written, appended


def record(
    conn: Connection, name: str, *, event: Row, owner: str | None, now_ms: int | None = None
) -> Row:
    """Append ``event`` to deployment ``name``'s history in its current state.

    The state and its revision stay; ``from_state`` and ``to_state`` are both the current
    state.

    Raises:
        NotFound: an unknown deployment.
        Conflict: ``owner`` is given and another owner holds an unexpired lease.
    """
    deployment_id = lock(conn, name)
    now = _clock(now_ms)
    row = get_state(conn, deployment_id)
    if owner is not None and _held_by_other(row, owner, now):
        assert row is not None
        raise _lease_conflict(name, row, owner)
    state = STABLE if row is None else row["state"]
    return _append_event(
        conn, deployment_id, name, {**event, "from_state": state, "to_state": state}, now
    )


def list_events(
    conn: Connection,
    deployment_id: str,
    *,
    limit: int,
    since: int | None = None,
    kinds: list[str] | None = None,
    after_seq: int | None = None,
    newest: bool = False,
) -> list[Row]:
    """The events of a deployment, oldest first (by ``seq``), at most ``limit``: the first
    ones matching, or the last ones with ``newest``.

    Only those written at or after ``since`` (ms), of one of ``kinds``, and after
    ``after_seq``, for each filter given.
    """
    stmt = _named(loop_events).where(loop_events.c.deployment_id == deployment_id)
    if since is not None:
        stmt = stmt.where(loop_events.c.created_at >= since)
    if kinds is not None:
        stmt = stmt.where(loop_events.c.kind.in_(kinds))
    if after_seq is not None:
        stmt = stmt.where(loop_events.c.seq > after_seq)
    if newest:
        stmt = stmt.order_by(loop_events.c.seq.desc()).limit(limit)
        return [dict(r) for r in conn.execute(stmt).mappings()][::-1]
    stmt = stmt.order_by(loop_events.c.seq).limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def get_event(conn: Connection, event_id: str) -> Row | None:
    """One event, or None."""
    row = conn.execute(_named(loop_events).where(loop_events.c.id == event_id)).mappings().first()
    return dict(row) if row is not None else None
