"""Gate specs (strings, dicts, YAML), checks against the champion, results and their logging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from evaluation_holdouts import Holdout

import ctloop
from ctloop.errors import InvalidInput
from ctloop.evaluation import Evaluation, Gate, Threshold, evaluate, evaluate_predictions


@pytest.fixture(scope="module")
def pair(binary: Holdout) -> tuple[Evaluation, Evaluation]:
    """(candidate, champion): the strong model and the weak one on the same holdout."""
    return (
        evaluate(binary.strong, binary.x, binary.y, log=False),
        evaluate(binary.weak, binary.x, binary.y, log=False),
    )


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("f1 >= 0.8", Threshold("f1", ">=", 0.8)),
        ("log_loss<=0.5", Threshold("log_loss", "<=", 0.5)),
        ("  auc > .75 ", Threshold("roc_auc", ">", 0.75)),
        ("rmse < 1e3", Threshold("rmse", "<", 1000.0)),
        ("r2 >= -0.5", Threshold("r2", ">=", -0.5)),
    ],
)
def test_thresholds_parse(text: str, expected: Threshold) -> None:
    assert Threshold.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["f1 => 0.8", "f1 >= ", ">= 0.8", "f1 >= 0.8x", "f1 = 0.8", "f1 >= nan", ""]
)
def test_bad_thresholds_say_how_to_write_them(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Threshold.parse(text)
    assert str(err.value) == (
        f"invalid gate threshold {text!r}: write it as METRIC OP NUMBER, e.g. 'f1 >= 0.8' or "
        "'log_loss <= 0.5' (OP is one of >=, >, <=, <)"
    )


def test_the_gate_takes_thresholds_in_every_form() -> None:
    expected = (Threshold("f1", ">=", 0.8), Threshold("log_loss", "<=", 0.5))
    assert Gate("f1 >= 0.8 and log_loss <= 0.5").thresholds == expected
    assert Gate("f1 >= 0.8, log_loss <= 0.5").thresholds == expected
    assert Gate(["f1 >= 0.8", Threshold("log_loss", "<=", 0.5)]).thresholds == expected
    assert Gate({"f1": ">= 0.8", "log_loss": "<= 0.5"}).thresholds == expected
    # a bare number: >= for higher-is-better metrics, <= for losses
    assert Gate({"f1": 0.8, "logloss": 0.5}).thresholds == expected
    assert Gate([{"metric": "f1", "op": ">=", "value": 0.8}]).thresholds == expected[:1]


def test_dict_and_yaml_forms_round_trip() -> None:
    gate = Gate(
        ["f1 >= 0.8"],
        min_improvement={"f1": 0.01},
        min_relative_improvement={"auc": 0.02},
        bootstrap={"metric": "roc_auc", "confidence": 0.9, "margin": 0.001, "seed": 3},
        require_champion=True,
    )
    spec = gate.to_dict()
    assert spec == {
        "thresholds": ["f1 >= 0.8"],
        "min_improvement": {"f1": 0.01},
        "min_relative_improvement": {"roc_auc": 0.02},
        "bootstrap": [
            {"metric": "roc_auc", "confidence": 0.9, "margin": 0.001, "resamples": 1000, "seed": 3}
        ],
        "require_champion": True,
    }
    assert Gate.from_dict(spec) == gate
    assert Gate.from_dict(json.loads(json.dumps(spec))) == gate
    yaml_text = """
    gate:
      thresholds:
        - f1 >= 0.8
      min_improvement: {f1: 0.01}
      min_relative_improvement: {auc: 0.02}
      bootstrap: {metric: roc_auc, confidence: 0.9, margin: 0.001, seed: 3}
      require_champion: true
    """
    assert Gate.from_yaml(yaml_text) == gate
    assert Gate.coerce(spec) == gate and Gate.coerce(gate) is gate
    assert Gate.coerce("f1 >= 0.8").thresholds == gate.thresholds


def test_bad_gate_specs_are_explained() -> None:
    with pytest.raises(InvalidInput, match=r"unknown gate setting\(s\) \['thresholds_'\]"):
        Gate.from_dict({"thresholds_": ["f1 >= 0.8"]})
    with pytest.raises(InvalidInput, match=r"unknown bootstrap setting\(s\) \['level'\]"):
        Gate(bootstrap={"metric": "f1", "level": 0.95})
    with pytest.raises(InvalidInput, match=r"a bootstrap check needs a metric"):
        Gate(bootstrap={"confidence": 0.95})
    with pytest.raises(InvalidInput, match=r"unknown metric 'f2'; use one of accuracy"):
        Gate(min_improvement={"f2": 0.01})
    with pytest.raises(InvalidInput, match=r"min_improvement of 'f1' must be a number"):
        Gate(min_improvement={"f1": "0.01"})  # type: ignore[dict-item]  # a wrong type on purpose
    with pytest.raises(InvalidInput, match=r"the gate has no checks"):
        Gate()
    with pytest.raises(InvalidInput, match=r"not valid YAML"):
        Gate.from_yaml("thresholds: [f1 >= 0.8")
    with pytest.raises(InvalidInput, match=r"bootstrap confidence must be between 0 and 1"):
        Gate(bootstrap={"metric": "f1", "confidence": 1.0})
    # wrong types from a YAML or JSON file are explained too, never a TypeError
    with pytest.raises(InvalidInput, match=r"gate thresholds must be text, a list or a mapping"):
        Gate.from_dict({"thresholds": 5})
    with pytest.raises(InvalidInput, match=r"bootstrap check's metric must be a metric name"):
        Gate.from_dict({"bootstrap": {"metric": 3}})


# --- thresholds ------------------------------------------------------------------------------


def test_thresholds_pass_and_fail(pair: tuple[Evaluation, Evaluation]) -> None:
    candidate, _ = pair
    f1 = candidate.metrics["f1"]
    result = Gate([f"f1 >= {f1 - 0.01}", f"f1 > {f1}", "log_loss <= 5"]).check(candidate)
    assert [c.status for c in result.checks] == ["passed", "failed", "passed"]
    assert not result.passed
    failed = result.checks[1]
    assert failed.value == f1 and failed.threshold == f1
    assert failed.message == f"f1 = {f1:.4f} is not > {f1!r}"


def test_a_missing_metric_fails_naming_it_and_the_available_ones(
    regression: Holdout,
) -> None:
    ev = evaluate(regression.strong, regression.x, regression.y, log=False)
    result = Gate(["roc_auc >= 0.8", "r2 >= 0.5"]).check(ev)
    assert not result.passed
    check = result.checks[0]
    assert check.status == "failed"
    assert check.message == (
        "the candidate's evaluation has no metric 'roc_auc' (it has: rmse, mae, r2); it "
        "applies to binary or multiclass tasks, and this is a regression evaluation; fix the "
        "gate or the evaluation"
    )
    assert result.checks[1].passed


def test_a_metric_the_model_cannot_give_is_explained(binary: Holdout) -> None:
    labels_only = evaluate_predictions(binary.y, binary.strong.predict(binary.x), log=False)
    check = Gate(["log_loss <= 0.5"]).check(labels_only).checks[0]
    assert "it needs class probabilities, and the model has no predict_proba" in check.message


# --- improvement over the champion -----------------------------------------------------------


def test_absolute_improvement(pair: tuple[Evaluation, Evaluation]) -> None:
    candidate, champion = pair
    gain = candidate.metrics["f1"] - champion.metrics["f1"]
    assert gain > 0.02
    passing = Gate(min_improvement={"f1": gain - 0.001}).check(candidate, champion)
    assert passing.passed
    check = passing.checks[0]
    assert check.kind == "improvement"
    assert check.value == pytest.approx(gain)
    assert (check.candidate, check.champion) == (candidate.metrics["f1"], champion.metrics["f1"])
    failing = Gate(min_improvement={"f1": gain + 0.001}).check(candidate, champion)
    assert not failing.passed
    assert "less than the" in failing.checks[0].message
    # the champion against the candidate: a negative improvement
    backwards = Gate(min_improvement={"f1": 0.0}).check(champion, candidate)
    assert backwards.checks[0].value == pytest.approx(-gain)
    assert not backwards.passed
    # a negative minimum allows a bounded loss (non-inferiority)
    assert Gate(min_improvement={"f1": -gain - 0.001}).check(champion, candidate).passed


def test_an_exact_minimum_passes_despite_float_rounding() -> None:
    y = np.array([0, 1] * 50)
    a, b = y.copy(), y.copy()
    a[:50] = 1 - a[:50]  # accuracy 0.5
    b[:84] = 1 - b[:84]  # accuracy 0.16
    better = evaluate_predictions(y, a, log=False)
    worse = evaluate_predictions(y, b, log=False)
    assert better.metrics["accuracy"] - worse.metrics["accuracy"] < 0.34  # float rounding
    assert Gate(min_improvement={"accuracy": 0.34}).check(better, worse).passed
    assert not Gate(min_improvement={"accuracy": 0.3401}).check(better, worse).passed


def test_relative_improvement_and_direction(pair: tuple[Evaluation, Evaluation]) -> None:
    candidate, champion = pair
    loss_c, loss_h = candidate.metrics["log_loss"], champion.metrics["log_loss"]
    relative = (loss_h - loss_c) / loss_h  # lower is better: the drop, as a share
    assert relative > 0.05
    result = Gate(min_relative_improvement={"log_loss": 0.05}).check(candidate, champion)
    check = result.checks[0]
    assert check.kind == "relative_improvement"
    assert check.value == pytest.approx(relative)
    assert result.passed
    assert "lower is better" in check.message
    assert (
        not Gate(min_relative_improvement={"log_loss": relative + 0.01})
        .check(candidate, champion)
        .passed
    )
    assert not Gate(min_relative_improvement={"log_loss": 0.0}).check(champion, candidate).passed


# --- no champion, different holdouts ---------------------------------------------------------


def test_without_a_champion_comparisons_are_skipped(pair: tuple[Evaluation, Evaluation]) -> None:
    candidate, _ = pair
    gate = Gate(["f1 >= 0.5"], min_improvement={"f1": 0.01}, bootstrap={"metric": "roc_auc"})
    result = gate.check(candidate)
    assert result.passed
    assert [c.status for c in result.checks] == ["passed", "skipped", "skipped"]
    assert result.checks[2].message == "no champion to compare with"
    strict = Gate(min_improvement={"f1": 0.01}, require_champion=True).check(candidate)
    assert not strict.passed
    assert strict.checks[-1].kind == "champion"
    assert "the gate requires one (require_champion=True)" in strict.checks[-1].message


def test_a_champion_on_other_rows_is_an_error(
    binary: Holdout, pair: tuple[Evaluation, Evaluation]
) -> None:
    candidate, _ = pair
    fewer = evaluate(binary.weak, binary.x[:-10], binary.y[:-10], log=False)
    gate = Gate(min_improvement={"f1": 0.0})
    with pytest.raises(InvalidInput) as err:
        gate.check(candidate, fewer)
    assert str(err.value) == (
        "the candidate was evaluated on 4000 rows and the champion on 3990: a comparison "
        "needs the same holdout rows; evaluate the candidate and the champion on the same X "
        "and y"
    )
    order = np.arange(len(binary.y))[::-1]
    shuffled = evaluate(binary.weak, binary.x[order], binary.y[order], log=False)
    with pytest.raises(InvalidInput, match=r"have different true labels or values"):
        gate.check(candidate, shuffled)


# --- bootstrap checks ------------------------------------------------------------------------


def test_bootstrap_gate_passes_a_better_candidate(pair: tuple[Evaluation, Evaluation]) -> None:
    candidate, champion = pair
    gate = Gate(bootstrap=[{"metric": "roc_auc"}, {"metric": "log_loss", "resamples": 300}])
    result = gate.check(candidate, champion)
    assert result.passed
    auc = result.checks[0]
    assert auc.kind == "bootstrap" and auc.interval is not None
    assert auc.value == auc.interval[0] > 0
    assert auc.details["resamples"] == 1000 and auc.details["seed"] == 0
    assert "lower bound above margin 0" in auc.message


def test_bootstrap_gate_fails_the_same_model(binary: Holdout) -> None:
    a = evaluate(binary.strong, binary.x, binary.y, log=False)
    b = evaluate(binary.strong, binary.x, binary.y, log=False)
    for margin in (0.0, 0.005):
        check = Gate(bootstrap={"metric": "f1", "margin": margin}).check(a, b).checks[0]
        assert check.status == "failed"
        assert check.interval == (0.0, 0.0)
        assert "the candidate is not shown to be better" in check.message


def test_bootstrap_margin_can_demand_more_than_the_evidence(
    pair: tuple[Evaluation, Evaluation],
) -> None:
    candidate, champion = pair
    lower = Gate(bootstrap={"metric": "roc_auc"}).check(candidate, champion).checks[0].value
    assert lower is not None
    assert (
        not Gate(bootstrap={"metric": "roc_auc", "margin": lower + 0.001})
        .check(candidate, champion)
        .passed
    )


# --- the result ------------------------------------------------------------------------------


def test_the_result_renders_and_serialises(pair: tuple[Evaluation, Evaluation]) -> None:
    candidate, champion = pair
    gate = Gate(["f1 >= 0.99"], min_improvement={"f1": 0.01}, bootstrap={"metric": "roc_auc"})
    result = gate.check(candidate, champion)
    text = str(result)
    lines = text.splitlines()
    assert lines[0] == (
        "gate FAILED: 2 passed, 1 failed, 0 skipped (4000 holdout rows, vs the champion)"
    )
    assert lines[1].startswith("  FAIL  f1 >= 0.99 ")
    assert lines[2].startswith("  PASS  f1 improves by >= 0.01 ")
    assert lines[3].startswith("  PASS  roc_auc bootstrap 95% lower bound > 0 ")
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["passed"] is False
    assert data["counts"] == {"passed": 2, "failed": 1, "skipped": 0}
    assert data["gate"] == gate.to_dict()
    assert [c["status"] for c in data["checks"]] == ["failed", "passed", "passed"]
    assert len(data["checks"][2]["interval"]) == 2
    assert [c.name for c in result.failed] == ["f1 >= 0.99"]


def test_the_result_is_logged_to_the_run(
    sqlite_client: Any, pair: tuple[Evaluation, Evaluation], tmp_path: Path
) -> None:
    candidate, champion = pair
    gate = Gate(["f1 >= 0.5"], bootstrap={"metric": "roc_auc", "resamples": 200})
    with ctloop.start_run(experiment="gate", client=sqlite_client) as run:
        result = gate.check(candidate, champion)  # the active run
    record = sqlite_client.runs.get(run.id)
    assert record.metrics["gate.passed"] == 1.0
    assert record.metrics["gate.checks_failed"] == 0.0
    interval = result.checks[1].interval
    assert interval is not None
    assert record.metrics["gate.bootstrap.roc_auc.lower"] == pytest.approx(interval[0])
    assert record.metrics["gate.bootstrap.roc_auc.upper"] == pytest.approx(interval[1])
    assert record.tags["ctloop.gate"] == "passed"
    path = sqlite_client.runs.download_artifact(run.id, "gate.json", tmp_path / "gate.json")
    assert json.loads(Path(path).read_text()) == json.loads(json.dumps(result.to_dict()))


def test_an_explicit_run_and_log_false(
    sqlite_client: Any, pair: tuple[Evaluation, Evaluation]
) -> None:
    candidate, _ = pair
    gate = Gate(["f1 >= 0.99"])
    with ctloop.start_run(experiment="gate", client=sqlite_client) as run:
        gate.check(candidate, log=False)
        assert "gate.passed" not in run.record().metrics
        gate.check(candidate, run=run)
    record = sqlite_client.runs.get(run.id)
    assert record.metrics["gate.passed"] == 0.0
    assert record.metrics["gate.checks_failed"] == 1.0
    assert record.tags["ctloop.gate"] == "failed"


def test_reading_a_gate_spec_needs_no_numpy() -> None:
    """A controller reads gate specs at start-up; numpy loads when a check runs."""
    code = (
        "import sys; import ctloop.evaluation as e; "
        "e.Gate.from_dict({'thresholds': ['f1 >= 0.8'], 'bootstrap': {'metric': 'auc'}}); "
        "print(sorted(m for m in ('numpy', 'sklearn', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import ctloop.evaluation as package

    for name in package.__all__:
        assert getattr(package, name).__name__ == name
    assert package.evaluate.__module__ == "ctloop.evaluation.scoring"
