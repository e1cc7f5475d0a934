"""Drift between a reference profile and a window profile, and threshold calibration.

Every score comes from the two profiles' counts, never from rows: PSI, Jensen–Shannon,
Hellinger, L∞ and chi-squared over the bins (or categories), and KS and the normalised
Wasserstein distance either from the samples both profiles carry or, without them,
approximated from the bins (see :func:`drift`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ctloop.errors import InvalidInput
from ctloop.monitoring import stats
from ctloop.monitoring.detectors import (
    DEFAULT_THRESHOLDS,
    KINDS,
    METHODS,
    P_VALUE_METHODS,
    check_keys,
    choose_method,
)
from ctloop.monitoring.profiles import (
    CategoricalColumn,
    ColumnProfile,
    NumericColumn,
    ReferenceProfile,
    WindowProfile,
)
from ctloop.monitoring.results import DatasetDrift, DriftResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PROFILE_METHODS", "calibrate", "drift"]

#: The methods a profile supports per kind: the detectors' methods, and on numeric bins
#: also ``linf`` and ``chisquare``.
PROFILE_METHODS: dict[str, tuple[str, ...]] = {
    "numeric": (*METHODS["numeric"], "linf", "chisquare"),
    "categorical": METHODS["categorical"],
}

Methods = str | Mapping[str, str] | None


def _usable(column: ColumnProfile) -> int:
    """Values a test can use: finite numbers, or non-missing categories."""
    return column.n if isinstance(column, NumericColumn) else column.values


def _method(column: ColumnProfile, methods: Methods) -> str:
    """The method for one column, as the detectors choose it: a column's own entry, then
    its kind's, then the automatic rule; one name covers the kinds it applies to."""
    kind = column.kind
    if isinstance(methods, str):
        named: str | None = methods if methods in PROFILE_METHODS[kind] else None
    else:
        named = (methods or {}).get(column.name) or (methods or {}).get(kind)
    if named is None or named == "auto":
        n_categories = 0
        if isinstance(column, CategoricalColumn):
            n_categories = len(column.categories) + (1 if column.other else 0)
        return choose_method(kind, _usable(column), n_categories)
    if named not in PROFILE_METHODS[kind]:
        raise InvalidInput(
            f"method {named!r} does not apply to the {kind} column {column.name!r}; "
            f"choose one of: {', '.join(PROFILE_METHODS[kind])}"
        )
    return named


def _categorical_counts(
    ref: CategoricalColumn, cur: CategoricalColumn
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts over the reference's categories (most frequent first), the window's new
    ones, then "other"; and the new categories.

    When the reference folded categories into "other", a window category it does not
    list may be one of those, so it is counted as "other" rather than as new.
    """
    labels = sorted(ref.categories, key=lambda c: (-ref.categories[c], c))
    new = sorted(
        (c for c in cur.categories if c not in ref.categories),
        key=lambda c: (-cur.categories[c], c),
    )
    r = [ref.categories[c] for c in labels]
    c = [cur.categories.get(label, 0) for label in labels]
    cur_other = cur.other
    if ref.truncated:
        cur_other += sum(cur.categories[n] for n in new)
        new = []
    else:
        r += [0] * len(new)
        c += [cur.categories[n] for n in new]
    if ref.other or cur_other:
        r.append(ref.other)
        c.append(cur_other)
    return np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64), new


def _ks_p_value(statistic: float, n: int, m: int) -> float:
    """The asymptotic two-sample KS p-value (a binned statistic is a lower bound of the
    exact one, so this p-value is conservative)."""
    from scipy import special

    if not math.isfinite(statistic) or n == 0 or m == 0:
        return math.nan
    return float(min(1.0, special.kolmogorov(statistic * math.sqrt(n * m / (n + m)))))


def _score_numeric(
    method: str, ref: NumericColumn, cur: NumericColumn, use_samples: bool
) -> tuple[float, float | None, str | None]:
    if method in ("ks", "wasserstein"):
        if use_samples and len(ref.sample) and len(cur.sample):
            note = None
            if not (ref.sample_complete and cur.sample_complete):
                note = (
                    f"from uniform samples of {len(ref.sample)} of {ref.n} reference and "
                    f"{len(cur.sample)} of {cur.n} current values"
                )
            if method == "ks":
                statistic, p = stats.ks_test(ref.sample, cur.sample)
                return statistic, p, note
            return stats.wasserstein_normalised(ref.sample, cur.sample), None, note
        binned = f"approximated from {len(ref.counts)} bins"
        if method == "ks":
            statistic = stats.ks_from_counts(ref.counts, cur.counts)
            p = _ks_p_value(statistic, int(ref.counts.sum()), int(cur.counts.sum()))
            return statistic, p, binned
        # the population deviation (ddof=0), as wasserstein_normalised divides by
        std = math.sqrt(ref.m2 / ref.n) if ref.n else math.nan
        return stats.wasserstein_from_counts(ref.edges, ref.counts, cur.counts, std), None, binned
    return _score_counts(method, ref.counts, cur.counts)


def _score_counts(
    method: str, r: np.ndarray, c: np.ndarray
) -> tuple[float, float | None, str | None]:
    if method == "chisquare":
        statistic, p = stats.chi2_test(r, c)
        return statistic, p, None
    if method == "ztest":
        z, p = stats.two_proportion_z(int(r[0]), int(r.sum()), int(c[0]), int(c.sum()))
        return abs(z), p, None
    return stats.DISTANCES[method](r, c), None, None


def _column_drift(
    ref: ColumnProfile, cur: ColumnProfile, method: str, threshold: float, use_samples: bool
) -> DriftResult:
    score: float = math.nan
    p_value: float | None = None
    note: str | None = None
    if _usable(ref) == 0 or _usable(cur) == 0:
        which = "reference" if _usable(ref) == 0 else "current window"
        note = f"the {which} has no usable values (all missing or infinite): nothing to compare"
    elif isinstance(ref, NumericColumn) and isinstance(cur, NumericColumn):
        if not np.array_equal(ref.edges, cur.edges):
            raise InvalidInput(
                f"the window's bins for {ref.name!r} are not the reference's; count the "
                "window with reference.window(...)"
            )
        score, p_value, note = _score_numeric(method, ref, cur, use_samples)
    elif isinstance(ref, CategoricalColumn) and isinstance(cur, CategoricalColumn):
        r, c, new = _categorical_counts(ref, cur)
        score, p_value, _ = _score_counts(method, r, c)
        if new:
            shown = ", ".join(repr(k) for k in new[:5]) + (", …" if len(new) > 5 else "")
            note = f"{len(new)} categories not in the reference: {shown}"
    else:
        raise InvalidInput(
            f"column {ref.name!r} is {ref.kind} in the reference but {cur.kind} in the window"
        )
    if method in P_VALUE_METHODS:
        drifted = p_value is not None and not math.isnan(p_value) and p_value < threshold
    else:
        drifted = not math.isnan(score) and score >= threshold
    return DriftResult(
        column=ref.name,
        kind=ref.kind,
        method=method,
        score=float(score),
        threshold=threshold,
        drifted=drifted,
        p_value=p_value,
        reference_rows=ref.rows,
        current_rows=cur.rows,
        missing_share_reference=ref.missing_share,
        missing_share_current=cur.missing_share,
        infinite_share_reference=ref.infinite_share if isinstance(ref, NumericColumn) else 0.0,
        infinite_share_current=cur.infinite_share if isinstance(cur, NumericColumn) else 0.0,
        note=note,
    )


def drift(
    reference: ReferenceProfile,
    window: WindowProfile,
    *,
    methods: Methods = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    use_samples: bool = True,
) -> DatasetDrift:
    """Per-column drift of ``window`` against ``reference``, from their profiles only.

    Methods and thresholds are chosen as :class:`~ctloop.monitoring.detectors.
    DatasetDriftDetector` chooses them: automatically a numeric column is tested with KS
    (drift when p < 0.05) when the reference has at most 1000 finite values, else
    measured by the normalised Wasserstein distance (drift at 0.1 or more); a
    categorical column with the z-test (two categories) or chi-squared (p < 0.05), else
    the Jensen–Shannon distance (0.1).

    KS and Wasserstein use the profiles' samples when both carry one (exact when the
    samples hold every finite value, else uniform subsamples, said in the note);
    otherwise, or with ``use_samples=False``, they are approximated from the bins: the KS
    statistic is the largest CDF gap at the bin edges (a lower bound, with its asymptotic
    p-value) and Wasserstein spreads each bin's mass over the bin. Every other method is
    exact on the bins. A categorical window's new categories are bins of their own,
    unless the reference folded categories into "other" (then they count as "other").

    Args:
        reference: the reference profile.
        window: a window counted by ``reference.window(...)`` (or merged from such).
        methods: None (automatic); one method, for every column of the kinds it applies
            to; or a dict keyed by column name or kind (``numeric``, ``categorical``).
        thresholds: a dict keyed by column name or method name (a column's entry wins):
            a p-value for ``ks``, ``chisquare`` and ``ztest``, else a score.
        drift_share: the dataset drifts when at least this share of tested columns does.
        use_samples: False computes KS and Wasserstein from the bins only.

    Raises:
        InvalidInput: unknown keys, a method that does not apply to a column, or a
            window whose bins are not the reference's.
    """
    if isinstance(drift_share, bool) or not 0 < drift_share <= 1:
        raise InvalidInput(f"drift_share must be in (0, 1], got {drift_share!r}")
    names = set(reference.columns) | set(reference.skipped)
    thresholds = dict(thresholds or {})
    check_keys(thresholds, names | set(DEFAULT_THRESHOLDS), "thresholds")
    if methods is not None and not isinstance(methods, str):
        check_keys(methods, names | set(KINDS), "methods")
    results: list[DriftResult] = []
    skipped = dict(reference.skipped)
    for name, ref in reference.columns.items():
        cur = window.columns.get(name)
        if cur is None:
            skipped[name] = window.skipped.get(name, "not in the window")
            continue
        method = _method(ref, methods)
        threshold = thresholds.get(name, thresholds.get(method, DEFAULT_THRESHOLDS[method]))
        results.append(_column_drift(ref, cur, method, float(threshold), use_samples))
    tested = len(results)
    share = sum(r.drifted for r in results) / tested if tested else 0.0
    return DatasetDrift(
        columns=results,
        drift_share=drift_share,
        drifted_share=share,
        drifted=tested > 0 and share >= drift_share,
        skipped=skipped,
    )


def calibrate(
    reference_df: pd.DataFrame,
    profile: ReferenceProfile,
    *,
    chunk_rows: int | None = None,
    chunks: int = 50,
    k: float = 3.0,
    seed: int = 0,
    methods: Methods = None,
) -> dict[str, float]:
    """Thresholds where the reference's own chunks stop: mean + k·σ of their scores.

    Each of ``chunks`` random chunks of ``reference_df`` is counted as a window and
    scored against ``profile`` with the method :func:`drift` picks for the column (given
    the same ``methods``). By default a chunk is a bootstrap resample as large as the
    reference; ``chunk_rows`` makes it the size of the windows you will monitor (drawn
    without replacement when the reference has that many rows).

    Only distances are calibrated. A column whose method is a test (KS, chi-squared,
    z-test: the automatic choice for references of at most 1000 values) is left out: its
    p-value threshold already sets the false-alarm rate. Pass ``methods="psi"`` (or any
    distance) to calibrate those columns too.

    Returns:
        ``{column: threshold}``, ready for ``drift(..., thresholds=...)`` with the same
        ``methods``.

    Raises:
        InvalidInput: fewer than two chunks, or an empty reference or chunk size.
    """
    if chunks < 2:
        raise InvalidInput(f"chunks={chunks}: calibration needs at least two for a deviation")
    rows = len(reference_df)
    size = rows if chunk_rows is None else chunk_rows
    if rows == 0 or size < 1:
        raise InvalidInput(
            f"cannot calibrate on {rows} reference rows in chunks of {size}: both must be > 0"
        )
    if methods is not None and not isinstance(methods, str):
        check_keys(methods, set(profile.columns) | set(profile.skipped) | set(KINDS), "methods")
    chosen = {name: _method(column, methods) for name, column in profile.columns.items()}
    chosen = {name: m for name, m in chosen.items() if m not in P_VALUE_METHODS}
    rng = np.random.default_rng(seed)
    replace = chunk_rows is None or size > rows
    scores: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(chunks):
        chunk = reference_df.iloc[rng.choice(rows, size=size, replace=replace)]
        window = profile.window(chunk, seed=int(rng.integers(2**31)))
        for name, method in chosen.items():
            if name in window.columns:
                result = _column_drift(profile.columns[name], window.columns[name], method, 0, True)
                if math.isfinite(result.score):
                    scores[name].append(result.score)
    return {
        name: float(np.mean(values) + k * np.std(values, ddof=1))
        for name, values in scores.items()
        if len(values) >= 2
    }
