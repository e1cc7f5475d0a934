"""``ctloop tokens create|list|revoke`` in a subprocess, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from ctloop import Client
from ctloop.testing import running_server


def ctloop_cli(store: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "ctloop", "--store", str(store), "tokens", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_create_shows_the_secret_once_and_list_never(tmp_path: Path) -> None:
    store = tmp_path / "store"
    made = ctloop_cli(store, "create", "--scope", "write", "--name", "ci")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("ctl_") and "\n" not in secret  # stdout is the secret alone
    assert "cannot be shown again" in made.stderr

    listed = ctloop_cli(store, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (token,) = json.loads(listed.stdout)
    assert (token["name"], token["scope"], token["active"]) == ("ci", "write", True)
    assert secret not in listed.stdout
    table = ctloop_cli(store, "list")
    assert "ci" in table.stdout and "write" in table.stdout and secret not in table.stdout

    with Client(store=str(store)) as client:
        assert client.tokens.verify(secret) is not None


def test_create_json_then_revoke_by_name_and_by_id(tmp_path: Path) -> None:
    store = tmp_path / "store"
    made = ctloop_cli(store, "create", "--scope", "read", "--json")
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    anon_id, secret = body["token"]["id"], body["secret"]
    assert body["token"]["name"] is None and secret.startswith("ctl_")
    assert ctloop_cli(store, "create", "--scope", "admin", "--name", "ops").returncode == 0

    by_name = ctloop_cli(store, "revoke", "ops")
    assert by_name.returncode == 0, by_name.stderr
    assert "revoked token ops" in by_name.stdout
    by_id = ctloop_cli(store, "revoke", anon_id)
    assert by_id.returncode == 0, by_id.stderr

    tokens = json.loads(ctloop_cli(store, "list", "--json").stdout)
    assert {t["name"]: t["active"] for t in tokens} == {None: False, "ops": False}
    assert all(t["revoked_at"] for t in tokens)
    with Client(store=str(store)) as client:
        assert client.tokens.verify(secret) is None


def test_bad_input_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert ctloop_cli(store, "create", "--scope", "read", "--name", "ci").returncode == 0
    for args, expected in [
        (("create", "--scope", "root"), "use one of read, write, admin"),
        (("create", "--scope", "read", "--name", "ci"), "already named 'ci'"),
        (("revoke", "nobody"), "no token with id or name 'nobody'"),
    ]:
        out = ctloop_cli(store, *args)
        assert out.returncode == 1, args
        assert expected in out.stderr and "Traceback" not in out.stderr


def test_tokens_are_refused_against_a_server_url(tmp_path: Path) -> None:
    with running_server(str(tmp_path / "store"), auth=True) as url:
        out = ctloop_cli(url, "list")
        assert out.returncode == 1
        assert "tokens are managed where the store is" in out.stderr


def test_a_cli_made_token_opens_the_server(tmp_path: Path) -> None:
    store = tmp_path / "store"
    secret = ctloop_cli(store, "create", "--scope", "read").stdout.strip()
    with running_server(str(store), auth=True) as url:
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{url}/api/v1/experiments", headers=headers).status_code == 200
        assert httpx.get(f"{url}/api/v1/experiments").status_code == 401
