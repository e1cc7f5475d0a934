"""Alert rules: when a monitoring result crosses a line, raise an :class:`Alert`.

A rule is a frozen dataclass with a ``kind`` and its parameters; ``evaluate(observations)``
looks at what the monitor measured for one deployment (:class:`Observations`) and returns
an :class:`Alert` or None:

- :class:`DriftShareAbove` — the share of drifted columns;
- :class:`FeatureScoreAbove` — one column's drift score;
- :class:`PerformanceBelow` — a realised or estimated metric (higher is better);
- :class:`ErrorRateAbove` and :class:`LatencyAbove` — serving health.

"Above" and "below" are strict: a value equal to the threshold does not fire.
:func:`rules_from_config` builds rules from YAML/JSON-style mappings with errors that name
the bad entry. :class:`ctloop.monitoring.alerts.AlertManager` runs them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.monitoring.estimation import EstimatedPerformance
    from ctloop.monitoring.performance import HealthRow, WindowPerformance
    from ctloop.monitoring.results import DatasetDrift

__all__ = [
    "RULES",
    "SEVERITIES",
    "Alert",
    "DriftShareAbove",
    "ErrorRateAbove",
    "FeatureScoreAbove",
    "LatencyAbove",
    "Observations",
    "PerformanceBelow",
    "Rule",
    "rule_from_config",
    "rules_from_config",
]

SEVERITIES = ("warning", "critical")

#: Metrics where lower is better: "performance below" makes no sense for them.
_LOWER_IS_BETTER = frozenset({"mae", "rmse", "log_loss"})


@dataclass(frozen=True)
class Observations:
    """What the monitor measured for one deployment; rules skip what is None.

    Attributes:
        deployment: the deployment's name.
        dataset_drift: the drift of the current window.
        performance: realised performance per window, oldest first.
        estimated: estimated performance of the current window.
        health: serving health per window, version and variant.
        report_id: the monitoring report these come from, copied into each alert.
    """

    deployment: str
    dataset_drift: DatasetDrift | None = None
    performance: list[WindowPerformance] | None = None
    estimated: EstimatedPerformance | None = None
    health: list[HealthRow] | None = None
    report_id: str | None = None


@dataclass(frozen=True)
class Alert:
    """One rule firing for one deployment.

    Attributes:
        id: a random hex id.
        rule: the rule's ``kind`` and parameters (:meth:`Rule.to_dict`).
        deployment: the deployment it concerns.
        severity: ``warning`` or ``critical``.
        message: one sentence naming the value, the threshold and what it concerns.
        value: the value that crossed the threshold.
        threshold: the threshold it crossed.
        evidence: the numbers behind it (JSON values).
        created_at: when it fired (timezone-aware).
        dedup_key: the rule and the deployment; the cooldown applies per key.
        report_id: the monitoring report it came from, if any.
    """

    id: str
    rule: dict[str, Any]
    deployment: str
    severity: str
    message: str
    value: float | None
    threshold: float | None
    evidence: dict[str, Any]
    created_at: datetime
    dedup_key: str
    report_id: str | None = None

    @property
    def kind(self) -> str:
        return str(self.rule["kind"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "rule": dict(self.rule),
            "deployment": self.deployment,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "evidence": dict(self.evidence),
            "created_at": self.created_at.isoformat(),
            "dedup_key": self.dedup_key,
            "report_id": self.report_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The alert :meth:`to_dict` described (e.g. read back from storage)."""
        return cls(
            id=data["id"],
            rule=dict(data["rule"]),
            deployment=data["deployment"],
            severity=data["severity"],
            message=data["message"],
            value=data.get("value"),
            threshold=data.get("threshold"),
            evidence=dict(data.get("evidence") or {}),
            created_at=_aware(datetime.fromisoformat(data["created_at"])),
            dedup_key=data["dedup_key"],
            report_id=data.get("report_id"),
        )


# --- rules ----------------------------------------------------------------------------------


class _ParamError(InvalidInput):
    """A rule parameter is wrong; :func:`rule_from_config` prefixes the config path."""

    def __init__(self, rule: str, param: str, problem: str) -> None:
        super().__init__(f"{rule}.{param} {problem}")
        self.rule, self.param, self.problem = rule, param, problem

    def __reduce__(self) -> tuple[type[_ParamError], tuple[str, str, str]]:
        return (type(self), (self.rule, self.param, self.problem))


@dataclass(frozen=True)
class Rule:
    """Base of the alert rules: a ``kind``, the parameters subclasses add, and
    ``severity`` (keyword-only: ``warning`` or ``critical``)."""

    kind: ClassVar[str]
    severity: str = field(default="warning", kw_only=True)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            self._bad("severity", f"must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        self._validate()

    def _validate(self) -> None:
        """Raise :class:`_ParamError` for a bad parameter."""

    def evaluate(self, observations: Observations, *, now: datetime | None = None) -> Alert | None:
        """An alert when ``observations`` cross this rule's threshold, else None.

        Args:
            observations: what the monitor measured for one deployment.
            now: the alert's ``created_at``; default: the current time (UTC).
        """
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The parameters, ``severity`` last."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "severity"}
        return {**out, "severity": self.severity}

    def to_dict(self) -> dict[str, Any]:
        """``kind`` and the parameters; :func:`rule_from_config` reads it back."""
        return {"kind": self.kind, **self.params()}

    def dedup_key(self, deployment: str) -> str:
        """The rule (kind and parameters) and the deployment, e.g.
        ``feature_score_above:churn:feature=age,severity=warning,threshold=0.25``."""
        params = ",".join(f"{k}={v}" for k, v in sorted(self.params().items()) if v is not None)
        return f"{self.kind}:{deployment}:{params}"

    def _bad(self, param: str, problem: str) -> None:
        raise _ParamError(type(self).__name__, param, problem)

    def _number(self, param: str, low: float | None = None, high: float | None = None) -> None:
        value = getattr(self, param)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self._bad(param, f"must be a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            self._bad(param, f"must be {span}, got {value!r}")

    def _count(self, param: str) -> None:
        value = getattr(self, param)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self._bad(param, f"must be a whole number >= 0, got {value!r}")

    def _text(self, param: str, choices: Sequence[str] | None = None) -> None:
        value = getattr(self, param)
        if not isinstance(value, str) or not value:
            self._bad(param, f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            self._bad(param, f"must be one of {', '.join(choices)}, got {value!r}")

    def _alert(
        self,
        observations: Observations,
        now: datetime | None,
        *,
        value: float,
        threshold: float,
        message: str,
        evidence: dict[str, Any],
    ) -> Alert:
        return Alert(
            id=uuid.uuid4().hex,
            rule=self.to_dict(),
            deployment=observations.deployment,
            severity=self.severity,
            message=message,
            value=float(value),
            threshold=float(threshold),
            evidence=evidence,
            created_at=_aware(now) if now is not None else datetime.now(UTC),
            dedup_key=self.dedup_key(observations.deployment),
            report_id=observations.report_id,
        )


@dataclass(frozen=True)
class DriftShareAbove(Rule):
    """Fires when the share of drifted columns is above ``threshold`` (0–1)."""

    kind: ClassVar[str] = "drift_share_above"
    threshold: float

    def _validate(self) -> None:
        self._number("threshold", 0, 1)

    def evaluate(self, observations: Observations, *, now: datetime | None = None) -> Alert | None:
        drift = observations.dataset_drift
        if drift is None or not _above(drift.drifted_share, self.threshold):
            return None
        drifted = drift.drifted_columns
        return self._alert(
            observations,
            now,
            value=drift.drifted_share,
            threshold=self.threshold,
            message=(
                f"drift share {drift.drifted_share:.3g} is above {self.threshold:.3g} on "
                f"deployment '{observations.deployment}': {len(drifted)} of "
                f"{len(drift.columns)} columns drifted ({_names(drifted)})"
            ),
            evidence={
                "drifted_share": drift.drifted_share,
                "drifted_columns": drifted,
                "columns_tested": len(drift.columns),
            },
        )


@dataclass(frozen=True)
class FeatureScoreAbove(Rule):
    """Fires when the drift score of column ``feature`` is above ``threshold``; with
    ``method``, only a result of that method counts."""

    kind: ClassVar[str] = "feature_score_above"
    feature: str
    threshold: float
    method: str | None = None

    def _validate(self) -> None:
        self._text("feature")
        self._number("threshold")
        if self.method is not None:
            self._text("method")

    def evaluate(self, observations: Observations, *, now: datetime | None = None) -> Alert | None:
        drift = observations.dataset_drift
        found = [
            r
            for r in (drift.columns if drift is not None else [])
            if r.column == self.feature and (self.method is None or r.method == self.method)
        ]
        if not found or not _above(found[0].score, self.threshold):
            return None
        result = found[0]
        p_value = f", p-value {result.p_value:.3g}" if result.p_value is not None else ""
        return self._alert(
            observations,
            now,
            value=result.score,
            threshold=self.threshold,
            message=(
                f"feature '{self.feature}' drift score {result.score:.3g} ({result.method}"
                f"{p_value}) is above {self.threshold:.3g} on deployment "
                f"'{observations.deployment}'"
            ),
            evidence=result.to_dict(),
        )


@dataclass(frozen=True)
class PerformanceBelow(Rule):
    """Fires when ``metric`` is below ``threshold``.

    With ``source="realised"`` it judges the most recent window with at least
    ``min_labels`` labelled rows and a value for the metric; with ``"estimated"``, the
    estimate, when it covers at least ``min_labels`` rows. Only metrics where higher is
    better (``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc``, ``r2``).
    """

    kind: ClassVar[str] = "performance_below"
    metric: str
    threshold: float
    source: str = "realised"
    min_labels: int = 30

    def _validate(self) -> None:
        self._text("metric")
        if self.metric in _LOWER_IS_BETTER:
            self._bad(
                "metric",
                f"{self.metric!r} is better when lower; use a metric where "
                "higher is better (accuracy, precision, recall, f1, roc_auc, r2)",
            )
        self._number("threshold")
        self._text("source", ("realised", "estimated"))
        self._count("min_labels")

    def evaluate(self, observations: Observations, *, now: datetime | None = None) -> Alert | None:
        if self.source == "estimated":
            return self._estimated(observations, now)
        for window in reversed(observations.performance or []):
            value = (window.metrics or {}).get(self.metric)
            if window.labelled < self.min_labels or value is None or math.isnan(value):
                continue
            if not _below(value, self.threshold):
                return None
            span = ""
            if window.start is not None and window.end is not None:
                span = f"window {window.start.isoformat()} to {window.end.isoformat()}, "
            return self._alert(
                observations,
                now,
                value=value,
                threshold=self.threshold,
                message=(
                    f"realised {self.metric} {value:.3g} is below {self.threshold:.3g} on "
                    f"deployment '{observations.deployment}' ({span}{window.labelled} "
                    "labelled rows)"
                ),
                evidence=window.to_dict(),
            )
        return None

    def _estimated(self, observations: Observations, now: datetime | None) -> Alert | None:
        estimated = observations.estimated
        if estimated is None or estimated.rows < self.min_labels:
            return None
        estimate = estimated.metrics.get(self.metric)
        if estimate is None or estimate.value is None or not _below(estimate.value, self.threshold):
            return None
        band = ""
        if estimate.lower is not None and estimate.upper is not None:
            band = f", band {estimate.lower:.3g} to {estimate.upper:.3g}"
        return self._alert(
            observations,
            now,
            value=estimate.value,
            threshold=self.threshold,
            message=(
                f"estimated {self.metric} {estimate.value:.3g} is below {self.threshold:.3g} "
                f"on deployment '{observations.deployment}' ({estimated.rows} unlabelled "
                f"rows{band})"
            ),
            evidence={"rows": estimated.rows, **estimate.to_dict()},
        )


@dataclass(frozen=True)
class ErrorRateAbove(Rule):
    """Fires when, in the latest health window, the error rate of some model version and
    variant with at least ``min_rows`` rows is above ``threshold`` (0–1); the alert names
    the worst."""

    kind: ClassVar[str] = "error_rate_above"
    threshold: float
    min_rows: int = 1

    def _validate(self) -> None:
        self._number("threshold", 0, 1)
        self._count("min_rows")

    def evaluate(self, observations: Observations, *, now: datetime | None = None) -> Alert | None:
        rows = [r for r in _latest(observations.health) if r.rows >= max(self.min_rows, 1)]
        if not rows:
            return None
        worst = max(rows, key=lambda r: r.error_rate)
        if not _above(worst.error_rate, self.threshold):
            return None
        return self._alert(
            observations,
            now,
            value=worst.error_rate,
            threshold=self.threshold,
            message=(
                f"error rate {worst.error_rate:.1%} is above {self.threshold:.1%} on "
                f"deployment '{observations.deployment}' ({_where(worst)}: {worst.errors} "
                f"of {worst.rows} rows failed)"
            ),
            evidence=worst.to_dict(),
        )


@dataclass(frozen=True)
class LatencyAbove(Rule):
    """Fires when, in the latest health window, the latency ``quantile`` (``p50``,
    ``p99`` or ``mean``) of some model version and variant with at least ``min_rows``
    rows is above ``threshold_ms``; the alert names the slowest."""

    kind: ClassVar[str] = "latency_above"
    threshold_ms: float
    quantile: str = "p99"
    min_rows: int = 1

    def _validate(self) -> None:
        self._number("threshold_ms", 0)
        self._text("quantile", ("p50", "p99", "mean"))
        self._count("min_rows")

    def evaluate(self, observations: Observations, *, now: datetime | None = None) -> Alert | None:
        attr = f"latency_{self.quantile}_ms"
        rows = [
            r
            for r in _latest(observations.health)
            if r.rows >= max(self.min_rows, 1) and getattr(r, attr) is not None
        ]
        if not rows:
            return None
        worst = max(rows, key=lambda r: float(getattr(r, attr)))
        value = float(getattr(worst, attr))
        if not _above(value, self.threshold_ms):
            return None
        return self._alert(
            observations,
            now,
            value=value,
            threshold=self.threshold_ms,
            message=(
                f"{self.quantile} latency {value:.4g} ms is above {self.threshold_ms:.4g} ms "
                f"on deployment '{observations.deployment}' ({_where(worst)}, {worst.rows} rows)"
            ),
            evidence=worst.to_dict(),
        )


#: Rule classes by ``kind``.
RULES: dict[str, type[Rule]] = {
    cls.kind: cls
    for cls in (DriftShareAbove, FeatureScoreAbove, PerformanceBelow, ErrorRateAbove, LatencyAbove)
}


def rules_from_config(specs: Any, *, where: str = "rules") -> list[Rule]:
    """Rules from a list of mappings, as YAML or JSON give them.

    Each mapping has a ``kind`` (a key of :data:`RULES`) and the rule's parameters::

        - {kind: drift_share_above, threshold: 0.3, severity: critical}
        - {kind: feature_score_above, feature: age, threshold: 0.25, method: psi}
        - {kind: performance_below, metric: roc_auc, threshold: 0.7, source: estimated}

    Raises:
        InvalidInput: naming the entry and key, e.g.
            ``rules[2].threshold must be a number, got 'high'``.
    """
    if isinstance(specs, Mapping | str | bytes) or not isinstance(specs, Sequence):
        raise InvalidInput(
            f"{where} must be a list of rule mappings, got {type(specs).__name__}: {specs!r}"
        )
    return [rule_from_config(spec, where=f"{where}[{i}]") for i, spec in enumerate(specs)]


def rule_from_config(spec: Any, *, where: str = "rule") -> Rule:
    """One rule from a mapping (see :func:`rules_from_config`)."""
    kinds = ", ".join(RULES)
    if not isinstance(spec, Mapping):
        raise InvalidInput(
            f"{where} must be a mapping with a 'kind', got {type(spec).__name__}: {spec!r}"
        )
    if "kind" not in spec:
        raise InvalidInput(f"{where}.kind is missing; use one of: {kinds}")
    kind = spec["kind"]
    cls = RULES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidInput(f"{where}.kind {kind!r} is not a rule; use one of: {kinds}")
    known = [f.name for f in fields(cls)]
    for key in spec:
        if key != "kind" and key not in known:
            raise InvalidInput(
                f"{where} has unknown key {key!r} for {kind}; its keys are: "
                f"kind, {', '.join(known)}"
            )
    for f in fields(cls):
        if f.default is MISSING and f.default_factory is MISSING and f.name not in spec:
            raise InvalidInput(f"{where}.{f.name} is required for {kind}")
    try:
        return cls(**{k: v for k, v in spec.items() if k != "kind"})
    except _ParamError as exc:
        raise InvalidInput(f"{where}.{exc.param} {exc.problem}") from None


# --- helpers --------------------------------------------------------------------------------


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _above(value: float | None, threshold: float) -> bool:
    return value is not None and not math.isnan(value) and value > threshold


def _below(value: float | None, threshold: float) -> bool:
    return value is not None and not math.isnan(value) and value < threshold


def _names(columns: list[str], limit: int = 5) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _latest(health: list[HealthRow] | None) -> list[HealthRow]:
    """The rows of the most recent window (all rows when they have no window)."""
    rows = list(health or [])
    starts = [r.start for r in rows if r.start is not None]
    if not starts:
        return rows
    latest = max(starts)
    return [r for r in rows if r.start == latest]


def _where(row: HealthRow) -> str:
    return f"version {row.model_version}" + (f", variant {row.variant}" if row.variant else "")
