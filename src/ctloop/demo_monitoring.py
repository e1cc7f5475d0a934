"""The monitoring stage of the main job: drift injected at a known row, caught and named.

1. the deployment ``churn-api`` goes back to 100 % champion, and gets a monitor: the
   champion's training data frozen as the reference, a window of the newest rows, alert
   sinks that log and POST to a webhook receiver the demo runs on a loopback port;
2. ``ctloop serve churn-api`` starts again; live customers from :mod:`ctloop.datasets.churn`
   are scored, and from row :data:`ROWS` on a covariate drift changes three features
   (:data:`DRIFTED`);
3. the monitor runs on the window before the drift point (nothing should drift) and on the
   window after it (the three features should), writes each report's HTML page and sends
   the alerts that fire;
4. the server picks the newest report up and exports it as Prometheus gauges.

:attr:`MonitoringDemo.ok` says whether the monitor saw exactly what was injected.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.demo_serving import DEPLOYMENT, ServingDemo, _send, _serve

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.monitoring.service import MonitorRun

Say = Callable[[str], None]

#: Rows served before the drift starts, and after it.
ROWS = 600
#: The covariate drift injected at row :data:`ROWS` (see :class:`ctloop.datasets.churn.Drift`).
DRIFTED: dict[str, dict[str, float]] = {
    "monthly_charges": {"shift": 25.0},
    "days_since_last_login": {"scale": 2.5},
    "contract": {"month-to-month": 0.85},
}


@dataclass
class MonitoringDemo:
    """What the monitoring stage did, for the summary and tests."""

    before: MonitorRun | None = None
    after: MonitorRun | None = None
    webhook: list[dict[str, Any]] = field(default_factory=list)  # bodies the receiver got
    gauges: dict[str, float] = field(default_factory=dict)
    failed: int = 0

    @property
    def flagged_before(self) -> list[str]:
        return self.before.report.drifted_columns if self.before else []

    @property
    def flagged_after(self) -> list[str]:
        return self.after.report.drifted_columns if self.after else []

    @property
    def ok(self) -> bool:
        """The monitor was quiet before the drift point and named every drifted feature."""
        return (
            self.after is not None
            and not self.flagged_before
            and set(DRIFTED) <= set(self.flagged_after)
            and bool(self.after.deliveries)
            and bool(self.webhook)
        )


def run_monitoring_stage(client: Client, *, seed: int, say: Say) -> MonitoringDemo | None:
    """Monitor ``churn-api`` through a drift injected at a known row (see above)."""
    from ctloop.datasets import churn
    from ctloop.errors import NotFound
    from ctloop.monitoring.service import create_monitor, run_monitor

    try:
        champion = client.models.get_version("churn@champion").version
        client.deployments.set_traffic(
            DEPLOYMENT, {champion: 100}, reason="demo: the champion alone, to be monitored"
        )
    except NotFound:
        say("monitoring skipped: there is no churn@champion deployment to monitor")
        return None
    result = MonitoringDemo()
    reports = Path(client.settings.store_folder()) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    with _webhook_receiver(result.webhook) as hook:
        monitor = create_monitor(
            client,
            DEPLOYMENT,
            reference="churn@champion",
            window=f"last:{ROWS}",
            sinks=[{"kind": "log"}, {"kind": "webhook", "url": hook}],
            replace=True,
        )
        features = len(monitor.features or monitor.profile.get("columns", {})) or "all"
        say(
            f"monitor    {DEPLOYMENT}: reference churn/{champion}'s training data "
            f"({features} columns profiled), window of the newest {ROWS} rows, alerts to the "
            f"log and a webhook at {hook}"
        )
        live = churn.generate(
            n_rows=2 * ROWS,
            seed=seed + 2000,
            drift=churn.Drift(start=ROWS, kind="covariate", features=DRIFTED),
        )
        records = json.loads(live[list(churn.FEATURES)].to_json(orient="records"))
        sent = ServingDemo()
        extra = ("--log-flush-seconds", "0.2", "--monitor-poll-seconds", "0.3")
        began = _utc(time.time())
        with _serve(client, DEPLOYMENT, *extra) as (url, http):
            _send(http, url, records[:ROWS], "plain", sent, tag="before")
            _wait_logged(client, began, ROWS)
            drift_point = time.time()
            say(
                f"traffic    {ROWS} customers as they were, then {ROWS} with a drift in "
                f"{', '.join(DRIFTED)} (from row {ROWS})"
            )
            result.before = run_monitor(client, DEPLOYMENT, until=_utc(drift_point), html=reports)
            _send(http, url, records[ROWS:], "plain", sent, tag="after")
            _wait_logged(client, began, 2 * ROWS)
            result.after = run_monitor(client, DEPLOYMENT, html=reports)
            result.gauges = _wait_for_gauges(http, url, result.after.report.created_at.timestamp())
        result.failed = sent.failed
    _tell(result, say)
    return result


def _tell(result: MonitoringDemo, say: Say) -> None:
    before, after = result.before, result.after
    assert before is not None and after is not None
    flagged = result.flagged_before
    say(
        f"before     {before.report.window.get('rows')} rows before the drift point: "
        + (f"drift in {', '.join(flagged)}" if flagged else "no feature drifted")
    )
    columns = {c["column"]: c for c in after.report.dataset_drift.get("columns", [])}
    named = [
        f"{name} ({columns[name]['method']} {columns[name]['score']:.3g} vs "
        f"{columns[name]['threshold']:.3g})"
        for name in result.flagged_after
    ]
    share = after.report.dataset_drift.get("drifted_share", 0.0)
    say(f"after      drift in {', '.join(named) or 'nothing'}; {share:.0%} of the features drifted")
    knock_on = [c for c in result.flagged_after if c not in DRIFTED]
    if knock_on:
        say(
            f"           ({', '.join(knock_on)}: not changed directly, but the churn generator "
            "draws them from the changed ones, e.g. tenure from the contract)"
        )
    missed = sorted(set(DRIFTED) - set(result.flagged_after))
    if missed:
        say(f"           MISSED: {', '.join(missed)} drifted but the monitor did not say so")
    for delivery in after.deliveries:
        sinks = ", ".join(f"{o.sink} {'ok' if o.ok else 'FAILED'}" for o in delivery.outcomes)
        say(f"alert      [{delivery.alert.severity}] {delivery.alert.message} -> {sinks}")
    say(f"webhook    the receiver got {len(result.webhook)} alert(s) as JSON")
    say(f"report     {after.html_path}")
    g = result.gauges
    if g:
        say(
            f"gauges     ctloop_dataset_drift_share {g.get('drift_share', float('nan')):.2f}, "
            + ", ".join(
                f'ctloop_estimated_performance{{metric="{k[10:]}"}} {v:.3f}'
                for k, v in sorted(g.items())
                if k.startswith("estimated:")
            )
        )


def _utc(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


def _wait_logged(client: Client, since: Any, rows: int, timeout: float = 30.0) -> None:
    """Wait until the server's log segments hold ``rows`` rows logged ``since``."""
    deadline = time.monotonic() + timeout
    while len(client.deployments.predictions(DEPLOYMENT, since=since)) < rows:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the prediction log did not reach {rows} rows in {timeout} s")
        time.sleep(0.1)


def _wait_for_gauges(http: Any, url: str, built: float, timeout: float = 20.0) -> dict[str, float]:
    """The server's monitoring gauges once they show the report built at ``built``."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(http.get(url + "/metrics").text):
            for sample in family.samples:
                if sample.name == "ctloop_monitor_report_timestamp_seconds":
                    out["built"] = sample.value
                elif sample.name == "ctloop_dataset_drift_share":
                    out["drift_share"] = sample.value
                elif sample.name == "ctloop_estimated_performance":
                    out[f"estimated:{sample.labels['metric']}"] = sample.value
        if abs(out.get("built", 0.0) - built) < 1e-3:
            return out
        time.sleep(0.1)
    return {}


@contextlib.contextmanager
def _webhook_receiver(into: list[dict[str, Any]]) -> Iterator[str]:
    """An HTTP server on a loopback port that keeps every JSON body POSTed to it."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            with contextlib.suppress(ValueError):
                into.append(json.loads(self.rfile.read(length) or b"null"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="demo-webhook", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()
