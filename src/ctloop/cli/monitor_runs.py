"""``ctloop monitor run|reports|show``: run a deployment's monitor, read its stored reports.

The commands are registered on the ``ctloop monitor`` group by :mod:`ctloop.cli.monitor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ctloop.cli._output import client_from, console, fmt_time, print_json

if TYPE_CHECKING:
    from ctloop.monitoring.alerts import Alert, Delivery
    from ctloop.monitoring.report import Report

__all__ = ["delivery_text", "reports", "run", "show", "tell_report"]

DEFAULT_FOLDER = "ctloop-reports/"


def _when(value: Any) -> str:
    from datetime import datetime

    if not value:
        return "-"
    return fmt_time(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"


def delivery_text(delivery: Delivery) -> str:
    """Where an alert went: each sink and whether it took it."""
    out = []
    for o in delivery.outcomes:
        if o.ok:
            out.append(f"{o.sink} ok")
        else:
            why = o.error or (f"status {o.status}" if o.status else "failed")
            out.append(f"{o.sink} FAILED ({why})")
    return ", ".join(out) or "no sink"


def _drift_lines(report: Report) -> list[str]:
    drift = report.dataset_drift
    columns = drift.get("columns", [])
    drifted = [c for c in columns if c.get("drifted")]
    drifted.sort(key=lambda c: -(c["score"] or 0) / (c["threshold"] or 1))
    share = drift.get("drifted_share") or 0.0
    verdict = "DATASET DRIFT" if report.drifted else "no dataset drift"
    lines = [
        f"drift: {len(drifted)} of {len(columns)} features drifted ({share:.0%}; the dataset "
        f"drifts at {drift.get('drift_share', 0.5):.0%}): {verdict}"
    ]
    for c in drifted:
        lines.append(
            f"  {c['column']}: {c['method']} {_num(c['score'])} vs threshold {_num(c['threshold'])}"
        )
    for name, why in (drift.get("skipped") or {}).items():
        lines.append(f"  skipped {name}: {why}")
    return lines


def _one_drift(label: str, result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    moved = "drifted" if result.get("drifted") else "no drift"
    return [
        f"{label}: {result.get('method')} {_num(result.get('score'))} vs "
        f"{_num(result.get('threshold'))}: {moved}"
    ]


def _multivariate_lines(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    moved = "drifted" if result.get("drifted") else "no drift"
    top = [f["feature"] for f in result.get("importances") or []][:3]
    return [
        f"multivariate: a domain classifier tells the window from the reference with ROC AUC "
        f"{_num(result.get('roc_auc'))} (drift at {_num(result.get('threshold'))}): {moved}"
        + (f"; driven most by {', '.join(top)}" if top and result.get("drifted") else "")
    ]


def _performance_lines(report: Report) -> list[str]:
    lines = []
    realised = report.realised_performance
    if realised:
        last = realised[-1]
        metrics = ", ".join(f"{k} {_num(v)}" for k, v in (last.get("metrics") or {}).items())
        lines.append(
            f"realised performance: {metrics or 'too few labels for metrics'} "
            f"({last.get('labelled')} of {last.get('predictions')} predictions labelled)"
        )
    else:
        lines.append("realised performance: no labels in the window")
    estimated = report.estimated_performance
    if estimated:
        parts = [
            f"{name} {_num(m.get('value'))} ({_num(m.get('lower'))}-{_num(m.get('upper'))}; "
            f"reference {_num(m.get('reference'))})"
            for name, m in (estimated[-1].get("metrics") or {}).items()
        ]
        lines.append(f"estimated performance (label-free): {', '.join(parts)}")
    return lines


def _health_lines(report: Report) -> list[str]:
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in report.health or []:
        key = (str(row.get("model_version")), str(row.get("variant")))
        if key not in newest or str(row.get("end")) >= str(newest[key].get("end")):
            newest[key] = row
    lines = []
    for (version, variant), h in sorted(newest.items()):
        rate = h.get("error_rate")
        lines.append(
            f"health: version {version} ({variant}): {h.get('rows')} rows, "
            f"p50 {_num(h.get('latency_p50_ms'))} ms, p99 {_num(h.get('latency_p99_ms'))} ms, "
            f"error rate {'-' if rate is None else f'{rate:.1%}'}"
        )
    return lines


def tell_report(
    report: Report,
    deliveries: Sequence[Delivery] | None,
    *,
    cooling: Sequence[Alert] = (),
    html_path: str | None = None,
) -> None:
    """Print a report as a person reads it; ``deliveries`` None: alerts were not run;
    ``cooling``: alerts the rules raised that their cooldown kept quiet."""
    window = report.window
    logged = window.get("logged_rows")
    console.print(
        f"report {report.id} of {escape(report.deployment or '-')}: window "
        f"{escape(str(window.get('window') or '-'))}, {_when(window.get('start'))} to "
        f"{_when(window.get('end'))}, {window.get('rows')} rows"
        + (f" ({logged} logged)" if logged is not None and logged != window.get("rows") else ""),
        markup=True,
    )
    lines = [
        *_drift_lines(report),
        *_one_drift("prediction drift", report.prediction_drift),
        *_one_drift("label drift", report.label_drift),
        *_multivariate_lines(report.multivariate),
        *_performance_lines(report),
        *_health_lines(report),
    ]
    if deliveries is None:
        lines.append("alerts: not evaluated (--no-alerts)")
    elif not deliveries and not cooling:
        lines.append("alerts: no rule fired")
    else:
        quiet = f", {len(cooling)} kept quiet by the cooldown" if cooling else ""
        lines.append(f"alerts: {len(deliveries)} sent{quiet}")
        lines += [
            f"  [{d.alert.severity}] {d.alert.message} -> {delivery_text(d)}" for d in deliveries
        ]
        lines += [f"  quiet: [{a.severity}] {a.message} (sent recently)" for a in cooling]
    lines += [f"note: {n}" for n in window.get("notes") or []]
    for line in lines:
        console.print(escape(line))
    if html_path:
        console.print(f"html: {escape(html_path)}")


def run(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="Deployment name."),
    until: str = typer.Option(
        None, "--until", help="End of the window, ISO 8601 (default: now; naive is UTC)."
    ),
    output: str = typer.Option(
        DEFAULT_FOLDER,
        "--output",
        "-o",
        help="Where the HTML page goes: a .html file, or a folder (created if missing).",
    ),
    no_alerts: bool = typer.Option(False, "--no-alerts", help="Do not evaluate alert rules."),
    multivariate: bool = typer.Option(
        False,
        "--multivariate",
        help="Also train a domain classifier on reference rows vs the window's (seconds): "
        "catches changes in how features go together, and ranks the features driving them.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run DEPLOYMENT's monitor on its newest window: store the report, write HTML, alert."""
    from ctloop.monitoring.service import run_monitor
    from ctloop.serving.log_reader import moment

    end = moment(until, "--until")
    done = run_monitor(
        client_from(ctx),
        deployment,
        until=end,
        html=output,
        alert=not no_alerts,
        multivariate=multivariate,
    )
    if as_json:
        print_json(
            {
                "report_id": done.report.id,
                "html_path": done.html_path,
                "summary": done.summary,
                "alerts": [d.to_dict() for d in done.deliveries],
                "cooling": [a.to_dict() for a in done.cooling],
                "report": done.report.to_dict(),
            }
        )
        return
    tell_report(
        done.report,
        None if no_alerts else done.deliveries,
        cooling=done.cooling,
        html_path=done.html_path,
    )


def reports(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="Deployment name."),
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List DEPLOYMENT's stored reports, newest first."""
    found = client_from(ctx).monitors.reports(deployment, limit=limit)
    if as_json:
        print_json(found)
        return
    if not found:
        console.print(
            f"no reports of {escape(deployment)} yet; make one with: ctloop monitor run "
            f"{escape(deployment)}"
        )
        return
    table = Table(
        "id", "created", "window end", "rows", "drift share", "dataset drift", "drifted",
        "html", box=None,
    )  # fmt: skip
    for r in found:
        names = r.drifted_features
        drifted = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        table.add_row(
            r.id,
            fmt_time(r.created_at),
            fmt_time(r.window_end),
            str(r.rows),
            "-" if r.drift_share is None else f"{r.drift_share:.0%}",
            "yes" if r.drifted else "no",
            escape(drifted or "-"),
            escape(r.html_uri or "-"),
        )
    console.print(table)


def show(
    ctx: typer.Context,
    report_id: str = typer.Argument(..., help="A report id (see: ctloop monitor reports)."),
    output: str = typer.Option(
        None, "--output", "-o", help="Write its HTML page here (a .html file or a folder)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Show a stored report: its summary, its JSON, or its HTML page written again."""
    from ctloop.monitoring.service import write_report_html

    client = client_from(ctx)
    report = client.monitors.report(report_id)
    path = write_report_html(report, output) if output else None
    if as_json:
        print_json(report.to_dict())
        return
    fired = [
        d
        for d in client.monitors.alerts(report.deployment, limit=1_000)
        if d.alert.report_id == report.id
    ]
    tell_report(report, fired, html_path=path)
    if path is None:
        console.print(f"write its page with: ctloop monitor show {report.id} -o report.html")
