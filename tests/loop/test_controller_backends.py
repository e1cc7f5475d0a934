"""The controller's main paths on every backend: SQLite, PostgreSQL, and over HTTP to a real
uvicorn ``ctloop server`` (on loopback) whose store is SQLite or PostgreSQL.

The pipeline runs inline in the controller's process against the same client, so over
HTTP its runs, artifacts and registrations go through the server's API. Prediction-log
rows are written with the real PayloadLog under the artifact root the *server* reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression
from test_controller import (
    FEATURES,
    Clock,
    controller,
    frame,
    kinds,
    policy_yaml,
    serve,
    start_canary,
    tiny_training,
    traffic,
)

import ctloop
from ctloop.loop.controller import REJECTED_TAG
from ctloop.loop.entities import LoopStateName
from ctloop.loop.training import find_intent_runs, run_pipeline
from ctloop.loop.triggers import request_manual

S = LoopStateName
BACKENDS = ["sqlite", "postgres", "http-sqlite", "http-postgres"]


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
    """Dataset tiny@1, champion tiny/1 behind deployment ``api``, dataset tiny@2 to retrain on."""
    client, log_root = backend
    for seed in (1, 2):
        path = tmp_path / f"tiny{seed}.parquet"
        frame(seed).to_parquet(path, index=False)
        client.datasets.add(path, name="tiny", pointer=False)
    data = frame(1)
    run = client.runs.create("tiny", "champion")
    client.runs.log_model(
        run.id, LogisticRegression().fit(data[FEATURES], data["y"]), input_example=data[FEATURES]
    )
    client.runs.end(run.id)
    client.models.register(run.id, "model", name="tiny")
    client.models.set_alias("tiny", "champion", 1, reason="first model")
    client.deployments.create("api", "tiny@champion")
    return {"client": client, "clock": Clock(), "log_root": log_root}


def test_a_manual_trigger_trains_canaries_and_promotes(world: dict[str, Any]) -> None:
    client, clock = world["client"], world["clock"]
    c = controller(world)
    first = start_canary(world, c)
    assert kinds(first) == ["triggered", "training_started", "gate_passed", "canary_step"]
    gated = first[2]
    assert gated.links["model_version"] == "tiny/2" and gated.links["pipeline_run_id"]
    assert traffic(client) == {1: 90, 2: 10}
    state = client.loop.state("api")
    assert (state.state, state.step, state.candidate_version) == (S.CANARY, 0, 2)

    assert c.reconcile_once() == []  # the interval has not passed
    for index, share in ((1, {1: 50, 2: 50}), (2, {2: 100})):
        serve(world, 1, "champion", 200, seed=index)
        serve(world, 2, "canary", 200, seed=10 + index)
        clock.advance(minutes=5, seconds=30)
        (moved,) = c.reconcile_once()
        assert moved.kind == "canary_step" and "200 canary" in moved.summary, moved.summary
        assert client.loop.state("api").step == index and traffic(client) == share

    serve(world, 2, "canary", 300, seed=30)
    clock.advance(minutes=6)
    promoted, stable = c.reconcile_once()
    assert (promoted.kind, promoted.to_state, stable.to_state) == ("promoted", S.PROMOTED, S.STABLE)
    assert client.models.get("tiny").aliases["champion"] == 2
    assert traffic(client) == {2: 100}
    assert client.deployments.get("api").routes[0].variant == "champion"
    history = client.loop.events("api")
    assert kinds(history) == [
        "manual_trigger",
        "triggered",
        "training_started",
        "gate_passed",
        "canary_step",
        "canary_step",
        "canary_step",
        "promoted",
        "note",  # PROMOTED -> STABLE
    ]
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert client.loop.event(promoted.id).links["previous_champion"] == "tiny/1"
    state = client.loop.state("api")
    assert state.state is S.STABLE and state.data["last_outcome"] == "PROMOTED"
    clock.advance(minutes=1)
    assert c.reconcile_once() == []  # cooldown: no retrain, no event


def test_a_canary_with_errors_is_rolled_back_within_one_interval(world: dict[str, Any]) -> None:
    client, clock = world["client"], world["clock"]
    c = controller(world)
    start_canary(world, c)
    serve(world, 1, "champion", 300, seed=1)
    serve(world, 2, "canary", 150, errors=0.3, seed=2)
    clock.advance(minutes=5, seconds=1)
    rolled, stable = c.reconcile_once()
    assert (rolled.kind, rolled.to_state, stable.to_state) == (
        "rolled_back",
        S.ROLLED_BACK,
        S.STABLE,
    ), rolled.summary
    assert "error rate" in rolled.summary and "1/1 analyses failed" in rolled.summary
    assert traffic(client) == {1: 100}
    assert client.models.get("tiny").aliases["champion"] == 1
    assert "error rate" in client.models.get_version(("tiny", 2)).tags[REJECTED_TAG]
    state = client.loop.state("api")
    assert state.state is S.STABLE and state.data["last_outcome"] == "ROLLED_BACK"


def test_a_second_controller_gets_no_lease_and_does_nothing(world: dict[str, Any]) -> None:
    client = world["client"]
    c = controller(world, owner="first")
    client.loop.set_policy("api", source=policy_yaml(), policy=c.policy.to_dict())
    assert c.reconcile_once() == []  # nothing fired; the lease is taken
    request_manual(client, "api", "two controllers")
    revision = client.loop.state("api").revision
    assert controller(world, owner="second").reconcile_once() == []
    state = client.loop.state("api")
    assert (state.revision, state.lease_owner) == (revision, "first")
    assert client.pipelines.list("tiny-training") == []


def test_training_finished_before_a_crash_is_not_run_again(world: dict[str, Any]) -> None:
    client = world["client"]
    c = controller(world)
    client.loop.set_policy("api", source=policy_yaml(), policy=c.policy.to_dict())
    request_manual(client, "api", "crash test")
    c.step(client.loop.state("api"))  # -> TRIGGERED
    c.step(client.loop.state("api"))  # -> TRAINING, the intent stored
    state = client.loop.state("api")
    assert state.state is S.TRAINING
    intent = state.data["intent"]
    # the controller trained, then died before writing the transition
    run_pipeline(
        client, tiny_training, intent, executor="inline", keep_alive=c.renew_lease, every=1
    )
    c2 = controller(world)  # a fresh process takes over once the lease is free
    c.release()
    events = c2.reconcile_once()
    assert kinds(events) == ["gate_passed", "canary_step"]
    assert len(client.pipelines.list("tiny-training")) == 1  # not trained twice
    assert [v.version for v in client.models.versions("tiny")] == [1, 2]
    assert [r.id for r in find_intent_runs(client, "tiny-training", intent)] == [
        events[0].links["pipeline_run_id"]
    ]
