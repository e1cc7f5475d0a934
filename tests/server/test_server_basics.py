"""The REST server's envelope: health, one error shape for every failure, safe binding."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctloop.testing import running_server


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with running_server(str(tmp_path / "store")) as base:
        yield base


def _error(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return body["error"]  # type: ignore[no-any-return]


def test_healthz_reports_the_schema(url: str) -> None:
    body = httpx.get(f"{url}/healthz").json()
    assert body["status"] == "ok" and body["schema_revision"]


def test_openapi_is_served(url: str) -> None:
    spec = httpx.get(f"{url}/openapi.json").json()
    assert "/api/v1/experiments" in spec["paths"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/api/v1/nothing-here", {}, 404, "NOT_FOUND"),
        ("DELETE", "/api/v1/experiments", {}, 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/api/v1/experiments", {"content": b"{not json"}, 400, "INVALID_INPUT"),
        ("POST", "/api/v1/experiments", {"json": {"name": 5}}, 400, "INVALID_INPUT"),
        ("POST", "/api/v1/experiments", {"json": {"name": "a b"}}, 400, "INVALID_INPUT"),
        ("GET", "/api/v1/experiments/ghost", {}, 404, "NOT_FOUND"),
    ],
)
def test_every_failure_has_the_one_error_shape(
    url: str, method: str, path: str, kwargs: dict, status: int, code: str
) -> None:
    headers = {"content-type": "application/json"} if "content" in kwargs else None
    response = httpx.request(method, url + path, headers=headers, **kwargs)
    assert response.status_code == status
    assert _error(response)["code"] == code


def test_conflict_keeps_its_message(url: str) -> None:
    httpx.post(f"{url}/api/v1/experiments", json={"name": "churn"}).raise_for_status()
    response = httpx.post(f"{url}/api/v1/experiments", json={"name": "churn"})
    assert response.status_code == 409
    assert _error(response) == {"code": "CONFLICT", "message": "experiment 'churn' already exists"}


def test_server_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctloop",
            "--store",
            str(tmp_path / "s"),
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 1
    assert "refusing to serve '0.0.0.0' without authentication" in out.stderr
    assert "Traceback" not in out.stderr


def test_client_of_a_server_that_is_down_says_so() -> None:
    from ctloop import Client
    from ctloop.errors import StoreError

    client = Client(store="http://127.0.0.1:9")
    with pytest.raises(StoreError, match="cannot reach the ctloop server at http://127.0.0.1:9"):
        client.experiments.list()


@pytest.mark.parametrize("path", ["/api/v1/experiments", "/api/v1/models/churn/versions"])
def test_every_router_limits_json_bodies(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTLOOP_SERVER_MAX_BODY_BYTES", "1000")
    with running_server(str(tmp_path / "store")) as base:
        response = httpx.post(base + path, json={"name": "x" * 5000, "run_id": "r"})
    assert response.status_code == 413
    assert _error(response)["code"] == "PAYLOAD_TOO_LARGE"
