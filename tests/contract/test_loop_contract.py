"""``client.loop`` on every backend: SQLite, PostgreSQL and over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ctloop
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName, StoredPolicy

SOURCE = "# retrain on drift\ntrigger:\n  drift_share: 0.3   # half the features\n"
POLICY = {"trigger": {"drift_share": 0.3}, "rollout": {"steps": [10, 50]}}


@pytest.fixture(autouse=True)
def _no_active_run() -> Iterator[None]:
    yield
    while ctloop.active_run() is not None:
        ctloop.end_run()


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"age": [22, 35, 47, 58], "spend": [9.5, 20.0, 31.0, 48.5]})
    return LogisticRegression().fit(frame, [0, 0, 1, 1]), frame


@pytest.fixture
def loop(backend_client: Any, fitted: tuple[Any, Any]) -> Any:
    """Deployments 'churn-api' and 'churn-eu' of model 'churn' (version 1); the client."""
    model, frame = fitted
    with ctloop.start_run(experiment="churn", client=backend_client) as run:
        run.log_model(model, input_example=frame)
    backend_client.models.register(run.id, name="churn")
    backend_client.deployments.create("churn-api", "churn/1")
    backend_client.deployments.create("churn-eu", "churn/1")
    return backend_client


def _move(
    client: Any, to: str, revision: int, kind: str = "note", **more: Any
) -> tuple[LoopState, LoopEvent]:
    more.setdefault("data", {})
    return client.loop.transition(
        "churn-api",
        expected_revision=revision,
        to_state=to,
        kind=kind,
        summary=f"moved to {to}",
        **more,
    )


# --- policies -----------------------------------------------------------------------------


def test_a_policy_is_kept_as_given_and_replacing_it_keeps_its_creation(loop: Any) -> None:
    stored = loop.loop.set_policy("churn-api", source=SOURCE, policy=POLICY)
    assert isinstance(stored, StoredPolicy)
    assert (stored.deployment, stored.source, stored.policy) == ("churn-api", SOURCE, POLICY)
    assert stored.created_at == stored.updated_at and stored.created_by
    assert loop.loop.get_policy("churn-api") == stored
    time.sleep(0.01)
    again = loop.loop.set_policy("churn-api", source="trigger: {}\n", policy={"trigger": {}})
    assert (again.source, again.policy) == ("trigger: {}\n", {"trigger": {}})
    assert again.created_at == stored.created_at and again.updated_at > stored.updated_at
    assert loop.loop.policies() == [again]


def test_policies_lists_every_deployment_with_a_policy_by_name(loop: Any) -> None:
    assert loop.loop.policies() == []
    loop.loop.set_policy("churn-eu", source=SOURCE, policy=POLICY)
    loop.loop.set_policy("churn-api", source=SOURCE, policy={})
    assert [p.deployment for p in loop.loop.policies()] == ["churn-api", "churn-eu"]


def test_a_missing_policy_says_how_to_set_one(loop: Any) -> None:
    with pytest.raises(NotFound, match=r"ctloop loop run churn-api --policy policy\.yaml"):
        loop.loop.get_policy("churn-api")
    with pytest.raises(NotFound, match="churn-api"):
        loop.loop.delete_policy("churn-api")
    with pytest.raises(NotFound, match="no deployment named 'churn-apx'"):
        loop.loop.set_policy("churn-apx", source=SOURCE, policy=POLICY)
    with pytest.raises(NotFound, match="no deployment named"):
        loop.loop.get_policy("nope")


def test_delete_policy_removes_only_the_policy(loop: Any) -> None:
    loop.loop.set_policy("churn-api", source=SOURCE, policy=POLICY)
    _move(loop, "TRIGGERED", 0)
    loop.loop.delete_policy("churn-api")
    with pytest.raises(NotFound):
        loop.loop.get_policy("churn-api")
    assert loop.loop.policies() == []
    assert loop.loop.state("churn-api").state is LoopStateName.TRIGGERED
    assert len(loop.loop.events("churn-api")) == 1


def test_a_bad_policy_is_refused(loop: Any) -> None:
    with pytest.raises(InvalidInput, match="source"):
        loop.loop.set_policy("churn-api", source="  ", policy=POLICY)
    with pytest.raises(InvalidInput, match="policy must be a dict"):
        loop.loop.set_policy("churn-api", source=SOURCE, policy=["trigger"])
    with pytest.raises(InvalidInput, match="finite"):
        loop.loop.set_policy("churn-api", source=SOURCE, policy={"gate": float("nan")})
    assert loop.loop.policies() == []


# --- state and transitions ----------------------------------------------------------------


def test_a_deployment_never_run_is_stable_at_revision_zero(loop: Any) -> None:
    state = loop.loop.state("churn-api")
    assert state == LoopState(deployment="churn-api")
    assert (state.state, state.revision, state.data, state.step) == ("STABLE", 0, {}, None)
    assert state.lease_owner is None and state.updated_at is None
    assert loop.loop.events("churn-api") == []
    with pytest.raises(NotFound, match="no deployment named"):
        loop.loop.state("churn-apj")


def test_transitions_write_the_state_and_number_their_events(loop: Any) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    s1, e1 = _move(
        loop,
        "TRIGGERED",
        0,
        "triggered",
        data={"trigger": {"drift_share": 0.5}},
        evidence={"drift_share": 0.5, "drifted": ["age"]},
        links={"report_ids": ["r1", "r2"]},
    )
    assert (s1.state, s1.revision, s1.data) == (
        LoopStateName.TRIGGERED,
        1,
        {"trigger": {"drift_share": 0.5}},
    )
    assert (e1.seq, e1.from_state, e1.to_state, e1.kind) == (1, "STABLE", "TRIGGERED", "triggered")
    assert e1.evidence == {"drift_share": 0.5, "drifted": ["age"]}
    assert e1.links == {"report_ids": ["r1", "r2"]} and e1.summary == "moved to TRIGGERED"
    assert e1.actor and before < e1.created_at < datetime.now(UTC) + timedelta(seconds=5)
    s2, e2 = _move(
        loop, "training", 1, "training_started", data={"pipeline_run_id": "p1"}, owner="ctl-a"
    )
    assert (s2.state, s2.revision, e2.seq, e2.actor) == ("TRAINING", 2, 2, "ctl-a")
    s3, e3 = _move(loop, LoopStateName.CANARY, 2, "canary_step", step=0, candidate_version=1)
    assert (s3.state, s3.step, s3.candidate_version, s3.data) == ("CANARY", 0, 1, {})
    assert (e3.seq, e3.from_state) == (3, "TRAINING")
    assert loop.loop.state("churn-api") == s3
    assert loop.loop.events("churn-api") == [e1, e2, e3]
    assert loop.loop.event(e2.id) == e2
    assert loop.loop.events("churn-eu") == []  # seq and state are per deployment
    assert loop.loop.state("churn-eu").revision == 0


def test_a_transition_to_the_same_state_records_an_analysis(loop: Any) -> None:
    _move(loop, "CANARY", 0, step=1, candidate_version=1)
    state, event = _move(
        loop, "CANARY", 1, "analysis", step=1, candidate_version=1, data={"failed_checks": 1}
    )
    assert (state.state, state.revision, state.data) == ("CANARY", 2, {"failed_checks": 1})
    assert (event.from_state, event.to_state, event.kind, event.seq) == (
        "CANARY",
        "CANARY",
        "analysis",
        2,
    )


def test_record_appends_an_event_and_leaves_the_state(loop: Any) -> None:
    before, _ = _move(loop, "GATED", 0, candidate_version=1, data={"gate": "pending"})
    note = loop.loop.record(
        "churn-api", kind="note", summary="operator looked", evidence={"who": "ana"}
    )
    assert (note.seq, note.from_state, note.to_state, note.links) == (2, "GATED", "GATED", {})
    assert loop.loop.state("churn-api") == before  # same revision, data and time
    fresh = loop.loop.record("churn-eu", kind="note", summary="never run")
    assert (fresh.seq, fresh.from_state, fresh.to_state) == (1, "STABLE", "STABLE")
    assert loop.loop.state("churn-eu").revision == 0


def test_a_stale_revision_is_a_conflict_and_writes_nothing(loop: Any) -> None:
    _move(loop, "TRIGGERED", 0, data={"n": 1})
    _move(loop, "TRAINING", 1, data={"n": 2})
    with pytest.raises(Conflict, match=r"revision 2 \(TRAINING\), not 1") as info:
        _move(loop, "REJECTED", 1, data={"n": 3})
    assert "client.loop.state('churn-api')" in str(info.value)
    with pytest.raises(Conflict):
        _move(loop, "REJECTED", 5)
    state = loop.loop.state("churn-api")
    assert (state.state, state.revision, state.data) == ("TRAINING", 2, {"n": 2})
    assert [e.seq for e in loop.loop.events("churn-api")] == [1, 2]


def test_a_first_transition_expects_revision_zero(loop: Any) -> None:
    with pytest.raises(Conflict, match="at revision 0"):
        _move(loop, "TRIGGERED", 1)
    assert loop.loop.events("churn-api") == []


# --- leases -------------------------------------------------------------------------------


def test_a_lease_is_taken_extended_by_its_owner_and_refused_to_others(loop: Any) -> None:
    first = loop.loop.acquire_lease("churn-api", "ctl-a", 60)
    assert first.lease_owner == "ctl-a" and first.revision == 0 and first.state == "STABLE"
    assert first.lease_expires_at is not None
    assert (
        timedelta(seconds=50) < first.lease_expires_at - datetime.now(UTC) <= timedelta(seconds=61)
    )
    time.sleep(0.01)
    again = loop.loop.acquire_lease("churn-api", "ctl-a", 120)
    assert again.lease_owner == "ctl-a" and again.lease_expires_at > first.lease_expires_at
    with pytest.raises(Conflict, match="leased to 'ctl-a' until 20") as info:
        loop.loop.acquire_lease("churn-api", "ctl-b", 60)
    assert "ctl-b" in str(info.value)
    assert loop.loop.state("churn-api").lease_owner == "ctl-a"
    assert loop.loop.acquire_lease("churn-eu", "ctl-b", 60).lease_owner == "ctl-b"
    assert loop.loop.state("churn-api").revision == 0  # leases do not move the revision


def test_a_transition_by_a_non_holder_is_a_conflict(loop: Any) -> None:
    loop.loop.acquire_lease("churn-api", "ctl-a", 60)
    with pytest.raises(Conflict, match="leased to 'ctl-a'"):
        _move(loop, "TRIGGERED", 0, owner="ctl-b")
    with pytest.raises(Conflict, match="leased to 'ctl-a'"):
        loop.loop.record("churn-api", kind="note", summary="x", owner="ctl-b")
    assert loop.loop.events("churn-api") == [] and loop.loop.state("churn-api").revision == 0
    state, event = _move(loop, "TRIGGERED", 0, owner="ctl-a")
    assert state.revision == 1 and state.lease_owner == "ctl-a" and event.actor == "ctl-a"


def test_an_expired_lease_lets_another_owner_in(loop: Any) -> None:
    loop.loop.acquire_lease("churn-api", "ctl-a", 0.2)
    time.sleep(0.4)
    state, _ = _move(loop, "TRIGGERED", 0, owner="ctl-b")  # an expired lease binds nobody
    taken = loop.loop.acquire_lease("churn-api", "ctl-b", 60)
    assert taken.lease_owner == "ctl-b" and taken.revision == state.revision == 1
    with pytest.raises(Conflict, match="leased to 'ctl-b'"):
        loop.loop.acquire_lease("churn-api", "ctl-a", 60)


def test_release_frees_the_lease_only_for_its_holder(loop: Any) -> None:
    loop.loop.acquire_lease("churn-api", "ctl-a", 60)
    kept = loop.loop.release_lease("churn-api", "ctl-b")  # not ctl-b's: nothing changes
    assert kept.lease_owner == "ctl-a"
    freed = loop.loop.release_lease("churn-api", "ctl-a")
    assert freed.lease_owner is None and freed.lease_expires_at is None
    assert loop.loop.release_lease("churn-api", "ctl-a").lease_owner is None  # idempotent
    assert loop.loop.acquire_lease("churn-api", "ctl-b", 60).lease_owner == "ctl-b"
    assert loop.loop.release_lease("churn-eu", "ctl-a") == LoopState(deployment="churn-eu")


def _race(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(len(calls))
    wins: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            result = call()
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                wins.append(result)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return wins, errors


def test_two_controllers_racing_one_revision_make_exactly_one_transition(loop: Any) -> None:
    for revision in range(4):  # the first round races to create the state row
        wins, errors = _race(
            [
                lambda who=who, revision=revision: _move(
                    loop, "TRAINING", revision, data={"by": who}, evidence={"by": who}
                )
                for who in ("ctl-a", "ctl-b")
            ]
        )
        assert len(wins) == 1 and len(errors) == 1, errors
        assert isinstance(errors[0], Conflict), errors[0]
        state, event = wins[0]
        assert state.revision == revision + 1 and event.seq == revision + 1
        assert loop.loop.state("churn-api").data == event.evidence
    events = loop.loop.events("churn-api")
    assert [e.seq for e in events] == [1, 2, 3, 4]


def test_two_controllers_racing_for_a_lease_get_one_holder(loop: Any) -> None:
    wins, errors = _race(
        [lambda who=who: loop.loop.acquire_lease("churn-api", who, 60) for who in ("a", "b")]
    )
    assert len(wins) == 1 and len(errors) == 1 and isinstance(errors[0], Conflict)
    assert loop.loop.state("churn-api").lease_owner == wins[0].lease_owner


# --- events -------------------------------------------------------------------------------


def test_events_filter_by_kind_seq_time_and_limit(loop: Any) -> None:
    kinds = ["triggered", "training_started", "trained", "gate_passed", "canary_step"]
    states = ["TRIGGERED", "TRAINING", "TRAINING", "GATED", "CANARY"]
    made = [_move(loop, s, i, k)[1] for i, (s, k) in enumerate(zip(states, kinds, strict=True))]
    assert loop.loop.events("churn-api") == made
    assert loop.loop.events("churn-api", limit=2) == made[:2]
    assert loop.loop.events("churn-api", limit=2, newest=True) == made[3:]  # still oldest first
    assert loop.loop.events("churn-api", kinds=["trained", "triggered"], newest=True, limit=1) == [
        made[2]
    ]
    assert loop.loop.events("churn-api", after_seq=2) == made[2:]
    assert loop.loop.events("churn-api", after_seq=2, limit=1) == [made[2]]
    assert loop.loop.events("churn-api", after_seq=5) == []
    assert loop.loop.events("churn-api", kinds=["trained", "triggered"]) == [made[0], made[2]]
    assert loop.loop.events("churn-api", kinds="gate_passed") == [made[3]]
    assert loop.loop.events("churn-api", kinds=["rolled_back"]) == []
    assert loop.loop.events("churn-api", since=made[0].created_at) == made
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert loop.loop.events("churn-api", since=later) == []
    assert loop.loop.events("churn-api", since=later.isoformat()) == []
    with pytest.raises(InvalidInput, match="limit"):
        loop.loop.events("churn-api", limit=0)
    with pytest.raises(InvalidInput, match="after_seq"):
        loop.loop.events("churn-api", after_seq=-1)
    with pytest.raises(InvalidInput, match="event kind"):
        loop.loop.events("churn-api", kinds=["Bad Kind"])
    with pytest.raises(InvalidInput, match="since"):
        loop.loop.events("churn-api", since="yesterday")
    with pytest.raises(NotFound, match="no deployment named"):
        loop.loop.events("churn-apx")


def test_an_event_is_found_by_its_id(loop: Any) -> None:
    _, event = _move(loop, "TRIGGERED", 0, "triggered", links={"pipeline_run_id": "p9"})
    found = loop.loop.event(event.id)
    assert found == event and found.to_dict() == event.to_dict()
    assert LoopEvent.from_dict(found.to_dict()) == event
    with pytest.raises(NotFound, match="ctloop loop history"):
        loop.loop.event("0" * 32)
    with pytest.raises(InvalidInput, match="invalid event id"):
        loop.loop.event("../etc")


# --- deletion and bad input ---------------------------------------------------------------


def test_deleting_a_deployment_deletes_its_policy_state_and_events(loop: Any) -> None:
    loop.loop.set_policy("churn-api", source=SOURCE, policy=POLICY)
    loop.loop.set_policy("churn-eu", source=SOURCE, policy=POLICY)
    loop.loop.acquire_lease("churn-api", "ctl-a", 60)
    _, event = _move(loop, "TRIGGERED", 0, owner="ctl-a")
    _move(loop, "TRAINING", 1, owner="ctl-a")
    loop.loop.transition(
        "churn-eu", expected_revision=0, to_state="TRIGGERED", data={}, kind="x", summary="s"
    )
    loop.deployments.delete("churn-api")
    assert [p.deployment for p in loop.loop.policies()] == ["churn-eu"]
    assert loop.loop.state("churn-eu").revision == 1  # the other deployment keeps its own
    assert len(loop.loop.events("churn-eu")) == 1
    with pytest.raises(NotFound):
        loop.loop.event(event.id)
    loop.deployments.create("churn-api", "churn/1")  # the same name starts afresh
    assert loop.loop.state("churn-api") == LoopState(deployment="churn-api")
    assert loop.loop.events("churn-api") == []
    with pytest.raises(NotFound, match="no loop policy"):
        loop.loop.get_policy("churn-api")


def test_nan_in_evidence_and_data_is_stored_as_null(loop: Any) -> None:
    state, event = _move(
        loop,
        "TRIGGERED",
        0,
        data={"auc": float("nan"), "pair": (1, 2)},
        evidence={"psi": float("inf"), "scores": [0.1, float("nan")]},
    )
    assert state.data == {"auc": None, "pair": [1, 2]}
    assert event.evidence == {"psi": None, "scores": [0.1, None]}
    assert loop.loop.event(event.id).evidence == event.evidence
    assert loop.loop.state("churn-api").data == state.data


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"to_state": "PAUSED"}, "unknown loop state 'PAUSED'"),
        ({"to_state": 3}, "unknown loop state"),
        ({"step": -1}, "step=-1"),
        ({"step": 1.5}, "step=1.5"),
        ({"step": True}, "step=True"),
        ({"candidate_version": 0}, "candidate_version=0"),
        ({"expected_revision": -1}, "expected_revision=-1"),
        ({"expected_revision": "0"}, "expected_revision='0'"),
        ({"data": None}, "data must be a dict"),
        ({"data": {"seen": {1, 2}}}, "data holds a set"),
        ({"evidence": {"ids": {"a"}}}, "evidence holds a set at evidence.ids"),
        ({"evidence": ["not", "a", "dict"]}, "evidence must be a dict"),
        ({"links": {"when": datetime(2026, 1, 1)}}, "links holds a datetime"),
        ({"kind": "Gate Passed"}, "invalid event kind"),
        ({"summary": " "}, "summary must be a non-empty sentence"),
        ({"summary": "x" * 2001}, "summary must be"),
        ({"owner": ""}, "owner=''"),
        ({"owner": "a\nb"}, "owner="),
    ],
)
def test_bad_transitions_are_refused_and_write_nothing(
    loop: Any, change: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {
        "expected_revision": 0,
        "to_state": "TRIGGERED",
        "data": {},
        "kind": "triggered",
        "summary": "drift",
    }
    with pytest.raises(InvalidInput, match=match):
        loop.loop.transition("churn-api", **{**args, **change})
    assert loop.loop.state("churn-api").revision == 0
    assert loop.loop.events("churn-api") == []


def test_state_names_are_read_in_any_case(loop: Any) -> None:
    state, event = _move(loop, "rolled_back", 0)
    assert state.state is LoopStateName.ROLLED_BACK and event.to_state == "ROLLED_BACK"


@pytest.mark.parametrize("ttl", [0, -5, float("nan"), 8 * 24 * 3600, "60", True])
def test_a_bad_lease_ttl_is_refused(loop: Any, ttl: Any) -> None:
    with pytest.raises(InvalidInput, match="ttl_seconds"):
        loop.loop.acquire_lease("churn-api", "ctl-a", ttl)
    assert loop.loop.state("churn-api").lease_owner is None


def test_an_unknown_deployment_is_not_found_everywhere(loop: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: loop.loop.transition(
            "nope", expected_revision=0, to_state="TRIGGERED", data={}, kind="x", summary="s"
        ),
        lambda: loop.loop.record("nope", kind="note", summary="s"),
        lambda: loop.loop.acquire_lease("nope", "a", 5),
        lambda: loop.loop.release_lease("nope", "a"),
        lambda: loop.loop.delete_policy("nope"),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="no deployment named 'nope'"):
            call()
    with pytest.raises(InvalidInput, match="invalid deployment name"):
        loop.loop.state("../x")
