"""``/api/v1/pipeline-runs`` and ``/api/v1/step-runs`` over raw HTTP.

Whatever a client sends, a malformed body or query is a 4xx in the one error shape (never a
500) and nothing is written; timestamps travel as milliseconds in requests and ISO 8601 in
answers; writing needs a write token under ``--auth``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctloop import Client
from ctloop._internal.ids import new_id
from ctloop.server.routers.pipelines import PipelineRunOut, StepRunOut
from ctloop.testing import running_server

BODY_LIMIT = 4096
START_MS = 1_780_000_000_123
DIGEST = hashlib.sha256(b"an output").hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def api(store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CTLOOP_SERVER_MAX_BODY_BYTES", str(BODY_LIMIT))
    with running_server(str(store)) as url:
        yield url + "/api/v1"


def new_run(**changes: Any) -> dict[str, Any]:
    """A valid ``POST /pipeline-runs`` body of two steps, with ``changes`` applied."""
    body: dict[str, Any] = {
        "id": new_id(),
        "pipeline": "churn",
        "executor": "local",
        "params": {"depth": 3},
        "graph": [
            {"name": "load", "step": "flows:load", "upstream": [], "outputs": ["out"]},
            {"name": "train", "step": "flows:train", "upstream": ["load"], "outputs": ["out"]},
        ],
        "start_time": START_MS,
        "user": "alice",
        "steps": [
            {"id": new_id(), "name": "load", "step": "flows:load"},
            {"id": new_id(), "name": "train", "step": "flows:train", "upstream": ["load"]},
        ],
    }
    body.update(changes)
    return body


def error(response: httpx.Response, status: int, code: str) -> str:
    """Check the one error shape, the status and the code; return the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def test_a_run_travels_with_iso_timestamps(api: str) -> None:
    body = new_run()
    created = httpx.post(f"{api}/pipeline-runs", json=body)
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == "RUNNING" and run["end_time"] is None and "client" not in run
    assert datetime.fromisoformat(run["start_time"]).timestamp() == START_MS / 1000
    assert [s["status"] for s in run["steps"]] == ["PENDING", "PENDING"]
    assert run["graph"][1]["outputs"] == ["out"]  # graph nodes keep their other keys

    step = body["steps"][0]["id"]
    patch = {
        "status": "COMPLETED",
        "cache_key": "c" * 64,
        "outputs": {"out": {"digest": DIGEST, "kind": "file", "materializer": "json/1"}},
        "start_time": START_MS,
        "end_time": START_MS + 2500,
    }
    assert httpx.patch(f"{api}/step-runs/{step}", json=patch).status_code == 204
    ended = httpx.post(f"{api}/pipeline-runs/{body['id']}/end", json={"status": "COMPLETED"})
    assert ended.status_code == 204, ended.text
    got = httpx.get(f"{api}/pipeline-runs/{body['id'][:10]}").json()
    first = got["steps"][0]
    assert first["outputs"]["out"] == {
        "digest": DIGEST,
        "kind": "file",
        "materializer": "json/1",
        "type": "",
        "size": 0,
    }
    took = datetime.fromisoformat(first["end_time"]) - datetime.fromisoformat(first["start_time"])
    assert took.total_seconds() == 2.5
    assert got["status"] == "COMPLETED" and got["end_time"] is not None
    listed = httpx.get(f"{api}/pipeline-runs", params={"status": "COMPLETED", "limit": 5})
    assert [r["id"] for r in listed.json()] == [body["id"]]
    # What is served is what the API description documents.
    for answer in (run, got, *listed.json()):
        assert PipelineRunOut.model_validate(answer).id == body["id"]
    # The output object was never stored, so the step is no cache hit; once it is, it is.
    assert httpx.get(f"{api}/step-runs", params={"cache_key": "c" * 64}).json() == []
    stored = httpx.put(f"{api}/objects/sha256/{DIGEST}", content=b"an output")
    assert stored.status_code == 201, stored.text
    hits = httpx.get(f"{api}/step-runs", params={"cache_key": "c" * 64}).json()
    assert [StepRunOut.model_validate(h).id for h in hits] == [step]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"id": None}, "id"),
        ({"id": "x" * 33}, "id: String should have at most 32 characters"),
        ({"pipeline": ""}, "pipeline"),
        ({"executor": "a-very-long-executor-name"}, "executor"),
        ({"start_time": -1}, "start_time"),
        ({"start_time": 10**20}, "start_time"),  # past year 9999
        ({"start_time": "yesterday"}, "start_time"),
        ({"params": [1, 2]}, "params"),
        ({"graph": [{"step": "m:f"}]}, "graph.0.name"),
        ({"graph": "load -> train"}, "graph"),
        ({"steps": [{"id": "s", "name": "a"}]}, "steps.0.step"),
        ({"steps": [{"id": "s", "name": "a", "step": "m:a", "colour": "red"}]}, "colour"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_new_run_is_a_400(api: str, changes: dict[str, Any], problem: str) -> None:
    body = new_run(**changes)
    message = error(httpx.post(f"{api}/pipeline-runs", json=body), 400, "INVALID_INPUT")
    assert message.startswith("invalid request: ") and problem in message
    assert httpx.get(f"{api}/pipeline-runs").json() == []  # nothing was written


def test_conflicts_and_unknown_references(api: str) -> None:
    body = new_run()
    assert httpx.post(f"{api}/pipeline-runs", json=body).status_code == 201
    again = error(httpx.post(f"{api}/pipeline-runs", json=body), 409, "CONFLICT")
    assert f"pipeline run '{body['id']}' already exists" in again
    reused = new_run(steps=body["steps"])
    assert "already exists" in error(
        httpx.post(f"{api}/pipeline-runs", json=reused), 409, "CONFLICT"
    )
    same_name = new_run(
        steps=[
            {"id": new_id(), "name": "a", "step": "m:a"},
            {"id": new_id(), "name": "a", "step": "m:b"},
        ]
    )
    error(httpx.post(f"{api}/pipeline-runs", json=same_name), 400, "INVALID_INPUT")
    untracked = new_run(run_id=new_id())
    assert "no run with id" in error(
        httpx.post(f"{api}/pipeline-runs", json=untracked), 404, "NOT_FOUND"
    )
    assert len(httpx.get(f"{api}/pipeline-runs").json()) == 1


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ({"status": "DONE"}, "status"),
        ({"status": None}, "status of a step run cannot be null"),
        ({"attempts": -1}, "attempts"),
        ({"attempts": 2**40}, "attempts"),
        ({"cache_hit": None, "outputs": None}, "cache_hit, outputs of a step run cannot be null"),
        (
            {"outputs": {"out": {"digest": "abc", "kind": "file", "materializer": "json/1"}}},
            "digest",
        ),
        (
            {"outputs": {"out": {"digest": DIGEST, "kind": "blob", "materializer": "json/1"}}},
            "kind",
        ),
        ({"inputs": ["not", "a", "mapping"]}, "inputs"),
        ({"end_time": 10**20}, "end_time"),
        ({"logs": {"stdout": 5}}, "logs.stdout"),
        ({"name": "renamed"}, "name"),
        ({"pipeline_run_id": "elsewhere"}, "pipeline_run_id"),
    ],
)
def test_a_bad_step_update_is_a_400(api: str, patch: dict[str, Any], problem: str) -> None:
    body = new_run()
    httpx.post(f"{api}/pipeline-runs", json=body).raise_for_status()
    step = body["steps"][0]["id"]
    message = error(httpx.patch(f"{api}/step-runs/{step}", json=patch), 400, "INVALID_INPUT")
    assert problem in message
    unchanged = httpx.get(f"{api}/pipeline-runs/{body['id']}").json()["steps"][0]
    assert (unchanged["status"], unchanged["attempts"], unchanged["outputs"]) == ("PENDING", 0, {})


def test_ending_a_run_takes_a_final_status(api: str) -> None:
    body = new_run()
    httpx.post(f"{api}/pipeline-runs", json=body).raise_for_status()
    end = f"{api}/pipeline-runs/{body['id']}/end"
    error(httpx.post(end, json={"status": "DONE"}), 400, "INVALID_INPUT")
    error(httpx.post(end, json={}), 400, "INVALID_INPUT")
    running = error(httpx.post(end, json={"status": "RUNNING"}), 400, "INVALID_INPUT")
    assert running == "end_run needs COMPLETED or FAILED, not RUNNING"
    assert httpx.post(end, json={"status": "FAILED", "error": "boom"}).status_code == 204
    got = httpx.get(f"{api}/pipeline-runs/{body['id']}").json()
    assert (got["status"], got["error"]) == ("FAILED", "boom")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/pipeline-runs?status=SLEEPING", {}, 400, "INVALID_INPUT"),
        ("GET", "/pipeline-runs?limit=0", {}, 400, "INVALID_INPUT"),
        ("GET", "/pipeline-runs?limit=10001", {}, 400, "INVALID_INPUT"),
        ("GET", "/pipeline-runs?limit=many", {}, 400, "INVALID_INPUT"),
        ("GET", "/step-runs", {}, 400, "INVALID_INPUT"),  # cache_key is required
        ("GET", "/pipeline-runs/0123456789abcdef", {}, 404, "NOT_FOUND"),
        (
            "POST",
            "/pipeline-runs/0123456789abcdef/end",
            {"json": {"status": "FAILED"}},
            404,
            "NOT_FOUND",
        ),
        ("PATCH", "/step-runs/0123456789abcdef", {"json": {"status": "RUNNING"}}, 404, "NOT_FOUND"),
        ("PATCH", "/step-runs/0123456789abcdef", {"json": {}}, 404, "NOT_FOUND"),
        ("POST", "/pipeline-runs", {"content": b"{not json"}, 400, "INVALID_INPUT"),
        ("POST", "/pipeline-runs", {"json": [1, 2]}, 400, "INVALID_INPUT"),
        ("DELETE", "/pipeline-runs", {}, 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_every_failure_has_the_one_error_shape(
    api: str, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    headers = {"content-type": "application/json"} if "content" in kwargs else None
    error(httpx.request(method, api + path, headers=headers, **kwargs), status, code)


def test_a_body_over_the_limit_is_a_413(api: str) -> None:
    big = new_run(params={"blob": "x" * BODY_LIMIT})
    message = error(httpx.post(f"{api}/pipeline-runs", json=big), 413, "PAYLOAD_TOO_LARGE")
    assert "CTLOOP_SERVER_MAX_BODY_BYTES" in message
    assert httpx.get(f"{api}/pipeline-runs").json() == []


def test_writing_needs_a_write_token(store: Path) -> None:
    with Client(store=str(store)) as local:
        _, read = local.tokens.create("read", name="dashboard")
        _, write = local.tokens.create("write", name="runner")
    with running_server(str(store), auth=True) as url:
        api = url + "/api/v1"
        body = new_run()
        as_reader = {"Authorization": f"Bearer {read}"}
        as_writer = {"Authorization": f"Bearer {write}"}
        refused = httpx.post(f"{api}/pipeline-runs", json=body, headers=as_reader)
        assert "needs 'write'" in error(refused, 403, "PERMISSION_DENIED")
        created = httpx.post(f"{api}/pipeline-runs", json=body, headers=as_writer)
        assert created.status_code == 201, created.text
        step = body["steps"][0]["id"]
        patch = httpx.patch(f"{api}/step-runs/{step}", json={"attempts": 1}, headers=as_reader)
        error(patch, 403, "PERMISSION_DENIED")
        end = httpx.post(
            f"{api}/pipeline-runs/{body['id']}/end", json={"status": "FAILED"}, headers=as_reader
        )
        error(end, 403, "PERMISSION_DENIED")
        listed = httpx.get(f"{api}/pipeline-runs", headers=as_reader)
        assert [r["id"] for r in listed.json()] == [body["id"]]
        assert listed.json()[0]["status"] == "RUNNING"  # the reader changed nothing
        cached = httpx.get(f"{api}/step-runs", params={"cache_key": "k"}, headers=as_reader)
        assert cached.status_code == 200 and cached.json() == []
        error(httpx.get(f"{api}/pipeline-runs"), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({}, "exactly one of the query parameters"),
        ({"cache_key": "k", "output": "a" * 64}, "exactly one of the query parameters"),
        ({"output": "xyz12345"}, "not an artifact digest"),
    ],
)
def test_finding_step_runs_takes_a_cache_key_or_an_output(
    api: str, query: dict[str, str], problem: str
) -> None:
    response = httpx.get(f"{api}/step-runs", params=query)
    assert problem in error(response, 400, "INVALID_INPUT")


def test_step_runs_by_output_digest(api: str) -> None:
    assert httpx.get(f"{api}/step-runs", params={"output": "ab" * 32}).json() == []
