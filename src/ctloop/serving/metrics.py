"""The inference server's Prometheus metrics, correct across worker processes.

One :class:`ServingMetrics` per server process. With a single process the metrics live
in a private registry. With ``--workers N`` the CLI points ``PROMETHEUS_MULTIPROC_DIR``
at a fresh folder before the workers start; every worker then writes its values to
memory-mapped files there and ``/metrics``, whichever worker answers it, sums them
(prometheus-client's multiprocess mode). So counters and histograms are server totals,
``ctloop_requests_in_flight`` and ``ctloop_payload_log_queue_depth`` add up the live
workers, ``ctloop_model_load_seconds`` is the slowest load of each version, and the
monitoring gauges (:mod:`ctloop.serving.monitor_gauges`) the value last set by any worker.
"""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # no *_created series: scrapers do not need them

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "ServingMetrics", "multiprocess_dir"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# request latency buckets, in seconds: sub-millisecond to a few seconds
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def multiprocess_dir() -> str | None:
    """The shared metrics folder of a multi-worker server, or None for one process."""
    return os.environ.get(MULTIPROC_ENV) or None


class ServingMetrics:
    """The metrics one inference server process updates and exposes."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self._registry = CollectorRegistry(auto_describe=True)
        reg = self._registry
        self.requests = Counter(
            "ctloop_requests",
            "Inference requests answered, by outcome (status is the HTTP status code).",
            ["deployment", "model_version", "variant", "protocol", "status"],
            registry=reg,
        )
        self.duration = Histogram(
            "ctloop_request_duration_seconds",
            "Time from a request's arrival to its response, in seconds.",
            ["deployment", "protocol"],
            buckets=_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "ctloop_requests_in_flight",
            "Inference requests being answered now.",
            ["deployment"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.model_load = Gauge(
            "ctloop_model_load_seconds",
            "Seconds it took to load and warm a model version (the slowest worker's).",
            ["deployment", "model_version"],
            registry=reg,
            multiprocess_mode="max",
        )
        self.log_rows = Counter(
            "ctloop_payload_log_rows",
            "Rows queued for the prediction and feedback logs.",
            ["deployment", "kind"],
            registry=reg,
        )
        self.log_dropped = Counter(
            "ctloop_payload_log_dropped",
            "Rows the prediction and feedback logs dropped (queue full, or a failed write).",
            ["deployment", "kind"],
            registry=reg,
        )
        self.log_queue = Gauge(
            "ctloop_payload_log_queue_depth",
            "Rows waiting in memory for the next log segment.",
            ["deployment", "kind"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        # the newest monitoring report of the deployment (ctloop.serving.monitor_gauges);
        # every worker reads the same report, so the most recent value is the answer
        self.feature_drift = Gauge(
            "ctloop_feature_drift_score",
            "Each feature's drift score in the newest monitoring report (the method's "
            "statistic: a p-value for ks, chisquare and ztest, else a distance).",
            ["deployment", "feature", "method"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.feature_drifted = Gauge(
            "ctloop_feature_drifted",
            "1 when the feature drifted in the newest monitoring report, else 0.",
            ["deployment", "feature"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.drift_share = Gauge(
            "ctloop_dataset_drift_share",
            "The share of features that drifted in the newest monitoring report.",
            ["deployment"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.estimated_performance = Gauge(
            "ctloop_estimated_performance",
            "Label-free estimate of the model's performance on the newest monitored window.",
            ["deployment", "metric"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.report_time = Gauge(
            "ctloop_monitor_report_timestamp_seconds",
            "When the newest monitoring report was built (Unix time).",
            ["deployment"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.shadow_dropped = Counter(
            "ctloop_shadow_dropped",
            "Shadow copies of requests dropped because the shadow queue was full.",
            ["deployment", "model_version"],
            registry=reg,
        )

    @property
    def registry(self) -> CollectorRegistry:
        """This process's own metrics (in multiprocess mode, not the other workers')."""
        return self._registry

    def render(self) -> bytes:
        """The metrics in the Prometheus text format (of every worker when there are several)."""
        if not self.multiprocess:
            return generate_latest(self._registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
