"""The paired bootstrap: weighted metrics, intervals, direction, determinism."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from evaluation_holdouts import Holdout, sk_log_loss
from sklearn import metrics as skm

from ctloop.errors import InvalidInput
from ctloop.evaluation import evaluate, evaluate_predictions, metric_interval, paired_bootstrap
from ctloop.evaluation.bootstrap import resample_weights
from ctloop.evaluation.kernels import compute


def test_resample_weights_are_counts_of_n_draws() -> None:
    blocks = list(resample_weights(50, 30, seed=3))
    counts = np.vstack(blocks)
    assert counts.shape == (30, 50)
    assert np.all(counts.sum(axis=1) == 50)
    assert np.all(counts >= 0) and np.all(counts == np.round(counts))
    again = np.vstack(list(resample_weights(50, 30, seed=3)))
    assert np.array_equal(counts, again)
    # large n: blocks bound memory but still give every resample
    big = list(resample_weights(1_000_000, 12, seed=0))
    assert sum(len(b) for b in big) == 12 and len(big) > 1


def _resampled(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts.astype(int))


def _sklearn_binary(y: Any, pred: Any, proba: Any) -> dict[str, float]:
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
        "log_loss": sk_log_loss(y, proba, labels=[0, 1]),
    }


def test_weighted_metrics_equal_sklearn_on_the_resampled_rows(binary: Holdout) -> None:
    """A resample as weights gives exactly the metric of the rows it drew."""
    n = 600
    x, y = binary.x[:n], binary.y[:n]
    ev = evaluate(binary.weak, x, y, log=False)
    pred, proba = binary.weak.predict(x), binary.weak.predict_proba(x)
    for counts in next(resample_weights(n, 3, seed=11)):
        rows = _resampled(counts)
        expected = _sklearn_binary(y[rows], pred[rows], proba[rows])
        for name, value in expected.items():
            got = compute(ev.rows, name, counts[None, :])[0]
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_weighted_multiclass_and_regression_equal_sklearn(
    multiclass: Holdout, regression: Holdout
) -> None:
    ev = evaluate(multiclass.strong, multiclass.x, multiclass.y, log=False)
    pred = multiclass.strong.predict(multiclass.x)
    proba = multiclass.strong.predict_proba(multiclass.x)
    labels = multiclass.strong.classes_
    counts = next(resample_weights(ev.n, 1, seed=5))[0]
    rows = _resampled(counts)
    y = multiclass.y
    expected = {
        "f1": skm.f1_score(y[rows], pred[rows], average="macro"),
        "recall_weighted": skm.recall_score(y[rows], pred[rows], average="weighted"),
        "roc_auc": skm.roc_auc_score(y[rows], proba[rows], multi_class="ovr", labels=labels),
        "log_loss": sk_log_loss(y[rows], proba[rows], labels=labels),
    }
    for name, value in expected.items():
        assert compute(ev.rows, name, counts[None, :])[0] == pytest.approx(value, rel=1e-9), name

    ev = evaluate(regression.strong, regression.x, regression.y, log=False)
    p = regression.strong.predict(regression.x)
    counts = next(resample_weights(ev.n, 1, seed=6))[0]
    rows = _resampled(counts)
    yr = regression.y
    assert compute(ev.rows, "r2", counts[None, :])[0] == pytest.approx(
        skm.r2_score(yr[rows], p[rows]), rel=1e-9
    )
    assert compute(ev.rows, "mae", counts[None, :])[0] == pytest.approx(
        skm.mean_absolute_error(yr[rows], p[rows]), rel=1e-9
    )


def test_a_clearly_better_candidate_has_a_positive_interval(binary: Holdout) -> None:
    strong = evaluate(binary.strong, binary.x, binary.y, log=False)
    weak = evaluate(binary.weak, binary.x, binary.y, log=False)
    for metric in ("roc_auc", "f1", "accuracy"):
        ci = paired_bootstrap(strong, weak, metric, resamples=500)
        assert ci.lower > 0, (metric, ci)
        assert ci.lower <= ci.estimate <= ci.upper
        assert ci.estimate == pytest.approx(strong.metrics[metric] - weak.metrics[metric])
        assert ci.used == ci.resamples == 500


def test_the_same_model_shows_no_improvement(binary: Holdout) -> None:
    a = evaluate(binary.strong, binary.x, binary.y, log=False)
    b = evaluate(binary.strong, binary.x, binary.y, log=False)
    ci = paired_bootstrap(a, b, "roc_auc", resamples=200)
    assert (ci.lower, ci.upper, ci.estimate) == (0.0, 0.0, 0.0)


def test_two_equally_good_models_have_an_interval_around_zero() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    signal = y + rng.normal(0, 1.2, 3000)
    scores = [1 / (1 + np.exp(-(signal + rng.normal(0, 0.5, 3000)))) for _ in range(2)]
    a, b = (evaluate_predictions(y, s > 0.5, scores=s, log=False) for s in scores)
    ci = paired_bootstrap(a, b, "roc_auc", resamples=1000, seed=1)
    assert ci.lower < 0 < ci.upper


def test_direction_flips_for_lower_is_better_metrics(binary: Holdout, regression: Holdout) -> None:
    strong = evaluate(binary.strong, binary.x, binary.y, log=False)
    weak = evaluate(binary.weak, binary.x, binary.y, log=False)
    assert strong.metrics["log_loss"] < weak.metrics["log_loss"]
    better = paired_bootstrap(strong, weak, "log_loss", resamples=300)
    assert better.estimate == pytest.approx(weak.metrics["log_loss"] - strong.metrics["log_loss"])
    assert better.lower > 0
    worse = paired_bootstrap(weak, strong, "logloss", resamples=300)  # alias accepted
    assert worse.metric == "log_loss"
    assert worse.upper < 0
    assert worse.lower == pytest.approx(-better.upper)

    good = evaluate(regression.strong, regression.x, regression.y, log=False)
    bad = evaluate(regression.weak, regression.x, regression.y, log=False)
    assert paired_bootstrap(good, bad, "rmse", resamples=300).lower > 0
    assert paired_bootstrap(good, bad, "r2", resamples=300).lower > 0
    assert paired_bootstrap(bad, good, "mae", resamples=300).upper < 0


def test_the_seed_makes_the_interval_reproducible(binary: Holdout) -> None:
    strong = evaluate(binary.strong, binary.x, binary.y, log=False)
    weak = evaluate(binary.weak, binary.x, binary.y, log=False)
    first = paired_bootstrap(strong, weak, "f1", resamples=300, seed=7)
    assert paired_bootstrap(strong, weak, "f1", resamples=300, seed=7) == first
    other = paired_bootstrap(strong, weak, "f1", resamples=300, seed=8)
    assert (other.lower, other.upper) != (first.lower, first.upper)
    wider = paired_bootstrap(strong, weak, "f1", resamples=300, seed=7, confidence=0.99)
    assert wider.lower < first.lower and wider.upper > first.upper


def test_the_interval_narrows_as_the_holdout_grows(binary: Holdout) -> None:
    def width(n: int) -> float:
        x, y = binary.x[:n], binary.y[:n]
        a = evaluate(binary.strong, x, y, log=False)
        b = evaluate(binary.weak, x, y, log=False)
        return paired_bootstrap(a, b, "roc_auc", resamples=400).width

    small, large = width(250), width(4000)
    # the standard error falls like 1/sqrt(n): 16 times the rows, about a quarter the width
    assert large < 0.5 * small


def test_undefined_resamples_are_left_out() -> None:
    y = np.array([1] + [0] * 11)
    s1 = np.linspace(0.1, 0.9, 12)
    a = evaluate_predictions(y, s1 > 0.5, scores=s1, log=False)
    b = evaluate_predictions(y, s1[::-1] > 0.5, scores=s1[::-1], log=False)
    ci = paired_bootstrap(a, b, "roc_auc", resamples=200)
    assert 0 < ci.used < ci.resamples  # a resample without the positive row has no AUC
    assert not math.isnan(ci.lower)


def test_a_single_models_interval_covers_its_value(binary: Holdout) -> None:
    ev = evaluate(binary.strong, binary.x, binary.y, log=False)
    ci = metric_interval(ev, "auc", resamples=300)
    assert ci.metric == "roc_auc"
    assert ci.lower < ev.metrics["roc_auc"] < ci.upper
    assert ci.width < 0.05


def test_bad_settings_and_holdouts_are_errors(binary: Holdout, regression: Holdout) -> None:
    a = evaluate(binary.strong, binary.x, binary.y, log=False)
    b = evaluate(binary.weak, binary.x, binary.y, log=False)
    with pytest.raises(InvalidInput, match=r"confidence must be between 0 and 1"):
        paired_bootstrap(a, b, "f1", confidence=95)
    with pytest.raises(InvalidInput, match=r"resamples must be a whole number from 10"):
        paired_bootstrap(a, b, "f1", resamples=5)
    with pytest.raises(InvalidInput, match=r"seed must be a whole number >= 0"):
        paired_bootstrap(a, b, "f1", seed=-1)
    with pytest.raises(InvalidInput, match=r"unknown metric 'f2'"):
        paired_bootstrap(a, b, "f2")
    with pytest.raises(InvalidInput, match=r"has no metric 'rmse'"):
        paired_bootstrap(a, b, "rmse")
    short = evaluate(binary.weak, binary.x[:100], binary.y[:100], log=False)
    with pytest.raises(InvalidInput, match=r"candidate was evaluated on 4000 rows and the champ"):
        paired_bootstrap(a, short, "f1")
    reg = evaluate(regression.strong, regression.x, regression.y, log=False)
    with pytest.raises(InvalidInput, match=r"binary evaluation and the champion a regression"):
        paired_bootstrap(a, reg, "f1")
