"""The main job runs end to end on an embedded store and records what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ctloop
from ctloop.demo import run_demo
from ctloop.tracking.entities import RunStatus


def test_demo_versions_data_and_tracks_two_models(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(
        str(tmp_path / "store"),
        rows=3000,
        seed=1,
        say=lines.append,
        server=False,
        pipeline=False,
        serving=False,
    )
    client = ctloop.Client(store=str(tmp_path / "store"))
    version = client.datasets.get("churn@latest")
    assert version.version == 1 and version.row_count == 3000
    assert version.digest == result.dataset.digest
    runs = client.runs.search("churn").runs
    assert {r.name for r in runs} == {"demo-baseline", "demo-gbm"}
    for r in runs:
        assert r.status is RunStatus.FINISHED
        assert [i.dataset for i in r.inputs] == ["churn"]
        assert 0.6 < r.metrics["val_auc"] < 1.0
        assert [a.path for a in r.artifacts] == ["model", "report.json"]
    gbm = result.run_ids["gbm"]
    history = client.runs.metric_history(gbm, "val_auc")
    steps = [m.step for m in history]
    assert steps[:200] == list(range(1, 201)) and steps[200:] == [200]  # curve, then final
    assert result.best in ("baseline", "gbm")
    assert any("runs compare" in line for line in lines)
    # registered, promoted with a reason, loaded back identical, lineage to the data
    assert sorted(v.version for v in client.models.versions("churn")) == [1, 2]
    champion = client.models.get_version("churn@champion")
    assert champion.version == result.versions[result.best]
    assert champion.run_id == result.run_ids[result.best]
    (event,) = client.models.alias_history("churn", "champion")
    assert event.reason is not None and "val_auc" in event.reason
    assert result.reloaded_matches
    lineage = client.models.lineage("churn@champion")
    assert [(i.dataset, i.version) for i in lineage.inputs] == [("churn", 1)]


def test_demo_command_on_a_given_store_reuses_the_dataset_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    for _ in range(2):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctloop",
                "demo",
                "--store",
                str(store),
                "--rows",
                "1500",
                "--no-server",
                "--no-pipeline",
                "--no-serving",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        assert "churn@1" in out.stdout  # same seed, same bytes: no second version
    client = ctloop.Client(store=str(store))
    assert len(client.runs.search("churn").runs) == 4


def test_demo_runs_the_same_job_through_a_real_server(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(
        str(tmp_path / "store"), rows=1500, seed=2, say=lines.append, pipeline=False, serving=False
    )
    remote = result.remote
    assert remote is not None and remote.store.startswith("http://127.0.0.1:")
    assert remote.reloaded_matches and remote.dataset.digest == result.dataset.digest
    # the served store holds its own copy of everything, written only through the API
    served = ctloop.Client(store=str(tmp_path / "store" / "served"))
    assert served.models.get_version("churn@champion").version == remote.versions[remote.best]
    assert {r.name for r in served.runs.search("churn").runs} == {"demo-baseline", "demo-gbm"}
    assert served.datasets.get("churn@1").digest == result.dataset.digest
    assert any(line.startswith("remote ") for line in lines)


def test_demo_runs_the_training_pipeline_cold_cached_and_on_new_data(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(
        str(tmp_path / "store"), rows=1500, seed=3, say=lines.append, server=False, serving=False
    )
    assert result.pipeline is not None
    cold, cached, new_data = result.pipeline.runs
    assert {s.status.value for s in cold.steps} == {"COMPLETED"}
    assert cached.cache_hits == len(cached.steps) == 8  # unchanged: nothing ran
    ran = {s.name for s in new_data.steps if not s.cache_hit}
    assert ran == {s.name for s in new_data.steps} - {"dataset_suite"}
    client = ctloop.Client(store=str(tmp_path / "store"))
    assert client.datasets.get("churn@latest").version == 2
    assert client.runs.get(new_data.run_id).inputs[0].version == 2
    assert any("8/8 cached" in line for line in lines)
    assert any(f"pipeline show {new_data.id}" in line for line in lines)
    # the gate's verdict decided registration: a version exists only if a gate passed
    passed = [r.output("gate")["passed"] for r in (cold, new_data)]
    challengers = [v for v in client.models.versions("churn") if "challenger" in v.aliases]
    assert len(challengers) == (1 if any(passed) else 0)


def test_demo_serves_the_champion_then_a_canary_then_catches_a_drift(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(
        str(tmp_path / "store"),
        rows=3000,
        seed=2,
        say=lines.append,
        server=False,
        pipeline=False,
        loop=False,  # the loop stage has a test of its own
    )
    served = result.serving
    assert served is not None
    assert (served.sent["plain"], served.sent["oip"], served.failed) == (600, 100, 0)
    assert served.feedback == 100
    assert served.metrics["requests"] == served.metrics["ok"] == 300  # read before the canary
    assert served.metrics["log_rows"] == 300 and served.metrics["p99_ms"] > 0
    # 400 requests after the canary went on: about 10% of them to the other version
    assert sum(served.split.values()) == 400
    assert 10 <= served.split.get("canary", 0) <= 80, served.split
    assert served.logged == 700 and served.labelled == 100
    client = ctloop.Client(store=str(tmp_path / "store"))
    history = client.deployments.history("churn-api")
    canary = next(e for e in history if e.revision == 2)
    assert [(r.version, r.weight) for r in canary.routes] == [
        (served.champion, 90),
        (served.canary, 10),
    ]
    assert any(line.startswith("canary ") for line in lines)

    # monitoring: quiet before the drift point, every injected feature named after it
    from ctloop.demo_monitoring import DRIFTED, ROWS

    watched = result.monitoring
    assert watched is not None and watched.ok and watched.failed == 0
    assert watched.flagged_before == []
    assert set(DRIFTED) <= set(watched.flagged_after)
    assert watched.before is not None and watched.after is not None
    assert watched.before.report.window["rows"] == watched.after.report.window["rows"] == ROWS
    # the alert went to the webhook receiver, and is stored
    assert [body["deployment"] for body in watched.webhook] == ["churn-api"]
    stored = client.monitors.alerts("churn-api")
    assert [d.alert.id for d in stored] == [d.alert.id for d in watched.after.deliveries]
    # both reports are stored and their pages written, self-contained
    assert [r.id for r in client.monitors.reports("churn-api")] == [
        watched.after.report.id,
        watched.before.report.id,
    ]
    page = Path(str(watched.after.html_path))
    assert page.suffix == ".html" and page.is_file()
    assert "http://" not in page.read_text() and "https://" not in page.read_text()
    # the server exported the newest report as gauges
    assert watched.gauges["drift_share"] == pytest.approx(
        watched.after.report.dataset_drift["drifted_share"]
    )
    assert any(line.startswith("after ") and "monthly_charges" in line for line in lines)


def test_demo_closes_the_loop_then_catches_broken_candidates(tmp_path: Path) -> None:
    from ctloop.demo_loop import PATH_1, PATH_2, PATH_3
    from ctloop.loop.canary import REJECTED_TAG

    lines: list[str] = []
    result = run_demo(
        str(tmp_path / "store"), rows=3000, seed=2, say=lines.append, server=False, pipeline=False
    )
    loop = result.loop
    assert loop is not None, "\n".join(lines)
    assert loop.kinds() == [*PATH_1, *PATH_2, *PATH_3], "\n".join(lines)
    changes = [
        f"{e.from_state.value}>{e.to_state.value}"
        for e in loop.events
        if e.from_state != e.to_state or e.kind == "canary_step"
    ]
    assert changes == [
        "STABLE>TRIGGERED", "TRIGGERED>TRAINING", "TRAINING>GATED",
        "GATED>CANARY", "CANARY>CANARY", "CANARY>CANARY", "CANARY>PROMOTED", "PROMOTED>STABLE",
        "STABLE>GATED", "GATED>CANARY", "CANARY>ROLLED_BACK", "ROLLED_BACK>STABLE",
        "STABLE>TRIGGERED", "TRIGGERED>TRAINING", "TRAINING>REJECTED", "REJECTED>STABLE",
    ]  # fmt: skip
    client = ctloop.Client(store=str(tmp_path / "store"))
    events = loop.events
    # path 1: the drift trigger read the monitor's report; retrained on the fresh version
    triggered = events[0]
    assert triggered.kind == "triggered" and triggered.evidence["trigger"] == "drift"
    assert triggered.links["report_ids"] == [client.monitors.reports("churn-api")[0].id]
    started = [e.evidence["dataset"] for e in events if e.kind == "training_started"]
    assert started == [loop.fresh, loop.corrupted]
    promoted = loop.promoted
    assert promoted is not None and promoted != loop.champion_before
    steps = [e.summary for e in events if e.kind == "canary_step"]
    assert [s.split("canary step ")[1][:11] for s in steps[:3]] == [
        "1/3 (10%): ", "2/3 (50%): ", "3/3 (100%):",
    ]  # fmt: skip
    assert steps[1].startswith("analysis passed") and steps[2].startswith("analysis passed")
    assert client.models.get_version("churn@champion").version == promoted
    moved = client.models.alias_history("churn", "champion")[-1]
    assert (moved.from_version, moved.to_version) == (loop.champion_before, promoted)
    assert "passed its canary" in (moved.reason or "")
    lineage = client.models.lineage(f"churn/{promoted}")
    assert loop.fresh in [f"{i.dataset}@{i.version}" for i in lineage.inputs]
    # path 2: forced past the gate, caught by the canary analysis, rolled back and tagged
    forced = loop.forced
    assert forced is not None and forced not in (promoted, loop.champion_before)
    reason = client.models.get_version(("churn", forced)).tags[REJECTED_TAG]
    assert reason.startswith(f"ctloop loop: canary of churn/{forced} rolled back: 2/2 analyses")
    rolled = next(e for e in events if e.kind == "rolled_back")
    assert rolled.links["model_version"] == f"churn/{forced}"
    assert any(c["status"] == "failed" for c in rolled.evidence["checks"])
    forcing = next(e for e in events if e.to_state.value == "GATED" and e.kind == "note")
    assert "forced through the gate by the demo" in forcing.summary
    # path 3: the retrain on shuffled labels failed the gate and registered nothing
    gate_failed = next(e for e in events if e.kind == "gate_failed")
    assert gate_failed.evidence["gate"]["passed"] is False
    assert "model_version" not in gate_failed.links
    assert loop.versions_after == loop.versions_before_path_3
    assert set(loop.rejected_reasons) == {forced}
    # the end: the promoted version takes all traffic, as champion
    routes = client.deployments.get("churn-api").routes
    assert [(r.version, r.weight, r.variant) for r in routes] == [(promoted, 100, "champion")]
    assert loop.failed == 0 and loop.labels > 0
    assert loop.ok
    assert Path(loop.policy_path).read_text().startswith("# The continuous-training policy")
    assert any(line.startswith("timeline ") for line in lines)
    assert any("loop explain" in line for line in lines)
