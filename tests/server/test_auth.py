"""``ctloop server --auth``: bearer tokens, scopes, and the refusal to bind publicly without."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ctloop import Client
from ctloop.cli.server import bind_refusal
from ctloop.client.tokens import LAST_USED_INTERVAL_MS, TokenScope
from ctloop.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from ctloop.server.auth import required_scope
from ctloop.settings import load_settings
from ctloop.store.tables import api_tokens
from ctloop.testing import running_server

EXPERIMENTS = "/api/v1/experiments"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Client]:
    """A local client on the store the server serves: where tokens are made."""
    with Client(store=str(tmp_path / "store")) as client:
        yield client


@pytest.fixture
def url(store: Client, tmp_path: Path) -> Iterator[str]:
    with running_server(str(tmp_path / "store"), auth=True) as base:
        yield base


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def refused(response: httpx.Response, status: int) -> str:
    """Check the one error shape and the status; return the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}[status]
    assert body["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return str(body["error"]["message"])


# --- the server over raw HTTP -------------------------------------------------------------


def test_no_token_is_401_with_a_bearer_challenge(url: str) -> None:
    message = refused(httpx.get(url + EXPERIMENTS), 401)
    assert "Authorization: Bearer" in message and "ctloop tokens create" in message
    # Paths no route answers are guarded too: an anonymous caller cannot map the API.
    refused(httpx.get(url + "/api/v1/nothing-here"), 401)
    refused(httpx.post(url + EXPERIMENTS, json={"name": "x"}), 401)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ctl_not-a-token-of-this-store",
        "Bearer not-even-the-prefix",
        "Bearer",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_a_wrong_token_is_401(url: str, store: Client, header: str) -> None:
    store.tokens.create("admin")  # a store with tokens still refuses the wrong ones
    refused(httpx.get(url + EXPERIMENTS, headers={"Authorization": header}), 401)


def test_the_health_check_and_api_description_stay_open(url: str) -> None:
    assert httpx.get(url + "/healthz").json()["status"] == "ok"
    assert EXPERIMENTS in httpx.get(url + "/openapi.json").json()["paths"]
    assert httpx.get(url + "/docs").status_code == 200


def test_a_read_token_reads_but_cannot_write(url: str, store: Client) -> None:
    store.experiments.create("churn")
    _, secret = store.tokens.create("read", name="dashboard")
    listed = httpx.get(url + EXPERIMENTS, headers=bearer(secret))
    assert listed.status_code == 200 and [e["name"] for e in listed.json()] == ["churn"]
    message = refused(
        httpx.post(url + EXPERIMENTS, json={"name": "x"}, headers=bearer(secret)), 403
    )
    assert "'dashboard' has scope 'read'" in message and "--scope write" in message
    assert [e.name for e in store.experiments.list()] == ["churn"]  # nothing was written


def test_a_write_token_writes(url: str, store: Client) -> None:
    _, secret = store.tokens.create("write", name="ci")
    response = httpx.post(url + EXPERIMENTS, json={"name": "churn"}, headers=bearer(secret))
    assert response.status_code == 201, response.text
    assert [e.name for e in store.experiments.list()] == ["churn"]
    # The scheme is case-insensitive (RFC 7235).
    lower = httpx.get(url + EXPERIMENTS, headers={"Authorization": f"bearer {secret}"})
    assert lower.status_code == 200


def test_admin_routes_need_an_admin_token(url: str, store: Client) -> None:
    _, write = store.tokens.create("write")
    _, admin = store.tokens.create("admin")
    refused(httpx.get(url + "/api/v1/admin/anything", headers=bearer(write)), 403)
    # Admin passes authentication; no admin route exists yet, so the router answers 404.
    assert httpx.get(url + "/api/v1/admin/anything", headers=bearer(admin)).status_code == 404
    assert httpx.post(url + EXPERIMENTS, json={"name": "a"}, headers=bearer(admin)).is_success


def test_a_revoked_token_is_refused_from_the_next_request(url: str, store: Client) -> None:
    token, secret = store.tokens.create("write", name="laptop")
    assert httpx.get(url + EXPERIMENTS, headers=bearer(secret)).status_code == 200
    store.tokens.revoke("laptop")
    message = refused(httpx.get(url + EXPERIMENTS, headers=bearer(secret)), 401)
    assert "unknown or revoked" in message
    assert store.tokens.get(token.id).revoked_at is not None


def test_last_use_is_recorded_at_most_once_a_minute(url: str, store: Client) -> None:
    token, secret = store.tokens.create("read")
    assert store.tokens.get(token.id).last_used_at is None
    assert httpx.get(url + EXPERIMENTS, headers=bearer(secret)).status_code == 200
    first = store.tokens.get(token.id).last_used_at
    assert first is not None
    assert httpx.get(url + EXPERIMENTS, headers=bearer(secret)).status_code == 200
    assert store.tokens.get(token.id).last_used_at == first  # no write within the minute
    # A minute later (moved back in the store) the next use is recorded again.
    with store.db.write() as conn:
        conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.id == token.id)
            .values(last_used_at=api_tokens.c.last_used_at - LAST_USED_INTERVAL_MS)
        )
    assert httpx.get(url + EXPERIMENTS, headers=bearer(secret)).status_code == 200
    again = store.tokens.get(token.id).last_used_at
    assert again is not None and again >= first


# --- the Python client over HTTP ----------------------------------------------------------


def test_client_without_a_token_raises_unauthenticated(url: str) -> None:
    with Client(store=url) as remote, pytest.raises(Unauthenticated, match="requires a token"):
        remote.experiments.list()


def test_client_takes_its_token_from_ctloop_token(
    url: str, store: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, read = store.tokens.create("read")
    _, write = store.tokens.create("write")
    monkeypatch.setenv("CTLOOP_TOKEN", read)
    with Client(store=url) as remote:
        assert remote.experiments.list() == []
        with pytest.raises(PermissionDenied, match="needs 'write'"):
            remote.experiments.create("churn")
    with Client(settings=load_settings(store=url, token=write)) as remote:
        assert remote.experiments.create("churn").name == "churn"
    assert [e.name for e in store.experiments.list()] == ["churn"]
    monkeypatch.setenv("CTLOOP_TOKEN", "ctl_wrong")
    with Client(store=url) as remote, pytest.raises(Unauthenticated, match="not valid"):
        remote.experiments.list()


def test_tokens_are_not_managed_over_http(url: str) -> None:
    with Client(store=url) as remote, pytest.raises(InvalidInput, match="where the store is"):
        _ = remote.tokens


def test_a_server_without_auth_needs_no_token(tmp_path: Path) -> None:
    with running_server(str(tmp_path / "open")) as base:
        assert httpx.get(base + EXPERIMENTS).status_code == 200


# --- the token store (SQLite and PostgreSQL) ----------------------------------------------


def test_secrets_are_stored_only_as_their_hash(client: Any) -> None:
    token, secret = client.tokens.create("write", name="ci")
    assert secret.startswith("ctl_") and len(secret) >= 40
    with client.db.read() as conn:
        rows = conn.execute(sa.select(api_tokens)).mappings().all()
    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0].values())
    assert rows[0]["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert client.tokens.verify(secret) == client.tokens.get("ci")
    assert client.tokens.verify(secret + "x") is None


def test_the_secret_appears_in_no_file_of_an_embedded_store(sqlite_client: Any) -> None:
    _, secret = sqlite_client.tokens.create("read")
    folder = Path(sqlite_client.settings.store_url().removeprefix("sqlite:///")).parent
    assert sqlite_client.tokens.verify(secret) is not None
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_create_list_revoke(client: Any) -> None:
    ci, _ = client.tokens.create("write", name="ci")
    anon, anon_secret = client.tokens.create("read")
    assert anon.name is None and anon.scope is TokenScope.READ
    # Oldest first; two tokens made in the same millisecond may come in either order.
    assert {t.id for t in client.tokens.list()} == {ci.id, anon.id}
    with pytest.raises(Conflict, match="already named 'ci'"):
        client.tokens.create("read", name="ci")
    with pytest.raises(InvalidInput, match="read, write, admin"):
        client.tokens.create("root")
    with pytest.raises(InvalidInput, match="invalid token name"):
        client.tokens.create("read", name="has space")
    with pytest.raises(NotFound, match="did you mean 'ci'"):
        client.tokens.revoke("cii")
    revoked = client.tokens.revoke(anon.id)
    assert not revoked.active and client.tokens.verify(anon_secret) is None
    assert client.tokens.revoke(anon.id).revoked_at == revoked.revoked_at  # idempotent
    assert {t.id: t.active for t in client.tokens.list()} == {ci.id: True, anon.id: False}


# --- the decisions, as functions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/v1/runs", TokenScope.READ),
        ("HEAD", "/api/v1/runs", TokenScope.READ),
        ("POST", "/api/v1/runs", TokenScope.WRITE),
        ("PUT", "/api/v1/x", TokenScope.WRITE),
        ("PATCH", "/api/v1/x", TokenScope.WRITE),
        ("DELETE", "/api/v1/x", TokenScope.WRITE),
        ("GET", "/api/v1/admin", TokenScope.ADMIN),
        ("GET", "/api/v1/admin/users", TokenScope.ADMIN),
        ("GET", "/api/v1/administrators", TokenScope.READ),
    ],
)
def test_required_scope(method: str, path: str, scope: TokenScope) -> None:
    assert required_scope(method, path) is scope


def test_scopes_include_the_smaller_ones() -> None:
    read, write, admin = TokenScope.READ, TokenScope.WRITE, TokenScope.ADMIN
    assert admin.allows(write) and admin.allows(read) and write.allows(read)
    assert not read.allows(write) and not write.allows(admin)


def test_a_public_bind_is_refused_without_auth_and_allowed_with_it() -> None:
    refusal = bind_refusal("0.0.0.0", auth=False, insecure=False)
    assert refusal is not None and "refusing to serve '0.0.0.0'" in refusal
    assert "--auth" in refusal
    assert bind_refusal("0.0.0.0", auth=True, insecure=False) is None
    assert bind_refusal("0.0.0.0", auth=False, insecure=True) is None
    assert bind_refusal("127.0.0.1", auth=False, insecure=False) is None
    assert bind_refusal("::1", auth=False, insecure=False) is None
