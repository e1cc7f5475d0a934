"""Migration 0007 adds the controller's policies, states and events, keeping what was there."""

from __future__ import annotations

import sqlalchemy as sa

from ctloop import Client
from ctloop.store import Database

NEW = {"loop_policies", "loop_states", "loop_events"}


def test_upgrade_0006_to_0007_keeps_deployments_and_adds_the_loop_tables(
    store_url: str,
) -> None:
    db = Database(store_url)
    try:
        assert db.upgrade("0006") == (None, "0006")
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
        assert db.upgrade("0007") == ("0006", "0007")
        with db.read() as conn:
            inspector = sa.inspect(conn)
            assert set(inspector.get_table_names()) >= NEW
            indexes = {i["name"] for i in inspector.get_indexes("loop_events")}
            uniques = {u["name"] for u in inspector.get_unique_constraints("loop_events")}
        assert "ix_loop_events_deployment_created" in indexes
        assert "uq_loop_events_deployment_seq" in uniques
        db.upgrade()  # and on to the newest revision, which a client needs
    finally:
        db.dispose()
    with Client(store=store_url) as client:  # the upgraded store keeps loop state
        assert [d.name for d in client.deployments.list()] == ["churn-api"]
        assert client.loop.policies() == []
        assert client.loop.state("churn-api").revision == 0
        state, event = client.loop.transition(
            "churn-api",
            expected_revision=0,
            to_state="TRIGGERED",
            data={},
            kind="triggered",
            summary="drift",
        )
        assert (state.revision, event.seq) == (1, 1)


def test_downgrade_to_0006_removes_only_the_loop_tables(client: Client) -> None:
    from alembic import command

    db = client.db
    with db.write() as conn:
        command.downgrade(db._alembic_config(conn), "0006")
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert not NEW & tables
    assert {"deployments", "monitors", "monitor_reports", "model_versions"} <= tables
    assert db.current_revision() == "0006"
