"""Data validation: profile reference data into a suite, then validate new data against it.

::

    from ctloop import validation

    suite = validation.infer_suite(train_df, name="churn")     # or a dataset version
    suite.save("suite.yaml")                                  # readable, editable YAML
    report = validation.validate(new_df, validation.load("suite.yaml"))
    print(report.to_text())
    report.raise_for_errors()                                 # ValidationFailed on errors

Names load lazily: importing this package pulls in neither pandas nor pandera.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Check",
    "CheckResult",
    "ColumnSpec",
    "Suite",
    "SuiteRecord",
    "ValidationFailed",
    "ValidationReport",
    "check",
    "infer_suite",
    "load",
    "load_frame",
    "save",
    "validate",
]

_LAZY: dict[str, str] = {
    "Check": "ctloop.validation.suite",
    "CheckResult": "ctloop.validation.report",
    "ColumnSpec": "ctloop.validation.suite",
    "Suite": "ctloop.validation.suite",
    "SuiteRecord": "ctloop.validation.records",
    "ValidationFailed": "ctloop.validation.report",
    "ValidationReport": "ctloop.validation.report",
    "check": "ctloop.validation.checks",
    "infer_suite": "ctloop.validation.infer",
    "load": "ctloop.validation.suite",
    "load_frame": "ctloop.validation.frames",
    "save": "ctloop.validation.suite",
    "validate": "ctloop.validation.checks",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ctloop.validation.checks import check, validate
    from ctloop.validation.frames import load_frame
    from ctloop.validation.infer import infer_suite
    from ctloop.validation.records import SuiteRecord
    from ctloop.validation.report import CheckResult, ValidationFailed, ValidationReport
    from ctloop.validation.suite import Check, ColumnSpec, Suite, load, save


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctloop.validation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
