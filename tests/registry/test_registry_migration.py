"""Migration 0002 adds the registry to a store made by the previous ctloop, keeping its data."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ctloop.store import Database

REGISTRY_TABLES = {
    "registered_models",
    "model_versions",
    "model_version_tags",
    "model_aliases",
    "alias_events",
}


def test_upgrade_from_0001_keeps_runs_and_adds_the_registry(store_url: str) -> None:
    db = Database(store_url)
    try:
        db.upgrade("0001")
        with db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO experiments (id, name, created_at) VALUES ('e1', 'kept', 1)"
            )
        with db.read() as conn:
            assert not REGISTRY_TABLES & set(sa.inspect(conn).get_table_names())
        assert db.upgrade("0002") == ("0001", "0002")
        with db.read() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= REGISTRY_TABLES
            names = conn.exec_driver_sql("SELECT name FROM experiments").scalars().all()
        assert names == ["kept"]
    finally:
        db.dispose()


def test_downgrade_to_0001_removes_only_the_registry(client: Any) -> None:
    from alembic import command

    db = client.db
    with db.write() as conn:
        command.downgrade(db._alembic_config(conn), "0001")
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert not REGISTRY_TABLES & tables and "runs" in tables
    assert db.current_revision() == "0001"
