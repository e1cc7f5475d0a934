"""The loop stage of the main job: the continuous-training loop closes, end to end.

After the monitoring stage, ``churn-api`` serves the champion and its monitor's newest
report says the traffic drifted (the covariate drift injected at a known row). Here:

1. a policy for ``churn-api`` (:data:`POLICY`, read with ``parse_policy``, stored with the
   deployment and written to ``<store>/policy.yaml``): retrain on drift on the newest
   ``churn`` version with the churn pipeline, gate against the champion, canary 10 → 50 →
   100 %, roll back after two failed analyses;
2. a fresh version of ``churn`` drawn from the drifted regime: the same covariate drift,
   and a concept drift (:data:`CONCEPT`: loyalty turns around, long tenures and contracts
   now go with leaving, which only labels reveal), so a model retrained on it beats the
   champion;
3. ``ctloop serve churn-api`` starts again; every round of the demo sends a batch of
   customers from that regime, posts the labels of the *previous* batch through
   ``/feedback`` (ground truth arrives late), then runs one ``Controller.reconcile_once()``:

   - path 1: the drift trigger reads the monitor's report → the pipeline retrains on the
     fresh version → the gate passes → canary 10 → 50 → 100 % → promoted;
   - path 2: a model trained on flipped labels is registered and forced past the gate
     (the demo moves the loop to GATED with it, saying so in the event) → the canary
     analysis fails twice (its realised accuracy on the late labels) → rolled back, the
     champion back at 100 %, the version tagged with the reason;
   - path 3: a new ``churn`` version with shuffled labels and a manual retrain request;
     the cooldown holds it, the simulated clock moves an hour on, the retrain runs and
     the gate rejects it (nothing is registered);
4. the loop's timeline is printed; :attr:`LoopDemo.ok` says whether it went as above.

**The simulated clock.** The controller takes the time from :class:`SimulatedClock`, real
UTC time plus an offset the demo advances. The clock paces the loop's decisions, but the
loop's events are stamped by the store's real clock, and the guards compare the two: a
clock moved on by every round would let the one-hour cooldown pass within minutes. So the
offset stays 0 while traffic flows, the rollout interval is a short real one (2 s), and the
clock jumps once, by the cooldown, before path 3's retrain (which the cooldown holds until
then). The canary analysis does not depend on it: it reads the log rows stamped since its
step's split was set, whatever the controller's clock says.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.text import clip
from ctloop.demo_monitoring import DRIFTED, _wait_logged
from ctloop.demo_serving import DEPLOYMENT, ServingDemo, _send, _serve, _wait_for_revision

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion
    from ctloop.loop.controller import Controller
    from ctloop.loop.entities import LoopEvent

Say = Callable[[str], None]

MODEL = "churn"
#: The concept drift of the new regime (``ctloop.datasets.churn`` label terms): loyalty
#: turns around (a competitor buys out long-standing customers on long contracts).
CONCEPT: dict[str, float] = {"tenure_months": -1.0, "contract": -1.0}
#: Rows of each new ``churn`` version, customers per round, rounds allowed per path.
FRESH_ROWS = 4000
BATCH = 250
MAX_ROUNDS = 30
COOLDOWN = timedelta(hours=1)

#: The policy, as written to ``policy.yaml`` ($pipeline: the churn template's target).
POLICY = """\
# The continuous-training policy of churn-api, as `ctloop demo` runs it (docs/loop.md).
deployment: churn-api
model: churn
triggers:
  drift: {share: 0.2, features: [monthly_charges, contract], consecutive: 1}
  manual: true                      # ctloop loop trigger churn-api --reason "..."
training_data:
  dataset: churn@latest             # pinned when a retrain starts (churn@N)
pipeline:
  target: $pipeline
  params: {reference: $reference}   # validate against the new regime (logins can outgrow churn@1)
  executor: inline
gate:                               # on the fresh data's holdout, against the champion
  thresholds: ["roc_auc >= 0.70"]
  bootstrap: {metric: roc_auc, confidence: 0.9, margin: 0.0, resamples: 300, seed: 0}
  require_champion: true
rollout:
  steps: [10, 50, 100]              # % of traffic to the candidate
  min_requests: 100                 # canary requests a step serves before it is judged
  interval: 2s                      # real seconds: see the docstring of ctloop/demo_loop.py
  failed_checks_limit: 2
  checks:
    error_rate: {max_increase: 0.02}
    prediction_drift: {method: jensenshannon, threshold: 0.4}
    metric: {name: accuracy, margin: 0.1, min_labels: 30}
guards:
  cooldown: 1h
  max_retrains_per_day: 4
  during_canary: defer
"""

#: The event kinds of the three paths, in order (``analysis`` events left out: how many
#: there are depends on how the traffic was split).
PATH_1 = ("triggered", "training_started", "gate_passed", "canary_step", "canary_step",
          "canary_step", "promoted", "note")  # fmt: skip
PATH_2 = ("note", "canary_step", "rolled_back", "note")
PATH_3 = ("manual_trigger", "triggered", "training_started", "gate_failed", "note")
_ENDS = ("promoted", "rolled_back", "gate_failed", "rejected")


class SimulatedClock:
    """Real UTC time plus an offset the demo advances (see the module docstring)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, span: timedelta) -> None:
        self.offset += span


@dataclass
class LoopDemo:
    """What the loop stage did, for the summary and tests."""

    policy_path: str = ""
    champion_before: int | None = None
    fresh: str = ""  # the fresh dataset version path 1 trained on
    promoted: int | None = None  # path 1's candidate
    forced: int | None = None  # path 2's candidate (flipped labels)
    corrupted: str = ""  # the dataset version with shuffled labels (path 3)
    champion_after: int | None = None
    traffic: dict[int, int] = field(default_factory=dict)  # version -> weight at the end
    rejected_reasons: dict[int, str] = field(default_factory=dict)  # version -> its tag
    versions_before_path_3: int = 0
    versions_after: int = 0
    cooldown_held: bool = False  # path 3's retrain waited for the cooldown
    events: list[LoopEvent] = field(default_factory=list)  # every loop event, oldest first
    reports: list[str] = field(default_factory=list)  # HTML pages of the monitor's reports
    sent: int = 0
    failed: int = 0
    labels: int = 0

    def kinds(self) -> list[str]:
        """The kinds of :attr:`events`, ``analysis`` left out."""
        return [e.kind for e in self.events if e.kind != "analysis"]

    @property
    def ok(self) -> bool:
        """Path 1 promoted, path 2 rolled back by its canary, path 3 held by the cooldown
        then stopped by the gate, and the promoted version serves all traffic as the
        champion."""
        return (
            self.kinds() == [*PATH_1, *PATH_2, *PATH_3]
            and self.promoted is not None
            and self.champion_after == self.promoted
            and self.traffic == {self.promoted: 100}
            and self.forced in self.rejected_reasons
            and self.versions_after == self.versions_before_path_3
            and self.cooldown_held
            and self.failed == 0
        )


def run_loop_stage(client: Client, *, seed: int, say: Say) -> LoopDemo | None:
    """Drive ``churn-api``'s loop through the three paths (see the module docstring)."""
    from ctloop.errors import NotFound
    from ctloop.loop.controller import Controller
    from ctloop.loop.policy import parse_policy

    target = _pipeline_target()
    if target is None:
        say("loop       skipped: examples/churn/pipeline.py not found (run from the repo root)")
        return None
    try:
        report = client.monitors.reports(DEPLOYMENT, limit=1)[0]
        champion = client.models.get_version(f"{MODEL}@champion").version
    except (NotFound, IndexError):
        say(f"loop       skipped: {DEPLOYMENT} has no monitor report to act on")
        return None
    folder = Path(client.settings.store_folder())
    work = folder / "workspace" / "loop"
    result = LoopDemo(champion_before=champion)
    fresh_rows = _regime(seed + 4000, FRESH_ROWS)
    fresh = _add(client, work, fresh_rows, "churn-fresh", "churn", "fresh customers, drifted")
    result.fresh = fresh.ref
    text = POLICY.replace("$pipeline", json.dumps(target)).replace("$reference", fresh.ref)
    policy = parse_policy(text, source="policy.yaml")
    policy.check_imports(source="policy.yaml")
    path = folder / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    client.loop.set_policy(DEPLOYMENT, source=text, policy=policy.to_dict())
    result.policy_path = str(path)
    say(
        f"policy     {path}: retrain on drift (share ≥ 0.2 or monthly_charges, contract) or "
        "by hand; gate vs the champion; canary 10 → 50 → 100 %; cooldown 1h"
    )
    say(
        f"monitor    the newest report ({report.id[:8]}) found drift in "
        f"{', '.join(report.drifted_features[:4])}, share {report.drift_share or 0:.2f}"
    )
    say(
        f"dataset    {fresh.ref}  {fresh.row_count} fresh rows from the drifted regime, where "
        "loyalty also turned around (concept drift: tenure's and contract's effects reversed)"
    )
    clock = SimulatedClock()
    controller = Controller(client, DEPLOYMENT, policy, owner="controller@ctloop-demo", clock=clock)
    live = _regime(seed + 3000, BATCH * MAX_ROUNDS * 3)
    began = datetime.now(UTC)
    try:
        with _serve(client, DEPLOYMENT, "--log-flush-seconds", "0.2") as (url, http):
            traffic = _Traffic(client, http, url, live, began)
            _path_1(controller, traffic, result, say)
            if _stable(client, "path 2", say):
                _path_2(client, controller, traffic, result, work, seed, say)
            if _stable(client, "path 3", say):
                _path_3(client, controller, traffic, clock, result, work, seed, say)
            result.sent, result.failed = traffic.served.sent["plain"], traffic.served.failed
            result.labels = traffic.posted
    finally:
        controller.release()
    _collect(client, result)
    _tell(client, result, say)
    return result


def _path_1(controller: Controller, traffic: _Traffic, result: LoopDemo, say: Say) -> None:
    ended = _drive(controller, traffic)
    if ended is not None and ended.kind == "promoted":
        result.promoted = int(str(ended.links["model_version"]).rsplit("/", 1)[1])
    say(f"path 1     {_outcome(ended)}")


def _path_2(
    client: Client,
    controller: Controller,
    traffic: _Traffic,
    result: LoopDemo,
    work: Path,
    seed: int,
    say: Say,
) -> None:
    from ctloop.loop.events import EVENT_NOTE

    frame = _regime(seed + 5000, FRESH_ROWS)
    version = _train_flipped(client, work, frame, seed)
    result.forced = version
    champion = client.models.get_version(f"{MODEL}@champion").version
    controller.renew_lease()  # the demo acts as the controller here: under its lease
    state = client.loop.state(DEPLOYMENT)
    client.loop.transition(
        DEPLOYMENT,
        owner=controller.owner,
        expected_revision=state.revision,
        to_state="GATED",
        candidate_version=version,
        data={"model": MODEL, "champion_version": champion, "forced": True},
        kind=EVENT_NOTE,
        summary=f"{MODEL}/{version} forced through the gate by the demo: trained on flipped "
        "labels, it never met the gate; the canary analysis has to catch it",
        evidence={"labels": "flipped", "gate": None},
        links={"model_version": f"{MODEL}/{version}"},
    )
    say(f"forced     {MODEL}/{version}, trained on flipped labels, put past the gate by the demo")
    ended = _drive(controller, traffic)
    say(f"path 2     {_outcome(ended)}")


def _path_3(
    client: Client,
    controller: Controller,
    traffic: _Traffic,
    clock: SimulatedClock,
    result: LoopDemo,
    work: Path,
    seed: int,
    say: Say,
) -> None:
    import numpy as np

    from ctloop.datasets import churn
    from ctloop.loop.guards import blocked_by_guards
    from ctloop.loop.triggers import request_manual, trigger_events

    frame = _regime(seed + 6000, FRESH_ROWS)
    rng = np.random.default_rng(seed)
    frame[churn.TARGET] = rng.permutation(frame[churn.TARGET].to_numpy())
    why = "fresh customers, labels shuffled by a broken join (on purpose)"
    corrupted = _add(client, work, frame, "churn-shuffled", "churn", why)
    result.corrupted = corrupted.ref
    result.versions_before_path_3 = len(client.models.versions(MODEL))
    request_manual(
        client, DEPLOYMENT, f"retrain on {corrupted.ref} (its labels are corrupted)", "ctloop demo"
    )
    say(f"dataset    {corrupted.ref}  labels shuffled; a manual retrain is requested on it")
    traffic.round()
    early = [e for e in controller.reconcile_once() if e.kind in _ENDS]
    events = trigger_events(client, DEPLOYMENT)
    state = client.loop.state(DEPLOYMENT)
    block = blocked_by_guards(controller.policy, now=clock(), events=events, state=state)
    say(f"guard      {block or 'nothing holds the retrain back'}")
    result.cooldown_held = block is not None and not early
    clock.advance(COOLDOWN)
    say(
        f"clock      the simulated clock moves {COOLDOWN.total_seconds() / 3600:g}h on "
        f"(the cooldown): {clock():%H:%M} UTC"
    )
    ended = early[-1] if early else _drive(controller, traffic)
    say(f"path 3     {_outcome(ended)}")


class _Traffic:
    """Customers of the drifted regime sent to the running server, their labels a batch late."""

    def __init__(
        self, client: Client, http: httpx.Client, url: str, frame: pd.DataFrame, began: datetime
    ) -> None:
        from ctloop.datasets import churn

        self.client, self.http, self.url, self.began = client, http, url, began
        self.records = json.loads(frame[list(churn.FEATURES)].to_json(orient="records"))
        self.labels = frame[churn.TARGET].astype(int).tolist()
        self.served = ServingDemo()
        self.cursor = self.rounds = self.posted = self.logged = 0
        self.pending: list[dict[str, Any]] = []

    def round(self) -> None:
        """Send the next batch, post the previous batch's labels, wait until it is logged."""
        lo = self.cursor % len(self.records)
        hi = min(lo + BATCH, len(self.records))
        self.cursor = hi
        tag = f"loop{self.rounds}"
        ids = _send(self.http, self.url, self.records[lo:hi], "plain", self.served, tag=tag)
        self.rounds += 1
        late = self.pending
        answered = zip(ids, self.labels[lo:hi], strict=True)
        self.pending = [{"prediction_id": pid, "label": y} for pid, y in answered if pid]
        if late:
            answer = self.http.post(self.url + "/feedback", json=late).json()
            self.posted += int(answer.get("accepted", 0))
        self.logged += sum(1 for pid in ids if pid)
        _wait_logged(self.client, self.began, self.logged)

    def converge(self) -> None:
        """Wait until the server serves the deployment's current revision."""
        _wait_for_revision(self.http, self.url, self.client.deployments.get(DEPLOYMENT).revision)


def _drive(controller: Controller, traffic: _Traffic) -> LoopEvent | None:
    """Rounds of traffic and one reconcile each, until a retrain ends; its last event."""
    for _ in range(MAX_ROUNDS):
        traffic.round()
        events = controller.reconcile_once()
        traffic.converge()
        ended = [e for e in events if e.kind in _ENDS]
        if ended:
            return ended[-1]
    return None


def _stable(client: Client, what: str, say: Say) -> bool:
    state = client.loop.state(DEPLOYMENT).state.value
    if state != "STABLE":
        say(f"{what:<10} skipped: the loop is in {state}, not back in STABLE")
    return state == "STABLE"


def _outcome(event: LoopEvent | None) -> str:
    if event is None:
        return f"NOT FINISHED after {MAX_ROUNDS} rounds"
    return f"{event.to_state.value}: {clip(event.summary, 200)}"


def _regime(seed: int, rows: int) -> pd.DataFrame:
    """Customers after the drift: the monitoring stage's covariate drift and :data:`CONCEPT`."""
    from ctloop.datasets import churn

    return churn.generate(
        rows,
        seed=seed,
        drift=[
            churn.Drift(start=0, kind="covariate", features=DRIFTED),
            churn.Drift(start=0, kind="concept", coef_changes=CONCEPT),
        ],
    )


def _add(
    client: Client, work: Path, frame: pd.DataFrame, file: str, name: str, description: str
) -> DatasetVersion:
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{file}.parquet"
    frame.to_parquet(path, index=False)
    return client.datasets.add(path, name=name, description=description, pointer=False)


def _train_flipped(client: Client, work: Path, frame: pd.DataFrame, seed: int) -> int:
    """Train and register a model on ``frame`` with its labels flipped; its version."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    import ctloop
    from ctloop.datasets import churn
    from ctloop.demo import _features

    frame = frame.copy()
    frame[churn.TARGET] = 1 - frame[churn.TARGET]
    why = "churn customers with every label flipped (the demo's broken model)"
    data = _add(client, work, frame, "churn-flipped", "churn-flipped", why)
    x = _features(frame)
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=100, random_state=seed
    )
    tags = {"demo": "true", "stage": "loop"}
    with ctloop.start_run("churn", "demo-flipped-labels", tags, client=client) as run:
        run.log_input(data, context="training")
        run.log_params({"model": "hist_gradient_boosting", "labels": "flipped"})
        model.fit(x, frame[churn.TARGET])
        run.log_model(model, name="model", input_example=x)
    registered = client.models.register(
        run.id, "model", name=MODEL, tags={"candidate": "broken: trained on flipped labels"}
    )
    return registered.version


def _pipeline_target() -> str | None:
    """The churn template as a module (run from the repository root) or as a file."""
    from ctloop.demo_pipeline import TARGET, TEMPLATE, find_template

    if (Path.cwd() / TEMPLATE).is_file():
        return f"examples.churn.pipeline:{TARGET}"
    found = find_template()
    return None if found is None else f"{found}:{TARGET}"


def _collect(client: Client, result: LoopDemo) -> None:
    from ctloop.loop.canary import REJECTED_TAG

    result.events = client.loop.events(DEPLOYMENT, limit=1000)
    result.champion_after = client.models.get_version(f"{MODEL}@champion").version
    routes = client.deployments.get(DEPLOYMENT).routes
    result.traffic = {r.version: r.weight for r in routes}
    versions = client.models.versions(MODEL)
    result.versions_after = len(versions)
    result.rejected_reasons = {
        v.version: str(v.tags[REJECTED_TAG]) for v in versions if REJECTED_TAG in v.tags
    }
    result.reports = [
        r.html_uri for r in reversed(client.monitors.reports(DEPLOYMENT)) if r.html_uri
    ]


def _tell(client: Client, result: LoopDemo, say: Say) -> None:
    say("timeline   the loop's events (ctloop loop history churn-api):")
    for e in result.events:
        change = (
            e.to_state.value
            if e.from_state == e.to_state
            else f"{e.from_state.value} → {e.to_state.value}"
        )
        when, summary = f"{e.created_at:%H:%M:%S}", clip(e.summary, 140)
        say(f"  #{e.seq:<3} {when}  {change:<21} {e.kind:<16} {summary}")
    split = " ".join(f"{v}={w}%" for v, w in sorted(result.traffic.items()))
    say(
        f"result     churn@champion {result.champion_before} → {result.champion_after}; "
        f"traffic {split}; {result.sent} requests, {result.failed} failed, {result.labels} "
        "labels posted late"
    )
    for page in result.reports:
        say(f"report     {page}")
    folder = client.settings.store_folder()
    say(f"  ctloop --store {folder} loop history {DEPLOYMENT}")
    shown = next((e for e in result.events if e.kind == "rolled_back"), None)
    if shown is not None:
        say(f"  ctloop --store {folder} loop explain {shown.id}")
    say(f"  ctloop --store {folder} loop run {DEPLOYMENT} --policy {result.policy_path}")
