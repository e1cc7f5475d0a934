"""What a retrain learns from, how it is run, and how its pipeline run is found again.

The controller decides the training data and the pipeline's params *before* training
starts and stores them in its state as an **intent** (an id, the params, the wall-clock
time it was made). The pipeline run that carries out an intent is found again by what
cannot be forged by accident: a run of the same pipeline, started after the intent was
made, with exactly the intent's params (the dataset is pinned to a concrete version, so
the params differ between retrains on different data). Its tracking run is created tagged
``ctloop.loop.intent=<id>``; a run tagged with another intent never matches.
So a controller that restarts in TRAINING reuses a finished run instead of training twice.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError, InvalidInput
from ctloop.loop._parts import ControllerPart
from ctloop.loop.canary import REJECTED_TAG
from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName
from ctloop.loop.events import (
    EVENT_GATE_FAILED,
    EVENT_GATE_PASSED,
    EVENT_NOTE,
    EVENT_REJECTED,
    EVENT_TRAINING_STARTED,
)

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.client import Client
    from ctloop.loop.policy import Policy
    from ctloop.pipelines.definition import Pipeline
    from ctloop.pipelines.entities import PipelineRun
    from ctloop.serving.entities import Deployment

__all__ = [
    "INTENT_TAG",
    "MAX_ABANDONED_RUNS",
    "MAX_TRAINING_ATTEMPTS",
    "TrainingSteps",
    "TrainingData",
    "TrainingOutcome",
    "find_intent_runs",
    "outcome_of",
    "resolve_training_data",
    "run_pipeline",
    "training_params",
]

#: The tracking-run tag naming the intent a pipeline run carried out.
INTENT_TAG = "ctloop.loop.intent"
#: Failed pipeline runs of one intent before the retrain is given up (REJECTED).
MAX_TRAINING_ATTEMPTS = 3
#: Runs of one intent cut short because their controller died (killed, out of memory, a
#: lost machine) before the retrain is given up: more than real failures, since a crash is
#: usually not the pipeline's fault, but bounded, since a crash loop can be.
MAX_ABANDONED_RUNS = 10
ABANDONED = "abandoned: its controller stopped"
S = LoopStateName
_GATE_STEP = "ctloop.pipelines.builtin:gate"
_REGISTER_STEP = "ctloop.pipelines.builtin:register"


@dataclass(frozen=True)
class TrainingData:
    """The data a retrain uses: a concrete dataset reference and how it was chosen."""

    dataset: str | None
    evidence: dict[str, Any] = field(default_factory=dict)


def _label_column(policy: Policy, frame: pd.DataFrame | None, features: list[str]) -> str:
    target = policy.pipeline.params.get("target")
    if isinstance(target, str):
        return target
    if frame is not None:
        extra = [c for c in frame.columns if c not in features]
        if len(extra) == 1:
            return str(extra[0])
    return "label"


def _feedback_rows(
    client: Client, deployment: str, policy: Policy, *, now: datetime
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Labelled rows of the prediction log over the feedback window (None: too few)."""
    feedback = policy.training_data.feedback if policy.training_data else None
    assert feedback is not None
    source = feedback.deployment or deployment
    since = now - feedback.window
    joined = client.deployments.joined(source, since=since, until=now)
    if "label" in joined.columns and "status" in joined.columns:
        joined = joined[joined["label"].notna() & (joined["status"] == "ok")]
    else:
        joined = joined.iloc[0:0]
    evidence = {
        "feedback_deployment": source,
        "feedback_since": since.isoformat(),
        "feedback_until": now.isoformat(),
        "labelled_rows": len(joined),
        "min_labels": feedback.min_labels,
    }
    if len(joined) < feedback.min_labels:
        return None, evidence
    return joined, evidence


def resolve_training_data(
    client: Client, deployment: str, policy: Policy, *, now: datetime
) -> TrainingData:
    """Pin the policy's training data to one dataset version, now.

    ``dataset`` alone: the reference resolved (``churn@latest`` → ``churn@7``). Feedback:
    the logged predictions joined with their labels over ``window`` (``ok`` rows only),
    features without their ``f.`` prefix plus the label, stored as the next version of
    dataset ``<deployment>-feedback`` (so lineage shows it). Both: the dataset's rows with
    the feedback rows appended (columns either lacks are null), stored as the next
    version of ``<deployment>-training``. The label column is ``pipeline.params.target``
    if given, else the one dataset column that is not a logged feature, else ``label``.
    Too few labels: the feedback is left out (and the evidence says so).

    Raises:
        InvalidInput: there is no data to train on (no dataset, and too few labels).
    """
    import pandas as pd

    from ctloop.validation.frames import load_frame

    spec = policy.training_data
    if spec is None:
        return TrainingData(None, {"source": "the pipeline's own default data"})
    evidence: dict[str, Any] = {}
    base = client.datasets.resolve(spec.dataset) if spec.dataset else None
    if base is not None:
        evidence.update({"dataset": f"{base.name}@{base.version}", "dataset_rows": base.row_count})
    if spec.feedback is None:
        assert base is not None
        return TrainingData(f"{base.name}@{base.version}", {"source": "dataset", **evidence})
    rows, fb_evidence = _feedback_rows(client, deployment, policy, now=now)
    evidence.update(fb_evidence)
    if rows is None:
        if base is None:
            raise InvalidInput(
                f"only {fb_evidence['labelled_rows']} labelled predictions of "
                f"'{fb_evidence['feedback_deployment']}' in the feedback window "
                f"(training_data.feedback.min_labels is {fb_evidence['min_labels']}) and no "
                "training_data.dataset: nothing to train on"
            )
        evidence["source"] = "dataset (too few feedback labels)"
        return TrainingData(f"{base.name}@{base.version}", evidence)
    features = [c for c in rows.columns if c.startswith("f.")]
    frame = load_frame(client, base) if base is not None else None
    plain = [c[2:] for c in features]
    label = _label_column(policy, frame, plain)
    fresh = rows[features].rename(columns=lambda c: c[2:])
    fresh[label] = rows["label"].to_numpy()
    if frame is not None:
        fresh = pd.concat([frame, fresh], ignore_index=True)
        name, source = f"{deployment}-training", "dataset + feedback"
    else:
        name, source = f"{deployment}-feedback", "feedback"
    with tempfile.TemporaryDirectory(prefix="ctloop-loop-") as tmp:
        path = Path(tmp) / f"{name}.parquet"
        fresh.to_parquet(path, index=False)
        version = client.datasets.add(
            path, name=name, description=f"training data of the loop of {deployment}", pointer=False
        )
    evidence.update({"source": source, "rows": len(fresh), "label_column": label})
    return TrainingData(f"{version.name}@{version.version}", evidence)


def training_params(pipeline: Pipeline, policy: Policy, data: TrainingData) -> dict[str, Any]:
    """The pipeline's params for a retrain, defaults applied: the policy's params, the
    pinned ``dataset``, the policy's ``gate`` and ``holdout`` (``{fraction, split, seed}``).
    A pipeline without a ``holdout`` param splits as it always does; a policy that sets a
    holdout other than the default then says so."""
    from ctloop.loop.policy import Holdout

    params: dict[str, Any] = dict(policy.pipeline.params)
    takes = pipeline.signature.parameters
    if data.dataset is not None:
        if "dataset" not in takes:
            raise InvalidInput(
                f"pipeline {pipeline.name!r} has no 'dataset' param, so the policy's "
                "training_data cannot be passed to it"
            )
        params["dataset"] = data.dataset
    if policy.gate is not None:
        if "gate" not in takes:
            raise InvalidInput(
                f"pipeline {pipeline.name!r} has no 'gate' param, so the policy's gate "
                "cannot be passed to it"
            )
        params["gate"] = policy.gate.to_dict()
    holdout = Holdout() if policy.training_data is None else policy.training_data.holdout
    if "holdout" in takes:
        params.setdefault("holdout", holdout.to_dict())
    elif holdout != Holdout():
        raise InvalidInput(
            f"pipeline {pipeline.name!r} has no 'holdout' param, so the policy's "
            "training_data.holdout cannot be passed to it; add a param `holdout: dict | None = "
            "None` (see examples/churn/pipeline.py) or leave holdout out of the policy"
        )
    return _canonical(pipeline.bind_params(params))


def _canonical(value: Any) -> Any:
    """JSON round trip: what the store gives back, so params compare equal."""
    return json.loads(json.dumps(value, sort_keys=True))


def find_intent_runs(client: Client, pipeline: str, intent: Mapping[str, Any]) -> list[PipelineRun]:
    """The pipeline runs carrying out ``intent``, newest first (see the module docstring)."""
    wanted = json.dumps(intent["params"], sort_keys=True)
    started_ms = int(intent["started_ms"])
    found = []
    for run in client.pipelines.list(pipeline=pipeline, limit=200):
        if run.start_time.timestamp() * 1000 < started_ms - 1000:
            break  # newest first: the rest are older than the intent
        if json.dumps(_canonical(run.params), sort_keys=True) != wanted:
            continue
        if run.run_id is not None:
            tag = client.runs.get(run.run_id).tags.get(INTENT_TAG)
            if tag is not None and tag != intent["id"]:
                continue
        found.append(run)
    return found


def run_pipeline(
    client: Client,
    pipeline: Pipeline,
    intent: Mapping[str, Any],
    *,
    executor: str,
    keep_alive: Callable[[], None],
    every: float,
) -> PipelineRun:
    """Run ``pipeline`` for ``intent`` in a thread, its tracking run tagged with the
    intent from the start, calling ``keep_alive`` (the lease renewal) every ``every``
    seconds until it ends. A failed run is returned, not raised."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["run"] = pipeline.run(
                executor,
                client=client,
                raise_on_failure=False,
                echo=False,
                params=intent["params"],
                run_tags={INTENT_TAG: str(intent["id"])},
            )
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"ctloop-train-{intent['id'][:8]}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(timeout=every)
        keep_alive()
    if "error" in box:
        raise box["error"]
    run: PipelineRun = box["run"]
    return run


@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished pipeline run produced, for the controller.

    Attributes:
        registered: the new version of ``model``, or None when nothing was registered.
        model: the registered model's name (the register step's ``model_name``).
        gate: the gate step's ``GateResult.to_dict()``, or None without a gate step.
        error: why the run failed, or None.
    """

    registered: int | None
    model: str | None
    gate: dict[str, Any] | None
    error: str | None = None


def outcome_of(client: Client, run: PipelineRun) -> TrainingOutcome:
    """Read the gate decision and the registered version out of a finished run."""
    run = client.pipelines.get(run.id)
    gate: dict[str, Any] | None = None
    registered: int | None = None
    model: str | None = None
    for s in run.steps:
        if s.step == _GATE_STEP and s.status.succeeded:
            gate = run.output(s.name)
        if s.step == _REGISTER_STEP:
            model = s.params.get("model_name")
            if s.status.succeeded:
                done = run.output(s.name)
                if done.get("registered"):
                    registered = int(done["version"])
    error = None
    if run.status.value == "FAILED":
        failed = [s for s in run.steps if s.error]
        last = (failed[0].error or "").strip().splitlines() if failed else []
        error = f"step {failed[0].name!r}: {last[-1]}" if last else (run.error or "failed")
    return TrainingOutcome(registered, model, gate, error)


def orphaned_registration(
    client: Client, runs: list[PipelineRun]
) -> tuple[PipelineRun, TrainingOutcome] | None:
    """A version registered by a run whose controller died before the run completed (often
    before the register step recorded it): the model is in the registry, but the run never
    finished. Adopting it keeps
    the retrain from registering a second version. The register step only registers after
    the gate passed, so the gate step's output is there."""
    from ctloop.errors import NotFound

    for run in runs:
        step = next((s for s in run.steps if s.step == _REGISTER_STEP), None)
        name = None if step is None else step.params.get("model_name")
        if run.run_id is None or not isinstance(name, str):
            continue
        try:
            versions = client.models.versions(name)
        except NotFound:
            continue
        version = next((v for v in versions if v.run_id == run.run_id), None)
        if version is None:
            continue
        gate = next(
            (run.output(s.name) for s in run.steps if s.step == _GATE_STEP and s.status.succeeded),
            None,
        )
        return run, TrainingOutcome(version.version, name, gate)
    return None


def _gate_line(gate: dict[str, Any] | None) -> str:
    if not gate:
        return "no gate result"
    checks = gate.get("checks") or []
    shown = [c for c in checks if c.get("status") == "failed"] or checks
    text = "; ".join(str(c.get("message") or c.get("name")) for c in shown[:3])
    return text or ("gate passed" if gate.get("passed") else "gate failed")


class TrainingSteps(ControllerPart):
    """The controller's TRIGGERED and TRAINING states (a part of
    :class:`~ctloop.loop.controller.Controller`, kept here beside what it calls)."""

    # --- TRIGGERED -> TRAINING ------------------------------------------------------------

    def _triggered(self, state: LoopState) -> LoopEvent:
        now = self.clock()
        try:
            pipeline = self.policy.pipeline.resolve()
            chosen = resolve_training_data(self.client, self.deployment, self.policy, now=now)
            params = training_params(pipeline, self.policy, chosen)
        except CtloopError as exc:
            return self._reject(state, f"cannot start the retrain: {exc}", {"error": str(exc)})
        intent: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "started_ms": int(time.time() * 1000),
            "pipeline": pipeline.name,
            "executor": self.policy.pipeline.executor,
            "params": params,
        }
        on = chosen.dataset or "its default data"
        evidence = {**chosen.evidence, "dataset": chosen.dataset, "params": params}
        return self._move(
            state,
            S.TRAINING,
            kind=EVENT_TRAINING_STARTED,
            summary=f"retraining with pipeline {pipeline.name} on {on} (intent {intent['id'][:8]})",
            data={**state.data, "intent": intent, "training_started_at": now.isoformat()},
            evidence=evidence,
            links={"intent": intent["id"], "dataset": chosen.dataset},
        )

    # --- TRAINING -> GATED | REJECTED -----------------------------------------------------

    def _training(self, state: LoopState) -> LoopEvent | None:
        from ctloop.pipelines.entities import PipelineStatus

        intent = state.data["intent"]
        pipeline = self.policy.pipeline.resolve()
        runs = find_intent_runs(self.client, pipeline.name, intent)
        done = next((r for r in runs if r.status is PipelineStatus.COMPLETED), None)
        orphan = orphaned_registration(self.client, runs) if done is None else None
        if orphan is not None:
            done, outcome = orphan
            self._abandon_running(runs)
            return self._judge(state, done, outcome)
        if done is None:
            self._abandon_running(runs)
            runs = find_intent_runs(self.client, pipeline.name, intent)
            abandoned = sum(1 for r in runs if r.error == ABANDONED)
            failed = len(runs) - abandoned
            if failed >= MAX_TRAINING_ATTEMPTS or abandoned >= MAX_ABANDONED_RUNS:
                return self._reject(
                    state,
                    f"training failed {failed} times and was cut short {abandoned} times for "
                    f"intent {intent['id'][:8]}; giving up",
                    {"attempts": failed, "abandoned": abandoned},
                    links={"pipeline_run_ids": [r.id for r in runs]},
                )
            done = run_pipeline(
                self.client,
                pipeline,
                intent,
                executor=str(intent["executor"]),
                keep_alive=self.renew_lease,
                every=max(1.0, self.lease_seconds / 3),
            )
            if done.status is not PipelineStatus.COMPLETED and failed + 1 < MAX_TRAINING_ATTEMPTS:
                outcome = outcome_of(self.client, done)
                return self.client.loop.record(
                    self.deployment,
                    kind=EVENT_NOTE,
                    summary=f"training attempt {failed + 1} failed ({outcome.error}); "
                    "retrying next round",
                    evidence={"error": outcome.error, "attempt": failed + 1},
                    links={"pipeline_run_id": done.id},
                    owner=self.owner,
                )
        return self._judge(state, done, outcome_of(self.client, done))

    def _abandon_running(self, runs: list[PipelineRun]) -> None:
        from ctloop.pipelines.entities import PipelineStatus

        for r in runs:
            if r.status is PipelineStatus.RUNNING:
                # We hold the lease, so whoever ran it stopped renewing it: it is dead.
                self.client.pipelines.end_run(r.id, PipelineStatus.FAILED, ABANDONED)

    def _judge(self, state: LoopState, run: PipelineRun, outcome: TrainingOutcome) -> LoopEvent:
        links: dict[str, Any] = {"pipeline_run_id": run.id, "tracking_run_id": run.run_id}
        evidence: dict[str, Any] = {"gate": outcome.gate}
        if outcome.error is not None:
            evidence["error"] = outcome.error
            return self._reject(state, f"training failed: {outcome.error}", evidence, links=links)
        gate = _gate_line(outcome.gate)
        if outcome.registered is None:
            passed = bool(outcome.gate and outcome.gate.get("passed"))
            why = "nothing was registered" if passed or outcome.gate is None else "gate failed"
            return self._reject(
                state,
                f"candidate rejected: {why}: {gate}",
                evidence,
                links=links,
                kind=EVENT_GATE_FAILED if outcome.gate is not None else EVENT_REJECTED,
            )
        deployment = self.client.deployments.get(self.deployment)
        if outcome.model is not None and outcome.model != deployment.model:
            return self._reject(
                state,
                f"the pipeline registered model '{outcome.model}', but deployment "
                f"'{self.deployment}' serves '{deployment.model}'",
                evidence,
                links=links,
            )
        version = outcome.registered
        links["model_version"] = f"{deployment.model}/{version}"
        earlier = self.client.models.get_version((deployment.model, version)).tags
        if REJECTED_TAG in earlier:  # the pipeline's cache gave back a rolled-back version
            return self._reject(
                state,
                f"the retrain gave back {deployment.model}/{version} (same data and code), which "
                f"was rolled back before: {earlier[REJECTED_TAG]}",
                evidence,
                links=links,
            )
        champion = self._champion_version(deployment, exclude=version)
        return self._move(
            state,
            S.GATED,
            kind=EVENT_GATE_PASSED,
            summary=f"{deployment.model}/{version} passed the gate against champion "
            f"{champion}: {gate}",
            candidate=version,
            data={**state.data, "model": deployment.model, "champion_version": champion, **links},
            evidence=evidence,
            links=links,
        )

    def _champion_version(self, deployment: Deployment, *, exclude: int) -> int:
        routes = [r for r in deployment.routes if r.version != exclude]
        named = [r for r in routes if r.variant == "champion"]
        chosen = max(named or routes, key=lambda r: r.weight, default=None)
        if chosen is not None:
            return chosen.version
        return self.client.models.resolve(f"{deployment.model}@champion").version

    def _reject(
        self,
        state: LoopState,
        summary: str,
        evidence: dict[str, Any],
        *,
        links: dict[str, Any] | None = None,
        kind: str = EVENT_REJECTED,
    ) -> LoopEvent:
        return self._move(
            state,
            S.REJECTED,
            kind=kind,
            summary=summary,
            data={**state.data, "finished_at": self.clock().isoformat()},
            evidence=evidence,
            links=links,
        )
