"""Live figures of running replicas, for ``ctloop deployments show`` and ``client.deployments``.

Every replica (each worker process of ``ctloop serve``) writes a small JSON status to the
artifact store every :data:`INTERVAL_SECONDS`::

    <root>/serving/<deployment>/<replica>.json

holding what it serves (revision, routes, loaded versions), whether it is ready, and its
counters since it started: requests per version and variant by outcome, the request
latency histogram, rows logged and dropped, shadow drops. A reader keeps the statuses
updated in the last :data:`FRESH_SECONDS` (a replica that stopped or crashed drops out)
and adds them up: :func:`live_figures`. Nothing here needs the replicas' addresses, so it
works behind a load balancer and across machines that share the artifact store.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctloop.artifacts.filesystems import remote_filesystem
from ctloop.serving.payload_log import check_names

if TYPE_CHECKING:
    from ctloop.serving.metrics import ServingMetrics

__all__ = [
    "FRESH_SECONDS",
    "INTERVAL_SECONDS",
    "counters",
    "live_figures",
    "quantile",
    "read_statuses",
    "remove_status",
    "write_status",
]

INTERVAL_SECONDS = 2.0
FRESH_SECONDS = 10.0
FOLDER = "serving"


def counters(metrics: ServingMetrics) -> dict[str, Any]:
    """This process's counters: requests by version, latency buckets, log and shadow figures."""
    versions: dict[str, dict[str, Any]] = {}
    buckets: dict[str, float] = {}
    logged = dropped = shadow_dropped = 0.0
    in_flight = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "ctloop_requests_total":
                entry = versions.setdefault(
                    labels["model_version"] or "-",
                    {"variant": labels["variant"], "ok": 0, "client_errors": 0, "errors": 0},
                )
                status = int(labels["status"])
                key = "ok" if status < 400 else "client_errors" if status < 500 else "errors"
                entry[key] += int(sample.value)
            elif sample.name == "ctloop_request_duration_seconds_bucket":
                le = labels["le"]
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name == "ctloop_payload_log_rows_total":
                logged += sample.value
            elif sample.name == "ctloop_payload_log_dropped_total":
                dropped += sample.value
            elif sample.name == "ctloop_shadow_dropped_total":
                shadow_dropped += sample.value
            elif sample.name == "ctloop_requests_in_flight":
                in_flight += sample.value
    return {
        "versions": versions,
        "latency_buckets": sorted(
            ([float(le), count] for le, count in buckets.items()), key=lambda b: b[0]
        ),
        "log_rows": int(logged),
        "log_dropped": int(dropped),
        "shadow_dropped": int(shadow_dropped),
        "in_flight": int(in_flight),
    }


def quantile(q: float, buckets: list[list[float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram (Prometheus' ``histogram_quantile``)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower_le  # beyond the last finite bucket: its bound is what we know
            span = count - lower_count
            fraction = (rank - lower_count) / span if span > 0 else 1.0
            return lower_le + (le - lower_le) * fraction
        lower_le, lower_count = le, count
    return lower_le


def _key(deployment: str, replica: str) -> str:
    return f"{FOLDER}/{deployment}/{replica}.json"


def write_status(
    root: str,
    deployment: str,
    replica: str,
    status: Mapping[str, Any],
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Publish one replica's status atomically (a reader never sees half a file)."""
    check_names(deployment, "predictions")
    body = json.dumps({**status, "updated": time.time()}, default=str).encode()
    if "://" in root:
        fs = remote_filesystem(root, storage_options)
        fs.pipe_file(f"{root.rstrip('/')}/{_key(deployment, replica)}", body)
        return
    path = os.path.join(root, _key(deployment, replica))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as f:
        f.write(body)
    os.replace(tmp, path)


def remove_status(
    root: str, deployment: str, replica: str, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Withdraw a stopping replica's status."""
    try:
        if "://" in root:
            remote_filesystem(root, storage_options).rm_file(
                f"{root.rstrip('/')}/{_key(deployment, replica)}"
            )
        else:
            os.unlink(os.path.join(root, _key(deployment, replica)))
    except (FileNotFoundError, OSError):
        pass


def read_statuses(
    root: str,
    deployment: str,
    *,
    fresh_seconds: float = FRESH_SECONDS,
    storage_options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The statuses of the replicas of ``deployment`` that reported recently."""
    check_names(deployment, "predictions")
    bodies: list[bytes] = []
    if "://" in root:
        fs = remote_filesystem(root, storage_options)
        fs.invalidate_cache()
        for path in fs.glob(f"{root.rstrip('/')}/{FOLDER}/{deployment}/*.json"):
            try:
                bodies.append(fs.cat_file(path))
            except FileNotFoundError:
                continue
    else:
        folder = os.path.join(root, FOLDER, deployment)
        names = os.listdir(folder) if os.path.isdir(folder) else []
        for name in sorted(names):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(folder, name), "rb") as f:
                        bodies.append(f.read())
                except FileNotFoundError:
                    continue
    now = time.time()
    out = []
    for body in bodies:
        try:
            status = json.loads(body)
        except ValueError:
            continue
        if isinstance(status, dict) and now - float(status.get("updated", 0)) <= fresh_seconds:
            out.append(status)
    return out


def live_figures(statuses: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The statuses of several replicas added up, or None when no replica is running.

    Returns:
        ``replicas``, ``ready`` (how many), ``revisions`` served, ``versions`` (per model
        version: variant, ok, client_errors, errors, requests), ``requests``,
        ``p50_ms``/``p99_ms`` over all requests since the replicas started, ``in_flight``,
        ``log_rows``, ``log_dropped``, ``shadow_dropped``.
    """
    if not statuses:
        return None
    versions: dict[str, dict[str, Any]] = {}
    buckets: dict[float, float] = {}
    totals = {"in_flight": 0, "log_rows": 0, "log_dropped": 0, "shadow_dropped": 0}
    for status in statuses:
        figures = status.get("figures", {})
        for label, entry in figures.get("versions", {}).items():
            into = versions.setdefault(
                label, {"variant": entry.get("variant"), "ok": 0, "client_errors": 0, "errors": 0}
            )
            for key in ("ok", "client_errors", "errors"):
                into[key] += int(entry.get(key, 0))
        for le, count in figures.get("latency_buckets", []):
            buckets[float(le)] = buckets.get(float(le), 0.0) + float(count)
        for key in totals:
            totals[key] += int(figures.get(key, 0))
    for entry in versions.values():
        entry["requests"] = entry["ok"] + entry["client_errors"] + entry["errors"]
    merged = [[le, count] for le, count in sorted(buckets.items())]
    p50, p99 = quantile(0.5, merged), quantile(0.99, merged)
    return {
        "replicas": len(statuses),
        "ready": sum(1 for s in statuses if s.get("ready")),
        "revisions": sorted({str(s.get("revision")) for s in statuses}),
        "versions": dict(sorted(versions.items())),
        "requests": sum(e["requests"] for e in versions.values()),
        "p50_ms": None if p50 is None else round(p50 * 1000, 2),
        "p99_ms": None if p99 is None else round(p99 * 1000, 2),
        **totals,
    }
