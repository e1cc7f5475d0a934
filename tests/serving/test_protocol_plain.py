"""The plain /predict protocol: records or one record in, predictions with ids out."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctloop.datasets import churn
from ctloop.errors import PayloadTooLarge
from ctloop.models.signature import Signature, infer_signature
from ctloop.serving.protocols import (
    RequestInvalid,
    check_body_size,
    error_status,
    format_plain,
    parse_plain,
)
from ctloop.serving.protocols.plain import error_body


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Signature, pd.DataFrame]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = churn.split(churn.generate(300, seed=11))
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype")
    model.fit(x, y)
    return model, infer_signature(x, model), x


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def test_records_round_trip_with_ids_and_version(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    model, signature, x = fitted
    rows = x.head(4)
    parsed = parse_plain({"instances": records(rows)}, signature, max_rows=10)
    preds, proba = model.predict(parsed.frame), model.predict_proba(parsed.frame)
    np.testing.assert_array_equal(preds, model.predict(rows))
    out = format_plain(
        parsed,
        preds,
        proba,
        model_name="churn",
        model_version=7,
        classes=[0, 1],
        prediction_ids=["a", "b", "c", "d"],
    )
    assert out["predictions"] == preds.tolist()
    assert out["prediction_ids"] == ["a", "b", "c", "d"]
    assert out["model_version"] == "7"
    np.testing.assert_allclose(out["probabilities"], proba)
    assert out["classes"] == [0, 1]
    json.dumps(out, allow_nan=False)
    fresh = format_plain(parsed, preds, None, model_name="c", model_version=1, classes=None)
    assert len(set(fresh["prediction_ids"])) == 4 and "probabilities" not in fresh


def test_one_record_alone_or_under_instances(fitted: tuple[Any, Signature, pd.DataFrame]) -> None:
    model, signature, x = fitted
    record = records(x.head(1))[0]
    for body in (record, {"instances": record}):
        parsed = parse_plain(body, signature, max_rows=1)
        assert parsed.n_rows == 1
        np.testing.assert_array_equal(model.predict(parsed.frame), model.predict(x.head(1)))


def test_strings_and_iso_timestamps_are_converted() -> None:
    frame = churn.generate(20, seed=2).drop(columns=[churn.TARGET])
    signature = infer_signature(frame)
    body = {"instances": records(frame.head(2).assign(event_time=["2026-01-01T00:00:00Z"] * 2))}
    parsed = parse_plain(body, signature, max_rows=5)
    assert str(parsed.frame["event_time"].dt.tz) == "UTC"
    assert parsed.frame["customer_id"].tolist() == frame["customer_id"].head(2).tolist()
    with pytest.raises(RequestInvalid, match="timestamps have no time zone"):
        parse_plain({**body["instances"][0], "event_time": "2026-01-01"}, signature, max_rows=5)


def test_every_problem_is_listed_in_the_error_body(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    _, signature, x = fitted
    bad = records(x.head(2))
    bad[0]["contract"] = 12  # wrong type for a category of strings
    bad[1]["monthly_charges"] = None  # null, not nullable
    del bad[1]["days_since_last_login"]
    bad[0]["customer_id"] = "c-1"  # unknown column
    with pytest.raises(RequestInvalid) as info:
        parse_plain({"instances": bad}, signature, max_rows=10)
    body = error_body(info.value)
    assert len(body["problems"]) == 4, body
    assert "unknown column(s) 'customer_id'" in body["problems"][0]
    assert body["error"].startswith("the request is invalid (4 problems)")
    assert error_status(info.value) == 400
    parsed = parse_plain(
        {"instances": records(x.head(1).assign(customer_id="c"))},
        signature,
        max_rows=10,
        allow_extra_columns=True,
    )
    assert "customer_id" not in parsed.frame.columns


def test_shapes_that_are_not_records_are_refused(
    fitted: tuple[Any, Signature, pd.DataFrame],
) -> None:
    _, signature, _ = fitted
    for body, needle in (
        ([1, 2], "must be a JSON object"),
        ({"instances": [[1, 2]]}, "list of records"),
        ({"instances": {"age": [1, 2]}}, "one record"),
        ({"instances": [{}] * 3}, "limit of 2"),
    ):
        with pytest.raises(RequestInvalid, match=needle):
            parse_plain(body, signature, max_rows=2)


def test_body_size_limit_is_a_413() -> None:
    check_body_size(10, 10)
    with pytest.raises(PayloadTooLarge, match="11 bytes, more than this endpoint's limit of 10"):
        check_body_size(11, 10)
    try:
        check_body_size(11, 10)
    except PayloadTooLarge as exc:
        assert error_status(exc) == 413


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
json_any = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=15,
)
column = st.sampled_from(["age", "plan", "region", "monthly_charges"]) | st.text(max_size=3)
record = st.dictionaries(column, scalars | json_any, max_size=5)
bodies = (
    json_any
    | record
    | st.fixed_dictionaries({"instances": st.lists(record, max_size=4) | record | json_any})
)


@settings(max_examples=300, deadline=None)
@given(body=bodies)
def test_parse_raises_only_request_invalid(
    fitted: tuple[Any, Signature, pd.DataFrame], body: Any
) -> None:
    for signature in (fitted[1], None):
        try:
            parsed = parse_plain(body, signature, max_rows=3)
        except RequestInvalid as exc:
            assert exc.problems
        else:
            assert 0 < parsed.n_rows <= 3
