"""Pipelines as code: ``@step`` functions wired together by a ``@pipeline`` function.

Outputs are materialised into the artifact store by type and passed by reference; each
step is cached by its code, params and inputs; runs and step runs are recorded in the
store. Loaded lazily, like ``ctloop`` itself.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "ArtifactRef": "ctloop.pipelines.entities",
    "PipelineRun": "ctloop.pipelines.entities",
    "PipelineStatus": "ctloop.pipelines.entities",
    "StepRun": "ctloop.pipelines.entities",
    "StepStatus": "ctloop.pipelines.entities",
    "OutputRef": "ctloop.pipelines.steps",
    "Pipeline": "ctloop.pipelines.definition",
    "PipelineFailed": "ctloop.pipelines.definition",
    "PickledOutputWarning": "ctloop.pipelines.materializers",
    "Step": "ctloop.pipelines.steps",
    "TimeoutNotEnforced": "ctloop.pipelines.runner",
    "pipeline": "ctloop.pipelines.definition",
    "resolve_pipeline": "ctloop.pipelines.definition",
    "step": "ctloop.pipelines.steps",
    "StepContext": "ctloop.pipelines.context",
    "step_context": "ctloop.pipelines.context",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctloop.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
