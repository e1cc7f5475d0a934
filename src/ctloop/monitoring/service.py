"""Monitoring a deployment end to end: create its monitor, run it, store the report, alert.

The pieces this glues are documented where they live: the reference
(:func:`~ctloop.monitoring.reference.build_reference`), one window's report
(:func:`~ctloop.monitoring.monitor_run.evaluate_window`), the HTML page
(:func:`~ctloop.monitoring.html.render_html`), alert rules and sinks
(:class:`~ctloop.monitoring.alerts.AlertManager`), and the store
(``client.monitors``). ``ctloop monitors create`` and ``ctloop monitor run`` call
:func:`create_monitor` and :func:`run_monitor`; the continuous-training loop calls them too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.monitoring.alerts import Alert, Delivery
    from ctloop.monitoring.entities import Monitor, ReportSummary
    from ctloop.monitoring.reference import MonitorReference
    from ctloop.monitoring.report import Report

__all__ = [
    "MonitorRun",
    "create_monitor",
    "default_rules",
    "monitor_of",
    "reference_of",
    "run_monitor",
    "write_report_html",
]


def default_rules(drift_share: float = 0.5) -> list[dict[str, Any]]:
    """The alert rules of a monitor created without any.

    - a warning when any feature drifted (drift share above 0), and a critical alert when
      the dataset drifted (share at ``drift_share`` or more);
    - a critical alert when more than 5% of the window's requests failed.
    """
    return [
        {"kind": "drift_share_above", "threshold": 0.0, "severity": "warning"},
        {
            "kind": "drift_share_above",
            "threshold": max(drift_share - 1e-9, 0.0),
            "severity": "critical",
        },
        {"kind": "error_rate_above", "threshold": 0.05, "min_rows": 20, "severity": "critical"},
    ]


def create_monitor(
    client: Client,
    deployment: str,
    *,
    reference: str | None = None,
    features: Sequence[str] | None = None,
    window: str = "1h",
    drift_share: float = 0.5,
    rules: list[dict[str, Any]] | None = None,
    sinks: list[dict[str, Any]] | None = None,
    cooldown: str = "30m",
    replace: bool = False,
    bins: int = 10,
    sample_size: int = 10_000,
    trust: bool = False,
) -> Monitor:
    """Freeze a reference for ``deployment`` and store its monitor.

    Args:
        reference: the model version whose training data is the reference
            (``churn@3``, ``churn@champion``); default: the version that takes most of the
            deployment's traffic now. An alias is resolved once, here.
        features: the model inputs to test (default: all of them).
        window, drift_share, cooldown: as ``client.monitors.create`` takes them.
        rules: alert rule configs; default :func:`default_rules`.
        sinks: alert sink configs; default: the log.
        replace: overwrite the deployment's monitor if it has one.
        bins, sample_size: of the reference profile (numeric bins; values kept for the
            exact tests).
        trust: allow loading a model whose flavor runs code (to predict the reference).

    Raises:
        NotFound: an unknown deployment or version.
        InvalidInput: a bad option, or a model whose reference cannot be built.
        Conflict: the deployment has a monitor and ``replace`` is False.
    """
    from ctloop.monitoring.reference import build_reference, feature_column

    dep = client.deployments.get(deployment)
    if reference is None:
        main = max(dep.routes, key=lambda r: r.weight)
        reference = f"{dep.model}/{main.version}"
    rules = default_rules(drift_share) if rules is None else rules
    sinks = [{"kind": "log"}] if sinks is None else sinks
    _check_cheap_first(client, deployment, window, drift_share, rules, sinks, cooldown, replace)
    built = build_reference(
        client, reference, features=features, bins=bins, sample_size=sample_size, trust=trust
    )
    details = built.to_dict()
    profile = details.pop("profile")
    return client.monitors.create(
        deployment,
        reference=reference,
        profile=profile,
        features=None if features is None else [feature_column(f) for f in built.features],
        window=window,
        drift_share=drift_share,
        rules=rules,
        sinks=sinks,
        cooldown=cooldown,
        estimation=details,
        replace=replace,
    )


def _check_cheap_first(
    client: Client,
    deployment: str,
    window: str,
    drift_share: float,
    rules: list[dict[str, Any]],
    sinks: list[dict[str, Any]],
    cooldown: str,
    replace: bool,
) -> None:
    """Refuse bad options before the reference is built (that takes seconds).

    The store checks everything again, with the same messages, when the monitor is saved;
    these are the checks a user most often trips, made with this layer's own readers.
    """
    from ctloop.errors import Conflict, NotFound
    from ctloop.monitoring.rules import rules_from_config
    from ctloop.monitoring.sinks import sinks_from_config
    from ctloop.monitoring.windows import parse_window

    if isinstance(window, str) and window.strip().startswith("last"):
        count = window.strip()[5:] if window.strip().startswith("last:") else ""
        if not count.isdigit() or int(count) < 1:
            raise InvalidInput(f"window {window!r}: write the newest rows as last:N (last:5000)")
    else:
        parse_window(window)
    if (
        isinstance(drift_share, bool)
        or not isinstance(drift_share, int | float)
        or not 0 < drift_share <= 1  # NaN fails this too
    ):
        raise InvalidInput(
            f"drift_share={drift_share!r} must be a number above 0 and at most 1 (the share "
            "of features that must drift for the window to count as drifted, e.g. 0.5)"
        )
    rules_from_config(rules)
    sinks_from_config(sinks)
    if not replace:
        try:
            client.monitors.get(deployment)
        except NotFound:
            return
        raise Conflict(
            f"deployment {deployment!r} already has a monitor; pass --replace (replace=True) "
            "to overwrite it"
        )


def monitor_of(client: Client, deployment: str) -> Monitor:
    """The monitor of ``deployment``, with errors that say what to do.

    Raises:
        NotFound: an unknown deployment (naming how to list them), or one without a
            monitor (naming the command that creates one).
    """
    from ctloop.errors import NotFound

    client.deployments.get(deployment)  # an unknown deployment is its own error
    try:
        return client.monitors.get(deployment)
    except NotFound:
        raise NotFound(
            f"deployment {deployment!r} has no monitor yet; create one with: ctloop monitors "
            f"create {deployment} --reference MODEL@ALIAS (or create_monitor(client, "
            f"{deployment!r}) in Python)"
        ) from None


def reference_of(monitor: Monitor) -> MonitorReference:
    """The frozen reference a monitor measures against.

    Raises:
        InvalidInput: the monitor was stored without the reference's details (a profile
            given by hand); re-create it with :func:`create_monitor`.
    """
    from ctloop.monitoring.reference import MonitorReference

    if not monitor.estimation or "task" not in monitor.estimation:
        raise InvalidInput(
            f"the monitor of {monitor.deployment!r} holds a profile but not its model "
            f"reference; re-create it with: ctloop monitors create {monitor.deployment} "
            f"--reference {monitor.reference_given} --replace"
        )
    return MonitorReference.from_dict({**monitor.estimation, "profile": monitor.profile})


@dataclass
class MonitorRun:
    """What one :func:`run_monitor` did.

    Attributes:
        report: the report, as stored.
        summary: its listing in the store.
        deliveries: the alerts that fired (after the cooldown) and what each sink did.
        html_path: where the HTML page was written, or None.
        cooling: the alerts the rules raised but the cooldown kept quiet (their dedup key
            fired less than the monitor's cooldown ago); neither sent nor stored.
    """

    report: Report
    summary: ReportSummary
    deliveries: list[Delivery] = field(default_factory=list)
    html_path: str | None = None
    cooling: list[Alert] = field(default_factory=list)


def run_monitor(
    client: Client,
    deployment: str,
    *,
    until: datetime | None = None,
    html: str | os.PathLike[str] | None = None,
    alert: bool = True,
    multivariate: bool = False,
) -> MonitorRun:
    """Evaluate the deployment's newest window, store the report, send what fires.

    Args:
        until: the end of the window (default: now); the window is the monitor's
            (``1h`` before ``until``, or the newest ``last:N`` rows before it).
        html: write the report's HTML page here: a file (a path ending ``.html``), or a
            folder to put ``<deployment>-<time>-<id>.html`` in (any other path, created
            if missing); None writes none.
        alert: evaluate the monitor's rules and send alerts (their cooldown state is read
            from, and the alerts written to, the store).
        multivariate: also run the domain classifier on a sample of the reference data
            (the dataset version the reference profiled, at most 20,000 rows) against the
            window's rows.

    Raises:
        NotFound: the deployment has no monitor.
        InvalidInput: nothing was logged in the window (the message names it).
    """
    from ctloop.monitoring.alerts import AlertManager
    from ctloop.monitoring.monitor_run import evaluate_window, observations
    from ctloop.monitoring.rules import rules_from_config
    from ctloop.monitoring.sinks import sinks_from_config
    from ctloop.monitoring.windows import parse_window

    monitor = monitor_of(client, deployment)
    reference = reference_of(monitor)
    end = until or datetime.now(UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    last = monitor.last_rows
    since = None if last is not None else end - parse_window(monitor.window)
    predictions = client.deployments.predictions(deployment, since=since, until=end)
    joined = client.deployments.joined(deployment, since=since, until=end)
    if last is not None:
        predictions = predictions.tail(last)
        joined = joined[joined["prediction_id"].isin(predictions["prediction_id"])]
    start = since if since is not None else _first_time(predictions)
    report = evaluate_window(
        reference,
        predictions,
        joined,
        deployment=deployment,
        drift_share=monitor.drift_share,
        features=monitor.features,
        window_info={"start": start, "end": end, "window": monitor.window},
        reference_rows=_reference_rows(client, reference) if multivariate else None,
    )
    html_path = _write_html(report, html) if html is not None else None
    summary = client.monitors.add_report(report, html_uri=html_path)
    deliveries: list[Delivery] = []
    cooling: list[Alert] = []
    if alert:
        manager = AlertManager(
            rules_from_config(monitor.rules),
            sinks_from_config(monitor.sinks),
            cooldown=monitor.cooldown,
            state=client.monitors.last_fired(deployment),
        )
        seen = observations(report)
        now = datetime.now(UTC)
        raised = manager.evaluate(seen, now=now)
        deliveries = manager.run(seen, now=now)
        if deliveries:
            client.monitors.add_alerts(deployment, deliveries)
        sent = {d.alert.dedup_key for d in deliveries}
        cooling = [a for a in raised if a.dedup_key not in sent]
    return MonitorRun(
        report=report,
        summary=summary,
        deliveries=deliveries,
        html_path=html_path,
        cooling=cooling,
    )


def write_report_html(report: Report, path: str | os.PathLike[str]) -> str:
    """Write ``report``'s standalone HTML page to ``path`` (a file or a folder).

    A path ending ``.html`` (or ``.htm``) is the file; any other path is a folder, created
    if missing, that gets ``<deployment>-<time>-<id>.html``.

    The page is written to a temporary name and renamed, so a reader never sees half of
    it. Returns the file's absolute path.
    """
    return _write_html(report, path)


def _write_html(report: Report, path: str | os.PathLike[str]) -> str:
    from ctloop.monitoring.html import render_html

    target = Path(path).expanduser()
    folder = target.suffix.lower() not in (".html", ".htm")
    if folder or target.is_dir() or str(path).endswith(("/", os.sep)):
        stamp = report.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = target / f"{report.deployment or 'report'}-{stamp}-{report.id[:8]}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(render_html(report), encoding="utf-8")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return str(target.resolve())


def _reference_rows(client: Client, reference: MonitorReference) -> Any:
    """Up to 20,000 rows of the data the reference profiled, for the domain classifier."""
    from ctloop.validation.frames import load_frame

    if not reference.source:
        raise InvalidInput(
            f"the reference of {reference.model} does not name the data it profiled; "
            "re-create the monitor to run multivariate drift"
        )
    frame = load_frame(client, reference.source)
    return frame.sample(min(len(frame), 20_000), random_state=0) if len(frame) else frame


def _first_time(predictions: Any) -> datetime | None:
    if len(predictions) == 0 or "timestamp" not in predictions:
        return None
    first = predictions["timestamp"].min()
    return None if first != first else first.to_pydatetime()
