"""Drift detectors: the automatic rule, agreement with scipy, edge cases, the table verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial import distance as spd

from ctloop.errors import InvalidInput
from ctloop.monitoring import stats
from ctloop.monitoring.detectors import (
    DEFAULT_THRESHOLDS,
    ColumnDriftDetector,
    DatasetDriftDetector,
    choose_method,
)
from ctloop.monitoring.results import DatasetDrift, DriftResult


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def numeric(values: object, name: str = "x") -> pd.Series:
    return pd.Series(values, name=name, dtype="float64")


# the scikit-learn contract


def test_detectors_follow_the_scikit_learn_contract(rng: np.random.Generator) -> None:
    detector = ColumnDriftDetector(method="psi", threshold=0.3, bins=5)
    assert vars(detector) == {"method": "psi", "threshold": 0.3, "kind": None, "bins": 5}
    with pytest.raises(InvalidInput, match="not fitted yet"):
        detector.score(numeric([1.0]))
    assert detector.fit(numeric(rng.normal(size=100))) is detector
    learned = {k for k in vars(detector) if k.endswith("_")}
    assert {"kind_", "method_", "threshold_", "edges_", "reference_counts_"} <= learned
    assert set(vars(detector)) - learned == {"method", "threshold", "kind", "bins"}
    assert (detector.kind_, detector.method_, detector.threshold_) == ("numeric", "psi", 0.3)
    assert len(detector.edges_) == 6 and detector.reference_counts_.sum() == 100

    table = DatasetDriftDetector()
    assert all(not k.endswith("_") for k in vars(table))
    with pytest.raises(InvalidInput, match="not fitted yet"):
        table.score(pd.DataFrame({"x": [1.0]}))
    assert table.fit(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]})) is table
    assert table.kinds_ == {"x": "numeric", "c": "categorical"}
    assert table.methods_ == {"x": "ks", "c": "ztest"}
    assert table.thresholds_ == {"x": 0.05, "c": 0.05}


def test_invalid_arguments_are_reported_when_fitting_with_the_choices() -> None:
    ref = numeric([1.0, 2.0, 3.0])
    with pytest.raises(InvalidInput, match=r"unknown drift method 'kl'; choose one of: .*ks"):
        ColumnDriftDetector(method="kl").fit(ref)
    with pytest.raises(InvalidInput, match="'chisquare' does not apply to the numeric"):
        ColumnDriftDetector(method="chisquare").fit(ref)
    with pytest.raises(InvalidInput, match="unknown column kind 'text'"):
        ColumnDriftDetector(kind="text").fit(ref)
    with pytest.raises(InvalidInput, match="bins must be a positive integer"):
        ColumnDriftDetector(bins=0).fit(ref)
    with pytest.raises(InvalidInput, match="threshold must be a non-negative number"):
        ColumnDriftDetector(threshold=-1).fit(ref)
    with pytest.raises(InvalidInput, match="'ztest' compares the share of one category"):
        ColumnDriftDetector(method="ztest").fit(pd.Series(list("abc")))
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match="unknown drift method 'kl'"):
        DatasetDriftDetector(methods={"x": "kl"}).fit(frame)
    with pytest.raises(InvalidInput, match="methods names unknown keys: y"):
        DatasetDriftDetector(methods={"y": "ks"}).fit(frame)
    with pytest.raises(InvalidInput, match="thresholds names unknown keys: kss"):
        DatasetDriftDetector(thresholds={"kss": 0.1}).fit(frame)
    with pytest.raises(InvalidInput, match="drift_share must be in"):
        DatasetDriftDetector(drift_share=0).fit(frame)
    with pytest.raises(InvalidInput, match="columns not in the reference: y"):
        DatasetDriftDetector(columns=["y"]).fit(frame)


# the automatic rule


def test_the_automatic_method_follows_kind_and_reference_size() -> None:
    assert choose_method("numeric", 1000) == "ks"
    assert choose_method("numeric", 1001) == "wasserstein"
    assert choose_method("categorical", 1000, 3) == "chisquare"
    assert choose_method("categorical", 1000, 2) == "ztest"
    assert choose_method("categorical", 1001, 2) == "jensenshannon"

    def method(values: pd.Series) -> str:
        return ColumnDriftDetector().fit(values).method_

    # the size counted is the usable values: 1001 rows with one NaN is still "small"
    assert method(numeric(np.r_[np.arange(1000.0), np.nan])) == "ks"
    assert method(numeric(np.arange(1001.0))) == "wasserstein"
    assert method(pd.Series(list("abc") * 300)) == "chisquare"
    assert method(pd.Series([True, False] * 300)) == "ztest"
    assert method(pd.Series(list("ab") * 501)) == "jensenshannon"
    # a 0/1 integer column stays numeric; kind= makes it categorical
    flags = pd.Series([0, 1] * 100)
    assert method(flags) == "ks"
    assert ColumnDriftDetector(kind="categorical").fit(flags).method_ == "ztest"


def test_identical_distributions_at_a_million_rows_are_not_flagged() -> None:
    rng = np.random.default_rng(7)
    n = 1_000_000

    def window() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": rng.normal(size=n),
                "c": pd.Categorical.from_codes(rng.integers(0, 4, size=n), list("abcd")),
                "b": rng.random(n) < 0.3,
            }
        )

    detector = DatasetDriftDetector().fit(window())
    assert detector.methods_ == {"x": "wasserstein", "c": "jensenshannon", "b": "jensenshannon"}
    same = detector.score(window())
    assert not same.drifted and same.drifted_columns == []
    assert all(r.score < 0.01 for r in same.columns)
    # a p-value would flag a shift of 1 % of a standard deviation; the effect size does not
    shifted = window().assign(x=lambda f: f["x"] + 0.01)
    ks = ColumnDriftDetector(method="ks").fit(window()["x"]).score(shifted["x"])
    assert ks.drifted and ks.p_value is not None and ks.p_value < 1e-6
    assert not detector.score(shifted).columns[0].drifted
    # and a real shift is flagged
    moved = detector.score(window().assign(x=lambda f: f["x"] + 0.5))
    assert moved.drifted_columns == ["x"]


# agreement with direct computations


def test_numeric_scores_agree_with_scipy(rng: np.random.Generator) -> None:
    ref = numeric(rng.normal(size=800))
    cur = numeric(rng.normal(0.2, 1.1, size=600))
    ks = ColumnDriftDetector().fit(ref).score(cur)
    expected = sps.ks_2samp(ref, cur)
    assert (ks.method, ks.threshold) == ("ks", 0.05)
    assert ks.score == pytest.approx(expected.statistic)
    assert ks.p_value == pytest.approx(expected.pvalue)
    assert ks.drifted == (expected.pvalue < 0.05)

    w = ColumnDriftDetector(method="wasserstein").fit(ref).score(cur)
    assert w.score == pytest.approx(sps.wasserstein_distance(ref, cur) / np.std(ref))
    assert w.p_value is None and w.drifted == (w.score >= 0.1)

    edges = stats.quantile_edges(ref.to_numpy(), 10)
    ref_counts, cur_counts = stats.histogram(ref, edges), stats.histogram(cur, edges)
    p, q = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    pq = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    hand_psi = float(np.sum((pq[1] - pq[0]) * np.log(pq[1] / pq[0])))
    assert ColumnDriftDetector(method="psi").fit(ref).score(cur).score == pytest.approx(hand_psi)
    js = ColumnDriftDetector(method="jensenshannon").fit(ref).score(cur).score
    assert js == pytest.approx(spd.jensenshannon(p, q, base=2))
    hellinger = ColumnDriftDetector(method="hellinger").fit(ref).score(cur).score
    assert hellinger == pytest.approx(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def test_categorical_scores_agree_with_scipy(rng: np.random.Generator) -> None:
    ref = pd.Series(rng.choice(list("abcd"), p=[0.4, 0.3, 0.2, 0.1], size=900), name="c")
    cur = pd.Series(rng.choice(list("abcd"), p=[0.3, 0.3, 0.3, 0.1], size=700), name="c")
    table = np.array([[(ref == k).sum() for k in "abcd"], [(cur == k).sum() for k in "abcd"]])
    chi = ColumnDriftDetector().fit(ref).score(cur)
    expected = sps.chi2_contingency(table, correction=False)
    assert chi.method == "chisquare"
    assert chi.score == pytest.approx(expected.statistic)
    assert chi.p_value == pytest.approx(expected.pvalue)
    assert chi.drifted
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    js = ColumnDriftDetector(method="jensenshannon").fit(ref).score(cur)
    assert js.score == pytest.approx(spd.jensenshannon(p, q, base=2))
    linf = ColumnDriftDetector(method="linf").fit(ref).score(cur)
    assert linf.score == pytest.approx(np.max(np.abs(p - q)))
    assert linf.drifted == (linf.score >= DEFAULT_THRESHOLDS["linf"])


def test_binary_columns_use_the_two_proportion_z_test(rng: np.random.Generator) -> None:
    ref = pd.Series(rng.random(500) < 0.3, name="churned")
    cur = pd.Series(rng.random(400) < 0.45, name="churned")
    result = ColumnDriftDetector().fit(ref).score(cur)
    expected = sps.chi2_contingency(
        [[ref.sum(), (~ref).sum()], [cur.sum(), (~cur).sum()]], correction=False
    )
    assert result.method == "ztest" and result.kind == "categorical"
    assert result.score == pytest.approx(math.sqrt(expected.statistic))
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.drifted


def test_a_category_unseen_in_the_reference_is_finite_evidence_of_drift() -> None:
    ref = pd.Series(list("ab") * 200 + ["c"] * 100, name="plan")
    cur = pd.Series(list("ab") * 200 + ["c"] * 40 + ["enterprise"] * 60, name="plan")
    for method in ("chisquare", "jensenshannon", "psi", "hellinger", "linf"):
        result = ColumnDriftDetector(method=method).fit(ref).score(cur)
        assert math.isfinite(result.score), method
        assert result.drifted, method
        assert result.note == "1 categories not in the reference: 'enterprise'"
    same = ColumnDriftDetector().fit(ref).score(ref)
    assert not same.drifted and same.note is None and same.score == pytest.approx(0.0)


# edge cases


def test_nan_and_inf_are_reported_as_shares_and_left_out_of_sample_tests(
    rng: np.random.Generator,
) -> None:
    base = rng.normal(size=400)
    ref = numeric(np.r_[base, [np.nan] * 100])
    cur_values = rng.normal(size=300)
    cur = numeric(np.r_[cur_values, [np.nan] * 50, [np.inf] * 30, [-np.inf] * 20])
    result = ColumnDriftDetector().fit(ref).score(cur)
    assert result.missing_share_reference == pytest.approx(0.2)
    assert result.infinite_share_reference == 0.0
    assert result.missing_share_current == pytest.approx(50 / 400)
    assert result.infinite_share_current == pytest.approx(50 / 400)
    assert (result.reference_rows, result.current_rows) == (500, 400)
    assert result.score == pytest.approx(sps.ks_2samp(base, cur_values).statistic)


def test_inf_falls_in_the_outer_bins_of_the_histogram_methods(rng: np.random.Generator) -> None:
    ref = numeric(rng.normal(size=2000))
    clean = rng.normal(size=2000)
    detector = ColumnDriftDetector(method="psi").fit(ref)
    without = detector.score(numeric(clean))
    with_inf = detector.score(numeric(np.r_[clean, [np.inf] * 400]))
    counts = stats.histogram(np.r_[clean, [np.inf] * 400], detector.edges_)
    assert counts[-1] >= 400
    assert with_inf.score == pytest.approx(stats.psi(detector.reference_counts_, counts))
    assert with_inf.score > without.score + 0.2 and with_inf.drifted


@pytest.mark.parametrize(
    ("reference", "method"),
    [
        (numeric(np.arange(50.0)), "ks"),
        (numeric(np.arange(50.0)), "psi"),
        (pd.Series(list("abc") * 20), "chisquare"),
        (pd.Series(list("abc") * 20), "jensenshannon"),
    ],
)
def test_an_empty_or_all_missing_window_is_a_note_not_a_crash(
    reference: pd.Series, method: str
) -> None:
    detector = ColumnDriftDetector(method=method).fit(reference)
    empty = detector.score(reference.iloc[:0])
    assert math.isnan(empty.score) and not empty.drifted and empty.p_value is None
    assert empty.note == "empty window: the current window has no rows"
    assert empty.current_rows == 0
    missing = detector.score(pd.Series([None] * 5, dtype=reference.dtype))
    assert math.isnan(missing.score) and not missing.drifted
    assert missing.note is not None and "no" in missing.note and "values" in missing.note
    assert missing.missing_share_current == 1.0


def test_an_all_null_reference_column_is_a_note_not_a_crash() -> None:
    frame = pd.DataFrame(
        {"x": [np.nan] * 10, "c": pd.Series([None] * 10, dtype=object), "ok": np.arange(10.0)}
    )
    detector = DatasetDriftDetector().fit(frame)
    assert detector.kinds_ == {"x": "numeric", "c": "categorical", "ok": "numeric"}
    drift = detector.score(frame.assign(x=1.0, c="a"))
    by_column = {r.column: r for r in drift.columns}
    assert by_column["x"].note == "the reference column has no finite values"
    assert by_column["c"].note == "the reference column has no values (all missing)"
    assert by_column["x"].missing_share_reference == 1.0
    assert not any(r.drifted for r in drift.columns) and not drift.drifted


def test_a_constant_reference_column(rng: np.random.Generator) -> None:
    ref = numeric(np.full(2000, 3.0))
    detector = ColumnDriftDetector().fit(ref)
    assert detector.method_ == "wasserstein" and detector.reference_std_ == 0.0
    same = detector.score(numeric(np.full(500, 3.0)))
    assert same.score == 0.0 and not same.drifted
    changed = detector.score(numeric(np.r_[np.full(499, 3.0), 3.5]))
    assert changed.score == math.inf and changed.drifted
    assert changed.note == "constant reference column: any change counts as drift"
    psi = ColumnDriftDetector(method="psi").fit(ref)
    assert psi.score(numeric(np.full(100, 3.0))).score == pytest.approx(0.0)
    assert psi.score(numeric(rng.normal(3.0, 1.0, size=100))).drifted
    assert ColumnDriftDetector(method="ks").fit(ref).score(numeric([3.0, 4.0] * 50)).drifted


def test_mismatched_and_untestable_columns_are_skipped_with_a_reason(
    rng: np.random.Generator,
) -> None:
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=100),
            "gone": rng.normal(size=100),
            "when": pd.date_range("2024-01-01", periods=100, freq="h"),
            "c": rng.choice(list("ab"), size=100),
        }
    )
    detector = DatasetDriftDetector().fit(ref)
    assert "when" in detector.skipped_ and "datetime64" in detector.skipped_["when"]
    cur = ref.drop(columns=["gone"]).assign(new=1, x=["n/a"] * 100)
    drift = detector.score(cur)
    assert [r.column for r in drift.columns] == ["c"]
    assert drift.skipped["gone"] == "missing from the current window"
    assert drift.skipped["new"] == "not in the reference"
    assert "holds non-numbers" in drift.skipped["x"]
    assert set(drift.skipped) == {"gone", "new", "x", "when"}
    # columns= names what to test: other columns of the window are not listed
    only_c = DatasetDriftDetector(columns=["c"]).fit(ref).score(cur)
    assert only_c.skipped == {}


def test_pandas_extension_dtypes(rng: np.random.Generator) -> None:
    ref = pd.DataFrame(
        {
            "n": pd.array([1, 2, None, 4] * 25, dtype="Int64"),
            "s": pd.array(["a", "b", None, "a"] * 25, dtype="string"),
            "k": pd.Categorical(["x", "y", "z", "x"] * 25),
            "flag": pd.array([True, False, None, True] * 25, dtype="boolean"),
        }
    )
    detector = DatasetDriftDetector().fit(ref)
    assert detector.kinds_ == {
        "n": "numeric",
        "s": "categorical",
        "k": "categorical",
        "flag": "categorical",
    }
    drift = detector.score(ref)
    assert not drift.drifted and drift.skipped == {}
    by_column = {r.column: r for r in drift.columns}
    assert by_column["n"].missing_share_reference == pytest.approx(0.25)
    assert by_column["s"].missing_share_current == pytest.approx(0.25)


# the table


def test_the_table_drifts_when_the_share_of_drifted_columns_is_reached(
    rng: np.random.Generator,
) -> None:
    ref = pd.DataFrame({f"f{i}": rng.normal(size=500) for i in range(4)})
    cur = pd.DataFrame({f"f{i}": rng.normal(size=500) for i in range(4)})
    cur["f0"] += 1.0
    half = DatasetDriftDetector(drift_share=0.5).fit(ref)
    one = half.score(cur)
    assert isinstance(one, DatasetDrift) and all(isinstance(r, DriftResult) for r in one.columns)
    assert one.drifted_columns == ["f0"]
    assert one.drifted_share == 0.25 and not one.drifted
    cur["f1"] += 1.0
    two = half.score(cur)
    assert two.drifted_share == 0.5 and two.drifted
    assert DatasetDriftDetector(drift_share=0.25).fit(ref).score(cur.assign(f1=ref["f1"])).drifted
    assert two.to_dict()["columns"][0]["column"] == "f0"


def test_methods_and_thresholds_by_column_kind_and_method(rng: np.random.Generator) -> None:
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=200),
            "y": rng.normal(size=200),
            "c": rng.choice(list("abc"), size=200),
        }
    )
    detector = DatasetDriftDetector(
        methods={"numeric": "psi", "y": "wasserstein", "categorical": "linf"},
        thresholds={"psi": 0.5, "y": 0.3},
    ).fit(ref)
    assert detector.methods_ == {"x": "psi", "y": "wasserstein", "c": "linf"}
    assert detector.thresholds_ == {"x": 0.5, "y": 0.3, "c": 0.1}
    one_name = DatasetDriftDetector(methods="hellinger").fit(ref)
    assert one_name.methods_ == {"x": "hellinger", "y": "hellinger", "c": "hellinger"}
    ks_only = DatasetDriftDetector(methods="ks").fit(ref)
    assert ks_only.methods_ == {"x": "ks", "y": "ks", "c": "chisquare"}
    kinds = DatasetDriftDetector(kinds={"x": "categorical"}).fit(ref.assign(x=[1, 2] * 100))
    assert kinds.kinds_["x"] == "categorical" and kinds.methods_["x"] == "ztest"
    with pytest.raises(InvalidInput, match="'ks' does not apply to the categorical column 'c'"):
        DatasetDriftDetector(methods={"c": "ks"}).fit(ref)


def test_a_column_detector_takes_arrays_and_refuses_tables_and_unhashable_values() -> None:
    result = ColumnDriftDetector().fit(np.arange(20.0)).score(np.arange(20.0) + 100)
    assert result.column == "value" and result.drifted
    with pytest.raises(InvalidInput, match="use DatasetDriftDetector for tables"):
        ColumnDriftDetector().fit(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(InvalidInput, match="got an array of shape"):
        ColumnDriftDetector().fit(np.ones((3, 2)))
    with pytest.raises(InvalidInput, match="cannot be categories"):
        ColumnDriftDetector().fit(pd.Series([[1], [2]], name="lists"))
    frame = pd.DataFrame({"lists": pd.Series([[1], [2]]), "x": [1.0, 2.0]})
    detector = DatasetDriftDetector().fit(frame)
    assert detector.columns_ == ["x"] and "cannot be categories" in detector.skipped_["lists"]
