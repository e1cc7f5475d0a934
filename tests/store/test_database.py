"""The metadata store's engine, schema and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import ctloop.store
from ctloop.errors import InvalidInput, StoreError, StoreOutdated
from ctloop.store import Database, tables

MIGRATIONS = Path(ctloop.store.__file__).parent / "migrations"


def scripts_head() -> str:
    """The newest revision among the migration scripts, read by Alembic itself."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def db(store_url: str) -> Iterator[Database]:
    database = Database(store_url)
    yield database
    database.dispose()


def table_names(db: Database) -> set[str]:
    with db.read() as conn:
        return set(sa.inspect(conn).get_table_names())


def ctloop_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args], capture_output=True, text=True, timeout=120
    )


# --- creating and checking ----------------------------------------------------------------


def test_head_revision_is_the_newest_migration(db: Database) -> None:
    assert db.head_revision() == scripts_head()


def test_ensure_ready_creates_an_empty_store_at_head(db: Database) -> None:
    assert db.current_revision() is None
    assert table_names(db) == set()
    db.ensure_ready()
    assert db.current_revision() == scripts_head()
    assert table_names(db) == set(tables.metadata.tables) | {"alembic_version"}
    with db.read() as conn:
        for table in tables.metadata.sorted_tables:
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def test_second_ensure_ready_is_a_no_op(
    store_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.ensure_ready()
    with db.write() as conn:
        conn.execute(tables.experiments.insert().values(id="a" * 32, name="kept", created_at=1))
    again = Database(store_url)  # a new process would start like this: nothing checked yet

    def no_upgrade(*args: object, **kwargs: object) -> None:
        raise AssertionError("ensure_ready migrated a store that is already at head")

    monkeypatch.setattr(again, "upgrade", no_upgrade)
    again.ensure_ready()
    again.ensure_ready()
    with again.read() as conn:
        assert conn.execute(sa.select(tables.experiments.c.name)).scalars().all() == ["kept"]
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    again.dispose()


def test_ensure_ready_without_create_refuses_an_empty_store(db: Database) -> None:
    with pytest.raises(StoreOutdated, match="ctloop db upgrade"):
        db.ensure_ready(create=False)
    assert table_names(db) == set()


def test_migrations_produce_exactly_the_tables_module(db: Database) -> None:
    db.ensure_ready()
    with db.read() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, tables.metadata)
    assert differences == []


def test_schema_check_would_notice_a_missing_migration(db: Database) -> None:
    # The comparison above is only worth something if a drift shows up in it.
    db.ensure_ready()
    drifted = sa.MetaData()
    for table in tables.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["runs"].append_column(sa.Column("added_without_migration", sa.Integer))
    with db.read() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), drifted)
    assert [d[0] for d in differences] == ["add_column"]


def test_a_foreign_database_is_refused(db: Database) -> None:
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(StoreError, match="holds tables but no ctloop schema version") as info:
        db.ensure_ready()
    assert not isinstance(info.value, StoreOutdated)
    assert table_names(db) == {"customers"}  # nothing created beside someone else's tables


def test_store_created_by_another_process_between_two_checks(
    store_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of two processes opening one fresh store, made deterministic.

    This process reads "no schema version"; before it lists the tables another process
    commits the whole schema. That is a ctloop store at head, not a foreign database.
    """
    late = Database(store_url)
    reads = iter([None])
    real_current_revision = late.current_revision

    def current_revision() -> str | None:
        answer = next(reads, "read for real")
        if answer is None:
            db.ensure_ready()  # the other process wins the race right after this read
            return None
        return real_current_revision()

    monkeypatch.setattr(late, "current_revision", current_revision)
    late.ensure_ready()
    assert real_current_revision() == scripts_head()
    late.dispose()


def test_store_from_a_newer_ctloop_is_refused_with_upgrade_advice(db: Database) -> None:
    db.ensure_ready()
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    fresh = Database(db.url)
    with pytest.raises(StoreError, match="newer ctloop") as info:
        fresh.ensure_ready()
    assert not isinstance(info.value, StoreOutdated)  # `ctloop db upgrade` cannot help here
    with pytest.raises(StoreError, match="9999_from_the_future"):
        fresh.upgrade()
    fresh.dispose()


NEXT_MIGRATION = '''
"""a later ctloop's migration"""
import sqlalchemy as sa
from alembic import op

revision = "{new}"
down_revision = "{old}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("later_things", sa.Column("id", sa.Integer, primary_key=True))
'''


def test_outdated_store_is_refused_until_upgraded(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made by this ctloop, opened by a later one that has one more migration."""
    db.ensure_ready()
    old = scripts_head()

    later = tmp_path / "later_migrations"
    shutil.copytree(MIGRATIONS, later, ignore=shutil.ignore_patterns("__pycache__"))
    new = f"{old}_later"
    (later / "versions" / "9999_later.py").write_text(NEXT_MIGRATION.format(new=new, old=old))
    monkeypatch.setattr("ctloop.store.database._MIGRATIONS", later)
    monkeypatch.setattr("ctloop.store.database.HEAD_REVISION", new)

    later_db = Database(db.url)
    with pytest.raises(StoreOutdated, match=f"revision {old} but this ctloop needs {new}"):
        later_db.ensure_ready()
    assert "later_things" not in table_names(later_db)

    assert later_db.upgrade() == (old, new)
    later_db.ensure_ready()
    assert later_db.current_revision() == new
    assert "later_things" in table_names(later_db)
    later_db.dispose()


# --- the command line ---------------------------------------------------------------------


def test_cli_db_upgrade_and_current(store_url: str) -> None:
    head = scripts_head()
    before = ctloop_cli("--store", store_url, "db", "current", "--json")
    assert before.returncode == 0, before.stderr
    state = json.loads(before.stdout)
    assert (state["current"], state["head"], state["up_to_date"]) == (None, head, False)

    up = ctloop_cli("--store", store_url, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"(empty) -> {head}" in up.stdout

    again = ctloop_cli("--store", store_url, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert f"up to date at revision {head}" in again.stdout

    after = ctloop_cli("--store", store_url, "db", "current", "--json")
    assert after.returncode == 0, after.stderr
    state = json.loads(after.stdout)
    assert (state["current"], state["head"], state["up_to_date"]) == (head, head, True)

    check = Database(store_url)
    assert check.current_revision() == head
    check.dispose()


# --- SQLite specifics ---------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'deep' / 'folder' / 'ctloop.db'}")
    yield database
    database.dispose()


def test_sqlite_pragmas_are_on(sqlite_db: Database) -> None:
    from ctloop.store.database import SQLITE_BUSY_TIMEOUT_MS

    sqlite_db.ensure_ready()
    for open_conn in (sqlite_db.read, sqlite_db.write):
        with open_conn() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    assert SQLITE_BUSY_TIMEOUT_MS >= 5_000


def test_sqlite_foreign_keys_are_enforced(sqlite_db: Database) -> None:
    sqlite_db.ensure_ready()
    with pytest.raises(sa.exc.IntegrityError), sqlite_db.write() as conn:
        conn.execute(tables.params.insert().values(run_id="f" * 32, key="lr", value="0.1"))


def test_sqlite_writes_take_the_write_lock_at_begin(sqlite_db: Database) -> None:
    """BEGIN IMMEDIATE: a second writer waits at BEGIN instead of failing at COMMIT."""
    sqlite_db.ensure_ready()
    path = sqlite_db.engine.url.database
    assert path is not None
    with sqlite_db.write():
        # Nothing written yet, but the lock is held: another writer cannot begin.
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    with sqlite_db.read():
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # a reader holds no write lock
        other.execute("ROLLBACK")
        other.close()


def test_sqlite_creates_the_folder_of_the_database(sqlite_db: Database) -> None:
    sqlite_db.ensure_ready()
    assert sqlite_db.engine.url.database is not None
    assert Path(sqlite_db.engine.url.database).is_file()


def test_unsupported_and_malformed_urls_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="SQLite or PostgreSQL"):
        Database("mysql://user@host/db")
    with pytest.raises(InvalidInput, match="invalid store URL"):
        Database("not a url at all://")


def test_unreachable_postgresql_is_a_store_error() -> None:
    db = Database("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=5")
    with pytest.raises(StoreError, match="127.0.0.1:1") as info:
        db.current_revision()
    assert "\n" not in str(info.value)
    db.dispose()


CREATE_STORE = textwrap.dedent(
    """
    import sys, time
    from ctloop.store import Database
    start_at = float(sys.argv[2])
    while time.time() < start_at:
        time.sleep(0.001)
    db = Database(sys.argv[1])
    db.ensure_ready()
    print(db.current_revision())
    """
)


@pytest.mark.slow
def test_four_processes_create_one_fresh_store_at_once(store_url: str) -> None:
    start_at = time.time() + 2.0  # after every interpreter has started: a real race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE_STORE, store_url, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    head = scripts_head()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == head
    db = Database(store_url)
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(head,)]
    assert table_names(db) == set(tables.metadata.tables) | {"alembic_version"}
    db.dispose()
