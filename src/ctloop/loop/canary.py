"""The canary analysis: is the candidate serving as well as the champion, right now?

:func:`analyse` reads a window of the prediction log (and, for the metric check, of the
log joined with feedback) and compares the rows the candidate served with the rows the
champion served, by model version:

- **requests**: the canary must have served ``min_requests`` before anything is judged;
- **error rate**: canary errors (``status`` other than ``ok``) ≤ champion's + ``max_increase``;
- **latency**: the canary's p99 ``latency_ms`` < ``p99_below_ms``;
- **prediction drift**: the canary's predicted classes (or its scores, in ten bins cut at
  the champion's deciles) diverge from the champion's by at most ``threshold``
  (Jensen–Shannon distance, Hellinger distance or PSI, as the monitor computes them);
- **metric**: with ``min_labels`` labelled rows on both sides, the canary's realised
  metric is at most ``margin`` below the champion's.

A check that cannot judge (no labels yet, no successful rows) is *skipped*, never failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ctloop.loop._parts import ControllerPart
from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName
from ctloop.loop.events import EVENT_PROMOTED, EVENT_ROLLED_BACK

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.loop.policy import RolloutChecks
    from ctloop.serving.entities import Deployment

__all__ = ["REJECTED_TAG", "CanaryAnalysis", "CheckOutcome", "RolloutActions", "analyse"]

#: The model-version tag naming why the loop rolled a candidate back.
REJECTED_TAG = "ctloop.rejected_reason"
S = LoopStateName
Split = list[tuple[int, int, str]]  # (version, weight, variant), sorted

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class CheckOutcome:
    """One check of one analysis: its verdict, the numbers and a readable line."""

    name: str
    status: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message, **self.values}


@dataclass(frozen=True)
class CanaryAnalysis:
    """One analysis of a canary step.

    Attributes:
        requests: rows served per side, ``{"champion": n, "canary": n}``.
        min_requests: what the canary must have served before anything is judged.
        checks: each check's outcome (empty while there are too few requests).
    """

    requests: dict[str, int]
    min_requests: int
    checks: tuple[CheckOutcome, ...] = ()

    @property
    def enough_requests(self) -> bool:
        return self.requests.get("canary", 0) >= self.min_requests

    @property
    def failed(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.status == FAILED]

    @property
    def passed(self) -> bool:
        """Enough requests and no check failed."""
        return self.enough_requests and not self.failed

    def summary(self) -> str:
        """One line: the verdict and each check's message."""
        served = f"{self.requests.get('canary', 0)} canary / {self.requests.get('champion', 0)}"
        if not self.enough_requests:
            return f"waiting for requests: {served} champion (need {self.min_requests} canary)"
        verdict = "FAILED" if self.failed else "passed"
        parts = "; ".join(c.message for c in self.checks) or "no checks"
        return f"analysis {verdict} on {served} champion requests: {parts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "min_requests": self.min_requests,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
        }


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


def _error_rate(champion: pd.DataFrame, canary: pd.DataFrame, max_increase: float) -> CheckOutcome:
    def rate(frame: pd.DataFrame) -> float:
        return float((frame["status"] != "ok").mean()) if len(frame) else 0.0

    ours, theirs = rate(canary), rate(champion)
    status = PASSED if ours <= theirs + max_increase + 1e-12 else FAILED
    sign = "≤" if status == PASSED else ">"
    return CheckOutcome(
        "error_rate",
        status,
        f"error rate {ours:.2%} {sign} champion {theirs:.2%} + {max_increase:.2%}",
        {"canary": ours, "champion": theirs, "max_increase": max_increase},
    )


def _latency(canary: pd.DataFrame, below_ms: float) -> CheckOutcome:
    values = _ok(canary)["latency_ms"].dropna().to_numpy(dtype=float)
    if values.size == 0:
        return CheckOutcome("latency", SKIPPED, "latency: no successful canary requests")
    p99 = float(np.percentile(values, 99))
    status = PASSED if p99 < below_ms else FAILED
    sign = "<" if status == PASSED else "≥"
    return CheckOutcome(
        "latency",
        status,
        f"p99 latency {p99:.1f} ms {sign} {below_ms:g} ms",
        {"p99_ms": p99, "p99_below_ms": below_ms},
    )


def _prediction_drift(
    champion: pd.DataFrame, canary: pd.DataFrame, method: str, threshold: float
) -> CheckOutcome:
    from ctloop.monitoring import stats

    ref = _ok(champion)["prediction"].dropna()
    cur = _ok(canary)["prediction"].dropna()
    if len(ref) == 0 or len(cur) == 0:
        return CheckOutcome("prediction_drift", SKIPPED, "prediction drift: no predictions")
    numeric = ref.dtype.kind == "f" and ref.nunique() > 20
    if numeric:
        edges = stats.quantile_edges(ref.to_numpy(dtype=float), 10)
        ref_counts = stats.histogram(ref.to_numpy(dtype=float), edges)
        cur_counts = stats.histogram(cur.to_numpy(dtype=float), edges)
        what = "scores"
    else:
        _, ref_counts, cur_counts = stats.category_counts(
            ref.astype(str).to_numpy(), cur.astype(str).to_numpy()
        )
        what = "classes"
    value = stats.DISTANCES[method](ref_counts, cur_counts)
    status = PASSED if math.isnan(value) or value <= threshold else FAILED
    sign = "≤" if status == PASSED else ">"
    return CheckOutcome(
        "prediction_drift",
        status,
        f"predicted {what} {method} {value:.3f} {sign} {threshold:g}",
        {"method": method, "value": value, "threshold": threshold},
    )


def _metric(
    joined: pd.DataFrame | None,
    champion_version: int,
    canary_version: int,
    name: str,
    margin: float,
    min_labels: int,
) -> CheckOutcome:
    if joined is None or not {"label", "value"} & set(joined.columns):
        return CheckOutcome("metric", SKIPPED, f"{name}: no feedback labels yet")
    from ctloop.monitoring.performance import realised_performance

    # the monitor's realised performance, per model version: the same metrics, the same way
    windows = realised_performance(joined, min_labels=min_labels) if len(joined) else []
    by_version = {v.model_version: v for w in windows for v in w.by_version}
    ours, theirs = by_version.get(str(canary_version)), by_version.get(str(champion_version))
    n_ours, n_theirs = (0 if v is None else v.labelled for v in (ours, theirs))
    counts = {"canary_labels": n_ours, "champion_labels": n_theirs, "min_labels": min_labels}
    if n_ours < min_labels or n_theirs < min_labels:
        return CheckOutcome(
            "metric",
            SKIPPED,
            f"{name}: {n_ours} canary / {n_theirs} champion labels (need {min_labels})",
            counts,
        )
    assert ours is not None and theirs is not None
    a, b = ((v.metrics or {}).get(name) for v in (ours, theirs))
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return CheckOutcome("metric", SKIPPED, f"{name}: cannot be computed here", counts)
    status = PASSED if a >= b - margin - 1e-12 else FAILED
    sign = "≥" if status == PASSED else "<"
    return CheckOutcome(
        "metric",
        status,
        f"{name} {a:.3f} {sign} champion {b:.3f} − {margin:g}",
        {"metric": name, "canary": a, "champion": b, "margin": margin, **counts},
    )


def analyse(
    predictions: pd.DataFrame,
    *,
    champion_version: int,
    canary_version: int,
    checks: RolloutChecks,
    min_requests: int,
    joined: pd.DataFrame | None = None,
) -> CanaryAnalysis:
    """Analyse one window of the prediction log (see the module docstring).

    Args:
        predictions: the log rows of the window (``client.deployments.predictions``).
        champion_version, canary_version: the model versions compared.
        checks: the policy's ``rollout.checks``.
        min_requests: what the canary must have served before anything is judged.
        joined: the window's rows joined with feedback, for the metric check (None: skip).
    """
    if len(predictions) and "model_version" in predictions.columns:
        version = predictions["model_version"].astype(str)
        champion = predictions[version == str(champion_version)]
        canary = predictions[version == str(canary_version)]
        if "variant" in predictions.columns:  # shadows log too; they serve nobody
            champion = champion[champion["variant"] != "shadow"]
            canary = canary[canary["variant"] != "shadow"]
    else:
        champion = canary = predictions.iloc[0:0]
    requests = {"champion": len(champion), "canary": len(canary)}
    if requests["canary"] < min_requests:
        return CanaryAnalysis(requests, min_requests)
    outcomes: list[CheckOutcome] = []
    if checks.error_rate is not None:
        outcomes.append(_error_rate(champion, canary, checks.error_rate.max_increase))
    if checks.latency is not None:
        outcomes.append(_latency(canary, checks.latency.p99_below_ms))
    if checks.prediction_drift is not None:
        drift = checks.prediction_drift
        outcomes.append(_prediction_drift(champion, canary, drift.method, drift.threshold))
    if checks.metric is not None:
        m = checks.metric
        outcomes.append(
            _metric(joined, champion_version, canary_version, m.name, m.margin, m.min_labels)
        )
    return CanaryAnalysis(requests, min_requests, tuple(outcomes))


# --- acting on the deployment ---------------------------------------------------------------


def routes_of(deployment: Deployment) -> Split:
    """A deployment's routes as a :data:`Split`."""
    return sorted((r.version, r.weight, r.variant) for r in deployment.routes)


def weights_of(split: Split) -> list[str]:
    """A split as ``set_traffic`` takes it: ``["3=90:champion", "4=10:canary"]``."""
    return [f"{v}={w}:{variant}" for v, w, variant in split]


class RolloutActions(ControllerPart):
    """What the controller does to the deployment and the registry during a canary (a
    part of :class:`~ctloop.loop.controller.Controller`): set a split, promote, roll back.
    Each external action is skipped when already done, so a restart repeats none."""

    def split(self, state: LoopState, step: int) -> Split:
        """The routes of canary step ``step``: the candidate's share, the champion the rest."""
        assert state.candidate_version is not None
        share = round(self.policy.rollout.steps[step].traffic)
        share = min(100, max(1, share))
        out = [(state.candidate_version, share, "canary")]
        if share < 100:
            out.append((int(state.data["champion_version"]), 100 - share, "champion"))
        return sorted(out)

    def _set_traffic(self, split: Split, reason: str) -> Deployment:
        current = self.client.deployments.get(self.deployment)
        if routes_of(current) == split:  # done before a crash: do not record it twice
            return current
        return self.client.deployments.set_traffic(
            self.deployment, weights_of(split), reason=reason
        )

    def _promote(self, state: LoopState, analysis: CanaryAnalysis | None, why: str) -> LoopEvent:
        cand, champ, model = (
            state.candidate_version,
            state.data["champion_version"],
            state.data["model"],
        )
        assert cand is not None
        reason = f"ctloop loop: {model}/{cand} passed its canary on {self.deployment}"
        self.client.models.set_alias(model, "champion", cand, reason=reason)
        deployment = self._set_traffic([(cand, 100, "champion")], reason)
        monitor_note = self._follow_with_monitor(f"{model}/{cand}")
        return self._move(
            state,
            S.PROMOTED,
            kind=EVENT_PROMOTED,
            summary=f"promoted {model}/{cand} to champion with 100% of traffic (was {champ}): "
            f"{why}; undo with: ctloop models rollback {model} and ctloop deployments "
            f"set-traffic {self.deployment} {champ}=100:champion",
            candidate=cand,
            data={**state.data, "finished_at": self.clock().isoformat()},
            evidence={
                **({} if analysis is None else analysis.to_dict()),
                **({"monitor": monitor_note} if monitor_note else {}),
            },
            links={
                "deployment_revision": deployment.revision,
                "model_version": f"{model}/{cand}",
                "previous_champion": f"{model}/{champ}",
            },
        )

    def _follow_with_monitor(self, version: str) -> str | None:
        """Point the deployment's monitor at the new champion's training data.

        A monitor measures drift against the reference it froze; left on the old champion,
        it would keep reporting the drift the new model was trained on. Re-created with the
        same settings (skipped when it already follows ``version``, so a restart repeats
        nothing). Returns what happened, for the event, or None without a monitor.
        """
        from ctloop.errors import CtloopError, NotFound
        from ctloop.monitoring.service import create_monitor

        try:
            monitor = self.client.monitors.get(self.deployment)
        except NotFound:
            return None
        if monitor.reference == version:
            return f"the monitor already measures against {version}"
        try:
            create_monitor(
                self.client,
                self.deployment,
                reference=version,
                features=None if monitor.features is None else list(monitor.features),
                window=monitor.window,
                drift_share=monitor.drift_share,
                rules=monitor.rules,
                sinks=monitor.sinks,
                cooldown=f"{int(monitor.cooldown_seconds)}s",
                replace=True,
            )
        except CtloopError as exc:  # the promotion stands; the monitor keeps its reference
            return f"the monitor still measures against {monitor.reference}: {exc}"
        return f"the monitor now measures against {version}'s training data"

    def _roll_back(
        self, state: LoopState, analysis: CanaryAnalysis | None, why: str, *, touch: bool = True
    ) -> LoopEvent:
        cand, champ, model = (
            state.candidate_version,
            state.data["champion_version"],
            state.data["model"],
        )
        assert cand is not None
        detail = why if analysis is None else f"{why}: {analysis.summary()}"
        reason = f"ctloop loop: canary of {model}/{cand} rolled back: {detail}"
        if touch:
            deployment = self._set_traffic([(int(champ), 100, "champion")], reason)
        else:
            deployment = self.client.deployments.get(self.deployment)
        self.client.models.set_version_tags((model, cand), {REJECTED_TAG: reason[:1000]})
        return self._move(
            state,
            S.ROLLED_BACK,
            kind=EVENT_ROLLED_BACK,
            summary=f"rolled back {model}/{cand}: {detail}",
            candidate=cand,
            data={**state.data, "finished_at": self.clock().isoformat()},
            evidence={} if analysis is None else analysis.to_dict(),
            links={"deployment_revision": deployment.revision, "model_version": f"{model}/{cand}"},
        )
