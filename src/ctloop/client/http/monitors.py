"""``client.monitors`` over HTTP: the same methods, checks and errors as the local backend.

Arguments are checked here with the local API's own checks (:mod:`ctloop.client._monitor_checks`),
so bad input fails before any request with the same message; the server checks again.
Monitors are created with the server's user as their creator.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import TypeAdapter

from ctloop._internal.names import check_name
from ctloop.client._http import HttpContext
from ctloop.client._monitor_checks import (
    alert_rows,
    check_limit,
    check_report_id,
    check_since,
    check_spec,
    report_values,
)
from ctloop.client.monitors import delivery_from_body
from ctloop.errors import InvalidInput
from ctloop.monitoring.entities import Monitor, ReportSummary, delivery_from_dict

if TYPE_CHECKING:
    from ctloop.monitoring.alerts import Delivery
    from ctloop.monitoring.report import Report
    from ctloop.serving.log_reader import Moment

__all__ = ["HttpMonitorsAPI"]

_monitor = TypeAdapter(Monitor)
_monitors = TypeAdapter(list[Monitor])
_summaries = TypeAdapter(list[ReportSummary])


def _path(deployment: str, *rest: str) -> str:
    segment = quote(check_name(deployment, "deployment"), safe="").replace(".", "%2E")
    return "/".join(["/monitors", segment, *rest])


def _params(limit: int, since: Moment, **more: Any) -> dict[str, Any]:
    start = check_since(since)
    params = {"limit": check_limit(limit), **{k: v for k, v in more.items() if v is not None}}
    if start is not None:
        params["since"] = start.isoformat()
    return params


def _report(data: Any) -> Report:
    from ctloop.monitoring.report import Report

    return Report.from_dict(data)


class HttpMonitorsAPI:
    """The monitors of a ctloop server (see :class:`~ctloop.client.monitors.MonitorsAPI`).

    Same methods, checks and errors as the local backend.
    """

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    def create(
        self,
        deployment: str,
        *,
        reference: str,
        profile: Mapping[str, Any],
        features: Sequence[str] | None = None,
        window: str | timedelta = "1h",
        drift_share: float = 0.5,
        rules: Sequence[Mapping[str, Any]] | None = None,
        sinks: Sequence[Mapping[str, Any]] | None = None,
        cooldown: str | timedelta | float = "30m",
        estimation: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> Monitor:
        """Create the monitor of ``deployment`` (see the local backend)."""
        check_name(deployment, "deployment")
        if not isinstance(replace, bool):
            raise InvalidInput(f"replace={replace!r}: use True or False")
        spec = check_spec(
            reference=reference,
            profile=profile,
            features=features,
            window=window,
            drift_share=drift_share,
            rules=rules,
            sinks=sinks,
            cooldown=cooldown,
            estimation=estimation,
        )
        body = {
            "deployment": deployment,
            "cooldown": spec.pop("cooldown_seconds"),
            "replace": replace,
            **spec,
        }
        return _monitor.validate_python(self._ctx.request("POST", "/monitors", json=body))

    def get(self, deployment: str) -> Monitor:
        """The monitor of ``deployment``."""
        return _monitor.validate_python(self._ctx.request("GET", _path(deployment)))

    def list(self) -> builtins.list[Monitor]:
        """Every monitor, by deployment name."""
        return _monitors.validate_python(self._ctx.request("GET", "/monitors"))

    def delete(self, deployment: str) -> None:
        """Delete the monitor of ``deployment`` (its reports and alerts stay)."""
        self._ctx.request("DELETE", _path(deployment))

    def add_report(self, report: Report, *, html_uri: str | None = None) -> ReportSummary:
        """Store a report of ``report.deployment``."""
        values = report_values(report, html_uri)
        body = {"report": values["body"], "html_uri": html_uri}
        path = _path(report.deployment or "", "reports")
        found = self._ctx.request("POST", path, json=body)
        return TypeAdapter(ReportSummary).validate_python(found)

    def reports(
        self, deployment: str, *, limit: int = 20, since: Moment = None
    ) -> builtins.list[ReportSummary]:
        """The reports of ``deployment`` built at or after ``since``, newest first."""
        path = _path(deployment, "reports")
        found = self._ctx.request("GET", path, params=_params(limit, since))
        return _summaries.validate_python(found)

    def report(self, report_id: str) -> Report:
        """The full report ``report_id``."""
        path = "/reports/" + quote(check_report_id(report_id), safe="")
        return _report(self._ctx.request("GET", path))

    def latest_report(self, deployment: str) -> Report | None:
        """The newest report of ``deployment``, or None when it has none."""
        found = self._ctx.request("GET", _path(deployment, "reports", "latest"))
        return None if found is None else _report(found)

    def add_alerts(
        self, deployment: str, deliveries: Sequence[Delivery]
    ) -> builtins.list[Delivery]:
        """Store the alerts that fired for ``deployment`` and what each sink did."""
        rows = alert_rows(deployment, deliveries)
        body = {"deliveries": [delivery_from_body(r["body"]).to_dict() for r in rows]}
        found = self._ctx.request("POST", _path(deployment, "alerts"), json=body)
        return [delivery_from_dict(d) for d in found]

    def alerts(
        self, deployment: str | None = None, *, limit: int = 100, since: Moment = None
    ) -> builtins.list[Delivery]:
        """The alerts of ``deployment`` (None: all) since ``since``, newest first."""
        name = None if deployment is None else check_name(deployment, "deployment")
        found = self._ctx.request("GET", "/alerts", params=_params(limit, since, deployment=name))
        return [delivery_from_dict(d) for d in found]

    def last_fired(self, deployment: str) -> dict[str, datetime]:
        """Dedup key → when it last fired: the cooldown state for ``AlertManager(state=…)``."""
        found = self._ctx.request("GET", _path(deployment, "alerts", "last-fired"))
        return {str(k): datetime.fromisoformat(v) for k, v in found.items()}
