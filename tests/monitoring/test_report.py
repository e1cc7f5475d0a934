"""Reports: drift gathered from churn data, JSON round trip, offline HTML, the CLI."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.datasets import churn
from ctloop.errors import InvalidInput
from ctloop.monitoring.estimation import EstimatedPerformance, MetricEstimate
from ctloop.monitoring.html import render_html
from ctloop.monitoring.performance import WindowPerformance
from ctloop.monitoring.report import Report, build_report, severity


@pytest.fixture(scope="module")
def windows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """3000 reference rows, then 3000 rows whose ``age`` moved up by ten years."""
    shift = churn.Drift(start=3000, kind="covariate", features={"age": {"shift": 10.0}})
    df = churn.generate(6000, seed=0, drift=[shift])
    return df.iloc[:3000].reset_index(drop=True), df.iloc[3000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def report(windows: tuple[pd.DataFrame, pd.DataFrame]) -> Report:
    return build_report(*windows)


def ctloop_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args], capture_output=True, text=True, timeout=120
    )


def test_a_shifted_feature_is_named_first(report: Report) -> None:
    assert report.drifted_columns[0] == "age"
    tested = {c["column"] for c in report.dataset_drift["columns"]}
    assert set(churn.FEATURES) <= tested
    # the id and the time are not features; the time gives the windows' bounds
    assert "customer_id" in report.dataset_drift["skipped"]
    assert "event_time" not in tested
    assert report.reference["rows"] == report.window["rows"] == 3000
    assert report.window["start"] == "2026-01-03T02:00:00+00:00"


def test_an_unshifted_window_does_not_drift(windows: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, _ = windows
    result = build_report(ref.iloc[:1500], ref.iloc[1500:], columns=churn.FEATURES)
    assert result.drifted_columns == []
    assert not result.drifted


def test_histograms_share_the_reference_bins(report: Report, windows: tuple) -> None:
    ref, cur = windows
    hist = {h["column"]: h for h in report.histograms}
    age = hist["age"]
    assert age["kind"] == "numeric"
    assert len(age["reference"]) == len(age["current"]) == len(age["edges"]) + 1
    assert sum(age["reference"]) == ref["age"].notna().sum()
    assert sum(age["current"]) == cur["age"].notna().sum()
    # the shift moves current mass into the upper bins of the reference
    half = len(age["edges"]) // 2
    assert sum(age["current"][half:]) > sum(age["reference"][half:])
    contract = hist["contract"]
    assert contract["kind"] == "categorical"
    assert dict(zip(contract["categories"], contract["reference"], strict=True)) == {
        str(k): v for k, v in ref["contract"].value_counts().items()
    }


def test_prediction_drift_is_reported_apart(windows: tuple) -> None:
    ref, cur = (w.assign(prediction=w["churned"]) for w in windows)
    result = build_report(ref, cur)
    assert result.prediction_drift is not None
    assert result.prediction_drift["column"] == "prediction"
    assert "prediction" not in {c["column"] for c in result.dataset_drift["columns"]}


def test_json_round_trip_is_plain(windows: tuple) -> None:
    ref, cur = windows
    cur = cur.copy()
    cur["age"] = np.nan  # an empty window scores NaN, which JSON spells null
    start = datetime(2026, 1, 3, tzinfo=UTC)
    realised = [
        WindowPerformance(
            start,
            start + timedelta(hours=1),
            "binary",
            100,
            80,
            0.8,
            1.0,
            2.0,
            {"accuracy": 0.9, "roc_auc": math.nan},
        )
    ]
    estimate = MetricEstimate("accuracy", 0.85, 0.02, 0.81, 0.89, 0.9)
    result = build_report(
        ref,
        cur,
        realised=realised,
        estimated=EstimatedPerformance(3000, 2.0, {"accuracy": estimate}),
    )
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = Report.from_dict(json.loads(text))
    assert back.to_dict() == result.to_dict()
    age = next(c for c in back.dataset_drift["columns"] if c["column"] == "age")
    assert age["score"] is None and age["drifted"] is False
    assert back.realised_performance is not None
    assert back.realised_performance[0]["metrics"]["roc_auc"] is None
    assert back.estimated_performance is not None
    assert back.estimated_performance[0]["metrics"]["accuracy"]["value"] == 0.85
    assert back.created_at == result.created_at


def test_from_dict_refuses_newer_layouts(report: Report) -> None:
    with pytest.raises(InvalidInput, match="upgrade ctloop"):
        Report.from_dict({**report.to_dict(), "version": 99})


def test_severity_puts_tests_and_distances_on_one_scale() -> None:
    assert severity({"method": "psi", "score": 0.4, "threshold": 0.2}) == pytest.approx(2.0)
    assert severity({"method": "ks", "p_value": 0.0025, "threshold": 0.05}) == pytest.approx(2.0)
    assert severity({"method": "ks", "p_value": None, "threshold": 0.05}) == 0.0


def test_html_is_self_contained_with_a_chart_per_feature(report: Report) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "<script" not in page.lower()
    assert page.count("<svg") >= len(report.histograms) + 1  # + the scores chart
    for hist in report.histograms:
        assert f'aria-label="histogram of {hist["column"]}"' in page
    assert "Dataset drift detected" in page or "No dataset drift" in page
    # the summary names the drifted feature first
    assert re.search(r"<ol><li>age</li>", page)


def test_html_escapes_column_names(windows: tuple) -> None:
    ref, cur = windows
    nasty = "<script>alert(1)</script>"
    rename = {"age": nasty, "contract": "a&b"}
    result = build_report(ref.rename(columns=rename), cur.rename(columns=rename))
    page = render_html(result)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&amp;b" in page


def test_html_draws_performance_over_time(windows: tuple) -> None:
    start = datetime(2026, 1, 3, tzinfo=UTC)
    realised = [
        WindowPerformance(
            start + timedelta(hours=h),
            start + timedelta(hours=h + 1),
            "binary",
            100,
            90,
            0.9,
            None,
            None,
            {"accuracy": 0.8 + h / 100},
        )
        for h in range(3)
    ]
    estimate = MetricEstimate("accuracy", 0.82, 0.02, 0.78, 0.86, 0.85)
    result = build_report(
        *windows,
        realised=realised,
        estimated=EstimatedPerformance(3000, 2.0, {"accuracy": estimate}),
    )
    page = render_html(result)
    assert "Performance over time" in page
    assert 'aria-label="accuracy over time"' in page
    assert "<polyline" in page


def test_no_common_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no column in common"):
        build_report(pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"b": [1, 2]}))


# --- CLI --------------------------------------------------------------------------------------


def test_cli_writes_html_and_prints_json(windows: tuple, tmp_path: Path) -> None:
    ref, cur = windows
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    out = tmp_path / "report.html"
    done = ctloop_cli(
        "monitor", "report", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"),
        "-o", str(out), "--json", "--columns", "age,contract,plan",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [c["column"] for c in data["dataset_drift"]["columns"]] == ["age", "contract", "plan"]
    assert data["dataset_drift"]["columns"][0]["drifted"] is True
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    assert "age" in done.stderr
    assert not list(tmp_path.glob(".report.html.*"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (d / "absent.parquet", d / "ref.parquet"), "no such file"),
        (lambda d: (d / "ref.parquet", d / "notes.txt"), "unknown format"),
        (lambda d: (d / "ref.parquet", d / "broken.parquet"), "cannot read"),
        (lambda d: (d / "ref.parquet", d / "other.csv"), "no column in common"),
    ],
)
def test_cli_bad_inputs_fail_in_one_line(tmp_path: Path, make, message: str) -> None:
    pd.DataFrame({"a": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "ref.parquet")
    pd.DataFrame({"b": [1.0, 2.0]}).to_csv(tmp_path / "other.csv", index=False)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    ref, cur = make(tmp_path)
    done = ctloop_cli("monitor", "report", str(ref), str(cur), "-o", str(tmp_path / "r.html"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert message in lines[0]
    assert not (tmp_path / "r.html").exists()
