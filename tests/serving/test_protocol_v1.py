"""KServe V1: instances as records or rows, every problem together, and the response."""

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
from ctloop.serving.protocols import (
    RequestInvalid,
    error_body,
    format_kserve_v1,
    parse_kserve_v1,
)


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Signature, pd.DataFrame]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = churn.split(churn.generate(300, seed=5))
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype")
    model.fit(x, y)
    return model, infer_signature(x, model), x


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def test_records_and_rows_give_the_same_predictions(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    model, signature, x = fitted
    rows = x.head(6)
    as_records = parse_kserve_v1({"instances": records(rows)}, signature, max_rows=10)
    as_rows = parse_kserve_v1(
        {"instances": json.loads(rows.to_json(orient="values"))}, signature, max_rows=10
    )
    as_inputs = parse_kserve_v1({"inputs": records(rows)}, signature, max_rows=10)
    for parsed in (as_records, as_rows, as_inputs):
        pd.testing.assert_frame_equal(parsed.frame, signature.validate(rows))
    preds = model.predict(as_records.frame)
    np.testing.assert_array_equal(preds, model.predict(rows))
    out = format_kserve_v1(
        as_records,
        preds,
        model.predict_proba(rows),
        model_name="churn",
        model_version=1,
        classes=[0, 1],
    )
    assert out == {"predictions": preds.tolist()}
    json.dumps(out, allow_nan=False)


def test_every_problem_is_reported_together(fitted: tuple[Any, Signature, pd.DataFrame]) -> None:
    _, signature, x = fitted
    bad = records(x.head(3))
    bad[0]["age"] = "old"  # wrong type
    del bad[1]["plan"]  # missing value in a non-nullable column
    bad[2]["colour"] = "red"  # unknown column
    bad[2]["region"] = [1, 2]  # not a single value
    with pytest.raises(RequestInvalid) as info:
        parse_kserve_v1({"instances": bad}, signature, max_rows=10)
    problems = info.value.problems
    # a nested cell stops the frame from being built, so only that is reported
    assert problems == [
        "'instances', column 'region': got a list where a single value was expected (rows 2)"
    ]
    bad[2]["region"] = "north"
    with pytest.raises(RequestInvalid) as info:
        parse_kserve_v1({"instances": bad}, signature, max_rows=10)
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert "unknown column(s) 'colour'" in problems[0]
    assert problems[1].startswith("column 'age': expected integer, got object values")
    assert problems[2].startswith("column 'plan': 1 missing value(s) (rows 1)")
    assert error_body(info.value)["error"].startswith("the request is invalid (3 problems)")


def test_rows_of_the_wrong_length_and_too_many_rows(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    _, signature, _ = fitted
    with pytest.raises(RequestInvalid, match=r"rows must have 12 values.*rows 0 \(2\)"):
        parse_kserve_v1({"instances": [[1, 2]]}, signature, max_rows=10)
    with pytest.raises(RequestInvalid, match="more than this endpoint's limit of 2"):
        parse_kserve_v1({"instances": [{}, {}, {}]}, signature, max_rows=2)
    with pytest.raises(RequestInvalid, match='"instances"'):
        parse_kserve_v1({"rows": []}, signature, max_rows=2)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
json_any = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=15,
)
column = st.sampled_from(["age", "plan", "monthly_charges", "total_charges"]) | st.text(max_size=3)
record = st.dictionaries(column, scalars | json_any, max_size=5)
bodies = json_any | st.fixed_dictionaries(
    {
        "instances": st.lists(record, max_size=5)
        | st.lists(st.lists(scalars, max_size=13), max_size=4)
        | json_any
    }
)


@settings(max_examples=300, deadline=None)
@given(body=bodies)
def test_parse_raises_only_request_invalid(
    fitted: tuple[Any, Signature, pd.DataFrame], body: Any
) -> None:
    for signature in (fitted[1], None):
        try:
            parsed = parse_kserve_v1(body, signature, max_rows=4)
        except RequestInvalid as exc:
            assert exc.problems
        else:
            assert 0 < parsed.n_rows <= 4
