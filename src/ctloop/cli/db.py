"""``ctloop db``: create and migrate the metadata store."""

from __future__ import annotations

import typer

from ctloop.cli._output import console, print_json

app = typer.Typer(help="Create, migrate and inspect the metadata store.", no_args_is_help=True)


def _database(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from ctloop.settings import load_settings
    from ctloop.store import Database

    root = ctx.find_root().obj or {}
    settings = load_settings(store=root.get("store"), artifacts=root.get("artifacts"))
    return Database(settings.store_url())


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: str = typer.Argument("head", help="Target revision (default: the newest)."),
) -> None:
    """Create the store or migrate its schema to the newest revision."""
    db = _database(ctx)
    before, after = db.upgrade(revision)
    if before == after:
        console.print(f"store {db.url} is up to date at revision {after}")
    else:
        console.print(f"store {db.url} upgraded: {before or '(empty)'} -> {after}")


@app.command()
def current(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the store's schema revision and the newest one this ctloop knows."""
    db = _database(ctx)
    cur, head = db.current_revision(), db.head_revision()
    if as_json:
        print_json({"store": db.url, "current": cur, "head": head, "up_to_date": cur == head})
        return
    state = "up to date" if cur == head else "needs: ctloop db upgrade"
    console.print(f"store:   {db.url}\ncurrent: {cur or '(empty)'}\nhead:    {head} ({state})")
