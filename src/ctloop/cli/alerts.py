"""``ctloop alerts``: the alerts monitors fired, and where each one went."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table

from ctloop.cli._output import client_from, console, fmt_time, print_json
from ctloop.errors import InvalidInput

app = typer.Typer(
    help="Alerts fired by monitors: when, what, and which sinks took them.",
    no_args_is_help=True,
)


def parse_since(text: str | None) -> datetime | None:
    """``1h``/``2d`` (that long ago) or an ISO 8601 time (naive is UTC)."""
    from ctloop.monitoring.windows import parse_window
    from ctloop.serving.log_reader import moment

    if text is None:
        return None
    try:
        return datetime.now(UTC) - parse_window(text)
    except InvalidInput:
        pass
    try:
        return moment(text, "--since")
    except InvalidInput:
        raise InvalidInput(
            f"--since {text!r} is neither a duration ago (30m, 1h, 2d) nor an ISO 8601 time "
            "(2026-01-31T12:00)"
        ) from None


@app.command("list")
def list_(
    ctx: typer.Context,
    deployment: str = typer.Argument(None, help="Only this deployment's (default: all)."),
    limit: int = typer.Option(50, "--limit", "-n", help="How many, newest first."),
    since: str = typer.Option(
        None, "--since", help="Only alerts since: a duration ago (1h, 2d) or an ISO 8601 time."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List alerts, newest first: time, deployment, severity, kind, message, sinks."""
    from ctloop.cli.monitor_runs import delivery_text

    found = client_from(ctx).monitors.alerts(deployment, limit=limit, since=parse_since(since))
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    if not found:
        where = f" for {escape(deployment)}" if deployment else ""
        console.print(
            f"no alerts{where}{' in that time' if since else ''}; monitors send them when "
            "'ctloop monitor run DEPLOYMENT' finds what a rule watches for"
        )
        return
    table = Table("time", "deployment", "severity", "kind", "message", "delivered to", box=None)
    for d in found:
        a = d.alert
        table.add_row(
            fmt_time(a.created_at),
            escape(a.deployment),
            a.severity,
            escape(a.kind),
            escape(a.message),
            escape(delivery_text(d)),
        )
    console.print(table)
