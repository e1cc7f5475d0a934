"""ctloop keeps machine-learning models improving in production on their own.

The public API is loaded lazily: ``import ctloop`` is cheap and pulls in neither pandas,
scipy, scikit-learn, SQLAlchemy nor FastAPI; each name below imports its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_LAZY: dict[str, str] = {
    "Client": "ctloop.client",
    "Conflict": "ctloop.errors",
    "CtloopError": "ctloop.errors",
    "DatasetVersion": "ctloop.data.entities",
    "Experiment": "ctloop.tracking.entities",
    "InvalidInput": "ctloop.errors",
    "ModelVersion": "ctloop.registry.entities",
    "NotFound": "ctloop.errors",
    "PipelineRun": "ctloop.pipelines.entities",
    "Run": "ctloop.tracking.run",
    "RunRecord": "ctloop.tracking.entities",
    "active_run": "ctloop.tracking.fluent",
    "add_dataset": "ctloop.data.fluent",
    "end_run": "ctloop.tracking.fluent",
    "get_dataset": "ctloop.data.fluent",
    "load_model": "ctloop.registry.fluent",
    "log_artifact": "ctloop.tracking.fluent",
    "log_input": "ctloop.tracking.fluent",
    "log_metric": "ctloop.tracking.fluent",
    "log_metrics": "ctloop.tracking.fluent",
    "log_param": "ctloop.tracking.fluent",
    "log_params": "ctloop.tracking.fluent",
    "pipeline": "ctloop.pipelines.definition",
    "register_model": "ctloop.registry.fluent",
    "set_tag": "ctloop.tracking.fluent",
    "set_tags": "ctloop.tracking.fluent",
    "start_run": "ctloop.tracking.fluent",
    "step": "ctloop.pipelines.steps",
}

__all__ = [
    "Client",
    "Conflict",
    "CtloopError",
    "DatasetVersion",
    "Experiment",
    "InvalidInput",
    "ModelVersion",
    "NotFound",
    "PipelineRun",
    "Run",
    "RunRecord",
    "active_run",
    "add_dataset",
    "end_run",
    "get_dataset",
    "load_model",
    "log_artifact",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "pipeline",
    "register_model",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion
    from ctloop.data.fluent import add_dataset, get_dataset
    from ctloop.errors import Conflict, CtloopError, InvalidInput, NotFound
    from ctloop.pipelines.definition import pipeline
    from ctloop.pipelines.entities import PipelineRun
    from ctloop.pipelines.steps import step
    from ctloop.registry.entities import ModelVersion
    from ctloop.registry.fluent import load_model, register_model
    from ctloop.tracking.entities import Experiment, RunRecord
    from ctloop.tracking.fluent import (
        active_run,
        end_run,
        log_artifact,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        set_tag,
        set_tags,
        start_run,
    )
    from ctloop.tracking.run import Run


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
