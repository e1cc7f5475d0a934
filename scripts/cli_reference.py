"""Write docs/cli.md from the command line's own ``--help`` (run: python scripts/cli_reference.py).

``tests/cli/test_cli_reference.py`` fails when docs/cli.md is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def render() -> str:
    import typer

    from ctloop.cli import _install_nouns, app

    _install_nouns()
    root = typer.main.get_command(app)
    parts = [
        "# Command-line reference\n",
        "Generated from `--help` by `scripts/cli_reference.py`; do not edit by hand.\n",
    ]

    def walk(cmd: Any, path: list[str], parent: Any) -> None:
        ctx = cmd.make_context(
            path[-1],
            [],
            parent=parent,
            resilient_parsing=True,
            terminal_width=100,
            max_content_width=100,
        )
        parts.append(f"\n## `{' '.join(path)}`\n\n```text\n{ctx.get_help().rstrip()}\n```\n")
        for name in sorted(getattr(cmd, "commands", {}) or {}):
            walk(cmd.commands[name], [*path, name], ctx)

    walk(root, ["ctloop"], None)
    return "".join(parts)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if DOC.exists() and DOC.read_text() == text else 1)
    DOC.write_text(text)
    print(f"wrote {DOC}")
