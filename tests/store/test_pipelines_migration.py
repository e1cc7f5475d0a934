"""Migration 0004 adds pipeline runs, step runs and dataset suites, keeping what was there."""

from __future__ import annotations

import sqlalchemy as sa

from ctloop import Client
from ctloop.store import Database

NEW = {"pipeline_runs", "step_runs", "dataset_suites"}


def test_upgrade_0003_to_0004_keeps_data_and_adds_the_pipeline_tables(store_url: str) -> None:
    db = Database(store_url)
    try:
        assert db.upgrade("0003") == (None, "0003")
        with db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO experiments (id, name, created_at) VALUES ('e1', 'kept', 1)"
            )
        with db.read() as conn:
            assert not NEW & set(sa.inspect(conn).get_table_names())
        assert db.upgrade("0004") == ("0003", "0004")
        with db.read() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= NEW
            names = conn.exec_driver_sql("SELECT name FROM experiments").scalars().all()
        assert names == ["kept"]
        db.upgrade()  # and on to the newest revision, which a client needs
    finally:
        db.dispose()
    with Client(store=store_url) as client:  # the upgraded store runs pipelines
        from ctloop import pipeline, step

        @step
        def one() -> int:
            return 1

        @pipeline
        def tiny():
            one()

        run = tiny.run(executor="inline", client=client)
        assert run.output("one") == 1


def test_downgrade_to_0003_removes_only_the_pipeline_tables(client: Client) -> None:
    from alembic import command

    db = client.db
    with db.write() as conn:
        command.downgrade(db._alembic_config(conn), "0003")
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert not NEW & tables and {"api_tokens", "runs"} <= tables
    assert db.current_revision() == "0003"
