"""The synthetic churn table: schema, realism, determinism and drift semantics."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal
from scipy import stats
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ctloop.datasets import churn
from ctloop.errors import InvalidInput

N = 20_000
SEED = 11
DRIFT_AT = 10_000


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    """The undrifted table every drift test compares against."""
    return churn.generate(N, seed=SEED)


def gradient_boosting() -> Any:
    return HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)


def logistic_regression() -> Any:
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    encode = make_column_transformer(
        (numeric, churn.NUMERIC), (OneHotEncoder(handle_unknown="ignore"), churn.CATEGORICAL)
    )
    return make_pipeline(encode, LogisticRegression(max_iter=2_000))


def fit(make: Callable[[], Any], df: pd.DataFrame) -> Any:
    X, y = churn.split(df)
    return make().fit(X, y)


def auc(model: Any, df: pd.DataFrame) -> float:
    X, y = churn.split(df)
    return float(roc_auc_score(y, model.predict_proba(X)[:, 1]))


# --- determinism and windows --------------------------------------------------------------

MIXED_DRIFT = [
    churn.Drift(start=800, kind="covariate", features={"monthly_charges": {"shift": 9.0}}),
    churn.Drift(start=1_500, kind="concept", coef_changes={"contract": -1.0}, ramp=300),
    churn.Drift(start=2_000, end=2_600, kind="prior", base_rate=0.45),
]


def test_same_arguments_give_an_identical_frame() -> None:
    a = churn.generate(3_000, seed=5, drift=MIXED_DRIFT)
    b = churn.generate(3_000, seed=5, drift=MIXED_DRIFT)
    assert_frame_equal(a, b)


def test_another_seed_gives_other_customers() -> None:
    a = churn.generate(2_000, seed=5)
    b = churn.generate(2_000, seed=6)
    assert not set(a[churn.ID]) & set(b[churn.ID])
    assert not np.array_equal(a["monthly_charges"], b["monthly_charges"])


def test_stream_windows_concatenate_to_the_generated_table() -> None:
    # 3 x 7000 rows crosses the generator's internal 16384-row random blocks.
    windows = list(churn.stream(3, 7_000, seed=3, drift=MIXED_DRIFT))
    assert [len(w) for w in windows] == [7_000] * 3
    assert windows[1].index[0] == 7_000
    assert windows[1][churn.TIMESTAMP].iloc[0] - windows[0][churn.TIMESTAMP].iloc[-1] == (
        pd.Timedelta("1min")
    )
    whole = churn.generate(21_000, seed=3, drift=MIXED_DRIFT)
    assert_frame_equal(pd.concat(windows), whole)


def test_offset_continues_the_table() -> None:
    whole = churn.generate(21_000, seed=3)
    assert_frame_equal(churn.generate(5_000, seed=3, offset=16_000), whole.iloc[16_000:])


def test_stream_without_a_batch_count_keeps_going() -> None:
    live = churn.stream(batch_size=10, offset=40)
    first, second = next(live), next(live)
    assert list(first.index) == list(range(40, 50))
    assert list(second.index) == list(range(50, 60))


# --- schema and realism -------------------------------------------------------------------


def test_columns_and_dtypes(base: pd.DataFrame) -> None:
    assert list(base.columns) == [churn.ID, churn.TIMESTAMP, *churn.FEATURES, churn.TARGET]
    assert churn.FEATURES == churn.NUMERIC + churn.CATEGORICAL
    assert base.index.equals(pd.RangeIndex(0, N))
    ids = base[churn.ID]
    assert pd.api.types.is_string_dtype(ids)
    assert ids.is_unique and ids.str.fullmatch(r"cus_[0-9a-f]{10}").all()
    assert str(base[churn.TIMESTAMP].dtype) == "datetime64[ns, UTC]"
    for column in ("age", "tenure_months", "support_calls", "days_since_last_login"):
        assert base[column].dtype == np.int64, column
    for column in ("monthly_charges", "total_charges", "data_usage_gb"):
        assert base[column].dtype == np.float64, column
    for column in churn.CATEGORICAL:
        assert isinstance(base[column].dtype, pd.CategoricalDtype), column
        assert list(base[column].cat.categories) == churn.CATEGORIES[column]
    assert base[churn.TARGET].dtype == np.int64
    assert set(base[churn.TARGET].unique()) == {0, 1}


def test_event_times_are_utc_and_one_freq_apart(base: pd.DataFrame) -> None:
    times = base[churn.TIMESTAMP]
    assert times.iloc[0] == pd.Timestamp("2026-01-01", tz="UTC")
    assert (times.diff().iloc[1:] == pd.Timedelta("1min")).all()


def test_rows_per_day_and_an_aware_start() -> None:
    df = churn.generate(100, start="2026-03-01T12:00+01:00", rows_per_day=96)
    assert df[churn.TIMESTAMP].iloc[0] == pd.Timestamp("2026-03-01T11:00", tz="UTC")
    assert (df[churn.TIMESTAMP].diff().iloc[1:] == pd.Timedelta("15min")).all()


def test_values_stay_in_plausible_ranges(base: pd.DataFrame) -> None:
    assert base["age"].between(18, 95).all() and 40 < base["age"].mean() < 52
    assert base["tenure_months"].between(0, 72).all()
    assert base["monthly_charges"].between(18, 250).all()
    assert base["support_calls"].between(0, 30).all()
    assert base["days_since_last_login"].between(0, 365).all()
    assert (base["data_usage_gb"].dropna() >= 0).all()
    offline = base["internet_service"] == "no-internet"
    assert (base.loc[offline, "data_usage_gb"].fillna(0) == 0).all()
    assert (base.loc[~offline, "data_usage_gb"].dropna() > 0).all()


def test_total_charges_is_about_tenure_times_monthly_charges(base: pd.DataFrame) -> None:
    billed = base[base["tenure_months"] > 0]
    ratio = billed["total_charges"] / (billed["tenure_months"] * billed["monthly_charges"])
    assert 0.98 < ratio.median() < 1.02
    assert ratio.between(0.85, 1.15).mean() > 0.95


def test_categories_follow_their_skewed_mix(base: pd.DataFrame) -> None:
    contract = base["contract"].value_counts(normalize=True)
    assert contract["month-to-month"] == pytest.approx(0.55, abs=0.015)
    assert contract["one-year"] == pytest.approx(0.24, abs=0.015)
    assert contract["two-year"] == pytest.approx(0.21, abs=0.015)
    assert base["payment_method"].value_counts().index[0] == "electronic-check"
    assert base["plan"].value_counts(normalize=True)["premium"] == pytest.approx(0.15, abs=0.015)
    assert base["region"].value_counts(normalize=True)["central"] == pytest.approx(0.1, abs=0.01)


def test_missing_values_are_where_documented(base: pd.DataFrame) -> None:
    assert base["data_usage_gb"].isna().mean() == pytest.approx(0.02, abs=0.004)
    assert_series_equal(base["total_charges"].isna(), base["tenure_months"] == 0, check_names=False)
    assert 0.02 < base["total_charges"].isna().mean() < 0.07
    others = [c for c in base.columns if c not in ("data_usage_gb", "total_charges")]
    assert not base[others].isna().any().any()


def test_base_rate_is_realistic(base: pd.DataFrame) -> None:
    assert 0.22 <= base[churn.TARGET].mean() <= 0.30


def test_churn_depends_on_the_documented_drivers(base: pd.DataFrame) -> None:
    rate = base.groupby("contract", observed=True)[churn.TARGET].mean()
    assert rate["month-to-month"] > 2 * rate["one-year"] > 2 * rate["two-year"]
    calls = base.groupby(base["support_calls"].clip(upper=4))[churn.TARGET].mean()
    assert calls.is_monotonic_increasing


@pytest.mark.parametrize("make", [gradient_boosting, logistic_regression])
def test_a_model_reaches_a_realistic_but_imperfect_auc(
    base: pd.DataFrame, make: Callable[[], Any]
) -> None:
    model = fit(make, base.iloc[:5_000])
    assert 0.75 <= auc(model, base.iloc[5_000:]) <= 0.95


def test_empty_table_keeps_the_schema(base: pd.DataFrame) -> None:
    empty = churn.generate(0)
    assert len(empty) == 0
    assert_series_equal(empty.dtypes, base.dtypes)


def test_without_label_only_the_label_is_gone() -> None:
    assert_frame_equal(
        churn.generate(500, label=False), churn.generate(500).drop(columns=churn.TARGET)
    )


def test_split_returns_features_and_label(base: pd.DataFrame) -> None:
    X, y = churn.split(base)
    assert list(X.columns) == churn.FEATURES
    assert y.name == churn.TARGET and len(y) == len(X) == N
    with pytest.raises(InvalidInput, match="label=True"):
        churn.split(base.drop(columns=churn.TARGET))


# --- drift --------------------------------------------------------------------------------


def drifted(*drift: churn.Drift, n: int = N) -> pd.DataFrame:
    return churn.generate(n, seed=SEED, drift=list(drift))


def test_covariate_shift_moves_a_feature_from_start_on_only(base: pd.DataFrame) -> None:
    df = drifted(
        churn.Drift(start=DRIFT_AT, kind="covariate", features={"monthly_charges": {"shift": 15.0}})
    )
    before, after = slice(0, DRIFT_AT), slice(DRIFT_AT, None)
    assert_frame_equal(df.iloc[before], base.iloc[before])
    moved = df["monthly_charges"].iloc[after] - base["monthly_charges"].iloc[after]
    floor = base["monthly_charges"].iloc[after] == 18.0  # drawn below the range, then clipped
    assert floor.mean() < 0.01
    np.testing.assert_allclose(moved[~floor], 15.0, atol=0.011)
    # total_charges and the label follow the drifted charges through unchanged mechanisms.
    assert df["total_charges"].iloc[after].mean() > base["total_charges"].iloc[after].mean()
    assert df[churn.TARGET].iloc[after].mean() > base[churn.TARGET].iloc[after].mean()

    charges = df["monthly_charges"]
    assert stats.ks_2samp(charges.iloc[before], charges.iloc[after]).pvalue < 1e-6
    steady = base["monthly_charges"]
    assert stats.ks_2samp(steady.iloc[before], steady.iloc[after]).pvalue > 0.01


def test_covariate_shift_keeps_the_label_mechanism(base: pd.DataFrame) -> None:
    df = drifted(
        churn.Drift(
            start=DRIFT_AT,
            kind="covariate",
            features={"monthly_charges": {"shift": 15.0}, "support_calls": {"scale": 1.5}},
        )
    )
    model = fit(gradient_boosting, base.iloc[:5_000])
    assert auc(model, df.iloc[DRIFT_AT:]) > auc(model, base.iloc[5_000:DRIFT_AT]) - 0.03


def test_categorical_mix_drift_rescales_the_other_levels(base: pd.DataFrame) -> None:
    df = drifted(
        churn.Drift(
            start=DRIFT_AT, kind="covariate", features={"contract": {"month-to-month": 0.8}}
        )
    )
    assert_frame_equal(df.iloc[:DRIFT_AT], base.iloc[:DRIFT_AT])
    after = df["contract"].iloc[DRIFT_AT:].value_counts(normalize=True)
    assert after["month-to-month"] == pytest.approx(0.8, abs=0.015)
    assert after["one-year"] / after["two-year"] == pytest.approx(0.24 / 0.21, rel=0.15)
    # tenure depends on the contract, so it follows the new mix
    assert df["tenure_months"].iloc[DRIFT_AT:].mean() < base["tenure_months"].iloc[DRIFT_AT:].mean()


def test_missing_drift_raises_the_null_share(base: pd.DataFrame) -> None:
    df = drifted(
        churn.Drift(
            start=DRIFT_AT,
            kind="covariate",
            features={"data_usage_gb": {"missing": 0.3}, "plan": {"missing": 0.1}},
        )
    )
    assert_frame_equal(df.iloc[:DRIFT_AT], base.iloc[:DRIFT_AT])
    assert df["data_usage_gb"].iloc[DRIFT_AT:].isna().mean() == pytest.approx(0.3, abs=0.015)
    assert df["plan"].iloc[DRIFT_AT:].isna().mean() == pytest.approx(0.1, abs=0.01)
    assert_series_equal(df[churn.TARGET], base[churn.TARGET])  # lost at observation only


def test_drift_positions_may_be_timestamps_and_end_is_exclusive(base: pd.DataFrame) -> None:
    drift = churn.Drift(
        start="2026-01-01T03:00+01:00",  # = row 120 at one row a minute from midnight UTC
        end=pd.Timestamp("2026-01-01T04:00"),  # naive means UTC: row 240
        kind="covariate",
        features={"age": {"shift": 30}},
    )
    changed = np.flatnonzero(drifted(drift, n=600)["age"] != base["age"].iloc[:600])
    assert changed.min() >= 120 and changed.max() < 240
    assert len(changed) > 0.9 * 120


def test_ramp_grows_the_drift_linearly(base: pd.DataFrame) -> None:
    n = 9_000
    df = drifted(
        churn.Drift(
            start=1_000, ramp=4_000, kind="covariate", features={"monthly_charges": {"shift": 20}}
        ),
        n=n,
    )
    rows = np.arange(n)
    expected = 20 * np.clip((rows - 999) / 4_000, 0, 1)
    moved = (df["monthly_charges"] - base["monthly_charges"].iloc[:n]).to_numpy()
    free = base["monthly_charges"].iloc[:n].to_numpy() > 18.0  # not clipped at the floor
    np.testing.assert_allclose(moved[free], expected[free], atol=0.011)


def test_ramp_may_be_a_duration(base: pd.DataFrame) -> None:
    df = drifted(
        churn.Drift(
            start=60, ramp="2h", kind="covariate", features={"monthly_charges": {"shift": 12}}
        ),
        n=300,
    )
    moved = (df["monthly_charges"] - base["monthly_charges"].iloc[:300]).to_numpy()
    expected = 12 * np.clip((np.arange(300) - 59) / 120, 0, 1)  # 2h at 1min = 120 rows
    free = base["monthly_charges"].iloc[:300].to_numpy() > 18.0
    np.testing.assert_allclose(moved[free], expected[free], atol=0.011)


def test_concept_drift_degrades_a_model_trained_before_it(base: pd.DataFrame) -> None:
    df = drifted(churn.Drift(start=DRIFT_AT, kind="concept", coef_changes={"contract": -1.0}))
    untouched = [churn.ID, churn.TIMESTAMP, *churn.FEATURES]
    assert_frame_equal(df[untouched], base[untouched])  # features are exactly the same
    assert_series_equal(df[churn.TARGET].iloc[:DRIFT_AT], base[churn.TARGET].iloc[:DRIFT_AT])

    model = fit(gradient_boosting, df.iloc[:5_000])
    before = auc(model, df.iloc[5_000:DRIFT_AT])
    after = auc(model, df.iloc[DRIFT_AT:])
    assert before - after > 0.08
    assert auc(model, base.iloc[DRIFT_AT:]) - after > 0.08  # the concept, not the rows


def test_prior_drift_changes_the_base_rate_only(base: pd.DataFrame) -> None:
    df = drifted(churn.Drift(start=DRIFT_AT, kind="prior", base_rate=0.5))
    untouched = [churn.ID, churn.TIMESTAMP, *churn.FEATURES]
    assert_frame_equal(df[untouched], base[untouched])
    assert_series_equal(df[churn.TARGET].iloc[:DRIFT_AT], base[churn.TARGET].iloc[:DRIFT_AT])
    assert df[churn.TARGET].iloc[DRIFT_AT:].mean() == pytest.approx(0.5, abs=0.03)

    lower = drifted(churn.Drift(start=DRIFT_AT, kind="prior", log_odds_shift=-1.0))
    assert (
        lower[churn.TARGET].iloc[DRIFT_AT:].mean()
        < base[churn.TARGET].iloc[DRIFT_AT:].mean() - 0.08
    )


# --- validation ---------------------------------------------------------------------------


def cov(features: Any, start: Any = 0, **kw: Any) -> churn.Drift:
    return churn.Drift(start=start, kind="covariate", features=features, **kw)


BAD_CALLS: list[tuple[str, Callable[[], object], str]] = [
    ("negative n_rows", lambda: churn.generate(-1), "n_rows must be a whole number >= 0, got -1"),
    ("float n_rows", lambda: churn.generate(2.5), "got 2.5"),
    ("bool n_rows", lambda: churn.generate(True), "got True"),
    ("str n_rows", lambda: churn.generate("10"), "got '10'"),
    ("negative seed", lambda: churn.generate(10, seed=-3), "seed must be"),
    ("no seed", lambda: churn.generate(10, seed=None), "got None"),
    ("zero freq", lambda: churn.generate(10, freq="0min"), "positive duration, got '0min'"),
    ("bad freq", lambda: churn.generate(10, freq="banana"), "'banana' is not a duration"),
    (
        "freq and rows_per_day",
        lambda: churn.generate(10, freq="1min", rows_per_day=10),
        "not both",
    ),
    ("zero rows_per_day", lambda: churn.generate(10, rows_per_day=0), "got 0.0"),
    ("bad start", lambda: churn.generate(10, start="not a date"), "'not a date'"),
    ("bad label", lambda: churn.generate(10, label="yes"), "got 'yes'"),
    ("huge table", lambda: churn.generate(10, offset=2**40), "past the table's end"),
    ("drift not a list", lambda: churn.generate(10, drift="covariate"), "list of churn.Drift"),
    ("drift item", lambda: churn.generate(10, drift=[{"start": 1}]), "drift[0] must be"),
    ("unknown kind", lambda: churn.Drift(start=0, kind="sudden"), "unknown drift kind 'sudden'"),
    ("unknown feature", lambda: cov({"monthly_fee": {"shift": 1}}), "'monthly_fee'"),
    ("unknown key", lambda: cov({"monthly_charges": {"offset": 1}}), "'offset'"),
    ("unknown level", lambda: cov({"contract": {"three-year": 0.5}}), "'three-year'"),
    ("mix over 1", lambda: cov({"contract": {"month-to-month": 0.9, "one-year": 0.3}}), "sums"),
    ("shift a category", lambda: cov({"contract": {"shift": 1.0}}), "'shift'"),
    ("missing on int", lambda: cov({"age": {"missing": 0.1}}), "'age' is an integer column"),
    ("zero scale", lambda: cov({"monthly_charges": {"scale": 0}}), "scale must be > 0"),
    ("nan shift", lambda: cov({"monthly_charges": {"shift": float("nan")}}), "finite"),
    ("share over 1", lambda: cov({"data_usage_gb": {"missing": 1.5}}), "got 1.5"),
    ("no features", lambda: churn.Drift(start=0, kind="covariate"), "needs features"),
    (
        "wrong field for kind",
        lambda: cov({"age": {"shift": 1}}, coef_changes={"age": 2.0}),
        "does not take coef_changes",
    ),
    (
        "unknown term",
        lambda: churn.Drift(start=0, kind="concept", coef_changes={"tenure": 2.0}),
        "'tenure'",
    ),
    ("prior without rate", lambda: churn.Drift(start=0, kind="prior"), "exactly one of"),
    (
        "base rate out of range",
        lambda: churn.Drift(start=0, kind="prior", base_rate=1.5),
        "got 1.5",
    ),
    ("negative start", lambda: cov({"age": {"shift": 1}}, start=-5), "got -5"),
    ("float start", lambda: cov({"age": {"shift": 1}}, start=1.5), "got 1.5"),
    ("end before start", lambda: cov({"age": {"shift": 1}}, start=10, end=5), "end 5"),
    ("negative ramp", lambda: cov({"age": {"shift": 1}}, ramp=-1), "got -1"),
    (
        "timestamp end before start",
        lambda: churn.generate(
            10, drift=[cov({"age": {"shift": 1}}, start="2026-01-02", end="2026-01-01")]
        ),
        "not after its start",
    ),
    (
        "bad drift time",
        lambda: churn.generate(10, drift=[cov({"age": {"shift": 1}}, start="soon")]),
        "'soon'",
    ),
    ("stream batch size", lambda: churn.stream(3, 0), "batch_size must be"),
]


@pytest.mark.parametrize(
    ("call", "message"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_invalid_arguments_raise_invalid_input(call: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        call()


# --- import cost --------------------------------------------------------------------------


def test_import_loads_neither_numpy_nor_pandas() -> None:
    code = (
        "import sys\n"
        "import ctloop.datasets\n"
        "assert 'pandas' not in sys.modules and 'numpy' not in sys.modules, 'package'\n"
        "from ctloop.datasets import churn\n"
        "churn.Drift(start=5, kind='covariate', features={'contract': {'two-year': 0.5}})\n"
        "assert churn.FEATURES\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'sklearn') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
