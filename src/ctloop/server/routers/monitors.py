"""``/api/v1/monitors``, ``/reports`` and ``/alerts``: monitors, their reports and alerts.

Every endpoint parses its input with a pydantic model, calls the server's local
``client.monitors`` and returns the result, so checks, errors and messages are those of the
local backend. A monitor carries its frozen reference profile (often ~1 MB); the JSON body
limit every router shares (``CTLOOP_SERVER_MAX_BODY_BYTES``, 16 MiB by default) leaves room
for profiles of several MB, so this router keeps it rather than raising it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from ctloop._internal.wire import to_wire
from ctloop.errors import InvalidInput
from ctloop.monitoring.entities import Monitor, ReportSummary, delivery_from_dict
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

router = APIRouter(tags=["monitors"], route_class=JsonBodyLimit)

_SINCE = Query(None, description="only those created at or after this moment (ISO 8601)")


class MonitorIn(BaseModel):
    """A new monitor of an existing deployment (or a replacement, with ``replace``)."""

    deployment: str = Field(description="the deployment to monitor", examples=["churn-api"])
    reference: str = Field(
        description="the version the profile describes; resolved now and kept",
        examples=["churn@champion", "churn/3"],
    )
    profile: dict[str, Any] = Field(
        description="the frozen reference profile: ReferenceProfile.to_dict()"
    )
    features: list[str] | None = Field(
        None, description="the columns to test (null: every column of the profile)"
    )
    window: str = Field(
        "1h", description="a duration or the newest rows", examples=["1h", "last:5000"]
    )
    drift_share: StrictFloat | StrictInt = Field(
        0.5, description="drifted when at least this share of the features drifted (0 < x <= 1)"
    )
    rules: list[dict[str, Any]] | None = Field(
        None,
        description="alert rule configs",
        examples=[[{"kind": "drift_share_above", "threshold": 0.3}]],
    )
    sinks: list[dict[str, Any]] | None = Field(
        None, description="alert sink configs", examples=[[{"kind": "log"}]]
    )
    cooldown: StrictStr | StrictFloat | StrictInt = Field(
        "30m", description="quiet time per dedup key: a duration or seconds", examples=["30m"]
    )
    estimation: dict[str, Any] | None = Field(
        None, description="reference data for label-free performance estimation"
    )
    replace: StrictBool = Field(False, description="overwrite the deployment's monitor")


class ReportIn(BaseModel):
    """A monitoring report of the deployment in the path."""

    report: dict[str, Any] = Field(description="Report.to_dict() of a report of this deployment")
    html_uri: str | None = Field(None, description="where its HTML page was written")


class AlertsIn(BaseModel):
    """Alerts that fired for the deployment in the path, with what each sink did."""

    deliveries: list[dict[str, Any]] = Field(
        max_length=10_000,
        description="Delivery.to_dict() of each: {alert: Alert.to_dict(), outcomes: [...]}",
    )


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(to_wire(value), status_code=status_code)


@router.get("/monitors", responses={200: {"model": list[Monitor]}})
def list_monitors(client: ClientDep) -> JSONResponse:
    """Every monitor, by deployment name."""
    return _json(client.monitors.list())


@router.post("/monitors", status_code=201, responses={201: {"model": Monitor}})
def create(body: MonitorIn, client: ClientDep) -> JSONResponse:
    """Create a deployment's monitor (409 if it has one and ``replace`` is false)."""
    found = client.monitors.create(
        body.deployment,
        reference=body.reference,
        profile=body.profile,
        features=body.features,
        window=body.window,
        drift_share=body.drift_share,
        rules=body.rules,
        sinks=body.sinks,
        cooldown=body.cooldown,
        estimation=body.estimation,
        replace=body.replace,
    )
    return _json(found, status_code=201)


@router.get("/monitors/{deployment}", responses={200: {"model": Monitor}})
def get(deployment: str, client: ClientDep) -> JSONResponse:
    """The monitor of a deployment."""
    return _json(client.monitors.get(deployment))


@router.delete("/monitors/{deployment}", status_code=204)
def delete(deployment: str, client: ClientDep) -> Response:
    """Delete the monitor of a deployment (its reports and alerts stay)."""
    client.monitors.delete(deployment)
    return Response(status_code=204)


@router.post(
    "/monitors/{deployment}/reports", status_code=201, responses={201: {"model": ReportSummary}}
)
def add_report(deployment: str, body: ReportIn, client: ClientDep) -> JSONResponse:
    """Store a report of the deployment (409 if one with its id is stored)."""
    from ctloop.monitoring.report import Report

    try:
        report = Report.from_dict(body.report)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"report must be Report.to_dict() output: {exc!r}") from None
    if report.deployment != deployment:
        raise InvalidInput(
            f"the report is of deployment {report.deployment!r}, not {deployment!r}; post it "
            "under its own deployment"
        )
    return _json(client.monitors.add_report(report, html_uri=body.html_uri), status_code=201)


@router.get("/monitors/{deployment}/reports", responses={200: {"model": list[ReportSummary]}})
def list_reports(
    deployment: str,
    client: ClientDep,
    limit: int = Query(20, description="how many to return, newest first (1 to 10,000)"),
    since: str | None = _SINCE,
) -> JSONResponse:
    """The reports of a deployment, newest first, without their bodies."""
    return _json(client.monitors.reports(deployment, limit=limit, since=since))


@router.get("/monitors/{deployment}/reports/latest")
def latest_report(deployment: str, client: ClientDep) -> JSONResponse:
    """The newest report of a deployment, whole (null when it has none)."""
    found = client.monitors.latest_report(deployment)
    return JSONResponse(None if found is None else found.to_dict())


@router.get("/reports/{report_id}")
def get_report(report_id: str, client: ClientDep) -> JSONResponse:
    """One report, whole: Report.to_dict()."""
    return JSONResponse(client.monitors.report(report_id).to_dict())


@router.post("/monitors/{deployment}/alerts", status_code=201)
def add_alerts(deployment: str, body: AlertsIn, client: ClientDep) -> JSONResponse:
    """Store alerts that fired for a deployment; answers them as stored."""
    try:
        deliveries = [delivery_from_dict(d) for d in body.deliveries]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            f"deliveries must be Delivery.to_dict() values: {type(exc).__name__}: {exc}"
        ) from None
    stored = client.monitors.add_alerts(deployment, deliveries)
    return JSONResponse([d.to_dict() for d in stored], status_code=201)


@router.get("/alerts")
def list_alerts(
    client: ClientDep,
    deployment: str | None = Query(None, description="only this deployment's alerts"),
    limit: int = Query(100, description="how many to return, newest first (1 to 10,000)"),
    since: str | None = _SINCE,
) -> JSONResponse:
    """Alerts that fired, newest first, each as Delivery.to_dict()."""
    found = client.monitors.alerts(deployment, limit=limit, since=since)
    return JSONResponse([d.to_dict() for d in found])


@router.get("/monitors/{deployment}/alerts/last-fired")
def last_fired(deployment: str, client: ClientDep) -> JSONResponse:
    """Dedup key → when it last fired (ISO 8601): the cooldown state of the deployment."""
    return _json(client.monitors.last_fired(deployment))
