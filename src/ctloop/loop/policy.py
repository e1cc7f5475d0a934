"""Continuous-training policies: when to retrain, on what, how to gate and how to roll out.

One YAML file per deployment::

    deployment: churn
    triggers:
      drift: {share: 0.3, consecutive: 2}
      manual: true
    pipeline: examples.churn.pipeline:churn_pipeline

:func:`load_policy` and :func:`parse_policy` read it into a frozen :class:`Policy`; every
section has documented defaults, so a minimal policy names a pipeline and a trigger.
Problems are reported all at once, each starting with the file and the path of the key
(``policy.yaml: rollout.steps[1]: must be above the step before it (10), got 5``), as one
:class:`~ctloop.errors.InvalidInput`. :meth:`Policy.to_dict` gives the JSON form the store
keeps; :func:`parse_policy` reads it back to an equal policy. ``docs/loop.md`` documents
every key.

The dataclasses do not validate when built by hand; build policies with
:func:`parse_policy` (or :meth:`Policy.from_dict`), which does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.text import format_duration
from ctloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ctloop.evaluation.gate import Gate
    from ctloop.loop.cron import CronSchedule
    from ctloop.pipelines.definition import Pipeline

__all__ = [
    "DEFAULT_DROP",
    "DEFAULT_MIN_LABELS",
    "DURING_CANARY",
    "ESTIMATED_METRICS",
    "DriftTrigger",
    "ErrorRateCheck",
    "FeedbackData",
    "Guards",
    "Holdout",
    "LatencyCheck",
    "MetricCheck",
    "NewDataTrigger",
    "PerformanceTrigger",
    "PipelineSpec",
    "Policy",
    "PredictionDriftCheck",
    "Rollout",
    "RolloutChecks",
    "RolloutStep",
    "ScheduleTrigger",
    "TrainingData",
    "Triggers",
    "default_policy_yaml",
    "load_policy",
    "parse_policy",
]

#: What a trigger that fires while a canary runs does: wait for the canary to end, be
#: dropped, or stop the canary (rolled back) and retrain now.
DURING_CANARY = ("defer", "ignore", "restart")
#: The metrics the monitor estimates without labels (the default ``metrics`` of
#: :class:`~ctloop.monitoring.estimation.ConfidenceBasedEstimator`; a test pins it).
ESTIMATED_METRICS = ("accuracy", "f1", "roc_auc")
#: How the canary's predictions are compared with the champion's: the histogram
#: methods of :mod:`ctloop.monitoring.detectors` (a test pins it).
DIVERGENCE_METHODS = ("hellinger", "jensenshannon", "psi")
PERFORMANCE_SOURCES = ("realised", "estimated")
HOLDOUT_SPLITS = ("random", "time")
#: The performance trigger's defaults: realised accuracy more than 0.02 below the
#: champion's, on windows of at least 500 labels (the standard error of an accuracy near
#: 0.8 on 500 labels is 0.018). ``bench/loop.py`` measured them against a schedule and an
#: oracle (docs/benchmarks.md, "Loop quality").
DEFAULT_DROP = 0.02
DEFAULT_MIN_LABELS = 500


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


# --- triggers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftTrigger:
    """Retrain when the monitor's windows drift, ``consecutive`` windows in a row.

    Attributes:
        share: a window drifted when at least this share (0–1] of its features did;
            None: the share is not looked at.
        features: a window drifted also when any of these features did.
        consecutive: how many windows in a row must have drifted.
    """

    share: float | None = 0.3
    features: tuple[str, ...] = ()
    consecutive: int = 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "features": list(self.features),
            "consecutive": self.consecutive,
        }


@dataclass(frozen=True)
class PerformanceTrigger:
    """Retrain when a metric of the live model falls too low.

    Attributes:
        metric: a metric where higher is better (``accuracy``, ``f1``, ``roc_auc`` …).
        source: ``realised`` (the default: predictions joined with feedback labels) or
            ``estimated`` (without labels; only :data:`ESTIMATED_METRICS`). An estimate
            follows covariate shift only: a concept or prior drift leaves it unchanged.
        below: fire when the metric is below this absolute value.
        drop: fire when the metric is more than this much (in the metric's units) below
            the champion's value on the monitor's reference data. Exactly one of ``below``
            and ``drop`` is set.
        min_labels: ``realised`` only: a window judges nothing with fewer labelled rows.
        consecutive: how many windows in a row must be too low.
    """

    metric: str = "accuracy"
    source: str = "realised"
    below: float | None = None
    drop: float | None = DEFAULT_DROP
    min_labels: int = DEFAULT_MIN_LABELS
    consecutive: int = 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "source": self.source}
        out.update({"below": self.below} if self.below is not None else {"drop": self.drop})
        if self.source == "realised":
            out["min_labels"] = self.min_labels
        out["consecutive"] = self.consecutive
        return out


@dataclass(frozen=True)
class ScheduleTrigger:
    """Retrain on a clock: ``every`` so long after the last retrain, or on a ``cron``
    expression (five fields, UTC; see :mod:`ctloop.loop.cron`). Exactly one is set."""

    every: timedelta | None = None
    cron: str | None = None

    @property
    def cron_schedule(self) -> CronSchedule | None:
        """The parsed cron expression, or None for an ``every`` schedule."""
        from ctloop.loop.cron import parse_cron

        return None if self.cron is None else parse_cron(self.cron)

    def next_fire(self, after: datetime) -> datetime:
        """When the schedule fires next: ``after + every``, or the cron expression's next
        minute strictly after ``after`` (pass the last retrain's time as ``after``)."""
        schedule = self.cron_schedule
        if schedule is not None:
            return schedule.next_fire(after)
        assert self.every is not None
        return after + self.every

    def to_dict(self) -> dict[str, Any]:
        if self.cron is not None:
            return {"cron": self.cron}
        assert self.every is not None
        return {"every": format_duration(self.every)}


@dataclass(frozen=True)
class NewDataTrigger:
    """Retrain when a new version of ``dataset`` (a dataset name) is added."""

    dataset: str

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset}


@dataclass(frozen=True)
class Triggers:
    """What starts a retrain; a policy needs at least one (``manual: true`` counts).

    Attributes:
        drift, performance, schedule, new_data: each trigger, or None when off.
        manual: ``ctloop loop trigger`` may start a retrain under this policy.
    """

    drift: DriftTrigger | None = None
    performance: PerformanceTrigger | None = None
    schedule: ScheduleTrigger | None = None
    new_data: NewDataTrigger | None = None
    manual: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """The triggers that are on, e.g. ``("drift", "manual")``."""
        on = [n for n in ("drift", "performance", "schedule", "new_data") if getattr(self, n)]
        return (*on, "manual") if self.manual else tuple(on)

    def to_dict(self) -> dict[str, Any]:
        def part(trigger: Any) -> Any:
            return None if trigger is None else trigger.to_dict()

        return {
            "drift": part(self.drift),
            "performance": part(self.performance),
            "schedule": part(self.schedule),
            "new_data": part(self.new_data),
            "manual": self.manual,
        }


# --- training data and pipeline -------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackData:
    """Logged predictions joined with their feedback labels, as training rows.

    Attributes:
        window: how far back to read the prediction log.
        min_labels: fewer labelled rows than this and the feedback is not used.
        deployment: whose log to read; None: the policy's deployment.
    """

    window: timedelta = timedelta(days=30)
    min_labels: int = 100
    deployment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": format_duration(self.window),
            "min_labels": self.min_labels,
            "deployment": self.deployment,
        }


@dataclass(frozen=True)
class Holdout:
    """Which rows are held out to evaluate and gate the candidate and the champion.

    Attributes:
        fraction: the share of rows held out, in (0, 1).
        split: ``random`` (the default: old and new rows alike, so a retrain after a drift
            learns from the drifted rows too) or ``time`` (the newest rows, which then
            never reach training).
        seed: the random split's seed.
    """

    fraction: float = 0.2
    split: str = "random"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "split": self.split, "seed": self.seed}


@dataclass(frozen=True)
class TrainingData:
    """What a retrain learns from: a dataset, a window of feedback, or both combined.

    Attributes:
        dataset: a dataset reference, ``churn@latest`` or ``churn@3``.
        feedback: logged predictions joined with feedback labels.
        holdout: the rows held out for the gate.
    """

    dataset: str | None = None
    feedback: FeedbackData | None = None
    holdout: Holdout = field(default_factory=Holdout)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "feedback": None if self.feedback is None else self.feedback.to_dict(),
            "holdout": self.holdout.to_dict(),
        }


@dataclass(frozen=True)
class PipelineSpec:
    """The training pipeline: ``module:attribute`` (or ``path/to/file.py:attribute``), the
    params every retrain passes it (JSON values), and the executor it runs on."""

    target: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    executor: str = "local"

    def resolve(self) -> Pipeline:
        """Import the pipeline (see :func:`ctloop.pipelines.resolve_pipeline`)."""
        from ctloop.pipelines.definition import resolve_pipeline

        return resolve_pipeline(self.target)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "params": dict(self.params), "executor": self.executor}


# --- rollout --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutStep:
    """One canary step: ``traffic`` % of requests to the candidate, analysed every
    ``interval`` once the step has served ``min_requests``."""

    traffic: float
    min_requests: int = 200
    interval: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class ErrorRateCheck:
    """The canary's error rate may be at most the champion's plus ``max_increase``."""

    max_increase: float = 0.01


@dataclass(frozen=True)
class LatencyCheck:
    """The canary's p99 latency must be below ``p99_below_ms`` milliseconds."""

    p99_below_ms: float


@dataclass(frozen=True)
class PredictionDriftCheck:
    """The canary's prediction distribution may diverge from the champion's by at most
    ``threshold`` (measured with ``method``, one of :data:`DIVERGENCE_METHODS`)."""

    method: str = "jensenshannon"
    threshold: float = 0.1


@dataclass(frozen=True)
class MetricCheck:
    """When at least ``min_labels`` feedback labels exist, the canary's realised
    ``name`` may be worse than the champion's by at most ``margin``."""

    name: str
    margin: float = 0.02
    min_labels: int = 100


@dataclass(frozen=True)
class RolloutChecks:
    """The analysis run on every interval of every step; None turns a check off."""

    error_rate: ErrorRateCheck | None = field(default_factory=ErrorRateCheck)
    latency: LatencyCheck | None = None
    prediction_drift: PredictionDriftCheck | None = field(default_factory=PredictionDriftCheck)
    metric: MetricCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        def part(check: Any) -> Any:
            if check is None:
                return None
            return {k: _number(v) if isinstance(v, float) else v for k, v in vars(check).items()}

        return {
            "error_rate": part(self.error_rate),
            "latency": part(self.latency),
            "prediction_drift": part(self.prediction_drift),
            "metric": part(self.metric),
        }


def _default_steps() -> tuple[RolloutStep, ...]:
    return (RolloutStep(10.0), RolloutStep(50.0), RolloutStep(100.0))


@dataclass(frozen=True)
class Rollout:
    """How a candidate that passed the gate reaches all traffic.

    Attributes:
        steps: the canary steps, strictly increasing traffic shares ending at 100 %.
        min_requests, interval: what a step given as a bare number gets.
        failed_checks_limit: roll back once this many analyses have failed (Flagger's
            threshold); an analysis fails when any check does.
        checks: what each analysis checks.
    """

    steps: tuple[RolloutStep, ...] = field(default_factory=_default_steps)
    min_requests: int = 200
    interval: timedelta = timedelta(minutes=5)
    failed_checks_limit: int = 2
    checks: RolloutChecks = field(default_factory=RolloutChecks)

    def to_dict(self) -> dict[str, Any]:
        steps: list[Any] = []
        for step in self.steps:
            if step.min_requests == self.min_requests and step.interval == self.interval:
                steps.append(_number(step.traffic))
            else:
                steps.append(
                    {
                        "traffic": _number(step.traffic),
                        "min_requests": step.min_requests,
                        "interval": format_duration(step.interval),
                    }
                )
        return {
            "steps": steps,
            "min_requests": self.min_requests,
            "interval": format_duration(self.interval),
            "failed_checks_limit": self.failed_checks_limit,
            "checks": self.checks.to_dict(),
        }


@dataclass(frozen=True)
class Guards:
    """Limits on how often the loop acts.

    Attributes:
        cooldown: no retrain starts sooner than this after the previous one.
        max_retrains_per_day: at most this many retrains start in any 24 hours.
        during_canary: what a trigger does while a canary runs (:data:`DURING_CANARY`).
    """

    cooldown: timedelta = timedelta(hours=6)
    max_retrains_per_day: int = 4
    during_canary: str = "defer"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cooldown": format_duration(self.cooldown),
            "max_retrains_per_day": self.max_retrains_per_day,
            "during_canary": self.during_canary,
        }


# --- the policy -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A deployment's continuous-training policy (see the module docstring).

    Attributes:
        pipeline: the training pipeline.
        triggers: what starts a retrain.
        deployment: the deployment it drives; None when the command that attaches the
            policy names it.
        model: the registered model retrained versions join; None: the deployment's name.
        training_data: what a retrain learns from; None: the pipeline's own defaults.
        gate: the :class:`~ctloop.evaluation.Gate` a candidate must pass against the
            champion; None: only the pipeline's own gate step.
        rollout: the canary steps and their analysis.
        guards: cooldown, daily limit, behaviour while a canary runs.
    """

    pipeline: PipelineSpec
    triggers: Triggers
    deployment: str | None = None
    model: str | None = None
    training_data: TrainingData | None = None
    gate: Gate | None = None
    rollout: Rollout = field(default_factory=Rollout)
    guards: Guards = field(default_factory=Guards)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "policy") -> Policy:
        """The policy :meth:`to_dict` wrote (or any policy mapping), validated."""
        return parse_policy(data, source=source)

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON values; :func:`parse_policy` reads it back to an equal one."""
        return {
            "deployment": self.deployment,
            "model": self.model,
            "triggers": self.triggers.to_dict(),
            "training_data": None if self.training_data is None else self.training_data.to_dict(),
            "pipeline": self.pipeline.to_dict(),
            "gate": None if self.gate is None else self.gate.to_dict(),
            "rollout": self.rollout.to_dict(),
            "guards": self.guards.to_dict(),
        }

    def check_imports(self, *, source: str = "policy") -> Pipeline:
        """Import the pipeline and check the policy's params against its signature.

        Returns:
            The :class:`~ctloop.pipelines.Pipeline`.

        Raises:
            InvalidInput: naming ``pipeline.target`` (cannot import, not a ``@pipeline``)
                or ``pipeline.params`` (a param the pipeline does not take).
        """
        target = self.pipeline.target
        try:
            found = self.pipeline.resolve()
        except Exception as exc:  # the user's module may raise anything while importing
            reason = (
                str(exc)
                if isinstance(exc, InvalidInput | NotFound)
                else (f"importing it raised {type(exc).__name__}: {exc}")
            )
            raise InvalidInput(
                f"{source}: pipeline.target: cannot use {target!r}: {reason}"
            ) from exc
        try:
            found.check_param_names(self.pipeline.params)
        except InvalidInput as exc:
            raise InvalidInput(f"{source}: pipeline.params: {exc}") from None
        return found


def parse_policy(data: str | bytes | Mapping[str, Any], *, source: str = "policy.yaml") -> Policy:
    """A :class:`Policy` from YAML text or from a mapping (e.g. :meth:`Policy.to_dict`).

    Args:
        data: the YAML text, or the mapping it holds.
        source: the name errors start with (the file's path).

    Raises:
        InvalidInput: every problem found, one per line, each starting with ``source`` and
            the path of the key, e.g. ``policy.yaml: guards.max_retrains_per_day: must be
            1 or more, got 0``; a YAML syntax error names its line and column.
    """
    from ctloop.loop._policy_checks import read_policy
    from ctloop.loop._policy_reader import read_yaml

    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    mapping = read_yaml(data, source) if isinstance(data, str) else data
    return read_policy(mapping, source)


def load_policy(path: str | Path) -> Policy:
    """Read a policy file (see :func:`parse_policy`); errors start with its path.

    Raises:
        NotFound: there is no such file.
        InvalidInput: the file is not a valid policy.
    """
    file = Path(path)
    if not file.is_file():
        raise NotFound(f"no policy file {str(path)!r}; write one with: ctloop loop init")
    return parse_policy(file.read_text(encoding="utf-8"), source=str(path))


from ctloop.loop.policy_template import default_policy_yaml  # noqa: E402  (re-export)
