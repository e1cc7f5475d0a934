"""Monitoring: drift tests, mergeable reference profiles, realised and estimated performance.

The main names are importable from here; each loads its module (and scikit-learn or
SciPy) only when first used, so ``import ctloop.monitoring`` stays cheap:

- drift on rows: :class:`DatasetDriftDetector`, :class:`ColumnDriftDetector`
  (:mod:`.detectors`, tests in :mod:`.stats`);
- drift on histograms: :class:`ReferenceProfile` (:mod:`.profiles`), :func:`drift` and
  :func:`calibrate` (:mod:`.profile_drift`), :func:`window_from_log` (:mod:`.windows`);
- beyond one column: :func:`domain_classifier` (:mod:`.multivariate`);
- performance: :func:`realised_performance`, :func:`serving_health` (:mod:`.performance`),
  :class:`ConfidenceBasedEstimator` (:mod:`.estimation`);
- reports and alerts: :func:`build_report`, :func:`render_html` (:mod:`.report`,
  :mod:`.html`), :class:`AlertManager`, :func:`rules_from_config`,
  :func:`sinks_from_config` (:mod:`.alerts`).

See ``docs/monitoring.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "ColumnDriftDetector": "detectors",
    "DatasetDriftDetector": "detectors",
    "DatasetDrift": "results",
    "DriftResult": "results",
    "ReferenceProfile": "profiles",
    "WindowProfile": "profiles",
    "drift": "profile_drift",
    "calibrate": "profile_drift",
    "window_from_log": "windows",
    "domain_classifier": "multivariate",
    "realised_performance": "performance",
    "serving_health": "performance",
    "ConfidenceBasedEstimator": "estimation",
    "Report": "report",
    "build_report": "report",
    "render_html": "html",
    "AlertManager": "alerts",
    "rules_from_config": "alerts",
    "sinks_from_config": "alerts",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctloop.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ctloop.monitoring.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
