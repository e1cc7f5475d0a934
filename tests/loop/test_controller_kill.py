"""kill -9 the controller at each point of the loop, restart it, and it carries on.

The real ``ctloop loop run`` runs in a subprocess through ``_killpoint.py``, which wraps
one real function (a state transition, a registration, a traffic change, a step's
recorded outcome) so that the process SIGKILLs itself just before or just after one
chosen call; nothing in ``ctloop`` has a test hook. A *chain* of kill points shares one
world: killed at the first point, the controller is restarted (once the dead one's lease
runs out) under the next point and killed there, and so on; then a plain controller runs
until the loop is back in STABLE. Traffic is fed all along. The test fails when a point
is never reached (the process must die of SIGKILL), when a split seen on the way is not
one of the loop's own, or when anything was done twice or left half done: one training
(one fitted model), one registration, one promotion or rollback, contiguous events, and
the final routes, aliases, lineage and monitor of an uninterrupted loop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_controller import (  # noqa: F401  (world is a fixture)
    ALLOWED_SPLITS,
    FEATURES,
    cli_policy,
    frame,
    serve_now,
    world,
)

from ctloop.loop.controller import REJECTED_TAG
from ctloop.loop.entities import LoopStateName
from ctloop.loop.policy import parse_policy
from ctloop.loop.training import INTENT_TAG
from ctloop.loop.triggers import request_manual

S = LoopStateName
KILLPOINT = str(Path(__file__).with_name("_killpoint.py"))
TRANSITION = "ctloop.client.loop:LoopAPI.transition"
SET_TRAFFIC = "ctloop.client.deployments:DeploymentsAPI.set_traffic"
SET_ALIAS = "ctloop.client.models:ModelsAPI.set_alias"
ENDED = "ctloop.pipelines.runner:_Driver._ended"  # a step's outcome, recorded
PROMOTED, ROLLED_BACK = "PROMOTED", "ROLLED_BACK"
DEADLINE = 60.0

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class KillPoint:
    """Where the controller dies: ``when`` the ``nth`` call of ``target`` with ``match``."""

    id: str
    target: str
    match: dict[str, Any] = field(default_factory=dict)
    when: str = "after"
    nth: int = 1

    def spec(self) -> str:
        return json.dumps(
            {"target": self.target, "match": self.match, "when": self.when, "nth": self.nth}
        )


def _to(state: str, **match: Any) -> dict[str, Any]:
    return {"to_state": state, **match}


# Each chain is one world: the controller is killed at its first point, restarted under
# the next one and killed there, and so on; after the last, a plain controller finishes.
# Every point is reached deterministically (the test fails otherwise), and what must hold
# at all times is checked after each kill, so a failure names the point it follows.
CHAINS: dict[str, tuple[KillPoint, ...]] = {
    # STABLE -> TRIGGERED -> TRAINING -> GATED
    "training": (
        KillPoint("before-triggered", TRANSITION, _to("TRIGGERED"), when="before"),
        KillPoint("triggered", TRANSITION, _to("TRIGGERED")),
        KillPoint("training-started", TRANSITION, _to("TRAINING")),
        KillPoint("pipeline-run-created", "ctloop.client.pipelines:PipelinesAPI.create_run"),
        KillPoint(
            "pipeline-run-ended",
            "ctloop.client.pipelines:PipelinesAPI.end_run",
            {"status": "COMPLETED"},
        ),
        KillPoint("before-gated", TRANSITION, _to("GATED"), when="before"),
        KillPoint("gated", TRANSITION, _to("GATED")),
    ),
    # a run cut short after some steps: the next run takes them from the step cache
    "fit-step-done": (KillPoint("fit-step-done", ENDED, {"attempt.node": "fit"}),),
    # inside the register step, before the step's outcome is recorded
    "model-registered": (KillPoint("model-registered", "ctloop.client.models:ModelsAPI.register"),),
    "challenger-alias-set": (
        KillPoint("challenger-alias-set", SET_ALIAS, {"alias": "challenger"}),
    ),
    # the register step recorded, the pipeline run not ended
    "register-step-done": (KillPoint("register-step-done", ENDED, {"attempt.node": "register"}),),
    # GATED -> CANARY(0) -> CANARY(1) -> CANARY(2): traffic first, then the transition
    "canary": (
        KillPoint("canary-1-traffic", SET_TRAFFIC, {"weights": ["1=90:champion", "2=10:canary"]}),
        KillPoint("canary-1", TRANSITION, _to("CANARY", step=0, kind="canary_step")),
        KillPoint("canary-2-traffic", SET_TRAFFIC, {"weights": ["1=50:champion", "2=50:canary"]}),
        KillPoint("canary-2", TRANSITION, _to("CANARY", step=1, kind="canary_step")),
        KillPoint("canary-3-traffic", SET_TRAFFIC, {"weights": ["2=100:canary"]}),
        KillPoint("canary-3", TRANSITION, _to("CANARY", step=2, kind="canary_step")),
    ),
    # CANARY(2) -> PROMOTED -> STABLE: alias, traffic, monitor, then the transitions
    "promotion": (
        KillPoint("champion-alias-moved", SET_ALIAS, {"alias": "champion"}),
        KillPoint("promotion-traffic", SET_TRAFFIC, {"weights": ["2=100:champion"]}),
        KillPoint("monitor-moved", "ctloop.monitoring.service:create_monitor"),
        KillPoint("promoted", TRANSITION, _to("PROMOTED")),
        KillPoint("stable-after-promotion", TRANSITION, _to("STABLE")),
    ),
    # CANARY(0) failing its analysis -> ROLLED_BACK -> STABLE
    "rollback": (
        KillPoint("rollback-traffic", SET_TRAFFIC, {"weights": ["1=100:champion"]}),
        KillPoint("rollback-tagged", "ctloop.client.models:ModelsAPI.set_version_tags"),
        KillPoint("rolled-back", TRANSITION, _to("ROLLED_BACK")),
        KillPoint("stable-after-rollback", TRANSITION, _to("STABLE")),
    ),
}
OUTCOME = {name: ROLLED_BACK if name == "rollback" else PROMOTED for name in CHAINS}
# chains killed only before GATED roll out in one step (100%): the same end, sooner
ONE_STEP = {
    "training",
    "fit-step-done",
    "model-registered",
    "challenger-alias-set",
    "register-step-done",
}


# --- helpers --------------------------------------------------------------------------------


def routes(client: Any) -> set[tuple[int, int, str]]:
    return {(r.version, r.weight, r.variant) for r in client.deployments.get("api").routes}


def finished(client: Any) -> bool:
    state = client.loop.state("api")
    return state.state is S.STABLE and bool(state.data.get("last_outcome"))


def drive(
    client: Any, proc: subprocess.Popen[bytes], *, canary_errors: bool, until_finished: bool
) -> tuple[str, bool]:
    """Feed traffic and check every split while ``proc`` runs; returns its stderr and
    whether it ended in time. ``until_finished``: once it has taken the lease and the loop
    is back in STABLE, stop it with SIGTERM."""
    deadline = time.monotonic() + DEADLINE
    ended = took_over = False
    idle_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                ended = True
                break
            serve_now(client, canary_errors=canary_errors)
            seen = routes(client)
            assert {v for v, _, _ in seen} <= {1, 2}, (
                f"traffic goes to {sorted(seen)}: a second version was registered "
                f"({[v.version for v in client.models.versions('tiny')]})"
            )
            assert seen in ALLOWED_SPLITS, f"a half-moved split: {sorted(seen)}"
            state = client.loop.state("api")
            took_over = took_over or f":{proc.pid}:" in (state.lease_owner or "")
            if until_finished and took_over and finished(client):
                ended = True
                break
            if not finished(client):
                idle_since = time.monotonic()
            elif not until_finished and time.monotonic() - idle_since > 5:
                break  # back in STABLE for 5 s: whatever it waited for will not come
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    return err.decode(errors="replace"), ended


def policy_text(tmp_path: Path, outcome: str, *, one_step: bool) -> str:
    text = cli_policy(tmp_path).read_text()
    if one_step:
        text = text.replace("steps: [10, 50, 100]", "steps: [100]")
    text = text.replace("min_requests: 100", "min_requests: 5")
    text = text.replace("interval: 5m", "interval: 1s")
    if outcome == PROMOTED:  # a slow analysis now and then must not roll the canary back
        text = text.replace("failed_checks_limit: 1", "failed_checks_limit: 5")
    return text


def add_monitor(client: Any) -> None:
    """A monitor on tiny/1's data, so a promotion has a monitor to move."""
    from ctloop.monitoring.profiles import ReferenceProfile

    profile = ReferenceProfile.from_frame(frame(1)[FEATURES]).to_dict()
    rules = [{"kind": "drift_share_above", "threshold": 0.25}]
    client.monitors.create(
        "api", reference="tiny/1", profile=profile, window="last:500", rules=rules
    )


def where(client: Any) -> str:
    state = client.loop.state("api")
    return (
        f"{state.state.value} step={state.step} candidate={state.candidate_version} "
        f"revision={state.revision} routes={sorted(routes(client))}"
    )


# --- the test -------------------------------------------------------------------------------


def nothing_twice(client: Any, story: str) -> list[Any]:
    """What must hold at every moment: events contiguous, one retrain, one registration,
    one fitted model, one completed pipeline run, at most one promotion or rollback."""
    events = client.loop.events("api", limit=10_000)
    kinds = [e.kind for e in events]
    story = f"{story}; events: {kinds}"
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), story
    for kind in ("triggered", "training_started", "gate_passed", "promoted", "rolled_back"):
        assert kinds.count(kind) <= 1, f"{kind} {kinds.count(kind)} times; {story}"
    versions = [v.version for v in client.models.versions("tiny")]
    assert versions in ([1], [1, 2]), f"registered more than once: versions {versions}; {story}"
    runs = client.pipelines.list("tiny-training")
    completed = [r.id for r in runs if r.status.value == "COMPLETED"]
    assert len(completed) <= 1, f"{len(completed)} completed pipeline runs; {story}"
    fits = [s for r in runs for s in r.steps if s.name == "fit" and s.status.value == "COMPLETED"]
    assert len(fits) <= 1, f"the model was fitted {len(fits)} times; {story}"
    return events


@pytest.mark.parametrize("chain", list(CHAINS))
def test_killed_at_each_point_the_loop_carries_on_and_does_nothing_twice(
    world: dict[str, Any],  # noqa: F811
    tmp_path: Path,
    chain: str,
) -> None:
    client = world["client"]
    outcome = OUTCOME[chain]
    rollback = outcome == ROLLED_BACK
    add_monitor(client)
    text = policy_text(tmp_path, outcome, one_step=chain in ONE_STEP)
    client.loop.set_policy("api", source=text, policy=parse_policy(text).to_dict())
    request_manual(client, "api", f"kill -9 test: {chain}")
    env = {**os.environ, "CTLOOP_STORE": str(tmp_path / "store")}
    args = ["loop", "run", "api", "--interval", "0.1s"]

    kills: list[str] = []
    for point in CHAINS[chain]:
        # a short lease: the next controller waits for it to run out, as after any crash
        killed = subprocess.Popen(
            [sys.executable, KILLPOINT, *args, "--lease", "1s"],
            env={**env, "CTLOOP_KILLPOINT": point.spec()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        err, _ = drive(client, killed, canary_errors=rollback, until_finished=False)
        story = f"kills so far: {kills}"
        assert killed.returncode == -signal.SIGKILL, (
            f"kill point {point.id} never reached (exit {killed.returncode}, "
            f"now {where(client)}); {story}: {err[-2000:]}"
        )
        assert f"KILLPOINT {point.target}" in err and "Traceback" not in err, err[-2000:]
        kills.append(f"{point.id} -> {where(client)}")
        nothing_twice(client, f"kills: {kills}")

    plain = subprocess.Popen(
        [sys.executable, "-m", "ctloop", *args, "--lease", "2s"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    err, in_time = drive(client, plain, canary_errors=rollback, until_finished=True)
    assert in_time and finished(client), (
        f"after kills {kills}, the loop did not get back to STABLE in {DEADLINE:g}s: "
        f"stuck at {where(client)}; {err[-2000:]}"
    )
    assert plain.returncode == 0 and "Traceback" not in err, err[-2000:]

    story = f"kills: {kills}"
    events = nothing_twice(client, story)
    kinds = [e.kind for e in events]
    story = f"{story}; events: {kinds}"
    assert client.loop.state("api").data["last_outcome"] == outcome, story
    for kind in ("triggered", "training_started", "gate_passed"):
        assert kinds.count(kind) == 1, story
    assert [v.version for v in client.models.versions("tiny")] == [1, 2], story
    # the candidate the canary judged came from a pipeline run of this retrain
    gated = next(e for e in events if e.kind == "gate_passed")
    run = client.pipelines.get(gated.links["pipeline_run_id"])
    assert run.run_id == gated.links["tracking_run_id"], story
    # (a cached register step gives back the version an earlier run of the intent registered)
    tracking = {r.run_id for r in client.pipelines.list("tiny-training")}
    assert client.models.get_version(("tiny", 2)).run_id in tracking, story
    started = next(e for e in events if e.kind == "training_started")
    intent = client.runs.get(run.run_id).tags.get(INTENT_TAG)
    assert intent in (None, started.links["intent"]), story
    lineage = client.models.lineage(("tiny", 2))
    inputs = [(i.dataset, i.version) for i in lineage.inputs]
    assert inputs == [("tiny", 2)], f"tiny/2 lineage {inputs}, not [tiny@2]; {story}"
    if rollback:
        assert kinds.count("rolled_back") == 1 and "promoted" not in kinds, story
        assert routes(client) == {(1, 100, "champion")}, story
        assert client.models.get("tiny").aliases["champion"] == 1, story
        assert REJECTED_TAG in client.models.get_version(("tiny", 2)).tags, story
        assert client.monitors.get("api").reference == "tiny/1", story
    else:
        assert kinds.count("promoted") == 1 and "rolled_back" not in kinds, story
        assert routes(client) == {(2, 100, "champion")}, story
        assert client.models.get("tiny").aliases["champion"] == 2, story
        promoted = next(e for e in events if e.kind == "promoted")
        assert promoted.links["previous_champion"] == "tiny/1", story
        moved = promoted.evidence.get("monitor")
        assert client.monitors.get("api").reference == "tiny/2", f"{moved}; {story}"
    client.loop.acquire_lease("api", "after the test", 60)  # the plain one gave it back
