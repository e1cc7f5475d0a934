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


def server(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
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
    if not _is_loopback(host) and not insecure:
        fail(
            f"refusing to serve {host!r} without authentication: anyone who can reach it could "
            "read and change the store; bind 127.0.0.1, or pass --insecure if a proxy guards it"
        )
    from ctloop.server import create_app
    from ctloop.settings import load_settings

    root = ctx.find_root().obj or {}
    settings = load_settings(store=root.get("store"), artifacts=root.get("artifacts"))
    if settings.store_url().startswith(("http://", "https://")):
        fail("the server serves a store, not another server: set --store to a folder or database")
    console_err.print(f"serving {settings.store_url()} at http://{host}:{port}/api/v1")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
