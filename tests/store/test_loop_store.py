"""``store.loop`` with a clock the test moves: lease expiry and event times, to the ms."""

from __future__ import annotations

from typing import Any

import pytest

from ctloop.errors import Conflict
from ctloop.store import loop as store
from ctloop.store.tables import deployments, registered_models

T0 = 1_780_000_000_000  # ms


@pytest.fixture
def db(client: Any) -> Any:
    """The client's database with deployment 'churn-api'."""
    with client.db.write() as conn:
        conn.execute(
            registered_models.insert().values(id="m1", name="churn", created_at=1, updated_at=1)
        )
        conn.execute(
            deployments.insert().values(
                id="d1",
                name="churn-api",
                model_id="m1",
                routes=[{"version": 1, "weight": 100, "variant": "v1"}],
                shadows=[],
                log_payloads=True,
                revision=1,
                created_at=1,
                updated_at=1,
            )
        )
    return client.db


def _event(kind: str = "note") -> dict[str, Any]:
    return {"kind": kind, "summary": "s", "evidence": {}, "links": {}, "actor": "test"}


def test_a_lease_binds_until_its_expiry_to_the_millisecond(db: Any) -> None:
    with db.write() as conn:
        held = store.acquire_lease(conn, "churn-api", "a", 30_000, now_ms=T0)
    assert (held["lease_owner"], held["lease_expires_at"], held["revision"]) == (
        "a",
        T0 + 30_000,
        0,
    )
    with db.write() as conn, pytest.raises(Conflict, match="leased to 'a' until 2026"):
        store.acquire_lease(conn, "churn-api", "b", 30_000, now_ms=T0 + 29_999)
    with db.write() as conn, pytest.raises(Conflict, match="leased to 'a'"):
        store.transition(
            conn,
            "churn-api",
            expected_revision=0,
            state={"state": "TRIGGERED", "step": None, "candidate_version": None, "data": {}},
            event=_event("triggered"),
            owner="b",
            now_ms=T0 + 29_999,
        )
    with db.write() as conn:  # at the expiry the lease is free
        taken = store.acquire_lease(conn, "churn-api", "b", 10_000, now_ms=T0 + 30_000)
    assert (taken["lease_owner"], taken["lease_expires_at"]) == ("b", T0 + 40_000)


def test_events_and_states_carry_the_store_clock(db: Any) -> None:
    with db.write() as conn:
        state, event = store.transition(
            conn,
            "churn-api",
            expected_revision=0,
            state={"state": "TRIGGERED", "step": None, "candidate_version": None, "data": {}},
            event=_event("triggered"),
            owner=None,
            now_ms=T0,
        )
        note = store.record(conn, "churn-api", event=_event(), owner=None, now_ms=T0 + 5)
    assert (state["updated_at"], event["created_at"], note["created_at"]) == (T0, T0, T0 + 5)
    assert (event["seq"], note["seq"], note["from_state"]) == (1, 2, "TRIGGERED")
    with db.read() as conn:
        rows = store.list_events(conn, "d1", limit=10, since=T0 + 1)
        assert [r["seq"] for r in rows] == [2]
        assert store.get_state(conn, "d1")["updated_at"] == T0
