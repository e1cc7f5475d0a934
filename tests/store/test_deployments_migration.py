"""Migration 0005 adds deployments and their events, keeping what was there."""

from __future__ import annotations

import sqlalchemy as sa

from ctloop import Client
from ctloop.store import Database

NEW = {"deployments", "deployment_events"}


def test_upgrade_0004_to_0005_keeps_data_and_adds_the_deployment_tables(store_url: str) -> None:
    db = Database(store_url)
    try:
        assert db.upgrade("0004") == (None, "0004")
        with db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO experiments (id, name, created_at) VALUES ('e1', 'kept', 1)"
            )
            conn.exec_driver_sql(
                "INSERT INTO registered_models (id, name, created_at, updated_at) "
                "VALUES ('m1', 'churn', 1, 1)"
            )
        with db.read() as conn:
            assert not NEW & set(sa.inspect(conn).get_table_names())
        assert db.upgrade("0005") == ("0004", "0005")
        with db.read() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= NEW
            names = conn.exec_driver_sql("SELECT name FROM experiments").scalars().all()
            models = conn.exec_driver_sql("SELECT name FROM registered_models").scalars().all()
        assert names == ["kept"] and models == ["churn"]
        db.upgrade()  # and on to the newest revision, which a client needs
    finally:
        db.dispose()
    with Client(store=store_url) as client:  # the upgraded store holds deployments
        assert client.deployments.list() == []
        assert client.models.get("churn").version_count == 0


def test_downgrade_to_0004_removes_only_the_deployment_tables(client: Client) -> None:
    from alembic import command

    db = client.db
    with db.write() as conn:
        command.downgrade(db._alembic_config(conn), "0004")
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert not NEW & tables
    assert {"pipeline_runs", "step_runs", "dataset_suites", "model_versions", "runs"} <= tables
    assert db.current_revision() == "0004"
