"""Drift statistics: bins, distances and tests against direct scipy/numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial import distance as spd

from ctloop.errors import InvalidInput
from ctloop.monitoring import stats

counts_pairs = st.integers(min_value=1, max_value=12).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(0, 1000), min_size=k, max_size=k).filter(lambda c: sum(c) > 0),
        st.lists(st.integers(0, 1000), min_size=k, max_size=k).filter(lambda c: sum(c) > 0),
    )
)
finite_floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def hand_psi(ref: np.ndarray, cur: np.ndarray, eps: float) -> float:
    p = np.maximum(ref / ref.sum(), eps)
    q = np.maximum(cur / cur.sum(), eps)
    return float(sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True)))


# bins


def test_quantile_edges_are_the_reference_quantiles_with_the_maximum_nudged_up() -> None:
    values = np.arange(101, dtype=float)
    edges = stats.quantile_edges(values, bins=4)
    assert edges[:-1].tolist() == [0.0, 25.0, 50.0, 75.0]
    assert edges[-1] == np.nextafter(100.0, np.inf)


def test_quantile_edges_drop_ties_ignore_non_finite_and_handle_degenerate_columns() -> None:
    tied = np.array([1.0] * 90 + [2.0] * 10 + [np.nan, np.inf, -np.inf])
    edges = stats.quantile_edges(tied, bins=10)
    assert edges[0] == 1.0 and edges[-1] == np.nextafter(2.0, np.inf)
    assert np.all(np.diff(edges) > 0)
    assert len(edges) < 11
    constant = stats.quantile_edges(np.full(5, 3.0))
    assert constant.tolist() == [3.0, np.nextafter(3.0, np.inf)]
    assert stats.histogram([2.0, 3.0, 3.0, 4.0], constant).tolist() == [1, 2, 1]
    assert stats.quantile_edges(np.array([np.nan, np.inf])).size == 0
    assert stats.histogram([1.0, np.inf, np.nan], np.array([])).tolist() == [2]
    with pytest.raises(InvalidInput, match="bins must be at least 1"):
        stats.quantile_edges([1.0], bins=0)


def test_histogram_bins_are_left_closed_with_outer_bins_for_out_of_range_and_inf() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    values = [-np.inf, -0.5, 0.0, 0.5, 1.0, 1.999, 2.0, 7.0, np.inf, np.nan]
    counts = stats.histogram(values, edges)
    assert counts.dtype == np.int64
    assert counts.tolist() == [2, 2, 2, 3]


@settings(max_examples=60, deadline=None)
@given(st.lists(finite_floats, min_size=1, max_size=200), st.integers(1, 20))
def test_every_finite_reference_value_lands_in_an_inner_bin(values: list[float], bins: int) -> None:
    edges = stats.quantile_edges(np.array(values), bins=bins)
    assert np.all(np.diff(edges) > 0)
    counts = stats.histogram(np.array(values), edges)
    assert len(counts) == len(edges) + 1
    assert counts[0] == 0 and counts[-1] == 0
    assert counts.sum() == len(values)


# distances on counts


def test_psi_matches_the_formula_with_floored_empty_bins() -> None:
    ref = np.array([50, 30, 20, 0])
    cur = np.array([40, 30, 20, 10])
    assert stats.psi(ref, cur) == pytest.approx(hand_psi(ref, cur, 1e-4), rel=1e-12)
    assert stats.psi(ref, cur, eps=1e-3) == pytest.approx(hand_psi(ref, cur, 1e-3), rel=1e-12)
    assert stats.EPSILON == 1e-4
    assert math.isfinite(stats.psi([10, 0], [0, 10]))


def test_js_distance_matches_scipy_in_base_2() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        ref, cur = rng.integers(0, 50, size=(2, 8))
        ref[0] = cur[1] = 0  # zero bins on either side
        expected = spd.jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
        assert stats.js_distance(ref, cur) == pytest.approx(expected, abs=1e-12)
    assert stats.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_hellinger_and_linf_match_their_definitions() -> None:
    ref = np.array([10, 20, 70])
    cur = np.array([30, 30, 40])
    p, q = ref / ref.sum(), cur / cur.sum()
    expected = np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))
    assert stats.hellinger(ref, cur) == pytest.approx(expected)
    assert stats.hellinger([1, 0], [0, 1]) == pytest.approx(1.0)
    assert stats.linf(ref, cur) == pytest.approx(0.3)


@settings(max_examples=100, deadline=None)
@given(counts_pairs)
def test_distances_are_bounded_symmetric_and_zero_on_equal_proportions(
    pair: tuple[list[int], list[int]],
) -> None:
    ref, cur = (np.array(c) for c in pair)
    for distance in (stats.js_distance, stats.hellinger, stats.linf):
        value = distance(ref, cur)
        assert 0.0 <= value <= 1.0
        assert value == pytest.approx(distance(cur, ref), abs=1e-12)
        assert distance(ref, ref * 3) == pytest.approx(0.0, abs=1e-7)
    assert stats.psi(ref, cur) >= 0.0
    assert stats.psi(ref, cur) == pytest.approx(stats.psi(cur, ref), abs=1e-9)
    assert stats.psi(ref, ref * 7) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 <= stats.ks_from_counts(ref, cur) <= 1.0


def test_counts_functions_refuse_mismatched_or_negative_counts_and_give_nan_when_empty() -> None:
    with pytest.raises(InvalidInput, match="differ in length"):
        stats.psi([1, 2], [1, 2, 3])
    with pytest.raises(InvalidInput, match="negative"):
        stats.linf([1, -2], [1, 2])
    for function in (stats.psi, stats.js_distance, stats.hellinger, stats.linf):
        assert math.isnan(function([0, 0], [1, 2]))
    assert all(math.isnan(v) for v in stats.chi2_test([1, 2], [0, 0]))


# tests on counts


def test_chi2_matches_scipy_contingency_without_continuity_correction() -> None:
    ref = np.array([120, 80, 40, 0])
    cur = np.array([100, 90, 30, 0])  # the last category is empty in both: dropped
    statistic, p_value = stats.chi2_test(ref, cur)
    expected = sps.chi2_contingency(np.vstack([ref[:3], cur[:3]]), correction=False)
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)


def test_chi2_of_a_category_seen_only_in_the_current_window_is_finite_evidence() -> None:
    statistic, p_value = stats.chi2_test([100, 100, 0], [100, 100, 20])
    assert math.isfinite(statistic) and statistic > 10
    assert p_value < 0.01
    assert stats.chi2_test([5, 0], [7, 0]) == (0.0, 1.0)  # one category: nothing to test


def test_chi2_on_two_categories_is_the_square_of_the_two_proportion_z() -> None:
    z, p_z = stats.two_proportion_z(30, 100, 45, 120)
    statistic, p_chi = stats.chi2_test([30, 70], [45, 75])
    assert z > 0
    assert z**2 == pytest.approx(statistic)
    assert p_z == pytest.approx(p_chi)
    assert stats.two_proportion_z(0, 10, 0, 20) == (0.0, 1.0)
    assert all(math.isnan(v) for v in stats.two_proportion_z(1, 0, 1, 2))


def test_ks_from_counts_is_exact_when_each_bin_holds_one_value() -> None:
    rng = np.random.default_rng(2)
    ref = rng.integers(0, 20, size=300).astype(float)
    cur = rng.integers(3, 25, size=200).astype(float)
    edges = np.arange(0, 26, dtype=float)  # [k, k+1) holds exactly the integer k
    expected = sps.ks_2samp(ref, cur).statistic
    counts = stats.histogram(ref, edges), stats.histogram(cur, edges)
    assert stats.ks_from_counts(*counts) == pytest.approx(expected)


def test_wasserstein_from_counts_approximates_the_exact_distance() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=20_000)
    cur = rng.normal(0.4, 1.3, size=20_000)
    edges = stats.quantile_edges(ref, bins=200)
    binned = stats.wasserstein_from_counts(
        edges, stats.histogram(ref, edges), stats.histogram(cur, edges), float(np.std(ref))
    )
    exact = sps.wasserstein_distance(ref, cur) / np.std(ref)
    assert binned == pytest.approx(exact, rel=0.05)


def test_wasserstein_from_counts_integrates_uniform_bins_exactly() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    # U[0, 1] against U[1, 2]: W1 = 1
    assert stats.wasserstein_from_counts(edges, [0, 5, 0, 0], [0, 0, 5, 0], 1.0) == 1.0
    # U[0, 2] against U[1, 2]: F - G is linear, W1 = 1/2; std 0.5 doubles it
    assert stats.wasserstein_from_counts(edges, [0, 5, 5, 0], [0, 0, 5, 0], 0.5) == 1.0
    # CDFs that cross inside a bin: half on [0,1) and half on [2,3) against all on [1,2);
    # each of the three bins adds 1/4 (the middle one as two triangles)
    three = np.array([0.0, 1.0, 2.0, 3.0])
    w = stats.wasserstein_from_counts(three, [0, 1, 0, 1, 0], [0, 0, 2, 0, 0], 1.0)
    assert w == pytest.approx(0.75)
    fine = np.linspace(0, 1, 10_001)[:-1] + 0.5e-4  # the same uniforms, sampled finely
    exact = sps.wasserstein_distance(np.concatenate([fine, fine + 2]), fine + 1)
    assert w == pytest.approx(exact, abs=1e-6)


def test_wasserstein_from_counts_on_a_constant_reference_is_zero_or_inf() -> None:
    edges = stats.quantile_edges(np.full(10, 2.0))
    ref = stats.histogram(np.full(10, 2.0), edges)
    assert stats.wasserstein_from_counts(edges, ref, ref * 3, 0.0) == 0.0
    moved = stats.histogram([2.0, 2.0, 5.0], edges)
    assert stats.wasserstein_from_counts(edges, ref, moved, 0.0) == math.inf
    assert math.isnan(stats.wasserstein_from_counts(np.array([]), [3], [4], 1.0))
    with pytest.raises(InvalidInput, match="edges need"):
        stats.wasserstein_from_counts(edges, [1, 2], [1, 2], 1.0)


# tests on samples


def test_ks_test_matches_scipy_on_the_finite_values() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=400)
    cur = np.concatenate([rng.normal(0.3, size=300), [np.inf, -np.inf, np.nan]])
    expected = sps.ks_2samp(ref, cur[:300])
    assert stats.ks_test(ref, cur) == pytest.approx((expected.statistic, expected.pvalue))
    assert all(math.isnan(v) for v in stats.ks_test(ref, [np.nan, np.inf]))


def test_wasserstein_normalised_matches_scipy_over_the_reference_std() -> None:
    rng = np.random.default_rng(5)
    ref = rng.exponential(size=500)
    cur = np.concatenate([rng.exponential(1.5, size=400), [np.inf]])
    expected = sps.wasserstein_distance(ref, cur[:400]) / np.std(ref)
    assert stats.wasserstein_normalised(ref, cur) == pytest.approx(expected)
    assert stats.wasserstein_normalised(np.full(5, 1.0), np.full(3, 1.0)) == 0.0
    assert stats.wasserstein_normalised(np.full(5, 1.0), [1.0, 1.1]) == math.inf
    assert math.isnan(stats.wasserstein_normalised([], [1.0]))


def test_category_counts_cover_the_union_without_missing_values() -> None:
    categories, ref, cur = stats.category_counts(
        ["a", "b", "a", None, float("nan"), "c", "c", "c"], ["b", "d", "d", "a", None, "e"]
    )
    assert categories == ["c", "a", "b", "d", "e"]
    assert ref.tolist() == [3, 2, 1, 0, 0]
    assert cur.tolist() == [0, 1, 1, 2, 1]
    assert ref.dtype == np.int64 and cur.dtype == np.int64
    empty = stats.category_counts([], [None])
    assert empty[0] == [] and empty[1].size == 0 and empty[2].size == 0
