"""Shared fixtures: real stores on SQLite and PostgreSQL, a real S3 endpoint from moto.

PostgreSQL comes from ``CTLOOP_TEST_POSTGRES_URL`` (default: the machine's server). Each
test gets its own schema there, dropped afterwards. With ``CTLOOP_REQUIRE_SERVICES=1``
(CI sets it) a missing service fails the run instead of skipping the test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get(
    "CTLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("CTLOOP_REQUIRE_SERVICES") == "1"


def service_missing(what: str) -> None:
    """Skip, or fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} (CTLOOP_REQUIRE_SERVICES=1, so this fails instead of skipping)")
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's CTLOOP_* settings or writes into the checkout."""
    for key in list(os.environ):
        if key.startswith("CTLOOP_") and key not in (
            "CTLOOP_TEST_POSTGRES_URL",
            "CTLOOP_REQUIRE_SERVICES",
        ):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Any]:
    """An engine on the test PostgreSQL database (session-wide)."""
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover
        service_missing("sqlalchemy is not installed")
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any driver or connection error means "no service"
        engine.dispose()
        service_missing(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: Any) -> Iterator[str]:
    """A store URL on a fresh, empty PostgreSQL schema of its own."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


# --- stores -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'ctloop.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def client(store_url: str, artifacts_dir: Path) -> Iterator[Any]:
    """A :class:`ctloop.Client` on a fresh store (SQLite and PostgreSQL)."""
    from ctloop import Client

    c = Client(store=store_url, artifacts=str(artifacts_dir))
    yield c
    c.close()


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[Any]:
    """A client on an embedded store folder (for tests that need only one backend)."""
    from ctloop import Client

    c = Client(store=str(tmp_path / "store"))
    yield c
    c.close()


# --- S3 (moto in server mode on loopback) -------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        service_missing("moto[server] is not installed; pip install 'ctloop[dev]'")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket on the moto server; yields ``s3://bucket``."""
    import boto3

    name = f"ctloop-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"
