"""``client.runs`` behaves the same on every backend: SQLite, PostgreSQL and HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ctloop
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.tracking.entities import Metric, RunStatus

NO_RUN = "no run with id 'nope'; list runs with: ctloop runs list"


def _git_repo(path: Path) -> str:
    """A fresh git repository with one commit; returns the commit."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(
        ["git", "-C", str(path), "-c", "user.email=a@b", "-c", "user.name=a"]
        + ["commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
    )
    out = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@contextlib.contextmanager
def _same_store(backend_client: Any, tmp_path: Path) -> Iterator[Any]:
    """A local client on the store ``backend_client`` uses (for what HTTP cannot do yet)."""
    if not backend_client.remote:
        yield backend_client
        return
    # tests/contract/conftest.py serves the SQLite store in tmp_path/"served"
    local = ctloop.Client(store=str(tmp_path / "served"))
    try:
        yield local
    finally:
        local.close()


def test_http_runs_api_has_every_public_method_with_the_same_signature() -> None:
    import inspect

    from ctloop.client.http.runs import HttpRunsAPI
    from ctloop.client.runs import RunsAPI

    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(fn)
            for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert public(HttpRunsAPI) == public(RunsAPI)


# --- life cycle -------------------------------------------------------------------------------


def test_create_get_and_end_with_each_status(backend_client: Any) -> None:
    runs = backend_client.runs
    made = runs.create("churn", name="first", tags={"team": "ml", "n": 3})
    assert made.status is RunStatus.RUNNING and made.end_time is None
    assert (made.name, made.experiment) == ("first", "churn")
    assert made.tags == {"team": "ml", "n": "3"}
    assert made.experiment_id == backend_client.experiments.get("churn").id
    assert runs.get(made.id) == made
    for status in ("FINISHED", RunStatus.FAILED, "killed"):
        run = runs.create("churn")
        runs.end(run.id, status, error="boom" if status is RunStatus.FAILED else None)
        rec = runs.get(run.id)
        assert rec.status is RunStatus(str(status).upper())
        assert rec.end_time is not None and rec.end_time >= rec.start_time
        assert rec.error == ("boom" if status is RunStatus.FAILED else None)
    named = runs.create("churn")
    assert named.name and named.name != "first"  # a random readable name


def test_bad_status_and_names_are_refused_with_the_local_messages(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e")
    with pytest.raises(InvalidInput) as info:
        runs.end(run.id, "DONE")
    assert str(info.value) == (
        "invalid run status 'DONE': use one of RUNNING, FINISHED, FAILED, KILLED"
    )
    with pytest.raises(InvalidInput, match=r"^invalid experiment name '\.\./etc'"):
        runs.create("../etc")
    with pytest.raises(InvalidInput, match=r"^invalid run name '  ': use 1-256 characters$"):
        runs.create("e", name="  ")
    with pytest.raises(InvalidInput, match=r"^invalid tag key 'a\\\\b'"):
        runs.create("e", tags={"a\\b": 1})
    assert runs.get(run.id).status is RunStatus.RUNNING


def test_params_are_immutable_with_the_same_conflict_message(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e")
    runs.log_param(run.id, "lr", 0.1)
    runs.log_params(run.id, {"lr": "0.1", "depth": 6})  # the same value again is fine
    with pytest.raises(Conflict) as info:
        runs.log_param(run.id, "lr", 0.2)
    assert str(info.value) == (
        f"param 'lr' of run {run.id} is already '0.1' and cannot be changed to '0.2'; "
        "params are immutable: log a new run or use another key"
    )
    with pytest.raises(Conflict):  # nothing of a conflicting batch is written
        runs.log_batch(run.id, metrics=[("m", 1.0, 0, None)], params={"lr": 0.3}, tags={"t": 1})
    rec = runs.get(run.id)
    assert rec.params == {"lr": "0.1", "depth": "6"}
    assert rec.metrics == {} and rec.tags == {}


def test_tags_change_and_can_be_deleted(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e", tags={"stage": "dev"})
    runs.set_tag(run.id, "stage", "prod")
    runs.set_tags(run.id, {"a/b.c": 1, "with space": True})
    runs.set_tag(run.id, "x/./y", "dots")  # '.' segments survive the URL
    assert runs.get(run.id).tags == {
        "stage": "prod",
        "a/b.c": "1",
        "with space": "True",
        "x/./y": "dots",
    }
    runs.delete_tag(run.id, "a/b.c")
    assert "a/b.c" not in runs.get(run.id).tags
    with pytest.raises(NotFound) as info:
        runs.delete_tag(run.id, "a/b.c")
    assert str(info.value) == f"run {run.id} has no tag 'a/b.c'"


# --- metrics ----------------------------------------------------------------------------------


def test_non_finite_metrics_round_trip(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e")
    runs.log_metric(run.id, "nan", math.nan)
    runs.log_metrics(run.id, {"pinf": math.inf, "ninf": -math.inf}, step=2)
    runs.log_batch(run.id, metrics=[("x", math.nan, 0, None), ("x", 2.5, 1, None)])
    rec = runs.get(run.id)
    assert math.isnan(rec.metrics["nan"])
    assert rec.metrics["pinf"] == math.inf and rec.metrics["ninf"] == -math.inf
    values = [m.value for m in runs.metric_history(run.id, "x")]
    assert math.isnan(values[0]) and values[1] == 2.5
    (point,) = runs.metric_history(run.id, "pinf")
    assert (point.value, point.step) == (math.inf, 2)
    page = runs.search("e", filter="metrics.x = 2.5")
    assert [r.id for r in page.runs] == [run.id]


def test_latest_metric_is_the_highest_step_not_the_last_logged(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e")
    runs.log_metric(run.id, "m", 5.0, step=10)
    runs.log_metric(run.id, "m", 1.0, step=3)  # a late point of an earlier step
    assert runs.get(run.id).metrics["m"] == 5.0
    assert [p.step for p in runs.metric_history(run.id, "m")] == [3, 10]


def test_history_keeps_steps_timestamps_and_keys_with_slashes(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e")
    runs.log_metric(run.id, "train/loss", 0.5, step=1, timestamp=1_700_000_000_123)
    runs.log_batch(
        run.id,
        metrics=[
            Metric("train/loss", 0.25, 2, _ms(1_700_000_001_456)),
            ("a/./b", 1, None, None),
        ],
    )
    history = runs.metric_history(run.id, "train/loss")
    assert [(m.key, m.value, m.step) for m in history] == [
        ("train/loss", 0.5, 1),
        ("train/loss", 0.25, 2),
    ]
    assert [int(m.timestamp.timestamp() * 1000) for m in history] == [
        1_700_000_000_123,
        1_700_000_001_456,
    ]
    assert [(m.value, m.step) for m in runs.metric_history(run.id, "a/./b")] == [(1.0, 0)]


def _ms(ms: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_log_batch_writes_params_tags_and_metrics_together(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e")
    runs.log_batch(
        run.id,
        metrics=[("m", float(i), i, None) for i in range(1000)],
        params={"p": 1},
        tags={"t": "v"},
    )
    rec = runs.get(run.id)
    assert rec.params == {"p": "1"} and rec.tags == {"t": "v"} and rec.metrics == {"m": 999.0}
    assert len(runs.metric_history(run.id, "m")) == 1000


def test_a_batch_over_the_request_limits_is_still_written_whole(backend_client: Any) -> None:
    runs = backend_client.runs
    run = runs.create("e")
    key = "k" * 250  # long keys make the body large before the point count is reached
    points = [(key, i * 0.5, i, None) for i in range(25_000)]
    runs.log_batch(run.id, metrics=points, params={f"p{i}": "v" * 8000 for i in range(600)})
    history = runs.metric_history(run.id, key)
    assert len(history) == 25_000 and history[-1].value == 12_499.5
    assert len(runs.get(run.id).params) == 600


def test_bad_metrics_and_keys_are_refused_with_the_local_messages(backend_client: Any) -> None:
    import numpy as np

    runs = backend_client.runs
    run = runs.create("e")
    with pytest.raises(InvalidInput) as info:
        runs.log_metric(run.id, "acc", "high")
    assert str(info.value) == (
        "metric 'acc' got 'high' of type str; metric values must be real numbers "
        "(log text as a tag or param)"
    )
    with pytest.raises(InvalidInput, match=r"^metric 'acc' got step 1\.5; steps must be"):
        runs.log_metric(run.id, "acc", 1.0, step=1.5)
    with pytest.raises(InvalidInput, match=r"^invalid metric key '\.\./x'"):
        runs.log_batch(run.id, metrics=[("../x", 1.0, 0, None)])
    with pytest.raises(InvalidInput, match=r"^invalid param key ''"):
        runs.log_param(run.id, "", 1)
    with pytest.raises(InvalidInput, match=r"^param 'long' is 8001 characters long"):
        runs.log_param(run.id, "long", "x" * 8001)
    runs.log_metric(run.id, "np", np.float32(0.5), step=np.int64(3))
    rec = runs.get(run.id)
    assert rec.metrics == {"np": 0.5} and rec.params == {}


# --- not found --------------------------------------------------------------------------------


def test_unknown_runs_raise_not_found_with_the_same_message(backend_client: Any) -> None:
    runs = backend_client.runs
    calls = [
        lambda: runs.get("nope"),
        lambda: runs.end("nope"),
        lambda: runs.log_param("nope", "a", 1),
        lambda: runs.set_tag("nope", "a", 1),
        lambda: runs.set_tags("nope", {"a": 1}),
        lambda: runs.log_metric("nope", "m", 1.0),
        lambda: runs.log_batch("nope"),
        lambda: runs.metric_history("nope", "m"),
    ]
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        assert str(info.value) == NO_RUN
    with pytest.raises(NotFound, match="^no experiment named 'ghost'"):
        runs.search("ghost")
    run = runs.create("e")
    with pytest.raises(NotFound) as info:
        runs.metric_history(run.id, "auc")
    assert str(info.value) == f"run {run.id} has no metric 'auc' (it logged no metrics)"
    runs.log_metric(run.id, "loss", 1.0)
    with pytest.raises(NotFound, match=r"has no metric 'auc' \(it has: loss\)$"):
        runs.metric_history(run.id, "auc")


# --- where the run ran ------------------------------------------------------------------------


def test_source_and_environment_are_the_client_process(
    backend_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = _git_repo(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    run = backend_client.runs.create("e")
    assert run.source["git_commit"] == commit
    assert run.source["git_dirty"] is False
    assert run.source["entry_point"] == os.path.basename(sys.argv[0])
    assert run.environment["executable"] == sys.executable
    assert run.environment["python"] == platform.python_version()
    assert run.environment["hostname"] == platform.node()
    assert run.environment["packages"]["ctloop"] == ctloop.__version__
    assert backend_client.runs.get(run.id).source == run.source
    bare = backend_client.runs.create("e", capture_code=False)
    assert "git_commit" not in bare.source
    given = backend_client.runs.create(
        "e", source={"git_commit": "abc"}, environment={"python": "2.7"}
    )
    assert given.source == {"git_commit": "abc"}
    assert given.environment == {"python": "2.7"}


def test_source_comes_from_the_client_not_the_server_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server running elsewhere (no git repo, another entry point) records the client's."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    elsewhere = tmp_path / "server-cwd"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "ctloop", "--store", str(tmp_path / "store"), "server"]
        + ["--port", str(port), "--log-level", "warning"],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        commit = _git_repo(tmp_path / "client-repo")
        monkeypatch.chdir(tmp_path / "client-repo")
        monkeypatch.setattr(sys, "argv", ["train.py"])  # the training script, not the server's
        with ctloop.Client(store=url) as client:
            run = client.runs.create("e")
        assert run.source["git_commit"] == commit
        assert run.source["entry_point"] == "train.py"
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()


# --- dataset inputs ---------------------------------------------------------------------------


def test_log_input_by_reference_and_by_version(backend_client: Any, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    with _same_store(backend_client, tmp_path) as store:
        version = store.datasets.add(data, "train", pointer=False)
    runs = backend_client.runs
    run = runs.create("e")
    by_ref = runs.log_input(run.id, "train@1")
    assert (by_ref.dataset, by_ref.version, by_ref.digest) == ("train", 1, version.digest)
    assert by_ref.dataset_version_id == version.id and by_ref.context == "training"
    other = runs.create("e")
    by_version = runs.log_input(other.id, version, context="eval")
    assert by_version == dataclasses.replace(by_ref, context="eval")
    assert runs.get(other.id).inputs == [by_version]
    foreign = dataclasses.replace(version, id="f" * 32)
    with pytest.raises(NotFound) as info:
        runs.log_input(other.id, foreign)
    assert str(info.value) == (
        "dataset version train@1 is not in this store; add it with: "
        "ctloop data add PATH --name NAME"
    )
    with pytest.raises(InvalidInput, match=r"^invalid dataset reference 'train@x'"):
        runs.log_input(other.id, "train@x")
    with pytest.raises(NotFound, match="ghost"):
        runs.log_input(other.id, "ghost@1")
    with pytest.raises(NotFound) as info:
        runs.log_input("nope", version)
    assert str(info.value) == NO_RUN


# --- artifacts --------------------------------------------------------------------------------


def test_artifact_file_and_folder_round_trip(backend_client: Any, tmp_path: Path) -> None:
    f = tmp_path / "report.txt"
    f.write_text("accuracy 0.9")
    d = tmp_path / "plots"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text("x\n1\n")
    (d / "sub" / "b.csv").write_text("y\n2\n")
    runs = backend_client.runs
    run = runs.create("e")
    art = runs.log_artifact(run.id, f)
    runs.log_artifact(run.id, d, name="figures/plots")
    assert (art.path, art.kind, art.size) == ("report.txt", "file", len("accuracy 0.9"))
    assert {(a.path, a.kind, a.file_count) for a in runs.get(run.id).artifacts} == {
        ("report.txt", "file", 1),
        ("figures/plots", "dir", 2),
    }
    out = runs.download_artifact(run.id, "figures/plots", tmp_path / "out")
    assert (out / "sub" / "b.csv").read_text() == "y\n2\n"
    got = runs.download_artifact(run.id, "report.txt", tmp_path / "got.txt")
    assert got.read_text() == "accuracy 0.9"
    with pytest.raises(NotFound, match=f"^run {run.id} has no artifact 'missing.txt'"):
        runs.download_artifact(run.id, "missing.txt", tmp_path / "x")


def test_log_model_packages_the_model_with_its_lineage(backend_client: Any, tmp_path: Path) -> None:
    import json

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    runs = backend_client.runs
    run = runs.create("e")
    art = runs.log_model(run.id, model, "clf")
    assert (art.path, art.kind) == ("clf", "dir")
    out = runs.download_artifact(run.id, "clf", tmp_path / "clf")
    meta = json.loads((out / "ctloop-model.json").read_text())
    assert meta["lineage"]["run_id"] == run.id and meta["flavor"] == "sklearn"


def test_artifact_paths_are_checked_before_any_upload(backend_client: Any, tmp_path: Path) -> None:
    f = tmp_path / "report.txt"
    f.write_text("x")
    runs = backend_client.runs
    run = runs.create("e")
    with pytest.raises(InvalidInput, match="'..' is not allowed"):
        runs.log_artifact(run.id, f, name="../escape.txt")
    with pytest.raises(InvalidInput, match="must be relative"):
        runs.log_artifact(run.id, f, name="/abs.txt")
    with pytest.raises(NotFound, match="no such file"):
        runs.log_artifact(run.id, tmp_path / "missing.txt")
    with pytest.raises(NotFound) as info:
        runs.log_artifact("nope", f)
    assert str(info.value) == NO_RUN
    assert runs.get(run.id).artifacts == []


# --- the server's envelope for runs -----------------------------------------------------------


def test_oversized_requests_are_refused_with_413_in_the_error_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctloop.testing import running_server

    monkeypatch.setenv("CTLOOP_SERVER_MAX_BODY_BYTES", str(2 << 20))
    with running_server(str(tmp_path / "store")) as url:
        run_id = httpx.post(f"{url}/api/v1/runs", json={"experiment": "e"}).json()["id"]
        batch = f"{url}/api/v1/runs/{run_id}/batch"
        too_many = {"metrics": [["m", 1.0, i, None] for i in range(10_001)]}
        huge = b'{"metrics": []' + b" " * (3 << 20) + b"}"

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"metrics": []'
            for _ in range(30):
                yield b" " * 100_000
            yield b"}"

        headers = {"content-type": "application/json"}
        responses = {
            "points": httpx.post(batch, json=too_many),
            "bytes": httpx.post(batch, content=huge, headers=headers),
            "chunked": httpx.post(batch, content=chunked(), headers=headers),
        }
        for what, response in responses.items():
            assert response.status_code == 413, what
            error = response.json()["error"]
            assert error["code"] == "PAYLOAD_TOO_LARGE", what
        assert "at most 10000 metric points" in responses["points"].json()["error"]["message"]
        assert "CTLOOP_SERVER_MAX_BODY_BYTES" in responses["bytes"].json()["error"]["message"]
        ok = httpx.post(batch, json={"metrics": [["m", "NaN", i, None] for i in range(10_000)]})
        assert ok.status_code == 204
        history = httpx.get(f"{url}/api/v1/runs/{run_id}/metrics/m").json()
        assert len(history) == 10_000 and history[0]["value"] == "NaN"
        # the Python client splits what is over either limit into requests that fit
        with ctloop.Client(store=url) as client:
            key = "k" * 250
            client.runs.log_batch(
                run_id,
                metrics=[(key, float(i), i, None) for i in range(30_000)],
                params={f"p{i}": "v" * 8000 for i in range(300)},
            )
            assert len(client.runs.metric_history(run_id, key)) == 30_000
            assert len(client.runs.get(run_id).params) == 300
        paths = httpx.get(f"{url}/openapi.json").json()["paths"]
        assert {"/api/v1/runs", "/api/v1/runs/search", "/api/v1/runs/{run_id}/batch"} <= set(paths)


def test_run_user_is_the_clients(backend_client: Any) -> None:
    run = backend_client.runs.create("e", user="alice")
    assert backend_client.runs.get(run.id).user == "alice"
    from ctloop._internal.environment import current_user

    assert backend_client.runs.create("e").user == current_user()
