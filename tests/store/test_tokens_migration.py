"""Migration 0003 adds API tokens to a store made by an earlier ctloop, keeping its data."""

from __future__ import annotations

import sqlalchemy as sa

from ctloop import Client
from ctloop.store import Database


def test_upgrade_0001_to_0002_to_0003_keeps_data_and_adds_tokens(store_url: str) -> None:
    db = Database(store_url)
    try:
        assert db.upgrade("0001") == (None, "0001")
        with db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO experiments (id, name, created_at) VALUES ('e1', 'kept', 1)"
            )
        assert db.upgrade("0002") == ("0001", "0002")
        with db.read() as conn:
            assert "api_tokens" not in sa.inspect(conn).get_table_names()
        assert db.upgrade("0003") == ("0002", "0003")
        with db.read() as conn:
            assert "api_tokens" in sa.inspect(conn).get_table_names()
            names = conn.exec_driver_sql("SELECT name FROM experiments").scalars().all()
        assert names == ["kept"]
        db.upgrade()  # and on to the newest revision, which a client needs
    finally:
        db.dispose()
    with Client(store=store_url) as client:  # the upgraded store is usable as it is
        _, secret = client.tokens.create("read", name="after-upgrade")
        assert client.tokens.verify(secret) is not None


def test_downgrade_to_0002_removes_only_the_tokens(client: Client) -> None:
    from alembic import command

    db = client.db
    client.tokens.create("read")
    with db.write() as conn:
        command.downgrade(db._alembic_config(conn), "0002")
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert "api_tokens" not in tables and "model_versions" in tables
    assert db.current_revision() == "0002"
