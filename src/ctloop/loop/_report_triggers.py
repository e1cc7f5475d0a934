"""The triggers that read the monitor's reports: drift and performance (see
:mod:`ctloop.loop.triggers` for how each reads them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ctloop.loop._look import Look, TriggerDecision

if TYPE_CHECKING:
    from ctloop.loop.policy import DriftTrigger, PerformanceTrigger
    from ctloop.monitoring.entities import ReportSummary

__all__ = ["drift", "performance"]

_SHOWN_FEATURES = 5


def drift(look: Look, trigger: DriftTrigger) -> TriggerDecision | None:
    run = look.fresh_reports(trigger.consecutive)
    if len(run) < trigger.consecutive:
        return None
    rows: list[dict[str, Any]] = []
    for report in run:
        share = report.drift_share
        by_share = trigger.share is not None and share is not None and share >= trigger.share
        watched = [f for f in report.drifted_features if f in trigger.features]
        if not (by_share or watched):
            return None
        rows.append(
            {
                "id": report.id,
                "created_at": report.created_at.isoformat(),
                "drift_share": share,
                "drifted_features": list(report.drifted_features),
                "by_share": by_share,
                "watched_drifted": watched,
            }
        )
    drifted = _features(run[0].drifted_features)
    if all(r["by_share"] for r in rows):
        assert trigger.share is not None
        shares = ", ".join(_fmt(r["drift_share"], trigger.share) for r in rows)
        summary = (
            f"dataset drift share {shares} >= {_fmt(trigger.share)} in {_where(run)}; "
            f"drifted: {drifted}"
        )
    else:
        clauses = ", ".join(f"{_short(r['id'])} {_drift_clause(r, trigger)}" for r in rows)
        place = "the newest report" if len(run) == 1 else f"{len(run)} consecutive reports"
        summary = f"drift in {place} ({clauses}); drifted: {drifted}"
    return TriggerDecision(
        kind="drift",
        summary=summary,
        evidence={
            "share": trigger.share,
            "features": list(trigger.features),
            "consecutive": trigger.consecutive,
            "reports": rows,
        },
        links={"report_ids": [r.id for r in run]},
    )


def _drift_clause(row: dict[str, Any], trigger: DriftTrigger) -> str:
    if row["by_share"]:
        assert trigger.share is not None
        return f"share {_fmt(row['drift_share'], trigger.share)} >= {_fmt(trigger.share)}"
    return f"watched {', '.join(row['watched_drifted'])} drifted"


def performance(look: Look, trigger: PerformanceTrigger) -> TriggerDecision | None:
    run = look.fresh_reports(trigger.consecutive)
    if len(run) < trigger.consecutive:
        return None
    metric, realised = trigger.metric, trigger.source == "realised"
    champion_value: float | None = None
    champion_ref = None
    if realised and trigger.drop is not None:
        lineage, _ = look.champion()
        if lineage is None:
            return None
        champion_ref = lineage.version.ref
        champion_value = _finite(lineage.version.metrics.get(metric))
        if champion_value is None:
            return None
    rows: list[dict[str, Any]] = []
    for summary in run:
        report = look.client.monitors.report(summary.id)
        if realised:
            row = _realised_window(report.realised_performance, metric, trigger.min_labels)
            if row is not None:
                row["reference"] = champion_value
        else:
            row = _estimated_window(report.estimated_performance, metric)
        if row is None:
            return None
        value, reference = row["value"], row["reference"]
        if trigger.below is not None:
            low = value < trigger.below
        else:
            assert trigger.drop is not None
            low = reference is not None and reference - value > trigger.drop
        if not low:
            return None
        rows.append({"id": summary.id, **row})
    evidence: dict[str, Any] = {
        "metric": metric,
        "source": trigger.source,
        "below": trigger.below,
        "drop": trigger.drop,
        "consecutive": trigger.consecutive,
    }
    if realised:
        evidence["min_labels"] = trigger.min_labels
    where = _where(run)
    if trigger.below is not None:
        values = ", ".join(_fmt(r["value"], trigger.below) for r in rows)
        summary_text = f"{trigger.source} {metric} {values} < {_fmt(trigger.below)} in {where}"
        evidence["compared_with"] = f"the absolute threshold {trigger.below}"
    else:
        assert trigger.drop is not None
        drop = trigger.drop
        values = ", ".join(_fmt(r["value"], r["reference"] - drop) for r in rows)
        if realised:
            assert champion_value is not None
            against = f"the champion {champion_ref}'s {_fmt(champion_value)} at training"
            evidence["compared_with"] = (
                f"the {metric} logged by the training run of the champion {champion_ref}"
            )
            evidence["champion"] = champion_ref
            evidence["champion_value"] = champion_value
        else:
            refs = list(dict.fromkeys(_fmt(r["reference"]) for r in rows))
            against = f"its reference {', '.join(refs)}"
            evidence["compared_with"] = (
                "each estimate's reference: the champion's realised value on the monitor's "
                "reference data"
            )
        summary_text = (
            f"{trigger.source} {metric} {values} more than {_fmt(drop)} below {against} in {where}"
        )
    if realised:
        summary_text += f"; labelled rows {', '.join(str(r['labelled']) for r in rows)}"
    evidence["reports"] = rows
    return TriggerDecision(
        kind="performance",
        summary=summary_text,
        evidence=evidence,
        links={"report_ids": [r.id for r in run]},
    )


def _realised_window(
    windows: list[dict[str, Any]] | None, metric: str, min_labels: int
) -> dict[str, Any] | None:
    """The newest window with ``min_labels`` labelled rows and a value of ``metric``."""
    for window in reversed(windows or []):
        labelled = int(window.get("labelled") or 0)
        value = _finite((window.get("metrics") or {}).get(metric))
        if labelled >= min_labels and value is not None:
            return {
                "value": value,
                "labelled": labelled,
                "window_start": window.get("start"),
                "window_end": window.get("end"),
            }
    return None


def _estimated_window(windows: list[dict[str, Any]] | None, metric: str) -> dict[str, Any] | None:
    """The newest estimate of ``metric``, with its band and reference."""
    if not windows:
        return None
    window = windows[-1]
    estimate = (window.get("metrics") or {}).get(metric) or {}
    value = _finite(estimate.get("value"))
    if value is None:
        return None
    return {
        "value": value,
        "reference": _finite(estimate.get("reference")),
        "lower": _finite(estimate.get("lower")),
        "upper": _finite(estimate.get("upper")),
        "rows": window.get("rows"),
        "window_start": window.get("start"),
        "window_end": window.get("end"),
    }


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: float, near: float | None = None) -> str:
    """Two decimals, or as many more as it takes to tell ``value`` from ``near``."""
    text = f"{value:.2f}"
    if near is None or value == near:
        return text
    for digits in range(3, 7):
        if text != f"{near:.{digits - 1}f}":
            break
        text = f"{value:.{digits}f}"
    return text


def _short(report_id: str) -> str:
    return f"{report_id[:8]}…"


def _where(run: Sequence[ReportSummary]) -> str:
    ids = ", ".join(_short(r.id) for r in run)
    if len(run) == 1:
        return f"the newest report ({ids})"
    return f"{len(run)} consecutive reports ({ids})"


def _features(names: Sequence[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:_SHOWN_FEATURES])
    return shown if len(names) <= _SHOWN_FEATURES else f"{shown} … ({len(names)} in all)"
