"""Drift detectors: compare a current window of a column, or of a table, with a reference.

Both detectors follow the scikit-learn contract: the constructor only stores its
arguments, ``fit(reference)`` learns and returns ``self``, learned attributes end in ``_``,
and ``score(current)`` returns a :class:`~ctloop.monitoring.results.DriftResult` (one
column) or a :class:`~ctloop.monitoring.results.DatasetDrift` (a table)::

    detector = DatasetDriftDetector(methods={"age": "psi"}).fit(train)
    drift = detector.score(last_week)
    drift.drifted, drift.drifted_columns

**Column kinds.** Numeric dtypes (integers and floats, nullable ones too, but not bool)
are ``numeric``; bool, category, object and string columns are ``categorical``. A numeric
column with few distinct values (a 0/1 flag, a rating from 1 to 5) stays numeric: its
order carries meaning and KS and Wasserstein use it. Pass ``kind="categorical"`` (or
``kinds={"rating": "categorical"}``) to test it as categories. Datetimes and other dtypes
are refused (the dataset detector lists them in ``skipped``).

**The automatic method** (``method="auto"``) looks at the kind and at ``n``, the number of
usable reference values (non-missing, and finite for numeric columns):

============  ==========================================  ===========================
kind          n <= 1000                                   n > 1000
============  ==========================================  ===========================
numeric       ``ks``: drift when p < 0.05                 ``wasserstein``: W1 / std >= 0.1
categorical   ``ztest`` if at most two categories, else   ``jensenshannon`` >= 0.1
              ``chisquare``: drift when p < 0.05
============  ==========================================  ===========================

Small references get a test, because a distance is noisy on few rows; large ones get an
effect size, because at large ``n`` every test rejects on differences too small to
matter: two samples of a million rows from one distribution are never flagged. (The same
rule as Evidently's, which also sends numeric columns with at most five distinct values to
the categorical tests; ctloop keeps them numeric, see above.)

**Default thresholds.** p-value methods (``ks``, ``chisquare``, ``ztest``) flag drift when
``p < threshold``, default 0.05; distances flag drift when ``score >= threshold``:
``wasserstein`` 0.1, ``jensenshannon`` 0.1, ``hellinger`` 0.1, ``linf`` 0.1, ``psi`` 0.2 (the
usual reading: below 0.1 stable, 0.1–0.2 a moderate shift, above 0.2 a significant one).

**Edge cases.** NaN is never dropped silently: each result carries the missing share of
both windows, and the infinite share for numeric columns. Neither counts in the test:
±inf is left out of ``ks`` and ``wasserstein`` and falls in the underflow and overflow bins
of the histogram methods (``psi``, ``jensenshannon``, ``hellinger``). An empty window, or a
column with no usable values in either window, gives ``score=nan``, ``drifted=False`` and a
``note``. A constant numeric reference has standard deviation 0: its normalised Wasserstein
distance is 0 if the current window holds the same constant and ``inf`` (drift) otherwise.
A category unseen in the reference is evidence of drift in every categorical method, listed
in the note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ctloop.errors import InvalidInput
from ctloop.monitoring import stats
from ctloop.monitoring.results import DatasetDrift, DriftResult

if TYPE_CHECKING:
    from typing import Self

    import numpy.typing as npt

__all__ = [
    "ALL_METHODS",
    "AUTO_MAX_SMALL",
    "DEFAULT_THRESHOLDS",
    "HISTOGRAM_METHODS",
    "KINDS",
    "METHODS",
    "P_VALUE_METHODS",
    "ColumnDriftDetector",
    "DatasetDriftDetector",
    "choose_method",
    "column_kind",
]

KINDS = ("numeric", "categorical")
METHODS: dict[str, tuple[str, ...]] = {
    "numeric": ("ks", "wasserstein", "psi", "jensenshannon", "hellinger"),
    "categorical": ("chisquare", "ztest", "jensenshannon", "psi", "hellinger", "linf"),
}
ALL_METHODS = tuple(sorted({m for methods in METHODS.values() for m in methods}))
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "ztest": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "hellinger": 0.1,
    "linf": 0.1,
    "psi": 0.2,
}
P_VALUE_METHODS = frozenset({"ks", "chisquare", "ztest"})
HISTOGRAM_METHODS = frozenset({"psi", "jensenshannon", "hellinger"})
AUTO_MAX_SMALL = 1000
"""Up to this many usable reference values, ``auto`` picks a test; above, a distance."""


def column_kind(values: pd.Series[Any]) -> str:
    """``numeric`` or ``categorical`` from a column's dtype.

    Raises:
        InvalidInput: for dtypes with no drift test (datetimes, complex numbers, …).
    """
    dtype = values.dtype
    if ptypes.is_bool_dtype(dtype):
        return "categorical"
    if ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype):
        return "numeric"
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or ptypes.is_object_dtype(dtype)
        or ptypes.is_string_dtype(dtype)
    ):
        return "categorical"
    raise InvalidInput(
        f"column {_label(values.name)} has dtype {dtype}, which has no drift test; "
        "convert it to numbers or categories, or leave it out with columns=[...]"
    )


def choose_method(kind: str, n_values: int, n_categories: int = 0) -> str:
    """The automatic method for a column of ``kind`` with ``n_values`` usable reference
    values (and ``n_categories`` reference categories when categorical)."""
    small = n_values <= AUTO_MAX_SMALL
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    if small:
        return "ztest" if n_categories <= 2 else "chisquare"
    return "jensenshannon"


def _label(name: Any) -> str:
    return "(unnamed)" if name is None else repr(str(name))


def _check_choice(value: Any, choices: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


def _as_series(values: Any, name: Any = None) -> pd.Series[Any]:
    if isinstance(values, pd.DataFrame):
        raise InvalidInput(
            "a column detector takes one column (a Series or an array), got a DataFrame; "
            "use DatasetDriftDetector for tables"
        )
    if isinstance(values, pd.Series):
        return values
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInput(f"expected one column of values, got an array of shape {array.shape}")
    return pd.Series(array, name=name)


def _numeric(values: pd.Series[Any], column: str) -> npt.NDArray[np.float64]:
    if not (ptypes.is_numeric_dtype(values.dtype) or ptypes.is_bool_dtype(values.dtype)):
        try:
            values = pd.to_numeric(values, errors="raise")
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"column {column} is numeric in the reference but holds non-numbers here "
                f"({exc}); fix the data or test it as kind='categorical'"
            ) from None
    if ptypes.is_complex_dtype(values.dtype):
        raise InvalidInput(f"column {column} holds complex numbers, which have no drift test")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _category_counts(values: pd.Series[Any]) -> dict[Any, int]:
    try:
        counts = values.value_counts(dropna=True, sort=False)
        return {key: int(n) for key, n in counts.items() if n > 0}
    except TypeError as exc:  # unhashable values such as lists
        raise InvalidInput(
            f"column {_label(values.name)} holds values that cannot be categories ({exc})"
        ) from None


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class ColumnDriftDetector:
    """Drift of one column: learns the reference in ``fit``, tests a window in ``score``.

    Args:
        method: ``auto`` (see the module docstring) or one of ``ks``, ``wasserstein``,
            ``psi``, ``jensenshannon``, ``hellinger`` (numeric) or ``chisquare``,
            ``ztest``, ``jensenshannon``, ``psi``, ``hellinger``, ``linf`` (categorical).
        threshold: the p-value below which (tests) or the score at or above which
            (distances) the column drifted; None takes the method's default.
        kind: ``numeric`` or ``categorical``; None infers it from the dtype.
        bins: quantile bins of the reference for the histogram methods on numeric columns.

    Learned attributes: ``name_``, ``kind_``, ``method_``, ``threshold_``,
    ``reference_rows_``, ``reference_values_count_`` (usable values),
    ``missing_share_``, ``infinite_share_``; numeric: ``reference_std_``,
    ``reference_values_`` (sorted finite values, for ``ks`` and ``wasserstein``) or
    ``edges_`` and ``reference_counts_`` (histogram methods); categorical:
    ``categories_`` and ``reference_counts_``.
    """

    def __init__(
        self,
        method: str = "auto",
        threshold: float | None = None,
        kind: str | None = None,
        bins: int = 10,
    ) -> None:
        self.method = method
        self.threshold = threshold
        self.kind = kind
        self.bins = bins

    def fit(self, reference: Any) -> Self:
        """Learn the reference column (a Series or a one-dimensional array)."""
        series = _as_series(reference)
        _check_choice(self.method, ("auto", *ALL_METHODS), "drift method")
        if self.kind is not None:
            _check_choice(self.kind, KINDS, "column kind")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise InvalidInput(f"bins must be a positive integer, got {self.bins!r}")
        self.name_ = "value" if series.name is None else str(series.name)
        label = _label(self.name_)
        self.kind_ = self.kind or column_kind(series)
        self.reference_rows_ = len(series)

        if self.kind_ == "numeric":
            values = _numeric(series, label)
            finite = values[np.isfinite(values)]
            n_missing = int(np.isnan(values).sum())
            self.infinite_share_ = _share(int(np.isinf(values).sum()), len(values))
            self.reference_values_count_ = int(finite.size)
            self.reference_std_ = float(np.std(finite)) if finite.size else math.nan
            method = self.method
            if method == "auto":
                method = choose_method("numeric", finite.size)
        else:
            counts = _category_counts(series)
            n_missing = int(series.isna().sum())
            self.infinite_share_ = 0.0
            self.categories_ = sorted(counts, key=lambda k: (-counts[k], str(k)))
            self.reference_counts_ = np.array([counts[k] for k in self.categories_], dtype=np.int64)
            self.reference_values_count_ = int(self.reference_counts_.sum())
            method = self.method
            if method == "auto":
                method = choose_method(
                    "categorical", self.reference_values_count_, len(self.categories_)
                )
        self.missing_share_ = _share(n_missing, self.reference_rows_)

        if method not in METHODS[self.kind_]:
            raise InvalidInput(
                f"method {method!r} does not apply to the {self.kind_} column {label}; "
                f"choose one of: {', '.join(METHODS[self.kind_])}"
            )
        if method == "ztest" and len(self.categories_) > 2:
            raise InvalidInput(
                f"method 'ztest' compares the share of one category, but column {label} has "
                f"{len(self.categories_)} categories in the reference; use chisquare or "
                "jensenshannon"
            )
        self.method_ = method
        threshold = DEFAULT_THRESHOLDS[method] if self.threshold is None else self.threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not math.isfinite(threshold)
            or threshold < 0
        ):
            raise InvalidInput(
                f"threshold must be a non-negative number, got {threshold!r} for {label}"
            )
        self.threshold_ = float(threshold)

        if self.kind_ == "numeric":
            if method in HISTOGRAM_METHODS:
                self.edges_ = stats.quantile_edges(finite, self.bins)
                self.reference_counts_ = stats.histogram(values, self.edges_)
            else:
                self.reference_values_ = np.sort(finite)
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "method_"):
            raise InvalidInput(
                f"this {type(self).__name__} is not fitted yet; call fit(reference) first"
            )

    def score(self, current: Any) -> DriftResult:
        """Compare a current window of the column with the reference."""
        self._fitted()
        series = _as_series(current, self.name_)
        rows = len(series)
        base: dict[str, Any] = {
            "column": self.name_,
            "kind": self.kind_,
            "method": self.method_,
            "threshold": self.threshold_,
            "reference_rows": self.reference_rows_,
            "current_rows": rows,
            "missing_share_reference": self.missing_share_,
            "infinite_share_reference": self.infinite_share_,
        }

        def unscored(note: str, **shares: Any) -> DriftResult:
            return DriftResult(score=math.nan, drifted=False, note=note, **base, **shares)

        if rows == 0:
            return unscored("empty window: the current window has no rows")
        if self.kind_ == "numeric":
            return self._score_numeric(_numeric(series, _label(self.name_)), base, unscored)
        return self._score_categorical(series, base, unscored)

    def _score_numeric(
        self, values: npt.NDArray[np.float64], base: dict[str, Any], unscored: Any
    ) -> DriftResult:
        shares: dict[str, Any] = {
            "missing_share_current": _share(int(np.isnan(values).sum()), len(values)),
            "infinite_share_current": _share(int(np.isinf(values).sum()), len(values)),
        }
        if self.reference_values_count_ == 0:
            return unscored("the reference column has no finite values", **shares)
        method = self.method_
        p_value: float | None = None
        note: str | None = None
        if method in HISTOGRAM_METHODS:
            counts = stats.histogram(values, self.edges_)
            if counts.sum() == 0:
                return unscored("the current window has no values (all missing)", **shares)
            score = float(stats.DISTANCES[method](self.reference_counts_, counts))
        else:
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                return unscored("the current window has no finite values", **shares)
            if method == "ks":
                score, p_value = stats.ks_test(self.reference_values_, finite)
            else:
                score = stats.wasserstein_normalised(self.reference_values_, finite)
                if self.reference_std_ == 0:
                    note = "constant reference column: any change counts as drift"
        return DriftResult(
            score=score,
            drifted=self._drifted(score, p_value),
            p_value=p_value,
            note=note,
            **base,
            **shares,
        )

    def _score_categorical(
        self, series: pd.Series[Any], base: dict[str, Any], unscored: Any
    ) -> DriftResult:
        counts = _category_counts(series)
        shares: dict[str, Any] = {
            "missing_share_current": _share(int(series.isna().sum()), len(series))
        }
        if self.reference_values_count_ == 0:
            return unscored("the reference column has no values (all missing)", **shares)
        if not counts:
            return unscored("the current window has no values (all missing)", **shares)
        known = set(self.categories_)
        new = sorted((k for k in counts if k not in known), key=lambda k: (-counts[k], str(k)))
        ref = np.concatenate([self.reference_counts_, np.zeros(len(new), dtype=np.int64)])
        cur = np.array([counts.get(k, 0) for k in [*self.categories_, *new]], dtype=np.int64)
        method = self.method_
        p_value: float | None = None
        if method == "chisquare":
            score, p_value = stats.chi2_test(ref, cur)
        elif method == "ztest":
            z, p_value = stats.two_proportion_z(
                int(ref[0]), int(ref.sum()), int(cur[0]), int(cur.sum())
            )
            score = abs(z)
        else:
            score = float(stats.DISTANCES[method](ref, cur))
        note = None
        if new:
            shown = ", ".join(repr(k) for k in new[:5]) + (", …" if len(new) > 5 else "")
            note = f"{len(new)} categories not in the reference: {shown}"
        return DriftResult(
            score=score,
            drifted=self._drifted(score, p_value),
            p_value=p_value,
            note=note,
            **base,
            **shares,
        )

    def _drifted(self, score: float, p_value: float | None) -> bool:
        if self.method_ in P_VALUE_METHODS:
            return p_value is not None and not math.isnan(p_value) and p_value < self.threshold_
        return not math.isnan(score) and score >= self.threshold_


class DatasetDriftDetector:
    """Drift of every column of a table, and the verdict for the table.

    Args:
        methods: None (``auto`` everywhere); one method name, for every column of the kinds
            it applies to (``ks`` for numeric columns, categorical ones stay ``auto``); or a
            dict whose keys are column names or the kinds ``numeric`` / ``categorical`` (a
            column's own entry wins).
        thresholds: None (each method's default) or a dict keyed by column name or by
            method name (a column's own entry wins).
        drift_share: the table drifted when at least this share of the tested columns did.
        columns: the columns to test; None tests every column of the reference.
        kinds: a dict of column name to ``numeric`` / ``categorical``, overriding the dtype.
        bins: quantile bins for the histogram methods on numeric columns.

    Learned attributes: ``columns_`` (the tested columns), ``detectors_`` (column →
    fitted :class:`ColumnDriftDetector`), ``kinds_``, ``methods_``, ``thresholds_`` (column
    → value) and ``skipped_`` (column → why it cannot be tested).
    """

    def __init__(
        self,
        methods: str | Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        drift_share: float = 0.5,
        columns: Sequence[str] | None = None,
        kinds: Mapping[str, str] | None = None,
        bins: int = 10,
    ) -> None:
        self.methods = methods
        self.thresholds = thresholds
        self.drift_share = drift_share
        self.columns = columns
        self.kinds = kinds
        self.bins = bins

    def fit(self, reference: pd.DataFrame) -> Self:
        """Learn every column of the reference table."""
        if not isinstance(reference, pd.DataFrame):
            raise InvalidInput(
                f"the reference must be a pandas DataFrame, got {type(reference).__name__}"
            )
        share = self.drift_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise InvalidInput(f"drift_share must be in (0, 1], got {share!r}")
        duplicated = sorted({str(c) for c in reference.columns[reference.columns.duplicated()]})
        if duplicated:
            raise InvalidInput(f"the reference has duplicated columns: {', '.join(duplicated)}")
        columns = list(reference.columns) if self.columns is None else list(self.columns)
        absent = [str(c) for c in columns if c not in reference.columns]
        if absent:
            raise InvalidInput(
                f"columns not in the reference: {', '.join(absent)}; "
                f"it has: {', '.join(map(str, reference.columns))}"
            )
        methods = self._methods_by_key(columns)
        thresholds = dict(self.thresholds or {})
        kinds = dict(self.kinds or {})
        check_keys(thresholds, {*map(str, columns), *ALL_METHODS}, "thresholds")
        check_keys(kinds, set(map(str, columns)), "kinds")

        self.detectors_: dict[str, ColumnDriftDetector] = {}
        self.skipped_: dict[str, str] = {}
        for column in columns:
            name = str(column)
            series = reference[column]
            try:
                kind = kinds.get(name) or column_kind(series)
            except InvalidInput as exc:
                self.skipped_[name] = exc.message
                continue
            requested = name in kinds or name in methods or kind in methods
            try:
                detector = ColumnDriftDetector(
                    method=methods.get(name) or methods.get(kind) or "auto",
                    threshold=thresholds.get(name),
                    kind=kind,
                    bins=self.bins,
                ).fit(series.rename(name))
            except InvalidInput as exc:
                if requested:
                    raise  # the caller asked for something this column cannot do: say so
                self.skipped_[name] = exc.message
                continue
            if name not in thresholds and detector.method_ in thresholds:
                detector.threshold_ = float(thresholds[detector.method_])
            self.detectors_[name] = detector
        self.columns_ = list(self.detectors_)
        self.kinds_ = {c: d.kind_ for c, d in self.detectors_.items()}
        self.methods_ = {c: d.method_ for c, d in self.detectors_.items()}
        self.thresholds_ = {c: d.threshold_ for c, d in self.detectors_.items()}
        self._reference_columns = {str(c) for c in reference.columns}
        return self

    def _methods_by_key(self, columns: Sequence[Any]) -> dict[str, str]:
        if self.methods is None:
            return {}
        if isinstance(self.methods, str):
            method = _check_choice(self.methods, ("auto", *ALL_METHODS), "drift method")
            # one name covers the kinds it applies to; the other kind stays automatic
            return {k: method for k in KINDS if method == "auto" or method in METHODS[k]}
        methods = dict(self.methods)
        check_keys(methods, {*map(str, columns), *KINDS}, "methods")
        return methods

    def score(self, current: pd.DataFrame) -> DatasetDrift:
        """Test every fitted column of a current window; see :class:`DatasetDrift`."""
        if not hasattr(self, "detectors_"):
            raise InvalidInput(
                "this DatasetDriftDetector is not fitted yet; call fit(reference) first"
            )
        if not isinstance(current, pd.DataFrame):
            raise InvalidInput(
                f"the current window must be a pandas DataFrame, got {type(current).__name__}"
            )
        by_name = {str(c): c for c in current.columns}
        skipped = dict(self.skipped_)
        results: list[DriftResult] = []
        for name, detector in self.detectors_.items():
            if name not in by_name:
                skipped[name] = "missing from the current window"
                continue
            try:
                results.append(detector.score(current[by_name[name]]))
            except InvalidInput as exc:
                skipped[name] = exc.message
        if self.columns is None:
            for name in by_name:
                if name not in self._reference_columns:
                    skipped[name] = "not in the reference"
        drifted = sum(r.drifted for r in results)
        drifted_share = drifted / len(results) if results else 0.0
        return DatasetDrift(
            columns=results,
            drift_share=float(self.drift_share),
            drifted_share=drifted_share,
            drifted=bool(results) and drifted_share >= self.drift_share,
            skipped=skipped,
        )


def check_keys(given: Mapping[str, Any], allowed: set[str], what: str) -> None:
    """Refuse keys of ``given`` (a methods or thresholds mapping) that name nothing known."""
    unknown = sorted(str(k) for k in given if k not in allowed)
    if unknown:
        raise InvalidInput(
            f"{what} names unknown keys: {', '.join(unknown)}; "
            f"use column names or: {', '.join(sorted(allowed))}"
        )
