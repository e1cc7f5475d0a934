"""Multivariate drift: can a classifier tell the current window from the reference?

:func:`domain_classifier` asks *does the window as a whole look different?* A classifier
learns to tell reference rows from current rows; its cross-validated ROC AUC is 0.5 when
it cannot and approaches 1 when it can, and its permutation importances name the features
it relies on.

The result is a dataclass with ``to_dict()`` returning plain JSON values (NaN → None).
``docs/monitoring.md`` explains the method and its limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ctloop.errors import InvalidInput
from ctloop.monitoring._common import json_float

__all__ = ["MultivariateDrift", "domain_classifier"]


@dataclass(frozen=True)
class MultivariateDrift:
    """How well a classifier tells the current window from the reference.

    Attributes:
        roc_auc: mean cross-validated ROC AUC of the domain classifier (0.5: cannot tell).
        roc_auc_std: its standard deviation across the folds.
        threshold: the AUC from which the window counts as drifted.
        drifted: ``roc_auc >= threshold``.
        importances: ``(feature, importance)`` pairs, most important first; importance is
            the mean drop in held-out AUC when the feature's values are shuffled.
        reference_rows, current_rows: rows used from each side (after subsampling).
        columns: the features the classifier saw.
        folds: the number of cross-validation folds.
    """

    roc_auc: float
    roc_auc_std: float
    threshold: float
    drifted: bool
    importances: list[tuple[str, float]]
    reference_rows: int
    current_rows: int
    columns: list[str]
    folds: int

    @property
    def top_features(self) -> list[str]:
        """Features in order of importance."""
        return [name for name, _ in self.importances]

    def to_dict(self) -> dict[str, Any]:
        return {
            "roc_auc": json_float(self.roc_auc),
            "roc_auc_std": json_float(self.roc_auc_std),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "importances": [
                {"feature": f, "importance": json_float(v)} for f, v in self.importances
            ],
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": list(self.columns),
            "folds": self.folds,
        }


def domain_classifier(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    cv: int = 5,
    max_rows: int = 50_000,
    threshold: float = 0.55,
    importance_repeats: int = 2,
    seed: int = 0,
) -> MultivariateDrift:
    """Multivariate drift: can a classifier tell ``current`` rows from ``reference`` rows?

    A ``HistGradientBoostingClassifier`` (missing values and categoricals handled natively)
    is cross-validated with stratified folds on the two samples labelled 0 and 1. Its
    held-out ROC AUC is about 0.5 when the windows come from one distribution, whatever
    the number of features, and grows with any difference it can exploit, including
    changes in how features go together that no per-column test sees. Each feature's
    importance is the drop in held-out AUC when its values are shuffled (permutation
    importance on the held-out fold, averaged over folds): cheap — a few predictions per
    feature — and in the AUC's own units, so a shifted feature comes first. Correlated
    features share the credit: shuffling one leaves the other to carry the signal.

    Args:
        reference, current: the two samples.
        columns: the features to use; default: the columns both frames have, except
            datetime columns (a timestamp separates any two periods perfectly). Pass the
            ``f.*`` columns when reading the prediction log.
        cv: cross-validation folds (at least 2).
        max_rows: each side is subsampled to at most this many rows.
        threshold: the AUC from which the window counts as drifted. The default 0.55
            sits a few fold-to-fold standard deviations above 0.5 for a few thousand rows
            a side; raise it for small windows, whose AUC is noisier.
        importance_repeats: shuffles per feature and fold.
        seed: for the subsample, the folds, the model and the shuffles.

    Raises:
        InvalidInput: no usable column, or fewer than ``cv`` rows on a side.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    if cv < 2:
        raise InvalidInput(f"cv={cv} is too small: use at least 2 folds")
    if max_rows < cv:
        raise InvalidInput(f"max_rows={max_rows} is smaller than cv={cv}")
    if columns is None:
        columns = [
            c
            for c in reference.columns
            if c in current.columns and not pd.api.types.is_datetime64_any_dtype(reference[c])
        ]
    columns = list(columns)
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise InvalidInput(f"columns {missing} are not in both frames; pass columns=[...]")
    if not columns:
        raise InvalidInput("no column to compare: the frames share no non-datetime column")
    rng = np.random.default_rng(seed)
    ref = _subsample(reference, max_rows, rng)
    cur = _subsample(current, max_rows, rng)
    for name, side in (("reference", ref), ("current", cur)):
        if len(side) < cv:
            raise InvalidInput(f"the {name} window has {len(side)} rows; need at least cv={cv}")
    x, categorical = _design(ref[columns], cur[columns])
    y = np.r_[np.zeros(len(ref), dtype=np.int8), np.ones(len(cur), dtype=np.int8)]

    aucs: list[float] = []
    importance = np.zeros(len(columns))
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    for train, test in folds.split(x, y):
        model = HistGradientBoostingClassifier(
            max_iter=100,
            early_stopping=False,
            categorical_features=categorical if categorical.any() else None,
            random_state=seed,
        )
        model.fit(x[train], y[train])
        aucs.append(float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])))
        # enough held-out rows to rank the features, at most ~200k shuffled rows a fold
        some = test[: max(200, min(5_000, 200_000 // (len(columns) * importance_repeats)))]
        base = aucs[-1] if len(some) == len(test) else None
        if base is None:
            base = float(roc_auc_score(y[some], model.predict_proba(x[some])[:, 1]))
        importance += _permutation_drop(model, x[some], y[some], importance_repeats, rng, base)
    importance /= cv
    ranked = sorted(zip(columns, importance.tolist(), strict=True), key=lambda t: -t[1])
    auc = float(np.mean(aucs))
    return MultivariateDrift(
        roc_auc=auc,
        roc_auc_std=float(np.std(aucs)),
        threshold=threshold,
        drifted=auc >= threshold,
        importances=ranked,
        reference_rows=len(ref),
        current_rows=len(cur),
        columns=columns,
        folds=cv,
    )


def _permutation_drop(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    repeats: int,
    rng: np.random.Generator,
    base: float,
) -> np.ndarray:
    """Per column: held-out AUC minus the mean AUC with that column shuffled.

    All shuffled copies are stacked and scored in one call: a boosted model's cost per
    call is dominated by walking its trees, not by the rows.
    """
    from sklearn.metrics import roc_auc_score

    m, f = x.shape
    copies = np.tile(x, (f * repeats, 1))
    for j in range(f):
        for r in range(repeats):
            block = slice((j * repeats + r) * m, (j * repeats + r + 1) * m)
            copies[block, j] = x[rng.permutation(m), j]
    scores = model.predict_proba(copies)[:, 1].reshape(f, repeats, m)
    aucs = np.array([[roc_auc_score(y, s) for s in per_column] for per_column in scores])
    return np.asarray(base - aucs.mean(axis=1))


def _subsample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]


def _design(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Both samples stacked as a float matrix, and which columns are categorical.

    Numbers and booleans stay numbers; labels become the codes of one set of levels shared
    by both sides (NaN when missing), declared categorical up to 250 levels (the model bins
    at most 255) and compared as ordinal numbers beyond (an id, free text). Encoding once
    here keeps every later prediction a plain array operation.
    """
    columns, categorical = [], []
    for c in ref.columns:
        both = pd.concat([ref[c], cur[c]], ignore_index=True)
        if pd.api.types.is_bool_dtype(both) or pd.api.types.is_numeric_dtype(both):
            columns.append(both.to_numpy(dtype="float64", na_value=np.nan))
            categorical.append(False)
        elif pd.api.types.is_datetime64_any_dtype(both):
            ns = both.astype("int64").astype("float64")
            columns.append(ns.where(both.notna()).to_numpy())
            categorical.append(False)
        else:
            values = both.astype("object").where(both.notna())
            cat = pd.Categorical(values.map(lambda v: v if v is None else str(v)))
            codes = cat.codes.astype("float64")
            codes[cat.codes < 0] = np.nan
            columns.append(codes)
            categorical.append(len(cat.categories) <= 250)
    return np.column_stack(columns), np.array(categorical, dtype=bool)
