"""Reference profiles: merge laws, drift from histograms, JSON, calibration, log windows."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial import distance as spd

from ctloop.errors import InvalidInput, NotFound
from ctloop.monitoring import stats
from ctloop.monitoring.profile_drift import calibrate, drift
from ctloop.monitoring.profiles import (
    CategoricalColumn,
    NumericColumn,
    ReferenceProfile,
    WindowProfile,
    profile_dataset,
    profile_model_training_data,
)
from ctloop.monitoring.windows import parse_window, window_from_log
from ctloop.serving.payload_log import PayloadLog


def frame(n: int, seed: int, shift: float = 0.0, plans: str = "abc") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 10, n),
            "spend": rng.exponential(20, n),
            "plan": rng.choice(list(plans), n),
        }
    )


def numeric(profile: ReferenceProfile | WindowProfile, name: str) -> NumericColumn:
    column = profile[name]
    assert isinstance(column, NumericColumn)
    return column


def categorical(profile: ReferenceProfile | WindowProfile, name: str) -> CategoricalColumn:
    column = profile[name]
    assert isinstance(column, CategoricalColumn)
    return column


def assert_same_counts(a: WindowProfile, b: WindowProfile) -> None:
    for name in ("age", "spend"):
        x, y = numeric(a, name), numeric(b, name)
        assert x.counts.tolist() == y.counts.tolist()
        assert (x.rows, x.missing, x.infinite, x.n) == (y.rows, y.missing, y.infinite, y.n)
        assert x.mean == pytest.approx(y.mean, rel=1e-9)
        assert x.std == pytest.approx(y.std, rel=1e-9)
        assert (x.min, x.max) == (y.min, y.max)
    assert categorical(a, "plan").categories == categorical(b, "plan").categories


# --- profiles and merge laws --------------------------------------------------------------


def test_a_reference_freezes_bins_counts_moments_and_categories() -> None:
    df = frame(5000, 0)
    df.loc[:9, "age"] = np.nan
    df.loc[10:14, "age"] = np.inf
    df.loc[15:16, "age"] = -np.inf
    df.loc[:19, "plan"] = None
    ref = ReferenceProfile.from_frame(df, bins=10)
    age = numeric(ref, "age")
    finite = df["age"][np.isfinite(df["age"])]
    assert age.edges.tolist() == stats.quantile_edges(finite, 10).tolist()
    assert age.counts.tolist() == stats.histogram(df["age"], age.edges).tolist()
    assert (age.rows, age.missing, age.infinite, age.n) == (5000, 10, 7, 4983)
    assert age.counts[0] == 2 and age.counts[-1] == 5  # -inf underflows, +inf overflows
    assert age.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert age.std == pytest.approx(finite.std(ddof=1), rel=1e-12)
    assert (age.min, age.max) == (finite.min(), finite.max())
    assert age.sample_complete and sorted(age.sample) == sorted(finite)
    plan = categorical(ref, "plan")
    assert plan.categories == df["plan"].value_counts().to_dict()
    assert (plan.rows, plan.missing) == (5000, 20)


def test_a_window_is_the_sum_of_its_parts() -> None:
    ref = ReferenceProfile.from_frame(frame(2000, 0))
    a, b, c = frame(3000, 1), frame(1000, 2, shift=5), frame(500, 3, plans="abd")
    whole = ref.window(pd.concat([a, b, c], ignore_index=True))
    wa, wb, wc = ref.window(a), ref.window(b), ref.window(c)
    assert_same_counts(wa + wb + wc, whole)
    assert_same_counts((wa + wb) + wc, wa + (wb + wc))  # associative
    assert_same_counts(wa.merge(wb, wc), whole)
    assert categorical(whole, "plan").categories["d"] == (c["plan"] == "d").sum()


def test_a_window_from_batches_equals_the_window_of_their_concatenation() -> None:
    ref = ReferenceProfile.from_frame(frame(2000, 0))
    batches = [frame(700, seed) for seed in range(1, 6)]
    batches[2] = batches[2].drop(columns="spend")  # a batch without a column counts as NaN
    streamed = ref.window_from_batches(iter(batches))
    whole = ref.window(pd.concat(batches, ignore_index=True))
    assert_same_counts(streamed, whole)
    assert numeric(streamed, "spend").missing == 700


def test_a_window_from_parquet_reads_in_batches_what_window_reads_at_once(
    tmp_path: Path,
) -> None:
    ref = ReferenceProfile.from_frame(frame(2000, 0))
    parts = [frame(700, seed) for seed in range(1, 4)]
    parts[1] = parts[1].drop(columns="spend")  # a file without a column counts as NaN
    folder = tmp_path / "log" / "date=2026-12-05"
    folder.mkdir(parents=True)
    for i, part in enumerate(parts):
        part.assign(extra=1).to_parquet(folder / f"seg-{i}.parquet", row_group_size=300)
    (folder / ".seg-9.parquet.tmp").write_text("half written: never read")
    whole = ref.window(pd.concat(parts, ignore_index=True))
    for source in (tmp_path / "log", sorted(folder.glob("*.parquet"))):
        streamed = ref.window_from_parquet(source, batch_rows=128)  # type: ignore[arg-type]
        assert_same_counts(streamed, whole)
        assert numeric(streamed, "spend").missing == 700
    one = ref.window_from_parquet(folder / "seg-0.parquet")
    assert_same_counts(one, ref.window(parts[0]))
    with pytest.raises(InvalidInput, match="batch_rows=0 must be a whole number"):
        ref.window_from_parquet(folder, batch_rows=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="no Parquet file under"):
        ref.window_from_parquet(empty)
    with pytest.raises(InvalidInput, match="cannot read .* as Parquet"):
        ref.window_from_parquet(folder / ".seg-9.parquet.tmp")


def test_merged_samples_stay_a_uniform_sample_of_the_union() -> None:
    ref = ReferenceProfile.from_frame(frame(100, 0), sample_size=500)
    low = pd.DataFrame({"age": np.zeros(9000), "spend": 1.0, "plan": "a"})
    high = pd.DataFrame({"age": np.ones(1000), "spend": 1.0, "plan": "a"})
    merged = numeric(ref.window(low) + ref.window(high), "age")
    assert len(merged.sample) == 500 and not merged.sample_complete
    # 10% of the union are ones; a uniform sample of 500 holds 50 ± 3σ (σ ≈ 6.7) of them
    assert 30 <= merged.sample.sum() <= 70


def test_references_merge_only_over_the_same_edges() -> None:
    a, b = frame(3000, 1), frame(3000, 2)
    ref_a = ReferenceProfile.from_frame(a)
    ref_b = ReferenceProfile.from_frame(b, like=ref_a)
    both = ReferenceProfile.from_frame(pd.concat([a, b], ignore_index=True), like=ref_a)
    merged = ref_a + ref_b
    assert numeric(merged, "age").counts.tolist() == numeric(both, "age").counts.tolist()
    assert numeric(merged, "age").std == pytest.approx(numeric(both, "age").std, rel=1e-9)
    with pytest.raises(InvalidInput, match="bin edges differ"):
        ref_a + ReferenceProfile.from_frame(b)
    with pytest.raises(InvalidInput, match="merge windows with windows"):
        ref_a.merge(ref_a.window(b))  # type: ignore[arg-type]


def test_categories_past_the_cap_fold_into_other() -> None:
    df = pd.DataFrame({"city": [f"c{i}" for i in range(10) for _ in range(10 - i)]})
    ref = ReferenceProfile.from_frame(df, max_categories=3)
    city = categorical(ref, "city")
    assert city.categories == {"c0": 10, "c1": 9, "c2": 8}
    assert city.other == sum(range(1, 8)) and city.truncated
    # the window keeps the reference's categories and up to 3 new ones
    window = ref.window(pd.DataFrame({"city": ["c0", "n1", "n2", "n3", "n4", "n4"]}))
    w = categorical(window, "city")
    assert w.categories["c0"] == 1 and w.other == 1 and w.rows == 6


# --- drift from histograms ----------------------------------------------------------------


def test_drift_from_profiles_equals_the_statistics_on_raw_data() -> None:
    ref_df, cur_df = frame(4000, 0), frame(3000, 1, shift=2, plans="abcd")
    ref = ReferenceProfile.from_frame(ref_df)
    window = ref.window(cur_df)
    edges = numeric(ref, "age").edges
    r = np.histogram(ref_df["age"], np.r_[-np.inf, edges, np.inf])[0]
    c = np.histogram(cur_df["age"], np.r_[-np.inf, edges, np.inf])[0]
    p, q = r / r.sum(), c / c.sum()
    fp, fq = np.maximum(p, 1e-4), np.maximum(q, 1e-4)  # PSI floors empty bins
    expected = {
        "jensenshannon": spd.jensenshannon(p, q, base=2),
        "hellinger": math.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum() / 2),
        "linf": np.abs(p - q).max(),
        "psi": ((fq - fp) * np.log(fq / fp)).sum(),
        "chisquare": sps.chi2_contingency(np.array([r, c])[:, r + c > 0], correction=False)[0],
        "ks": np.abs(np.cumsum(p) - np.cumsum(q)).max(),
    }
    for method, value in expected.items():
        result = drift(ref, window, methods={"age": method}, use_samples=False).columns[0]
        assert result.score == pytest.approx(value, rel=1e-9), method
    # with samples that hold every value, KS and Wasserstein are exact
    exact = drift(ref, window, methods={"age": "ks"}).columns[0]
    assert exact.score == pytest.approx(sps.ks_2samp(ref_df["age"], cur_df["age"]).statistic)
    assert exact.note is None
    w = drift(ref, window, methods={"age": "wasserstein"}).columns[0]
    true_w = sps.wasserstein_distance(ref_df["age"], cur_df["age"]) / ref_df["age"].std(ddof=0)
    assert w.score == pytest.approx(true_w, rel=1e-9)
    binned = drift(ref, window, methods={"age": "wasserstein"}, use_samples=False).columns[0]
    assert binned.note == "approximated from 12 bins" and binned.drifted
    # categories: the window's new one is a bin of its own
    plan = drift(ref, window, methods={"plan": "chisquare"}).columns[2]
    labels = sorted(set(ref_df["plan"]) | set(cur_df["plan"]))
    table = [[(df["plan"] == k).sum() for k in labels] for df in (ref_df, cur_df)]
    assert plan.score == pytest.approx(sps.chi2_contingency(table, correction=False)[0])
    assert plan.drifted and plan.note == "1 categories not in the reference: 'd'"


def test_a_shifted_million_rows_drift_and_an_identical_million_do_not() -> None:
    n = 1_000_000
    ref = ReferenceProfile.from_frame(frame(n, 0))
    same = drift(ref, ref.window(frame(n, 1)))
    shifted = drift(ref, ref.window(frame(n, 2, shift=3, plans="aabc")))
    assert [r.method for r in same.columns] == ["wasserstein", "wasserstein", "jensenshannon"]
    assert not same.drifted and same.drifted_columns == []
    assert shifted.drifted and shifted.drifted_columns == ["age", "plan"]
    assert all(r.score < 0.03 for r in same.columns)


def test_small_references_are_tested_and_nan_and_inf_shares_are_reported() -> None:
    ref_df = frame(500, 0)
    cur = frame(400, 1)
    cur.loc[:39, "age"] = np.nan
    cur.loc[40:59, "age"] = np.inf
    cur.loc[:99, "plan"] = None
    ref = ReferenceProfile.from_frame(ref_df)
    result = drift(ref, ref.window(cur))
    age, _, plan = result.columns
    assert (age.method, plan.method) == ("ks", "chisquare")
    assert age.p_value is not None and age.p_value > 0.05 and not age.drifted
    assert (age.missing_share_current, age.infinite_share_current) == (0.1, 0.05)
    assert (plan.missing_share_current, plan.missing_share_reference) == (0.25, 0.0)
    assert age.current_rows == 400


def test_empty_and_absent_window_columns_are_reported_not_scored() -> None:
    ref = ReferenceProfile.from_frame(frame(500, 0))
    window = ref.window(pd.DataFrame({"age": [np.nan, np.nan], "plan": ["a", "b"]}))
    result = drift(ref, window)
    age = result.columns[0]
    assert math.isnan(age.score) and not age.drifted and "no usable values" in str(age.note)
    assert result.skipped == {"spend": "not in the window"}


def test_methods_and_thresholds_are_checked() -> None:
    ref = ReferenceProfile.from_frame(frame(2000, 0))
    window = ref.window(frame(2000, 1, shift=1))
    by_kind = drift(ref, window, methods={"numeric": "psi"}, thresholds={"psi": 0.5})
    assert [(r.method, r.threshold) for r in by_kind.columns][:2] == [("psi", 0.5)] * 2
    assert drift(ref, window, methods="ks").columns[2].method == "jensenshannon"
    with pytest.raises(InvalidInput, match="method 'ks' does not apply"):
        drift(ref, window, methods={"plan": "ks"})
    with pytest.raises(InvalidInput, match="unknown keys: nope"):
        drift(ref, window, thresholds={"nope": 1.0})


# --- JSON ---------------------------------------------------------------------------------


def test_profiles_survive_a_json_round_trip() -> None:
    df = frame(3000, 0)
    df.loc[:4, "age"] = np.inf
    df["when"] = pd.Timestamp("2026-01-01")
    ref = ReferenceProfile.from_frame(df, sample_size=100)
    text = json.dumps(ref.to_dict(), allow_nan=False)
    back = ReferenceProfile.from_dict(json.loads(text))
    window = ref.window(frame(3000, 1, shift=1))
    again = WindowProfile.from_dict(json.loads(json.dumps(window.to_dict(), allow_nan=False)))
    assert drift(back, again).to_dict() == drift(ref, window).to_dict()
    assert set(back.skipped) == {"when"}
    assert numeric(back, "age").sample_keys.tolist() == numeric(ref, "age").sample_keys.tolist()
    empty = ReferenceProfile.from_frame(pd.DataFrame({"x": [np.nan, np.nan]}))
    assert json.loads(json.dumps(empty.to_dict(), allow_nan=False))["columns"][0]["mean"] is None
    with pytest.raises(InvalidInput, match="version 99"):
        ReferenceProfile.from_dict({**ref.to_dict(), "version": 99})
    with pytest.raises(InvalidInput, match="expected a reference profile"):
        ReferenceProfile.from_dict(window.to_dict())


# --- calibration --------------------------------------------------------------------------


def test_calibrated_thresholds_rarely_flag_the_reference_itself() -> None:
    df = frame(20_000, 0)
    ref = ReferenceProfile.from_frame(df)
    thresholds = calibrate(df, ref, chunk_rows=2000, chunks=40, k=3.0)
    assert set(thresholds) == {"age", "spend", "plan"}
    assert all(0 < t < 0.1 for t in thresholds.values())
    rng = np.random.default_rng(99)
    flagged = 0
    for seed in range(30):
        chunk = df.iloc[rng.choice(len(df), 2000, replace=False)]
        result = drift(ref, ref.window(chunk, seed=seed), thresholds=thresholds)
        flagged += len(result.drifted_columns)
    assert flagged <= 0.1 * 30 * 3  # Chebyshev bounds the rate at 1/k² ≈ 11%
    moved = drift(ref, ref.window(frame(2000, 5, shift=2)), thresholds=thresholds)
    assert "age" in moved.drifted_columns
    small = ReferenceProfile.from_frame(df.iloc[:500])
    assert calibrate(df.iloc[:500], small, chunks=5) == {}  # tests keep their p-value
    assert set(calibrate(df.iloc[:500], small, chunks=5, methods="psi")) == {
        "age",
        "spend",
        "plan",
    }


# --- windows over the prediction log ------------------------------------------------------


def test_window_durations_are_parsed_or_refused() -> None:
    assert parse_window("1h") == timedelta(hours=1)
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("2d") == timedelta(days=2)
    assert parse_window(" 45s ") == timedelta(seconds=45)
    assert parse_window("1.5h") == timedelta(minutes=90)
    for bad in ("1 hour", "h", "10", "-1h", "0m"):
        with pytest.raises(InvalidInput, match="window"):
            parse_window(bad)


def test_window_from_log_reads_features_predictions_and_probabilities(tmp_path: Path) -> None:
    root = str(tmp_path)
    end = datetime(2026, 3, 2, 12, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {
            "prediction_id": f"p{i}",
            "timestamp": end - timedelta(minutes=10 * (20 - i)),
            "variant": "champion",
            "features": {"age": 20 + i, "plan": "pro" if i % 2 else "free", "prediction": i},
            "prediction": "yes",
            "probabilities": {"no": 0.2, "yes": 0.8},
        }
        for i in range(20)
    ]
    rows.append({**rows[-1], "prediction_id": "s", "variant": "shadow"})
    with PayloadLog(root, "churn", "predictions", replica="r1") as log:
        log.append(rows)

    hour = window_from_log(root, "churn", window="1h", until=end)
    assert hour["age"].tolist() == [34, 35, 36, 37, 38, 39]  # shadows left out
    assert list(hour.columns) == ["age", "plan", "f.prediction", "prediction", "p.no", "p.yes"]
    assert window_from_log(root, "churn", last=3, until=end)["age"].tolist() == [37, 38, 39]
    both = window_from_log(root, "churn", window="1h", last=100, until=end)
    assert len(both) == 6
    assert len(window_from_log(root, "churn", until=end, variant="shadow")) == 1
    assert len(window_from_log(root, "churn", window=timedelta(days=365))) == 20
    with pytest.raises(InvalidInput, match="last=0"):
        window_from_log(root, "churn", last=0)
    ref = ReferenceProfile.from_frame(window_from_log(root, "churn", until=end))
    assert categorical(ref.window(hour), "plan").rows == 6


# --- references from the store ------------------------------------------------------------


def test_references_from_a_dataset_version_and_a_models_training_data(
    sqlite_client: Any, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    client = sqlite_client
    data = tmp_path / "train.csv"
    df = frame(300, 0).drop(columns="plan")
    df.to_csv(data, index=False)
    version = client.datasets.add(data, "churn-data", pointer=False)
    profile = profile_dataset(client, "churn-data@1", bins=5)
    assert numeric(profile, "age").n == 300 and len(numeric(profile, "age").edges) == 6

    run = client.runs.create("churn", capture_code=False)
    client.runs.log_input(run.id, version, "training")
    model = LogisticRegression().fit(df, df["age"] > 40)
    client.runs.log_model(run.id, model, input_example=df.head())
    client.models.register(run.id, name="churn")
    trained = profile_model_training_data(client, "churn/1", bins=5)
    assert numeric(trained, "spend").counts.tolist() == numeric(profile, "spend").counts.tolist()

    bare = client.runs.create("churn", capture_code=False)
    client.runs.log_model(bare.id, model, input_example=df.head())
    client.models.register(bare.id, name="churn")
    with pytest.raises(NotFound, match="has no training data on record"):
        profile_model_training_data(client, "churn/2")
