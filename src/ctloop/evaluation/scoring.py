"""``evaluate``: score a model on a holdout, keep the per-row results, log the metrics.

An :class:`Evaluation` keeps, besides the metrics, what the model said about every holdout
row (labels, class scores, values), so a :class:`~ctloop.evaluation.Gate` can bootstrap
the difference to the champion on the very same rows without calling either model again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ctloop.errors import InvalidInput, NotFound
from ctloop.evaluation import _inputs, kernels
from ctloop.evaluation import metrics as m
from ctloop.evaluation._runs import target_run

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.tracking.run import Run

__all__ = ["Evaluation", "evaluate", "evaluate_champion", "evaluate_predictions"]

_TASK_ARGS = ("classification", m.BINARY, m.MULTICLASS, m.REGRESSION)


@dataclass(frozen=True, eq=False, repr=False)
class Evaluation:
    """The result of :func:`evaluate`: metrics plus the per-row results behind them.

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        metrics: metric name → value (NaN where undefined; see ``notes``).
        n: number of holdout rows.
        y_true: the true labels as indices into ``classes`` (classification), or the true
            values (regression).
        y_pred: the predicted labels as indices into ``classes``, or predicted values.
        scores: ``(n, len(classes))`` class probabilities (``score_kind="probability"``) or
            decision values (``"decision"``); None for regression or a model without either.
        classes: the class labels (classification).
        pos_label: the positive class (binary).
        score_kind: ``probability``, ``decision`` or None.
        notes: how the task was chosen, and why a metric is missing or undefined.
        model_ref: what was evaluated, e.g. ``churn/3`` (set by :func:`evaluate_champion`).
    """

    task: str
    metrics: dict[str, float]
    n: int
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray | None = None
    classes: list[Any] | None = None
    pos_label: Any = None
    score_kind: str | None = None
    notes: tuple[str, ...] = ()
    model_ref: str | None = None

    @property
    def is_classification(self) -> bool:
        return self.task != m.REGRESSION

    @cached_property
    def rows(self) -> kernels.Rows:
        """The per-row data in the form the metric kernels (and the bootstrap) take."""
        positive = 1
        if self.classes is not None and self.pos_label is not None:
            positive = self.classes.index(self.pos_label)
        return kernels.Rows(
            self.task,
            self.y_true,
            self.y_pred,
            self.scores,
            len(self.classes or ()),
            positive,
        )

    def metric(self, name: str) -> float:
        """The value of metric ``name`` (aliases such as ``auc`` allowed).

        Raises:
            NotFound: the evaluation has no such metric; the message lists those it has.
        """
        key = m.canonical(name)
        if key not in self.metrics:
            raise NotFound(self.missing_metric(name))
        return self.metrics[key]

    def missing_metric(self, name: str, owner: str = "the evaluation") -> str:
        """Why metric ``name`` is not among :attr:`metrics`, and the ones that are."""
        have = ", ".join(self.metrics) or "none"
        why = ""
        info = m.METRICS.get(m.canonical(name))
        if info is None:
            why = "; ctloop does not compute such a metric"
        elif self.task not in info.tasks:
            tasks = " or ".join(sorted(info.tasks))
            why = f"; it applies to {tasks} tasks, and this is a {self.task} evaluation"
        elif info.needs_probabilities and self.score_kind != "probability":
            why = "; it needs class probabilities, and the model has no predict_proba"
        elif info.needs_scores and self.score_kind is None:
            why = "; it needs class scores (predict_proba or decision_function)"
        return f"{owner} has no metric {name!r} (it has: {have}){why}"

    def check_same_holdout(self, other: Evaluation) -> None:
        """Raise unless ``other`` scored the same task on the same rows, in the same order.

        Raises:
            InvalidInput: different task, row count, classes or true labels.
        """
        fix = "evaluate the candidate and the champion on the same X and y"
        if self.task != other.task:
            raise InvalidInput(
                f"the candidate is a {self.task} evaluation and the champion a {other.task} "
                f"one; {fix}"
            )
        if self.n != other.n:
            raise InvalidInput(
                f"the candidate was evaluated on {self.n} rows and the champion on "
                f"{other.n}: a comparison needs the same holdout rows; {fix}"
            )
        if self.classes != other.classes:
            raise InvalidInput(
                f"the candidate's classes {self.classes} differ from the champion's "
                f"{other.classes}; {fix}"
            )
        differ = int(np.count_nonzero(self.y_true != other.y_true))
        if differ:
            raise InvalidInput(
                f"the candidate and the champion were evaluated on {self.n} rows each, but "
                f"{differ} of them have different true labels or values, so these are not "
                f"the same holdout rows in the same order; {fix}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Task, row count, metrics, classes and notes (not the per-row arrays)."""
        return {
            "task": self.task,
            "n": self.n,
            "metrics": dict(self.metrics),
            "classes": self.classes,
            "pos_label": self.pos_label,
            "score_kind": self.score_kind,
            "notes": list(self.notes),
            "model_ref": self.model_ref,
        }

    def __repr__(self) -> str:
        shown = " ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        ref = f" {self.model_ref}" if self.model_ref else ""
        return f"<Evaluation{ref} {self.task} n={self.n} {shown}>"

    def __str__(self) -> str:
        ref = f" of {self.model_ref}" if self.model_ref else ""
        lines = [f"evaluation{ref}: {self.task}, {self.n} rows"]
        width = max((len(k) for k in self.metrics), default=0)
        lines += [f"  {k:<{width}}  {v:.4f}" for k, v in self.metrics.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _task_arg(task: str | None) -> str | None:
    if task is None:
        return None
    if task not in _TASK_ARGS:
        raise InvalidInput(f"unknown task {task!r}; use one of {', '.join(_TASK_ARGS)} or None")
    return task


def evaluate(
    model: Any,
    X: Any,  # noqa: N803 - the conventional name of a feature matrix
    y: Any,
    *,
    task: str | None = None,
    run: Run | None = None,
    log: bool = True,
    prefix: str = "",
    pos_label: Any = None,
) -> Evaluation:
    """Score ``model`` on holdout rows ``X`` with true targets ``y``.

    Classification gives accuracy, precision, recall, f1, ROC AUC and log loss (see
    :mod:`ctloop.evaluation.metrics` for multiclass averaging); regression gives rmse, mae
    and r2. The metrics are logged to ``run``, or to the active ``ctloop.start_run`` run,
    or nowhere when there is neither (or ``log=False``).

    Args:
        model: a fitted scikit-learn-like estimator (``predict``, and ``predict_proba`` or
            ``decision_function`` for classifiers), or a model loaded with
            ``ctloop.load_model`` / ``client.models.load``.
        X: the holdout inputs, as the model takes them.
        y: the true labels or values, one per row of ``X``.
        task: ``classification`` (binary or multiclass by the number of classes),
            ``binary``, ``multiclass`` or ``regression``; None infers it from the model
            (signature, scikit-learn estimator type, ``predict_proba``) and then from ``y``.
        run: the run to log to (default: the active run, if any).
        log: False to log nothing.
        prefix: put before each logged metric key, e.g. ``"val_"``.
        pos_label: the positive class of a binary task (default: the second class, as in
            scikit-learn: ``1``, ``True`` or the later label in sort order).

    Returns:
        An :class:`Evaluation`.

    Raises:
        InvalidInput: mismatched lengths, missing targets, a classifier given a continuous
            target, unknown labels for a model with probabilities, a bad task.
    """
    wanted = _task_arg(task)
    y_arr = _inputs.as_vector(y, "y")
    if wanted is None:
        kind, why = _inputs.infer_kind(model, y_arr)
        note = f"task {kind}: {why}"
    else:
        kind = m.REGRESSION if wanted == m.REGRESSION else _inputs.CLASSIFICATION
        note = f"task {wanted}: given"
    y_pred = model.predict(X)
    scores, score_kind, classes = None, None, None
    if kind == _inputs.CLASSIFICATION:
        scores, score_kind = _inputs.model_scores(model, X)
        classes = _inputs.model_classes(model)
    return _evaluate(
        y_arr,
        y_pred,
        scores=scores,
        classes=classes,
        task=wanted or kind,
        pos_label=pos_label,
        score_kind=score_kind or "probability",
        notes=[note],
        run=run,
        log=log,
        prefix=prefix,
    )


def evaluate_predictions(
    y_true: Any,
    y_pred: Any,
    *,
    scores: Any = None,
    classes: list[Any] | None = None,
    task: str | None = None,
    pos_label: Any = None,
    score_kind: Literal["probability", "decision"] = "probability",
    run: Run | None = None,
    log: bool = True,
    prefix: str = "",
) -> Evaluation:
    """Like :func:`evaluate`, from predictions already made (e.g. joined with feedback).

    Args:
        y_true: the true labels or values.
        y_pred: the predicted labels or values.
        scores: class probabilities (or decision values, with ``score_kind="decision"``),
            ``(n, k)`` in ``classes`` order, or ``(n,)`` for the positive class of a binary
            task.
        classes: the label of each score column (needed with an ``(n, k)`` matrix).
        task: as for :func:`evaluate`; None: classification when scores are given, else
            inferred from ``y_true``.
    """
    wanted = _task_arg(task)
    y_arr = _inputs.as_vector(y_true, "y_true")
    if wanted is None:
        kind = _inputs.CLASSIFICATION if scores is not None else _inputs.target_kind(y_arr)[0]
        note = f"task {kind}: {'scores given' if scores is not None else 'inferred from y'}"
    else:
        kind, note = wanted, f"task {wanted}: given"
    if score_kind not in ("probability", "decision"):
        raise InvalidInput(f"score_kind must be 'probability' or 'decision', got {score_kind!r}")
    return _evaluate(
        y_arr,
        y_pred,
        scores=scores,
        classes=classes,
        task=kind,
        pos_label=pos_label,
        score_kind=score_kind,
        notes=[note],
        run=run,
        log=log,
        prefix=prefix,
    )


def _evaluate(
    y_true: np.ndarray,
    y_pred: Any,
    *,
    scores: Any,
    classes: list[Any] | None,
    task: str,
    pos_label: Any,
    score_kind: str,
    notes: list[str],
    run: Run | None,
    log: bool,
    prefix: str,
) -> Evaluation:
    pred = _inputs.as_vector(y_pred, "the predictions")
    n = len(y_true)
    if n == 0:
        raise InvalidInput("y is empty; evaluate on at least one holdout row")
    if len(pred) != n:
        raise InvalidInput(
            f"got {len(pred)} predictions for {n} rows of y; X and y must have the same rows"
        )
    _inputs.check_complete(y_true, "y", "drop those rows before evaluating")
    _inputs.check_complete(pred, "the predictions", "the model could not predict those rows")
    if task == m.REGRESSION:
        if pos_label is not None:
            raise InvalidInput("pos_label applies to classification, not regression")
        yt = _inputs.as_floats(y_true, "y")
        yp = _inputs.as_floats(pred, "the predictions")
        if not (np.all(np.isfinite(yt)) and np.all(np.isfinite(yp))):
            raise InvalidInput("y or the predictions hold infinite values; drop those rows")
        evaluation = _finish(m.REGRESSION, yt, yp, None, None, None, None, notes)
    else:
        enc = _inputs.encode(
            y_true, pred, scores, classes, pos_label, score_kind if scores is not None else ""
        )
        k = len(enc.classes)
        actual = m.BINARY if k == 2 else m.MULTICLASS
        if task in (m.BINARY, m.MULTICLASS) and task != actual:
            raise InvalidInput(
                f"task={task!r}, but there are {k} classes {enc.classes[:10]}; "
                "pass task='classification' to pick binary or multiclass by the classes"
            )
        evaluation = _finish(
            actual,
            enc.y_true,
            enc.y_pred,
            enc.scores,
            enc.classes,
            enc.classes[enc.positive] if actual == m.BINARY else None,
            score_kind if enc.scores is not None else None,
            notes,
        )
    if log:
        log_evaluation(evaluation, run, prefix=prefix)
    return evaluation


def _finish(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray | None,
    classes: list[Any] | None,
    pos_label: Any,
    score_kind: str | None,
    notes: list[str],
) -> Evaluation:
    evaluation = Evaluation(
        task=task,
        metrics={},
        n=len(y_true),
        y_true=y_true,
        y_pred=y_pred,
        scores=scores,
        classes=classes,
        pos_label=pos_label,
        score_kind=score_kind,
    )
    values = {name: kernels.point(evaluation.rows, name) for name in m.available(task, score_kind)}
    notes = list(notes)
    if score_kind is None and task != m.REGRESSION:
        notes.append("roc_auc and log_loss need class scores; the model gives labels only")
    elif score_kind == "decision":
        notes.append("log_loss needs probabilities; roc_auc uses decision_function")
    for name, value in values.items():
        if np.isnan(value):
            notes.append(f"{name} is undefined on these rows (e.g. y holds one class only)")
    evaluation.metrics.update(values)
    return dataclasses.replace(evaluation, notes=tuple(notes))


def log_evaluation(evaluation: Evaluation, run: Run | None = None, *, prefix: str = "") -> None:
    """Log the metrics of ``evaluation`` to ``run`` (default: the active run; none: no-op)."""
    target = target_run(run)
    if target is not None:
        target.log_metrics({f"{prefix}{k}": v for k, v in evaluation.metrics.items()})


def evaluate_champion(
    client: Client,
    model_name: str,
    X: Any,  # noqa: N803 - the conventional name of a feature matrix
    y: Any,
    alias: str = "champion",
    *,
    task: str | None = None,
    pos_label: Any = None,
    trust: bool = False,
) -> Evaluation | None:
    """Evaluate the version ``alias`` of model ``model_name`` names, on ``X`` and ``y``.

    The model is loaded through the registry (digests verified). Nothing is logged: the
    champion's metrics are not the run's; compare them with a :class:`Gate`.

    Returns:
        The :class:`Evaluation` (its ``model_ref`` is ``NAME/VERSION``), or None when the
        model or the alias does not exist yet (the first model has no champion).

    Raises:
        InvalidInput: a malformed model name or alias.
    """
    try:
        version = client.models.get_version(f"{model_name}@{alias}")
    except NotFound:
        return None
    ref = f"{version.name}/{version.version}"
    model = client.models.load(ref, trust=trust)
    evaluation = evaluate(model, X, y, task=task, log=False, pos_label=pos_label)
    return dataclasses.replace(evaluation, model_ref=ref)
