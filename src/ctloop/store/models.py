"""SQL for the model registry: registered models, versions, version tags, aliases, events.

The only module that queries those tables. Rows come back as plain dicts. Writes happen
inside the caller's write transaction with the model's row locked (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so concurrent
registrations never share a version number and every alias event records the true
``from_version``. Version rows are inserted once and never updated; alias events likewise.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, delete, func, null, select, update

from ctloop._internal.ids import new_id
from ctloop.errors import NotFound
from ctloop.store._sql import chunks, upsert
from ctloop.store.tables import (
    alias_events,
    latest_metrics,
    model_aliases,
    model_version_tags,
    model_versions,
    registered_models,
)

__all__ = [
    "add_version",
    "alias_target",
    "delete_version_tag",
    "get_model",
    "get_version",
    "get_version_by_alias",
    "latest_version",
    "list_events",
    "list_models",
    "list_versions",
    "lock_model",
    "move_alias",
    "run_metrics",
    "set_description",
    "set_version_tags",
    "unknown_alias",
    "unknown_model",
    "versions_of_run",
]

Row = dict[str, Any]


# --- metrics as JSON (NaN and infinities are not JSON; PostgreSQL refuses them) -----------


def _encode_metrics(values: dict[str, float]) -> dict[str, float | str]:
    return {k: v if math.isfinite(v) else str(v) for k, v in values.items()}


def _decode_metrics(values: dict[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in (values or {}).items()}


def run_metrics(conn: Connection, run_id: str) -> dict[str, float]:
    """The latest value of every metric of a run (what a new version snapshots)."""
    stmt = select(latest_metrics.c.key, latest_metrics.c.value, latest_metrics.c.is_nan).where(
        latest_metrics.c.run_id == run_id
    )
    return {
        r.key: math.nan if r.is_nan else float(r.value)
        for r in conn.execute(stmt.order_by(latest_metrics.c.key))
    }


# --- registered models --------------------------------------------------------------------


def unknown_model(conn: Connection, name: str) -> NotFound:
    """NotFound for model ``name``, with the closest existing name as a hint."""
    names = list(conn.execute(select(registered_models.c.name)).scalars())
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return NotFound(f"no model named '{name}'; {hint}list them with: ctloop models list")


def _models() -> Select[Any]:
    stats = (
        select(
            model_versions.c.model_id,
            func.max(model_versions.c.version).label("latest_version"),
            func.count().label("version_count"),
        )
        .group_by(model_versions.c.model_id)
        .subquery()
    )
    return select(registered_models, stats.c.latest_version, stats.c.version_count).outerjoin(
        stats, stats.c.model_id == registered_models.c.id
    )


def _attach_aliases(conn: Connection, rows: list[Row]) -> list[Row]:
    by_id = {r["id"]: {**r, "aliases": {}} for r in rows}
    for part in chunks(list(by_id)):
        stmt = (
            select(model_aliases.c.model_id, model_aliases.c.alias, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.model_id.in_(part))
            .order_by(model_aliases.c.alias)
        )
        for r in conn.execute(stmt):
            by_id[r.model_id]["aliases"][r.alias] = int(r.version)
    return [by_id[r["id"]] for r in rows]


def list_models(conn: Connection) -> list[Row]:
    """Every model with its latest version number, version count and aliases, by name."""
    rows = [dict(r) for r in conn.execute(_models().order_by(registered_models.c.name)).mappings()]
    return _attach_aliases(conn, rows)


def get_model(conn: Connection, name: str) -> Row:
    """One model (as :func:`list_models` describes it); NotFound when unknown."""
    row = conn.execute(_models().where(registered_models.c.name == name)).mappings().first()
    if row is None:
        raise unknown_model(conn, name)
    return _attach_aliases(conn, [dict(row)])[0]


def lock_model(
    conn: Connection, name: str, *, now: int, create: bool = False, description: str | None = None
) -> Row:
    """Lock model ``name``'s row until the transaction ends (creating it if asked).

    Raises:
        NotFound: when the model does not exist and ``create`` is False.
    """
    if create:
        conn.execute(
            upsert(conn, registered_models)
            .values(id=new_id(), name=name, description=description, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
    # FOR UPDATE is a no-op on SQLite, where BEGIN IMMEDIATE already holds the write lock.
    row = (
        conn.execute(
            select(registered_models).where(registered_models.c.name == name).with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        raise unknown_model(conn, name)
    return dict(row)


def set_description(conn: Connection, name: str, description: str | None, now: int) -> None:
    """Replace the description of model ``name``; NotFound when unknown."""
    done = conn.execute(
        update(registered_models)
        .where(registered_models.c.name == name)
        .values(description=description, updated_at=now)
    )
    if done.rowcount == 0:
        raise unknown_model(conn, name)


def _touch(conn: Connection, model_id: str, now: int) -> None:
    conn.execute(
        update(registered_models).where(registered_models.c.id == model_id).values(updated_at=now)
    )


# --- versions -----------------------------------------------------------------------------


def _versions() -> Select[Any]:
    return select(model_versions, registered_models.c.name).join(
        registered_models, registered_models.c.id == model_versions.c.model_id
    )


def _hydrate(conn: Connection, rows: Sequence[Row]) -> list[Row]:
    """Attach tags and current aliases to version rows, decode their metrics."""
    by_id = {
        r["id"]: {**r, "metrics": _decode_metrics(r["metrics"]), "tags": {}, "aliases": []}
        for r in rows
    }
    for part in chunks(list(by_id)):
        stmt = select(model_version_tags).where(model_version_tags.c.version_id.in_(part))
        for r in conn.execute(stmt.order_by(model_version_tags.c.key)).mappings():
            by_id[r["version_id"]]["tags"][r["key"]] = r["value"]
        stmt2 = (
            select(model_aliases.c.version_id, model_aliases.c.alias)
            .where(model_aliases.c.version_id.in_(part))
            .order_by(model_aliases.c.alias)
        )
        for r in conn.execute(stmt2).mappings():
            by_id[r["version_id"]]["aliases"].append(r["alias"])
    return [by_id[r["id"]] for r in rows]


def latest_version(conn: Connection, name: str) -> Row | None:
    """The newest version of ``name``, or None when it has none (or does not exist)."""
    query = _versions().where(registered_models.c.name == name)
    found = conn.execute(query.order_by(model_versions.c.version.desc()).limit(1)).mappings()
    row = found.first()
    return _hydrate(conn, [dict(row)])[0] if row is not None else None


def _latest_or_raise(conn: Connection, name: str) -> Row:
    latest = latest_version(conn, name)
    if latest is None:
        get_model(conn, name)  # NotFound for an unknown model
        raise NotFound(
            f"model '{name}' has no versions yet; register one with: "
            f"ctloop.register_model(RUN_ID, 'model', name='{name}')"
        )
    return latest


def get_version(conn: Connection, name: str, version: int | None) -> Row:
    """Version ``version`` of ``name`` (None: the latest).

    Raises:
        NotFound: naming the model or version, and how to list what exists.
    """
    if version is None:
        return _latest_or_raise(conn, name)
    query = _versions().where(registered_models.c.name == name, model_versions.c.version == version)
    row = conn.execute(query).mappings().first()
    if row is None:
        latest = _latest_or_raise(conn, name)
        raise NotFound(
            f"model '{name}' has no version {version} (latest is {latest['version']}); "
            f"list them with: ctloop models versions {name}"
        )
    return _hydrate(conn, [dict(row)])[0]


def get_version_by_alias(conn: Connection, name: str, alias: str) -> Row:
    """The version alias ``alias`` of model ``name`` points to.

    Raises:
        NotFound: for an unknown model, or an alias it does not have (naming those it has).
    """
    query = (
        _versions()
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(registered_models.c.name == name, model_aliases.c.alias == alias)
    )
    row = conn.execute(query).mappings().first()
    if row is None:
        raise unknown_alias(conn, name, alias)
    return _hydrate(conn, [dict(row)])[0]


def unknown_alias(conn: Connection, name: str, alias: str) -> NotFound:
    """NotFound for an alias model ``name`` does not have (or for the model itself)."""
    model = get_model(conn, name)
    has = ", ".join(sorted(model["aliases"]))
    known = f" (it has: {has})" if has else ""
    return NotFound(
        f"model '{name}' has no alias '{alias}'{known}; set one with: "
        f"ctloop models promote {name} VERSION --alias {alias} --reason …"
    )


def list_versions(conn: Connection, name: str) -> list[Row]:
    """Every version of ``name``, oldest first; NotFound when the model is unknown."""
    query = _versions().where(registered_models.c.name == name).order_by(model_versions.c.version)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    if not rows:
        get_model(conn, name)
    return _hydrate(conn, rows)


def versions_of_run(conn: Connection, run_id: str) -> list[Row]:
    """The registered versions whose package came from run ``run_id``."""
    query = _versions().where(model_versions.c.run_id == run_id)
    rows = [dict(r) for r in conn.execute(query.order_by(model_versions.c.created_at)).mappings()]
    return _hydrate(conn, rows)


def add_version(
    conn: Connection,
    *,
    name: str,
    run_id: str,
    artifact_path: str,
    package_digest: str,
    flavor: str,
    signature: dict[str, Any] | None,
    metrics: dict[str, float],
    status: str,
    created_by: str | None,
    now: int,
    description: str | None = None,
    tags: dict[str, str] | None = None,
) -> Row:
    """Insert the next version of ``name`` (creating the model). Call in a write transaction."""
    model = lock_model(conn, name, now=now, create=True)
    latest = conn.execute(
        select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model["id"])
    ).scalar()
    values: Row = {
        "id": new_id(),
        "model_id": model["id"],
        "version": int(latest or 0) + 1,
        "run_id": run_id,
        "artifact_path": artifact_path,
        "package_digest": package_digest,
        "flavor": flavor,
        "signature": signature,
        "metrics": _encode_metrics(metrics),
        "status": status,
        "description": description,
        "created_at": now,
        "created_by": created_by,
    }
    # SQL NULL, not JSON 'null', for "no signature".
    conn.execute(
        model_versions.insert().values(
            **{**values, "signature": null() if signature is None else signature}
        )
    )
    if tags:
        set_version_tags(conn, values["id"], tags)
    _touch(conn, model["id"], now)
    return {**values, "name": name, "metrics": metrics, "tags": dict(tags or {}), "aliases": []}


# --- version tags -------------------------------------------------------------------------


def set_version_tags(conn: Connection, version_id: str, values: dict[str, str]) -> None:
    """Set tags on a version (tags may change; the version itself never does)."""
    if not values:
        return
    stmt = upsert(conn, model_version_tags)
    stmt = stmt.on_conflict_do_update(
        index_elements=["version_id", "key"], set_={"value": stmt.excluded.value}
    )
    conn.execute(
        stmt, [{"version_id": version_id, "key": k, "value": v} for k, v in values.items()]
    )


def delete_version_tag(conn: Connection, version_id: str, key: str) -> bool:
    """Delete one tag of a version; False when it had no such tag."""
    done = conn.execute(
        delete(model_version_tags).where(
            model_version_tags.c.version_id == version_id, model_version_tags.c.key == key
        )
    )
    return bool(done.rowcount)


# --- aliases and their events -------------------------------------------------------------


def alias_target(conn: Connection, model_id: str, alias: str) -> int | None:
    """The version number ``alias`` points to now, or None when it is not set."""
    stmt = (
        select(model_versions.c.version)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
    )
    found = conn.execute(stmt).scalar()
    return None if found is None else int(found)


def _set_alias(conn: Connection, model_id: str, alias: str, version_id: str, now: int) -> None:
    """Point ``alias`` at a version (creating or moving it)."""
    stmt = upsert(conn, model_aliases).values(
        model_id=model_id, alias=alias, version_id=version_id, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["model_id", "alias"],
        set_={"version_id": stmt.excluded.version_id, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(stmt)
    _touch(conn, model_id, now)


def _delete_alias(conn: Connection, model_id: str, alias: str, now: int) -> None:
    """Remove ``alias`` (its events stay)."""
    conn.execute(
        delete(model_aliases).where(
            model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
        )
    )
    _touch(conn, model_id, now)


def _add_event(
    conn: Connection,
    *,
    model_id: str,
    alias: str,
    action: str,
    from_version: int | None,
    to_version: int | None,
    reason: str | None,
    actor: str,
    now: int,
) -> int:
    """Append an alias event (never updated afterwards); its id."""
    result = conn.execute(
        alias_events.insert()
        .values(
            model_id=model_id,
            alias=alias,
            action=action,
            from_version=from_version,
            to_version=to_version,
            reason=reason,
            actor=actor,
            created_at=now,
        )
        .returning(alias_events.c.id)
    )
    return int(result.scalar_one())


def move_alias(
    conn: Connection,
    *,
    model_id: str,
    alias: str,
    action: str,
    from_version: int | None,
    to_version: int | None,
    version_id: str | None,
    reason: str | None,
    actor: str,
    now: int,
) -> int:
    """Point ``alias`` at ``version_id`` (or remove it when None) and record the move as
    an event, in the caller's transaction: no alias changes without its event. The event id.
    """
    if version_id is None:
        _delete_alias(conn, model_id, alias, now)
    else:
        _set_alias(conn, model_id, alias, version_id, now)
    return _add_event(
        conn,
        model_id=model_id,
        alias=alias,
        action=action,
        from_version=from_version,
        to_version=to_version,
        reason=reason,
        actor=actor,
        now=now,
    )


def list_events(conn: Connection, model_id: str, alias: str | None = None) -> list[Row]:
    """The alias events of a model (of one alias, if given), oldest first."""
    stmt = select(alias_events, registered_models.c.name).join(
        registered_models, registered_models.c.id == alias_events.c.model_id
    )
    stmt = stmt.where(alias_events.c.model_id == model_id)
    if alias is not None:
        stmt = stmt.where(alias_events.c.alias == alias)
    return [dict(r) for r in conn.execute(stmt.order_by(alias_events.c.id)).mappings()]
