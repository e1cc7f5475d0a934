"""The command line as a whole: help everywhere, errors as one line and never a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from ctloop import cli

UNREACHABLE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=5"


def ctloop_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args], capture_output=True, text=True, timeout=120
    )


def walk(command: Any, path: tuple[str, ...] = ("ctloop",)) -> Iterator[tuple[str, Any]]:
    """Every command and group of the click tree, with its full name."""
    yield " ".join(path), command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, (*path, name))


@pytest.fixture(scope="module")
def commands() -> dict[str, Any]:
    cli._install_nouns()
    return dict(walk(typer.main.get_command(cli.app)))


def test_the_tree_has_the_foundation_commands(commands: dict[str, Any]) -> None:
    assert {"ctloop", "ctloop db", "ctloop db upgrade", "ctloop db current"} <= set(commands)


def test_every_command_has_help(commands: dict[str, Any]) -> None:
    missing = [name for name, cmd in commands.items() if not (cmd.help or "").strip()]
    assert missing == [], f"commands without help text: {missing}"


def test_every_command_answers_help(commands: dict[str, Any]) -> None:
    """``--help`` renders for every command (a broken option declaration would raise)."""
    from typer.testing import CliRunner

    runner = CliRunner()
    for name in commands:
        args = [*name.split()[1:], "--help"]
        result = runner.invoke(cli.app, args, prog_name="ctloop")
        assert result.exit_code == 0, f"{name} --help: {result.output}{result.exception!r}"
        assert "Usage" in result.output, name


def test_unknown_command_fails_without_a_traceback() -> None:
    proc = ctloop_cli("no-such-command")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "no-such-command" in proc.stderr


def test_unknown_command_is_a_usage_error() -> None:
    proc = ctloop_cli("no-such-command")
    assert proc.returncode == 2  # click's usage-error status, as for any bad flag
    assert "No such command" in proc.stderr
    assert "bug" not in proc.stderr


def test_unknown_option_fails_without_a_traceback() -> None:
    proc = ctloop_cli("db", "current", "--no-such-flag")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "--no-such-flag" in proc.stderr


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"]])
def test_unreachable_postgresql_is_one_error_line(command: list[str]) -> None:
    proc = ctloop_cli("--store", UNREACHABLE_POSTGRES, *command)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "127.0.0.1" in lines[0]


def test_unsupported_store_is_one_error_line() -> None:
    proc = ctloop_cli("--store", "mysql://root@localhost/ml", "db", "current")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: unsupported store 'mysql://root@localhost/ml': ctloop stores metadata in "
        "SQLite or PostgreSQL"
    ]


def test_invalid_setting_is_one_error_line(tmp_path: Any) -> None:
    import os

    env = {**os.environ, "CTLOOP_TRACKING_BATCH_SIZE": "lots"}
    proc = subprocess.run(
        [sys.executable, "-m", "ctloop", "--store", str(tmp_path / "s"), "db", "current"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid setting"), proc.stderr
    assert "CTLOOP_TRACKING_BATCH_SIZE" in lines[0]
