"""``ctloop serve`` as real processes: the issue's hard guarantees, measured from outside.

Each test starts ``python -m ctloop serve …`` on a free loopback port against an SQLite
store in ``tmp_path`` holding two genuinely different models of ``churn`` (version 1 a
logistic regression, version 2 a random forest), and talks HTTP to it. Under continuous
load a traffic change or an alias move swaps the model without one failed request; a
changed split is served within a poll interval plus the load time; two workers count every
request once in ``/metrics``; SIGTERM writes every logged row before the process exits.
A package folder copied out of the store is served without the store, and a target that
names nothing is refused in one line.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ctloop
from ctloop.models.package import MANIFEST_FILE
from ctloop.serving.log_reader import read_log

DEPLOYMENT = "churn-api"
STARTUP_SECONDS = 60.0
ROWS = [{"age": 30, "spend": 15.0}, {"age": 52, "spend": 41.5}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def models() -> tuple[Any, Any, Any]:
    """Two different classifiers of the same two columns, and their training frame."""
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(
        {"age": [22, 35, 47, 58, 29, 63, 41, 33], "spend": [9.5, 20, 31, 48.5, 12, 55, 18, 40]}
    )
    labels = [0, 0, 1, 1, 0, 1, 0, 1]
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    return LogisticRegression().fit(frame, labels), forest.fit(frame, labels), frame


@pytest.fixture
def store(tmp_path: Path, models: tuple[Any, Any, Any]) -> Path:
    """A store with churn 1 (logistic) and 2 (forest), champion on 1, deployment on 1."""
    logistic, forest, frame = models
    path = tmp_path / "store"
    with ctloop.Client(store=str(path)) as client:
        for model in (logistic, forest):
            with ctloop.start_run(experiment="churn", client=client) as run:
                run.log_model(model, input_example=frame)
            client.models.register(run.id, name="churn")
        client.models.set_alias("churn", "champion", 1)
        client.deployments.create(DEPLOYMENT, "churn@champion")
    return path


@pytest.fixture
def client(store: Path) -> Iterator[Any]:
    with ctloop.Client(store=str(store)) as c:
        yield c


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}


def ctloop_cli(*args: str | Path, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctloop", "--store", str(store), *map(str, args)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    stderr_file: Path

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (the test fails if it takes longer than ``timeout``)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.stderr_file.read_text(errors="replace")


@contextmanager
def serving(target: str | Path, *flags: str, store: Path) -> Iterator[Server]:
    """A ``ctloop serve TARGET`` process, ready (``/v2/health/ready`` said so) on loopback."""
    port = free_port()
    args = ["--store", str(store), "serve", str(target), "--port", str(port), *flags]
    # stderr goes to a file, not a pipe nobody reads while the server runs (which could fill)
    stderr_file = store.parent / f"serve-{port}.stderr"
    with stderr_file.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "ctloop", *args],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    server = Server(f"http://127.0.0.1:{port}", process, stderr_file)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"ctloop serve exited with {process.returncode}: {server.stderr()}")
            try:
                if httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ctloop serve was not ready within {STARTUP_SECONDS:.0f} s")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- load -------------------------------------------------------------------------------------


@dataclass
class Answer:
    at: float  # time.monotonic() when the response arrived
    status: int
    version: str | None
    variant: str | None


@dataclass
class Load:
    """Clients sending /predict back to back until stopped; every outcome is kept."""

    url: str
    concurrency: int = 8
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.concurrency):
            thread = threading.Thread(target=self._send, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self._stop.is_set():
                try:
                    r = http.post("/predict", json={"instances": ROWS})
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.answers.append(
                    Answer(
                        time.monotonic(),
                        r.status_code,
                        r.headers.get("x-ctloop-model-version"),
                        r.headers.get("x-ctloop-variant"),
                    )
                )

    def since(self, moment: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= moment]

    def wait_for(self, what: str, check: Any, moment: float, timeout: float = 30.0) -> float:
        """Seconds from ``moment`` to the first answer after it for which ``check`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for answer in self.since(moment):
                if check(answer):
                    return answer.at - moment
            time.sleep(0.02)
        pytest.fail(f"no answer showed {what} within {timeout:.0f} s of the change")

    def check_no_failures(self) -> None:
        assert not self.failures, self.failures[:5]
        bad = [a for a in self.answers if a.status != 200]
        assert not bad, f"{len(bad)} of {len(self.answers)} requests failed: {bad[:5]}"


def load_seconds(url: str, version: int) -> float:
    """``ctloop_model_load_seconds`` of ``version``: what a swap may add to the poll time."""
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "ctloop_model_load_seconds" and sample.labels.get(
                "model_version"
            ) == str(version):
                return float(sample.value)
    raise AssertionError(f"no ctloop_model_load_seconds for version {version}")


def metric_total(text: str, name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


# --- 1. no failed request across a swap -------------------------------------------------------

# The bound on a change becoming visible is the poll interval plus the load time
# of a new version; 2 s covers the poll (0.2 s here), the read of the store and the
# request in flight, generously on a busy CI machine.
SWAP_SLACK = 2.0
RETIRE_WAIT = 2.5  # the replica closes a dropped version's batcher after a 2 s grace
IN_FLIGHT = 0.5  # requests routed just before a swap may answer just after it


@pytest.mark.slow
def test_traffic_changes_under_load_fail_no_request(store: Path, client: Any) -> None:
    with (
        serving(DEPLOYMENT, "--poll-seconds", "0.2", store=store) as server,
        Load(server.url) as load,
    ):
        time.sleep(1.0)
        assert {a.version for a in load.answers} == {"1"}

        # all traffic to a version not loaded yet: load, warm, swap, retire version 1
        changed = time.monotonic()
        client.deployments.set_traffic(DEPLOYMENT, {2: 100}, reason="promote")
        seen = load.wait_for("version 2", lambda a: a.version == "2", changed)
        assert seen <= SWAP_SLACK + load_seconds(server.url, 2)
        time.sleep(RETIRE_WAIT)  # version 1's batcher closes while the load goes on
        assert {a.version for a in load.since(changed + seen + IN_FLIGHT)} == {"2"}

        # a split that brings the retired version back
        changed = time.monotonic()
        client.deployments.set_traffic(DEPLOYMENT, {1: 50, 2: 50}, reason="canary")
        seen = load.wait_for("version 1", lambda a: a.version == "1", changed)
        assert seen <= SWAP_SLACK + load_seconds(server.url, 1)
        time.sleep(1.5)
        split = load.since(changed + seen + IN_FLIGHT)
        share = sum(a.version == "1" for a in split) / len(split)
        assert 0.3 < share < 0.7, f"version 1 got {share:.0%} of {len(split)} requests"
        variants = {(a.version, a.variant) for a in split}
        assert len(variants) == 2 and len({v for _, v in variants}) == 2, variants
    load.check_no_failures()
    assert "Traceback" not in server.stderr(), server.stderr()
    assert len(load.answers) > 200, "the load was too thin to prove anything"


def _probabilities(url: str) -> list[list[float]]:
    response = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["probabilities"]


@pytest.mark.slow
def test_alias_move_under_load_fails_no_request(
    store: Path, client: Any, models: tuple[Any, Any, Any]
) -> None:
    import pandas as pd

    logistic, forest, _ = models
    rows = pd.DataFrame(ROWS)
    with (
        serving("churn@champion", "--poll-seconds", "0.2", store=store) as server,
        Load(server.url) as load,
    ):
        np.testing.assert_allclose(_probabilities(server.url), logistic.predict_proba(rows))
        time.sleep(1.0)
        moved = time.monotonic()
        client.models.set_alias("churn", "champion", 2, reason="the forest wins")
        seen = load.wait_for("version 2", lambda a: a.version == "2", moved)
        assert seen <= SWAP_SLACK + load_seconds(server.url, 2)
        time.sleep(RETIRE_WAIT + 0.5)
        swapped = moved + seen
        assert {a.version for a in load.since(swapped + IN_FLIGHT)} == {"2"}
        np.testing.assert_allclose(_probabilities(server.url), forest.predict_proba(rows))
    load.check_no_failures()
    assert "Traceback" not in server.stderr(), server.stderr()
    assert {a.version for a in load.answers if a.at < moved} == {"1"}
    assert len(load.answers) > 200, "the load was too thin to prove anything"


# --- 2. convergence with the default poll -----------------------------------------------------


@pytest.mark.slow
def test_default_poll_serves_a_new_split_within_two_seconds_plus_load(
    store: Path, client: Any
) -> None:
    with serving(DEPLOYMENT, store=store) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/predict", json={"instances": ROWS}).json()["model_version"] == "1"
        changed = time.monotonic()
        client.deployments.set_traffic(DEPLOYMENT, {2: 100})
        while True:
            response = http.post("/predict", json={"instances": ROWS})
            assert response.status_code == 200
            if response.json()["model_version"] == "2":
                break
            assert time.monotonic() - changed < 30, "the change never arrived"
            time.sleep(0.02)
        elapsed = time.monotonic() - changed
        assert elapsed <= 2.0 + load_seconds(server.url, 2), elapsed


# --- 3 and 4. every request counted once, every logged row written at SIGTERM -----------------


def _artifacts_root(store: Path) -> str:
    with ctloop.Client(store=str(store)) as c:
        return c.settings.artifacts_root()


def _send_on_fresh_connections(url: str, n: int, threads: int = 4) -> list[str]:
    """``n`` /predict requests, each on a connection of its own; the prediction ids."""
    ids: list[list[str]] = [[] for _ in range(threads)]
    errors: list[str] = []

    address = httpx.URL(url)
    body = json.dumps({"instances": ROWS[:1]})

    def send(k: int) -> None:
        for _ in range(k, n, threads):
            # http.client, not httpx: a new connection per request, without the cost of a
            # new httpx client (and its TLS context) each time
            conn = http.client.HTTPConnection(address.host, address.port, timeout=10)
            try:
                conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                text = r.read().decode()
            finally:
                conn.close()
            if r.status != 200:
                errors.append(f"{r.status}: {text}")
                continue
            ids[k].extend(json.loads(text)["prediction_ids"])

    workers = [threading.Thread(target=send, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors[:5]
    return [i for chunk in ids for i in chunk]


def _writers(root: str) -> set[str]:
    """The replicas (``<hostname>-<pid>``) that wrote segments of the deployment's log."""
    prefix = f"{socket.gethostname()}-"
    found = set()
    for segment in Path(root, "logs", DEPLOYMENT, "predictions").glob("date=*/*.parquet"):
        assert segment.name.startswith(prefix), segment.name
        found.add(segment.name[len(prefix) :].split("-", 1)[0])
    return found


def _wait_for_replicas(url: str, count: int, timeout: float = 60.0) -> None:
    """Ask ``GET /`` on fresh connections until ``count`` different replicas answered."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only replicas {seen} answered"
        seen.add(httpx.get(f"{url}/", timeout=5).json()["replica"])


N_REQUESTS = 300


@pytest.mark.slow
def test_two_workers_count_and_log_every_request_once(store: Path) -> None:
    flags = ("--workers", "2", "--log-flush-seconds", "60")
    with serving(DEPLOYMENT, *flags, store=store) as server:
        # at once, while the second worker may still be loading: a worker accepts no
        # connection before its models are ready, so not one of these may fail
        returned = _send_on_fresh_connections(server.url, 100)
        _wait_for_replicas(server.url, 2)  # then both workers get some of the rest
        returned += _send_on_fresh_connections(server.url, N_REQUESTS - 100)
        assert len(returned) == N_REQUESTS
        for _ in range(6):  # whichever worker answers, the totals are the server's
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert metric_total(text, "ctloop_requests_total") == N_REQUESTS
            assert metric_total(text, "ctloop_payload_log_rows_total") == N_REQUESTS
        # each worker publishes its figures every 2 s; `deployments show` adds them up
        live = _wait_for_live(store, N_REQUESTS)
        assert (live["replicas"], live["ready"]) == (2, 2)
        assert live["log_rows"] == N_REQUESTS and live["p99_ms"] > 0
        shown = ctloop_cli("deployments", "show", DEPLOYMENT, store=store)
        assert "live: 2 replica(s), 2 ready" in shown.stdout, shown.stdout + shown.stderr
        assert f"{N_REQUESTS} requests" in shown.stdout
        assert server.stop() == 0, server.stderr()
    with ctloop.Client(store=str(store)) as after:
        assert after.deployments.live(DEPLOYMENT) is None  # stopped replicas withdraw
    logged = read_log(_artifacts_root(store), DEPLOYMENT, "predictions")
    assert len(logged) == N_REQUESTS
    assert sorted(logged["prediction_id"]) == sorted(returned)
    assert len(_writers(_artifacts_root(store))) >= 2, "one worker took every connection"


def _wait_for_live(store: Path, requests: int, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with ctloop.Client(store=str(store)) as reader:
        while True:
            live = reader.deployments.live(DEPLOYMENT)
            if live is not None and live["requests"] == requests and live["replicas"] == 2:
                return live
            if time.monotonic() > deadline:
                pytest.fail(f"the replicas did not report {requests} requests: {live}")
            time.sleep(0.25)


def test_sigterm_writes_every_logged_row_before_exit(store: Path) -> None:
    with serving(DEPLOYMENT, "--log-flush-seconds", "60", store=store) as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            returned = []
            for _ in range(50):
                r = http.post("/predict", json={"instances": ROWS})
                assert r.status_code == 200
                returned += r.json()["prediction_ids"]
        root = _artifacts_root(store)
        assert read_log(root, DEPLOYMENT, "predictions").empty  # nothing flushed on its own
        assert server.stop() == 0, server.stderr()
    logged = read_log(root, DEPLOYMENT, "predictions")
    assert len(logged) == len(returned) == 100
    assert sorted(logged["prediction_id"]) == sorted(returned)


# --- 5. a package folder ----------------------------------------------------------------------


def test_serves_a_package_folder(
    store: Path, client: Any, tmp_path: Path, models: tuple[Any, Any, Any]
) -> None:
    folder = tmp_path / "image" / "model"
    client.objects.get(client.models.get_version("churn/2").package_digest, "dir", folder)
    import pandas as pd

    forest, rows = models[1], pd.DataFrame(ROWS)
    with serving(folder, "--name", "churn", "--no-log-payloads", store=store) as server:
        r = httpx.post(f"{server.url}/predict", json={"instances": ROWS}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == forest.predict(rows).tolist()
        np.testing.assert_allclose(r.json()["probabilities"], forest.predict_proba(rows))
        oip = httpx.get(f"{server.url}/v2/models/churn", timeout=10)
        assert oip.status_code == 200 and oip.json()["name"] == "churn"


# --- 6. what the command refuses ------------------------------------------------------------


def _one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_serving_nothing_known_is_one_line_naming_it(store: Path) -> None:
    line = _one_error_line(ctloop_cli("serve", "nosuchthing", "--port", "1", store=store))
    assert "'nosuchthing'" in line


def test_a_folder_without_a_manifest_is_one_line_naming_it(store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-package"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"nothing")
    line = _one_error_line(ctloop_cli("serve", folder, "--port", "1", store=store))
    assert str(folder) in line and MANIFEST_FILE in line
