"""Migration 0006 adds monitors, their reports and alerts, keeping what was there."""

from __future__ import annotations

import sqlalchemy as sa

from ctloop import Client
from ctloop.store import Database

NEW = {"monitors", "monitor_reports", "monitor_alerts"}


def test_upgrade_0005_to_0006_keeps_deployments_and_adds_the_monitor_tables(
    store_url: str,
) -> None:
    db = Database(store_url)
    try:
        assert db.upgrade("0005") == (None, "0005")
        with db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO registered_models (id, name, created_at, updated_at) "
                "VALUES ('m1', 'churn', 1, 1)"
            )
            conn.exec_driver_sql(
                "INSERT INTO deployments (id, name, model_id, routes, shadows, log_payloads, "
                "revision, created_at, updated_at) VALUES ('d1', 'churn-api', 'm1', "
                '\'[{"version": 1, "weight": 100, "variant": "v1"}]\', \'[]\', true, 1, 1, 1)'
            )
        with db.read() as conn:
            assert not NEW & set(sa.inspect(conn).get_table_names())
        assert db.upgrade("0006") == ("0005", "0006")
        with db.read() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= NEW
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("monitor_reports")}
        assert "ix_monitor_reports_deployment_created" in indexes
        db.upgrade()  # and on to the newest revision, which a client needs
    finally:
        db.dispose()
    with Client(store=store_url) as client:  # the upgraded store holds monitors
        assert [d.name for d in client.deployments.list()] == ["churn-api"]
        assert client.monitors.list() == []
        assert client.monitors.reports("churn-api") == []


def test_downgrade_to_0005_removes_only_the_monitor_tables(client: Client) -> None:
    from alembic import command

    db = client.db
    with db.write() as conn:
        command.downgrade(db._alembic_config(conn), "0005")
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert not NEW & tables
    assert {"deployments", "deployment_events", "model_versions", "runs"} <= tables
    assert db.current_revision() == "0005"
