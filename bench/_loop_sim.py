"""The simulation behind ``bench/loop.py``: a churn stream, one model family, four ways
to decide when to retrain, each scored prequentially.

Time is simulated by rows: ``window_rows`` rows are one day, labels arrive one window
late, and every decision is taken at the end of a window. Nothing is served; what is
measured is the decision policy. The ctloop strategy uses ctloop's own parts, not a copy
of them: reports built by :func:`~ctloop.monitoring.monitor_run.report_from_profiles`
(profile drift, realised and estimated performance) and stored in a real SQLite store,
triggers and guards from :mod:`ctloop.loop.triggers` read off that store, loop events
written with ``client.loop.transition`` in the order the controller writes them, and the
gate of :class:`ctloop.evaluation.Gate` (paired bootstrap) against the champion.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

START = datetime(2026, 1, 1, tzinfo=UTC)  # churn's default start: row 0
DAY = timedelta(days=1)
DEPLOYMENT = "churn-sim"
MODEL = "churn"

#: The churn pipeline's own gate (examples/churn/pipeline.py, GATE): what a loop policy
#: without a ``gate`` section applies through the pipeline's gate step.
GATE: dict[str, Any] = {
    "thresholds": ["roc_auc >= 0.70", "f1 >= 0.30"],
    "bootstrap": {"metric": "roc_auc", "confidence": 0.95, "margin": -0.01, "seed": 0},
}
PIPELINE = "examples.churn.pipeline:churn_pipeline"

#: The policies the ctloop strategies run: the documented defaults (docs/loop.md), and the
#: defaults before this benchmark changed them (estimated performance 0.05 below, the
#: holdout by time).
POLICIES: dict[str, dict[str, Any]] = {
    "ctloop": {"triggers": {"drift": True, "performance": True}},
    "ctloop+estimated": {
        "triggers": {"drift": True, "performance": {"source": "estimated", "drop": 0.05}},
        "training_data": {"feedback": {"window": "4d"}, "holdout": {"split": "time"}},
    },
}


@dataclass(frozen=True)
class Config:
    reference: int  # rows of the training prefix (the first champion's data)
    windows: int
    window_rows: int
    train_rows: int  # the most recent labelled rows a retrain reads
    every: int  # the fixed schedule: retrain every this many windows
    holdout: float = 0.2  # the policy's default holdout fraction


@dataclass(frozen=True)
class Mark:
    """One drift of the stream: what changes, from which row, reached in full when."""

    name: str
    kind: str
    start: int  # absolute row
    ramp: int  # rows until full strength (0: sudden)
    spec: dict[str, Any]

    @property
    def full(self) -> int:
        """The first row at full strength: the oracle's drift point."""
        return self.start + self.ramp


def layout(cfg: Config) -> list[Mark]:
    """Six drifts that stay (no end, they compound), at fixed fractions of the stream."""
    scale = cfg.windows / 150  # the layout is written for 150 windows

    def at(window: float) -> int:
        return cfg.reference + round(window * scale * cfg.window_rows)

    ramp = max(1, round(6 * scale)) * cfg.window_rows
    return [
        Mark(
            "price rise", "covariate", at(20), 0, {"features": {"monthly_charges": {"shift": 20}}}
        ),
        Mark("contract reversal", "concept", at(40.5), 0, {"coef_changes": {"contract": -1.0}}),
        Mark(
            "younger base (gradual)",
            "covariate",
            at(60),
            ramp,
            {"features": {"tenure_months": {"scale": 0.5}}},
        ),
        Mark("more churn", "prior", at(80.25), 0, {"base_rate": 0.45}),
        Mark("loyalty turns", "concept", at(100), 0, {"coef_changes": {"tenure_months": -1.0}}),
        Mark(
            "new market",
            "covariate",
            at(120.5),
            0,
            {
                "features": {
                    "contract": {"month-to-month": 0.8},
                    "payment_method": {"electronic-check": 0.6},
                }
            },
        ),
    ]


def generate(cfg: Config, marks: list[Mark], seed: int) -> pd.DataFrame:
    """The prefix and the stream, one row every ``86400 / window_rows`` s."""
    from ctloop.datasets import churn

    drifts = [churn.Drift(start=m.start, kind=m.kind, ramp=m.ramp, **m.spec) for m in marks]
    rows = cfg.reference + cfg.windows * cfg.window_rows
    return churn.generate(rows, seed=seed, rows_per_day=cfg.window_rows, drift=drifts)


# --- the model --------------------------------------------------------------------------------


@dataclass
class Model:
    """A fitted model and the rows it learnt from (absolute positions)."""

    number: int
    estimator: Any
    rows: np.ndarray

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        from ctloop.demo import _features

        return self.estimator.predict_proba(_features(frame))[:, 1]


def fit(data: pd.DataFrame, rows: np.ndarray, number: int) -> Model:
    """The churn demo's model (imputed, scaled numerics + one-hot categoricals, logistic
    regression) on the rows at positions ``rows``."""
    from ctloop.datasets import churn
    from ctloop.demo import _baseline, _features

    part = data.iloc[rows]
    x = _features(part)
    return Model(number, _baseline(x).fit(x, part[churn.TARGET]), rows)


def span(lo: int, hi: int) -> np.ndarray:
    return np.arange(lo, hi)


def split(lo: int, hi: int, fraction: float, how: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and holdout positions of rows ``lo``-``hi`` as a policy's ``holdout`` says:
    ``time`` holds out the newest ``fraction``, ``random`` a seeded random share."""
    rows = span(lo, hi)
    n = round(len(rows) * fraction)
    if how == "random":
        picked = np.random.default_rng(seed).permutation(len(rows))
        return np.sort(rows[picked[n:]]), np.sort(rows[picked[:n]])
    return rows[: len(rows) - n], rows[len(rows) - n :]


# --- scoring ----------------------------------------------------------------------------------


@dataclass
class Retrain:
    window: int  # decided at the end of this window; the result serves the next one
    why: str  # schedule, oracle, or the triggers that fired
    promoted: bool


@dataclass
class Outcome:
    """What a strategy did on one stream."""

    strategy: str
    correct: int = 0
    rows: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    window_accuracy: list[float] = field(default_factory=list)
    retrains: list[Retrain] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, y: np.ndarray, p: np.ndarray) -> None:
        pred = p >= 0.5
        truth = y == 1
        self.correct += int((pred == truth).sum())
        self.rows += len(y)
        self.tp += int((pred & truth).sum())
        self.fp += int((pred & ~truth).sum())
        self.fn += int((~pred & truth).sum())
        self.window_accuracy.append(float((pred == truth).mean()))

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else math.nan

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0


class Strategy:
    """Decides, at the end of each window, whether to retrain (and on which rows)."""

    name = "never"

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def after_window(self, i: int, outcome: Outcome) -> Model | None:
        return None

    def close(self) -> None:
        pass


class Simulation:
    """One stream: the data, the first champion, and the prequential loop."""

    def __init__(self, cfg: Config, marks: list[Mark], seed: int) -> None:
        self.cfg, self.marks, self.seed = cfg, marks, seed
        self.data = generate(cfg, marks, seed)
        from ctloop.datasets import churn

        self.y = self.data[churn.TARGET].to_numpy()
        cut = cfg.reference - round(cfg.reference * cfg.holdout)
        # every strategy starts from this model: trained as a retrain would train it
        self.first = fit(self.data, span(0, cut), 1)
        self.first_holdout = span(cut, cfg.reference)
        self._numbers = 1

    def number(self) -> int:
        self._numbers += 1
        return self._numbers

    def bounds(self, i: int) -> tuple[int, int]:
        lo = self.cfg.reference + i * self.cfg.window_rows
        return lo, lo + self.cfg.window_rows

    def labelled_end(self, i: int) -> int:
        """At the end of window ``i`` the labels of windows up to ``i - 1`` are known."""
        return self.bounds(i)[0]

    def time(self, row: int) -> datetime:
        return START + DAY * (row / self.cfg.window_rows)

    def recent(self, i: int, rows: int) -> tuple[int, int]:
        hi = self.labelled_end(i)
        return max(0, hi - rows), hi

    def run(self, make: Callable[[Simulation], Strategy]) -> Outcome:
        import time

        started = time.perf_counter()
        strategy = make(self)
        outcome = Outcome(strategy.name)
        self.champion = self.first
        self.served: list[tuple[Model, np.ndarray]] = []
        try:
            for i in range(self.cfg.windows):
                lo, hi = self.bounds(i)
                p = self.champion.proba(self.data.iloc[lo:hi])
                self.served.append((self.champion, p))
                outcome.add(self.y[lo:hi], p)
                new = strategy.after_window(i, outcome)
                if new is not None:
                    self.champion = new
        finally:
            strategy.close()
        outcome.seconds = time.perf_counter() - started
        return outcome


# --- the baselines ----------------------------------------------------------------------------


class Schedule(Strategy):
    name = "schedule"

    def after_window(self, i: int, outcome: Outcome) -> Model | None:
        if (i + 1) % self.sim.cfg.every:
            return None
        lo, hi = self.sim.recent(i, self.sim.cfg.train_rows)
        outcome.retrains.append(Retrain(i, "schedule", True))
        return fit(self.sim.data, span(lo, hi), self.sim.number())


class Oracle(Strategy):
    """Retrains at each drift point as soon as one window of labels after it exists, on
    the labelled rows since that point (a ramp's point is where it reaches full strength)."""

    name = "oracle"

    def after_window(self, i: int, outcome: Outcome) -> Model | None:
        end, w = self.sim.labelled_end(i), self.sim.cfg.window_rows
        due = [m for m in self.sim.marks if end - w < m.full + w <= end]
        if not due:
            return None
        point = max(m.full for m in due)
        outcome.retrains.append(Retrain(i, "oracle", True))
        lo = max(point, end - self.sim.cfg.train_rows)
        return fit(self.sim.data, span(lo, end), self.sim.number())


# --- ctloop -----------------------------------------------------------------------------------


@contextmanager
def simulated_clock() -> Iterator[Callable[[datetime], None]]:
    """Run the store on the simulated time: loop events, policies and registrations are
    stamped with it, as the controller's own ``clock`` is for its decisions. Each reading
    moves it on by a millisecond, so events written at one instant stay in order."""
    from ctloop._internal import ids

    real = ids.now_ms
    now = [0]

    def fake() -> int:
        now[0] += 1
        return now[0]

    def set_to(when: datetime) -> None:
        now[0] = max(now[0], int(when.timestamp() * 1000))

    ids.now_ms = fake
    try:
        yield set_to
    finally:
        ids.now_ms = real


class Ctloop(Strategy):
    """ctloop's monitor, triggers, guards and gate on a real temporary store.

    At the end of each window: a report of the window against the champion's training
    data (profile drift; label-free estimated performance of the window; realised
    performance of the newest window whose labels arrived, on the rows the champion
    served), stored; then the guards and triggers as the controller's STABLE round runs
    them. A trigger starts a retrain on the ``train_rows`` newest labelled rows, split
    as the policy's holdout says; the candidate is gated against the champion on
    the holdout and, if it passes, registered and promoted (the canary is skipped: there
    is no traffic to split in a simulation).
    """

    def __init__(self, sim: Simulation, name: str, spec: dict[str, Any]) -> None:
        super().__init__(sim)
        from ctloop import Client
        from ctloop.loop.policy import Holdout, parse_policy

        self.name = name
        self.policy = parse_policy({"pipeline": PIPELINE, "gate": GATE, **spec})
        data = self.policy.training_data
        self.holdout = data.holdout if data is not None else Holdout()
        self.train_rows = sim.cfg.train_rows
        if data is not None and data.feedback is not None:
            self.train_rows = round(data.feedback.window / DAY * sim.cfg.window_rows)
        self._folder = tempfile.TemporaryDirectory(prefix="ctloop-bench-loop-")
        self._clock_cm = simulated_clock()
        self.set_clock = self._clock_cm.__enter__()
        self.set_clock(sim.time(0))
        self.client = Client(store=str(Path(self._folder.name) / "store"))
        self.revision = 0
        self.version = 0
        try:
            self._promote(sim.first, sim.first_holdout)
            self.client.deployments.create(DEPLOYMENT, f"{MODEL}@champion")
            self.client.loop.set_policy(
                DEPLOYMENT, source=f"{name} (bench/loop.py)", policy=self.policy.to_dict()
            )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.client.close()
        self._clock_cm.__exit__(None, None, None)
        self._folder.cleanup()

    # the champion and what the monitor knows of it

    def _promote(self, model: Model, holdout: np.ndarray) -> None:
        """Register ``model`` with its holdout metrics, make it the champion, and freeze the
        monitor's reference: its training rows' profile and the estimator's calibration."""
        from ctloop.datasets import churn
        from ctloop.demo import _features
        from ctloop.evaluation import evaluate
        from ctloop.monitoring.estimation import ConfidenceBasedEstimator
        from ctloop.monitoring.profiles import ReferenceProfile

        data = self.sim.data
        hold = data.iloc[holdout]
        x = _features(hold)
        metrics = evaluate(model.estimator, x, hold[churn.TARGET], log=False).metrics
        run = self.client.runs.create(MODEL, capture_code=False)
        self.client.runs.log_batch(run.id, [(k, v, 0, None) for k, v in metrics.items()])
        self.client.runs.log_model(run.id, model.estimator, input_example=x.head(5))
        version = self.client.models.register(run.id, name=MODEL)
        self.client.models.set_alias(MODEL, "champion", version.version)
        self.version = version.version
        train = data.iloc[model.rows]
        self.profile = ReferenceProfile.from_frame(train[list(churn.FEATURES)])
        self.estimator = ConfidenceBasedEstimator().fit(model.proba(hold), hold[churn.TARGET])
        self.model = model

    def _report(self, i: int) -> None:
        from ctloop.datasets import churn
        from ctloop.monitoring.monitor_run import report_from_profiles
        from ctloop.monitoring.performance import realised_performance

        sim = self.sim
        lo, hi = sim.bounds(i)
        window = sim.data.iloc[lo:hi]
        model, p = sim.served[i]
        estimated = self.estimator.estimate(p) if model is self.model else None
        realised = None
        if i >= 1 and sim.served[i - 1][0] is self.model:
            plo, phi = sim.bounds(i - 1)
            q = sim.served[i - 1][1]
            served = pd.DataFrame(
                {
                    "timestamp": sim.data[churn.TIMESTAMP].iloc[plo:phi].to_numpy(),
                    "prediction": (q >= 0.5).astype(int),
                    "p.0": 1 - q,
                    "p.1": q,
                    "label": sim.y[plo:phi],
                    "model_version": str(self.version),
                }
            )
            realised = realised_performance(served, task="classification")
        report = report_from_profiles(
            self.profile,
            self.profile.window(window[list(churn.FEATURES)]),
            deployment=DEPLOYMENT,
            window_info={"start": sim.time(lo), "end": sim.time(hi)},
            realised=realised,
            estimated=estimated,
        )
        report.created_at = sim.time(hi)
        self.client.monitors.add_report(report)

    # one round of the controller in STABLE, then the retrain it starts

    def _move(self, to: str, kind: str, summary: str, **fields: Any) -> None:
        state, _ = self.client.loop.transition(
            DEPLOYMENT,
            expected_revision=self.revision,
            to_state=to,
            data={},
            kind=kind,
            summary=summary,
            **fields,
        )
        self.revision = state.revision

    def after_window(self, i: int, outcome: Outcome) -> Model | None:
        from ctloop.loop.events import (
            EVENT_GATE_FAILED,
            EVENT_GATE_PASSED,
            EVENT_NOTE,
            EVENT_PROMOTED,
            EVENT_TRAINING_STARTED,
            EVENT_TRIGGERED,
        )
        from ctloop.loop.triggers import (
            blocked_by_guards,
            decision_links,
            evaluate_triggers,
            trigger_events,
        )

        sim = self.sim
        now = sim.time(sim.bounds(i)[1])
        self.set_clock(now)
        self._report(i)
        events = trigger_events(self.client, DEPLOYMENT)
        if blocked_by_guards(self.policy, now=now, events=events, state="STABLE") is not None:
            return None
        decisions = evaluate_triggers(self.client, DEPLOYMENT, self.policy, now=now, events=events)
        if not decisions:
            return None
        first = decisions[0]
        self._move(
            "TRIGGERED",
            EVENT_TRIGGERED,
            f"{first.kind} trigger: {first.summary}",
            evidence={"trigger": first.kind, **first.evidence},
            links=decision_links(decisions),
        )
        lo, hi = sim.recent(i, self.train_rows)
        h = self.holdout
        train, holdout = split(lo, hi, h.fraction, h.split, h.seed)
        self._move(
            "TRAINING",
            EVENT_TRAINING_STARTED,
            f"training on rows {lo}-{hi} ({h.fraction:g} held out by {h.split})",
            evidence={"rows": [lo, hi]},
        )
        candidate = fit(sim.data, train, sim.number())
        passed = self._gate(candidate, holdout)
        why = "+".join(d.kind for d in decisions)
        outcome.retrains.append(Retrain(i, why, passed))
        if not passed:
            self._move("REJECTED", EVENT_GATE_FAILED, "the candidate failed the gate")
            self._move("STABLE", EVENT_NOTE, "back to STABLE after REJECTED")
            return None
        self._move("GATED", EVENT_GATE_PASSED, "the candidate passed the gate")
        self._promote(candidate, holdout)
        self._move(
            "PROMOTED",
            EVENT_PROMOTED,
            f"{MODEL}/{self.version} promoted (canary skipped in the simulation)",
            links={"model_version": self.version},
        )
        self._move("STABLE", EVENT_NOTE, "back to STABLE after PROMOTED")
        return candidate

    def _gate(self, candidate: Model, holdout: np.ndarray) -> bool:
        from ctloop.datasets import churn
        from ctloop.demo import _features
        from ctloop.evaluation import evaluate

        hold = self.sim.data.iloc[holdout]
        x, y = _features(hold), hold[churn.TARGET]
        assert self.policy.gate is not None
        result = self.policy.gate.check(
            evaluate(candidate.estimator, x, y, log=False),
            evaluate(self.model.estimator, x, y, log=False),
            log=False,
        )
        return bool(result.passed)


def strategies(
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Callable[[Simulation], Strategy]]:
    """Every strategy by name, in the order the tables show them; ``extra`` adds ctloop
    policies (name → policy sections: ``triggers``, ``training_data``, ``guards``)."""
    out: dict[str, Callable[[Simulation], Strategy]] = {
        "never": Strategy,
        "schedule": Schedule,
    }
    for name, spec in {**POLICIES, **(extra or {})}.items():
        out[name] = lambda sim, n=name, t=spec: Ctloop(sim, n, t)
    out["oracle"] = Oracle
    return out
