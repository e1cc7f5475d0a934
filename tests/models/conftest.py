"""Model-package fixtures: churn data, an artifact store, fitted models (built once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctloop.artifacts.blobstore import BlobStore


@pytest.fixture(scope="session")
def churn_xy() -> tuple[Any, Any]:
    """2,000 churn rows: features (categoricals as ``category``, NaNs in two columns), label."""
    from ctloop.datasets import churn

    return churn.split(churn.generate(2000, seed=0))


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(str(tmp_path / "artifacts"))


def preprocessor(encoder: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ctloop.datasets import churn

    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                churn.NUMERIC,
            ),
            ("cat", encoder, churn.CATEGORICAL),
        ]
    )


@pytest.fixture(scope="session")
def fitted(churn_xy: tuple[Any, Any]) -> dict[str, Any]:
    """The models the demo and the flavors cover, fitted on the churn data."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    x, y = churn_xy
    models = {
        # the demo's baseline
        "logreg": Pipeline(
            [
                ("prep", preprocessor(OneHotEncoder(handle_unknown="ignore"))),
                ("model", LogisticRegression(max_iter=500)),
            ]
        ),
        "forest": Pipeline(
            [
                ("prep", preprocessor(OrdinalEncoder())),
                ("model", RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)),
            ]
        ),
        "gboost": Pipeline(
            [
                ("prep", preprocessor(OrdinalEncoder())),
                ("model", GradientBoostingClassifier(n_estimators=10, random_state=0)),
            ]
        ),
        # the demo's challenger
        "hgb": HistGradientBoostingClassifier(
            max_iter=20, categorical_features="from_dtype", random_state=0
        ),
        "xgb": xgb.XGBClassifier(n_estimators=10, max_depth=3, enable_categorical=True),
        "lgbm": lgb.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1),
    }
    for model in models.values():
        model.fit(x, y)
    regression = Pipeline(
        [("prep", preprocessor(OneHotEncoder(handle_unknown="ignore"))), ("model", Ridge())]
    )
    # a regression (its target leaks into the inputs; what matters here is the round trip)
    models["ridge"] = regression.fit(x, x["monthly_charges"] * 12)
    return models
