"""The controller: one deployment's continuous-training loop, one step at a time.

::

    STABLE ─trigger─▶ TRIGGERED ─▶ TRAINING ─gate passed─▶ GATED ─▶ CANARY(0) ─▶ … ─▶ CANARY(n)
                                       │ gate failed                │ analysis failed   │ all passed
                                       ▼                            ▼                   ▼
                                   REJECTED                    ROLLED_BACK          PROMOTED
                                       └──────────────┬─────────────┴───────────────────┘
                                                      ▼
                                                   STABLE

:meth:`Controller.reconcile_once` takes the lease, reads the state and does what the state
asks, each change as one compare-and-set ``client.loop.transition`` with its event. It
uses only the public client API, as a user would. Every external action is idempotent or
detected on the way back in, so the controller can be killed at any moment and a fresh
one carries on (see ``docs/loop.md``, "The controller"):

- the training intent (data, params, an id) is stored *before* the pipeline runs, and the
  pipeline run carrying it out is found again (:mod:`ctloop.loop.training`): never trained
  twice;
- traffic is set *before* the transition recording it; on the way back in, the
  deployment's actual split says how far the last step got.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.text import format_duration
from ctloop.errors import Conflict, CtloopError, InvalidInput, NotFound
from ctloop.loop.canary import REJECTED_TAG, RolloutActions, routes_of, weights_of
from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName
from ctloop.loop.events import (
    EVENT_ANALYSIS,
    EVENT_CANARY_STEP,
    EVENT_NOTE,
    EVENT_TRIGGER_IGNORED,
    EVENT_TRIGGERED,
)
from ctloop.loop.training import TrainingSteps

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.loop.canary import CanaryAnalysis
    from ctloop.loop.policy import Policy

__all__ = ["REJECTED_TAG", "Controller", "controller_for", "run_controllers"]

log = logging.getLogger("ctloop.loop")

S = LoopStateName
_MAX_STEPS_PER_ROUND = 8


def _default_owner() -> str:
    return f"controller@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _parse(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


class Controller(TrainingSteps, RolloutActions):
    """Drive one deployment's loop under ``policy`` (see the module docstring).

    Args:
        client: the store, through its public API.
        deployment: the deployment's name.
        policy: its policy.
        owner: this controller's lease owner name (default ``controller@host:pid:random``).
        clock: a callable returning the time now, timezone-aware (default: the real UTC
            clock; the demo passes a simulated one). Steps, intervals and log windows
            are judged by it.
        lease_seconds: how long the lease lasts; it is renewed every round and while a
            pipeline runs.
    """

    def __init__(
        self,
        client: Client,
        deployment: str,
        policy: Policy,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        self.client = client
        self.deployment = deployment
        self.policy = policy
        self.owner = owner or _default_owner()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lease_seconds = lease_seconds

    def __repr__(self) -> str:
        return f"<Controller {self.deployment} owner={self.owner}>"

    # --- the round ------------------------------------------------------------------------

    def reconcile_once(self) -> list[LoopEvent]:
        """Take the lease and the next steps the state asks for; return the events written.

        Steps that need no waiting follow each other in one round (TRIGGERED → TRAINING →
        GATED → CANARY 0); the round ends when a step has to wait (a canary interval, a
        trigger), when the loop is back in STABLE, or on a ``Conflict`` (someone else
        acted: the next round reads the state again). Without the lease it does nothing.
        """
        try:
            self.renew_lease()
        except Conflict as exc:
            log.info("%s: no lease: %s", self.deployment, exc)
            return []
        written: list[LoopEvent] = []
        for _ in range(_MAX_STEPS_PER_ROUND):
            state = self.client.loop.state(self.deployment)
            try:
                event = self.step(state)
            except Conflict as exc:
                log.info("%s: %s; reading the state again next round", self.deployment, exc)
                break
            if event is None:
                break
            written.append(event)
            if event.to_state is S.STABLE or event.kind == EVENT_NOTE:
                break
        return written

    def step(self, state: LoopState) -> LoopEvent | None:
        """Do what ``state`` asks for now (at most one transition); None: nothing to do."""
        handler = {
            S.STABLE: self._stable,
            S.TRIGGERED: self._triggered,
            S.TRAINING: self._training,
            S.GATED: self._gated,
            S.CANARY: self._canary,
        }.get(state.state, self._finished)
        return handler(state)

    def release(self) -> None:
        """Give the lease back (safe when not held)."""
        try:
            self.client.loop.release_lease(self.deployment, self.owner)
        except CtloopError as exc:  # on the way out: never mask the reason we stop
            log.warning("%s: could not release the lease: %s", self.deployment, exc)

    # --- STABLE -> TRIGGERED --------------------------------------------------------------

    def _stable(self, state: LoopState) -> LoopEvent | None:
        from ctloop.loop.triggers import (
            blocked_by_guards,
            decision_links,
            evaluate_triggers,
            trigger_events,
        )

        now = self.clock()
        events = trigger_events(self.client, self.deployment)
        if blocked_by_guards(self.policy, now=now, events=events, state=state) is not None:
            return None
        decisions = evaluate_triggers(
            self.client, self.deployment, self.policy, now=now, events=events
        )
        if not decisions:
            return None
        first = decisions[0]
        more = f" (also: {', '.join(d.kind for d in decisions[1:])})" if decisions[1:] else ""
        evidence = {"trigger": first.kind, **first.evidence}
        if decisions[1:]:
            evidence["also"] = [{"kind": d.kind, "summary": d.summary} for d in decisions[1:]]
        return self._move(
            state,
            S.TRIGGERED,
            kind=EVENT_TRIGGERED,
            summary=f"{first.kind} trigger: {first.summary}{more}",
            data={"trigger": first.kind, "triggered_at": now.isoformat()},
            evidence=evidence,
            links=decision_links(decisions),
        )

    # --- GATED -> CANARY(0) ---------------------------------------------------------------

    def _step_text(self, state: LoopState, step: int) -> str:
        steps = self.policy.rollout.steps
        return f"canary step {step + 1}/{len(steps)} ({steps[step].traffic:g}%)"

    def _gated(self, state: LoopState) -> LoopEvent:
        return self._enter_step(state, 0, "the gate passed", {})

    def _enter_step(
        self, state: LoopState, step: int, why: str, evidence: dict[str, Any]
    ) -> LoopEvent:
        now = self.clock()
        cand, champ = state.candidate_version, state.data["champion_version"]
        assert cand is not None
        split = self.split(state, step)
        what = self._step_text(state, step)
        reason = f"ctloop loop: {what} of {state.data['model']}/{cand} ({why})"
        deployment = self._set_traffic(split, reason)
        share = {v: w for v, w, _ in split}
        return self._move(
            state,
            S.CANARY,
            kind=EVENT_CANARY_STEP,
            summary=f"{why}: {what}: {cand} gets {share[cand]}% of traffic, "
            f"champion {champ} {share.get(champ, 0)}%",
            step=step,
            candidate=cand,
            data={
                **state.data,
                "step_started_at": now.isoformat(),
                # the store's time the split took effect: the log rows are read from it
                "split_at": deployment.updated_at.isoformat(),
                "last_analysis_at": now.isoformat(),
                "failed_checks": int(state.data.get("failed_checks", 0)),
            },
            evidence=evidence,
            links={"deployment_revision": deployment.revision, "model_version": f"{cand}"},
        )

    # --- CANARY ---------------------------------------------------------------------------

    def _canary(self, state: LoopState) -> LoopEvent | None:
        assert state.step is not None and state.candidate_version is not None
        step, cand = state.step, state.candidate_version
        champ = int(state.data["champion_version"])
        steps = self.policy.rollout.steps
        deployment = self.client.deployments.get(self.deployment)
        actual = routes_of(deployment)
        if actual == [(cand, 100, "champion")] or self._alias_is(cand):
            return self._promote(state, None, "promotion was under way")
        if actual == [(champ, 100, "champion")]:
            return self._roll_back(state, None, "the champion has all traffic again", touch=False)
        if step + 1 < len(steps) and actual == self.split(state, step + 1):
            return self._enter_step(state, step + 1, "resumed after a restart", {})
        if actual != self.split(state, step):
            return self._roll_back(
                state,
                None,
                f"traffic was changed by hand to {' '.join(weights_of(actual))}; the canary "
                "stops and traffic is left as it is",
                touch=False,
            )
        interrupted = self._during_canary(state)
        if interrupted is not None:
            return interrupted
        now = self.clock()
        rollout = steps[step]
        if now < _parse(state.data["last_analysis_at"]) + rollout.interval:
            return None
        analysis = self._analyse(state, champ, cand, rollout.min_requests)
        evidence = analysis.to_dict()
        data = {**state.data, "last_analysis_at": now.isoformat()}
        summary = analysis.summary()
        if analysis.failed:
            failed = int(state.data.get("failed_checks", 0)) + 1
            limit = self.policy.rollout.failed_checks_limit
            if failed >= limit:
                return self._roll_back(state, analysis, f"{failed}/{limit} analyses failed")
            summary = f"{summary} ({failed}/{limit} failed analyses)"
            data["failed_checks"] = failed
        elif analysis.enough_requests:
            if step + 1 < len(steps):
                return self._enter_step(state, step + 1, summary, evidence)
            return self._promote(state, analysis, summary)
        # failed below the limit, or too few requests yet: record the analysis and wait
        return self._move(
            state,
            S.CANARY,
            kind=EVENT_ANALYSIS,
            summary=summary,
            step=step,
            candidate=cand,
            data=data,
            evidence=evidence,
        )

    def _during_canary(self, state: LoopState) -> LoopEvent | None:
        """Triggers that fire during a canary under ``guards.during_canary``: ``defer``
        leaves them for STABLE; ``ignore`` spends them in a ``trigger_ignored`` event;
        ``restart`` rolls the canary back (the other guards still apply)."""
        from ctloop.loop.triggers import (
            blocked_by_guards,
            decision_links,
            evaluate_triggers,
            trigger_events,
        )

        mode = self.policy.guards.during_canary
        if mode == "defer":
            return None
        now = self.clock()
        events = trigger_events(self.client, self.deployment)
        if mode == "restart" and blocked_by_guards(
            self.policy, now=now, events=events, state=state
        ):
            return None
        decisions = evaluate_triggers(
            self.client, self.deployment, self.policy, now=now, events=events
        )
        if not decisions:
            return None
        fired = "; ".join(f"{d.kind}: {d.summary}" for d in decisions)
        if mode == "restart":
            return self._roll_back(state, None, f"during_canary: restart: {fired}")
        return self.client.loop.record(
            self.deployment,
            kind=EVENT_TRIGGER_IGNORED,
            summary=f"during_canary: ignore: dropped {fired}",
            evidence={"triggers": [{"kind": d.kind, **d.evidence} for d in decisions]},
            links=decision_links(decisions),
            owner=self.owner,
        )

    def _alias_is(self, version: int) -> bool:
        try:
            model = self.client.models.get(self.client.deployments.get(self.deployment).model)
        except NotFound:
            return False
        return model.aliases.get("champion") == version

    def _analyse(
        self, state: LoopState, champ: int, cand: int, min_requests: int
    ) -> CanaryAnalysis:
        from ctloop.loop.canary import analyse

        # The rows are stamped by the servers' clocks and the split by the store's, so the
        # window is read by those, from the split's change on; the controller's own clock
        # (simulated in tests and the demo) only paces the analyses.
        since = _parse(state.data.get("split_at") or state.data["step_started_at"])
        predictions = self.client.deployments.predictions(self.deployment, since=since)
        joined = None
        if self.policy.rollout.checks.metric is not None:
            joined = self.client.deployments.joined(self.deployment, since=since)
        return analyse(
            predictions,
            champion_version=champ,
            canary_version=cand,
            checks=self.policy.rollout.checks,
            min_requests=min_requests,
            joined=joined,
        )

    # --- PROMOTED | ROLLED_BACK | REJECTED -> STABLE --------------------------------------

    def _finished(self, state: LoopState) -> LoopEvent:
        cooldown = self.policy.guards.cooldown
        ended = state.state.value
        return self._move(
            state,
            S.STABLE,
            kind=EVENT_NOTE,
            summary=f"back to STABLE after {ended}; no retrain for "
            f"{format_duration(cooldown)} (cooldown)",
            data={"last_outcome": ended, "last_candidate": state.candidate_version},
            links={"model_version": state.candidate_version},
        )

    # --- running --------------------------------------------------------------------------

    def run(
        self, *, interval: float, once: bool = False, stop: threading.Event | None = None
    ) -> None:
        """Reconcile every ``interval`` seconds until ``stop`` is set or SIGTERM/SIGINT
        arrives (``once``: one round); the lease is released on the way out."""
        run_controllers([self], interval=interval, once=once, stop=stop)


def controller_for(
    client: Client,
    deployment: str,
    policy_file: str | Path | None = None,
    *,
    lease_seconds: float = 60.0,
) -> Controller:
    """A controller for ``deployment``: under ``policy_file``, which is checked (its
    ``deployment`` must match, its pipeline must import) and stored as the deployment's
    policy; or, without one, under the policy stored before.

    Raises:
        InvalidInput: a bad policy file, or one written for another deployment.
        NotFound: no such file, or no stored policy.
    """
    from ctloop.loop.policy import load_policy, parse_policy

    if policy_file is None:
        stored = client.loop.get_policy(deployment)
        policy = parse_policy(stored.policy, source=f"the stored policy of {deployment}")
        return Controller(client, deployment, policy, lease_seconds=lease_seconds)
    policy = load_policy(policy_file)
    if policy.deployment is not None and policy.deployment != deployment:
        raise InvalidInput(
            f"{policy_file} is the policy of deployment '{policy.deployment}', not "
            f"'{deployment}'; run: ctloop loop run {policy.deployment} --policy {policy_file}"
        )
    policy.check_imports(source=str(policy_file))
    source = Path(policy_file).read_text(encoding="utf-8")
    client.loop.set_policy(deployment, source=source, policy=policy.to_dict())
    return Controller(client, deployment, policy, lease_seconds=lease_seconds)


def run_controllers(
    controllers: Sequence[Controller],
    *,
    interval: float,
    once: bool = False,
    stop: threading.Event | None = None,
    on_events: Callable[[Controller, list[LoopEvent]], None] | None = None,
) -> None:
    """Run several controllers round-robin in this thread (``ctloop loop run --all``).

    SIGTERM and SIGINT (in the main thread) set ``stop``: the round in progress finishes
    (a pipeline run in progress runs to its end), then every lease is released. A store
    error in one controller is logged and the others carry on (with ``once``, it is raised).
    """
    stop = stop or threading.Event()
    restore: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            restore[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set():
            for controller in controllers:
                if stop.is_set():
                    break
                try:
                    events = controller.reconcile_once()
                except CtloopError as exc:
                    if once:
                        raise
                    log.warning("%s: %s", controller.deployment, exc)
                    continue
                if on_events is not None:
                    on_events(controller, events)
            if once:
                break
            stop.wait(interval)
    finally:
        for controller in controllers:
            controller.release()
        for sig, handler in restore.items():
            signal.signal(sig, handler)
