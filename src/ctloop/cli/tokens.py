"""``ctloop tokens``: the bearer tokens of ``ctloop server --auth``."""

from __future__ import annotations

import typer
from rich.table import Table

from ctloop.cli._output import client_from, console, console_err, fmt_time, print_json

app = typer.Typer(
    help="API tokens for 'ctloop server --auth': create, list, revoke (where the store is).",
    no_args_is_help=True,
)


@app.command()
def create(
    ctx: typer.Context,
    scope: str = typer.Option(
        ..., "--scope", help="read (GET only), write (also changes) or admin."
    ),
    name: str = typer.Option(None, "--name", help="A unique name to find and revoke it by."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (holding the secret)."),
) -> None:
    """Create a token and print its secret, which cannot be shown again."""
    token, secret = client_from(ctx).tokens.create(scope, name=name)
    if as_json:
        print_json({"token": token, "secret": secret})
        return
    console_err.print(
        f"created {token.scope.value} token {token.name or token.id}; its secret follows and "
        "cannot be shown again (only its hash is stored): give it to clients as CTLOOP_TOKEN"
    )
    console.print(secret)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List tokens (never their secrets), oldest first."""
    tokens = client_from(ctx).tokens.list()
    if as_json:
        print_json([{**vars(t), "active": t.active} for t in tokens])
        return
    if not tokens:
        console.print("no tokens yet; create one with: ctloop tokens create --scope read")
        return
    table = Table("name", "scope", "status", "created", "last used", "id", box=None)
    for t in tokens:
        status = "active" if t.active else f"revoked {fmt_time(t.revoked_at)}"
        table.add_row(
            t.name or "-",
            t.scope.value,
            status,
            fmt_time(t.created_at),
            fmt_time(t.last_used_at),
            t.id,
        )
    console.print(table)


@app.command()
def revoke(
    ctx: typer.Context,
    token: str = typer.Argument(..., help="The token's id or name."),
) -> None:
    """Revoke a token: the server refuses it from the next request on."""
    revoked = client_from(ctx).tokens.revoke(token)
    console.print(f"revoked token {revoked.name or revoked.id} ({revoked.id})")
