"""Checks shared by both backends of ``client.monitors``, and the rows they store.

The HTTP backend runs these before any request, so bad input fails there with the
local backend's message; the server (a local client) runs them again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctloop._internal.names import check_name
from ctloop.client.deployments import check_model_ref
from ctloop.errors import InvalidInput
from ctloop.serving.log_reader import moment

if TYPE_CHECKING:
    from ctloop.serving.log_reader import Moment

__all__ = [
    "alert_rows",
    "check_limit",
    "check_report_id",
    "check_since",
    "check_spec",
    "report_values",
]

MAX_LIMIT = 10_000
_LAST = re.compile(r"^\s*last\s*:\s*(\d+)\s*$")
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


# --- checks (both backends) ---------------------------------------------------------------


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON data (NaN and infinity as null); InvalidInput if it is not JSON."""

    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    out = clean(value)
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where} must hold JSON values only: {exc}") from None
    return out


def _duration(value: str | timedelta, what: str) -> timedelta:
    from ctloop.monitoring.windows import parse_window

    try:
        return parse_window(value)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{what} {value!r} is too long a duration") from None


def check_window(value: object) -> str:
    """A window as stored: a duration (``1h``) or ``last:N`` (the newest N rows)."""
    if isinstance(value, timedelta):
        _duration(value, "window")
        seconds = value.total_seconds()
        return f"{int(seconds) if seconds.is_integer() else seconds}s"
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput(f"window {value!r} must be text such as 1h, 30m or last:5000")
    last = _LAST.match(value)
    if last is not None:
        if int(last.group(1)) < 1:
            raise InvalidInput(f"window {value!r} must count at least 1 row (last:N, N >= 1)")
        return f"last:{int(last.group(1))}"
    if value.strip().startswith("last"):
        raise InvalidInput(f"window {value!r}: write the newest rows as last:N, e.g. last:5000")
    _duration(value, "window")
    return value.strip()


def check_drift_share(value: object) -> float:
    """A drift share in (0, 1]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= 1
    ):
        raise InvalidInput(
            f"drift_share={value!r} must be a number above 0 and at most 1 (the share of "
            "features that must drift for the window to count as drifted, e.g. 0.5)"
        )
    return float(value)


def check_cooldown(value: object) -> float:
    """A cooldown in seconds, from ``30m``, a timedelta or a number of seconds (>= 0)."""
    if isinstance(value, str):
        text = value.strip()
        if text in ("0", "0s"):
            return 0.0
        try:
            return _duration(text, "cooldown").total_seconds()
        except InvalidInput:
            raise InvalidInput(
                f"cooldown {value!r} is not a duration: write e.g. 30m, 1h or 0s"
            ) from None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidInput(f"cooldown {value!r} must be a duration such as 30m, or seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"cooldown {value!r} must be zero or more")
    return seconds


def check_features(value: object) -> list[str] | None:
    """The features to test (None: all), each named once."""
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise InvalidInput(f"features must be a list of column names, got {value!r}")
    names = list(value)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad or not names:
        raise InvalidInput(f"features must be a non-empty list of column names, got {value!r}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"feature {twice[0]!r} appears twice in features")
    return names


def check_rules(value: object) -> list[dict[str, Any]]:
    """Rule configs, checked by building them (errors name the entry and key)."""
    from ctloop.monitoring.rules import rules_from_config

    specs: Any = [] if value is None else value
    rules_from_config(specs)  # a Sequence of Mappings once this returns
    return list(_plain([dict(s) for s in specs], "rules"))


def check_sinks(value: object) -> list[dict[str, Any]]:
    """Sink configs, checked by building them (errors name the entry and key)."""
    from ctloop.monitoring.sinks import sinks_from_config

    specs: Any = [] if value is None else value
    sinks_from_config(specs)  # a Sequence of Mappings once this returns
    return list(_plain([dict(s) for s in specs], "sinks"))


def check_profile(value: object, features: list[str] | None) -> dict[str, Any]:
    """A reference profile (``ReferenceProfile.to_dict()``) that holds every feature."""
    from ctloop.monitoring.profiles import ReferenceProfile

    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"profile must be a reference profile as a dict (ReferenceProfile.to_dict()), "
            f"got {type(value).__name__}"
        )
    try:
        profile = ReferenceProfile.from_dict(value)
    except InvalidInput as exc:
        raise InvalidInput(f"profile is not a reference profile: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"profile is not a reference profile: {exc!r}") from None
    absent = [f for f in features or [] if f not in profile.columns]
    if absent:
        raise InvalidInput(
            f"features {', '.join(absent)} are not in the profile; it has: "
            f"{', '.join(profile.columns) or 'no column'}"
        )
    return dict(_plain(value, "profile"))


def check_spec(
    *,
    reference: object,
    profile: object,
    features: object,
    window: object,
    drift_share: object,
    rules: object,
    sinks: object,
    cooldown: object,
    estimation: object,
) -> dict[str, Any]:
    """Every argument of ``create`` but the deployment, checked and made plain JSON."""
    if estimation is not None and not isinstance(estimation, Mapping):
        raise InvalidInput(f"estimation must be a dict or None, got {type(estimation).__name__}")
    clean_features = check_features(features)
    return {
        "reference": check_model_ref(reference),
        "features": clean_features,
        "window": check_window(window),
        "drift_share": check_drift_share(drift_share),
        "rules": check_rules(rules),
        "sinks": check_sinks(sinks),
        "cooldown_seconds": check_cooldown(cooldown),
        "profile": check_profile(profile, clean_features),
        "estimation": None if estimation is None else _plain(estimation, "estimation"),
    }


def check_limit(value: object) -> int:
    """How many rows a listing returns, 1 to 10,000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"limit={value!r} must be a whole number from 1 to {MAX_LIMIT}")
    return value


def check_since(value: Moment) -> datetime | None:
    """``since`` as an aware UTC datetime (a datetime, date or ISO text; naive = UTC)."""
    return moment(value, "since")


def to_ms(when: datetime) -> int:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# --- values to store (both backends check with these) -------------------------------------


def check_report_id(value: object) -> str:
    """A report or alert id: 1-64 letters, digits, '_' or '-'."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f"invalid report id {value!r}: use 1-64 letters, digits, '_' or '-'")
    return value


def report_values(report: object, html_uri: object) -> dict[str, Any]:
    """The row of a report (all but ``deployment_id``), checked."""
    from ctloop.monitoring.report import Report

    if not isinstance(report, Report):
        raise InvalidInput(f"add_report takes a Report, got {type(report).__name__}")
    if report.deployment is None:
        raise InvalidInput(
            "the report names no deployment; build it with build_report(..., deployment=NAME)"
        )
    check_name(report.deployment, "deployment")
    check_report_id(report.id)
    if html_uri is not None and (not isinstance(html_uri, str) or not html_uri):
        raise InvalidInput(f"html_uri={html_uri!r} must be a non-empty text or None")
    window = report.window or {}
    bounds = [moment(window.get(k), f"report window {k}") for k in ("start", "end")]
    rows = window.get("rows") or 0
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise InvalidInput(f"report window rows {rows!r} must be a whole number of 0 or more")
    share = report.dataset_drift.get("drifted_share")
    try:
        drifted, drifted_features = report.drifted, report.drifted_columns
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"the report's dataset_drift is malformed: {exc!r}") from None
    if not all(isinstance(c, str) for c in drifted_features):
        raise InvalidInput("the report's drifted columns must be named by text")
    return {
        "id": report.id,
        "created_at": to_ms(report.created_at),
        "window_start": None if bounds[0] is None else to_ms(bounds[0]),
        "window_end": None if bounds[1] is None else to_ms(bounds[1]),
        "rows": rows,
        "drifted": drifted,
        "drift_share": _finite(share),
        "drifted_features": drifted_features,
        "body": _plain(report.to_dict(), "the report"),
        "html_uri": html_uri,
    }


def alert_rows(deployment: str, deliveries: object) -> list[dict[str, Any]]:
    """The rows of the alerts of ``deliveries`` (all but ``deployment_id``), checked."""
    from ctloop.monitoring.alerts import Delivery

    check_name(deployment, "deployment")
    if isinstance(deliveries, Delivery) or not isinstance(deliveries, Sequence):
        raise InvalidInput("add_alerts takes a list of Delivery (what AlertManager.run returns)")
    rows = []
    for i, delivery in enumerate(deliveries):
        if not isinstance(delivery, Delivery):
            raise InvalidInput(f"deliveries[{i}] is a {type(delivery).__name__}, not a Delivery")
        alert = delivery.alert
        if alert.deployment != deployment:
            raise InvalidInput(
                f"deliveries[{i}] is an alert of deployment '{alert.deployment}', not "
                f"'{deployment}'"
            )
        _check_alert(delivery, f"deliveries[{i}]")
        body = {**alert.to_dict(), "deliveries": [o.to_dict() for o in delivery.outcomes]}
        rows.append(
            {
                "id": alert.id,
                "report_id": alert.report_id,
                "kind": alert.kind,
                "severity": alert.severity,
                "message": alert.message,
                "value": _finite(alert.value),
                "threshold": _finite(alert.threshold),
                "dedup_key": alert.dedup_key,
                "created_at": to_ms(alert.created_at),
                "body": _plain(body, f"deliveries[{i}]"),
            }
        )
    return rows


def _check_alert(delivery: Any, where: str) -> None:
    """The fields of a delivery's alert and outcomes have the types their columns hold."""
    from ctloop.monitoring.rules import SEVERITIES

    alert = delivery.alert
    check_report_id(alert.id)
    if alert.report_id is not None:
        check_report_id(alert.report_id)
    kind = alert.rule.get("kind") if isinstance(alert.rule, Mapping) else None
    texts = {"rule kind": (kind, 64), "message": (alert.message, 10_000)}
    texts["dedup_key"] = (alert.dedup_key, 512)
    for name, (value, longest) in texts.items():
        if not isinstance(value, str) or not value or len(value) > longest:
            raise InvalidInput(
                f"{where}: the alert's {name} must be text of 1-{longest} characters"
            )
    if alert.severity not in SEVERITIES:
        raise InvalidInput(
            f"{where}: severity {alert.severity!r} is not one of {', '.join(SEVERITIES)}"
        )
    for name in ("value", "threshold"):
        number = getattr(alert, name)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
            raise InvalidInput(f"{where}: the alert's {name} must be a number or None")
    if not isinstance(alert.created_at, datetime) or not isinstance(alert.evidence, Mapping):
        raise InvalidInput(f"{where}: the alert needs a created_at time and an evidence mapping")
    for j, o in enumerate(delivery.outcomes):
        ok = (
            isinstance(o.sink, str)
            and isinstance(o.ok, bool)
            and isinstance(o.attempts, int)
            and (o.status is None or isinstance(o.status, int))
            and (o.error is None or isinstance(o.error, str))
        )
        if not ok:
            raise InvalidInput(f"{where}.outcomes[{j}] is not a sink outcome: {o!r}")
