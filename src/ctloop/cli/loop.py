"""``ctloop loop``: run the continuous-training controller and read what it did."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ctloop.cli._output import client_from, console, fmt_time, print_json
from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.loop.controller import Controller
    from ctloop.loop.entities import LoopEvent

app = typer.Typer(
    help="The continuous-training loop: trigger, retrain, gate, canary, promote or roll back.",
    no_args_is_help=True,
)

JSON_HELP = "Print JSON."
NAME_HELP = "Deployment name."


def _seconds(text: str, option: str) -> float:
    from ctloop.monitoring.windows import parse_window

    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_window(text).total_seconds()
        except ValueError as exc:
            raise InvalidInput(f"{option} {text!r}: {exc}; e.g. 30s, 5m") from None
    if seconds <= 0:
        raise InvalidInput(f"{option} {text!r} must be above zero, e.g. 30s")
    return seconds


def _print_events(controller: Controller, events: list[LoopEvent]) -> None:
    for e in events:
        console.print(
            f"{escape(controller.deployment)} #{e.seq} {e.from_state.value} → "
            f"{e.to_state.value} \\[{e.kind}] {escape(e.summary)}"
        )


@app.command()
def run(
    ctx: typer.Context,
    deployment: str = typer.Argument(None, help="Deployment to drive (or --all)."),
    policy: str = typer.Option(
        None, "--policy", "-p", help="Policy YAML to store and follow (default: the stored one)."
    ),
    run_all: bool = typer.Option(False, "--all", help="Drive every deployment with a policy."),
    once: bool = typer.Option(False, "--once", help="One round, then exit."),
    interval: str = typer.Option("30s", "--interval", "-i", help="Time between rounds (30s, 5m)."),
    lease: str = typer.Option(
        "60s", "--lease", help="How long a killed controller blocks another (renewed every round)."
    ),
) -> None:
    """Run the controller: act on triggers, retrain, gate, canary, promote or roll back.

    Stops cleanly on SIGTERM or Ctrl-C (a pipeline run in progress finishes first) and
    gives its lease back. Each event it writes is printed as it happens.
    """
    from ctloop.loop.controller import controller_for, run_controllers

    client = client_from(ctx)
    seconds, lease_seconds = _seconds(interval, "--interval"), _seconds(lease, "--lease")
    if run_all == (deployment is not None):
        raise InvalidInput("name one deployment, or give --all (not both)")
    if run_all:
        if policy is not None:
            raise InvalidInput("--policy names one deployment's policy; it cannot go with --all")
        names = [p.deployment for p in client.loop.policies()]
        if not names:
            raise InvalidInput(
                "no deployment has a loop policy; set one with: "
                "ctloop loop run DEPLOYMENT --policy policy.yaml"
            )
        controllers = [controller_for(client, name, lease_seconds=lease_seconds) for name in names]
    else:
        controllers = [controller_for(client, deployment, policy, lease_seconds=lease_seconds)]
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    names = ", ".join(c.deployment for c in controllers)
    if not once:
        console.print(f"driving {escape(names)} every {seconds:g}s (Ctrl-C stops)")
    run_controllers(controllers, interval=seconds, once=once, on_events=_print_events)


@app.command()
def status(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help=NAME_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show where the loop of a deployment is: state, step, candidate, lease, last event."""
    client = client_from(ctx)
    state = client.loop.state(deployment)
    newest = client.loop.events(deployment, limit=1, newest=True)
    event = newest[-1] if newest else None
    if as_json:
        print_json({"state": state, "last_event": event})
        return
    step = "-" if state.step is None else str(state.step + 1)
    lease = state.lease_owner or "-"
    if state.lease_expires_at is not None:
        lease += f" (until {fmt_time(state.lease_expires_at)})"
    console.print(f"deployment  {escape(deployment)}")
    console.print(f"state       {state.state.value} (revision {state.revision})")
    console.print(f"canary step {step}")
    console.print(f"candidate   {state.candidate_version or '-'}")
    console.print(f"lease       {escape(lease)}")
    if event is not None:
        console.print(
            f"last event  #{event.seq} {fmt_time(event.created_at)} \\[{event.kind}] "
            f"{escape(event.summary)}  ({event.id})"
        )


@app.command()
def history(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help=NAME_HELP),
    limit: int = typer.Option(50, "--limit", "-n", help="Show the newest N events."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show the loop's changelog: when, which state change, and why."""
    client = client_from(ctx)
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"--limit {limit} must be from 1 to 10,000")
    events = client.loop.events(deployment, limit=limit, newest=True)
    if as_json:
        print_json(events)
        return
    table = Table("#", "time", "change", "kind", "summary", "id")
    for e in events:
        change = (
            e.to_state.value
            if e.from_state == e.to_state
            else f"{e.from_state.value} → {e.to_state.value}"
        )
        table.add_row(
            str(e.seq), fmt_time(e.created_at), change, e.kind, escape(e.summary), e.id[:12]
        )
    console.print(table)


def _spelled(value: Any, indent: int = 2) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_spelled(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {item}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict):
                inner = _spelled(item, indent + 2)
                lines.append(f"{pad}- {inner[0].strip()}" if inner else f"{pad}-")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {item}")
        return lines
    return [f"{pad}{value}"]


@app.command()
def explain(
    ctx: typer.Context,
    event_id: str = typer.Argument(..., help="Event id (from ctloop loop history)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Explain one loop event: what happened, why (evidence) and what it refers to (links)."""
    event = client_from(ctx).loop.event(event_id)
    if as_json:
        print_json(event)
        return
    console.print(f"event {event.id} (#{event.seq} of {escape(event.deployment)})")
    console.print(f"when      {fmt_time(event.created_at)} by {escape(event.actor)}")
    console.print(f"change    {event.from_state.value} → {event.to_state.value} \\[{event.kind}]")
    console.print(f"summary   {escape(event.summary)}")
    for title, part in (("evidence", event.evidence), ("links", event.links)):
        console.print(f"{title}:" if part else f"{title}: none")
        for line in _spelled(part):
            console.print(escape(line))


@app.command()
def trigger(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help=NAME_HELP),
    reason: str = typer.Option(..., "--reason", "-r", help="Why retrain (kept in the history)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Ask for a retrain; the controller starts it when the policy's guards allow."""
    from ctloop.loop.triggers import request_manual

    event = request_manual(client_from(ctx), deployment, reason)
    if as_json:
        print_json(event)
        return
    console.print(f"recorded #{event.seq}: {escape(event.summary)} ({event.id})")


@app.command()
def init(
    deployment: str = typer.Argument(..., help=NAME_HELP),
    dataset: str = typer.Option("churn@latest", "--dataset", help="Training data: NAME@latest."),
    pipeline: str = typer.Option(
        "examples.churn.pipeline:churn_pipeline", "--pipeline", help="Pipeline MODULE:ATTRIBUTE."
    ),
) -> None:
    """Print a commented policy to start from (save it, edit it, run it with --policy)."""
    from ctloop.loop.policy import default_policy_yaml

    typer.echo(default_policy_yaml(deployment, dataset=dataset, pipeline=pipeline), nl=False)
