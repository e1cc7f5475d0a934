"""What every command shares: the client from the root options, JSON and table output."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from ctloop._internal.wire import to_wire

if TYPE_CHECKING:
    from ctloop.client import Client


def _width() -> int | None:
    # Piped output has no terminal width; Rich would wrap tables at 80 columns.
    return None if sys.stdout.isatty() else 200


console = Console(highlight=False, soft_wrap=True, width=_width())
console_err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit non-zero (no traceback)."""
    from rich.markup import escape

    console_err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    sys.exit(code)


def client_from(ctx: typer.Context) -> Client:
    """The :class:`~ctloop.Client` for the ``--store``/``--artifacts`` root options."""
    from ctloop.client import Client

    root = ctx.find_root()
    opts = root.obj or {}
    client = opts.get("client")
    if client is None:
        client = Client(store=opts.get("store"), artifacts=opts.get("artifacts"))
        opts["client"] = client
        root.obj = opts
    return client


def print_json(value: Any) -> None:
    """Print dataclasses, dicts, lists, datetimes as JSON (NaN/inf as strings)."""
    sys.stdout.write(json.dumps(to_wire(value), indent=2, ensure_ascii=False) + "\n")


def fmt_time(value: datetime | None) -> str:
    """A timestamp for tables: local time to the second."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_size(n: int | None) -> str:
    """Bytes as a human size (1.2 MiB)."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
