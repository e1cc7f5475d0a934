"""The serving stage of the main job: the champion behind a real inference server.

1. a deployment ``churn-api`` sends all traffic to ``churn@champion``;
2. ``ctloop serve churn-api`` starts in a child process on a free loopback port;
3. live customers from :mod:`ctloop.datasets.churn` are scored one request each, through
   ``POST /predict`` and through the Open Inference Protocol, from a few threads;
4. ground truth arrives for some of them through ``POST /feedback``;
5. the server's Prometheus metrics are read and summarised;
6. another version goes on a 10 % canary; the replica converges on its own, more traffic
   flows, and the prediction log shows the split (and the labels joined to predictions).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ctloop.client import Client

Say = Callable[[str], None]

DEPLOYMENT = "churn-api"
THREADS = 8


@dataclass
class ServingDemo:
    """What the serving stage did, for the summary and tests."""

    url: str = ""
    champion: int = 0
    canary: int | None = None
    sent: Counter[str] = field(default_factory=Counter)  # protocol -> requests
    failed: int = 0
    feedback: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    split: dict[str, int] = field(default_factory=dict)  # variant -> rows after the canary
    logged: int = 0
    labelled: int = 0


def run_serving_stage(
    client: Client, *, seed: int, say: Say, requests: int = 300, canary_requests: int = 400
) -> ServingDemo | None:
    """Serve the champion, send traffic and feedback, then a 10 % canary (see above)."""
    from ctloop.datasets import churn
    from ctloop.errors import NotFound

    try:
        champion = client.models.get_version("churn@champion").version
    except NotFound:
        say("serving    skipped: there is no churn@champion to serve")
        return None
    others = [v.version for v in client.models.versions("churn") if v.version != champion]
    result = ServingDemo(champion=champion, canary=max(others) if others else None)
    try:
        client.deployments.get(DEPLOYMENT)
        client.deployments.set_traffic(
            DEPLOYMENT, {champion: 100}, shadows=[], reason="demo: start from the champion"
        )
    except NotFound:
        client.deployments.create(DEPLOYMENT, "churn@champion", description="the demo's API")
    live = churn.generate(n_rows=requests + canary_requests, seed=seed + 1000)
    records = json.loads(live[list(churn.FEATURES)].to_json(orient="records"))
    labels = live[churn.TARGET].astype(int).tolist()

    with _serve(client, DEPLOYMENT) as (url, http):
        result.url = url
        say(f"serving    ctloop serve {DEPLOYMENT} at {url}: churn/{champion} (champion) ready")
        first = requests // 3 * 2
        ids = _send(http, url, records[:first], "plain", result)
        _send(http, url, records[first:requests], "oip", result)
        say(
            f"traffic    {result.sent['plain']} requests to /predict and {result.sent['oip']} "
            f"over OIP (/v2/models/{DEPLOYMENT}/infer), {THREADS} at a time, "
            f"{result.failed} failed"
        )
        answered = [(pid, label) for pid, label in zip(ids, labels, strict=False) if pid][::2]
        body = [{"prediction_id": pid, "label": label} for pid, label in answered]
        accepted = http.post(url + "/feedback", json=body).json().get("accepted", 0)
        result.feedback = int(accepted)
        say(f"feedback   {accepted} labels posted to /feedback (every other /predict answer)")
        result.metrics = _metrics(http.get(url + "/metrics").text)
        m = result.metrics
        say(
            f"metrics    ctloop_requests_total {m.get('requests', 0):.0f} "
            f"(200: {m.get('ok', 0):.0f}), latency p50 {m.get('p50_ms', math.nan):.1f} ms "
            f"p99 {m.get('p99_ms', math.nan):.1f} ms, "
            f"ctloop_payload_log_rows_total {m.get('log_rows', 0):.0f}, "
            f"ctloop_model_load_seconds {m.get('load_seconds', math.nan):.2f}"
        )
        if result.canary is None:
            say("canary     skipped: churn has one version only")
        else:
            updated = client.deployments.set_traffic(
                DEPLOYMENT,
                {champion: 90, result.canary: 10},
                reason="demo: 10% canary of the other candidate",
            )
            _wait_for_revision(http, url, updated.revision)
            say(
                f"canary     churn/{result.canary} on 10% (revision {updated.revision}); the "
                "replica converged on its own"
            )
            _send(http, url, records[requests:], "plain", result, tag="canary")
    # the server has stopped: SIGTERM wrote every logged row
    frame = client.deployments.predictions(DEPLOYMENT)
    result.logged = len(frame)
    after = frame[frame["request_id"].str.startswith("canary-")]
    result.split = {str(k): int(v) for k, v in after["variant"].value_counts().items()}
    joined = client.deployments.joined(DEPLOYMENT)
    result.labelled = int(joined["label"].notna().sum())
    shares = ", ".join(
        f"{variant} {n} ({100 * n / max(len(after), 1):.0f}%)"
        for variant, n in sorted(result.split.items())
    )
    say(
        f"log        {result.logged} predictions in logs/{DEPLOYMENT}/predictions/; after the "
        f"canary: {shares or 'none'}; {result.labelled} joined with their labels"
    )
    return result


@contextlib.contextmanager
def _serve(client: Client, name: str, *extra: str) -> Iterator[tuple[str, httpx.Client]]:
    """``ctloop serve name [extra…]`` in a child process on a free loopback port, stopped
    by SIGTERM."""
    import httpx

    from ctloop._internal.child import ctloop_child_server

    settings = client.settings

    def args(port: int) -> list[str]:
        return ["--store", settings.store_url(), "--artifacts", settings.artifacts_root(),
                "serve", name, "--port", str(port), "--poll-seconds", "0.5", *extra]  # fmt: skip

    with (
        ctloop_child_server(args, "/v2/health/ready", what="ctloop serve", timeout=120) as url,
        httpx.Client(timeout=30, limits=httpx.Limits(max_connections=THREADS)) as http,
    ):
        yield url, http


def _oip_body(record: dict[str, Any], datatypes: dict[str, str], request_id: str) -> dict[str, Any]:
    """One row as OIP columns, typed as the model's metadata says."""
    inputs = [
        {"name": name, "datatype": datatypes.get(name, "BYTES"), "shape": [1], "data": [value]}
        for name, value in record.items()
    ]
    return {"id": request_id, "inputs": inputs, "parameters": {"content_type": "pd"}}


def _send(
    http: httpx.Client,
    url: str,
    records: list[dict[str, Any]],
    protocol: str,
    result: ServingDemo,
    tag: str = "live",
) -> list[str | None]:
    """One request per record from a few threads; the prediction id of each (None if failed)."""
    datatypes: dict[str, str] = {}
    if protocol == "oip":  # what an OIP client does first: read the model's input types
        metadata = http.get(f"{url}/v2/models/{DEPLOYMENT}").json()
        datatypes = {i["name"]: i["datatype"] for i in metadata["inputs"]}

    def one(i: int) -> str | None:
        request_id = f"{tag}-{protocol}-{i}"
        if protocol == "plain":
            response = http.post(
                url + "/predict",
                json={"instances": [records[i]]},
                headers={"X-Request-Id": request_id},
            )
            ok = response.status_code == 200
            return response.json()["prediction_ids"][0] if ok else None
        response = http.post(
            f"{url}/v2/models/{DEPLOYMENT}/infer", json=_oip_body(records[i], datatypes, request_id)
        )
        ok = response.status_code == 200
        return response.json()["parameters"]["prediction_ids"] if ok else None

    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(one, range(len(records))))
    result.sent[protocol] += len(records)
    result.failed += sum(1 for i in ids if i is None)
    return ids


def _wait_for_revision(http: httpx.Client, url: str, revision: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while http.get(url + "/").json().get("revision") != revision:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the replica did not converge on revision {revision}")
        time.sleep(0.1)


def _metrics(text: str) -> dict[str, float]:
    """The figures the demo prints, from the Prometheus text of ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    from ctloop.serving.status import quantile

    out: dict[str, float] = {"requests": 0.0, "ok": 0.0, "log_rows": 0.0}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ctloop_requests_total":
                out["requests"] += sample.value
                if sample.labels.get("status") == "200":
                    out["ok"] += sample.value
            elif sample.name == "ctloop_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name == "ctloop_payload_log_rows_total":
                if sample.labels.get("kind") == "predictions":
                    out["log_rows"] += sample.value
            elif sample.name == "ctloop_model_load_seconds":
                out["load_seconds"] = max(out.get("load_seconds", 0.0), sample.value)
    merged = [[le, n] for le, n in sorted(buckets.items())]
    for q, key in ((0.5, "p50_ms"), (0.99, "p99_ms")):
        value = quantile(q, merged)
        if value is not None:
            out[key] = value * 1000
    return out
