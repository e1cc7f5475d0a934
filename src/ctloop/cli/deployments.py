"""``ctloop deployments``: the desired serving state of endpoints — routes, shadows, history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ctloop.cli._output import client_from, console, fmt_time, print_json
from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.serving.entities import Deployment, DeploymentEvent, Route

app = typer.Typer(
    help="Deployments: which model versions an endpoint serves, with what traffic split.",
    no_args_is_help=True,
)

JSON_HELP = "Print JSON."
NAME_HELP = "Deployment name."
STICKY_HELP = "Pin callers to a variant by header:NAME (e.g. header:X-User-Id) or field:NAME."
SHOWN_EVENTS = 5


def _routes_text(routes: list[Route]) -> str:
    return " ".join(f"{r.version}={r.weight}:{r.variant}" for r in routes)


def _shadows_text(shadows: list[int]) -> str:
    return ", ".join(map(str, shadows)) or "-"


def _summary(d: Deployment) -> str:
    return f"{d.name} (revision {d.revision}): {d.model} {_routes_text(d.routes)}"


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    model: str = typer.Option(
        ..., "--model", "-m", help="Version to serve: NAME@ALIAS (e.g. churn@champion) or NAME/V."
    ),
    sticky_key: str = typer.Option(None, "--sticky-key", help=STICKY_HELP),
    log_payloads: bool = typer.Option(
        True, "--log-payloads/--no-log-payloads", help="Log requests and predictions."
    ),
    description: str = typer.Option(None, "--description", "-d", help="What it serves, for whom."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Create a deployment sending all traffic to one registered model version."""
    d = client_from(ctx).deployments.create(
        name, model, description=description, sticky_key=sticky_key, log_payloads=log_payloads
    )
    if as_json:
        print_json(d)
        return
    console.print(f"created {escape(_summary(d))}")


@app.command("set-traffic")
def set_traffic(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    weights: list[str] = typer.Argument(
        None, help="VERSION=WEIGHT[:VARIANT] …, whole percent adding up to 100 (e.g. 3=90 4=10)."
    ),
    shadow: list[int] = typer.Option(
        None, "--shadow", "-s", help="A version that gets a copy of the traffic (repeatable)."
    ),
    no_shadows: bool = typer.Option(False, "--no-shadows", help="Remove every shadow."),
    sticky_key: str = typer.Option(None, "--sticky-key", help=STICKY_HELP),
    no_sticky_key: bool = typer.Option(False, "--no-sticky-key", help="Stop pinning callers."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the history)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Set the traffic split, shadows and sticky key; each change is a new revision."""
    from ctloop.client.deployments import KEEP

    if shadow and no_shadows:
        raise InvalidInput("give --shadow or --no-shadows, not both")
    if sticky_key is not None and no_sticky_key:
        raise InvalidInput("give --sticky-key or --no-sticky-key, not both")
    shadows = [] if no_shadows else (shadow or None)
    sticky: Any = None if no_sticky_key else (KEEP if sticky_key is None else sticky_key)
    deployments = client_from(ctx).deployments
    before = deployments.get(name).revision
    d = deployments.set_traffic(
        name, weights or None, shadows=shadows, sticky_key=sticky, reason=reason
    )
    if as_json:
        print_json(d)
        return
    if d.revision == before:
        console.print(f"{escape(name)} already serves that (revision {d.revision})")
        return
    console.print(f"{escape(_summary(d))}  shadows {_shadows_text(d.shadows)}")


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)
) -> None:
    """List deployments with their model, routes and revision."""
    found = client_from(ctx).deployments.list()
    if as_json:
        print_json(found)
        return
    if not found:
        console.print(
            "no deployments yet; create one with: ctloop deployments create NAME --model "
            "MODEL@champion"
        )
        return
    table = Table(
        "name", "model", "routes", "shadows", "sticky key", "revision", "updated", box=None
    )
    for d in found:
        table.add_row(
            escape(d.name),
            escape(d.model),
            escape(_routes_text(d.routes)),
            _shadows_text(d.shadows),
            escape(d.sticky_key or "-"),
            str(d.revision),
            fmt_time(d.updated_at),
        )
    console.print(table)


def _events_table(events: list[DeploymentEvent]) -> Table:
    table = Table("revision", "when", "routes", "shadows", "sticky key", "who", "reason", box=None)
    for e in events:
        table.add_row(
            str(e.revision),
            fmt_time(e.created_at),
            escape(_routes_text(e.routes)),
            _shadows_text(e.shadows),
            escape(e.sticky_key or "-"),
            escape(e.actor),
            escape(e.reason or ("created" if e.revision == 1 else "")),
        )
    return table


@app.command()
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a deployment: routes with weights and variants, shadows, sticky key, last events."""
    deployments = client_from(ctx).deployments
    d = deployments.get(name)
    events = deployments.history(name)[-SHOWN_EVENTS:]
    live = deployments.live(name)
    if as_json:
        print_json({"deployment": d, "events": events, "live": live})
        return
    console.print(f"[bold]{escape(d.name)}[/]  model {escape(d.model)}  revision {d.revision}")
    if d.description:
        console.print(escape(d.description))
    routes = Table("variant", "version", "weight", box=None)
    for r in d.routes:
        routes.add_row(escape(r.variant), f"{d.model}/{r.version}", f"{r.weight}%")
    console.print(routes)
    console.print(f"shadows {_shadows_text(d.shadows)}")
    console.print(f"sticky key {escape(d.sticky_key or '-')}")
    console.print(f"payload logging {'on' if d.log_payloads else 'off'}")
    console.print(f"updated {fmt_time(d.updated_at)}, created {fmt_time(d.created_at)}")
    console.print(_live_text(live))
    console.print(_events_table(events))


def _live_text(live: dict[str, Any] | None) -> Table | str:
    """The live figures of the running replicas, or a line saying none is running."""
    if live is None:
        return "live: no replica has reported in the last 10 s (start one: ctloop serve NAME)"
    ms = "-" if live["p50_ms"] is None else f"p50 {live['p50_ms']} ms, p99 {live['p99_ms']} ms"
    table = Table(
        "version",
        "variant",
        "requests",
        "share",
        "4xx",
        "5xx",
        box=None,
        title=f"live: {live['replicas']} replica(s), {live['ready']} ready, revision "
        f"{', '.join(live['revisions'])}; {live['requests']} requests ({ms}); "
        f"{live['log_rows']} rows logged, {live['log_dropped']} dropped",
        title_justify="left",
    )
    total = max(live["requests"], 1)
    for version, v in live["versions"].items():
        table.add_row(
            version,
            escape(str(v["variant"])),
            str(v["requests"]),
            f"{100 * v['requests'] / total:.1f}%",
            str(v["client_errors"]),
            str(v["errors"]),
        )
    return table


@app.command()
def history(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show every revision of a deployment: routes, shadows, who, when, why."""
    events = client_from(ctx).deployments.history(name)
    if as_json:
        print_json(events)
        return
    console.print(_events_table(events))


@app.command()
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=NAME_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a deployment and its history."""
    deployments = client_from(ctx).deployments
    deployments.get(name)  # NotFound before any question
    if not yes:
        typer.confirm(f"delete deployment {name} and its history?", abort=True)
    deployments.delete(name)
    console.print(f"deleted deployment {escape(name)}")
