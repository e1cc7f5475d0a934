"""What :func:`ctloop.evaluation.evaluate` reads from a model and a target, and how.

Kept apart from the metrics: turning user values (pandas, lists, numpy; a fitted
scikit-learn estimator or a :class:`~ctloop.models.loading.LoadedModel`) into clean arrays,
guessing the task, and encoding class labels as indices into one class list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ctloop.errors import InvalidInput

CLASSIFICATION = "classification"
REGRESSION = "regression"
# y with at most this many distinct integer values, and no model to ask, is taken as labels
MAX_GUESSED_CLASSES = 50


def as_vector(values: Any, what: str) -> np.ndarray:
    """``values`` (Series, list, array, one-column frame) as a 1-D numpy array."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInput(
            f"{what} must be one value per row, got an array of shape {arr.shape}; "
            "evaluate one target at a time"
        )
    return arr


def _is_missing(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind == "O":
        import pandas as pd

        return np.asarray(pd.isna(arr), dtype=bool)
    return np.zeros(len(arr), dtype=bool)


def check_complete(arr: np.ndarray, what: str, hint: str) -> None:
    """Raise for missing values (NaN/None) in ``arr``, naming the first rows."""
    missing = np.flatnonzero(_is_missing(arr))
    if len(missing):
        rows = ", ".join(str(i) for i in missing[:5])
        raise InvalidInput(
            f"{what} has {len(missing)} missing value(s) (rows {rows}"
            f"{', …' if len(missing) > 5 else ''}); {hint}"
        )


def as_floats(arr: np.ndarray, what: str) -> np.ndarray:
    """Numeric values as float64, or an error naming a value that is not a number."""
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        sample = next((v for v in arr.tolist() if not _number(v)), arr[0])
        raise InvalidInput(
            f"{what} holds {sample!r}, which is not a number; a regression needs numeric "
            "targets (pass task='classification' for class labels)"
        ) from None


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# --- task -----------------------------------------------------------------------------------


def model_kind(model: Any) -> tuple[str | None, str]:
    """``(classification | regression | None, why)`` from what the model says it is."""
    from ctloop.models.loading import LoadedModel

    if isinstance(model, LoadedModel):
        output = model.signature.output if model.signature is not None else None
        if output is not None:
            kind = REGRESSION if output.kind == "regression" else CLASSIFICATION
            return kind, f"the model's signature says its output is {output.kind}"
        model = model.raw
    estimator_type = getattr(model, "_estimator_type", None)
    if estimator_type in ("classifier", "regressor"):
        kind = CLASSIFICATION if estimator_type == "classifier" else REGRESSION
        return kind, f"the model is a {estimator_type}"
    if (type(model).__module__ or "").startswith("sklearn."):
        from sklearn.base import is_classifier, is_regressor

        if is_classifier(model):
            return CLASSIFICATION, "the model is a scikit-learn classifier"
        if is_regressor(model):
            return REGRESSION, "the model is a scikit-learn regressor"
    if _method(model, "predict_proba") is not None:
        return CLASSIFICATION, "the model has predict_proba"
    return None, ""


def target_kind(y: np.ndarray) -> tuple[str, bool]:
    """``(the task y alone suggests, whether y holds non-integer numbers)``.

    Text, booleans and categories are labels; numbers with a fractional part are a
    regression target; whole numbers are labels when there are at most
    ``MAX_GUESSED_CLASSES`` distinct values, else a regression target (counts).
    """
    kind = y.dtype.kind
    if kind in "bUS":
        return CLASSIFICATION, False
    if kind == "O":
        if not all(_number(v) and not isinstance(v, bool | str) for v in y.tolist()):
            return CLASSIFICATION, False
        y = y.astype(np.float64)
        kind = "f"
    if kind == "f":
        finite = y[np.isfinite(y)]
        if not np.all(finite == np.round(finite)):
            return REGRESSION, True
    distinct = len(np.unique(y))
    return (CLASSIFICATION if distinct <= MAX_GUESSED_CLASSES else REGRESSION), False


def infer_kind(model: Any, y: np.ndarray) -> tuple[str, str]:
    """The task (classification or regression) for ``model`` on target ``y``, and why.

    The model's own word wins (signature, scikit-learn estimator type, ``predict_proba``);
    without it, ``y`` decides (see :func:`target_kind`).

    Raises:
        InvalidInput: a classifier with a continuous target.
    """
    kind, why = model_kind(model)
    guess, fractional = target_kind(y)
    if kind == CLASSIFICATION and fractional:
        sample = next(v for v in y.tolist() if v != round(v))
        raise InvalidInput(
            f"y holds continuous values (e.g. {sample!r}) but {why}: pass the class labels "
            "as y, or task='regression' to score its predictions as numbers"
        )
    if kind is not None:
        return kind, why
    return guess, f"inferred from y ({'continuous' if guess == REGRESSION else 'labels'})"


# --- what a model gives --------------------------------------------------------------------


def _method(model: Any, name: str) -> Any:
    try:
        fn = getattr(model, name, None)
    except Exception:  # e.g. scikit-learn's available_if raising on an unfitted step
        return None
    return fn if callable(fn) else None


def model_scores(model: Any, x: Any) -> tuple[Any, str | None]:
    """``(scores, kind)``: ``predict_proba`` (``probability``), else ``decision_function``
    (``decision``), else ``(None, None)``."""
    from ctloop.models.loading import LoadedModel

    if isinstance(model, LoadedModel):
        if model.is_classifier:
            return model.predict_proba(x), "probability"
        return None, None
    proba = _method(model, "predict_proba")
    if proba is not None:
        return proba(x), "probability"
    decision = _method(model, "decision_function")
    if decision is not None:
        return decision(x), "decision"
    return None, None


def model_classes(model: Any) -> list[Any] | None:
    """The model's class labels in score-column order, when it says."""
    from ctloop.models.loading import LoadedModel

    if isinstance(model, LoadedModel):
        if model.classes is not None:
            return [_scalar(c) for c in model.classes]
        model = model.raw
    try:
        classes = getattr(model, "classes_", None)
    except Exception:  # a property of an exotic model; treat as absent
        return None
    return None if classes is None else [_scalar(c) for c in classes]


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- class labels -------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """Labels as indices into ``classes``, scores as an ``(n, k)`` matrix in that order."""

    classes: list[Any]
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray | None
    positive: int


def _labels_in_order(values: np.ndarray) -> list[Any]:
    import pandas as pd

    seen = [_scalar(v) for v in pd.unique(values)]
    try:
        return sorted(seen)
    except TypeError:  # mixed types: keep the order of first appearance
        return seen


def _indices(values: np.ndarray, classes: list[Any]) -> np.ndarray:
    import pandas as pd

    index = pd.Index(classes, dtype=object)
    return np.asarray(index.get_indexer(pd.Index(values.tolist(), dtype=object)), dtype=np.intp)


def _score_matrix(scores: Any, n: int, k: int, score_kind: str) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        if k != 2:
            raise InvalidInput(
                f"got one score per row for {k} classes; give one score column per class"
            )
        # one column = the score of the second class (scikit-learn's binary convention)
        other = 1.0 - arr if score_kind == "probability" else -arr
        arr = np.column_stack([other, arr])
    if arr.shape != (n, k):
        raise InvalidInput(
            f"the scores have shape {arr.shape}, expected ({n}, {k}): one row per row of y "
            "and one column per class"
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("the scores hold NaN or infinite values; check the model's output")
    return arr


def encode(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: Any,
    classes: list[Any] | None,
    pos_label: Any,
    score_kind: str,
) -> Encoded:
    """Encode labels (and scores) of a classification against one class list.

    ``classes`` (the model's, in score-column order) is extended by labels it lacks that
    occur in ``y_pred``, or in ``y_true`` when there are no scores; a true label without a
    score column is an error, since log loss and ROC AUC cannot be computed for it.

    Raises:
        InvalidInput: unknown true labels with scores, fewer than two classes, a
            ``pos_label`` that is not a class, or scores of the wrong shape.
    """
    n = len(y_true)
    if classes is None:
        base = _labels_in_order(np.concatenate([y_true.astype(object), y_pred.astype(object)]))
        columns = np.shape(scores)[1] if scores is not None and np.ndim(scores) == 2 else 0
        # without classes, score columns follow the sorted labels (scikit-learn's convention)
        if columns > 1 and columns != len(base):
            raise InvalidInput(
                f"got {columns} score columns but {len(base)} labels in y and the predictions "
                f"({base[:10]}); pass classes=[...] naming the label of each score column"
            )
    else:
        base = [_scalar(c) for c in classes]
        if len(set(base)) != len(base):
            raise InvalidInput(f"the classes {base} hold a label twice; list each once")
    true_idx = _indices(y_true, base)
    unknown_true = _labels_in_order(y_true[true_idx < 0]) if np.any(true_idx < 0) else []
    if unknown_true and scores is not None:
        raise InvalidInput(
            f"y holds label(s) {unknown_true[:5]} that the model has no score for (its classes "
            f"are {base}); evaluate on rows with labels the model knows, or map them first"
        )
    matrix = None if scores is None else _score_matrix(scores, n, len(base), score_kind)
    pred_idx = _indices(y_pred, base)
    unknown_pred = _labels_in_order(y_pred[pred_idx < 0]) if np.any(pred_idx < 0) else []
    new = unknown_true + [c for c in unknown_pred if c not in unknown_true]
    extra = _labels_in_order(np.array(new, dtype=object)) if new else []
    all_classes = base + extra
    if extra:
        true_idx = _indices(y_true, all_classes)
        pred_idx = _indices(y_pred, all_classes)
        if matrix is not None:  # labels predicted without a score column score 0
            matrix = np.hstack([matrix, np.zeros((n, len(all_classes) - len(base)))])
    if len(all_classes) < 2:
        raise InvalidInput(
            f"y and the predictions hold one class only ({all_classes}); classification "
            "metrics need at least two classes (pass classes=[...] to name the others)"
        )
    positive = 1
    if pos_label is not None:
        if len(all_classes) != 2:
            raise InvalidInput(
                f"pos_label={pos_label!r} applies to binary classification, but there are "
                f"{len(all_classes)} classes {all_classes}; leave it out for multiclass"
            )
        if pos_label not in all_classes:
            raise InvalidInput(f"pos_label={pos_label!r} is not one of the classes {all_classes}")
        positive = all_classes.index(pos_label)
    return Encoded(all_classes, true_idx, pred_idx, matrix, positive)
