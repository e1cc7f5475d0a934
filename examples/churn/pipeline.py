"""The churn training pipeline: a template to copy.

    load dataset@version ▶ validate (against the reference's suite) ▶ split ▶ train ▶
    evaluate ▶ gate vs the champion ▶ register as challenger (only if the gate passed)

Run it (from the repository root, with a dataset ``churn`` in the store)::

    ctloop pipeline run examples/churn/pipeline.py:churn_pipeline -p dataset=churn@latest
    ctloop pipeline show <run id>

or from Python: ``churn_pipeline.run(executor="local", dataset="churn@2")``.

Every step is cached: run it twice and the second run reuses everything; add a data
version and only what depends on the data runs again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from ctloop import pipeline, step
from ctloop.datasets import churn
from ctloop.pipelines import builtin as ct

# Default gate: good enough on its own, and not worse than the champion on the same rows.
GATE: dict[str, Any] = {
    "thresholds": ["roc_auc >= 0.70", "f1 >= 0.30"],
    "bootstrap": {"metric": "roc_auc", "confidence": 0.95, "margin": -0.01, "seed": 0},
}


def features(df: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns, categoricals as pandas categories."""
    x = df[list(churn.FEATURES)].copy()
    for col in churn.CATEGORICAL:
        x[col] = x[col].astype("category")
    return x


@step(outputs=("X_train", "X_test", "y_train", "y_test"))
def split(
    data: pd.DataFrame, test_size: float = 0.2, how: str = "time", seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Hold out ``test_size`` of the rows: the newest (``how="time"``) or drawn at random
    with ``seed`` (``how="random"``)."""
    ordered = data.sort_values(churn.TIMESTAMP, kind="stable")
    if how == "random":
        ordered = ordered.sample(frac=1.0, random_state=seed)
    elif how != "time":
        raise ValueError(f"split how={how!r}: use 'time' or 'random'")
    cut = int(len(ordered) * (1 - test_size))
    train, test = ordered.iloc[:cut], ordered.iloc[cut:]
    return features(train), features(test), train[churn.TARGET], test[churn.TARGET]


@step
def train(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    learning_rate: float = 0.08,
    max_iter: int = 100,
    seed: int = 0,
) -> HistGradientBoostingClassifier:
    """A gradient-boosted classifier (categoricals handled natively)."""
    import ctloop

    ctloop.log_params({"model": "hist_gradient_boosting", "learning_rate": learning_rate})
    model = HistGradientBoostingClassifier(
        learning_rate=learning_rate,
        max_iter=max_iter,
        categorical_features="from_dtype",
        early_stopping=False,
        random_state=seed,
    )
    return model.fit(X_train, y_train)


@pipeline(name="churn-training", experiment="churn")
def churn_pipeline(
    dataset: str = "churn@latest",
    reference: str = "churn@1",
    model_name: str = "churn",
    test_size: float = 0.2,
    learning_rate: float = 0.08,
    max_iter: int = 100,
    gate: dict[str, Any] | None = None,
    holdout: dict[str, Any] | None = None,
) -> None:
    data = ct.validate(ct.load_dataset(dataset), ct.dataset_suite(reference))
    # A loop policy passes its training_data.holdout ({fraction, split, seed}); run by hand,
    # the newest test_size of the rows are held out.
    h = holdout or {}
    X_train, X_test, y_train, y_test = split(
        data,
        test_size=h.get("fraction", test_size),
        how=h.get("split", "time"),
        seed=h.get("seed", 0),
    )
    model = train(X_train, y_train, learning_rate=learning_rate, max_iter=max_iter)
    ct.evaluate_model(model, X_test, y_test)
    decision = ct.gate(model, X_test, y_test, model_name=model_name, spec=gate or GATE)
    ct.register(model, decision, model_name=model_name, input_example=X_train)
