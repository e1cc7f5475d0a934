"""MLflow scoring: the four body formats give the same rows; errors in MLflow's shape."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctloop.datasets import churn
from ctloop.models.signature import Signature, infer_signature
from ctloop.serving.protocols import RequestInvalid, error_status, format_mlflow, parse_mlflow
from ctloop.serving.protocols.mlflow import error_body


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Signature, pd.DataFrame]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame = churn.generate(300, seed=8)
    x = frame[churn.FEATURES].drop(columns=["monthly_charges"])
    model = HistGradientBoostingRegressor(max_iter=10, categorical_features="from_dtype")
    model.fit(x, frame["monthly_charges"])
    return model, infer_signature(x, model), x


def bodies(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    split = json.loads(rows.to_json(orient="split"))
    recs = json.loads(rows.to_json(orient="records"))
    cols = {k: list(v.values()) for k, v in json.loads(rows.to_json(orient="columns")).items()}
    return {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_split_no_index": {
            "dataframe_split": {"columns": split["columns"], "data": split["data"]}
        },
        "dataframe_records": {"dataframe_records": recs},
        "instances": {"instances": recs},
        "inputs": {"inputs": cols, "params": {"threshold": 0.3}},
    }


def test_every_format_gives_the_same_rows_and_predictions(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    model, signature, x = fitted
    rows = x.head(5)
    expected = model.predict(rows)
    for name, body in bodies(rows).items():
        parsed = parse_mlflow(body, signature, max_rows=10)
        pd.testing.assert_frame_equal(
            parsed.frame.reset_index(drop=True), signature.validate(rows).reset_index(drop=True)
        )
        preds = model.predict(parsed.frame)
        np.testing.assert_allclose(preds, expected, err_msg=name)
        out = format_mlflow(parsed, preds, None, model_name="m", model_version=2, classes=None)
        assert out == {"predictions": pytest.approx(expected.tolist())}
        json.dumps(out, allow_nan=False)
    assert parse_mlflow(bodies(rows)["inputs"], signature, max_rows=10).parameters == {
        "threshold": 0.3
    }


def test_classifier_predictions_are_labels_as_mlflow_returns() -> None:
    parsed = parse_mlflow({"instances": [{"a": 1}, {"a": 2}]}, None, max_rows=10)
    out = format_mlflow(
        parsed,
        np.array(["no", "yes"], dtype=object),
        np.array([[0.9, 0.1], [0.2, 0.8]]),
        model_name="m",
        model_version=1,
        classes=["no", "yes"],
    )
    assert out == {"predictions": ["no", "yes"]}


def test_exactly_one_format_and_no_unknown_keys(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    _, signature, _ = fitted
    with pytest.raises(RequestInvalid) as info:
        parse_mlflow({"instances": [], "inputs": [], "extra": 1}, signature, max_rows=10)
    assert info.value.problems == [
        "unknown key(s) ['extra']: the body takes one of "
        "['dataframe_split', 'dataframe_records', 'instances', 'inputs']",
        "the body must hold exactly one of ['dataframe_split', 'dataframe_records', "
        "'instances', 'inputs']; it holds ['instances', 'inputs']",
    ]
    body = error_body(info.value)
    assert body["error_code"] == "BAD_REQUEST" and "exactly one of" in body["message"]
    assert error_status(info.value) == 400


def test_every_value_problem_is_reported_together(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    _, signature, x = fitted
    split = json.loads(x.head(2).to_json(orient="split"))
    split["columns"][split["columns"].index("age")] = "agee"  # a misspelt column
    split["data"][0][split["columns"].index("support_calls")] = 1.5  # not an integer
    split["data"][1][split["columns"].index("region")] = None  # null, not nullable
    with pytest.raises(RequestInvalid) as info:
        parse_mlflow({"dataframe_split": split}, signature, max_rows=10)
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert "unknown column(s) 'agee'" in problems[0]
    assert problems[1].startswith("missing column 'age'")
    assert problems[2].startswith("column 'support_calls': expected integer, got non-integral")
    assert problems[3].startswith("column 'region': 1 missing value(s)")


def test_split_with_duplicate_columns_or_too_many_rows(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    _, signature, _ = fitted
    with pytest.raises(RequestInvalid, match=r"columns named more than once: \['a'\]"):
        parse_mlflow(
            {"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, signature, max_rows=5
        )
    with pytest.raises(RequestInvalid, match="3 rows, more than this endpoint's limit of 2"):
        parse_mlflow({"dataframe_records": [{}, {}, {}]}, signature, max_rows=2)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
json_any = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=15,
)
column = st.sampled_from(["age", "plan", "total_charges"]) | st.text(max_size=3)
payload = (
    st.lists(st.dictionaries(column, scalars | json_any, max_size=5), max_size=4)
    | st.dictionaries(column, st.lists(scalars, max_size=3) | json_any, max_size=4)
    | st.fixed_dictionaries(
        {"data": st.lists(st.lists(scalars, max_size=12), max_size=4)},
        optional={"columns": st.lists(column, max_size=12) | json_any, "index": json_any},
    )
    | json_any
)
body = json_any | st.dictionaries(
    st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "params"]),
    payload,
    max_size=2,
)


@settings(max_examples=300, deadline=None)
@given(body=body)
def test_parse_raises_only_request_invalid(
    fitted: tuple[Any, Signature, pd.DataFrame], body: Any
) -> None:
    for signature in (fitted[1], None):
        try:
            parsed = parse_mlflow(body, signature, max_rows=4)
        except RequestInvalid as exc:
            assert exc.problems
        else:
            assert 0 < parsed.n_rows <= 4
