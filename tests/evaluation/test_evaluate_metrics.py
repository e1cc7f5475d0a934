"""evaluate(): metric values against scikit-learn, task inference, inputs, logging to runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evaluation_holdouts import Holdout, sk_log_loss
from sklearn import metrics as skm

import ctloop
from ctloop.errors import InvalidInput, NotFound
from ctloop.evaluation import evaluate, evaluate_predictions

# --- values match scikit-learn -----------------------------------------------------------


def test_binary_metrics_match_sklearn(binary: Holdout) -> None:
    ev = evaluate(binary.strong, binary.x, binary.y)
    pred = binary.strong.predict(binary.x)
    proba = binary.strong.predict_proba(binary.x)
    assert ev.task == "binary"
    assert ev.n == len(binary.y)
    assert ev.classes == [0, 1] and ev.pos_label == 1
    expected = {
        "accuracy": skm.accuracy_score(binary.y, pred),
        "precision": skm.precision_score(binary.y, pred),
        "recall": skm.recall_score(binary.y, pred),
        "f1": skm.f1_score(binary.y, pred),
        "roc_auc": skm.roc_auc_score(binary.y, proba[:, 1]),
        "log_loss": sk_log_loss(binary.y, proba),
    }
    assert list(ev.metrics) == list(expected)
    for name, value in expected.items():
        assert ev.metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_multiclass_metrics_match_sklearn_macro_and_weighted(multiclass: Holdout) -> None:
    model, x, y = multiclass.strong, multiclass.x, multiclass.y
    ev = evaluate(model, x, y)
    pred, proba = model.predict(x), model.predict_proba(x)
    assert ev.task == "multiclass"
    assert ev.classes == ["ant", "bee", "cat", "dog"]
    assert ev.pos_label is None
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro"),
        "recall": skm.recall_score(y, pred, average="macro"),
        "f1": skm.f1_score(y, pred, average="macro"),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", labels=model.classes_),
        "log_loss": sk_log_loss(y, proba, labels=model.classes_),
        "precision_weighted": skm.precision_score(y, pred, average="weighted"),
        "recall_weighted": skm.recall_score(y, pred, average="weighted"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
    }
    assert set(ev.metrics) == set(expected)
    for name, value in expected.items():
        assert ev.metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_regression_metrics_match_sklearn(regression: Holdout) -> None:
    ev = evaluate(regression.strong, regression.x, regression.y)
    pred = regression.strong.predict(regression.x)
    assert ev.task == "regression"
    assert ev.scores is None and ev.classes is None
    assert ev.metrics == pytest.approx(
        {
            "rmse": math.sqrt(skm.mean_squared_error(regression.y, pred)),
            "mae": skm.mean_absolute_error(regression.y, pred),
            "r2": skm.r2_score(regression.y, pred),
        },
        rel=1e-10,
    )


def test_metrics_on_small_known_data() -> None:
    """A hand-checkable case: 6 rows, one tie in the scores."""
    y = [0, 0, 1, 1, 1, 0]
    scores = [0.1, 0.6, 0.6, 0.8, 0.3, 0.2]
    pred = [0, 1, 1, 1, 0, 0]
    ev = evaluate_predictions(y, pred, scores=scores, log=False)
    assert ev.metrics["accuracy"] == pytest.approx(4 / 6)
    assert ev.metrics["precision"] == pytest.approx(2 / 3)
    assert ev.metrics["recall"] == pytest.approx(2 / 3)
    assert ev.metrics["f1"] == pytest.approx(2 / 3)
    # pairs (pos, neg) ordered right: 0.6>0.1, 0.6>0.2, tie 0.6=0.6 (½), 0.8>all 3, 0.3>0.1,0.2
    assert ev.metrics["roc_auc"] == pytest.approx((2 + 0.5 + 3 + 2) / 9)
    assert ev.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))


def test_string_labels_and_pos_label_follow_sklearn() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes", "no", "no", "yes"])
    pred = np.array(["no", "yes", "no", "no", "yes", "yes", "no", "yes"])
    p_yes = np.array([0.2, 0.9, 0.4, 0.1, 0.7, 0.6, 0.3, 0.8])
    ev = evaluate_predictions(y, pred, scores=p_yes, classes=["no", "yes"], log=False)
    assert ev.pos_label == "yes"
    assert ev.metrics["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="yes"))
    flipped = evaluate_predictions(
        y, pred, scores=p_yes, classes=["no", "yes"], pos_label="no", log=False
    )
    assert flipped.pos_label == "no"
    assert flipped.metrics["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="no"))
    assert flipped.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "no", 1 - p_yes))
    with pytest.raises(InvalidInput, match=r"pos_label='maybe' is not one of the classes"):
        evaluate_predictions(y, pred, pos_label="maybe", log=False)


def test_a_model_without_predict_proba_uses_decision_function(binary: Holdout) -> None:
    from sklearn.svm import LinearSVC

    model = LinearSVC().fit(binary.x_train, binary.y_train)
    ev = evaluate(model, binary.x, binary.y)
    assert ev.score_kind == "decision"
    assert "log_loss" not in ev.metrics
    assert ev.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(binary.y, model.decision_function(binary.x))
    )
    assert any("log_loss needs probabilities" in note for note in ev.notes)


def test_labels_only_gives_label_metrics() -> None:
    ev = evaluate_predictions([1, 2, 3, 1, 2, 3], [1, 2, 2, 1, 3, 3], log=False)
    assert ev.task == "multiclass"
    assert set(ev.metrics) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
    }
    assert ev.metrics["f1"] == pytest.approx(
        skm.f1_score([1, 2, 3, 1, 2, 3], [1, 2, 2, 1, 3, 3], average="macro")
    )


def test_undefined_metric_is_nan_with_a_note() -> None:
    ev = evaluate_predictions([1, 1, 1], [1, 0, 1], scores=[0.9, 0.4, 0.8], log=False)
    assert math.isnan(ev.metrics["roc_auc"])
    assert any("roc_auc is undefined" in note for note in ev.notes)


# --- task inference -----------------------------------------------------------------------


def test_task_is_inferred_from_the_model(binary: Holdout, regression: Holdout) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), binary.strong)
    pipe.fit(binary.x_train, binary.y_train)
    ev = evaluate(pipe, binary.x, binary.y)
    assert ev.task == "binary"
    assert "scikit-learn classifier" in ev.notes[0]
    # integer-valued targets, but the model is a regressor: the model wins
    y_int = np.round(regression.y)
    assert evaluate(regression.strong, regression.x, y_int).task == "regression"


class _Bare:
    """A model with predict only: nothing says which task it does."""

    def __init__(self, values: Any) -> None:
        self.values = values

    def predict(self, x: Any) -> Any:
        return self.values


class _BareProba(_Bare):
    def predict_proba(self, x: Any) -> Any:
        return np.column_stack([1 - self.values, self.values]).astype(float)


def test_task_is_inferred_from_y_when_the_model_does_not_say() -> None:
    assert evaluate(_Bare(np.array([0, 1, 1, 0])), None, [0, 1, 0, 0]).task == "binary"
    assert evaluate(_Bare(np.array(["a", "b", "c"])), None, ["a", "b", "b"]).task == "multiclass"
    floats = evaluate(_Bare(np.array([0.5, 1.5, 2.0])), None, [0.4, 1.7, 2.2])
    assert floats.task == "regression"
    counts = np.arange(200)  # many distinct whole numbers: a count target, not labels
    assert evaluate(_Bare(counts + 1), None, counts).task == "regression"
    # predict_proba marks a classifier even without an estimator type
    assert evaluate(_BareProba(np.array([0, 1, 1])), None, [0, 1, 0]).task == "binary"


def test_explicit_task_wins_and_is_checked(binary: Holdout) -> None:
    ev = evaluate(_Bare(np.array([1.0, 2.0, 3.0])), None, [1, 2, 4], task="regression")
    assert ev.task == "regression"
    with pytest.raises(InvalidInput, match=r"task='multiclass', but there are 2 classes"):
        evaluate(binary.strong, binary.x, binary.y, task="multiclass")
    with pytest.raises(InvalidInput, match=r"unknown task 'clasification'"):
        evaluate(binary.strong, binary.x, binary.y, task="clasification")


def test_a_classifier_with_a_continuous_target_is_an_error(binary: Holdout) -> None:
    with pytest.raises(InvalidInput, match=r"y holds continuous values .* task='regression'"):
        evaluate(binary.strong, binary.x, binary.y + 0.25)


# --- input errors -------------------------------------------------------------------------


def test_input_errors_say_what_is_wrong(binary: Holdout) -> None:
    with pytest.raises(InvalidInput, match=r"got 4000 predictions for 3999 rows"):
        evaluate(binary.strong, binary.x, binary.y[:-1])
    y = binary.y.astype(float)
    y[[3, 7]] = np.nan
    with pytest.raises(InvalidInput, match=r"y has 2 missing value\(s\) \(rows 3, 7\)"):
        evaluate(binary.strong, binary.x, y, task="classification")
    with pytest.raises(InvalidInput, match=r"y holds label\(s\) \[2\] that the model has no score"):
        evaluate(binary.strong, binary.x, np.where(binary.y == 1, 2, 0))
    with pytest.raises(InvalidInput, match=r"y is empty"):
        evaluate_predictions([], [], log=False)
    with pytest.raises(InvalidInput, match=r"one class only"):
        evaluate_predictions([1, 1], [1, 1], log=False)
    with pytest.raises(InvalidInput, match=r"not a number"):
        evaluate_predictions(["a", "b"], [1.0, 2.0], task="regression", log=False)


def test_pandas_inputs(binary: Holdout) -> None:
    frame = pd.DataFrame(binary.x)
    ev = evaluate(binary.strong, frame.to_numpy(), pd.Series(binary.y, name="label"))
    assert ev.metrics == evaluate(binary.strong, binary.x, binary.y).metrics


def test_metric_lookup_names_the_missing_metric(regression: Holdout) -> None:
    ev = evaluate(regression.strong, regression.x, regression.y)
    assert ev.metric("r2") == ev.metrics["r2"]
    with pytest.raises(NotFound) as err:
        ev.metric("auc")
    assert str(err.value) == (
        "the evaluation has no metric 'auc' (it has: rmse, mae, r2); it applies to binary "
        "or multiclass tasks, and this is a regression evaluation"
    )
    assert ev.to_dict()["metrics"] == ev.metrics
    assert "rmse" in str(ev) and "regression" in repr(ev)


# --- a model loaded from the registry -----------------------------------------------------


def test_a_loaded_ctloop_model_evaluates_like_the_original(
    sqlite_client: Any, binary: Holdout
) -> None:
    run = sqlite_client.runs.create("eval", capture_code=False)
    sqlite_client.runs.log_model(run.id, binary.strong, "model", input_example=binary.x_train)
    loaded = sqlite_client.models.load(f"runs:/{run.id}/model")
    ev = evaluate(loaded, binary.x, binary.y)
    assert ev.task == "binary"
    assert "signature" in ev.notes[0]
    assert ev.metrics == pytest.approx(evaluate(binary.strong, binary.x, binary.y).metrics)


def test_a_loaded_regressor(sqlite_client: Any, regression: Holdout) -> None:
    run = sqlite_client.runs.create("eval", capture_code=False)
    sqlite_client.runs.log_model(
        run.id, regression.strong, "model", input_example=regression.x_train
    )
    loaded = sqlite_client.models.load(f"runs:/{run.id}/model")
    ev = evaluate(loaded, regression.x, np.round(regression.y))  # whole numbers: still regression
    assert ev.task == "regression"


# --- logging ------------------------------------------------------------------------------


def test_metrics_are_logged_to_the_given_run(sqlite_client: Any, binary: Holdout) -> None:
    with ctloop.start_run(experiment="eval", client=sqlite_client) as run:
        ev = evaluate(binary.strong, binary.x, binary.y, run=run, prefix="val_")
    stored = sqlite_client.runs.get(run.id).metrics
    assert stored == pytest.approx({f"val_{k}": v for k, v in ev.metrics.items()})


def test_metrics_go_to_the_active_run(sqlite_client: Any, regression: Holdout) -> None:
    with ctloop.start_run(experiment="eval", client=sqlite_client) as run:
        ev = evaluate(regression.strong, regression.x, regression.y)
        quiet = evaluate(regression.weak, regression.x, regression.y, log=False)
    stored = sqlite_client.runs.get(run.id).metrics
    assert stored == pytest.approx(ev.metrics)
    assert quiet.metrics["rmse"] > ev.metrics["rmse"]


def test_no_run_means_nothing_is_logged(sqlite_client: Any, binary: Holdout) -> None:
    assert ctloop.active_run() is None
    ev = evaluate(binary.strong, binary.x, binary.y)
    assert ev.metrics["accuracy"] > 0.7
    assert sqlite_client.runs.search().runs == []
