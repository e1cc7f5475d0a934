"""``ctloop monitors``, ``ctloop monitor run|reports|show`` and ``ctloop alerts`` as a person
runs them (subprocess), on a real store holding the demo's churn model, a deployment and a
prediction log written by the real ``PayloadLog`` writer, with drift injected in three
named features. Alerts go to a real HTTP receiver on a loopback port."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.datasets import churn

DEPLOYMENT = "churn-api"
SEED = 11
#: Leaf features of the churn simulation: shifting them moves no other feature.
DRIFTED = {"days_since_last_login", "data_usage_gb", "payment_method"}
DRIFT = churn.Drift(
    start=0,
    kind="covariate",
    features={
        "days_since_last_login": {"shift": 10.0},
        "data_usage_gb": {"scale": 1.6},
        "payment_method": {"electronic-check": 0.8},
    },
)


def ctl(*args: str, store: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTLOOP_STORE": str(store), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def ok(*args: str, store: str | Path) -> str:
    out = ctl(*args, store=store)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out.stdout


def fails(*args: str, store: str | Path) -> str:
    """Run a command that must fail with exit 1, one ``error:`` line and no traceback."""
    out = ctl(*args, store=store)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stderr.startswith("error: "), out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr
    return " ".join(out.stderr.split())  # as one line, whatever the terminal wrapped


# --- the store ------------------------------------------------------------------------------


def _log_rows(model: Any, rows: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """What the inference server logs for ``rows`` (docs/logs.md), half a second apart."""
    pred, proba = model.predict_with_proba(rows)
    n = len(rows)
    out = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "request_id": [f"r{i}" for i in range(n)],
            "timestamp": start + pd.to_timedelta(np.arange(n) * 0.5, unit="s"),
            "deployment": DEPLOYMENT,
            "model_version": "1",
            "variant": "champion",
            "prediction": pred,
            "latency_ms": 3.0,
            "status": "ok",
        }
    )
    for name in churn.FEATURES:
        out[f"f.{name}"] = rows[name].to_numpy()
    for j, cls in enumerate(model.classes):
        out[f"p.{cls}"] = proba[:, j]
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn/1 (the demo's model) trained on logged training data, with evaluation data
    for label-free estimation; the deployment churn-api serving it; 1500 drifted
    predictions logged in the last 20 minutes."""
    from ctloop import Client
    from ctloop.demo import _baseline, _features
    from ctloop.serving.payload_log import PayloadLog

    folder = tmp_path_factory.mktemp("monitors-cli")
    store = folder / "store"
    data = churn.generate(4_000, seed=SEED)
    train, held_out = data.iloc[:3_000], data.iloc[3_000:]
    train.to_parquet(folder / "train.parquet", index=False)
    held_out.to_parquet(folder / "eval.parquet", index=False)
    with Client(store=str(store)) as client:
        train_version = client.datasets.add(folder / "train.parquet", "churn-train")
        eval_version = client.datasets.add(folder / "eval.parquet", "churn-eval")
        run = client.runs.create("churn", capture_code=False)
        client.runs.log_input(run.id, train_version, "training")
        client.runs.log_input(run.id, eval_version, "evaluation")
        x = _features(train)
        client.runs.log_model(run.id, _baseline(x).fit(x, train[churn.TARGET]), input_example=x)
        client.models.register(run.id, name="churn")
        client.models.set_alias("churn", "champion", 1)
        client.deployments.create(DEPLOYMENT, "churn@champion")
        live = churn.generate(1_500, seed=SEED, offset=20_000, drift=DRIFT)
        start = pd.Timestamp.now(tz="UTC") - pd.Timedelta("20min")
        rows = _log_rows(client.models.load("churn/1"), live, start)
        root = client.settings.artifacts_root()
        with PayloadLog(root, DEPLOYMENT, "predictions", replica="r1") as log:
            log.append(rows)
        assert len(client.deployments.predictions(DEPLOYMENT)) == 1_500
    return store


@pytest.fixture
def store(base: Path, tmp_path: Path) -> Path:
    """A copy of the module's store, for one test to change."""
    copy = tmp_path / "store"
    shutil.copytree(base, copy)
    return copy


class Receiver:
    """An HTTP server on a loopback port that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.url = ""

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for at, body in self.posts if at == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            got.posts.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


RULES_YAML = """\
# alert when a quarter of the features drift, and when data usage moves at all
- {kind: drift_share_above, threshold: 0.2, severity: critical}
- kind: feature_score_above
  feature: data_usage_gb
  threshold: 0.05
"""


def self_contained(page: str) -> bool:
    return (
        page.startswith("<!DOCTYPE html>")
        and "http://" not in page
        and "https://" not in page
        and not re.search(r"\b(src|href)\s*=", page)
    )


# --- the whole loop ------------------------------------------------------------------------


def test_create_run_report_and_alert_end_to_end(
    store: Path, tmp_path: Path, receiver: Receiver
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML, encoding="utf-8")
    created = ok(
        "monitors", "create", DEPLOYMENT, "--reference", "churn@champion", "--window", "1h",
        "--rules", str(rules), "--sink", "log", "--sink", f"webhook={receiver.url}/hook",
        "--sink", f"slack={receiver.url}/slack/T000/B000/secret", "--cooldown", "1h",
        store=store,
    )  # fmt: skip
    assert "created the monitor of churn-api: reference churn/1 (given as churn@champion)" in (
        created
    )
    assert "churn-train@1 profiled (3000 rows, 13 columns)" in created
    assert "12 feature(s) tested and the prediction; window 1h" in created
    assert "label-free estimation: on (fitted on 1000 rows of churn-eval@1" in created
    assert "feature_score_above 0.05 (feature=data_usage_gb) warning" in created
    assert "secret" not in created  # a Slack URL's path is its secret: shown by host only

    listed = ok("monitors", "list", store=store)
    assert re.search(r"churn-api\s+churn/1\s+1h\s+0.5\s+2\s+log, webhook\(http://127", listed)
    shown = ok("monitors", "show", DEPLOYMENT, "--json", store=store)
    view = json.loads(shown)
    assert view["reference"] == "churn/1" and view["source"] == "churn-train@1"
    kinds = {c["name"]: c["kind"] for c in view["columns"]}
    assert kinds["age"] == "numeric" and kinds["contract"] == "categorical"
    assert len(kinds) == 13 and view["estimation"]["label_column"] == "churned"
    assert '"sample"' not in shown and "probabilities" not in shown  # no profile dump
    assert re.search(
        r"data_usage_gb\s+numeric\s+3000", ok("monitors", "show", DEPLOYMENT, store=store)
    )

    out = ctl("monitor", "run", DEPLOYMENT, "-o", "reports", store=store)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "drift: 3 of 12 features drifted (25%; the dataset drifts at 50%): no dataset drift" in (
        text
    )
    for name in DRIFTED:
        assert re.search(rf"\n  {name}: (wasserstein|jensenshannon) [\d.]+ vs threshold 0.1", text)
    assert "prediction drift: jensenshannon" in text
    assert "realised performance: no labels in the window" in text
    assert "estimated performance (label-free): accuracy" in text
    assert "health: version 1 (champion): 1500 rows, p50 3 ms, p99 3 ms, error rate 0.0%" in text
    assert "alerts: 2 sent" in text
    assert f"-> log(ctloop.alerts) ok, webhook({receiver.url}) ok, slack({receiver.url}) ok" in (
        text
    )
    report_id = re.search(r"^report ([0-9a-f]{32}) of churn-api", text, re.M)
    html = re.search(r"^html: (.+)$", text, re.M)
    assert report_id and html
    page = Path(html.group(1))
    assert page.parent == tmp_path / "reports" and page.suffix == ".html"
    html_text = page.read_text(encoding="utf-8")
    assert self_contained(html_text)
    assert "<h2>Drift scores</h2>" in html_text and "Performance over time" in html_text
    assert 'aria-label="histogram of data_usage_gb"' in html_text

    # the webhook got the alerts as JSON, the Slack-compatible receiver as Slack messages
    hooks = receiver.bodies("/hook")
    assert sorted(b["kind"] for b in hooks) == ["drift_share_above", "feature_score_above"]
    assert {b["deployment"] for b in hooks} == {DEPLOYMENT}
    assert {b["report_id"] for b in hooks} == {report_id.group(1)}
    slack = receiver.bodies("/slack/T000/B000/secret")
    assert len(slack) == 2 and all("data_usage_gb" in b["text"] for b in slack)

    alerts = ok("alerts", "list", store=store)
    assert "critical" in alerts and "feature_score_above" in alerts
    assert f"webhook({receiver.url}) ok" in alerts and "secret" not in alerts
    assert (
        len(json.loads(ok("alerts", "list", DEPLOYMENT, "--since", "1h", "--json", store=store)))
        == 2
    )
    assert "no alerts for churn-api in that time" in ok(
        "alerts", "list", DEPLOYMENT, "--since", "2099-01-01", store=store
    )

    # within the cooldown the same findings stay quiet: nothing new is sent or stored
    again = ok("monitor", "run", DEPLOYMENT, "-o", "reports", store=store)
    assert "alerts: 0 sent, 2 kept quiet by the cooldown" in again
    assert len(receiver.posts) == 4
    assert len(json.loads(ok("alerts", "list", "--json", store=store))) == 2

    # both reports are stored and listed, newest first; a stored one is rendered again
    reports = json.loads(ok("monitor", "reports", DEPLOYMENT, "--json", store=store))
    assert len(reports) == 2 and reports[1]["id"] == report_id.group(1)
    assert set(reports[1]["drifted_features"]) == DRIFTED and reports[1]["rows"] == 1_500
    table = ok("monitor", "reports", DEPLOYMENT, store=store)
    assert report_id.group(1) in table and "25%" in table
    rewritten = ok("monitor", "show", report_id.group(1), "-o", "again.html", store=store)
    assert f"html: {tmp_path / 'again.html'}" in rewritten
    assert "[critical] drift share 0.25 is above 0.2" in rewritten  # the alerts it raised
    assert self_contained((tmp_path / "again.html").read_text(encoding="utf-8"))
    body = json.loads(ok("monitor", "show", report_id.group(1), "--json", store=store))
    assert body["id"] == report_id.group(1) and body["window"]["rows"] == 1_500

    # --no-alerts and --json
    quiet = json.loads(ok("monitor", "run", DEPLOYMENT, "--no-alerts", "--json", store=store))
    assert quiet["alerts"] == [] and quiet["summary"]["rows"] == 1_500
    assert Path(quiet["html_path"]).parent == tmp_path / "ctloop-reports"  # the default folder

    ok("monitors", "delete", DEPLOYMENT, store=store)
    assert "no monitors yet" in ok("monitors", "list", store=store)
    assert len(json.loads(ok("monitor", "reports", DEPLOYMENT, "--json", store=store))) == 3


def test_features_and_a_last_rows_window(store: Path) -> None:
    created = ok(
        "monitors", "create", DEPLOYMENT, "--features", "age,data_usage_gb",
        "--features", "contract", "--window", "last:500", "--json", store=store,
    )  # fmt: skip
    assert json.loads(created)["features"] == ["age", "data_usage_gb", "contract"]
    out = ok("monitor", "run", DEPLOYMENT, "--json", store=store)
    report = json.loads(out)["report"]
    assert report["window"]["rows"] == 500 and report["window"]["window"] == "last:500"
    tested = [c["column"] for c in report["dataset_drift"]["columns"]]
    assert sorted(tested) == ["age", "contract", "data_usage_gb"]
    assert [c["column"] for c in report["dataset_drift"]["columns"] if c["drifted"]] == [
        "data_usage_gb"
    ]


def test_last_rows_and_a_multivariate_run(store: Path) -> None:
    created = json.loads(
        ok("monitors", "create", DEPLOYMENT, "--last", "800", "--json", store=store)
    )
    assert created["window"] == "last:800"
    out = ok("monitor", "run", DEPLOYMENT, "--multivariate", "--no-alerts", store=store)
    assert "multivariate: a domain classifier tells the window from the reference" in out
    report = json.loads(ok("monitor", "run", DEPLOYMENT, "--multivariate", "--json", store=store))
    multi = report["report"]["multivariate"]
    assert multi["drifted"] and multi["current_rows"] == 800
    top = {f["feature"] for f in multi["importances"][:3]}
    assert top == {"days_since_last_login", "data_usage_gb", "payment_method"}, multi


# --- errors ---------------------------------------------------------------------------------


def test_errors_are_one_line_saying_what_to_do(store: Path, tmp_path: Path) -> None:
    assert "no deployment named 'nope'" in fails("monitor", "run", "nope", store=store)
    assert "no deployment named 'nope'" in fails("monitors", "create", "nope", store=store)
    for args in (("monitor", "run"), ("monitors", "show"), ("monitors", "delete")):
        msg = fails(*args, DEPLOYMENT, store=store)
        assert "deployment 'churn-api' has no monitor yet; create one with: ctloop monitors " \
            "create churn-api --reference MODEL@ALIAS" in msg, msg  # fmt: skip
    assert "no reports of churn-api yet" in ok("monitor", "reports", DEPLOYMENT, store=store)
    assert "no alerts" in ok("alerts", "list", store=store)

    msg = fails("monitors", "create", DEPLOYMENT, "--window", "5 parsecs", store=store)
    assert "window '5 parsecs' is not a duration" in msg and "e.g. 1h or 30m" in msg
    assert "last:N" in fails("monitors", "create", DEPLOYMENT, "--window", "last5", store=store)
    assert "drift_share=1.5" in fails(
        "monitors", "create", DEPLOYMENT, "--drift-share", "1.5", store=store
    )
    assert "cooldown 'soon'" in fails(
        "monitors", "create", DEPLOYMENT, "--cooldown", "soon", store=store
    )
    assert "no model named 'other'" in fails(
        "monitors", "create", DEPLOYMENT, "--reference", "other@1", store=store
    )

    missing = tmp_path / "missing.yaml"
    assert f"cannot read rules file '{missing}'" in fails(
        "monitors", "create", DEPLOYMENT, "--rules", str(missing), store=store
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("- {kind: drift_share_above, threshold: [", encoding="utf-8")
    assert f"rules file '{broken}' is not valid YAML" in fails(
        "monitors", "create", DEPLOYMENT, "--rules", str(broken), store=store
    )
    bad_json = tmp_path / "rules.json"
    bad_json.write_text('[{"kind": "drift_share_above",', encoding="utf-8")
    assert f"rules file '{bad_json}' is not valid JSON" in fails(
        "monitors", "create", DEPLOYMENT, "--rules", str(bad_json), store=store
    )
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("- {kind: drift_everywhere, threshold: 1}\n", encoding="utf-8")
    msg = fails("monitors", "create", DEPLOYMENT, "--rules", str(unknown), store=store)
    assert f"rules file '{unknown}': rules[0].kind 'drift_everywhere' is not a rule" in msg
    assert "drift_share_above" in msg  # the kinds there are

    assert "--sink 'email=ops@example.com': use log, webhook=URL or slack=URL" in fails(
        "monitors", "create", DEPLOYMENT, "--sink", "email=ops@example.com", store=store
    )
    assert "--sink 'webhook=ftp://x': webhook url 'ftp://x' is not an http://" in fails(
        "monitors", "create", DEPLOYMENT, "--sink", "webhook=ftp://x", store=store
    )
    assert "use log, webhook=URL or slack=URL" in fails(
        "monitors", "create", DEPLOYMENT, "--sink", "slack=", store=store
    )
    assert ok("monitors", "list", store=store).startswith("no monitors yet")  # nothing stored

    ok("monitors", "create", DEPLOYMENT, store=store)
    assert "already has a monitor; pass --replace" in fails(
        "monitors", "create", DEPLOYMENT, store=store
    )
    msg = fails("monitor", "run", DEPLOYMENT, "--until", "2020-01-01", store=store)
    assert "no predictions logged for churn-api between 2019-12-31T23:00:00+00:00 and " \
        "2020-01-01T00:00:00+00:00" in msg and "widen the window" in msg  # fmt: skip
    assert "no reports of churn-api yet" in ok("monitor", "reports", DEPLOYMENT, store=store)
    assert not (tmp_path / "ctloop-reports").exists()  # no page for an empty window
    assert "--until='yesterday' is not a date or time" in fails(
        "monitor", "run", DEPLOYMENT, "--until", "yesterday", store=store
    )
    assert "no report with id 'abc'" in fails("monitor", "show", "abc", store=store)
    assert "--since 'lately'" in fails("alerts", "list", "--since", "lately", store=store)
    out = ctl("monitors", "create", DEPLOYMENT, "--drift-share", "half", store=store)
    assert out.returncode == 2 and "Traceback" not in out.stderr  # a usage error, as elsewhere


# --- the HTTP backend -----------------------------------------------------------------------


def test_the_commands_work_against_a_server(store: Path, receiver: Receiver) -> None:
    from ctloop.testing import running_server

    with running_server(store) as url:
        created = ok(
            "monitors", "create", DEPLOYMENT, "--reference", "churn/1",
            "--sink", f"webhook={receiver.url}/remote", store=url,
        )  # fmt: skip
        assert "reference churn/1" in created and "label-free estimation: on" in created
        text = ok("monitor", "run", DEPLOYMENT, store=url)
        assert all(f"  {name}: " in text for name in DRIFTED)
        assert f"webhook({receiver.url}) ok" in text
        [summary] = json.loads(ok("monitor", "reports", DEPLOYMENT, "--json", store=url))
        assert set(summary["drifted_features"]) == DRIFTED
        assert summary["id"] in ok("monitor", "show", summary["id"], store=url)
        assert "drift_share_above" in ok("alerts", "list", DEPLOYMENT, store=url)
        assert "churn-api" in ok("monitors", "list", store=url)
    assert [b["kind"] for b in receiver.bodies("/remote")] == ["drift_share_above"]
