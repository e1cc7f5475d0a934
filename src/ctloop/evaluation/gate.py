"""Gates: may a candidate model replace the champion?

A gate is a list of checks on the candidate's :class:`~ctloop.evaluation.Evaluation`:

- **thresholds** on the candidate alone: ``"f1 >= 0.8"``, ``"log_loss <= 0.5"``;
- **minimum improvement** over the champion on the same holdout, absolute
  (``min_improvement={"f1": 0.01}``) or relative (``min_relative_improvement={"f1": 0.02}``
  = 2 % of the champion's value);
- a **paired bootstrap** of the improvement (:mod:`ctloop.evaluation.bootstrap`): the
  candidate passes only if the interval's lower bound is above ``margin``.

Improvements are oriented by metric direction in one place
(:func:`ctloop.evaluation.metrics.improvement`): positive means better, also for losses.
A negative minimum or margin expresses non-inferiority ("at most 0.01 worse").

With no champion (the first model), comparison checks are skipped, and pass, unless the
gate says ``require_champion=True``. The same gate can be written as a dict or YAML::

    thresholds: ["f1 >= 0.8", "log_loss <= 0.5"]
    min_improvement: {f1: 0.01}
    min_relative_improvement: {roc_auc: 0.02}
    bootstrap: {metric: roc_auc, confidence: 0.95, margin: 0.0, resamples: 1000, seed: 0}
    require_champion: false
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.evaluation import metrics as m
from ctloop.evaluation.result import FAILED, PASSED, SKIPPED, CheckResult, GateResult

if TYPE_CHECKING:
    from ctloop.evaluation.scoring import Evaluation
    from ctloop.tracking.run import Run

__all__ = ["BootstrapCheck", "Gate", "Improvement", "Threshold"]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_THRESHOLD = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.\-/]*)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_THRESHOLD_HELP = (
    "write it as METRIC OP NUMBER, e.g. 'f1 >= 0.8' or 'log_loss <= 0.5' "
    "(OP is one of >=, >, <=, <)"
)
NO_CHAMPION = "no champion to compare with"
# two floats that should be equal may differ in the last bits after a subtraction
_EPS = 1e-12


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{what} must be a finite number, got {value!r}")
    return number


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _signed(value: float) -> str:
    return f"{value:+.4f}"


@dataclass(frozen=True)
class Threshold:
    """An absolute bound on one of the candidate's metrics, e.g. ``f1 >= 0.8``."""

    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise InvalidInput(f"invalid gate operator {self.op!r}; use one of >=, >, <=, <")
        object.__setattr__(self, "metric", m.canonical(self.metric))
        object.__setattr__(self, "value", _number(self.value, f"the bound of {self.metric!r}"))

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """``"f1 >= 0.8"`` → ``Threshold("f1", ">=", 0.8)``.

        Raises:
            InvalidInput: the text is not ``METRIC OP NUMBER``.
        """
        if not isinstance(text, str):
            raise InvalidInput(f"invalid gate threshold {text!r}: {_THRESHOLD_HELP}")
        match = _THRESHOLD.match(text)
        if match is None:
            raise InvalidInput(f"invalid gate threshold {text!r}: {_THRESHOLD_HELP}")
        return cls(match["metric"], match["op"], float(match["value"]))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value!r}"

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.value)


@dataclass(frozen=True)
class Improvement:
    """The candidate must beat the champion on ``metric`` by at least ``minimum``.

    ``relative``: ``minimum`` is a share of the champion's value (0.02 = 2 %).
    """

    metric: str
    minimum: float
    relative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", m.spec(self.metric).name)
        what = "min_relative_improvement" if self.relative else "min_improvement"
        object.__setattr__(self, "minimum", _number(self.minimum, f"{what} of {self.metric!r}"))

    def __str__(self) -> str:
        amount = f"{self.minimum:.4g}" if not self.relative else f"{self.minimum * 100:.4g}%"
        return f"{self.metric} improves by >= {amount}"


@dataclass(frozen=True)
class BootstrapCheck:
    """The paired bootstrap interval of the improvement on ``metric`` must lie above
    ``margin`` (its lower bound strictly greater)."""

    metric: str
    confidence: float = 0.95
    margin: float = 0.0
    resamples: int = 1000
    seed: int | None = 0

    def __post_init__(self) -> None:
        from ctloop.evaluation.bootstrap import check_settings

        object.__setattr__(self, "metric", m.spec(self.metric).name)
        object.__setattr__(self, "margin", _number(self.margin, "the bootstrap margin"))
        check_settings(self.confidence, self.resamples, self.seed)

    @classmethod
    def from_dict(cls, data: BootstrapCheck | Mapping[str, Any]) -> BootstrapCheck:
        """From ``{"metric": "roc_auc", "confidence": 0.95, ...}``."""
        if isinstance(data, BootstrapCheck):
            return data
        if not isinstance(data, Mapping):
            raise InvalidInput(
                f"a bootstrap check must be a mapping like {{'metric': 'roc_auc'}}, got {data!r}"
            )
        allowed = ("metric", "confidence", "margin", "resamples", "seed")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise InvalidInput(f"unknown bootstrap setting(s) {unknown}; use {', '.join(allowed)}")
        if "metric" not in data:
            raise InvalidInput("a bootstrap check needs a metric, e.g. {'metric': 'roc_auc'}")
        if not isinstance(data["metric"], str):
            raise InvalidInput(
                f"a bootstrap check's metric must be a metric name such as 'roc_auc', "
                f"got {data['metric']!r}"
            )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "confidence": self.confidence,
            "margin": self.margin,
            "resamples": self.resamples,
            "seed": self.seed,
        }

    def __str__(self) -> str:
        return f"{self.metric} bootstrap {self.confidence * 100:g}% lower bound > {self.margin:g}"


ThresholdSpec = str | Threshold | Mapping[str, Any]
ThresholdsArg = str | Sequence[ThresholdSpec] | Mapping[str, Any] | None
BootstrapArg = BootstrapCheck | Mapping[str, Any] | Sequence[BootstrapCheck | Mapping[str, Any]]


def _thresholds(spec: ThresholdsArg) -> tuple[Threshold, ...]:
    if spec is None:
        return ()
    if isinstance(spec, str):
        parts = [p for p in re.split(r",|\band\b", spec) if p.strip()]
        return tuple(Threshold.parse(p) for p in parts)
    if isinstance(spec, Mapping):
        return tuple(_threshold_entry(metric, bound) for metric, bound in spec.items())
    if not isinstance(spec, Sequence) or isinstance(spec, bytes):
        raise InvalidInput(
            f"gate thresholds must be text, a list or a mapping, got {spec!r}: {_THRESHOLD_HELP}"
        )
    out = []
    for item in spec:
        if isinstance(item, Threshold):
            out.append(item)
        elif isinstance(item, str):
            out.append(Threshold.parse(item))
        elif isinstance(item, Mapping) and set(item) == {"metric", "op", "value"}:
            out.append(Threshold(item["metric"], item["op"], item["value"]))
        else:
            raise InvalidInput(f"invalid gate threshold {item!r}: {_THRESHOLD_HELP}")
    return tuple(out)


def _threshold_entry(metric: Any, bound: Any) -> Threshold:
    """``{"f1": ">= 0.8"}`` or ``{"f1": 0.8}`` (>= for higher-is-better, <= for losses)."""
    if not isinstance(metric, str):
        raise InvalidInput(f"invalid gate threshold metric {metric!r}: use a metric name")
    if isinstance(bound, str):
        return Threshold.parse(f"{metric} {bound}")
    op = ">=" if m.higher_is_better(metric) else "<="
    return Threshold(metric, op, _number(bound, f"the bound of {metric!r}"))


def _improvements(spec: Mapping[str, Any] | None, relative: bool) -> tuple[Improvement, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, Mapping):
        name = "min_relative_improvement" if relative else "min_improvement"
        raise InvalidInput(f"{name} must map metrics to numbers, e.g. {{'f1': 0.01}}, got {spec!r}")
    return tuple(Improvement(k, v, relative) for k, v in spec.items())


def _bootstraps(spec: BootstrapArg | None) -> tuple[BootstrapCheck, ...]:
    if spec is None:
        return ()
    if isinstance(spec, BootstrapCheck | Mapping):
        return (BootstrapCheck.from_dict(spec),)
    if isinstance(spec, str):
        raise InvalidInput(
            f"bootstrap must be a mapping like {{'metric': 'roc_auc'}}, got {spec!r}"
        )
    return tuple(BootstrapCheck.from_dict(item) for item in spec)


_KEYS = (
    "thresholds",
    "min_improvement",
    "min_relative_improvement",
    "bootstrap",
    "require_champion",
)


class Gate:
    """Checks a candidate's evaluation must pass, alone and against the champion's.

    Args:
        thresholds: ``"f1 >= 0.8"``, a list of such strings (or :class:`Threshold`), or a
            mapping ``{"f1": ">= 0.8"}`` / ``{"f1": 0.8}`` (a bare number means ``>=`` for
            higher-is-better metrics and ``<=`` for losses and errors).
        min_improvement: metric → the least absolute improvement over the champion.
        min_relative_improvement: metric → the least improvement as a share of the
            champion's value (0.02 = 2 %).
        bootstrap: one or several ``{"metric", "confidence", "margin", "resamples",
            "seed"}`` mappings (or :class:`BootstrapCheck`).
        require_champion: fail when there is no champion, instead of skipping the
            comparisons.

    Raises:
        InvalidInput: a malformed check, an unknown metric in a comparison, or no checks.

    Example::

        gate = Gate(["f1 >= 0.6"], bootstrap={"metric": "roc_auc", "margin": 0.0})
        result = gate.check(candidate, champion)
        print(result)
    """

    def __init__(
        self,
        thresholds: ThresholdsArg = None,
        *,
        min_improvement: Mapping[str, float] | None = None,
        min_relative_improvement: Mapping[str, float] | None = None,
        bootstrap: BootstrapArg | None = None,
        require_champion: bool = False,
    ) -> None:
        self.thresholds = _thresholds(thresholds)
        self.improvements = _improvements(min_improvement, False) + _improvements(
            min_relative_improvement, True
        )
        self.bootstraps = _bootstraps(bootstrap)
        if not isinstance(require_champion, bool):
            raise InvalidInput(f"require_champion must be true or false, got {require_champion!r}")
        self.require_champion = require_champion
        if not (self.thresholds or self.improvements or self.bootstraps or require_champion):
            raise InvalidInput(
                "the gate has no checks; give thresholds, min_improvement, "
                "min_relative_improvement or bootstrap"
            )

    # --- other forms --------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gate:
        """A gate from its dict form (the keys of :meth:`to_dict`; ``{"gate": {...}}`` too)."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"a gate spec must be a mapping, got {type(data).__name__}")
        if set(data) == {"gate"} and isinstance(data["gate"], Mapping):
            data = data["gate"]
        unknown = sorted(str(k) for k in set(data) - set(_KEYS))
        if unknown:
            raise InvalidInput(f"unknown gate setting(s) {unknown}; use {', '.join(_KEYS)}")
        return cls(
            data.get("thresholds"),
            min_improvement=data.get("min_improvement"),
            min_relative_improvement=data.get("min_relative_improvement"),
            bootstrap=data.get("bootstrap"),
            require_champion=data.get("require_champion", False),
        )

    @classmethod
    def from_yaml(cls, text: str) -> Gate:
        """A gate from YAML text holding its dict form."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"the gate spec is not valid YAML: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def coerce(cls, spec: Gate | Mapping[str, Any] | str | Sequence[str]) -> Gate:
        """A :class:`Gate` from any of its forms: a gate, a dict, thresholds text or list."""
        if isinstance(spec, Gate):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_dict(spec)
        return cls(spec)

    def to_dict(self) -> dict[str, Any]:
        """The dict form, which :meth:`from_dict` reads back to an equal gate."""
        return {
            "thresholds": [str(t) for t in self.thresholds],
            "min_improvement": {i.metric: i.minimum for i in self.improvements if not i.relative},
            "min_relative_improvement": {
                i.metric: i.minimum for i in self.improvements if i.relative
            },
            "bootstrap": [b.to_dict() for b in self.bootstraps],
            "require_champion": self.require_champion,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Gate) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        checks = [str(t) for t in self.thresholds] + [str(i) for i in self.improvements]
        checks += [str(b) for b in self.bootstraps]
        req = ", require_champion" if self.require_champion else ""
        return f"<Gate {'; '.join(checks)}{req}>"

    # --- checking -----------------------------------------------------------------------

    def check(
        self,
        candidate: Evaluation,
        champion: Evaluation | None = None,
        *,
        run: Run | None = None,
        log: bool = True,
    ) -> GateResult:
        """Run every check on ``candidate`` (and against ``champion``, when there is one).

        The result is logged to ``run``, or the active run, or nowhere (see
        :meth:`GateResult.log`); ``log=False`` logs nothing.

        Raises:
            InvalidInput: the champion was evaluated on other rows (a different count,
                labels or task) than the candidate.
        """
        if champion is not None:
            candidate.check_same_holdout(champion)
        checks = [_threshold_check(t, candidate) for t in self.thresholds]
        for imp in self.improvements:
            checks.append(_improvement_check(imp, candidate, champion))
        for boot in self.bootstraps:
            checks.append(_bootstrap_check(boot, candidate, champion))
        if champion is None and self.require_champion:
            checks.append(
                CheckResult(
                    "champion",
                    "a champion exists",
                    FAILED,
                    f"{NO_CHAMPION}, and the gate requires one (require_champion=True); "
                    "register and alias a champion first, or drop require_champion",
                )
            )
        result = GateResult(
            checks=tuple(checks),
            gate=self.to_dict(),
            n=candidate.n,
            has_champion=champion is not None,
            candidate_ref=candidate.model_ref,
            champion_ref=champion.model_ref if champion is not None else None,
        )
        if log:
            result.log(run)
        return result


def _values(
    metric: str, candidate: Evaluation, champion: Evaluation | None
) -> tuple[float | None, float | None, str | None]:
    """Both values of ``metric``, or a failure message when one is missing or undefined."""
    if metric not in candidate.metrics:
        missing = candidate.missing_metric(metric, "the candidate's evaluation")
        return None, None, f"{missing}; fix the gate or the evaluation"
    value = candidate.metrics[metric]
    if math.isnan(value):
        return value, None, f"the candidate's {metric} is undefined (NaN) on this holdout"
    if champion is None:
        return value, None, None
    if metric not in champion.metrics:
        return value, None, champion.missing_metric(metric, "the champion's evaluation")
    other = champion.metrics[metric]
    if math.isnan(other):
        return value, other, f"the champion's {metric} is undefined (NaN) on this holdout"
    return value, other, None


def _threshold_check(t: Threshold, candidate: Evaluation) -> CheckResult:
    value, _, problem = _values(t.metric, candidate, None)
    common: dict[str, Any] = {
        "kind": "threshold",
        "name": str(t),
        "metric": t.metric,
        "value": value,
        "threshold": t.value,
        "candidate": value,
    }
    if problem is not None:
        return CheckResult(status=FAILED, message=problem, **common)
    assert value is not None
    ok = t.holds(value)
    message = f"{t.metric} = {_fmt(value)} {'' if ok else 'is not '}{t.op} {t.value!r}"
    return CheckResult(status=PASSED if ok else FAILED, message=message, **common)


def _improvement_check(
    imp: Improvement, candidate: Evaluation, champion: Evaluation | None
) -> CheckResult:
    common: dict[str, Any] = {
        "kind": "relative_improvement" if imp.relative else "improvement",
        "name": str(imp),
        "metric": imp.metric,
        "threshold": imp.minimum,
    }
    if champion is None:
        return CheckResult(status=SKIPPED, message=NO_CHAMPION, **common)
    value, other, problem = _values(imp.metric, candidate, champion)
    common.update(candidate=value, champion=other)
    if problem is not None:
        return CheckResult(status=FAILED, message=problem, **common)
    assert value is not None and other is not None
    gain = float(m.improvement(imp.metric, value, other))
    direction = "" if m.higher_is_better(imp.metric) else ", lower is better"
    compared = f"{_fmt(value)} vs champion {_fmt(other)}{direction}"
    if imp.relative:
        if other == 0:
            message = (
                f"a relative improvement is undefined when the champion's {imp.metric} is 0; "
                "use min_improvement (absolute) for this metric"
            )
            return CheckResult(status=FAILED, message=message, **common)
        gain = gain / abs(other)
        shown, wanted = f"{gain * 100:+.2f}%", f"{imp.minimum * 100:+.2f}%"
    else:
        shown, wanted = _signed(gain), _signed(imp.minimum)
    ok = gain >= imp.minimum - _EPS
    verdict = "at least" if ok else "less than"
    message = f"improved by {shown} ({compared}): {verdict} the {wanted} asked for"
    return CheckResult(status=PASSED if ok else FAILED, message=message, value=gain, **common)


def _bootstrap_check(
    boot: BootstrapCheck, candidate: Evaluation, champion: Evaluation | None
) -> CheckResult:
    from ctloop.evaluation.bootstrap import paired_bootstrap

    common: dict[str, Any] = {
        "kind": "bootstrap",
        "name": str(boot),
        "metric": boot.metric,
        "threshold": boot.margin,
    }
    if champion is None:
        return CheckResult(status=SKIPPED, message=NO_CHAMPION, **common)
    value, other, problem = _values(boot.metric, candidate, champion)
    common.update(candidate=value, champion=other)
    if problem is not None:
        return CheckResult(status=FAILED, message=problem, **common)
    ci = paired_bootstrap(
        candidate,
        champion,
        boot.metric,
        confidence=boot.confidence,
        resamples=boot.resamples,
        seed=boot.seed,
    )
    common.update(interval=(ci.lower, ci.upper), details=ci.to_dict())
    if ci.used == 0:
        message = f"{boot.metric} was undefined on every resample, so nothing is known"
        return CheckResult(status=FAILED, message=message, **common)
    ok = ci.lower > boot.margin
    left_out = f", {ci.resamples - ci.used} undefined left out" if ci.used < ci.resamples else ""
    described = (
        f"improvement {ci.confidence * 100:g}% CI [{_signed(ci.lower)}, {_signed(ci.upper)}], "
        f"estimate {_signed(ci.estimate)} ({ci.resamples} resamples{left_out})"
    )
    if ok:
        message = f"{described}: lower bound above margin {boot.margin:g}"
    else:
        message = (
            f"{described}: lower bound not above margin {boot.margin:g}, so the candidate "
            "is not shown to be better"
        )
    return CheckResult(status=PASSED if ok else FAILED, message=message, value=ci.lower, **common)
