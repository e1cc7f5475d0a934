"""SQL for monitors, monitoring reports and alerts.

The only module that queries those tables. Rows come back as plain dicts with the
deployment's name joined in (as ``deployment``). All three tables hang off ``deployments``
with ``ON DELETE CASCADE`` (SQLite enforces it: the store turns ``foreign_keys`` on), so
deleting a deployment deletes its monitor, reports and alerts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, delete, func, select, update

from ctloop.errors import Conflict
from ctloop.store.tables import deployments, monitor_alerts, monitor_reports, monitors

__all__ = [
    "add_alerts",
    "add_monitor",
    "add_report",
    "get_monitor",
    "get_report",
    "last_fired",
    "list_alerts",
    "list_monitors",
    "list_reports",
    "remove_monitor",
    "replace_monitor",
]

Row = dict[str, Any]


def _named(table: Any, *columns: Any) -> Select[Any]:
    chosen = columns or (table,)
    return select(*chosen, deployments.c.name.label("deployment")).join(
        deployments, deployments.c.id == table.c.deployment_id
    )


# --- monitors -----------------------------------------------------------------------------


def get_monitor(conn: Connection, deployment_id: str) -> Row | None:
    """The monitor of a deployment, or None."""
    stmt = _named(monitors).where(monitors.c.deployment_id == deployment_id)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def list_monitors(conn: Connection) -> list[Row]:
    """Every monitor, by deployment name."""
    stmt = _named(monitors).order_by(deployments.c.name)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def add_monitor(conn: Connection, values: Row) -> None:
    """Insert a monitor (``values`` holds every column)."""
    conn.execute(monitors.insert().values(**values))


def replace_monitor(conn: Connection, monitor_id: str, values: Row) -> None:
    """Overwrite a monitor's spec; its id, creation time and creator stay."""
    kept = {"id", "deployment_id", "created_at", "created_by"}
    conn.execute(
        update(monitors)
        .where(monitors.c.id == monitor_id)
        .values(**{k: v for k, v in values.items() if k not in kept})
    )


def remove_monitor(conn: Connection, deployment_id: str) -> bool:
    """Delete the monitor of a deployment; whether there was one."""
    done = conn.execute(delete(monitors).where(monitors.c.deployment_id == deployment_id))
    return bool(done.rowcount)


# --- reports ------------------------------------------------------------------------------

_SUMMARY = [c for c in monitor_reports.c if c.name != "body"]


def add_report(conn: Connection, values: Row) -> None:
    """Insert a report (``values`` holds every column).

    Raises:
        Conflict: when a report with that id is stored already.
    """
    found = conn.execute(select(monitor_reports.c.id).where(monitor_reports.c.id == values["id"]))
    if found.first() is not None:
        raise Conflict(
            f"a report with id '{values['id']}' is stored already; reports are kept once"
        )
    conn.execute(monitor_reports.insert().values(**values))


def list_reports(
    conn: Connection, deployment_id: str, *, limit: int, since: int | None, body: bool = False
) -> list[Row]:
    """The reports of a deployment built at or after ``since`` (ms), newest first.

    Without ``body`` the (possibly large) report bodies are not read.
    """
    chosen = [monitor_reports] if body else _SUMMARY
    stmt = _named(monitor_reports, *chosen).where(monitor_reports.c.deployment_id == deployment_id)
    if since is not None:
        stmt = stmt.where(monitor_reports.c.created_at >= since)
    stmt = stmt.order_by(monitor_reports.c.created_at.desc(), monitor_reports.c.id.desc())
    return [dict(r) for r in conn.execute(stmt.limit(limit)).mappings()]


def get_report(conn: Connection, report_id: str) -> Row | None:
    """One report with its body, or None."""
    stmt = _named(monitor_reports).where(monitor_reports.c.id == report_id)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


# --- alerts -------------------------------------------------------------------------------


def add_alerts(conn: Connection, rows: list[Row]) -> None:
    """Insert alerts (each row holds every column).

    Raises:
        Conflict: when an alert with one of those ids is stored already.
    """
    if not rows:
        return
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise Conflict(f"alert id '{twice[0]}' appears twice; each alert is stored once")
    taken = conn.execute(select(monitor_alerts.c.id).where(monitor_alerts.c.id.in_(ids))).first()
    if taken is not None:
        raise Conflict(f"an alert with id '{taken[0]}' is stored already; alerts are kept once")
    conn.execute(monitor_alerts.insert(), rows)


def list_alerts(
    conn: Connection, deployment_id: str | None, *, limit: int, since: int | None
) -> list[Row]:
    """Alerts (of one deployment, or all) fired at or after ``since`` (ms), newest first."""
    stmt = _named(monitor_alerts)
    if deployment_id is not None:
        stmt = stmt.where(monitor_alerts.c.deployment_id == deployment_id)
    if since is not None:
        stmt = stmt.where(monitor_alerts.c.created_at >= since)
    stmt = stmt.order_by(monitor_alerts.c.created_at.desc(), monitor_alerts.c.id.desc())
    return [dict(r) for r in conn.execute(stmt.limit(limit)).mappings()]


def last_fired(conn: Connection, deployment_id: str) -> dict[str, int]:
    """Dedup key → when an alert with that key last fired (ms), for one deployment."""
    stmt = (
        select(monitor_alerts.c.dedup_key, func.max(monitor_alerts.c.created_at))
        .where(monitor_alerts.c.deployment_id == deployment_id)
        .group_by(monitor_alerts.c.dedup_key)
    )
    return {str(key): int(at) for key, at in conn.execute(stmt)}
