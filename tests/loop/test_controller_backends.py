"""The controller's main paths on the other backends: PostgreSQL, and over HTTP to a real
uvicorn ``ctloop server`` (on loopback) whose store is SQLite or PostgreSQL (the same tests
as in test_controller, which runs them on SQLite, collected here with this ``world``).

The pipeline runs inline in the controller's process against the same client, so over
HTTP its runs, artifacts and registrations go through the server's API. Prediction-log
rows are written with the real PayloadLog under the artifact root the *server* reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_controller import (
    make_world,
    test_a_canary_with_errors_is_rolled_back_within_one_interval,
    test_a_manual_trigger_trains_canaries_and_promotes,
    test_a_second_controller_gets_no_lease_and_does_nothing,
    test_training_finished_before_a_crash_is_not_run_again,
)

import ctloop

# test_controller runs them on SQLite; here the same tests run with this module's ``world``
__all__ = [
    "test_a_canary_with_errors_is_rolled_back_within_one_interval",
    "test_a_manual_trigger_trains_canaries_and_promotes",
    "test_a_second_controller_gets_no_lease_and_does_nothing",
    "test_training_finished_before_a_crash_is_not_run_again",
]
BACKENDS = ["postgres", "http-sqlite", "http-postgres"]


@pytest.fixture(autouse=True)
def _no_active_run() -> Iterator[None]:
    yield
    while ctloop.active_run() is not None:
        ctloop.end_run()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A client on the backend and the artifact root its prediction logs are read from."""
    from ctloop import Client

    kind = str(request.param)
    if kind.endswith("sqlite"):
        store = f"sqlite:///{tmp_path / 'store' / 'ctloop.db'}"
    else:
        store = str(request.getfixturevalue("postgres_url"))
    artifacts = str((tmp_path / "artifacts").absolute())
    if kind.startswith("http"):
        from ctloop.testing import running_server

        # the server and the test share the machine: logs go where the server reads them
        with running_server(store, artifacts=artifacts) as url:
            client = Client(store=url)
            yield client, artifacts
            client.close()
        return
    client = Client(store=store, artifacts=artifacts)
    yield client, artifacts
    client.close()


@pytest.fixture
def world(backend: tuple[Any, str], tmp_path: Path) -> dict[str, Any]:
    client, log_root = backend
    return make_world(client, tmp_path, log_root)
