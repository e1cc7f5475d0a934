"""``ctloop server``: the control-plane REST API of a store."""

from __future__ import annotations

import ipaddress
import socket

import typer

from ctloop.cli._output import console_err, fail


def register(app: typer.Typer) -> None:
    """Mount ``server`` as a top-level command."""
    app.command("server")(server)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False


def bind_refusal(host: str, *, auth: bool, insecure: bool) -> str | None:
    """Why ``ctloop server`` must not bind ``host`` with these flags, or None if it may.

    Without authentication only a loopback address is safe: anyone who can reach any other
    could read and change the store. ``--auth`` or ``--insecure`` lifts the refusal.
    """
    if auth or insecure or _is_loopback(host):
        return None
    return (
        f"refusing to serve {host!r} without authentication: anyone who can reach it could "
        "read and change the store; bind 127.0.0.1, pass --auth (and give clients a token "
        "from: ctloop tokens create), or pass --insecure if a proxy guards it"
    )


def server(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    auth: bool = typer.Option(
        False,
        "--auth",
        help="Require 'Authorization: Bearer TOKEN' on every request but /healthz "
        "(tokens from: ctloop tokens create).",
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow binding a non-loopback address without authentication."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the store's REST API (experiments, runs, …) at http://HOST:PORT/api/v1."""
    try:
        import uvicorn
    except ImportError:
        fail("the server needs its extra; install it with: pip install 'ctloop[server]'")
    refusal = bind_refusal(host, auth=auth, insecure=insecure)
    if refusal is not None:
        fail(refusal)
    from ctloop.server import create_app
    from ctloop.settings import load_settings

    root = ctx.find_root().obj or {}
    settings = load_settings(store=root.get("store"), artifacts=root.get("artifacts"))
    if settings.store_url().startswith(("http://", "https://")):
        fail("the server serves a store, not another server: set --store to a folder or database")
    if auth:
        from ctloop.client import Client

        with Client(settings=settings) as client:
            if not any(t.active for t in client.tokens.list()):
                console_err.print(
                    "warning: the store has no active token yet, so every request but /healthz "
                    "will be refused; create one with: ctloop tokens create --scope read"
                )
    mode = "with token authentication" if auth else "without authentication"
    console_err.print(f"serving {settings.store_url()} at http://{host}:{port}/api/v1 ({mode})")
    uvicorn.run(create_app(settings, auth=auth), host=host, port=port, log_level=log_level)
