"""What the store keeps about monitoring: :class:`Monitor` and :class:`ReportSummary`.

A monitor is the spec of one deployment's monitoring (reference, features, window, drift
share, alert rules and sinks, cooldown) with the frozen reference profile it measures
against; each evaluation is stored as a full :class:`~ctloop.monitoring.report.Report`,
listed as :class:`ReportSummary`. Alerts are stored as the
:class:`~ctloop.monitoring.alerts.Delivery` that sent them (the alert and what each sink
did); :func:`delivery_from_dict` reads one back from :meth:`Delivery.to_dict`'s output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.monitoring.alerts import Delivery

__all__ = ["Monitor", "ReportSummary", "delivery_from_dict"]


@dataclass(frozen=True)
class Monitor:
    """The monitoring spec of one deployment (at most one per deployment).

    Attributes:
        id: a random hex id.
        deployment: the deployment's name.
        reference: the model version the reference stands for, resolved when the monitor
            was created (``churn/3``); an alias moving later does not change it.
        reference_given: the reference as given (``churn@champion``).
        features: the columns to test, or None for every column of the profile.
        window: what one evaluation covers: a duration (``1h``, ``30m``) or the newest
            rows (``last:5000``).
        drift_share: the window drifted when at least this share of the features did.
        rules: alert rule configs (as :func:`~ctloop.monitoring.rules.rules_from_config`
            reads them).
        sinks: alert sink configs (as :func:`~ctloop.monitoring.sinks.sinks_from_config`
            reads them).
        cooldown_seconds: how long an alert's dedup key stays quiet after it fired (see
            :attr:`cooldown` for it as a timedelta).
        profile: the frozen reference profile (:meth:`ReferenceProfile.to_dict`).
        estimation: what the reference knows beyond its profile, or None for a profile
            given by hand: ``MonitorReference.to_dict()`` without ``profile`` (the model
            version, the dataset profiled, the task and classes, notes, and under
            ``estimation`` the held-out sample label-free estimation is fitted on); see
            :func:`ctloop.monitoring.service.reference_of`.
        created_at, updated_at: when it was created and last replaced (UTC).
        created_by: who created it.
    """

    id: str
    deployment: str
    reference: str
    reference_given: str
    features: list[str] | None
    window: str
    drift_share: float
    rules: list[dict[str, Any]]
    sinks: list[dict[str, Any]]
    cooldown_seconds: float
    profile: dict[str, Any]
    estimation: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None

    @property
    def cooldown(self) -> timedelta:
        """The cooldown, as ``AlertManager(cooldown=…)`` takes it."""
        return timedelta(seconds=self.cooldown_seconds)

    @property
    def last_rows(self) -> int | None:
        """N for a ``last:N`` window, else None."""
        return int(self.window[5:]) if self.window.startswith("last:") else None


@dataclass(frozen=True)
class ReportSummary:
    """One stored report, without its body (read that with ``client.monitors.report(id)``).

    Attributes:
        id: the report's id.
        deployment: the deployment's name.
        created_at: when the report was built (UTC).
        window_start, window_end: the first and last time in the current window, if known.
        rows: rows in the current window.
        drifted: the dataset verdict.
        drift_share: the measured share of drifted features (None if none was tested).
        drifted_features: the drifted columns, furthest past their threshold first.
        html_uri: where its HTML page was written, if anywhere.
    """

    id: str
    deployment: str
    created_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    drifted: bool
    drift_share: float | None
    drifted_features: list[str]
    html_uri: str | None = None


def delivery_from_dict(data: Mapping[str, Any]) -> Delivery:
    """A :class:`~ctloop.monitoring.alerts.Delivery` from :meth:`Delivery.to_dict`'s output."""
    from ctloop.monitoring.alerts import Alert, Delivery, SinkOutcome

    outcomes = [SinkOutcome(**dict(o)) for o in data.get("outcomes") or []]
    return Delivery(Alert.from_dict(data["alert"]), outcomes)
