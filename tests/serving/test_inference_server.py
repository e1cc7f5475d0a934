"""The inference server end to end: real uvicorn servers on loopback ports over a real store.

A module-wide store holds two registered versions of a churn classifier (version 2 is
trained on the flipped labels, so the two disagree on every row) and three deployments:
``churn`` (everything to version 1), ``split`` (whose traffic each routing test sets) and
``shadowed`` (version 1 live, version 2 as a shadow). Each server runs in a thread with
``uvicorn.Server.run`` and reads its deployment through a client of its own, as
``ctloop serve`` does. Clients are the stock ones where they exist (``tritonclient.http``)
and plain ``httpx`` posting the bodies the other protocols' documentation shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error

from ctloop import Client
from ctloop.serving.app import create_inference_app
from ctloop.serving.log_reader import joined, read_log
from ctloop.serving.replica import DeploymentSource, Desired
from ctloop.serving.server import ServeConfig

FEATURES = ["customer_id", "age", "spend"]


# --- the store: two versions of one model, three deployments ----------------------------------


def churn_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n, dtype=np.int64),
            "age": rng.integers(18, 80, n).astype(np.int64),
            "spend": rng.uniform(5.0, 80.0, n).round(2),
        }
    )


def fit(frame: pd.DataFrame, labels: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels)


@dataclass
class Store:
    path: str
    artifacts: str
    models: dict[int, Any]  # version -> the fitted scikit-learn model

    def client(self) -> Client:
        return Client(store=self.path, artifacts=self.artifacts)

    @property
    def log_root(self) -> str:
        with contextlib.closing(self.client()) as client:
            return client.settings.artifacts_root()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    base = tmp_path_factory.mktemp("inference")
    frame = churn_frame(200)
    labels = ((frame["spend"] > 40) ^ (frame["age"] > 60)).to_numpy().astype(np.int64)
    models = {1: fit(frame, labels), 2: fit(frame, 1 - labels)}
    found = Store(str(base / "store"), str(base / "artifacts"), models)
    with contextlib.closing(found.client()) as client:
        for version in (1, 2):
            run = client.runs.create("churn", capture_code=False)
            client.runs.log_model(run.id, models[version], "model", input_example=frame.head(20))
            client.models.register(run.id, "model", name="churn")
        client.deployments.create("churn", "churn/1")
        client.deployments.create("split", "churn/1")
        client.deployments.create("shadowed", "churn/1")
        client.deployments.set_traffic("shadowed", {1: 100}, shadows=[2])
    return found


# --- running servers ----------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    log_root: str
    deployment: str


def until(check: Callable[[], Any], *, what: str, timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False and not _empty(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _empty(value: Any) -> bool:
    return isinstance(value, pd.DataFrame) and value.empty


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn server on a free loopback port, in a thread."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"inference-{port}", daemon=True)
    thread.start()
    until(lambda: server.started or not thread.is_alive(), what="the server to start")
    assert thread.is_alive(), "the inference server stopped while starting"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def is_ready(url: str) -> bool:
    return httpx.get(f"{url}/v2/health/ready").status_code == 200


@contextlib.contextmanager
def deployment_server(store: Store, deployment: str, config: ServeConfig) -> Iterator[Server]:
    client = store.client()  # the server's own, closed by the app at shutdown
    app = create_inference_app(
        DeploymentSource(client, deployment),
        config=config,
        log_root=store.log_root,
        on_close=client.close,
    )
    with serving(app) as url:
        until(lambda: is_ready(url), what=f"{deployment} to load")
        yield Server(url, store.log_root, deployment)


CONFIG = ServeConfig(max_rows=50, max_body_bytes=64_000, poll_seconds=0.1, log_flush_seconds=0.2)


@pytest.fixture(scope="module")
def churn(store: Store) -> Iterator[Server]:
    with deployment_server(store, "churn", CONFIG) as server:
        yield server


@pytest.fixture(scope="module")
def split(store: Store) -> Iterator[Server]:
    with deployment_server(store, "split", CONFIG) as server:
        yield server


@pytest.fixture(scope="module")
def shadowed(store: Store) -> Iterator[Server]:
    with deployment_server(store, "shadowed", CONFIG) as server:
        yield server


def set_traffic(store: Store, server: Server, weights: dict[int, int], **kwargs: Any) -> None:
    """Change the deployment and wait until the server serves the new revision."""
    with contextlib.closing(store.client()) as client:
        revision = client.deployments.set_traffic(server.deployment, weights, **kwargs).revision
    until(
        lambda: httpx.get(f"{server.url}/").json().get("revision") == revision,
        what=f"revision {revision} of {server.deployment}",
    )


def logged(
    server: Server,
    kind: str,
    select: Callable[[pd.DataFrame], pd.DataFrame],
    count: int | None = None,
) -> Any:
    """The rows of a log ``select`` picks, once the server has written some (``count``)."""

    def rows() -> pd.DataFrame:
        found = select(read_log(server.log_root, server.deployment, kind))
        return found if count is None or len(found) == count else found.iloc[:0]

    return until(rows, what=f"{count or 'some'} rows in the {kind} log of {server.deployment}")


# --- request bodies -----------------------------------------------------------------------------


ROWS = churn_frame(6, seed=11)
TYPES = {"customer_id": "INT64", "age": "INT64", "spend": "FP64"}


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return rows


def oip_columns(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """One input per column, as MLServer's PandasCodec sends a DataFrame."""
    inputs = [
        {"name": c, "shape": [len(frame), 1], "datatype": TYPES[c], "data": frame[c].tolist()}
        for c in frame.columns
    ]
    return {"parameters": {"content_type": "pd"}, "inputs": inputs, **extra}


def predict(server: Server, frame: pd.DataFrame, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json={"instances": records(frame)}, **kwargs)


def outputs(body: dict[str, Any]) -> dict[str, np.ndarray]:
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in body["outputs"]}


# --- 1. Open Inference Protocol -----------------------------------------------------------------


def test_oip_server_metadata_and_health(churn: Server) -> None:
    body = httpx.get(f"{churn.url}/v2").json()
    assert body["name"] == "ctloop" and isinstance(body["extensions"], list)
    assert httpx.get(f"{churn.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{churn.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{churn.url}/v2/models/churn/ready").json()["ready"] is True
    assert httpx.get(f"{churn.url}/v2/models/churn/versions/1/ready").status_code == 200


def test_oip_model_metadata_comes_from_the_signature(churn: Server) -> None:
    body = httpx.get(f"{churn.url}/v2/models/churn").json()
    assert body["name"] == "churn" and body["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in body["inputs"]} == TYPES
    by_name = {o["name"]: o for o in body["outputs"]}
    assert set(by_name) == {"predict", "predict_proba"}
    assert by_name["predict"]["datatype"] == "INT64"
    assert by_name["predict_proba"] == {
        "name": "predict_proba",
        "datatype": "FP64",
        "shape": [-1, 2],
    }
    assert httpx.get(f"{churn.url}/v2/models/churn/versions/1").json()["versions"] == ["1"]


def test_oip_infer_with_columns_matches_the_model(churn: Server, store: Store) -> None:
    response = httpx.post(f"{churn.url}/v2/models/churn/infer", json=oip_columns(ROWS, id="r-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "r-1" and body["model_name"] == "churn" and body["model_version"] == "1"
    got = outputs(body)
    model = store.models[1]
    assert got["predict"].tolist() == model.predict(ROWS).tolist()
    np.testing.assert_allclose(got["predict_proba"], model.predict_proba(ROWS), rtol=1e-9)
    ids = body["parameters"]["prediction_ids"].split(",")
    assert len(set(ids)) == len(ROWS)


def test_oip_infer_with_one_2d_tensor(churn: Server, store: Store) -> None:
    tensor = {
        "name": "x",
        "shape": [len(ROWS), 3],
        "datatype": "FP64",
        "data": ROWS[FEATURES].to_numpy(dtype=float).tolist(),
    }
    response = httpx.post(
        f"{churn.url}/v2/models/churn/infer", json={"id": "r-np", "inputs": [tensor]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "r-np"
    got = outputs(body)
    assert got["predict"].tolist() == store.models[1].predict(ROWS).tolist()
    np.testing.assert_allclose(got["predict_proba"], store.models[1].predict_proba(ROWS))


def test_oip_pinned_version_infer_uses_that_version(churn: Server, store: Store) -> None:
    response = httpx.post(f"{churn.url}/v2/models/churn/versions/1/infer", json=oip_columns(ROWS))
    assert response.status_code == 200
    assert outputs(response.json())["predict"].tolist() == store.models[1].predict(ROWS).tolist()


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": []},
        {"inputs": [{"name": "age", "shape": [1], "datatype": "NOPE", "data": [1]}]},
        {"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1]}]},
        [1, 2, 3],
        {"id": 5, "inputs": "x"},
    ],
    ids=["no-inputs", "bad-datatype", "shape-mismatch", "not-an-object", "bad-id-and-inputs"],
)
def test_oip_bad_bodies_are_400_with_an_error(churn: Server, body: Any) -> None:
    response = httpx.post(f"{churn.url}/v2/models/churn/infer", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/ghost"),
        ("GET", "/v2/models/ghost/ready"),
        ("GET", "/v2/models/churn/versions/7"),
        ("GET", "/v2/models/churn/versions/seven"),
        ("GET", "/v2/models/churn/versions/7/ready"),
        ("POST", "/v2/models/ghost/infer"),
        ("POST", "/v2/models/churn/versions/7/infer"),
        ("POST", "/v1/models/ghost:predict"),
    ],
)
def test_unknown_model_or_version_is_404(churn: Server, method: str, path: str) -> None:
    body = oip_columns(ROWS) if "infer" in path else {"instances": records(ROWS)}
    response = httpx.request(method, churn.url + path, json=body if method == "POST" else None)
    assert response.status_code == 404, response.text
    assert "error" in response.json()


# --- 2. stock clients: tritonclient, and MLServer's documented body -----------------------------


def test_tritonclient_http_against_the_server(churn: Server, store: Store) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=churn.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("churn")
        assert not client.is_model_ready("ghost")
        metadata = client.get_model_metadata("churn")
        assert [i["name"] for i in metadata["inputs"]] == FEATURES
        inputs = []
        for name in FEATURES:
            array = ROWS[[name]].to_numpy(dtype=np.float64 if name == "spend" else np.int64)
            tensor = httpclient.InferInput(name, list(array.shape), TYPES[name])
            tensor.set_data_from_numpy(array, binary_data=False)
            inputs.append(tensor)
        result = client.infer("churn", inputs, request_id="triton-1")
        assert result.get_response()["id"] == "triton-1"
        assert result.as_numpy("predict").tolist() == store.models[1].predict(ROWS).tolist()
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), store.models[1].predict_proba(ROWS)
        )
    finally:
        client.close()


def test_mlserver_style_body_asking_for_one_output(churn: Server, store: Store) -> None:
    # the body MLServer's docs show for a pandas request, with one requested output
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": name,
                "shape": [len(ROWS), 1],
                "datatype": TYPES[name],
                "parameters": {"content_type": "np"},
                "data": ROWS[name].tolist(),
            }
            for name in FEATURES
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    response = httpx.post(f"{churn.url}/v2/models/churn/infer", json=body)
    assert response.status_code == 200, response.text
    got = outputs(response.json())
    assert list(got) == ["predict_proba"]
    np.testing.assert_allclose(got["predict_proba"], store.models[1].predict_proba(ROWS))
    body["outputs"] = [{"name": "embedding"}]
    refused = httpx.post(f"{churn.url}/v2/models/churn/infer", json=body)
    assert refused.status_code == 400 and "embedding" in refused.json()["error"]


# --- 3. KServe V1, MLflow, plain ----------------------------------------------------------------


def test_kserve_v1_predict_with_records_and_lists(churn: Server, store: Store) -> None:
    want = store.models[1].predict(ROWS).tolist()
    url = f"{churn.url}/v1/models/churn:predict"
    as_records = httpx.post(url, json={"instances": records(ROWS)})
    as_lists = httpx.post(url, json={"instances": ROWS[FEATURES].values.tolist()})
    assert as_records.status_code == 200 and as_lists.status_code == 200, as_lists.text
    assert as_records.json() == {"predictions": want}
    assert as_lists.json() == {"predictions": want}
    assert httpx.get(f"{churn.url}/v1/models/churn").json() == {"name": "churn", "ready": True}


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": json.loads(ROWS.to_json(orient="split", index=False))},
        {"dataframe_records": records(ROWS)},
        {"instances": records(ROWS)},
        {"inputs": {c: ROWS[c].tolist() for c in FEATURES}},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs"],
)
def test_mlflow_invocations(churn: Server, store: Store, body: dict[str, Any]) -> None:
    response = httpx.post(f"{churn.url}/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": store.models[1].predict(ROWS).tolist()}


def test_mlflow_ping_and_version(churn: Server) -> None:
    import ctloop

    assert httpx.get(f"{churn.url}/ping").status_code == 200
    assert httpx.get(f"{churn.url}/version").text == ctloop.__version__
    bad = httpx.post(f"{churn.url}/invocations", json={"nothing": 1})
    assert bad.status_code == 400 and bad.json()["error_code"] == "BAD_REQUEST"


def test_plain_predict_with_a_list_and_with_one_record(churn: Server, store: Store) -> None:
    many = predict(churn, ROWS)
    assert many.status_code == 200
    body = many.json()
    assert body["predictions"] == store.models[1].predict(ROWS).tolist()
    np.testing.assert_allclose(body["probabilities"], store.models[1].predict_proba(ROWS))
    assert body["classes"] == [0, 1] and body["model_version"] == "1"
    assert len(set(body["prediction_ids"])) == len(ROWS)

    one = httpx.post(f"{churn.url}/predict", json=records(ROWS.head(1))[0]).json()
    assert one["predictions"] == store.models[1].predict(ROWS.head(1)).tolist()
    assert (
        len(one["prediction_ids"]) == 1 and one["prediction_ids"][0] not in body["prediction_ids"]
    )
    assert one["model_version"] == "1"


# --- 4. validation ------------------------------------------------------------------------------


def _with(**changes: Any) -> list[dict[str, Any]]:
    rows = records(ROWS.head(3))
    for key, value in changes.items():
        row, _, column = key.partition("__")
        if value is _DROP:
            del rows[int(row.removeprefix("r"))][column]
        else:
            rows[int(row.removeprefix("r"))][column] = value
    return rows


_DROP = object()


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        (_with(r0__age=_DROP, r1__age=_DROP, r2__age=_DROP), ["missing column 'age'"]),
        (_with(r0__plan="pro"), ["unknown column(s) 'plan'"]),
        (_with(r1__spend="lots"), ["'spend'"]),
        (_with(r2__age=None), ["column 'age': 1 missing value"]),
        (
            _with(r0__extra=1, r0__spend="x", r1__spend="y", r2__spend="z", r2__age=None),
            ["unknown column(s) 'extra'", "column 'spend'", "column 'age'"],
        ),
    ],
    ids=["missing-column", "unknown-column", "wrong-type", "null", "several-at-once"],
)
def test_invalid_rows_are_400_listing_every_problem(
    churn: Server, instances: list[dict[str, Any]], expected: list[str]
) -> None:
    response = httpx.post(f"{churn.url}/predict", json={"instances": instances})
    assert response.status_code == 400, response.text
    body = response.json()
    # each expected problem is its own entry of the list
    for text in expected:
        assert sum(text in p for p in body["problems"]) == 1, (text, body)
    assert len(body["problems"]) == len(expected), body


def test_too_many_rows_is_400_naming_the_limit(churn: Server) -> None:
    response = predict(churn, churn_frame(CONFIG.max_rows + 1))
    assert response.status_code == 400
    assert f"limit of {CONFIG.max_rows}" in response.json()["error"]
    assert predict(churn, churn_frame(CONFIG.max_rows)).status_code == 200


@pytest.mark.parametrize(
    "path", ["/predict", "/invocations", "/v2/models/churn/infer", "/v1/models/churn:predict"]
)
def test_a_body_over_the_limit_is_413(churn: Server, path: str) -> None:
    response = httpx.post(
        churn.url + path,
        content=b'{"instances": [' + b" " * CONFIG.max_body_bytes + b"]}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert str(CONFIG.max_body_bytes) in response.text


def test_a_chunked_body_over_the_limit_is_413(churn: Server) -> None:
    def body() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        yield b'{"instances": ['
        for _ in range(4):
            yield b" " * CONFIG.max_body_bytes
        yield b"]}"

    response = httpx.post(
        churn.url + "/predict", content=body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert str(CONFIG.max_body_bytes) in response.text


@pytest.mark.parametrize(
    "path",
    ["/predict", "/invocations", "/v2/models/churn/infer", "/v1/models/churn:predict", "/feedback"],
)
@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe", b"[", b"null", b"1e999"])
def test_invalid_json_is_400_never_5xx(churn: Server, path: str, content: bytes) -> None:
    response = httpx.post(
        churn.url + path, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text


# --- 5. headers ---------------------------------------------------------------------------------


def test_every_prediction_response_names_version_and_variant(churn: Server) -> None:
    calls = [
        ("/predict", {"instances": records(ROWS)}),
        ("/invocations", {"dataframe_records": records(ROWS)}),
        ("/v1/models/churn:predict", {"instances": records(ROWS)}),
        ("/v2/models/churn/infer", oip_columns(ROWS)),
        ("/v2/models/churn/versions/1/infer", oip_columns(ROWS)),
        ("/predict", {"instances": [{"age": None}]}),  # a refused request too
    ]
    for path, body in calls:
        response = httpx.post(churn.url + path, json=body)
        assert response.headers["X-Ctloop-Model-Version"] == "1", path
        assert response.headers["X-Ctloop-Variant"] == "v1", path


# --- 6. traffic ---------------------------------------------------------------------------------


def test_a_50_50_split_serves_both_versions_in_proportion(split: Server, store: Store) -> None:
    set_traffic(store, split, {1: 50, 2: 50}, sticky_key=None)
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=split.url) as http:
        for _ in range(400):
            response = http.post("/predict", json={"instances": records(ROWS.head(1))})
            version = response.headers["X-Ctloop-Model-Version"]
            assert response.json()["model_version"] == version
            want = store.models[int(version)].predict(ROWS.head(1)).tolist()
            assert response.json()["predictions"] == want
            seen[version] += 1
    assert set(seen) == {"1", "2"}
    assert 140 <= seen["1"] <= 260, seen  # 6 standard deviations of Binomial(400, 0.5)


def test_a_header_sticky_key_pins_each_user_to_one_version(split: Server, store: Store) -> None:
    set_traffic(store, split, {1: 50, 2: 50}, sticky_key="header:X-User-Id")
    by_user: dict[str, set[str]] = {}
    with httpx.Client(base_url=split.url) as http:
        for _ in range(3):
            for user in range(40):
                response = http.post(
                    "/predict",
                    json={"instances": records(ROWS.sample(1))},
                    headers={"X-User-Id": f"user-{user}"},
                )
                by_user.setdefault(f"user-{user}", set()).add(
                    response.headers["X-Ctloop-Model-Version"]
                )
    assert all(len(versions) == 1 for versions in by_user.values()), by_user
    assert {v for versions in by_user.values() for v in versions} == {"1", "2"}


def test_a_field_sticky_key_pins_each_customer_to_one_version(split: Server, store: Store) -> None:
    set_traffic(store, split, {1: 50, 2: 50}, sticky_key="field:customer_id")
    by_customer: dict[int, set[str]] = {}
    rng = np.random.default_rng(5)
    with httpx.Client(base_url=split.url) as http:
        for _ in range(3):
            for customer in range(40):
                row = {"customer_id": customer, "age": int(rng.integers(18, 80)), "spend": 1.5}
                for path, body in (
                    ("/predict", {"instances": [row]}),
                    ("/invocations", {"dataframe_records": [row]}),
                    ("/v2/models/split/infer", oip_columns(pd.DataFrame([row]))),
                ):
                    response = http.post(path, json=body)
                    assert response.status_code == 200, response.text
                    by_customer.setdefault(customer, set()).add(
                        response.headers["X-Ctloop-Model-Version"]
                    )
    assert all(len(versions) == 1 for versions in by_customer.values()), by_customer
    assert {v for versions in by_customer.values() for v in versions} == {"1", "2"}


def test_a_field_sticky_key_reads_column_shaped_bodies_too(split: Server, store: Store) -> None:
    set_traffic(store, split, {1: 50, 2: 50}, sticky_key="field:customer_id")
    with httpx.Client(base_url=split.url) as http:
        for customer in range(20):
            row = {"customer_id": customer, "age": 40, "spend": 9.5}
            columns = {k: [v] for k, v in row.items()}
            versions = {
                path + json.dumps(body): http.post(path, json=body).headers[
                    "X-Ctloop-Model-Version"
                ]
                for path, body in (
                    ("/predict", {"instances": [row]}),
                    ("/v1/models/split:predict", {"instances": columns}),
                    ("/invocations", {"inputs": columns}),
                    ("/invocations", {"instances": columns}),
                    ("/invocations", {"inputs": [row]}),
                    ("/v1/models/split:predict", {"inputs": [row]}),
                )
            }
            assert len(set(versions.values())) == 1, (customer, versions)


def test_traffic_changes_under_load_fail_no_request(split: Server, store: Store) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=split.url) as http:
            while not stop.is_set():
                statuses.append(
                    http.post("/predict", json={"instances": records(ROWS)}).status_code
                )

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        set_traffic(store, split, {2: 100}, sticky_key=None)
        set_traffic(store, split, {1: 100})
        set_traffic(store, split, {1: 50, 2: 50})
    finally:
        stop.set()
        worker.join(timeout=30)
    assert len(statuses) > 10 and set(statuses) == {200}, Counter(statuses)


# --- 7. shadows ---------------------------------------------------------------------------------


def test_shadow_versions_answer_off_the_record_and_are_logged(
    shadowed: Server, store: Store
) -> None:
    request_ids = [f"shadow-req-{i}" for i in range(5)]
    for request_id in request_ids:
        response = predict(shadowed, ROWS.head(2), headers={"X-Request-Id": request_id})
        assert response.status_code == 200
        assert response.headers["X-Ctloop-Model-Version"] == "1"
        assert response.headers["X-Ctloop-Variant"] == "v1"
        assert response.json()["predictions"] == store.models[1].predict(ROWS.head(2)).tolist()

    rows = logged(
        shadowed,
        "predictions",
        lambda f: f[f["request_id"].isin(request_ids)],
        count=4 * len(request_ids),  # two rows each, live and shadow
    )
    live = rows[rows["variant"] == "v1"]
    shadow = rows[rows["variant"] == "shadow"]
    assert set(live["model_version"]) == {"1"} and set(shadow["model_version"]) == {"2"}
    assert sorted(live["request_id"]) == sorted(shadow["request_id"])
    assert shadow["prediction"].tolist() == [
        p for _ in request_ids for p in store.models[2].predict(ROWS.head(2)).tolist()
    ]


# --- 8. feedback --------------------------------------------------------------------------------


def test_feedback_one_and_many_is_logged_and_joins_the_predictions(churn: Server) -> None:
    ids = predict(churn, ROWS.head(3), headers={"X-Request-Id": "fb-1"}).json()["prediction_ids"]
    one = httpx.post(f"{churn.url}/feedback", json={"prediction_id": ids[0], "label": 1})
    assert one.status_code == 200 and one.json() == {"accepted": 1, "dropped": 0}
    many = httpx.post(
        f"{churn.url}/feedback",
        json=[{"prediction_id": ids[1], "label": 0}, {"prediction_id": ids[2], "value": 2.5}],
    )
    assert many.json() == {"accepted": 2, "dropped": 0}

    feedback = logged(churn, "feedback", lambda f: f[f["prediction_id"].isin(ids)], count=3)
    assert set(feedback["deployment"]) == {"churn"}
    assert feedback["timestamp"].notna().all()

    both = until(
        lambda: (j := joined(churn.log_root, "churn"))[j["request_id"] == "fb-1"].pipe(
            lambda g: g if len(g) == 3 else g.iloc[:0]
        ),
        what="the predictions of fb-1 in the joined log",
    )
    by_id = both.set_index("prediction_id")
    assert by_id.loc[ids[0], "label"] == 1 and by_id.loc[ids[1], "label"] == 0
    assert pd.isna(by_id.loc[ids[2], "label"])
    assert by_id.loc[ids[2], "value"] == 2.5


def test_bad_feedback_items_are_each_listed(churn: Server) -> None:
    response = httpx.post(
        f"{churn.url}/feedback",
        json=[
            {"prediction_id": "a", "label": 1},
            {"label": 1},
            {"prediction_id": "b", "label": 1, "value": 2.0},
            {"prediction_id": "c", "value": "high"},
            {"prediction_id": "d", "label": 1, "colour": "red"},
            7,
        ],
    )
    assert response.status_code == 400
    problems = response.json()["problems"]
    for item in (1, 2, 3, 4, 5):
        assert any(p.startswith(f"item {item}:") for p in problems), (item, problems)
    assert not any(p.startswith("item 0:") for p in problems)
    assert httpx.post(f"{churn.url}/feedback", json=[]).status_code == 400


def test_a_label_no_log_can_hold_is_refused_and_does_not_block_later_feedback(
    churn: Server,
) -> None:
    huge = httpx.post(f"{churn.url}/feedback", json={"prediction_id": "big", "label": 2**63})
    assert huge.status_code == 400 and "item 0" in huge.json()["problems"][0]
    after = httpx.post(f"{churn.url}/feedback", json={"prediction_id": "after-big", "label": 1})
    assert after.status_code == 200
    logged(churn, "feedback", lambda f: f[f["prediction_id"] == "after-big"])


# --- 9. the prediction log ----------------------------------------------------------------------


def test_the_prediction_log_holds_every_column(churn: Server, store: Store) -> None:
    rows = ROWS.head(2)
    body = predict(churn, rows, headers={"X-Request-Id": "log-1"}).json()
    log = logged(churn, "predictions", lambda f: f[f["request_id"] == "log-1"], count=2)
    assert log["prediction_id"].tolist() == body["prediction_ids"]
    assert set(log["deployment"]) == {"churn"}
    assert set(log["model_version"]) == {"1"} and set(log["variant"]) == {"v1"}
    assert set(log["status"]) == {"ok"}
    assert (log["latency_ms"] > 0).all()
    assert log["timestamp"].notna().all() and str(log["timestamp"].dt.tz) == "UTC"
    for name in FEATURES:
        assert log[f"f.{name}"].tolist() == rows[name].tolist()
    assert log["prediction"].tolist() == body["predictions"]
    np.testing.assert_allclose(log[["p.0", "p.1"]].to_numpy(), body["probabilities"])


# --- 10. metrics --------------------------------------------------------------------------------


def scrape(server: Server) -> dict[str, Any]:
    text = httpx.get(f"{server.url}/metrics").text
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], family: str, name: str, **labels: str) -> float:
    total = 0.0
    for s in families[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def test_metrics_count_requests_by_outcome(churn: Server) -> None:
    ok = {"deployment": "churn", "model_version": "1", "variant": "v1", "protocol": "plain"}
    before = scrape(churn)
    for _ in range(7):
        assert predict(churn, ROWS.head(1)).status_code == 200
    for _ in range(3):
        httpx.post(f"{churn.url}/predict", json={"instances": [{"age": None}]})
    after = scrape(churn)
    assert after["ctloop_requests"].type == "counter"

    def delta(family: str, name: str, **want: str) -> float:
        return sample(after, family, name, **want) - sample(before, family, name, **want)

    assert delta("ctloop_requests", "ctloop_requests_total", **ok, status="200") == 7
    assert delta("ctloop_requests", "ctloop_requests_total", **ok, status="400") == 3
    assert after["ctloop_request_duration_seconds"].type == "histogram"
    assert (
        delta(
            "ctloop_request_duration_seconds",
            "ctloop_request_duration_seconds_count",
            deployment="churn",
            protocol="plain",
        )
        == 10
    )
    assert sample(after, "ctloop_requests_in_flight", "ctloop_requests_in_flight") == 0
    assert (
        sample(after, "ctloop_model_load_seconds", "ctloop_model_load_seconds", model_version="1")
        > 0
    )
    logged_rows = delta(
        "ctloop_payload_log_rows",
        "ctloop_payload_log_rows_total",
        deployment="churn",
        kind="predictions",
    )
    assert logged_rows == 7
    assert "ctloop_payload_log_dropped_total" in {
        s.name for s in after["ctloop_payload_log_dropped"].samples
    }
    assert sample(after, "ctloop_payload_log_dropped", "ctloop_payload_log_dropped_total") == 0
    assert after["ctloop_payload_log_queue_depth"].type == "gauge"
    assert {s.labels["kind"] for s in after["ctloop_payload_log_queue_depth"].samples} >= {
        "predictions"
    }


def test_a_full_shadow_queue_drops_and_counts_but_never_fails_live(store: Store) -> None:
    # One-row requests that wait a little for company are answered together, batch by
    # batch: their shadow copies arrive at once, more than a queue of one takes.
    config = ServeConfig(shadow_queue=1, log_payloads=False, poll_seconds=0.1, max_wait_ms=20)
    with deployment_server(store, "shadowed", config) as server:
        body = {"instances": records(ROWS.head(1))}

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url) as http:
                responses = await asyncio.gather(
                    *(http.post("/predict", json=body) for _ in range(60))
                )
            return [r.status_code for r in responses]

        statuses = asyncio.run(burst())
        assert statuses == [200] * 60
        families = scrape(server)
        dropped = sample(
            families,
            "ctloop_shadow_dropped",
            "ctloop_shadow_dropped_total",
            deployment="shadowed",
            model_version="2",
        )
        assert dropped > 0
        until(
            lambda: (
                sample(scrape(server), "ctloop_requests", "ctloop_requests_total", variant="shadow")
                + dropped
                == 60
            ),
            what="every shadow copy served or dropped",
        )


# --- 11. readiness ------------------------------------------------------------------------------


class GatedSource:
    """A deployment whose models load only once ``gate`` is set (a slow artifact store)."""

    def __init__(self, inner: DeploymentSource, gate: threading.Event) -> None:
        self.inner, self.gate = inner, gate

    def desired(self) -> Desired:
        return self.inner.desired()

    def load(self, model: str, version: int) -> Any:
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.load(model, version)


def test_live_before_ready_while_the_model_loads(store: Store) -> None:
    gate = threading.Event()
    client = store.client()
    app = create_inference_app(
        GatedSource(DeploymentSource(client, "churn"), gate),
        config=ServeConfig(poll_seconds=0.1, log_payloads=False),
        on_close=client.close,
    )
    try:
        with serving(app) as url:
            assert httpx.get(f"{url}/v2/health/live").status_code == 200
            assert httpx.get(f"{url}/v2/health/ready").status_code == 503
            assert httpx.get(f"{url}/ping").status_code == 503
            assert httpx.get(f"{url}/v2/models/churn/ready").status_code == 503
            early = httpx.post(f"{url}/predict", json={"instances": records(ROWS)})
            assert early.status_code == 503 and "loading" in early.json()["error"]
            assert httpx.get(f"{url}/").json()["ready"] is False
            gate.set()
            until(lambda: is_ready(url), what="the model to load")
            assert httpx.post(f"{url}/predict", json={"instances": records(ROWS)}).is_success
            # no artifact store: feedback has nowhere to go, and says so
            feedback = httpx.post(f"{url}/feedback", json={"prediction_id": "a", "label": 1})
            assert feedback.status_code == 409 and "no logs" in feedback.json()["error"]
    finally:
        gate.set()


# --- 12. schemathesis ---------------------------------------------------------------------------


class _NoSource:
    """Enough of a Source to build the app for its OpenAPI description (never started)."""

    def desired(self) -> Desired:
        raise AssertionError("not served")

    def load(self, model: str, version: int) -> Any:
        raise AssertionError("not served")


DESCRIPTION = create_inference_app(_NoSource()).openapi()
schema = schemathesis.openapi.from_dict(DESCRIPTION)
KNOWN_PATH_VALUES = {"name": "churn", "version": "1"}


@schema.hook
def before_generate_path_parameters(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    # Half of the requests name the served model (and version 1), so they reach the
    # parsers instead of stopping at a 404.
    def known(generated: dict[str, Any] | None) -> dict[str, Any] | None:
        if not generated:
            return generated
        return {**generated, **{k: v for k, v in KNOWN_PATH_VALUES.items() if k in generated}}

    return st.one_of(strategy, strategy.map(known))


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_5xx(case: schemathesis.Case, churn: Server) -> None:
    case.call_and_validate(base_url=churn.url, checks=[not_a_server_error])


def test_the_served_description_is_the_one_tested(churn: Server) -> None:
    assert httpx.get(f"{churn.url}/openapi.json").json() == DESCRIPTION
