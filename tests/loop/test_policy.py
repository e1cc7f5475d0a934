"""Continuous-training policies: parsing, defaults, errors with paths, and round trips."""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ctloop.datasets import churn
from ctloop.errors import InvalidInput, NotFound
from ctloop.evaluation import Gate
from ctloop.loop import (
    DriftTrigger,
    Guards,
    Holdout,
    PerformanceTrigger,
    Policy,
    Rollout,
    RolloutChecks,
    RolloutStep,
    default_policy_yaml,
    load_policy,
    parse_policy,
)
from ctloop.loop import policy as policy_module

FULL = """\
deployment: churn
model: churn-model
triggers:
  drift: {share: 0.25, features: [tenure, monthly_charges], consecutive: 3}
  performance:
    metric: auc
    source: realised
    below: 0.75
    min_labels: 300
    consecutive: 2
  schedule: {cron: "0 3 * * MON"}
  new_data: {dataset: churn}
  manual: true
training_data:
  dataset: churn@latest
  feedback: {window: 14d, min_labels: 500, deployment: churn-eu}
  holdout: {fraction: 0.25, split: random, seed: 7}
pipeline:
  target: examples.churn.pipeline:churn_pipeline
  params: {learning_rate: 0.05, max_iter: 200, reference: churn@1}
  executor: inline
gate:
  thresholds: ["roc_auc >= 0.70", "f1 >= 0.30"]
  min_improvement: {f1: 0.0}
  bootstrap: {metric: roc_auc, confidence: 0.9, margin: -0.01, resamples: 500, seed: 1}
  require_champion: true
rollout:
  steps: [5, {traffic: 25, min_requests: 1000, interval: 15m}, 100]
  min_requests: 300
  interval: 10m
  failed_checks_limit: 3
  checks:
    error_rate: {max_increase: 0.005}
    latency: {p99_below_ms: 250}
    prediction_drift: {method: psi, threshold: 0.2}
    metric: {name: accuracy, margin: 0.01, min_labels: 200}
guards:
  cooldown: 12h
  max_retrains_per_day: 2
  during_canary: restart
"""

MINIMAL = "pipeline: examples.churn.pipeline:churn_pipeline\ntriggers: {drift: true}\n"


def errors_of(text: str | dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as err:
        parse_policy(text)
    return str(err.value).splitlines()


def only_error(text: str | dict[str, Any]) -> str:
    lines = errors_of(text)
    assert len(lines) == 1, lines
    return lines[0]


def with_minimal(extra: str) -> str:
    """The minimal policy plus ``extra`` (which may replace its pipeline)."""
    base = MINIMAL.split("\n", 1)[1] if extra.startswith("pipeline:") else MINIMAL
    return base + textwrap.dedent(extra)


# --- the full example and the minimal one ---------------------------------------------------


def test_full_example_parses_every_section() -> None:
    p = parse_policy(FULL)
    assert p.deployment == "churn" and p.model == "churn-model"
    t = p.triggers
    assert t.drift == DriftTrigger(0.25, ("tenure", "monthly_charges"), 3)
    assert t.performance is not None
    assert (t.performance.metric, t.performance.source) == ("roc_auc", "realised")  # alias
    assert (t.performance.below, t.performance.drop) == (0.75, None)
    assert (t.performance.min_labels, t.performance.consecutive) == (300, 2)
    assert t.schedule is not None and t.schedule.cron == "0 3 * * MON"
    assert t.new_data is not None and t.new_data.dataset == "churn"
    assert t.names == ("drift", "performance", "schedule", "new_data", "manual")
    data = p.training_data
    assert data is not None and data.dataset == "churn@latest"
    assert data.feedback is not None
    assert data.feedback.window == timedelta(days=14) and data.feedback.deployment == "churn-eu"
    assert (data.holdout.fraction, data.holdout.split, data.holdout.seed) == (0.25, "random", 7)
    assert p.pipeline.params["max_iter"] == 200 and p.pipeline.executor == "inline"
    assert p.gate == Gate.from_dict(yaml.safe_load(FULL)["gate"])
    assert p.gate is not None and p.gate.require_champion
    r = p.rollout
    assert r.steps == (
        RolloutStep(5.0, 300, timedelta(minutes=10)),
        RolloutStep(25.0, 1000, timedelta(minutes=15)),
        RolloutStep(100.0, 300, timedelta(minutes=10)),
    )
    assert r.failed_checks_limit == 3
    assert r.checks.latency is not None and r.checks.latency.p99_below_ms == 250
    assert r.checks.prediction_drift is not None and r.checks.prediction_drift.method == "psi"
    assert r.checks.metric is not None and r.checks.metric.margin == 0.01
    assert p.guards == Guards(timedelta(hours=12), 2, "restart")


def test_full_example_round_trips_through_dict_json_and_yaml() -> None:
    p = parse_policy(FULL)
    as_json = json.loads(json.dumps(p.to_dict()))
    assert parse_policy(as_json) == p
    assert Policy.from_dict(as_json) == p
    assert parse_policy(yaml.safe_dump(as_json)) == p
    assert as_json["rollout"]["steps"] == [
        5,
        {"traffic": 25, "min_requests": 1000, "interval": "15m"},
        100,
    ]
    assert as_json["guards"]["cooldown"] == "12h"


def test_minimal_policy_gets_the_documented_defaults() -> None:
    p = parse_policy(MINIMAL)
    assert p.triggers.drift == DriftTrigger(share=0.3, features=(), consecutive=2)
    assert p.triggers.names == ("drift",)
    assert p.deployment is None and p.model is None
    assert p.training_data is None and p.gate is None
    assert p.pipeline.params == {} and p.pipeline.executor == "local"
    assert [s.traffic for s in p.rollout.steps] == [10, 50, 100]
    assert {s.min_requests for s in p.rollout.steps} == {200}
    assert {s.interval for s in p.rollout.steps} == {timedelta(minutes=5)}
    assert p.rollout.failed_checks_limit == 2
    assert p.rollout.checks == RolloutChecks()
    assert p.rollout.checks.error_rate is not None
    assert p.rollout.checks.latency is None and p.rollout.checks.metric is None
    assert p.guards.cooldown == timedelta(hours=6)
    assert p.guards.max_retrains_per_day == 4 and p.guards.during_canary == "defer"
    assert p.rollout == Rollout() and p.guards == Guards()


def test_performance_trigger_defaults_to_a_realised_accuracy_drop() -> None:
    p = parse_policy("pipeline: m:f\ntriggers: {performance: true}")
    perf = p.triggers.performance
    assert perf is not None
    assert (perf.metric, perf.source, perf.below, perf.drop, perf.min_labels) == (
        "accuracy",
        "realised",
        None,
        0.02,
        500,
    )
    estimated = parse_policy("pipeline: m:f\ntriggers: {performance: {source: estimated}}")
    assert estimated.triggers.performance is not None
    assert estimated.triggers.performance.to_dict() == {
        "metric": "accuracy",
        "source": "estimated",
        "drop": 0.02,
        "consecutive": 1,
    }
    below = parse_policy("pipeline: m:f\ntriggers: {performance: {below: 0.8}}").triggers
    assert below.performance is not None
    assert (below.performance.below, below.performance.drop) == (0.8, None)


def test_trigger_switches_false_and_null_are_off() -> None:
    p = parse_policy("pipeline: m:f\ntriggers: {drift: false, performance: null, manual: true}")
    assert p.triggers.drift is None and p.triggers.performance is None
    assert p.triggers.names == ("manual",)


def test_schedule_every_and_its_next_fire() -> None:
    p = parse_policy("pipeline: m:f\ntriggers: {schedule: {every: 36h}}")
    schedule = p.triggers.schedule
    assert schedule is not None and schedule.every == timedelta(hours=36)
    assert schedule.to_dict() == {"every": "36h"}
    assert schedule.next_fire(datetime(2024, 1, 1)) == datetime(2024, 1, 2, 12)
    cron = parse_policy("pipeline: m:f\ntriggers: {schedule: {cron: '@daily'}}").triggers
    assert cron.schedule is not None
    assert cron.schedule.next_fire(datetime(2024, 1, 1, 5)) == datetime(2024, 1, 2)


def test_new_data_trigger_watches_the_training_dataset_by_default() -> None:
    p = parse_policy("pipeline: m:f\ntriggers: {new_data: true}\ntraining_data: {dataset: churn}")
    assert p.triggers.new_data is not None and p.triggers.new_data.dataset == "churn"
    assert p.training_data is not None and p.training_data.dataset == "churn@latest"


def test_feedback_only_training_data_and_zero_cooldown() -> None:
    p = parse_policy(with_minimal("training_data: {feedback: true}\nguards: {cooldown: 0}\n"))
    assert p.training_data is not None and p.training_data.dataset is None
    assert p.training_data.feedback is not None
    assert p.training_data.feedback.window == timedelta(days=30)
    assert p.guards.cooldown == timedelta(0)
    assert parse_policy(p.to_dict()) == p


def test_pipeline_as_a_file_path() -> None:
    p = parse_policy(
        "pipeline: examples/churn/pipeline.py:churn_pipeline\ntriggers: {manual: true}"
    )
    assert p.pipeline.target == "examples/churn/pipeline.py:churn_pipeline"


def test_default_template_parses_to_the_demo_defaults() -> None:
    text = default_policy_yaml("churn", "churn@latest", "examples.churn.pipeline:churn_pipeline")
    assert text.count("#") > 20  # commented for a user to start from
    filled = [line for line in text.splitlines() if line.startswith(("model:", "  dataset:"))]
    assert [line.index(" # ") for line in filled] == [35, 35]  # in the comments' column
    p = parse_policy(text)
    assert p.deployment == "churn"
    assert p.triggers.drift == DriftTrigger()
    assert p.triggers.performance == PerformanceTrigger()
    assert p.training_data is not None and p.training_data.holdout == Holdout()
    assert p.triggers.schedule is None and p.triggers.manual
    assert p.rollout.steps == Rollout().steps and p.guards == Guards()
    assert p.gate is not None and p.training_data is not None
    assert parse_policy(p.to_dict()) == p


def test_load_policy_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "churn.yaml"
    good.write_text(FULL)
    assert load_policy(good) == parse_policy(FULL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "guards: {max_retrains_per_day: 0}\n")
    with pytest.raises(InvalidInput, match=rf"^{bad}: guards.max_retrains_per_day: "):
        load_policy(bad)
    with pytest.raises(NotFound, match="no policy file"):
        load_policy(tmp_path / "missing.yaml")


# --- errors, each with its path ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "rollout: {steps: [10, 5, 100]}",
            "policy.yaml: rollout.steps[1]: must be above the step before it (10), got 5",
        ),
        (
            "rollout: {steps: [10, 50]}",
            "policy.yaml: rollout.steps: must end at 100 (all traffic), ends at 50",
        ),
        (
            "rollout: {steps: [0, 100]}",
            "policy.yaml: rollout.steps[0]: must be in (0, 100] (a % of traffic), got 0",
        ),
        (
            "rollout: {steps: [50, 120]}",
            "policy.yaml: rollout.steps[1]: must be in (0, 100] (a % of traffic), got 120",
        ),
        (
            "rollout: {steps: [{traffic: 50}, {traffic: 40}, 100]}",
            "policy.yaml: rollout.steps[1].traffic: must be above the step before it (50), got 40",
        ),
        (
            "rollout: {steps: []}",
            "policy.yaml: rollout.steps: expected a list of traffic shares ending at 100, got []",
        ),
        (
            "training_data: {dataset: churn, holdout: {fraction: 1}}",
            "policy.yaml: training_data.holdout.fraction: must be in (0, 1), got 1",
        ),
        (
            "training_data: {holdout: {fraction: 0.2}}",
            "policy.yaml: training_data: give a dataset (e.g. churn@latest), feedback, or both",
        ),
        (
            "guards: {max_retrains_per_day: 0}",
            "policy.yaml: guards.max_retrains_per_day: must be 1 or more, got 0",
        ),
        (
            "guards: {during_canary: deffer}",
            "policy.yaml: guards.during_canary: must be one of defer, ignore, restart, "
            "got 'deffer'; did you mean 'defer'?",
        ),
        (
            "guards: {cooldown: 6 hours}",
            "policy.yaml: guards.cooldown: expected a duration like 45s, 30m, 6h, 7d or 1w "
            "(or 0 for none), got '6 hours'",
        ),
        (
            "rollout: {interval: 300}",
            "policy.yaml: rollout.interval: expected a duration like 30m, 6h or 7d, "
            "got 300 (add a unit)",
        ),
        (
            "rollout: {checks: {error_rate: {max_increase: -0.01}}}",
            "policy.yaml: rollout.checks.error_rate.max_increase: must be in [0, 1] (the "
            "canary's error rate may exceed the champion's by this much), got -0.01",
        ),
        (
            "rollout: {checks: {latency: {p99_below_ms: -5}}}",
            "policy.yaml: rollout.checks.latency.p99_below_ms: must be above 0, got -5",
        ),
        (
            "rollout: {checks: {prediction_drift: {threshold: 0}}}",
            "policy.yaml: rollout.checks.prediction_drift.threshold: must be above 0, got 0",
        ),
        (
            "rollout: {checks: {metric: {name: f1, margin: -0.1}}}",
            "policy.yaml: rollout.checks.metric.margin: must be at least 0 (how much worse "
            "than the champion's the canary's metric may be), got -0.1",
        ),
        (
            "rollout: {checks: {metric: {margin: 0.1}}}",
            "policy.yaml: rollout.checks.metric.name: is required",
        ),
        (
            "rollout: {checks: {prediction_drift: {method: kl}}}",
            "policy.yaml: rollout.checks.prediction_drift.method: must be one of hellinger, "
            "jensenshannon, psi, got 'kl'",
        ),
        (
            "rollout: {failed_checks_limit: 0}",
            "policy.yaml: rollout.failed_checks_limit: must be 1 or more, got 0",
        ),
        (
            "gate: {thresholds: ['f1 => 0.8']}",
            "policy.yaml: gate: invalid gate threshold 'f1 => 0.8': write it as METRIC OP "
            "NUMBER, e.g. 'f1 >= 0.8' or 'log_loss <= 0.5' (OP is one of >=, >, <=, <)",
        ),
        (
            "gate: {treshold: 1}",
            "policy.yaml: gate: unknown gate setting(s) ['treshold']; use thresholds, "
            "min_improvement, min_relative_improvement, bootstrap, require_champion",
        ),
        (
            "deployment: 'bad name!'",
            "policy.yaml: deployment: invalid deployment name 'bad name!': use 1-128 letters, "
            "digits, '_', '.' or '-', starting with a letter or digit",
        ),
        (
            "pipeline: {target: 'm:f', params: {executor: ray}}",
            "policy.yaml: pipeline.params.executor: 'executor' is an option of the run, not a "
            "pipeline param",
        ),
        (
            "pipeline: {target: 'm:f', params: {start: 2024-01-01}}",
            "policy.yaml: pipeline.params.start: params are recorded as JSON; date "
            "datetime.date(2024, 1, 1) is not a JSON value (quote it to pass text)",
        ),
        (
            "pipeline: {target: 'm:f', executor: spark}",
            "policy.yaml: pipeline.executor: must be one of inline, local, ray, got 'spark'",
        ),
    ],
)
def test_each_error_names_its_path(extra: str, expected: str) -> None:
    assert only_error(with_minimal(extra + "\n")) == expected


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        (
            "{drift: {treshold: 0.3}}",
            "policy.yaml: triggers.drift: unknown key 'treshold' (keys: share, features, "
            "consecutive)",
        ),
        (
            "{drift: {consecutve: 3}}",
            "policy.yaml: triggers.drift: unknown key 'consecutve'; did you mean "
            "'consecutive'? (keys: share, features, consecutive)",
        ),
        (
            "{drift: {share: null}}",
            "policy.yaml: triggers.drift: watches nothing; give share, features or both",
        ),
        (
            "{drift: {share: high}}",
            "policy.yaml: triggers.drift.share: expected a number, got 'high'",
        ),
        (
            "{drift: {share: 1e-1}}",
            "policy.yaml: triggers.drift.share: expected a number, got '1e-1' (YAML reads this "
            "as text; write it with a dot, e.g. 1.0e-3)",
        ),
        (
            "{drift: {consecutive: 1.5}}",
            "policy.yaml: triggers.drift.consecutive: expected a whole number, got 1.5",
        ),
        (
            "{drift: {features: [age, 3]}}",
            "policy.yaml: triggers.drift.features[1]: expected text, got 3",
        ),
        ("{drift: 0.3}", "policy.yaml: triggers.drift: expected a mapping, true or false, got 0.3"),
        (
            "{manual: false}",
            "policy.yaml: triggers: no trigger is on; turn on at least one of drift, "
            "performance, schedule, new_data, or set manual: true",
        ),
        (
            "{manual: yes please}",
            "policy.yaml: triggers.manual: expected true or false, got 'yes please'",
        ),
        (
            "{schedule: {every: 1d, cron: '0 3 * * *'}}",
            "policy.yaml: triggers.schedule: give every or cron, not both",
        ),
        (
            "{schedule: {}}",
            "policy.yaml: triggers.schedule: needs every (e.g. 7d) or cron (e.g. '0 3 * * MON')",
        ),
        (
            "{schedule: {cron: '0 25 * * *'}}",
            "policy.yaml: triggers.schedule.cron: invalid cron expression '0 25 * * *': hour 25 "
            "is out of range 0-23",
        ),
        (
            "{performance: {metric: precision, source: estimated}}",
            "policy.yaml: triggers.performance.metric: 'precision' is not estimated without "
            "labels; with source: estimated use one of accuracy, f1, roc_auc, or set source: "
            "realised",
        ),
        (
            "{performance: {metric: log_loss, source: realised, below: 0.5}}",
            "policy.yaml: triggers.performance.metric: 'log_loss' is better when lower; use a "
            "metric where higher is better",
        ),
        (
            "{performance: {below: 0.8, drop: 0.05}}",
            "policy.yaml: triggers.performance: give below (absolute) or drop (from the "
            "champion), not both",
        ),
        (
            "{performance: {min_labels: 50, source: estimated}}",
            "policy.yaml: triggers.performance.min_labels: applies to source: realised; an "
            "estimate needs no labels",
        ),
        (
            "{performance: {source: guessed}}",
            "policy.yaml: triggers.performance.source: must be one of realised, estimated, got "
            "'guessed'",
        ),
        (
            "{new_data: true}",
            "policy.yaml: triggers.new_data.dataset: missing, and training_data names no "
            "dataset to watch",
        ),
        (
            "{new_data: {dataset: churn@3}}",
            "policy.yaml: triggers.new_data.dataset: a pinned version never changes; watch the "
            "dataset name: 'churn'",
        ),
    ],
)
def test_trigger_errors_name_their_path(triggers: str, expected: str) -> None:
    text = f"pipeline: m:f\ntriggers: {triggers}\n"
    assert only_error(text) == expected


def test_pinned_training_data_with_a_new_data_trigger_is_refused() -> None:
    text = "pipeline: m:f\ntriggers: {new_data: true}\ntraining_data: {dataset: churn@3}\n"
    assert only_error(text) == (
        "policy.yaml: training_data.dataset: 'churn@3' is pinned, so a retrain on a new "
        "version of 'churn' (triggers.new_data) would train on the old one; use churn@latest"
    )


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ("churn_pipeline", "got 'churn_pipeline'"),
        ("mod:", "got 'mod:'"),
        ("a b:c", "got 'a b:c'"),
        ("mod:attr.sub", "got 'mod:attr.sub'"),
    ],
)
def test_pipeline_target_must_be_module_colon_attribute(pipeline: str, expected: str) -> None:
    line = only_error(f"pipeline: '{pipeline}'\ntriggers: {{manual: true}}\n")
    assert line.startswith(
        "policy.yaml: pipeline.target: expected MODULE:ATTRIBUTE or path/to/file.py:ATTRIBUTE"
    )
    assert line.endswith(expected)


def test_missing_sections_and_unknown_top_level_keys() -> None:
    lines = errors_of("triggres: {manual: true}\n")
    assert lines == [
        "policy.yaml: unknown key 'triggres'; did you mean 'triggers'? (keys: deployment, "
        "model, triggers, training_data, pipeline, gate, rollout, guards)",
        "policy.yaml: triggers: missing; a policy needs at least one trigger: drift, "
        "performance, schedule, new_data, or manual: true",
        "policy.yaml: pipeline: missing; expected MODULE:ATTRIBUTE or "
        "path/to/file.py:ATTRIBUTE, e.g. examples.churn.pipeline:churn_pipeline",
    ]


def test_several_errors_are_reported_at_once_in_file_order() -> None:
    text = textwrap.dedent(
        """\
        guards: {max_retrains_per_day: 0, during_canary: wait}
        rollout: {steps: [10, 5, 100]}
        triggers:
          drift: {share: 2}
          schedule: {every: 1d, cron: "0 3 * * *"}
        pipeline: nope
        """
    )
    assert errors_of(text) == [
        "policy.yaml: triggers.drift.share: must be in (0, 1], got 2",
        "policy.yaml: triggers.schedule: give every or cron, not both",
        "policy.yaml: pipeline.target: expected MODULE:ATTRIBUTE or path/to/file.py:ATTRIBUTE, "
        "e.g. examples.churn.pipeline:churn_pipeline; got 'nope'",
        "policy.yaml: rollout.steps[1]: must be above the step before it (10), got 5",
        "policy.yaml: guards.max_retrains_per_day: must be 1 or more, got 0",
        "policy.yaml: guards.during_canary: must be one of defer, ignore, restart, got 'wait'",
    ]


def test_source_names_the_file_in_every_line() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_policy("pipeline: x\ntriggers: {}\n", source="deploy/churn.yaml")
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith("deploy/churn.yaml: ") for line in lines)


def test_yaml_syntax_error_names_line_and_column() -> None:
    text = "pipeline: m:f\ntriggers:\n  drift: {share: 0.3\nguards: {}\n"
    message = only_error(text)
    assert message == "policy.yaml: line 4, column 7: YAML error: expected ',' or '}', but got ':'"


def test_duplicate_keys_are_an_error_not_silently_replaced() -> None:
    text = "pipeline: m:f\ntriggers:\n  manual: true\n  manual: false\n"
    assert only_error(text) == "policy.yaml: line 4, column 3: YAML error: duplicate key 'manual'"


def test_unquoted_cron_star_gets_a_hint() -> None:
    message = only_error("pipeline: m:f\ntriggers: {schedule: {cron: */5 * * * *}}\n")
    assert message.startswith("policy.yaml: line 2")
    assert 'quote values that start with *, e.g. cron: "*/15 * * * *"' in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "policy.yaml: the policy is empty; it needs a pipeline and a trigger"),
        (
            "- a\n- b\n",
            "policy.yaml: expected a mapping of sections (deployment, model, triggers, "
            "training_data, pipeline, gate, rollout, guards), got list",
        ),
    ],
)
def test_documents_that_are_not_policies(text: str, expected: str) -> None:
    assert only_error(text) == expected


def test_malformed_gate_values_are_reported_not_raised_raw() -> None:
    message = only_error(with_minimal("gate: {thresholds: 5}\n"))
    assert message.startswith("policy.yaml: gate: gate thresholds must be text, a list or a map")
    message = only_error(with_minimal("gate: {bootstrap: {metric: 3}}\n"))
    assert message.startswith("policy.yaml: gate: a bootstrap check's metric must be a metric")


# --- imports, pinned constants, laziness --------------------------------------------------------


def test_check_imports_resolves_the_pipeline_and_checks_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flows.py").write_text(
        "from ctloop import pipeline, step\n\n"
        "@step\ndef one(n: int) -> int:\n    return n\n\n"
        "@pipeline\ndef train(n: int = 1):\n    one(n)\n\n"
        "not_a_pipeline = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    good = parse_policy(
        "pipeline: {target: 'flows:train', params: {n: 2}}\ntriggers: {manual: true}"
    )
    assert good.check_imports().name == "train"
    unknown = parse_policy(
        "pipeline: {target: 'flows:train', params: {m: 2}}\ntriggers: {manual: true}"
    )
    with pytest.raises(
        InvalidInput, match=r"^policy: pipeline.params: pipeline 'train' has no param 'm'"
    ):
        unknown.check_imports()
    for target, reason in [
        ("flows:not_a_pipeline", "is a int, not a @pipeline"),
        ("flows:missing", "has no attribute 'missing'"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
    ]:
        p = parse_policy(f"pipeline: '{target}'\ntriggers: {{manual: true}}")
        with pytest.raises(InvalidInput) as err:
            p.check_imports(source="p.yaml")
        assert str(err.value).startswith(f"p.yaml: pipeline.target: cannot use {target!r}: ")
        assert reason in str(err.value)


def test_check_imports_reports_an_exception_raised_by_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_flows.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    p = parse_policy("pipeline: broken_flows:f\ntriggers: {manual: true}")
    with pytest.raises(InvalidInput, match="importing it raised RuntimeError: boom"):
        p.check_imports()


def test_estimated_metrics_are_what_the_monitor_estimates() -> None:
    from ctloop.monitoring.estimation import ESTIMABLE_METRICS, ConfidenceBasedEstimator

    default = inspect.signature(ConfidenceBasedEstimator).parameters["metrics"].default
    assert tuple(default) == policy_module.ESTIMATED_METRICS
    assert set(policy_module.ESTIMATED_METRICS) <= set(ESTIMABLE_METRICS)


def test_divergence_methods_are_the_detectors_histogram_methods() -> None:
    from ctloop.monitoring.detectors import HISTOGRAM_METHODS

    assert set(policy_module.DIVERGENCE_METHODS) == set(HISTOGRAM_METHODS)


def test_the_package_exports_lazily() -> None:
    import ctloop.loop as loop

    for name in loop.__all__:
        assert getattr(loop, name).__module__.startswith("ctloop.loop."), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        loop.nope  # noqa: B018


# --- property: every valid policy round-trips ---------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
durations = st.sampled_from(["45s", "30m", "90m", "6h", "1.5h", "7d", "1w"])
fractions = st.floats(0.01, 1.0, allow_nan=False).map(lambda x: round(x, 3))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def steps(draw: st.DrawFn) -> list[Any]:
    cuts = draw(st.lists(st.integers(1, 99), unique=True, max_size=4))
    out: list[Any] = []
    for value in [*sorted(cuts), 100]:
        if draw(st.booleans()):
            out.append(value)
        else:
            out.append(
                {
                    "traffic": value,
                    "min_requests": draw(st.integers(1, 5000)),
                    "interval": draw(durations),
                }
            )
    return out


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    dataset = draw(st.none() | names.map(lambda n: f"{n}@latest"))
    triggers: dict[str, Any] = {"manual": draw(st.booleans())}
    if draw(st.booleans()):
        share = draw(st.none() | fractions)
        features = draw(st.lists(names, unique=True, max_size=3, min_size=0 if share else 1))
        triggers["drift"] = {
            "share": share,
            "features": features,
            "consecutive": draw(st.integers(1, 5)),
        }
    if draw(st.booleans()):
        source = draw(st.sampled_from(["realised", "estimated"]))
        metrics = ["accuracy", "f1", "roc_auc"] + (["recall", "r2"] if source == "realised" else [])
        perf: dict[str, Any] = {"metric": draw(st.sampled_from(metrics)), "source": source}
        if draw(st.booleans()):
            perf["below"] = draw(fractions)
        else:
            perf["drop"] = draw(fractions)
        if source == "realised":
            perf["min_labels"] = draw(st.integers(1, 1000))
        triggers["performance"] = perf
    if draw(st.booleans()):
        triggers["schedule"] = draw(
            st.sampled_from(
                [{"every": "1d"}, {"cron": "0 3 * * MON"}, {"cron": "*/10 8-18 * * 1-5"}]
            )
        )
    if dataset is not None and draw(st.booleans()):
        triggers["new_data"] = True
    if not any(triggers.get(k) for k in ("drift", "performance", "schedule", "new_data")):
        triggers["manual"] = True
    out: dict[str, Any] = {
        "deployment": draw(st.none() | names),
        "triggers": triggers,
        "pipeline": {
            "target": draw(names) + ".flows:" + draw(names),
            "params": draw(
                st.dictionaries(
                    names.filter(lambda n: n not in {"echo", "cache"}), json_values, max_size=3
                )
            ),
            "executor": draw(st.sampled_from(["inline", "local", "ray"])),
        },
        "rollout": {
            "steps": draw(steps()),
            "min_requests": draw(st.integers(1, 1000)),
            "interval": draw(durations),
            "failed_checks_limit": draw(st.integers(1, 5)),
            "checks": {
                "error_rate": draw(st.none() | st.builds(lambda x: {"max_increase": x}, fractions)),
                "latency": draw(
                    st.none() | st.builds(lambda x: {"p99_below_ms": x}, st.integers(1, 5000))
                ),
                "prediction_drift": draw(
                    st.none()
                    | st.builds(
                        lambda m, t: {"method": m, "threshold": t},
                        st.sampled_from(["psi", "jensenshannon", "hellinger"]),
                        fractions,
                    )
                ),
                "metric": draw(
                    st.none()
                    | st.builds(
                        lambda n, m: {"name": n, "margin": m, "min_labels": 10},
                        st.sampled_from(["accuracy", "f1", "rmse"]),
                        fractions,
                    )
                ),
            },
        },
        "guards": {
            "cooldown": draw(st.sampled_from(["0", "0s", "30m", "6h", "1d"])),
            "max_retrains_per_day": draw(st.integers(1, 24)),
            "during_canary": draw(st.sampled_from(["defer", "ignore", "restart"])),
        },
    }
    if dataset is not None or draw(st.booleans()):
        out["training_data"] = {
            "dataset": dataset,
            "feedback": draw(st.none() | st.builds(lambda w: {"window": w}, durations))
            if dataset is not None
            else {"window": draw(durations)},
            "holdout": {
                "fraction": draw(st.floats(0.05, 0.95).map(lambda x: round(x, 2))),
                "split": "random",
                "seed": 3,
            },
        }
    if draw(st.booleans()):
        out["gate"] = draw(
            st.sampled_from(
                [
                    {"thresholds": ["f1 >= 0.5"]},
                    {"bootstrap": {"metric": "roc_auc", "margin": -0.01}, "require_champion": True},
                    {"min_relative_improvement": {"auc": 0.02}},
                ]
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(policies())
def test_every_valid_policy_round_trips(data: dict[str, Any]) -> None:
    policy = parse_policy(data)
    assert parse_policy(policy.to_dict()) == policy
    assert parse_policy(json.loads(json.dumps(policy.to_dict()))) == policy
    assert parse_policy(yaml.safe_dump(policy.to_dict())) == policy
    assert policy.to_dict() == parse_policy(policy.to_dict()).to_dict()


def test_the_examples_in_docs_loop_md_are_valid_and_match_this_file() -> None:
    import re

    docs = Path(__file__).parents[2] / "docs" / "loop.md"
    blocks = re.findall(r"```yaml\n(.*?)```", docs.read_text(), flags=re.S)
    assert len(blocks) == 2
    assert parse_policy(blocks[0]) == parse_policy(MINIMAL)
    assert parse_policy(blocks[1]) == parse_policy(FULL)


# --- the holdout reaches the pipeline -----------------------------------------------------------


def test_the_policys_holdout_is_passed_to_a_pipeline_that_takes_one() -> None:
    from ctloop.loop.training import TrainingData, training_params

    text = MINIMAL + "training_data: {dataset: churn@3, holdout: {fraction: 0.3, seed: 5}}\n"
    p = parse_policy(text)
    params = training_params(p.pipeline.resolve(), p, TrainingData("churn@3"))
    assert params["dataset"] == "churn@3"
    assert params["holdout"] == {"fraction": 0.3, "split": "random", "seed": 5}
    # the churn template honours it: a random holdout mixes old and new rows
    from examples.churn.pipeline import split

    frame = pd.DataFrame(
        {c: range(100) for c in (*churn.FEATURES, churn.TARGET, churn.TIMESTAMP)}
    ).astype({c: "string" for c in churn.CATEGORICAL})
    _, by_time, _, _ = split.fn(frame, test_size=0.3)
    _, at_random, _, _ = split.fn(frame, test_size=0.3, how="random", seed=5)
    assert len(by_time) == len(at_random) == 30
    assert by_time.index.min() == 70 and at_random.index.min() < 70


def test_a_holdout_for_a_pipeline_without_one_is_an_error() -> None:
    from ctloop import pipeline as make_pipeline
    from ctloop.loop.training import TrainingData, training_params

    @make_pipeline(name="no-holdout")
    def no_holdout(dataset: str = "x@latest") -> None:
        """No holdout param."""

    p = parse_policy(MINIMAL + "training_data: {dataset: x@1}\n")
    assert "holdout" not in training_params(no_holdout, p, TrainingData("x@1"))
    p = parse_policy(MINIMAL + "training_data: {dataset: x@1, holdout: {split: time}}\n")
    with pytest.raises(InvalidInput, match="has no 'holdout' param, so the policy's training_data"):
        training_params(no_holdout, p, TrainingData("x@1"))


def test_format_duration_writes_what_parse_window_reads_back() -> None:
    from ctloop._internal.text import format_duration
    from ctloop.monitoring.windows import parse_window

    spellings = ("45s", "90s", "1.5s", "30m", "6h", "1w")
    written = {t: format_duration(parse_window(t)) for t in spellings}
    assert written == {"45s": "45s", "90s": "90s", "1.5s": "1.5s", "30m": "30m", "6h": "6h",
                       "1w": "7d"}  # fmt: skip
    assert all(parse_window(w) == parse_window(t) for t, w in written.items())
    assert format_duration(timedelta(0)) == "0s"
