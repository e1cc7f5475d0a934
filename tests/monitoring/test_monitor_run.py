"""One monitor run: a model's reference, a window of its prediction log, the report, rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from ctloop.datasets import churn
from ctloop.demo import _baseline, _features
from ctloop.errors import InvalidInput
from ctloop.monitoring.html import render_html
from ctloop.monitoring.monitor_run import evaluate_window, observations, report_from_profiles
from ctloop.monitoring.reference import MonitorReference, build_reference
from ctloop.monitoring.report import Report, build_report
from ctloop.monitoring.rules import (
    DriftShareAbove,
    ErrorRateAbove,
    FeatureScoreAbove,
    PerformanceBelow,
)
from ctloop.serving.log_reader import joined as read_joined
from ctloop.serving.log_reader import read_log
from ctloop.serving.payload_log import PayloadLog

T0 = pd.Timestamp("2026-03-01", tz="UTC")
SEED = 11
#: Leaf features of the churn simulation: shifting them moves no other feature.
THREE = {"days_since_last_login", "data_usage_gb", "payment_method"}
THREE_DRIFT = churn.Drift(
    start=0,
    kind="covariate",
    features={
        "days_since_last_login": {"shift": 10.0},
        "data_usage_gb": {"scale": 1.6},
        "payment_method": {"electronic-check": 0.8},
    },
)
#: More month-to-month customers, who churn more: the model is less sure of them.
UNCERTAIN = churn.Drift(
    start=0,
    kind="covariate",
    features={"contract": {"month-to-month": 0.85}, "monthly_charges": {"shift": 10.0}},
)
#: Same customers, new reasons to churn.
CONCEPT = churn.Drift(
    start=0, kind="concept", coef_changes={"contract": -1.0, "support_calls": -1.0}
)


def as_json(value: Any) -> Any:
    """Round-trip through strict JSON: fails on NaN, numpy scalars and datetimes."""
    return json.loads(json.dumps(value, allow_nan=False))


@dataclass
class Store:
    client: Any
    model: Any  # the loaded churn/1
    train: pd.DataFrame
    reference: MonitorReference


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """churn/1: the demo's logistic regression, trained on 6000 rows logged as training
    data, with 4000 later rows logged as evaluation data; and its reference."""
    from ctloop import Client

    folder = tmp_path_factory.mktemp("monitor-run")
    client = Client(store=str(folder / "store"))
    data = churn.generate(10_000, seed=SEED)
    train, held_out = data.iloc[:6_000], data.iloc[6_000:]
    train.to_parquet(folder / "train.parquet", index=False)
    held_out.to_parquet(folder / "eval.parquet", index=False)
    train_version = client.datasets.add(folder / "train.parquet", "churn-train")
    eval_version = client.datasets.add(folder / "eval.parquet", "churn-eval")
    run = client.runs.create("churn", capture_code=False)
    client.runs.log_input(run.id, train_version, "training")
    client.runs.log_input(run.id, eval_version, "evaluation")
    x = _features(train)
    client.runs.log_model(run.id, _baseline(x).fit(x, train[churn.TARGET]), input_example=x)
    client.models.register(run.id, name="churn")
    yield Store(client, client.models.load("churn/1"), train, build_reference(client, "churn/1"))
    client.close()


def log_of(model: Any, rows: pd.DataFrame, version: str = "1") -> pd.DataFrame:
    """The prediction log the inference server writes for ``rows`` (docs/logs.md)."""
    pred, proba = model.predict_with_proba(rows)
    n = len(rows)
    out = pd.DataFrame(
        {
            "prediction_id": [f"{version}-{i}" for i in range(n)],
            "request_id": [f"r{i // 10}" for i in range(n)],
            "timestamp": T0 + pd.to_timedelta(np.arange(n), unit="s"),
            "deployment": "churn",
            "model_version": version,
            "variant": "champion",
            "prediction": pred,
            "latency_ms": 2.0,
            "status": "ok",
        }
    )
    for name in churn.FEATURES:
        out[f"f.{name}"] = rows[name].to_numpy()
    for j, cls in enumerate(model.classes):
        out[f"p.{cls}"] = proba[:, j]
    return out


def joined_of(log: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The log with every row's label, as ``client.deployments.joined`` returns it."""
    out = log.copy()
    out["label"] = rows[churn.TARGET].to_numpy()
    out["value"] = np.nan
    out["feedback_time"] = out["timestamp"] + pd.Timedelta("1h")
    return out


def live(drift: churn.Drift | None = None, n: int = 4_000) -> pd.DataFrame:
    return churn.generate(n, seed=SEED, offset=20_000, drift=drift)


def accuracy(report: Report) -> dict[str, Any]:
    assert report.estimated_performance is not None
    return dict(report.estimated_performance[-1]["metrics"]["accuracy"])


# --- the reference --------------------------------------------------------------------------


def test_the_reference_profiles_the_models_inputs_and_predictions(store: Store) -> None:
    ref = store.reference
    assert ref.model == "churn/1" and ref.source == "churn-train@1"
    assert list(ref.features) == churn.FEATURES and ref.task == "classification"
    assert list(ref.profile.columns) == [*churn.FEATURES, "prediction"]  # no id, time, label
    assert ref.profile["age"].rows == 6_000
    expected = pd.Series(store.model.predict(store.train)).astype(str).value_counts().to_dict()
    assert ref.profile["prediction"].categories == expected  # type: ignore[attr-defined]
    est = ref.estimation
    assert est is not None and ref.classes == ("0", "1")
    # the held-out input is preferred, so no in-sample note
    assert (est["source"], est["context"], est["in_sample"], est["note"]) == (
        "churn-eval@1",
        "evaluation",
        False,
        None,
    )
    assert est["label_column"] == "churned" and "only column" in est["label_rule"]
    assert est["rows"] == len(est["labels"]) == len(est["probabilities"]["1"]) == 4_000
    assert ref.notes == ()


def test_the_reference_survives_a_json_round_trip(store: Store) -> None:
    data = as_json(store.reference.to_dict())
    back = MonitorReference.from_dict(data)
    assert as_json(back.to_dict()) == data
    assert back.version == "1" and back.classes == ("0", "1")
    with pytest.raises(InvalidInput, match="upgrade ctloop"):
        MonitorReference.from_dict({**data, "version": 99})


def test_features_narrow_the_reference_and_unknown_ones_are_named(store: Store) -> None:
    ref = build_reference(store.client, "churn/1", features=["contract", "age"])
    assert ref.features == ("age", "contract")  # signature order
    assert list(ref.profile.columns) == ["age", "contract", "prediction"]
    with pytest.raises(InvalidInput, match=r"\['nope'\].*inputs are: age, tenure_months"):
        build_reference(store.client, "churn/1", features=["age", "nope"])
    with pytest.raises(InvalidInput, match=r"\['nope'\] are not in the reference of churn/1"):
        evaluate_window(
            store.reference, log_of(store.model, live(n=50)), deployment="churn", features=["nope"]
        )


def test_without_held_out_data_the_estimator_is_in_sample_and_says_so(store: Store) -> None:
    client = store.client
    train_version = client.datasets.resolve("churn-train@1")
    run = client.runs.create("churn", capture_code=False)
    client.runs.log_input(run.id, train_version, "training")
    client.runs.log_params(run.id, {"target": "churned"})
    x = _features(store.train)
    client.runs.log_model(run.id, _baseline(x).fit(x, store.train[churn.TARGET]), input_example=x)
    version = client.models.register(run.id, name="churn").version
    ref = build_reference(client, f"churn/{version}")
    assert ref.estimation is not None and ref.estimation["in_sample"]
    assert ref.estimation["label_rule"] == "run param target='churned'"
    assert "in-sample" in ref.estimation["note"] and ref.estimation["note"] in ref.notes

    client.models.set_version_tag(f"churn/{version}", "target", "nope")  # the tag wins
    ref = build_reference(client, f"churn/{version}")
    assert ref.estimation is None
    assert re.search(r"no label column found .*version tag target='nope'", ref.notes[0])


# --- windows --------------------------------------------------------------------------------


def test_a_window_drawn_like_the_reference_does_not_drift(store: Store) -> None:
    rows = live()
    log = log_of(store.model, rows)
    report = evaluate_window(
        store.reference,
        log,
        joined_of(log, rows),
        deployment="churn",
        window_info={"spec": "1h"},
    )
    assert not report.drifted and report.drifted_columns == []
    assert report.prediction_drift is not None and not report.prediction_drift["drifted"]
    assert report.window["spec"] == "1h" and report.window["rows"] == 4_000
    assert report.window["start"] == T0.isoformat()
    # realised performance, from the joined labels
    truth = accuracy_score(rows[churn.TARGET], log["prediction"])
    assert report.realised_performance is not None
    assert report.realised_performance[0]["metrics"]["accuracy"] == pytest.approx(truth)
    # estimated, without labels: within its band of the truth
    est = accuracy(report)
    assert est["lower"] <= truth <= est["upper"]
    assert abs(est["value"] - truth) < 0.02
    as_json(report.to_dict())


def test_a_large_window_is_estimated_on_a_uniform_sample(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctloop.monitoring import monitor_run

    log = log_of(store.model, live())
    whole = accuracy(evaluate_window(store.reference, log, deployment="churn"))
    monkeypatch.setattr(monitor_run, "MAX_ESTIMATED_ROWS", 1_000)
    report = evaluate_window(store.reference, log, deployment="churn")
    assert report.estimated_performance is not None
    assert report.estimated_performance[-1]["rows"] == 1_000
    assert any("uniform sample of 1000 of the 4000 rows" in n for n in report.window["notes"])
    sampled = accuracy(report)
    assert abs(sampled["value"] - whole["value"]) < 0.02
    assert sampled["upper"] - sampled["lower"] > whole["upper"] - whole["lower"]


def test_drift_injected_into_three_features_flags_exactly_those(store: Store) -> None:
    report = evaluate_window(
        store.reference, log_of(store.model, live(THREE_DRIFT)), deployment="churn"
    )
    assert set(report.drifted_columns) == THREE
    assert report.dataset_drift["drifted_share"] == pytest.approx(3 / 12)
    assert not report.drifted  # 3 of 12 is under the default share of one half
    assert evaluate_window(
        store.reference,
        log_of(store.model, live(THREE_DRIFT)),
        deployment="churn",
        drift_share=0.25,
    ).drifted


def test_prediction_drift_and_estimated_accuracy_under_covariate_shift(store: Store) -> None:
    rows = live(UNCERTAIN)
    log = log_of(store.model, rows)
    report = evaluate_window(store.reference, log, deployment="churn")
    assert report.prediction_drift is not None and report.prediction_drift["drifted"]
    assert "contract" in report.drifted_columns
    assert "prediction" not in [c["column"] for c in report.dataset_drift["columns"]]
    # into regions where the model is less sure: the estimate falls, as the truth does
    truth = accuracy_score(rows[churn.TARGET], log["prediction"])
    est = accuracy(report)
    assert est["value"] < est["reference"] - 0.03
    assert truth < est["reference"] - 0.03
    assert est["lower"] <= truth <= est["upper"]
    assert report.realised_performance is None  # no labels given


def test_concept_drift_shows_in_realised_not_in_estimated_performance(store: Store) -> None:
    rows = live(CONCEPT)
    log = log_of(store.model, rows)
    report = evaluate_window(store.reference, log, joined_of(log, rows), deployment="churn")
    assert not report.drifted and report.prediction_drift is not None
    assert not report.prediction_drift["drifted"]  # the inputs, so the predictions, are as before
    est = accuracy(report)
    assert report.realised_performance is not None
    realised = report.realised_performance[0]["metrics"]["accuracy"]
    assert realised < est["lower"] - 0.05  # labels show the fall ...
    assert abs(est["value"] - est["reference"]) < 0.02  # ... the label-free estimate cannot


def test_an_empty_window_is_refused_with_its_bounds(store: Store) -> None:
    empty = log_of(store.model, live(n=10)).iloc[:0]
    with pytest.raises(
        InvalidInput,
        match=r"no predictions logged for churn between 2026-03-01T00:00:00\+00:00 and "
        r"2026-03-01T01:00:00\+00:00",
    ):
        evaluate_window(
            store.reference,
            empty,
            deployment="churn",
            window_info={"start": T0, "end": T0 + pd.Timedelta("1h")},
        )


def test_a_real_log_with_shadows_errors_and_feedback(store: Store, tmp_path: Path) -> None:
    rows = live(n=1_000)
    served = log_of(store.model, rows)
    shadow = log_of(store.model, rows.iloc[:300].assign(age=99), version="2")
    shadow["variant"] = "shadow"
    failed = served.iloc[:50].copy()
    failed["prediction_id"] = [f"e{i}" for i in range(50)]
    failed[["status", "prediction", "p.0", "p.1"]] = ["error: boom", None, np.nan, np.nan]
    failed["f.days_since_last_login"] = 9_999  # would drift, were errors counted
    root = str(tmp_path)
    with PayloadLog(root, "churn", "predictions", replica="r1") as log:
        log.append(pd.concat([served, shadow, failed], ignore_index=True))
    feedback = pd.DataFrame(
        {
            "prediction_id": served["prediction_id"],
            "timestamp": served["timestamp"] + pd.Timedelta("1h"),
            "label": rows[churn.TARGET].to_numpy(),
        }
    )
    with PayloadLog(root, "churn", "feedback", replica="r1") as log:
        log.append(feedback)

    report = evaluate_window(
        store.reference,
        read_log(root, "churn", "predictions"),
        read_joined(root, "churn"),
        deployment="churn",
    )
    assert not report.drifted and report.drifted_columns == []
    assert report.window["rows"] == 1_000 and report.window["logged_rows"] == 1_350
    assert {c["current_rows"] for c in report.dataset_drift["columns"]} == {1_000}
    assert report.prediction_drift is not None and report.prediction_drift["current_rows"] == 1_000
    health = {(h["model_version"], h["variant"]): h for h in report.health or []}
    assert health["1", "champion"]["errors"] == 50 and health["1", "champion"]["rows"] == 1_050
    assert health["2", "shadow"]["rows"] == 300
    assert report.realised_performance is not None
    realised = report.realised_performance[0]
    assert (realised["predictions"], realised["labelled"]) == (1_000, 1_000)
    assert realised["metrics"]["accuracy"] == pytest.approx(
        accuracy_score(rows[churn.TARGET], served["prediction"])
    )
    assert accuracy(report)["value"] is not None


def test_another_versions_predictions_are_not_compared_with_the_reference(store: Store) -> None:
    report = evaluate_window(
        store.reference, log_of(store.model, live(n=500), version="7"), deployment="churn"
    )
    assert report.prediction_drift is None and report.estimated_performance is None
    assert "answered by churn/1" in report.dataset_drift["skipped"]["prediction"]
    assert any("rebuild the reference" in n for n in report.window["notes"])
    assert len(report.dataset_drift["columns"]) == 12  # the inputs are still compared


# --- profiles and rows agree ----------------------------------------------------------------


def test_report_from_profiles_agrees_with_build_report(store: Store) -> None:
    rows = live(THREE_DRIFT)
    log = log_of(store.model, rows)

    def frame(data: pd.DataFrame, prediction: Any) -> pd.DataFrame:
        out = data[churn.FEATURES].reset_index(drop=True)
        out["prediction"] = pd.Series(prediction).astype(str).to_numpy()
        return out

    reference_df = frame(store.train, store.model.predict(store.train))
    current_df = frame(rows, log["prediction"])
    from_rows = build_report(reference_df, current_df, columns=churn.FEATURES)
    profile = store.reference.profile
    from_profiles = report_from_profiles(profile, profile.window(current_df))

    assert set(from_profiles.to_dict()) == set(from_rows.to_dict())
    by_rows = {c["column"]: c for c in from_rows.dataset_drift["columns"]}
    by_profiles = {c["column"]: c for c in from_profiles.dataset_drift["columns"]}
    assert list(by_profiles) == list(by_rows) == churn.FEATURES
    for name, expected in by_rows.items():
        got = by_profiles[name]
        assert (got["method"], got["drifted"]) == (expected["method"], expected["drifted"]), name
        # both sides hold every value (6000 and 4000 rows, samples of 10 000): exact
        assert got["score"] == pytest.approx(expected["score"], rel=1e-9, abs=1e-12), name
        assert got["note"] is None
    assert from_profiles.drifted_columns == from_rows.drifted_columns
    assert from_profiles.drifted == from_rows.drifted
    assert from_profiles.histograms == from_rows.histograms
    pred_rows, pred_profiles = from_rows.prediction_drift, from_profiles.prediction_drift
    assert pred_rows is not None and pred_profiles is not None
    assert pred_profiles["method"] == pred_rows["method"]
    assert pred_profiles["score"] == pytest.approx(pred_rows["score"])
    assert pred_profiles["drifted"] == pred_rows["drifted"]


# --- alert rules and the page ---------------------------------------------------------------


def test_rules_see_the_reports_values_after_a_json_round_trip(store: Store) -> None:
    rows = live(THREE_DRIFT)
    log = log_of(store.model, rows)
    log.loc[:99, "status"] = "error: timeout"  # 100 of 4000 rows failed
    report = evaluate_window(store.reference, log, joined_of(log, rows), deployment="churn")
    stored = Report.from_dict(as_json(report.to_dict()))
    seen = observations(stored)
    assert seen.deployment == "churn" and seen.report_id == report.id

    share = DriftShareAbove(threshold=0.2).evaluate(seen)
    assert share is not None and share.value == report.dataset_drift["drifted_share"]
    assert set(share.evidence["drifted_columns"]) == THREE

    score = FeatureScoreAbove(feature="data_usage_gb", threshold=0.05).evaluate(seen)
    usage = next(c for c in report.dataset_drift["columns"] if c["column"] == "data_usage_gb")
    assert score is not None and score.value == usage["score"]
    assert FeatureScoreAbove(feature="age", threshold=0.05).evaluate(seen) is None

    est = accuracy(report)
    fired = PerformanceBelow(metric="accuracy", threshold=1.0, source="estimated").evaluate(seen)
    assert fired is not None and fired.value == est["value"]
    assert (
        PerformanceBelow(metric="accuracy", threshold=0.5, source="estimated").evaluate(seen)
        is None
    )
    assert report.realised_performance is not None
    realised = report.realised_performance[0]["metrics"]["accuracy"]
    fired = PerformanceBelow(metric="accuracy", threshold=1.0).evaluate(seen)
    assert fired is not None and fired.value == realised

    errors = ErrorRateAbove(threshold=0.01).evaluate(seen)
    assert errors is not None and errors.value == pytest.approx(100 / 4_000)
    assert ErrorRateAbove(threshold=0.05).evaluate(seen) is None


def test_the_report_renders_as_one_self_contained_page(store: Store, tmp_path: Path) -> None:
    rows = live(UNCERTAIN)
    log = log_of(store.model, rows)
    report = evaluate_window(store.reference, log, joined_of(log, rows), deployment="churn")
    page = render_html(report)
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"\b(src|href)\s*=", text) and "<script" not in text.lower()
    assert "<h2>Prediction drift</h2>" in text and "The predictions drifted." in text
    assert "Performance over time" in text and "Serving health" in text
    for hist in report.histograms:
        assert f'aria-label="histogram of {hist["column"]}"' in text
    assert len(report.histograms) == 12


# --- label drift and multivariate drift ----------------------------------------------------


def test_labels_arriving_as_feedback_are_tested_against_the_references(store: Store) -> None:
    rows = live(n=3_000)
    log = log_of(store.model, rows)
    calm = evaluate_window(store.reference, log, joined_of(log, rows), deployment="churn")
    assert calm.label_drift is not None and not calm.label_drift["drifted"]
    assert calm.label_drift["column"] == "label"

    more_churn = live(churn.Drift(start=0, kind="prior", base_rate=0.6), n=3_000)
    log = log_of(store.model, more_churn)
    moved = evaluate_window(store.reference, log, joined_of(log, more_churn), deployment="churn")
    assert moved.label_drift is not None and moved.label_drift["drifted"]
    assert Report.from_dict(as_json(moved.to_dict())).label_drift == as_json(moved.label_drift)
    # without feedback there is nothing to test
    assert evaluate_window(store.reference, log, None, deployment="churn").label_drift is None


def test_reference_rows_add_a_domain_classifier_that_ranks_the_drifted_features(
    store: Store,
) -> None:
    sample = store.train.sample(2_000, random_state=0)
    rows = live(THREE_DRIFT, n=2_000)
    report = evaluate_window(
        store.reference, log_of(store.model, rows), deployment="churn", reference_rows=sample
    )
    assert report.multivariate is not None and report.multivariate["drifted"]
    ranked = [f["feature"] for f in report.multivariate["importances"]][:3]
    assert set(ranked) == THREE, report.multivariate

    calm = live(n=2_000)
    quiet = evaluate_window(
        store.reference, log_of(store.model, calm), deployment="churn", reference_rows=sample
    )
    assert quiet.multivariate is not None and not quiet.multivariate["drifted"]
    assert (
        evaluate_window(store.reference, log_of(store.model, calm), deployment="churn").multivariate
        is None
    )
