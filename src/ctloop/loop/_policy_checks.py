"""Reading a policy: the YAML, then each section, every problem collected before raising.

Each problem is a path (``rollout.steps[1]``) and a message; :func:`read_policy` raises one
:class:`~ctloop.errors.InvalidInput` listing them all, one per line, each starting with the
file's name, so the user fixes the file in one pass, as with a linter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.loop._policy_reader import _NO_VALUE, SECTIONS, Problems, Section, _show
from ctloop.loop.policy import (
    DEFAULT_DROP,
    DEFAULT_MIN_LABELS,
    DIVERGENCE_METHODS,
    DURING_CANARY,
    ESTIMATED_METRICS,
    HOLDOUT_SPLITS,
    PERFORMANCE_SOURCES,
    DriftTrigger,
    ErrorRateCheck,
    FeedbackData,
    Guards,
    Holdout,
    LatencyCheck,
    MetricCheck,
    NewDataTrigger,
    PerformanceTrigger,
    PipelineSpec,
    Policy,
    PredictionDriftCheck,
    Rollout,
    RolloutChecks,
    RolloutStep,
    ScheduleTrigger,
    TrainingData,
    Triggers,
)

if TYPE_CHECKING:
    from ctloop.evaluation.gate import Gate

_TARGET = re.compile(
    r"^(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|[^:]+\.py):[A-Za-z_]\w*$", flags=re.ASCII
)
_TARGET_HELP = (
    "expected MODULE:ATTRIBUTE or path/to/file.py:ATTRIBUTE, "
    "e.g. examples.churn.pipeline:churn_pipeline"
)


# --- the sections ---------------------------------------------------------------------------


def read_policy(data: Any, source: str) -> Policy:
    """Validate a policy mapping; raise every problem at once."""
    if data is None:
        raise InvalidInput(f"{source}: the policy is empty; it needs a pipeline and a trigger")
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"{source}: expected a mapping of sections ({', '.join(SECTIONS)}), "
            f"got {type(data).__name__}"
        )
    problems = Problems(source)
    top = Section(problems, "", data, SECTIONS)
    deployment = top.name("deployment", "deployment")
    model = top.name("model", "model")
    training = _training_data(top)
    triggers = _triggers(top, training)
    pipeline = _pipeline(top)
    gate = _gate(top)
    rollout = _rollout(top)
    guards = _guards(top)
    problems.raise_if_any()
    assert pipeline is not None and triggers is not None
    return Policy(
        deployment=deployment,
        model=model,
        triggers=triggers,
        training_data=training,
        pipeline=pipeline,
        gate=gate,
        rollout=rollout,
        guards=guards,
    )


def _metric(sec: Section, key: str, default: Any) -> str | None:
    from ctloop.evaluation import metrics

    name = sec.text(key, default)
    if name is None:
        return None
    try:
        return metrics.spec(name).name
    except InvalidInput as exc:
        sec.bad(key, str(exc))
        return None


def _triggers(top: Section, training: TrainingData | None) -> Triggers | None:
    keys = ("drift", "performance", "schedule", "new_data", "manual")
    if top.raw("triggers") is None:
        top.bad(
            "triggers",
            "missing; a policy needs at least one trigger: drift, performance, schedule, "
            "new_data, or manual: true",
        )
        return None
    sec = top.section("triggers", keys)
    if sec is None:
        return None
    triggers = Triggers(
        drift=_drift(sec),
        performance=_performance(sec),
        schedule=_schedule(sec),
        new_data=_new_data(sec, training, top),
        manual=sec.boolean("manual", False),
    )
    if not triggers.names and not top.problems.under("triggers"):
        top.bad(
            "triggers",
            "no trigger is on; turn on at least one of drift, performance, schedule, "
            "new_data, or set manual: true",
        )
    return triggers


def _drift(triggers: Section) -> DriftTrigger | None:
    sec = triggers.section("drift", ("share", "features", "consecutive"), switch=True)
    if sec is None:
        return None
    share = sec.number("share", 0.3, above=0, at_most=1, nullable=True)
    features: list[str] = []
    raw = sec.raw("features", [])
    if raw is None:
        raw = []
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        sec.bad("features", f"expected a list of feature names, got {_show(raw)}")
    else:
        for i, item in enumerate(raw):
            if not isinstance(item, str) or not item.strip():
                sec.problems.add(f"{sec.at('features')}[{i}]", f"expected text, got {_show(item)}")
            elif item in features:
                sec.problems.add(f"{sec.at('features')}[{i}]", f"{item!r} is listed twice")
            else:
                features.append(item)
    consecutive = sec.integer("consecutive", 2, minimum=1)
    if sec.raw("share", 0.3) is None and not features and not sec.problems.under(sec.path):
        sec.problems.add(sec.path, "watches nothing; give share, features or both")
    return DriftTrigger(share=share, features=tuple(features), consecutive=consecutive)


def _performance(triggers: Section) -> PerformanceTrigger | None:
    keys = ("metric", "source", "below", "drop", "min_labels", "consecutive")
    sec = triggers.section("performance", keys, switch=True)
    if sec is None:
        return None
    source = sec.text("source", "realised", choices=PERFORMANCE_SOURCES)
    metric = _metric(sec, "metric", "accuracy")
    if metric is not None:
        from ctloop.evaluation import metrics

        if not metrics.higher_is_better(metric):
            sec.bad(
                "metric", f"{metric!r} is better when lower; use a metric where higher is better"
            )
        elif source == "estimated" and metric not in ESTIMATED_METRICS:
            sec.bad(
                "metric",
                f"{metric!r} is not estimated without labels; with source: estimated use one "
                f"of {', '.join(ESTIMATED_METRICS)}, or set source: realised",
            )
    below = sec.number("below", None, nullable=True)
    drop = sec.number("drop", None, above=0, nullable=True)
    if sec.raw("below") is not None and sec.raw("drop") is not None:
        sec.problems.add(sec.path, "give below (absolute) or drop (from the champion), not both")
    if below is None and sec.raw("drop") is None:
        drop = DEFAULT_DROP
    if source == "estimated" and sec.given("min_labels"):
        sec.bad("min_labels", "applies to source: realised; an estimate needs no labels")
    return PerformanceTrigger(
        metric=metric or "accuracy",
        source=source or "realised",
        below=below,
        drop=drop if below is None else None,
        min_labels=sec.integer("min_labels", DEFAULT_MIN_LABELS, minimum=1),
        consecutive=sec.integer("consecutive", 1, minimum=1),
    )


def _schedule(triggers: Section) -> ScheduleTrigger | None:
    sec = triggers.section("schedule", ("every", "cron"))
    if sec is None:
        return None
    if sec.given("every") and sec.given("cron"):
        sec.problems.add(sec.path, "give every or cron, not both")
        return None
    if sec.given("cron"):
        from ctloop.loop.cron import parse_cron

        try:
            return ScheduleTrigger(cron=parse_cron(sec.raw("cron")).expression)
        except InvalidInput as exc:
            sec.bad("cron", str(exc))
            return None
    if sec.given("every"):
        return ScheduleTrigger(every=sec.duration("every", timedelta(days=1)))
    sec.problems.add(sec.path, "needs every (e.g. 7d) or cron (e.g. '0 3 * * MON')")
    return None


def _new_data(triggers: Section, training: TrainingData | None, top: Section) -> Any:
    from ctloop.data.refs import parse_ref

    sec = triggers.section("new_data", ("dataset",), switch=True)
    if sec is None:
        return None
    trained_on = parse_ref(training.dataset) if training and training.dataset else None
    if sec.raw("dataset") is None:
        if trained_on is None:
            sec.bad("dataset", "missing, and training_data names no dataset to watch")
            return None
        name = trained_on.name
    else:
        try:
            ref = parse_ref(sec.raw("dataset"))
        except InvalidInput as exc:
            sec.bad("dataset", str(exc))
            return None
        if not ref.is_latest:
            sec.bad(
                "dataset",
                f"a pinned version never changes; watch the dataset name: {ref.name!r}",
            )
            return None
        name = ref.name
    if trained_on is not None and trained_on.name == name and not trained_on.is_latest:
        top.bad(
            "training_data.dataset",
            f"{str(trained_on)!r} is pinned, so a retrain on a new version of {name!r} "
            f"(triggers.new_data) would train on the old one; use {name}@latest",
        )
    return NewDataTrigger(dataset=name)


def _training_data(top: Section) -> TrainingData | None:
    from ctloop.data.refs import parse_ref

    sec = top.section("training_data", ("dataset", "feedback", "holdout"))
    if sec is None:
        return None
    dataset = None
    if sec.raw("dataset") is not None:
        try:
            dataset = str(parse_ref(sec.raw("dataset")))
        except InvalidInput as exc:
            sec.bad("dataset", str(exc))
    feedback = None
    fb = sec.section("feedback", ("window", "min_labels", "deployment"), switch=True)
    if fb is not None:
        feedback = FeedbackData(
            window=fb.duration("window", timedelta(days=30)),
            min_labels=fb.integer("min_labels", 100, minimum=1),
            deployment=fb.name("deployment", "deployment"),
        )
    if sec.raw("dataset") is None and fb is None and not sec.problems.under(sec.path):
        sec.problems.add(sec.path, "give a dataset (e.g. churn@latest), feedback, or both")
    holdout = Holdout()
    ho = sec.section("holdout", ("fraction", "split", "seed"))
    if ho is not None:
        holdout = Holdout(
            fraction=ho.number("fraction", 0.2, above=0, below=1),
            split=ho.text("split", "random", choices=HOLDOUT_SPLITS),
            seed=ho.integer("seed", 0),
        )
    return TrainingData(dataset=dataset, feedback=feedback, holdout=holdout)


def _pipeline(top: Section) -> PipelineSpec | None:
    from ctloop.pipelines.definition import RUN_OPTIONS
    from ctloop.pipelines.executors import EXECUTORS

    raw = top.raw("pipeline")
    if raw is None:
        top.bad("pipeline", f"missing; {_TARGET_HELP}")
        return None
    if isinstance(raw, str):
        raw = {"target": raw}
    if not isinstance(raw, Mapping):
        top.bad("pipeline", f"{_TARGET_HELP}, or a mapping with target, got {_show(raw)}")
        return None
    sec = Section(top.problems, "pipeline", raw, ("target", "params", "executor"))
    target = sec.text("target", _NO_VALUE)
    if target is not None and not _TARGET.match(target):
        sec.bad("target", f"{_TARGET_HELP}; got {target!r}")
    params = sec.raw("params", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        sec.bad("params", f"expected a mapping of param names to values, got {_show(params)}")
        params = {}
    for key, value in params.items():
        where = f"{sec.at('params')}.{key}"
        if not isinstance(key, str):
            sec.bad("params", f"param names are text; got {_show(key)}")
        elif key in RUN_OPTIONS:
            top.problems.add(where, f"{key!r} is an option of the run, not a pipeline param")
        else:
            _json(top.problems, where, value)
    executor = sec.text("executor", "local", choices=EXECUTORS)
    return PipelineSpec(target=target or "", params=dict(params), executor=executor)


def _json(problems: Problems, path: str, value: Any) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.add(path, f"must be a finite number, got {value!r}")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _json(problems, f"{path}[{i}]", item)
        return
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        for key, item in value.items():
            _json(problems, f"{path}.{key}", item)
        return
    problems.add(
        path,
        f"params are recorded as JSON; {type(value).__name__} {_show(value)} is not a JSON "
        "value (quote it to pass text)",
    )


def _gate(top: Section) -> Gate | None:
    from ctloop.evaluation.gate import Gate

    raw = top.raw("gate")
    if raw is None:
        return None
    try:
        return Gate.from_dict(raw)
    except InvalidInput as exc:
        top.bad("gate", str(exc))
    except (TypeError, AttributeError) as exc:  # Gate reads some malformed values unchecked
        top.bad("gate", f"not a valid gate spec ({exc}); see docs/evaluation.md, Gate specs")
    return None


def _rollout(top: Section) -> Rollout:
    keys = ("steps", "min_requests", "interval", "failed_checks_limit", "checks")
    default = Rollout()
    sec = top.section("rollout", keys)
    if sec is None:
        return default
    min_requests = sec.integer("min_requests", default.min_requests, minimum=1)
    interval = sec.duration("interval", default.interval)
    steps = _steps(sec, min_requests, interval)
    return Rollout(
        steps=steps if steps is not None else default.steps,
        min_requests=min_requests,
        interval=interval,
        failed_checks_limit=sec.integer("failed_checks_limit", 2, minimum=1),
        checks=_checks(sec),
    )


def _steps(
    rollout: Section, min_requests: int, interval: timedelta
) -> tuple[RolloutStep, ...] | None:
    raw = rollout.raw("steps", [10, 50, 100])
    where = rollout.at("steps")
    if isinstance(raw, str) or not isinstance(raw, Sequence) or not raw:
        rollout.bad("steps", f"expected a list of traffic shares ending at 100, got {_show(raw)}")
        return None
    steps: list[RolloutStep] = []
    previous: float | None = None
    for i, item in enumerate(raw):
        path = f"{where}[{i}]"
        value, requests, span = item, min_requests, interval
        if isinstance(item, Mapping):
            sec = Section(rollout.problems, path, item, ("traffic", "min_requests", "interval"))
            path = sec.at("traffic")
            value = item.get("traffic", _NO_VALUE)
            requests = sec.integer("min_requests", min_requests, minimum=1)
            span = sec.duration("interval", interval)
        if value is _NO_VALUE:
            rollout.problems.add(path, "is required: the % of traffic of this step")
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            rollout.problems.add(path, f"expected a number (a % of traffic), got {_show(value)}")
            continue
        if not 0 < value <= 100:
            rollout.problems.add(path, f"must be in (0, 100] (a % of traffic), got {value!r}")
            continue
        if previous is not None and value <= previous:
            rollout.problems.add(
                path, f"must be above the step before it ({previous:g}), got {value:g}"
            )
        previous = value if previous is None else max(previous, value)
        steps.append(RolloutStep(float(value), requests, span))
    if not rollout.problems.under(where) and steps[-1].traffic != 100:
        rollout.bad("steps", f"must end at 100 (all traffic), ends at {steps[-1].traffic:g}")
    return tuple(steps)


def _checks(rollout: Section) -> RolloutChecks:
    default = RolloutChecks()
    sec = rollout.section("checks", ("error_rate", "latency", "prediction_drift", "metric"))
    if sec is None:
        return default

    def check(key: str, keys: tuple[str, ...]) -> Section | None:
        return sec.section(key, keys, switch=True)

    error_rate = default.error_rate
    if sec.given("error_rate"):
        part = check("error_rate", ("max_increase",))
        error_rate = (
            None
            if part is None
            else ErrorRateCheck(
                part.number(
                    "max_increase",
                    0.01,
                    at_least=0,
                    at_most=1,
                    why="the canary's error rate may exceed the champion's by this much",
                )
            )
        )
    latency = None
    part = check("latency", ("p99_below_ms",))
    if part is not None:
        latency = LatencyCheck(part.number("p99_below_ms", _NO_VALUE, above=0) or 1.0)
    drift = default.prediction_drift
    if sec.given("prediction_drift"):
        part = check("prediction_drift", ("method", "threshold"))
        drift = (
            None
            if part is None
            else PredictionDriftCheck(
                method=part.text("method", "jensenshannon", choices=DIVERGENCE_METHODS),
                threshold=part.number("threshold", 0.1, above=0),
            )
        )
    metric = None
    part = check("metric", ("name", "margin", "min_labels"))
    if part is not None:
        metric = MetricCheck(
            name=_metric(part, "name", _NO_VALUE) or "",
            margin=part.number(
                "margin",
                0.02,
                at_least=0,
                why="how much worse than the champion's the canary's metric may be",
            ),
            min_labels=part.integer("min_labels", 100, minimum=1),
        )
    return RolloutChecks(
        error_rate=error_rate, latency=latency, prediction_drift=drift, metric=metric
    )


def _guards(top: Section) -> Guards:
    default = Guards()
    sec = top.section("guards", ("cooldown", "max_retrains_per_day", "during_canary"))
    if sec is None:
        return default
    return Guards(
        cooldown=sec.duration("cooldown", default.cooldown, allow_zero=True),
        max_retrains_per_day=sec.integer("max_retrains_per_day", 4, minimum=1),
        during_canary=sec.text("during_canary", "defer", choices=DURING_CANARY),
    )
