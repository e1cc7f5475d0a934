"""What a gate decided: every check with its value, threshold, outcome and reason."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctloop.evaluation._runs import json_safe, log_json, target_run

if TYPE_CHECKING:
    from ctloop.tracking.run import Run

__all__ = ["FAILED", "PASSED", "SKIPPED", "CheckResult", "GateResult"]

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"

ARTIFACT = "gate.json"
TAG = "ctloop.gate"


@dataclass(frozen=True)
class CheckResult:
    """One check of a gate.

    Attributes:
        kind: ``threshold``, ``improvement``, ``relative_improvement``, ``bootstrap`` or
            ``champion`` (the champion a ``require_champion`` gate needs).
        name: the check as written, e.g. ``f1 >= 0.8``.
        status: ``passed``, ``failed`` or ``skipped`` (a comparison with no champion).
        message: what was compared and why it passed, failed or was skipped.
        metric: the metric checked.
        value: the number compared with ``threshold``: the metric (threshold), the
            improvement (absolute or relative), or the interval's lower bound (bootstrap).
        threshold: the bound ``value`` had to clear.
        interval: the bootstrap interval of the improvement ``(lower, upper)``.
        candidate: the candidate's value of the metric.
        champion: the champion's value of the metric.
        details: extra figures (the bootstrap's estimate, mean, resamples, seed…).
    """

    kind: str
    name: str
    status: str
    message: str
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    interval: tuple[float, float] | None = None
    candidate: float | None = None
    champion: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True unless the check failed (a skipped check does not fail the gate)."""
        return self.status != FAILED

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "message": self.message,
        }
        for key in ("metric", "value", "threshold", "candidate", "champion"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.interval is not None:
            out["interval"] = list(self.interval)
        if self.details:
            out["details"] = dict(self.details)
        return out


@dataclass(frozen=True)
class GateResult:
    """The outcome of :meth:`ctloop.evaluation.Gate.check`.

    Attributes:
        checks: every check, in the gate's order.
        gate: the gate's spec (``Gate.to_dict()``).
        n: the number of holdout rows.
        has_champion: whether a champion was compared with.
        candidate_ref: what the candidate is, when known.
        champion_ref: what the champion is, e.g. ``churn/3``, when known.
    """

    checks: tuple[CheckResult, ...]
    gate: dict[str, Any]
    n: int
    has_champion: bool
    candidate_ref: str | None = None
    champion_ref: str | None = None

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == FAILED]

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: NaN and infinite values become None."""
        return json_safe(
            {
                "passed": self.passed,
                "n": self.n,
                "has_champion": self.has_champion,
                "candidate_ref": self.candidate_ref,
                "champion_ref": self.champion_ref,
                "counts": {s: self.count(s) for s in (PASSED, FAILED, SKIPPED)},
                "checks": [c.to_dict() for c in self.checks],
                "gate": self.gate,
            }
        )

    def summary(self) -> str:
        """One line: the verdict and the counts."""
        versus = (
            f"champion {self.champion_ref}"
            if self.champion_ref
            else ("the champion" if self.has_champion else "no champion")
        )
        return (
            f"gate {'PASSED' if self.passed else 'FAILED'}: {self.count(PASSED)} passed, "
            f"{self.count(FAILED)} failed, {self.count(SKIPPED)} skipped "
            f"({self.n} holdout rows, vs {versus})"
        )

    def render(self) -> str:
        """A readable report: the verdict, then one line per check."""
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [self.summary()]
        for c in self.checks:
            mark = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}[c.status]
            lines.append(f"  {mark}  {c.name:<{width}}  {c.message}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def log(self, run: Run | None = None) -> None:
        """Record the result on ``run`` (default: the active run; none: no-op).

        Metrics ``gate.passed`` (1 or 0) and ``gate.checks_failed``, the bootstrap bounds
        as ``gate.bootstrap.<metric>.lower``/``.upper``, the tag ``ctloop.gate``
        (``passed``/``failed``) and the artifact ``gate.json`` (:meth:`to_dict`).
        """
        target = target_run(run)
        if target is None:
            return
        values: dict[str, float] = {
            "gate.passed": 1.0 if self.passed else 0.0,
            "gate.checks_failed": float(self.count(FAILED)),
        }
        for c in self.checks:
            if c.kind == "bootstrap" and c.interval is not None and c.metric is not None:
                lower, upper = c.interval
                if not (math.isnan(lower) or math.isnan(upper)):
                    values[f"gate.bootstrap.{c.metric}.lower"] = lower
                    values[f"gate.bootstrap.{c.metric}.upper"] = upper
        target.log_metrics(values)
        target.set_tag(TAG, PASSED if self.passed else FAILED)
        log_json(target, ARTIFACT, self.to_dict())
