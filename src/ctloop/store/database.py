"""The connection to the metadata store: engine, pragmas, transactions, migrations.

SQLite gets WAL, a busy timeout and foreign keys, and every write transaction starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing with
"database is locked" when a read lock cannot be upgraded. PostgreSQL is used as it is.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from ctloop.errors import InvalidInput, MissingExtraError, StoreError, StoreOutdated

__all__ = ["Database", "open_database"]

SQLITE_BUSY_TIMEOUT_MS = 60_000
# The newest migration in store/migrations/versions (a test keeps the two equal). Knowing it
# here lets every client start check the schema with one SELECT instead of importing Alembic.
HEAD_REVISION = "0007"
_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control away from pysqlite so BEGIN IMMEDIATE can be issued.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    # Several processes opening a brand-new file at once can find the switch to WAL
    # "locked" at once, without the busy timeout applying: wait and try again.
    for attempt in range(100):
        try:
            (mode,) = cur.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.02 + 0.005 * attempt)
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    # LIKE is case-sensitive, as on PostgreSQL; ILIKE is the case-insensitive form.
    cur.execute("PRAGMA case_sensitive_like = ON")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("ctloop_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One metadata store: an engine plus read/write transactions and schema checks."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InvalidInput(
                f"invalid store URL {url!r}: use a folder, sqlite:///FILE or "
                "postgresql+psycopg://USER@HOST:PORT/DB"
            ) from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
            kwargs["poolclass"] = NullPool if parsed.database in (None, "", ":memory:") else None
            if kwargs["poolclass"] is None:
                del kwargs["poolclass"]
        elif self.dialect == "postgresql":
            kwargs["pool_pre_ping"] = True
        else:
            raise InvalidInput(
                f"unsupported store {url!r}: ctloop stores metadata in SQLite or PostgreSQL"
            )
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            if self.dialect == "postgresql":
                raise MissingExtraError("psycopg", "postgres", "a PostgreSQL store") from exc
            raise
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self._write_engine = self.engine.execution_options(ctloop_write=True)
        self._checked = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    # --- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (a deferred transaction, rolled back at the end)."""
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on success (``BEGIN IMMEDIATE`` on SQLite)."""
        with self._errors(), self._write_engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            # Drivers spread one reason over several lines; the CLI prints one line.
            reason = " ".join(str(exc.orig or exc).split())
            raise StoreError(
                f"the metadata store {self.engine.url.render_as_string(hide_password=True)} "
                f"failed: {reason}; check that it is reachable and not read-only"
            ) from exc

    # --- schema -------------------------------------------------------------------------

    def _alembic_config(self, conn: Connection | None = None) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def head_revision(self) -> str:
        """The newest schema revision this ctloop knows."""
        return HEAD_REVISION

    def migration_head(self) -> str:
        """The newest revision among the migration scripts (what HEAD_REVISION must equal)."""
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:
            head = ScriptDirectory.from_config(self._alembic_config(conn)).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        """The schema revision the store is at (None for an empty database)."""
        with self.read() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        if len(rows) > 1:
            raise StoreError(
                f"the store {self!r} has {len(rows)} schema heads; it was migrated by "
                "something other than ctloop"
            )
        return str(rows[0][0]) if rows else None

    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Migrate the schema to ``revision``; returns (before, after)."""
        from alembic import command
        from alembic.util.exc import CommandError

        before = self.current_revision()
        with self._lock, self.write() as conn:
            if self.dialect == "postgresql":
                # Two processes creating one store at once: the second waits, then no-ops.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7041968)")
            try:
                command.upgrade(self._alembic_config(conn), revision)
            except CommandError as exc:  # e.g. a revision this ctloop does not know
                raise StoreError(
                    f"cannot migrate the store {self!r} to {revision!r}: {exc}"
                ) from exc
        after = self.current_revision()
        assert after is not None
        self._checked = False
        return before, after

    def ensure_ready(self, *, create: bool = True) -> None:
        """Make sure the schema is current: create an empty store, refuse an outdated one."""
        if self._checked:
            return
        current = self.current_revision()
        head = self.head_revision()
        if current is None:
            with self.read() as conn:
                tables = set(inspect(conn).get_table_names())
            if tables - {"alembic_version"}:
                # Either a foreign database, or another process created the store between
                # the two reads (its tables and version row commit together): look again.
                current = self.current_revision()
                if current is None:
                    raise StoreError(
                        f"the database {self!r} holds tables but no ctloop schema version; "
                        "point CTLOOP_STORE at an empty database or a ctloop store"
                    )
        if current is None:
            if not create:
                raise StoreOutdated(f"the store {self!r} is empty; run: ctloop db upgrade")
            self.upgrade()
        elif current != head:
            if not self._knows_revision(current):
                raise StoreError(
                    f"the store schema is at revision {current}, which this ctloop does not "
                    "know: a newer ctloop created or migrated it; upgrade ctloop "
                    "(pip install -U ctloop) to use this store"
                )
            raise StoreOutdated(
                f"the store schema is at revision {current} but this ctloop needs {head}; "
                "back it up, then run: ctloop db upgrade"
            )
        self._checked = True

    def _knows_revision(self, revision: str) -> bool:
        from alembic.script import ScriptDirectory
        from alembic.util.exc import CommandError

        script = ScriptDirectory.from_config(self._alembic_config())
        try:
            script.get_revision(revision)
        except CommandError:
            return False
        return True

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(url: str) -> Database:
    """Open (not create) the metadata store at ``url``."""
    return Database(url)
