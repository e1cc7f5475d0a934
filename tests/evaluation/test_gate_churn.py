"""End to end on churn data: a registered champion, a candidate, the gate, the promotion."""

from __future__ import annotations

from typing import Any

import pytest

import ctloop
from ctloop.evaluation import Gate, evaluate, evaluate_champion


@pytest.fixture(scope="module")
def churn_split() -> tuple[Any, Any, Any, Any]:
    """5,000 training rows and the next 3,000 as the holdout."""
    from ctloop.datasets import churn

    df = churn.generate(8000, seed=5)
    x, y = churn.split(df)
    return x.iloc[:5000], y.iloc[:5000], x.iloc[5000:], y.iloc[5000:]


def _model(numeric: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts: list[Any] = [
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
    ]
    if categorical:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore"), categorical))
    return Pipeline([("prep", ColumnTransformer(parts)), ("model", LogisticRegression())])


def _train(client: Any, model: Any, data: tuple[Any, Any, Any, Any], gate: Gate) -> Any:
    """The pipeline's evaluate ▶ gate ▶ register steps, as a user writes them."""
    x_train, y_train, x_hold, y_hold = data
    with ctloop.start_run(experiment="churn", client=client) as run:
        model.fit(x_train, y_train)
        candidate = evaluate(model, x_hold, y_hold, prefix="val_")
        champion = evaluate_champion(client, "churn", x_hold, y_hold)
        result = gate.check(candidate, champion)
        run.log_model(model, input_example=x_train)
        if result.passed:
            run.flush()  # the version snapshots the run's metrics
            version = client.models.register(run.id, "model", name="churn")
            client.models.set_alias("churn", "champion", version.version, reason=str(result))
    return run, candidate, champion, result


def test_a_better_candidate_replaces_the_champion(
    sqlite_client: Any, churn_split: tuple[Any, Any, Any, Any]
) -> None:
    from ctloop.datasets import churn

    x_hold, y_hold = churn_split[2], churn_split[3]
    gate = Gate(
        ["roc_auc >= 0.55"],
        min_improvement={"roc_auc": 0.005},
        bootstrap={"metric": "roc_auc", "confidence": 0.95, "resamples": 500},
    )
    assert evaluate_champion(sqlite_client, "churn", x_hold, y_hold) is None

    # 1. the first model: no champion, so the comparisons are skipped and it passes
    weak = _model(["age", "monthly_charges"], [])
    run1, _, champion, first = _train(sqlite_client, weak, churn_split, gate)
    assert champion is None
    assert first.passed
    assert [c.status for c in first.checks] == ["passed", "skipped", "skipped"]
    assert sqlite_client.models.get_version("churn@champion").version == 1

    # 2. a model that sees every feature: gated against churn/1 on the same holdout
    strong = _model(list(churn.NUMERIC), list(churn.CATEGORICAL))
    run2, candidate, champion, second = _train(sqlite_client, strong, churn_split, gate)
    assert champion is not None and champion.model_ref == "churn/1"
    # the champion was loaded from the registry and scores like the model that was logged
    assert champion.metrics == pytest.approx(evaluate(weak, x_hold, y_hold, log=False).metrics)
    assert second.passed, str(second)
    assert [c.status for c in second.checks] == ["passed", "passed", "passed"]
    boot = second.checks[2]
    assert boot.interval is not None and boot.interval[0] > 0
    assert second.render().splitlines()[0] == (
        "gate PASSED: 3 passed, 0 failed, 0 skipped (3000 holdout rows, vs champion churn/1)"
    )
    new = sqlite_client.models.get_version("churn@champion")
    assert (new.version, new.run_id) == (2, run2.id)
    # the version snapshots the run's metrics: the evaluation and the gate's verdict
    assert new.metrics["gate.passed"] == 1.0
    assert new.metrics["val_roc_auc"] == pytest.approx(candidate.metrics["roc_auc"])
    history = sqlite_client.models.alias_history("churn", "champion")
    assert history[-1].reason is not None and history[-1].reason.startswith("gate PASSED")

    # 3. the first model again, as a candidate against the new champion: rejected
    again = _model(["age", "monthly_charges"], [])
    run3, _, champion, third = _train(sqlite_client, again, churn_split, gate)
    assert champion is not None and champion.model_ref == "churn/2"
    assert not third.passed
    assert {c.kind for c in third.failed} == {"improvement", "bootstrap"}
    assert sqlite_client.models.get_version("churn@champion").version == 2
    record = sqlite_client.runs.get(run3.id)
    assert record.metrics["gate.passed"] == 0.0
    assert record.tags["ctloop.gate"] == "failed"
    assert "gate.json" in {a.path for a in record.artifacts}


def test_evaluate_champion_is_none_without_the_model_or_alias(
    sqlite_client: Any, churn_split: tuple[Any, Any, Any, Any]
) -> None:
    x_train, y_train, x_hold, y_hold = churn_split
    assert evaluate_champion(sqlite_client, "nobody", x_hold, y_hold) is None
    model = _model(["age", "tenure_months"], ["contract"]).fit(x_train, y_train)
    run = sqlite_client.runs.create("churn", capture_code=False)
    sqlite_client.runs.log_model(run.id, model, "model", input_example=x_train)
    sqlite_client.models.register(run.id, "model", name="churn")
    assert evaluate_champion(sqlite_client, "churn", x_hold, y_hold) is None  # no alias yet
    sqlite_client.models.set_alias("churn", "challenger", 1)
    found = evaluate_champion(sqlite_client, "churn", x_hold, y_hold, alias="challenger")
    assert found is not None and found.model_ref == "churn/1"
    assert found.task == "binary"
