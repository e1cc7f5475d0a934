"""SQL for datasets and their versions: the only module that queries those tables.

Rows come back as plain dicts (the domain layer above turns them into entities). Version
numbers are handed out inside the caller's write transaction with the dataset row locked
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers), so concurrent adds never share a number.
"""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import Connection, Select, func, null, select, update

from ctloop._internal.ids import new_id, now_ms
from ctloop.errors import NotFound
from ctloop.store._sql import upsert
from ctloop.store.tables import dataset_versions, datasets

__all__ = [
    "add_version",
    "find_profile",
    "get_dataset",
    "get_version",
    "get_version_by_id",
    "latest_version",
    "list_datasets",
    "list_versions",
    "set_description",
]

Row = dict[str, Any]


def _versions() -> Select[Any]:
    return select(dataset_versions, datasets.c.name).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def _unknown(conn: Connection, name: str) -> NotFound:
    names = list(conn.execute(select(datasets.c.name)).scalars())
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return NotFound(f"no dataset named '{name}'; {hint}list them with: ctloop data list")


def _datasets() -> Select[Any]:
    stats = (
        select(
            dataset_versions.c.dataset_id,
            func.max(dataset_versions.c.version).label("latest_version"),
            func.count().label("version_count"),
            func.max(dataset_versions.c.created_at).label("updated_at"),
        )
        .group_by(dataset_versions.c.dataset_id)
        .subquery()
    )
    return select(
        datasets, stats.c.latest_version, stats.c.version_count, stats.c.updated_at
    ).outerjoin(stats, stats.c.dataset_id == datasets.c.id)


def list_datasets(conn: Connection) -> list[Row]:
    """Every dataset with its latest version number, version count and last update."""
    query = _datasets().order_by(datasets.c.name)
    return [dict(r) for r in conn.execute(query).mappings()]


def get_dataset(conn: Connection, name: str) -> Row:
    """One dataset (as :func:`list_datasets` describes it); NotFound when unknown."""
    row = conn.execute(_datasets().where(datasets.c.name == name)).mappings().first()
    if row is None:
        raise _unknown(conn, name)
    return dict(row)


def latest_version(conn: Connection, name: str) -> Row | None:
    """The newest version of ``name``, or None when the dataset does not exist."""
    query = _versions().where(datasets.c.name == name)
    row = conn.execute(query.order_by(dataset_versions.c.version.desc()).limit(1)).mappings()
    found = row.first()
    return dict(found) if found is not None else None


def get_version(conn: Connection, name: str, version: int | None) -> Row:
    """Version ``version`` of ``name`` (None: the latest).

    Raises:
        NotFound: naming the dataset or the version, and how to list what exists.
    """
    latest = latest_version(conn, name)
    if latest is None:
        raise _unknown(conn, name)
    if version is None or version == latest["version"]:
        return latest
    query = _versions().where(datasets.c.name == name, dataset_versions.c.version == version)
    found = conn.execute(query).mappings().first()
    if found is None:
        raise NotFound(
            f"dataset '{name}' has no version {version} (latest is {latest['version']}); "
            f"list them with: ctloop data show {name}"
        )
    return dict(found)


def get_version_by_id(conn: Connection, version_id: str) -> Row | None:
    """The version with this id, or None."""
    found = conn.execute(_versions().where(dataset_versions.c.id == version_id)).mappings()
    row = found.first()
    return dict(row) if row is not None else None


def list_versions(conn: Connection, name: str) -> list[Row]:
    """Every version of ``name``, oldest first; NotFound when the dataset is unknown."""
    query = _versions().where(datasets.c.name == name).order_by(dataset_versions.c.version)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    if not rows:
        raise _unknown(conn, name)
    return rows


def find_profile(conn: Connection, digest: str, kind: str, fmt: str | None) -> Row | None:
    """A stored profile of the same content and format, so it need not be computed again."""
    query = (
        select(dataset_versions.c.row_count, dataset_versions.c.schema, dataset_versions.c.profile)
        .where(
            dataset_versions.c.digest == digest,
            dataset_versions.c.kind == kind,
            dataset_versions.c.format == fmt,
            dataset_versions.c.profile.is_not(None),
        )
        .limit(1)
    )
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def set_description(conn: Connection, name: str, description: str | None) -> None:
    """Replace the description of dataset ``name``; NotFound when unknown."""
    done = conn.execute(
        update(datasets).where(datasets.c.name == name).values(description=description)
    )
    if done.rowcount == 0:
        raise _unknown(conn, name)


def _lock_dataset(conn: Connection, name: str, description: str | None, now: int) -> str:
    """Create the dataset if needed and lock its row until the transaction ends; its id."""
    conn.execute(
        upsert(conn, datasets)
        .values(id=new_id(), name=name, description=description, created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    # FOR UPDATE is a no-op on SQLite, where BEGIN IMMEDIATE already holds the write lock.
    row = conn.execute(
        select(datasets.c.id, datasets.c.description)
        .where(datasets.c.name == name)
        .with_for_update()
    ).one()
    if description is not None and row.description != description:
        conn.execute(
            update(datasets).where(datasets.c.id == row.id).values(description=description)
        )
    return str(row.id)


def add_version(
    conn: Connection,
    *,
    name: str,
    digest: str,
    kind: str,
    size: int,
    file_count: int,
    description: str | None = None,
    format: str | None = None,
    source_path: str | None = None,
    row_count: int | None = None,
    schema: list[dict[str, Any]] | None = None,
    profile: dict[str, Any] | None = None,
    created_by: str | None = None,
) -> tuple[Row, bool]:
    """Add the next version of ``name`` unless its latest version has this digest.

    Call inside a write transaction. Returns (row, created): the new version, or the
    latest one with ``created`` False when the content is unchanged.
    """
    now = now_ms()
    dataset_id = _lock_dataset(conn, name, description, now)
    latest = latest_version(conn, name)
    if latest is not None and latest["digest"] == digest and latest["kind"] == kind:
        return latest, False
    values: Row = {
        "id": new_id(),
        "dataset_id": dataset_id,
        "version": (latest["version"] if latest is not None else 0) + 1,
        "digest": digest,
        "kind": kind,
        "size": size,
        "file_count": file_count,
        "format": format,
        "source_path": source_path,
        "row_count": row_count,
        "schema": schema,
        "profile": profile,
        "created_at": now,
        "created_by": created_by,
    }
    # SQL NULL, not JSON 'null', so "has no profile" stays queryable.
    json_values = {k: null() for k in ("schema", "profile") if values[k] is None}
    conn.execute(dataset_versions.insert().values(**{**values, **json_values}))
    return {**values, "name": name}, True
