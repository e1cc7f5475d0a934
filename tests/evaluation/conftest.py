"""Evaluation fixtures: synthetic holdouts and scikit-learn models fitted on them (built once)."""

from __future__ import annotations

import pytest
from evaluation_holdouts import Columns, Holdout


@pytest.fixture(scope="session")
def binary() -> Holdout:
    """4,000 training and 4,000 holdout rows; a strong and a weak logistic regression."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        8000, n_features=12, n_informative=6, flip_y=0.05, class_sep=0.8, random_state=0
    )
    xt, yt, xh, yh = x[:4000], y[:4000], x[4000:], y[4000:]
    strong = LogisticRegression(max_iter=500).fit(xt, yt)
    # the weak model sees three of the features only
    weak = Columns(LogisticRegression(max_iter=500).fit(xt[:, :3], yt), 3)
    return Holdout(xt, yt, xh, yh, strong, weak)


@pytest.fixture(scope="session")
def multiclass() -> Holdout:
    """A four-class problem with string labels."""
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        3000, n_features=10, n_informative=6, n_classes=4, random_state=1, class_sep=1.0
    )
    labels = np.array(["ant", "bee", "cat", "dog"])[y]
    xt, yt, xh, yh = x[:1500], labels[:1500], x[1500:], labels[1500:]
    strong = RandomForestClassifier(60, random_state=0).fit(xt, yt)
    weak = Columns(LogisticRegression(max_iter=500).fit(xt[:, :2], yt), 2)
    return Holdout(xt, yt, xh, yh, strong, weak)


@pytest.fixture(scope="session")
def regression() -> Holdout:
    from sklearn.datasets import make_regression
    from sklearn.linear_model import LinearRegression

    x, y = make_regression(3000, n_features=8, n_informative=5, noise=20.0, random_state=2)
    xt, yt, xh, yh = x[:1500], y[:1500], x[1500:], y[1500:]
    strong = LinearRegression().fit(xt, yt)
    weak = Columns(LinearRegression().fit(xt[:, :2], yt), 2)
    return Holdout(xt, yt, xh, yh, strong, weak)
