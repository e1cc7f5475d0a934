"""``client.monitors``: the monitor of each deployment, its reports and its alerts.

A monitor is the spec of one deployment's monitoring: the model version its reference
profile stands for (resolved when it is created), the features, the window, the drift
share, the alert rules, sinks and cooldown, and the frozen profile itself. Each evaluation
is stored as a :class:`~ctloop.monitoring.report.Report` (:meth:`MonitorsAPI.add_report`)
and each alert that fired as the :class:`~ctloop.monitoring.alerts.Delivery` that sent it
(:meth:`MonitorsAPI.add_alerts`). Deleting a deployment deletes all three.

Checks shared with the HTTP backend live in :mod:`ctloop.client._monitor_checks`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctloop._internal.environment import current_user
from ctloop._internal.ids import ms_to_datetime, new_id, now_ms
from ctloop._internal.names import check_name
from ctloop.client._monitor_checks import (
    alert_rows,
    check_limit,
    check_report_id,
    check_since,
    check_spec,
    report_values,
    to_ms,
)
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.monitoring.entities import Monitor, ReportSummary
from ctloop.registry.refs import parse_model_ref
from ctloop.store import deployments as deployments_store
from ctloop.store import models as models_store
from ctloop.store import monitors as store

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ctloop.client._local import LocalContext
    from ctloop.monitoring.alerts import Delivery
    from ctloop.monitoring.report import Report
    from ctloop.serving.log_reader import Moment

__all__ = ["MonitorsAPI", "delivery_from_body", "monitor_from_row", "summary_from_row"]


# --- rows -> entities ---------------------------------------------------------------------


def _time(ms: int) -> datetime:
    when = ms_to_datetime(ms)
    assert when is not None
    return when


def monitor_from_row(row: dict[str, Any]) -> Monitor:
    """A :class:`Monitor` from a row of ``store.monitors``."""
    return Monitor(
        id=row["id"],
        deployment=row["deployment"],
        reference=row["reference"],
        reference_given=row["reference_given"],
        features=None if row["features"] is None else list(row["features"]),
        window=row["window"],
        drift_share=float(row["drift_share"]),
        rules=list(row["rules"]),
        sinks=list(row["sinks"]),
        cooldown_seconds=float(row["cooldown_seconds"]),
        profile=dict(row["profile"]),
        estimation=None if row["estimation"] is None else dict(row["estimation"]),
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        created_by=row["created_by"],
    )


def summary_from_row(row: dict[str, Any]) -> ReportSummary:
    """A :class:`ReportSummary` from a row of ``store.monitors.list_reports``."""
    return ReportSummary(
        id=row["id"],
        deployment=row["deployment"],
        created_at=_time(row["created_at"]),
        window_start=ms_to_datetime(row["window_start"]),
        window_end=ms_to_datetime(row["window_end"]),
        rows=int(row["rows"]),
        drifted=bool(row["drifted"]),
        drift_share=None if row["drift_share"] is None else float(row["drift_share"]),
        drifted_features=list(row["drifted_features"]),
        html_uri=row["html_uri"],
    )


def delivery_from_body(body: Mapping[str, Any]) -> Delivery:
    from ctloop.monitoring.alerts import Alert, Delivery, SinkOutcome

    outcomes = [SinkOutcome(**dict(o)) for o in body.get("deliveries") or []]
    return Delivery(Alert.from_dict(body), outcomes)


class MonitorsAPI:
    """Monitors, monitoring reports and alerts of one store. Reached as ``client.monitors``."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

    def _deployment_id(self, conn: Connection, name: str) -> str:
        return str(deployments_store.get(conn, check_name(name, "deployment"))["id"])

    def _monitor_row(self, conn: Connection, name: str) -> dict[str, Any]:
        row = store.get_monitor(conn, self._deployment_id(conn, name))
        if row is None:
            raise NotFound(
                f"deployment '{name}' has no monitor; create one with: "
                f"client.monitors.create('{name}', reference=..., profile=...)"
            )
        return row

    # --- monitors -----------------------------------------------------------------------

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
        """Create the monitor of ``deployment`` (or replace it, with ``replace=True``).

        Args:
            deployment: an existing deployment.
            reference: the model version the profile describes (``churn@champion``,
                ``churn/3``); resolved now and kept with the text given.
            profile: the frozen reference profile (``ReferenceProfile.to_dict()``).
            features: the columns to test (default: every column of the profile).
            window: a duration (``1h``) or the newest rows (``last:5000``).
            drift_share: the window drifted when at least this share of features did.
            rules, sinks: alert configs, as ``rules_from_config``/``sinks_from_config``
                read them.
            cooldown: how long an alert's dedup key stays quiet (``30m``, a timedelta or
                seconds).
            estimation: reference data for label-free performance estimation.
            replace: overwrite an existing monitor (its id and creation time stay).

        Raises:
            InvalidInput: a bad window, drift share, rule, sink, profile or reference, or
                a reference to another model than the deployment's.
            NotFound: an unknown deployment, model, version or alias.
            Conflict: the deployment has a monitor and ``replace`` is False.
        """
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
        given = spec.pop("reference")
        ref = parse_model_ref(given)
        with self._ctx.db.write() as conn:
            target = deployments_store.lock(conn, deployment)
            if ref.name != target["model"]:
                raise InvalidInput(
                    f"reference {given!r} names model '{ref.name}', but deployment "
                    f"'{deployment}' serves model '{target['model']}'; give a version of "
                    f"'{target['model']}', e.g. {target['model']}@champion"
                )
            if ref.alias is not None:
                version = models_store.get_version_by_alias(conn, target["model"], ref.alias)
            else:
                version = models_store.get_version(conn, target["model"], ref.version)
            now = now_ms()
            values = {
                **spec,
                "reference": f"{target['model']}/{int(version['version'])}",
                "reference_given": given,
                "updated_at": now,
            }
            current = store.get_monitor(conn, target["id"])
            if current is not None and not replace:
                raise Conflict(
                    f"deployment '{deployment}' has a monitor already; pass replace=True to "
                    "overwrite it, or delete it first"
                )
            if current is not None:
                store.replace_monitor(conn, current["id"], values)
            else:
                store.add_monitor(
                    conn,
                    {
                        **values,
                        "id": new_id(),
                        "deployment_id": target["id"],
                        "created_at": now,
                        "created_by": current_user(),
                    },
                )
            return monitor_from_row(self._monitor_row(conn, deployment))

    def get(self, deployment: str) -> Monitor:
        """The monitor of ``deployment``.

        Raises:
            NotFound: an unknown deployment, or one without a monitor (saying how to add one).
        """
        with self._ctx.db.read() as conn:
            return monitor_from_row(self._monitor_row(conn, deployment))

    def list(self) -> builtins.list[Monitor]:
        """Every monitor, by deployment name."""
        with self._ctx.db.read() as conn:
            return [monitor_from_row(r) for r in store.list_monitors(conn)]

    def delete(self, deployment: str) -> None:
        """Delete the monitor of ``deployment`` (its reports and alerts stay).

        Raises:
            NotFound: an unknown deployment, or one without a monitor.
        """
        with self._ctx.db.write() as conn:
            if not store.remove_monitor(conn, self._deployment_id(conn, deployment)):
                self._monitor_row(conn, deployment)  # raises the NotFound that says why

    # --- reports --------------------------------------------------------------------------

    def add_report(self, report: Report, *, html_uri: str | None = None) -> ReportSummary:
        """Store a report of ``report.deployment`` (an existing deployment).

        Raises:
            InvalidInput: not a Report, no deployment named in it, or a bad ``html_uri``.
            NotFound: an unknown deployment.
            Conflict: a report with that id is stored already.
        """
        values = report_values(report, html_uri)
        with self._ctx.db.write() as conn:
            values["deployment_id"] = self._deployment_id(conn, report.deployment or "")
            store.add_report(conn, values)
        return summary_from_row({**values, "deployment": report.deployment})

    def reports(
        self, deployment: str, *, limit: int = 20, since: Moment = None
    ) -> builtins.list[ReportSummary]:
        """The reports of ``deployment`` built at or after ``since``, newest first."""
        count, start = check_limit(limit), check_since(since)
        with self._ctx.db.read() as conn:
            rows = store.list_reports(
                conn,
                self._deployment_id(conn, deployment),
                limit=count,
                since=None if start is None else to_ms(start),
            )
        return [summary_from_row(r) for r in rows]

    def report(self, report_id: str) -> Report:
        """The full report ``report_id``.

        Raises:
            NotFound: no report has that id.
        """
        from ctloop.monitoring.report import Report

        check_report_id(report_id)
        with self._ctx.db.read() as conn:
            row = store.get_report(conn, report_id)
        if row is None:
            raise NotFound(
                f"no report with id '{report_id}'; list a deployment's reports with: "
                "client.monitors.reports(DEPLOYMENT)"
            )
        return Report.from_dict(row["body"])

    def latest_report(self, deployment: str) -> Report | None:
        """The newest report of ``deployment``, or None when it has none."""
        from ctloop.monitoring.report import Report

        with self._ctx.db.read() as conn:
            rows = store.list_reports(
                conn, self._deployment_id(conn, deployment), limit=1, since=None, body=True
            )
        return Report.from_dict(rows[0]["body"]) if rows else None

    # --- alerts ---------------------------------------------------------------------------

    def add_alerts(
        self, deployment: str, deliveries: Sequence[Delivery]
    ) -> builtins.list[Delivery]:
        """Store the alerts that fired for ``deployment`` and what each sink did with them.

        Returns:
            The deliveries as stored (NaN and infinity in the evidence become None).

        Raises:
            InvalidInput: not deliveries, or an alert of another deployment.
            NotFound: an unknown deployment.
            Conflict: an alert with one of those ids is stored already.
        """
        rows = alert_rows(deployment, deliveries)
        with self._ctx.db.write() as conn:
            deployment_id = self._deployment_id(conn, deployment)
            store.add_alerts(conn, [{**r, "deployment_id": deployment_id} for r in rows])
        return [delivery_from_body(r["body"]) for r in rows]

    def alerts(
        self, deployment: str | None = None, *, limit: int = 100, since: Moment = None
    ) -> builtins.list[Delivery]:
        """The alerts of ``deployment`` (None: of every deployment) since ``since``, newest
        first, each with what its sinks did."""
        count, start = check_limit(limit), check_since(since)
        with self._ctx.db.read() as conn:
            deployment_id = None if deployment is None else self._deployment_id(conn, deployment)
            rows = store.list_alerts(
                conn, deployment_id, limit=count, since=None if start is None else to_ms(start)
            )
        return [delivery_from_body(r["body"]) for r in rows]

    def last_fired(self, deployment: str) -> dict[str, datetime]:
        """Dedup key → when it last fired: the cooldown state for ``AlertManager(state=…)``."""
        with self._ctx.db.read() as conn:
            fired = store.last_fired(conn, self._deployment_id(conn, deployment))
        return {key: _time(ms) for key, ms in sorted(fired.items())}
