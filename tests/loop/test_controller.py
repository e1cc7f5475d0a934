"""The controller on a real SQLite store: a tiny real pipeline, a real champion behind a
deployment, prediction-log rows written with the real PayloadLog, and a fake clock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ctloop import pipeline, step
from ctloop.loop.controller import REJECTED_TAG, Controller
from ctloop.loop.entities import LoopStateName
from ctloop.loop.policy import parse_policy
from ctloop.loop.training import find_intent_runs, run_pipeline
from ctloop.loop.triggers import request_manual
from ctloop.pipelines import builtin as ct
from ctloop.serving.payload_log import PayloadLog

S = LoopStateName
FEATURES = ["x1", "x2"]
GATE = {
    "thresholds": ["roc_auc >= 0.7"],
    "bootstrap": {"metric": "roc_auc", "confidence": 0.9, "margin": -0.05, "resamples": 200},
}


# --- a tiny pipeline: load ▶ split ▶ fit ▶ gate ▶ register ----------------------------------


@step(outputs=("X_train", "X_test", "y_train", "y_test"))
def split_frame(
    data: pd.DataFrame, shuffle_labels: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    y = data["y"]
    if shuffle_labels:  # a candidate that learns nothing: the gate must reject it
        y = pd.Series(np.random.default_rng(0).permutation(y.to_numpy()), index=y.index)
    cut = int(len(data) * 0.7)
    x = data[FEATURES]
    return x.iloc[:cut], x.iloc[cut:], y.iloc[:cut], y.iloc[cut:]


@step
def fit(X_train: pd.DataFrame, y_train: pd.Series) -> LogisticRegression:
    return LogisticRegression().fit(X_train, y_train)


@pipeline(name="tiny-training", experiment="tiny")
def tiny_training(
    dataset: str = "tiny@latest", shuffle_labels: bool = False, gate: dict[str, Any] | None = None
) -> None:
    X_train, X_test, y_train, y_test = split_frame(
        ct.load_dataset(dataset), shuffle_labels=shuffle_labels
    )
    model = fit(X_train, y_train)
    decision = ct.gate(model, X_test, y_test, model_name="tiny", spec=gate or GATE)
    ct.register(model, decision, model_name="tiny", input_example=X_train)


# --- fixtures -------------------------------------------------------------------------------


def frame(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def policy_yaml(**extra: str) -> str:
    params = extra.get("params", "{}")
    checks = extra.get("checks", "{error_rate: {max_increase: 0.02}}")
    return f"""
deployment: api
triggers: {{manual: true}}
training_data: {{dataset: tiny@latest}}
pipeline: {{target: "test_controller:tiny_training", executor: inline, params: {params}}}
gate: {{thresholds: ["roc_auc >= 0.7"], bootstrap: {{metric: roc_auc, confidence: 0.9,
       margin: -0.05, resamples: 200, seed: 0}}}}
rollout:
  steps: [10, 50, 100]
  min_requests: 100
  interval: 5m
  failed_checks_limit: 1
  checks: {checks}
guards: {{cooldown: 1h}}
"""


@pytest.fixture
def world(sqlite_client: Any, tmp_path: Path) -> dict[str, Any]:
    """Dataset tiny@1, champion tiny/1 behind deployment ``api``, dataset tiny@2 to retrain on."""
    return make_world(sqlite_client, tmp_path)


def make_world(client: Any, tmp_path: Path, log_root: str | None = None) -> dict[str, Any]:
    """The world of :func:`world` on ``client``; ``log_root``: where the prediction log is
    read (over HTTP, the server's artifact root)."""
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


def controller(world: dict[str, Any], text: str | None = None, **kw: Any) -> Controller:
    policy = parse_policy(text or policy_yaml())
    return Controller(world["client"], "api", policy, clock=world["clock"], **kw)


def serve(
    world: dict[str, Any], version: int, variant: str, n: int, *, errors: float = 0.0, seed: int = 0
) -> None:
    """Log ``n`` served rows of ``version``, stamped now (the real clock, as a server does:
    the canary reads the rows logged since its split was set in the store)."""
    client = world["client"]
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC) - timedelta(microseconds=n)
    rows = []
    for i in range(n):
        failed = rng.random() < errors
        rows.append(
            {
                "prediction_id": uuid.uuid4().hex,
                "request_id": uuid.uuid4().hex,
                "timestamp": start + timedelta(microseconds=i),
                "deployment": "api",
                "model_version": str(version),
                "variant": variant,
                "prediction": None if failed else int(rng.random() < 0.4),
                "latency_ms": float(rng.uniform(1, 5)),
                "status": "error: boom" if failed else "ok",
            }
        )
    # over HTTP the server's artifact root, where it reads the logs (test_controller_backends)
    root = world.get("log_root") or client.settings.artifacts_root()
    with PayloadLog(root, "api", "predictions", replica=f"r{seed}") as log:
        log.append(rows)


def kinds(events: list[Any]) -> list[str]:
    return [e.kind for e in events]


def traffic(client: Any) -> dict[int, int]:
    return {r.version: r.weight for r in client.deployments.get("api").routes}


def start_canary(world: dict[str, Any], c: Controller) -> list[Any]:
    client = world["client"]
    client.loop.set_policy("api", source=policy_yaml(), policy=c.policy.to_dict())
    request_manual(client, "api", "test retrain")
    return c.reconcile_once()


# --- the whole loop -------------------------------------------------------------------------


def test_a_manual_trigger_trains_canaries_and_promotes(world: dict[str, Any]) -> None:
    client, clock = world["client"], world["clock"]
    c = controller(world)
    first = start_canary(world, c)
    assert kinds(first) == ["triggered", "training_started", "gate_passed", "canary_step"]
    assert "manual" in first[0].summary and "test retrain" in first[0].summary
    assert "tiny@2" in first[1].summary and first[1].evidence["dataset"] == "tiny@2"
    gated = first[2]
    assert "tiny/2" in gated.summary and "roc_auc" in gated.summary
    assert gated.links["pipeline_run_id"] and gated.links["tracking_run_id"]
    assert gated.links["model_version"] == "tiny/2"
    assert "10%" in first[3].summary and traffic(client) == {1: 90, 2: 10}
    state = client.loop.state("api")
    assert (state.state, state.step, state.candidate_version) == (S.CANARY, 0, 2)
    tracked = client.runs.get(gated.links["tracking_run_id"])
    assert tracked.tags["ctloop.loop.intent"] == state.data["intent"]["id"]

    assert c.reconcile_once() == []  # the interval has not passed: nothing to write
    for index, share in ((1, {1: 50, 2: 50}), (2, {2: 100})):
        serve(world, 1, "champion", 200, seed=index)
        serve(world, 2, "canary", 200, seed=10 + index)
        clock.advance(minutes=5, seconds=30)
        (moved,) = c.reconcile_once()
        assert moved.kind == "canary_step" and moved.to_state is S.CANARY
        assert "analysis passed" in moved.summary and "200 canary" in moved.summary
        assert client.loop.state("api").step == index and traffic(client) == share

    serve(world, 2, "canary", 300, seed=30)
    clock.advance(minutes=6)
    promoted, stable = c.reconcile_once()
    assert (promoted.kind, promoted.to_state) == ("promoted", S.PROMOTED)
    assert "tiny/2" in promoted.summary and "was 1" in promoted.summary
    assert stable.to_state is S.STABLE
    assert client.models.get("tiny").aliases["champion"] == 2
    assert client.deployments.get("api").routes[0].variant == "champion"
    assert traffic(client) == {2: 100}
    assert client.models.get_version(("tiny", 1)).version == 1  # the old champion stays
    history = client.loop.events("api")
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert client.loop.event(promoted.id).links["previous_champion"] == "tiny/1"
    clock.advance(minutes=1)
    assert c.reconcile_once() == []  # cooldown: no retrain, no event


def test_a_candidate_that_fails_the_gate_is_rejected(world: dict[str, Any]) -> None:
    client = world["client"]
    c = controller(world, policy_yaml(params="{shuffle_labels: true}"))
    events = start_canary(world, c)
    assert kinds(events) == ["triggered", "training_started", "gate_failed", "note"]
    rejected = events[2]
    assert rejected.to_state is S.REJECTED and "gate failed" in rejected.summary
    assert "roc_auc" in rejected.summary and rejected.evidence["gate"]["passed"] is False
    assert traffic(client) == {1: 100} and client.deployments.get("api").revision == 1
    assert [v.version for v in client.models.versions("tiny")] == [1]


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
    )
    assert "error rate" in rolled.summary and "1/1 analyses failed" in rolled.summary
    assert rolled.evidence["checks"][0]["status"] == "failed"
    assert traffic(client) == {1: 100}
    assert client.models.get("tiny").aliases["champion"] == 1
    assert "error rate" in client.models.get_version(("tiny", 2)).tags[REJECTED_TAG]


def test_too_few_canary_requests_wait_without_judging(world: dict[str, Any]) -> None:
    client, clock = world["client"], world["clock"]
    c = controller(world)
    start_canary(world, c)
    serve(world, 2, "canary", 20, errors=1.0)
    clock.advance(minutes=5, seconds=1)
    (waited,) = c.reconcile_once()
    assert waited.kind == "analysis" and "waiting for requests" in waited.summary
    assert client.loop.state("api").data["failed_checks"] == 0 and traffic(client) == {1: 90, 2: 10}


def test_feedback_labels_join_the_training_data_as_a_new_dataset_version(
    world: dict[str, Any],
) -> None:
    client, clock = world["client"], world["clock"]
    live = frame(3, n=200)
    ids = [uuid.uuid4().hex for _ in range(len(live))]
    at = clock.now - timedelta(hours=1)
    root = client.settings.artifacts_root()
    with PayloadLog(root, "api", "predictions", replica="r") as log:
        log.append(
            [
                {
                    "prediction_id": pid,
                    "timestamp": at,
                    "deployment": "api",
                    "model_version": "1",
                    "variant": "champion",
                    "prediction": 1,
                    "latency_ms": 1.0,
                    "status": "ok",
                    "features": {"x1": float(row.x1), "x2": float(row.x2)},
                }
                for pid, row in zip(ids, live.itertuples(), strict=True)
            ]
        )
    with PayloadLog(root, "api", "feedback", replica="r") as log:
        log.append(
            [
                {"prediction_id": pid, "timestamp": at + timedelta(minutes=1), "label": int(y)}
                for pid, y in zip(ids[:150], live["y"], strict=False)
            ]
        )
    text = policy_yaml().replace(
        "training_data: {dataset: tiny@latest}",
        "training_data: {dataset: tiny@latest, feedback: {window: 1d, min_labels: 100}}",
    )
    c = controller(world, text)
    events = start_canary(world, c)
    started = events[1]
    assert started.kind == "training_started" and started.evidence["dataset"] == "api-training@1"
    assert started.evidence["labelled_rows"] == 150 and started.evidence["rows"] == 750
    assert started.evidence["source"] == "dataset + feedback"
    version = client.datasets.get("api-training@1")
    assert version.row_count == 750
    lineage = client.models.lineage(("tiny", 2))
    assert [(i.dataset, i.version) for i in lineage.inputs] == [("api-training", 1)]


def test_too_few_feedback_labels_and_no_dataset_reject_the_retrain(
    world: dict[str, Any],
) -> None:
    text = policy_yaml().replace(
        "training_data: {dataset: tiny@latest}",
        "training_data: {feedback: {window: 1d, min_labels: 1000}}",
    )
    events = start_canary(world, controller(world, text))
    assert kinds(events) == ["triggered", "rejected", "note"]
    assert "only 0 labelled predictions" in events[1].summary and "1000" in events[1].summary
    assert traffic(world["client"]) == {1: 100}


@pytest.mark.parametrize("mode", ["defer", "ignore", "restart"])
def test_a_trigger_during_the_canary_follows_during_canary(
    world: dict[str, Any], mode: str
) -> None:
    client = world["client"]
    text = policy_yaml().replace(
        "guards: {cooldown: 1h}", f"guards: {{cooldown: 0s, during_canary: {mode}}}"
    )
    c = controller(world, text)
    start_canary(world, c)
    request_manual(client, "api", "again")
    events = c.reconcile_once()
    if mode == "defer":
        assert events == [] and client.loop.state("api").state is S.CANARY
    elif mode == "ignore":
        (ignored,) = events
        assert ignored.kind == "trigger_ignored" and "again" in ignored.summary
        assert ignored.links["manual_event_id"] and c.reconcile_once() == []
    else:
        assert kinds(events) == ["rolled_back", "note"] and "restart" in events[0].summary
        assert traffic(client) == {1: 100}
        again = c.reconcile_once()  # same data, same code: the cache gives back version 2
        assert kinds(again) == ["triggered", "training_started", "rejected", "note"]
        assert "rolled back before" in again[2].summary


# --- crash safety ---------------------------------------------------------------------------


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


def test_a_pipeline_run_abandoned_by_a_dead_controller_is_failed_and_run_again(
    world: dict[str, Any],
) -> None:
    import time

    client = world["client"]
    c = controller(world)
    client.loop.set_policy("api", source=policy_yaml(), policy=c.policy.to_dict())
    request_manual(client, "api", "crash test")
    c.step(client.loop.state("api"))  # -> TRIGGERED
    c.step(client.loop.state("api"))  # -> TRAINING
    intent = client.loop.state("api").data["intent"]
    # the dead controller's run: started for the intent, never ended
    client.pipelines.create_run(
        {
            "id": uuid.uuid4().hex,
            "pipeline": "tiny-training",
            "executor": "inline",
            "params": intent["params"],
            "start_time": int(time.time() * 1000),
            "user": "someone",
        },
        [],
    )
    events = c.reconcile_once()
    assert kinds(events) == ["gate_passed", "canary_step"]
    runs = {r.id: r for r in client.pipelines.list("tiny-training")}
    assert len(runs) == 2
    dead = [r for r in runs.values() if r.id != events[0].links["pipeline_run_id"]][0]
    assert dead.status.value == "FAILED" and "abandoned" in (dead.error or "")


def test_traffic_set_before_a_crash_is_not_set_twice(world: dict[str, Any]) -> None:
    client, clock = world["client"], world["clock"]
    c = controller(world)
    client.loop.set_policy("api", source=policy_yaml(), policy=c.policy.to_dict())
    request_manual(client, "api", "crash test")
    for _ in range(3):  # TRIGGERED, TRAINING, GATED
        c.step(client.loop.state("api"))
    gated = client.loop.state("api")
    assert gated.state is S.GATED
    c._set_traffic(c.split(gated, 0), "crash test")  # then the controller died
    revision = client.deployments.get("api").revision
    c.release()
    c2 = controller(world)
    (entered,) = c2.reconcile_once()
    assert entered.kind == "canary_step" and client.loop.state("api").step == 0
    assert (
        client.deployments.get("api").revision == revision == entered.links["deployment_revision"]
    )

    # the next step's split was set, then a crash: the fresh controller only records it
    state = client.loop.state("api")
    c2._set_traffic(c2.split(state, 1), "crash test")
    c2.release()
    c3 = controller(world)
    (resumed,) = c3.reconcile_once()
    assert "resumed" in resumed.summary and client.loop.state("api").step == 1
    assert traffic(client) == {1: 50, 2: 50}

    # rolled back by hand (or by a controller that died before recording it)
    client.deployments.set_traffic("api", ["1=100:champion"], reason="by hand")
    clock.advance(minutes=1)
    rolled, _ = c3.reconcile_once()
    assert rolled.to_state is S.ROLLED_BACK and traffic(client) == {1: 100}
    assert REJECTED_TAG in client.models.get_version(("tiny", 2)).tags


def test_a_promotion_cut_short_by_a_crash_is_finished(world: dict[str, Any]) -> None:
    client = world["client"]
    c = controller(world)
    start_canary(world, c)
    client.models.set_alias("tiny", "champion", 2, reason="controller died after this")
    c.release()
    promoted, _ = controller(world).reconcile_once()
    assert promoted.to_state is S.PROMOTED and traffic(client) == {2: 100}


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


# --- the command line -----------------------------------------------------------------------


def ctl(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "ctloop", "loop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli_policy(tmp_path: Path, **extra: str) -> Path:
    text = policy_yaml(**extra).replace(
        '"test_controller:tiny_training"', f'"{__file__}:tiny_training"'
    )
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_controller_for_stores_the_file_or_reads_the_stored_policy(
    world: dict[str, Any], tmp_path: Path
) -> None:
    from ctloop.errors import InvalidInput, NotFound
    from ctloop.loop.controller import controller_for

    client = world["client"]
    with pytest.raises(NotFound):
        controller_for(client, "api")  # nothing stored yet
    path = cli_policy(tmp_path)
    first = controller_for(client, "api", path, lease_seconds=5)
    assert client.loop.get_policy("api").source == path.read_text()
    assert controller_for(client, "api").policy == first.policy  # the stored one
    assert first.lease_seconds == 5
    other = tmp_path / "other.yaml"
    other.write_text(path.read_text().replace("deployment: api", "deployment: web"))
    with pytest.raises(InvalidInput, match="is the policy of deployment 'web', not 'api'"):
        controller_for(client, "api", other)


def test_the_cli_runs_a_round_and_explains_it(world: dict[str, Any], tmp_path: Path) -> None:
    client = world["client"]
    store = tmp_path / "store"
    policy = cli_policy(tmp_path)
    out = ctl(store, "run", "api", "--policy", str(policy), "--once")
    assert out.returncode == 0 and out.stdout == "", out.stderr  # nothing fired
    assert client.loop.get_policy("api").source == policy.read_text()

    out = ctl(store, "trigger", "api", "--reason", "from the CLI")
    assert out.returncode == 0 and "from the CLI" in out.stdout, out.stderr
    out = ctl(store, "run", "api", "--once")  # the stored policy
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split("[")[1].split("]")[0] for line in lines] == [
        "triggered",
        "training_started",
        "gate_passed",
        "canary_step",
    ]
    status = ctl(store, "status", "api")
    assert "CANARY" in status.stdout and "candidate   2" in status.stdout, status.stderr
    data = json.loads(ctl(store, "status", "api", "--json").stdout)
    assert data["state"]["state"] == "CANARY" and data["last_event"]["kind"] == "canary_step"

    history = json.loads(ctl(store, "history", "api", "--json", "--limit", "3").stdout)
    assert [e["kind"] for e in history] == ["training_started", "gate_passed", "canary_step"]
    table = ctl(store, "history", "api").stdout
    assert "TRAINING → GATED" in table and "manual_trigger" in table
    explained = ctl(store, "explain", history[1]["id"]).stdout
    assert "gate_passed" in explained and "pipeline_run_id:" in explained
    assert "roc_auc" in explained

    assert "deployment: shop" in ctl(store, "init", "shop").stdout
    for args, words in (
        (("explain", "0123456789abcdef0123456789abcdef"), "no loop event"),
        (("status", "nope"), "nope"),
        (("run", "api", "--once", "--interval", "soon"), "--interval"),
        (("run", "--once"), "--all"),
    ):
        out = ctl(store, *args)
        assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("error: ") and words in out.stderr, out.stderr


# --- kill -9 at random moments --------------------------------------------------------------

ALLOWED_SPLITS = (
    {(1, 100, "champion")},
    {(1, 90, "champion"), (2, 10, "canary")},
    {(1, 50, "champion"), (2, 50, "canary")},
    {(2, 100, "canary")},
    {(2, 100, "champion")},
)


def serve_now(client: Any, *, canary_errors: bool = False, n: int = 10) -> None:
    """Log ``n`` rows per route of the deployment as it is now, stamped now; the canary's
    rows are all errors when ``canary_errors``."""
    rows = []
    for route in client.deployments.get("api").routes:
        failed = canary_errors and route.variant == "canary"
        for _ in range(n):
            rows.append(
                {
                    "prediction_id": uuid.uuid4().hex,
                    "timestamp": datetime.now(UTC),
                    "deployment": "api",
                    "model_version": str(route.version),
                    "variant": route.variant,
                    "prediction": None if failed else 1,
                    "latency_ms": 2.0,
                    "status": "error: boom" if failed else "ok",
                }
            )
    with PayloadLog(client.settings.artifacts_root(), "api", "predictions", replica="t") as log:
        log.append(rows)


@pytest.mark.slow
def test_killed_at_random_moments_the_loop_still_ends_promoted_once(
    world: dict[str, Any], tmp_path: Path
) -> None:
    import random
    import signal
    import time

    client = world["client"]
    store = tmp_path / "store"
    text = cli_policy(tmp_path).read_text()
    text = text.replace("min_requests: 100", "min_requests: 5").replace(
        "interval: 5m", "interval: 1s"
    )
    text = text.replace("failed_checks_limit: 1", "failed_checks_limit: 5")
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    assert ctl(store, "run", "api", "--policy", str(policy), "--once").returncode == 0
    assert ctl(store, "trigger", "api", "--reason", "chaos").returncode == 0
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    command = [sys.executable, "-m", "ctloop", "loop", "run", "api"]
    command += ["--interval", "0.2s", "--lease", "2s"]
    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        state = client.loop.state("api")
        if state.state is S.STABLE and state.data.get("last_outcome"):
            break
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        until = time.monotonic() + (rng.uniform(0.5, 4.0) if kills < 12 else 60)
        while time.monotonic() < until and proc.poll() is None:
            serve_now(client)
            routes = {
                (r.version, r.weight, r.variant) for r in client.deployments.get("api").routes
            }
            assert routes in ALLOWED_SPLITS  # never a half-moved split
            state = client.loop.state("api")
            if state.state is S.STABLE and state.data.get("last_outcome"):
                break
            time.sleep(0.2)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kills < 12 else signal.SIGTERM)
            kills += 1
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err.decode(), err.decode()
        time.sleep(2.1)  # the killed controller's lease runs out
    state = client.loop.state("api")
    assert state.data.get("last_outcome") == "PROMOTED", (state, kills)
    assert [v.version for v in client.models.versions("tiny")] == [1, 2]  # registered once
    assert client.models.get("tiny").aliases["champion"] == 2
    assert {(r.version, r.weight) for r in client.deployments.get("api").routes} == {(2, 100)}
    events = client.loop.events("api", limit=10_000)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.kind for e in events].count("promoted") == 1
    assert [e.kind for e in events].count("training_started") == 1


# --- running --------------------------------------------------------------------------------


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_run_stops_when_asked_and_gives_the_lease_back(world: dict[str, Any]) -> None:
    import threading

    client = world["client"]
    c = controller(world, owner="runner")
    client.loop.set_policy("api", source=policy_yaml(), policy=c.policy.to_dict())
    stop = threading.Event()
    thread = threading.Thread(target=c.run, kwargs={"interval": 0.05, "stop": stop})
    thread.start()
    wait_for(lambda: client.loop.state("api").lease_owner == "runner")
    assert controller(world, owner="other").reconcile_once() == []  # held
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    client.loop.acquire_lease("api", "other", 60)  # free at once: no Conflict
    assert client.loop.state("api").lease_owner == "other"


def test_sigterm_stops_the_cli_cleanly(world: dict[str, Any], tmp_path: Path) -> None:
    import signal

    client = world["client"]
    store = tmp_path / "store"
    policy = cli_policy(tmp_path)
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctloop", "loop", "run", "api", "--policy", str(policy)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: client.loop.state("api").lease_owner is not None)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "driving api" in out and "Traceback" not in err
    client.loop.acquire_lease("api", "other", 60)  # released on the way out


def test_a_promotion_moves_the_monitor_to_the_new_champions_data(world: dict[str, Any]) -> None:
    from ctloop.monitoring.profiles import ReferenceProfile

    client, clock = world["client"], world["clock"]
    profile = ReferenceProfile.from_frame(frame(1)[FEATURES]).to_dict()
    rules = [{"kind": "drift_share_above", "threshold": 0.25}]
    client.monitors.create(
        "api", reference="tiny/1", profile=profile, window="last:500", rules=rules
    )
    c = controller(world, policy_yaml().replace("steps: [10, 50, 100]", "steps: [100]"))
    start_canary(world, c)
    serve(world, 2, "champion", 300, seed=3)
    clock.advance(minutes=6)
    promoted, _ = c.reconcile_once()
    assert promoted.kind == "promoted", promoted.summary
    moved = client.monitors.get("api")
    assert moved.reference == "tiny/2", promoted.evidence.get("monitor")
    assert promoted.evidence["monitor"] == "the monitor now measures against tiny/2's training data"
    assert (moved.window, moved.rules) == ("last:500", rules)  # its settings are kept
    assert moved.estimation is not None and moved.estimation["model"] == "tiny/2"
