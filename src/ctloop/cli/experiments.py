"""``ctloop experiments``: list the experiments of a store."""

from __future__ import annotations

import typer
from rich.table import Table

from ctloop.cli._output import client_from, console, fmt_time, print_json

app = typer.Typer(help="List and create experiments (named groups of runs).", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List experiments with their run counts, newest first."""
    experiments = client_from(ctx).experiments.list()
    if as_json:
        print_json(experiments)
        return
    if not experiments:
        console.print("no experiments yet; start one with ctloop.start_run(experiment='NAME')")
        return
    table = Table("name", "runs", "created", "id", box=None)
    for e in experiments:
        table.add_row(e.name, str(e.run_count or 0), fmt_time(e.created_at), e.id)
    console.print(table)


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Experiment name."),
    description: str = typer.Option(None, "--description", "-d", help="What it is for."),
) -> None:
    """Create an empty experiment."""
    e = client_from(ctx).experiments.create(name, description)
    console.print(f"created experiment {e.name!r} ({e.id})")
