"""Signatures: inference from an input example, and validation that lists every problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.errors import InvalidInput
from ctloop.models.signature import (
    ColumnSpec,
    OutputSpec,
    Signature,
    SignatureMismatch,
    infer_signature,
)


def example() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 52],
            "charges": [10.5, np.nan, 3.25],
            "plan": pd.Categorical(["basic", "premium", "basic"], categories=["basic", "premium"]),
            "name": ["a", "b", "c"],
            "active": [True, False, True],
            "seen": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"], utc=True),
        }
    )


def test_infer_signature_reads_names_types_nullability_and_categories() -> None:
    sig = infer_signature(example())
    assert [c.to_dict() for c in sig.inputs] == [
        {"name": "age", "dtype": "integer", "nullable": False},
        {"name": "charges", "dtype": "float", "nullable": True},
        {
            "name": "plan",
            "dtype": "category",
            "nullable": False,
            "categories": ["basic", "premium"],
        },
        {"name": "name", "dtype": "string", "nullable": False},
        {"name": "active", "dtype": "boolean", "nullable": False},
        {"name": "seen", "dtype": "datetime", "nullable": False, "timezone": "UTC"},
    ]
    assert sig.output is None


def test_infer_signature_of_churn_frame(churn_xy: tuple[Any, Any]) -> None:
    x, _ = churn_xy
    sig = infer_signature(x)
    by_name = {c.name: c for c in sig.inputs}
    assert by_name["total_charges"].nullable and by_name["data_usage_gb"].nullable
    assert not by_name["age"].nullable
    assert by_name["contract"].dtype == "category"
    assert by_name["contract"].categories == ["month-to-month", "one-year", "two-year"]


def test_output_kind_comes_from_the_model(fitted: dict[str, Any]) -> None:
    class Plain:
        def predict(self, frame: Any) -> Any:
            return frame

    assert infer_signature(example(), fitted["logreg"]).output == OutputSpec(
        "probabilities", [0, 1]
    )
    assert infer_signature(example(), fitted["ridge"]).output == OutputSpec("regression")
    assert infer_signature(example(), Plain()).output == OutputSpec("regression")

    from sklearn.svm import LinearSVC

    labels = LinearSVC().fit(np.array([[0.0], [1.0], [2.0]]), np.array(["no", "yes", "yes"]))
    assert infer_signature(example(), labels).output == OutputSpec("class_label", ["no", "yes"])


def test_signature_round_trips_through_json() -> None:
    sig = infer_signature(example(), None)
    assert Signature.from_dict(sig.to_dict()) == sig


def test_validate_reorders_drops_extras_and_casts_safely() -> None:
    sig = infer_signature(example())
    records = [
        {
            "extra_id": "x1",
            "seen": "2026-02-01T10:00:00Z",
            "active": False,
            "name": "z",
            "plan": "premium",
            "charges": 7,  # an int for a float column
            "age": 40.0,  # an integral float for an integer column
        }
    ]
    out = sig.validate(records)
    assert list(out.columns) == sig.input_names
    assert out["age"].dtype == "int64" and out["age"].iloc[0] == 40
    assert out["charges"].dtype == "float64" and out["charges"].iloc[0] == 7.0
    assert isinstance(out["plan"].dtype, pd.CategoricalDtype)
    assert list(out["plan"].cat.categories) == ["basic", "premium"]
    assert out["seen"].iloc[0] == pd.Timestamp("2026-02-01T10:00:00", tz="UTC")


def test_validate_accepts_a_dict_of_columns_and_a_single_record() -> None:
    sig = Signature([ColumnSpec("a", "float", False), ColumnSpec("b", "string", True)])
    assert sig.validate({"a": [1.0, 2.0], "b": ["x", None]}).shape == (2, 2)
    assert sig.validate({"a": 1.5, "b": "y"}).shape == (1, 2)


def test_validate_lists_every_problem_at_once() -> None:
    sig = infer_signature(example())
    bad = pd.DataFrame(
        {
            "age": ["old", "young"],  # strings for an integer column
            "charges": [1.0, 2.0],
            "plan": [1, 2],  # numbers for a category of strings
            "active": [None, True],  # null in a non-nullable column
            "seen": pd.to_datetime(["2026-01-01", "2026-01-02"]),  # naive for a UTC column
            "nmae": ["a", "b"],  # misspelt
        }
    )
    with pytest.raises(SignatureMismatch) as info:
        sig.validate(bad)
    err = info.value
    assert isinstance(err, InvalidInput)
    assert len(err.problems) == 5, err.problems
    text = str(err)
    assert "missing column 'name' (string)" in text
    assert "column 'age': expected integer, got string values ('old', 'young')" in text
    assert "column 'plan': expected a category" in text
    assert "column 'active': 1 missing value(s) (rows 0)" in text
    assert "column 'seen': timestamps have no time zone" in text
    assert "ignored: 'nmae'" in text  # the misspelt column is named as a hint
    assert err.extra_columns == ["nmae"]


def test_validate_refuses_fractional_floats_for_integers() -> None:
    sig = Signature([ColumnSpec("n", "integer", False)])
    with pytest.raises(SignatureMismatch, match=r"non-integral values \(2.5\)"):
        sig.validate({"n": [1.0, 2.5]})


def test_booleans_are_not_numbers() -> None:
    sig = Signature([ColumnSpec("n", "float", False)])
    with pytest.raises(SignatureMismatch, match="expected float, got boolean"):
        sig.validate({"n": [True, False]})


def test_nullable_integers_become_floats_and_nulls_pass() -> None:
    sig = Signature([ColumnSpec("n", "integer", True)])
    out = sig.validate([{"n": 1}, {"n": None}])
    assert out["n"].dtype == "float64" and np.isnan(out["n"].iloc[1])


def test_unknown_categories_become_missing() -> None:
    sig = Signature([ColumnSpec("plan", "category", False, categories=["a", "b"])])
    out = sig.validate({"plan": ["a", "zzz"]})
    assert out["plan"].iloc[0] == "a" and pd.isna(out["plan"].iloc[1])


def test_unparseable_timestamps_are_a_problem() -> None:
    sig = Signature([ColumnSpec("t", "datetime", False, timezone="UTC")])
    with pytest.raises(SignatureMismatch, match="ISO 8601"):
        sig.validate({"t": ["yesterday"]})


def test_array_signature_names_columns_by_position() -> None:
    x = np.arange(6, dtype=float).reshape(3, 2)
    sig = infer_signature(x)
    assert sig.array_input and sig.input_names == ["x0", "x1"]
    assert sig.validate(x).shape == (3, 2)
    with pytest.raises(SignatureMismatch, match="expected 2 columns"):
        sig.validate(np.zeros((2, 3)))


@pytest.mark.parametrize(
    "data",
    [42, "text", [1, 2, 3], [], {}],
    ids=["int", "str", "list-of-ints", "empty-list", "empty-dict"],
)
def test_validate_refuses_shapes_it_cannot_read(data: Any) -> None:
    sig = Signature([ColumnSpec("a", "float", False)])
    with pytest.raises(InvalidInput):
        sig.validate(data)


def test_from_dict_refuses_unknown_dtypes() -> None:
    with pytest.raises(InvalidInput, match="invalid dtype 'tensor'"):
        Signature.from_dict({"inputs": [{"name": "a", "dtype": "tensor", "nullable": False}]})


def test_signature_errors_survive_pickling() -> None:
    import pickle

    err = SignatureMismatch(["missing column 'a'"], ["b"])
    again = pickle.loads(pickle.dumps(err))
    assert again.problems == err.problems and str(again) == str(err)
