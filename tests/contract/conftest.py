"""The contract suite: the same tests against every backend of ``ctloop.Client``.

``backend_client`` is a client on SQLite, on PostgreSQL, and over HTTP to a real uvicorn
server (on a loopback port) that serves an SQLite store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(params=["sqlite", "postgres", "http"])
def backend_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    from ctloop import Client

    if request.param == "http":
        from ctloop.testing import running_server

        with running_server(str(tmp_path / "served")) as url:
            client = Client(store=url)
            yield client
            client.close()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store' / 'ctloop.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    client = Client(store=url, artifacts=str(tmp_path / "artifacts"))
    yield client
    client.close()
