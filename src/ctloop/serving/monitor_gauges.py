"""The latest monitoring report of a deployment, exposed by its inference server as gauges.

``ctloop monitor run`` stores a :class:`~ctloop.monitoring.report.Report` in the store
(``client.monitors.add_report``). A server that serves a stored deployment polls the store
for the newest report of that deployment every few seconds and, when a new one appears,
sets:

- ``ctloop_feature_drift_score{deployment,feature,method}``: each feature's drift score
  (the statistic of the method the monitor used: a p-value for KS, chi-squared and the
  z-test, a distance otherwise);
- ``ctloop_feature_drifted{deployment,feature}``: 1 when that feature drifted, else 0;
- ``ctloop_dataset_drift_share{deployment}``: the share of features that drifted;
- ``ctloop_estimated_performance{deployment,metric}``: the label-free estimate of the
  newest window (accuracy, F1, ROC AUC …) when the monitor estimates performance;
- ``ctloop_monitor_report_timestamp_seconds{deployment}``: when that report was built, so
  a stale monitor can be alerted on (``time() - … > 3600``).

A feature or metric the newest report no longer has is set to NaN rather than removed, so
every worker of a multi-worker server agrees (removing a series is per process).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from ctloop.errors import NotFound

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.monitoring.report import Report
    from ctloop.serving.metrics import ServingMetrics

__all__ = ["MonitorGauges"]

log = logging.getLogger(__name__)


class MonitorGauges:
    """Copies the newest stored report of ``deployment`` into ``metrics``' gauges.

    Args:
        metrics: the server's metrics.
        client: the store the deployment and its reports live in.
        deployment: the deployment's name.
    """

    def __init__(self, metrics: ServingMetrics, client: Client, deployment: str) -> None:
        self.metrics = metrics
        self.client = client
        self.deployment = deployment
        self.report_id: str | None = None
        self._features: set[tuple[str, str]] = set()
        self._metrics: set[str] = set()

    def refresh(self) -> bool:
        """Read the newest report; returns True when a new one was applied.

        Blocking (it reads the store): call it from a thread. A deployment without a
        monitor or a report is left alone.
        """
        try:
            newest = self.client.monitors.reports(self.deployment, limit=1)
        except NotFound:
            return False
        if not newest or newest[0].id == self.report_id:
            return False
        self.apply(self.client.monitors.report(newest[0].id))
        return True

    def apply(self, report: Report) -> None:
        """Set the gauges from ``report``."""
        name = self.deployment
        gauges = self.metrics
        features: set[tuple[str, str]] = set()
        for column in report.dataset_drift.get("columns", []):
            feature, method = str(column["column"]), str(column.get("method", ""))
            features.add((feature, method))
            gauges.feature_drift.labels(name, feature, method).set(_number(column.get("score")))
            gauges.feature_drifted.labels(name, feature).set(1.0 if column.get("drifted") else 0.0)
        for feature, method in self._features - features:
            gauges.feature_drift.labels(name, feature, method).set(math.nan)
        gone = {f for f, _ in self._features} - {f for f, _ in features}
        for feature in gone:
            gauges.feature_drifted.labels(name, feature).set(math.nan)
        self._features = features
        gauges.drift_share.labels(name).set(_number(report.dataset_drift.get("drifted_share")))
        estimates = _newest_estimates(report)
        for metric, value in estimates.items():
            gauges.estimated_performance.labels(name, metric).set(_number(value))
        for metric in self._metrics - set(estimates):
            gauges.estimated_performance.labels(name, metric).set(math.nan)
        self._metrics = set(estimates)
        gauges.report_time.labels(name).set(report.created_at.timestamp())
        self.report_id = report.id
        log.info("monitoring gauges of %r now show report %s", name, report.id)


def _newest_estimates(report: Report) -> dict[str, Any]:
    windows = report.estimated_performance or []
    if not windows:
        return {}
    newest = windows[-1]
    metrics = newest.get("metrics") or {}
    return {str(k): (v or {}).get("value") for k, v in metrics.items()}


def _number(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
