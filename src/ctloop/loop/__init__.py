"""The control layer: policies, triggers, rollout analysis and the controller.

The main names are importable from here and load their module on first use:

- policies: :class:`Policy` and its sections, :func:`load_policy`, :func:`parse_policy`,
  :func:`default_policy_yaml` (:mod:`.policy`);
- schedules: :func:`parse_cron`, :class:`CronSchedule` (:mod:`.cron`);
- triggers and guards: :func:`evaluate_triggers`, :class:`TriggerDecision`,
  :func:`request_manual`, :func:`blocked_by_guards`, :class:`GuardBlock`;
- the controller: :class:`Controller`, :func:`controller_for`, :func:`run_controllers`
  (:mod:`.controller`), and the canary analysis :func:`analyse` (:mod:`.canary`);
- what the store keeps: :class:`LoopState`, :class:`LoopStateName`, :class:`LoopEvent`,
  :class:`StoredPolicy` (:mod:`.entities`).

See ``docs/loop.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "analyse": "canary",
    "CanaryAnalysis": "canary",
    "Controller": "controller",
    "controller_for": "controller",
    "run_controllers": "controller",
    "LoopEvent": "entities",
    "LoopState": "entities",
    "LoopStateName": "entities",
    "StoredPolicy": "entities",
    "GuardBlock": "guards",
    "blocked_by_guards": "guards",
    "TriggerDecision": "triggers",
    "evaluate_triggers": "triggers",
    "request_manual": "manual",
    "CronSchedule": "cron",
    "parse_cron": "cron",
    "DriftTrigger": "policy",
    "ErrorRateCheck": "policy",
    "FeedbackData": "policy",
    "Guards": "policy",
    "Holdout": "policy",
    "LatencyCheck": "policy",
    "MetricCheck": "policy",
    "NewDataTrigger": "policy",
    "PerformanceTrigger": "policy",
    "PipelineSpec": "policy",
    "Policy": "policy",
    "PredictionDriftCheck": "policy",
    "Rollout": "policy",
    "RolloutChecks": "policy",
    "RolloutStep": "policy",
    "ScheduleTrigger": "policy",
    "TrainingData": "policy",
    "Triggers": "policy",
    "default_policy_yaml": "policy",
    "load_policy": "policy",
    "parse_policy": "policy",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctloop.loop' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ctloop.loop.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
