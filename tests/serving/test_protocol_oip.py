"""Open Inference Protocol: parsing infer requests (as MLServer and tritonclient send them),
every problem reported together, responses, model and server metadata."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctloop.datasets import churn
from ctloop.models.signature import Signature, infer_signature
from ctloop.serving.protocols import (
    RequestInvalid,
    error_body,
    error_status,
    format_oip,
    model_metadata,
    parse_oip,
    server_metadata,
)
from ctloop.serving.protocols.oip import DATATYPES, datatype_of


@pytest.fixture(scope="module")
def churn_x() -> pd.DataFrame:
    x, _ = churn.split(churn.generate(300, seed=3))
    return x


@pytest.fixture(scope="module")
def classifier(churn_x: pd.DataFrame) -> tuple[Any, Signature]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    _, y = churn.split(churn.generate(300, seed=3))
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype")
    model.fit(churn_x, y)
    return model, infer_signature(churn_x, model)


@pytest.fixture(scope="module")
def array_regressor() -> tuple[Any, Signature]:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    model = LinearRegression().fit(x, x @ np.array([1.0, -2.0, 0.5]))
    return model, infer_signature(x, model)


def _oip_datatype(column: pd.Series) -> str:
    if pd.api.types.is_integer_dtype(column):
        return "INT64"
    if pd.api.types.is_float_dtype(column):
        return "FP64"
    return "BYTES"


def mlserver_body(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """A request as MLServer's PandasCodec encodes a DataFrame (one [n, 1] input per column)."""
    inputs = []
    for name in frame.columns:
        column = frame[name]
        values = [None if pd.isna(v) else v for v in column.astype(object).tolist()]
        item: dict[str, Any] = {
            "name": name,
            "shape": [len(frame), 1],
            "datatype": _oip_datatype(column),
            "data": values,
        }
        if item["datatype"] == "BYTES":
            item["parameters"] = {"content_type": "str"}
        inputs.append(item)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs, **extra}


def test_mlserver_pandas_request_round_trips_to_the_model(
    churn_x: pd.DataFrame, classifier: tuple[Any, Signature]
) -> None:
    model, signature = classifier
    rows = churn_x.head(7)
    body = json.loads(json.dumps(mlserver_body(rows, id="req-1")))  # through real JSON

    parsed = parse_oip(body, signature, max_rows=100)

    assert parsed.id == "req-1" and parsed.n_rows == 7
    assert list(parsed.frame.columns) == signature.input_names
    np.testing.assert_array_equal(model.predict(parsed.frame), model.predict(rows))
    preds, proba = model.predict(parsed.frame), model.predict_proba(parsed.frame)
    out = format_oip(parsed, preds, proba, model_name="churn", model_version=3, classes=[0, 1])
    assert out["id"] == "req-1" and out["model_name"] == "churn" and out["model_version"] == "3"
    by_name = {o["name"]: o for o in out["outputs"]}
    assert by_name["predict"] == {
        "name": "predict",
        "shape": [7],
        "datatype": "INT64",
        "data": preds.tolist(),
    }
    assert by_name["predict_proba"]["shape"] == [7, 2]
    assert by_name["predict_proba"]["datatype"] == "FP64"
    assert by_name["predict_proba"]["data"] == pytest.approx(proba.reshape(-1).tolist())
    json.dumps(out, allow_nan=False)


def test_columns_may_be_flat_shapes_without_content_type(
    churn_x: pd.DataFrame, classifier: tuple[Any, Signature]
) -> None:
    _, signature = classifier
    body = mlserver_body(churn_x.head(4))
    del body["parameters"]
    for item in body["inputs"]:
        item["shape"] = [4]
    parsed = parse_oip(body, signature, max_rows=10)
    pd.testing.assert_frame_equal(parsed.frame, signature.validate(churn_x.head(4)))


def test_tritonclient_request_is_accepted_and_its_client_reads_the_response(
    churn_x: pd.DataFrame, classifier: tuple[Any, Signature]
) -> None:
    import tritonclient.http as httpclient  # a dev dependency: the stock OIP client
    from tritonclient.http import _utils

    model, signature = classifier
    rows = churn_x.head(5)
    inputs = []
    for name in rows.columns:
        column = rows[name]
        datatype = _oip_datatype(column)
        array = (
            column.astype(object).to_numpy().astype(np.object_).reshape(-1, 1)
            if datatype == "BYTES"
            else column.to_numpy().reshape(-1, 1)
        )
        tensor = httpclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput("predict_proba", binary_data=False)]
    raw, _ = _utils._get_inference_request(inputs, "t-9", outputs, 0, False, False, 0, None, None)

    parsed = parse_oip(json.loads(raw), signature, max_rows=100)

    assert parsed.outputs_requested == ["predict_proba"]
    proba = model.predict_proba(parsed.frame)
    out = format_oip(
        parsed, model.predict(parsed.frame), proba, model_name="m", model_version=1, classes=[0, 1]
    )
    assert [o["name"] for o in out["outputs"]] == ["predict_proba"]
    result = httpclient.InferResult.from_response_body(json.dumps(out).encode())
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows))
    assert result.get_response()["id"] == "t-9"


def test_single_2d_tensor_maps_by_position_flat_or_nested(
    array_regressor: tuple[Any, Signature],
) -> None:
    model, signature = array_regressor
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    flat = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [*x.ravel()]}]}
    nested = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": x.tolist()}]}
    for body in (flat, nested):
        parsed = parse_oip(body, signature, max_rows=10)
        assert list(parsed.frame.columns) == ["x0", "x1", "x2"]
        np.testing.assert_allclose(model.predict(parsed.frame.to_numpy()), model.predict(x))
    out = format_oip(
        parsed, model.predict(x), None, model_name="r", model_version="2", classes=None
    )
    assert out["outputs"] == [
        {"name": "predict", "shape": [2], "datatype": "FP64", "data": model.predict(x).tolist()}
    ]


def test_np_content_type_with_the_wrong_number_of_columns_is_refused(
    array_regressor: tuple[Any, Signature],
) -> None:
    _, signature = array_regressor
    body = {
        "parameters": {"content_type": "np"},
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}],
    }
    with pytest.raises(RequestInvalid) as info:
        parse_oip(body, signature, max_rows=10)
    assert info.value.problems == [
        "input 'x': a 2-D tensor of shape [1, 2] has 2 columns but the model's signature "
        "has 3 (['x0', 'x1', 'x2']), taken in that order"
    ]
    assert error_status(info.value) == 400


def test_every_tensor_problem_is_reported_together(classifier: tuple[Any, Signature]) -> None:
    _, signature = classifier
    body = {
        "id": 5,
        "parameters": {"content_type": "arrow"},
        "outputs": [{"name": "explain"}],
        "inputs": [
            {"name": "age", "shape": [2], "datatype": "INT65", "data": [1, 2]},
            {"name": "tenure_months", "shape": [3], "datatype": "INT64", "data": [1, 2]},
            {"name": "plan", "shape": [2], "datatype": "BYTES", "data": [1, "basic"]},
            {"name": "region", "shape": [2], "datatype": "INT8", "data": [1, 300]},
        ],
    }
    with pytest.raises(RequestInvalid) as info:
        parse_oip(body, signature, max_rows=10)
    problems = info.value.problems
    assert len(problems) == 7, problems
    text = "\n".join(problems)
    for needle in (
        "'id' must be a string",
        "unsupported content_type 'arrow'",
        "unknown output(s) ['explain']",
        "unknown datatype 'INT65'",
        "shape [3] holds 3 values but 'data' has 2",
        "datatype BYTES takes strings; got 1",
        "datatype INT8 takes integers in [-128, 127]; got 300",
    ):
        assert needle in text
    assert str(info.value) in error_body(info.value)["error"]


def test_duplicate_input_names_are_refused(classifier: tuple[Any, Signature]) -> None:
    _, signature = classifier
    item = {"name": "age", "shape": [1], "datatype": "INT64", "data": [40]}
    with pytest.raises(RequestInvalid) as info:
        parse_oip({"inputs": [item, item]}, signature, max_rows=10)
    assert info.value.problems == ["inputs named more than once: ['age']"]


def test_every_signature_problem_is_reported_together(
    churn_x: pd.DataFrame, classifier: tuple[Any, Signature]
) -> None:
    _, signature = classifier
    body = mlserver_body(churn_x.head(3))
    inputs = [i for i in body["inputs"] if i["name"] != "plan"]  # missing column
    inputs.append({"name": "plann", "shape": [3, 1], "datatype": "BYTES", "data": ["a"] * 3})
    by_name = {i["name"]: i for i in inputs}
    by_name["age"]["data"] = [30, None, 40]  # null where the signature allows none
    by_name["contract"].update(datatype="FP64", data=[1.0, 2.0, 3.0])  # wrong type
    with pytest.raises(RequestInvalid) as info:
        parse_oip({**body, "inputs": inputs}, signature, max_rows=10)
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert any("unknown column(s) 'plann'" in p for p in problems)
    assert any("missing column 'plan'" in p for p in problems)
    assert any(p.startswith("column 'age': 1 missing value(s)") for p in problems)
    assert any(p.startswith("column 'contract': expected a category") for p in problems)


def test_unknown_columns_may_be_allowed_and_dropped(
    churn_x: pd.DataFrame, classifier: tuple[Any, Signature]
) -> None:
    _, signature = classifier
    body = mlserver_body(churn_x.head(2).assign(customer_id=["a", "b"]))
    parsed = parse_oip(body, signature, max_rows=10, allow_extra_columns=True)
    assert list(parsed.frame.columns) == signature.input_names


def test_too_many_rows_and_no_rows_are_refused(classifier: tuple[Any, Signature]) -> None:
    _, signature = classifier
    for n, needle in ((11, "11 rows, more than this endpoint's limit of 10"), (0, "no rows")):
        body = {"inputs": [{"name": "age", "shape": [n], "datatype": "INT64", "data": [1] * n}]}
        with pytest.raises(RequestInvalid) as info:
            parse_oip(body, signature, max_rows=10)
        assert needle in info.value.problems[0]


def test_binary_tensor_data_is_refused_with_a_hint(classifier: tuple[Any, Signature]) -> None:
    _, signature = classifier
    body = {
        "inputs": [
            {
                "name": "age",
                "shape": [2],
                "datatype": "INT64",
                "parameters": {"binary_data_size": 16},
            }
        ]
    }
    with pytest.raises(RequestInvalid) as info:
        parse_oip(body, signature, max_rows=10)
    assert "binary_data=False" in info.value.problems[0]


def test_asking_for_probabilities_of_a_regressor_is_refused(
    array_regressor: tuple[Any, Signature],
) -> None:
    _, signature = array_regressor
    body = {
        "outputs": [{"name": "predict_proba"}],
        "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2, 3]}],
    }
    with pytest.raises(RequestInvalid, match=r"unknown output\(s\) \['predict_proba'\]"):
        parse_oip(body, signature, max_rows=10)


def test_format_reports_nan_as_null_and_maps_dtypes() -> None:
    parsed = parse_oip(
        {"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]}]},
        None,
        max_rows=10,
    )
    out = format_oip(
        parsed, np.array([1.5, np.nan]), None, model_name="m", model_version=1, classes=None
    )
    assert out["outputs"][0]["data"] == [1.5, None]
    assert "id" not in out
    assert datatype_of(np.array(["a"])) == "BYTES"
    assert datatype_of(np.array([True])) == "BOOL"
    assert datatype_of(np.array([1], dtype=np.int32)) == "INT32"
    labels = format_oip(
        parsed,
        np.array(["yes", "no"], dtype=object),
        None,
        model_name="m",
        model_version=1,
        classes=["no", "yes"],
    )
    assert labels["outputs"][0]["datatype"] == "BYTES"
    assert labels["outputs"][0]["data"] == ["yes", "no"]


def test_model_metadata_lists_inputs_and_outputs(
    classifier: tuple[Any, Signature], array_regressor: tuple[Any, Signature]
) -> None:
    _, signature = classifier
    meta = model_metadata("churn", [1, 2], signature, True, [0, 1])
    assert meta["name"] == "churn" and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "ctloop"
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert types["age"] == "INT64" and types["monthly_charges"] == "FP64"
    assert types["plan"] == "BYTES"
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
    ]
    _, reg = array_regressor
    assert model_metadata("r", ["1"], reg, False, None)["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [-1]}
    ]


def test_server_metadata() -> None:
    from ctloop import __version__

    assert server_metadata() == {"name": "ctloop", "version": __version__, "extensions": []}


# --- fuzz: nothing but RequestInvalid, whatever the body -----------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
json_any = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=15,
)
names = st.sampled_from(["age", "plan", "contract", "x", "x0", "monthly_charges"]) | st.text(
    max_size=3
)
tensor = st.fixed_dictionaries(
    {
        "name": names,
        "datatype": st.sampled_from([*DATATYPES, "FP128"]),
        "shape": st.lists(st.integers(-1, 4), max_size=3),
        "data": st.lists(scalars | st.lists(scalars, max_size=3), max_size=8),
    },
    optional={"parameters": st.dictionaries(st.sampled_from(["content_type"]), json_any)},
)
_values = {
    "BOOL": st.booleans(),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "INT8": st.integers(-200, 200),
    "FP64": st.floats() | st.integers(),
    "BYTES": st.text(max_size=4) | st.sampled_from(["basic", "north", "2026-01-01T00:00:00Z"]),
}


@st.composite
def consistent_tensor(draw: st.DrawFn) -> dict[str, Any]:
    """A tensor whose shape, datatype and data agree, so parsing reaches the signature."""
    datatype = draw(st.sampled_from(list(_values)))
    rows, width = draw(st.integers(0, 4)), draw(st.sampled_from([None, 1, 3, 12]))
    shape = [rows] if width is None else [rows, width]
    data = draw(
        st.lists(
            _values[datatype] | st.none(),
            min_size=rows * (width or 1),
            max_size=rows * (width or 1),
        )
    )
    return {"name": draw(names), "datatype": datatype, "shape": shape, "data": data}


oip_bodies = json_any | st.fixed_dictionaries(
    {"inputs": st.lists(tensor | consistent_tensor(), max_size=4)},
    optional={
        "id": json_any,
        "parameters": st.fixed_dictionaries(
            {"content_type": st.sampled_from(["pd", "np", "str", 3])}
        ),
        "outputs": st.lists(st.fixed_dictionaries({"name": names}), max_size=2) | json_any,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=oip_bodies)
def test_parse_oip_raises_only_request_invalid(
    classifier: tuple[Any, Signature], array_regressor: tuple[Any, Signature], body: Any
) -> None:
    for signature in (classifier[1], array_regressor[1], None):
        try:
            parsed = parse_oip(body, signature, max_rows=5)
        except RequestInvalid as exc:
            assert exc.problems
        else:
            assert 0 < parsed.n_rows <= 5
