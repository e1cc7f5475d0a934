"""What a monitor compares its windows with: a model version's training data, profiled.

:func:`build_reference` turns a registered model version into a :class:`MonitorReference`:

- the profile (:class:`~ctloop.monitoring.profiles.ReferenceProfile`) of the data the
  version was trained on, restricted to the model's inputs (its signature), plus a column
  ``prediction`` holding the model's own predictions on that data, so a window's
  predictions can be tested for drift like a feature;
- for a classifier with probabilities, what a
  :class:`~ctloop.monitoring.estimation.ConfidenceBasedEstimator` needs to be fitted
  later (reference probabilities and true labels, at most :data:`MAX_ESTIMATION_ROWS`
  rows), so performance can be estimated before labels arrive.

Everything is plain JSON through :meth:`MonitorReference.to_dict`, so a monitor stores it
once and every run of the monitor reuses it without touching the training data again.

**The label column.** The registry records no "target" field, so the label is found by
this rule, first match wins:

1. a version tag ``target``, ``label_column``, ``target_column`` or ``label`` (tags can be
   set after registration: ``ctloop models tag churn/3 target=churned``);
2. a parameter of the version's run with one of those names;
3. the only column of the data, besides the model's inputs, whose values are all classes
   of the model (its signature's output classes) and that holds at least two of them.

When none matches (or several columns match rule 3), ``estimation`` is None and
``notes`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ctloop.errors import InvalidInput
from ctloop.monitoring.profiles import ReferenceProfile

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.client import Client
    from ctloop.models.loading import LoadedModel
    from ctloop.monitoring.estimation import ConfidenceBasedEstimator
    from ctloop.registry.entities import Lineage

__all__ = [
    "LABEL_KEYS",
    "MAX_ESTIMATION_ROWS",
    "PREDICTION",
    "REFERENCE_VERSION",
    "MonitorReference",
    "build_reference",
    "feature_column",
    "fit_estimator",
    "prediction_values",
]

#: The version of the JSON layout written by ``to_dict``; ``from_dict`` refuses newer ones.
REFERENCE_VERSION = 1

#: The profile column that holds the model's predictions.
PREDICTION = "prediction"

#: Tag or run-parameter names that name the label column, in order of preference.
LABEL_KEYS = ("target", "label_column", "target_column", "label")

#: Reference rows kept for fitting the performance estimator.
MAX_ESTIMATION_ROWS = 20_000

#: Lineage contexts of held-out data, preferred in this order for the estimator.
HELD_OUT_CONTEXTS = ("evaluation", "validation", "test")

_PREDICT_CHUNK = 100_000
_KINDS = {
    "integer": "numeric",
    "float": "numeric",
    "boolean": "categorical",
    "category": "categorical",
    "string": "categorical",
}


def feature_column(name: str) -> str:
    """The profile column of model input ``name``: the name itself, or ``f.<name>`` when it
    would clash with the prediction or a ``p.<class>`` column (as
    :func:`~ctloop.monitoring.windows.window_from_log` names them)."""
    return f"f.{name}" if name == PREDICTION or name.startswith("p.") else name


@dataclass(frozen=True)
class MonitorReference:
    """A model version's reference for monitoring: profile, predictions, estimator data.

    Attributes:
        model: the version, ``NAME/VERSION`` (resolved, never an alias).
        source: the dataset version profiled, ``NAME@VERSION``.
        features: the model inputs profiled, in signature order (their profile columns
            are :func:`feature_column` of each).
        profile: the features' profiles and the predictions' (column :data:`PREDICTION`).
        task: ``classification`` or ``regression``.
        classes: the model's classes as ``p.<class>`` columns name them, or None.
        estimation: for a classifier with probabilities, what :func:`fit_estimator` fits:
            ``classes``, ``probabilities`` (class → list), ``labels``, ``rows``,
            ``source_rows``, ``source``, ``context``, ``label_column``, ``label_rule``,
            ``in_sample`` and ``note`` (set when the probabilities are in-sample);
            else None.
        notes: what the reference could not do, and why (plain sentences).
    """

    model: str
    source: str
    features: tuple[str, ...]
    profile: ReferenceProfile
    task: str
    classes: tuple[str, ...] | None = None
    estimation: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """The version number as the prediction log's ``model_version`` holds it."""
        return self.model.rpartition("/")[2]

    @property
    def feature_columns(self) -> list[str]:
        """The profile columns of :attr:`features`."""
        return [feature_column(f) for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        """The reference as plain JSON values."""
        return {
            "version": REFERENCE_VERSION,
            "model": self.model,
            "source": self.source,
            "features": list(self.features),
            "task": self.task,
            "classes": None if self.classes is None else list(self.classes),
            "profile": self.profile.to_dict(),
            "estimation": self.estimation,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorReference:
        """A reference from :meth:`to_dict`'s output.

        Raises:
            InvalidInput: not a monitor reference, or written by a newer ctloop.
        """
        version = data.get("version")
        if not isinstance(version, int) or version > REFERENCE_VERSION:
            raise InvalidInput(
                f"monitor reference layout version {version!r} is not readable by this ctloop "
                f"(it reads up to {REFERENCE_VERSION}); upgrade ctloop to read it"
            )
        missing = [k for k in ("model", "profile", "features", "task") if k not in data]
        if missing:
            raise InvalidInput(f"not a monitor reference: it lacks {', '.join(missing)}")
        classes = data.get("classes")
        estimation = data.get("estimation")
        return cls(
            model=str(data["model"]),
            source=str(data.get("source") or ""),
            features=tuple(str(f) for f in data["features"]),
            profile=ReferenceProfile.from_dict(data["profile"]),
            task=str(data["task"]),
            classes=None if classes is None else tuple(str(c) for c in classes),
            estimation=None if estimation is None else dict(estimation),
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )


def fit_estimator(estimation: Mapping[str, Any], **options: Any) -> ConfidenceBasedEstimator:
    """A :class:`ConfidenceBasedEstimator` fitted on :attr:`MonitorReference.estimation`.

    ``options`` go to the estimator (``metrics``, ``z``, ``positive_label`` …).

    Raises:
        InvalidInput: the data is malformed or holds one class only.
    """
    import pandas as pd

    from ctloop.monitoring.estimation import ConfidenceBasedEstimator

    classes = [str(c) for c in estimation.get("classes") or []]
    columns = dict(estimation.get("probabilities") or {})
    if not classes or any(c not in columns for c in classes):
        raise InvalidInput(
            f"the estimation data lists classes {classes} but probabilities for "
            f"{sorted(columns)}; rebuild the reference with build_reference(...)"
        )
    probabilities = pd.DataFrame({f"p.{c}": np.asarray(columns[c], dtype=float) for c in classes})
    labels = np.asarray(estimation.get("labels") or [], dtype=object)
    return ConfidenceBasedEstimator(**options).fit(probabilities, labels)


# --- building -------------------------------------------------------------------------------


def build_reference(
    client: Client,
    model_ref: str,
    *,
    features: Sequence[str] | None = None,
    bins: int = 10,
    sample_size: int = 10_000,
    trust: bool = False,
) -> MonitorReference:
    """The monitoring reference of a model version: its training data, profiled.

    The training data is the version's run input with context ``training`` (else its
    first input). The profile holds the model's inputs (its signature) and the model's
    predictions on that data (column ``prediction``; class names as text for a
    classifier, so ``1`` and ``1.0`` count as one class). For a classifier with
    probabilities, the estimator data comes from a held-out input of the run (context
    ``evaluation``, ``validation``, ``test`` or any other but ``training``) when there is
    one, else from the training data itself (in-sample probabilities are overconfident,
    so estimates run high: said in ``estimation["note"]``). See the module docstring for
    how the label column is found.

    Args:
        client: the store holding the model and its data.
        model_ref: ``churn/3``, ``churn@champion`` …; the reference records the version.
        features: model inputs to monitor (default: all); the others are not profiled.
        bins: quantile bins per numeric column.
        sample_size: values kept per numeric column for exact KS and Wasserstein.
        trust: load models whose flavor runs code on load (``python``).

    Raises:
        NotFound: an unknown model or version, or a run that logged no input dataset.
        InvalidInput: unknown ``features``, a model without a signature, or data that
            lacks the model's inputs.
    """
    from ctloop.errors import NotFound
    from ctloop.validation.frames import load_frame

    lineage = client.models.lineage(model_ref)
    version = lineage.version
    if not lineage.inputs:
        raise NotFound(
            f"model version {version.ref} has no training data on record: its run logged no "
            "input dataset; log one with run.log_input(dataset_version, context='training')"
        )
    model = client.models.load(version.ref, trust=trust)
    signature = model.signature
    if signature is None:
        raise InvalidInput(
            f"model version {version.ref} has no signature (it was logged without an input "
            "example), so its inputs are unknown; log it again with input_example=..."
        )
    inputs = signature.input_names
    chosen = _chosen(inputs, features, version.ref)
    training = next((i for i in lineage.inputs if i.context == "training"), lineage.inputs[0])
    source = f"{training.dataset}@{training.version}"
    data = load_frame(client, source)
    absent = [c for c in inputs if c not in data.columns]
    if absent:
        raise InvalidInput(
            f"the training data {source} of model version {version.ref} lacks the model's "
            f"inputs {absent}; it has: {', '.join(map(str, data.columns))}"
        )

    try:
        predictions, proba = _predict(model, data)
    except InvalidInput as exc:
        raise InvalidInput(
            f"model version {version.ref} cannot predict on its training data {source}, so "
            f"its predictions cannot be profiled: {exc.message}"
        ) from None
    classes = _classes(model)
    task = "classification" if classes is not None or model.is_classifier else "regression"
    frame = data[chosen].rename(columns={c: feature_column(c) for c in chosen})
    frame[PREDICTION] = prediction_values(predictions, task)
    kinds = {
        feature_column(c.name): _KINDS[c.dtype]
        for c in signature.inputs
        if c.name in chosen and c.dtype in _KINDS
    }
    if task == "classification":
        kinds[PREDICTION] = "categorical"
    profile = ReferenceProfile.from_frame(frame, bins=bins, sample_size=sample_size, kinds=kinds)

    notes: list[str] = []
    estimation = None
    if proba is None or classes is None:
        if task == "classification":
            notes.append(
                f"model version {version.ref} gives no class probabilities, so performance "
                "cannot be estimated without labels"
            )
    else:
        estimation = _estimation(
            client, lineage, data, source, proba, classes, inputs, model, notes
        )
    return MonitorReference(
        model=version.ref,
        source=source,
        features=tuple(chosen),
        profile=profile,
        task=task,
        classes=None if classes is None else tuple(classes),
        estimation=estimation,
        notes=tuple(notes),
    )


def _chosen(inputs: list[str], features: Sequence[str] | None, ref: str) -> list[str]:
    if features is None:
        return list(inputs)
    if isinstance(features, str):
        features = [features]
    unknown = [f for f in features if f not in inputs]
    if unknown:
        raise InvalidInput(
            f"features {unknown} are not inputs of model version {ref}; "
            f"its inputs are: {', '.join(inputs)}"
        )
    wanted = set(features)
    return [f for f in inputs if f in wanted]  # signature order, no duplicates


def _predict(model: LoadedModel, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (and probabilities) in chunks, so a large reference stays in bounds."""
    preds, probas = [], []
    for start in range(0, max(len(data), 1), _PREDICT_CHUNK):
        part = data.iloc[start : start + _PREDICT_CHUNK]
        if len(part) == 0:
            break
        pred, proba = model.predict_with_proba(part)
        pred = np.asarray(pred)
        preds.append(pred.reshape(len(part), -1)[:, 0] if pred.ndim > 1 else pred)
        if proba is not None:
            probas.append(np.asarray(proba, dtype=float))
    if not preds:
        raise InvalidInput("the training data has no rows: nothing to profile")
    out = np.concatenate(preds)
    return out, (np.concatenate(probas) if len(probas) == len(preds) else None)


def _classes(model: LoadedModel) -> list[str] | None:
    import pandas as pd

    from ctloop.monitoring._common import class_names

    if not model.is_classifier or model.classes is None:
        return None
    return class_names(pd.Series(list(model.classes), dtype=object))


def prediction_values(predictions: Any, task: str) -> np.ndarray:
    """Predictions as the profile's ``prediction`` column holds them: for a classifier the
    class names ``p.<class>`` columns use (``1``, ``1.0`` and ``"1"`` are all ``"1"``;
    missing stays missing), for a regressor floats."""
    import pandas as pd

    from ctloop.monitoring._common import class_names

    series = pd.Series(np.asarray(predictions, dtype=object))
    if task != "classification":
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    names = pd.Series(class_names(series.astype(object)), index=series.index, dtype=object)
    return names.where(series.notna()).to_numpy()


def _estimation(
    client: Client,
    lineage: Lineage,
    data: pd.DataFrame,
    source: str,
    proba: np.ndarray,
    classes: list[str],
    inputs: list[str],
    model: LoadedModel,
    notes: list[str],
) -> dict[str, Any] | None:
    """The estimator's data, from a held-out input when there is one (see the module doc)."""
    from ctloop.monitoring._common import class_names
    from ctloop.validation.frames import load_frame

    ref = lineage.version.ref
    column, rule = _label_column(lineage, data, inputs, classes)
    if column is None:
        notes.append(
            f"no label column found for model version {ref} ({rule}), so performance cannot "
            f"be estimated; name it with: ctloop models tag {ref} target=COLUMN"
        )
        return None
    held_out = sorted(
        (i for i in lineage.inputs if i.context != "training"),
        key=lambda i: HELD_OUT_CONTEXTS.index(i.context) if i.context in HELD_OUT_CONTEXTS else 99,
    )
    chosen_source, context, frame = source, "training", data
    scores: np.ndarray | None = proba
    note = None
    for candidate in held_out:
        name = f"{candidate.dataset}@{candidate.version}"
        other = load_frame(client, name)
        if column in other.columns and all(c in other.columns for c in inputs):
            chosen_source, context, frame, scores = name, candidate.context or "", other, None
            break
        notes.append(f"held-out data {name} lacks the label {column!r} or the model's inputs")
    labelled_rows = int(frame[column].notna().sum())
    if scores is None:  # predict on the kept rows only
        keep = _subsample(frame[column].notna().to_numpy())
        frame = frame.iloc[keep]
        scores = _predict(model, frame)[1]
        if scores is None:  # pragma: no cover - the same model gave probabilities above
            return None
        labels = frame[column]
    else:
        note = (
            f"the estimator is fitted on the training data {source} (no held-out input was "
            "logged), whose probabilities are in-sample and overconfident: estimates run "
            "high; log held-out data with run.log_input(version, context='evaluation')"
        )
        keep = _subsample(frame[column].notna().to_numpy())
        labels, scores = frame[column].iloc[keep], scores[keep]
    names = class_names(labels.astype(object))
    unknown = sorted(set(names) - set(classes))
    if unknown:
        notes.append(
            f"label column {column!r} of {chosen_source} holds values {unknown[:5]} that are "
            f"not classes of the model ({classes}), so performance cannot be estimated"
        )
        return None
    if len(set(names)) < 2:
        notes.append(
            f"label column {column!r} of {chosen_source} holds one class only, so the "
            "estimator cannot be calibrated"
        )
        return None
    if note:
        notes.append(note)
    return {
        "classes": list(classes),
        "probabilities": {
            c: [round(float(v), 6) for v in scores[:, j]] for j, c in enumerate(classes)
        },
        "labels": names,
        "rows": len(names),
        "source_rows": labelled_rows,
        "source": chosen_source,
        "context": context,
        "label_column": column,
        "label_rule": rule,
        "in_sample": context == "training",
        "note": note,
    }


def _subsample(labelled: np.ndarray) -> np.ndarray:
    """Positions of at most :data:`MAX_ESTIMATION_ROWS` labelled rows, in order."""
    rows = np.flatnonzero(labelled)
    if len(rows) > MAX_ESTIMATION_ROWS:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(rows, size=MAX_ESTIMATION_ROWS, replace=False))
    return rows


def _label_column(
    lineage: Lineage, data: pd.DataFrame, inputs: list[str], classes: list[str]
) -> tuple[str | None, str]:
    """The label column and the rule that found it, or None and why not."""
    import pandas as pd

    from ctloop.monitoring._common import class_names

    recorded = (("version tag", lineage.version.tags), ("run param", lineage.run.params))
    for where, given in recorded:
        for key in LABEL_KEYS:
            name = given.get(key)
            if name:
                if name not in data.columns:
                    return None, f"{where} {key}={name!r} names no column of the data"
                return str(name), f"{where} {key}={name!r}"
    allowed = set(classes)
    found = []
    for name in data.columns:
        if name in inputs:
            continue
        values = data[name].dropna()
        if len(values) == 0 or values.nunique() > len(allowed):
            continue
        seen = set(class_names(pd.Series(list(values.unique()))))
        if len(seen) >= 2 and seen <= allowed:
            found.append(str(name))
    if len(found) == 1:
        return found[0], f"the only column besides the inputs holding the classes {classes}"
    if found:
        return None, f"several columns hold the model's classes: {', '.join(found)}"
    return None, (
        f"no tag or run param {'/'.join(LABEL_KEYS)}, and no column besides the inputs "
        f"holds the classes {classes}"
    )
