"""Inferring a suite from reference data: dtypes, nulls, ranges, domains, ids, row counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.datasets import churn
from ctloop.errors import InvalidInput
from ctloop.validation import Suite, infer_suite, validate


def _kinds(suite: Suite, column: str) -> list[str]:
    return [c.kind for c in suite.column(column).checks]


def _params(suite: Suite, column: str, kind: str) -> dict[str, Any]:
    check = suite.column(column).check(kind)
    assert check is not None, f"{column} has no {kind} check"
    return check.params


def test_the_churn_table_gives_a_suite_it_passes_and_a_clean_sample_passes_too() -> None:
    train = churn.generate(3_000, seed=11)
    suite = infer_suite(train, name="churn")
    assert [c.name for c in suite.columns] == list(train.columns)
    for column in train.columns:
        assert _params(suite, column, "dtype") == {"value": str(train[column].dtype)}
    assert _kinds(suite, churn.ID) == ["dtype", "not_null", "unique"]
    for column in churn.CATEGORICAL:
        assert _params(suite, column, "allowed_values") == {
            "values": sorted(churn.CATEGORIES[column])
        }
    for column in churn.NUMERIC:
        bounds = _params(suite, column, "range")
        assert bounds["min"] <= train[column].min() and bounds["max"] >= train[column].max()
        assert bounds["min"] >= 0  # every churn number is non-negative, and stays so
    assert _params(suite, churn.TARGET, "range") == {"min": 0, "max": 1}  # a 0/1 label
    usage = _params(suite, "data_usage_gb", "max_null_fraction")["value"]
    observed = train["data_usage_gb"].isna().mean()
    assert observed > 0 and usage == pytest.approx(observed + 0.05, abs=1e-4)
    assert validate(train, suite).success
    # another sample of the same population passes: the margins leave room for long tails
    assert validate(churn.generate(1_000, seed=12, offset=5_000), suite).success


def test_dtypes_are_exact_and_nulls_get_slack() -> None:
    n = 200
    frame = pd.DataFrame(
        {
            "count": np.arange(n) % 7,
            "ratio": np.where(np.arange(n) % 10 == 0, np.nan, np.linspace(0.0, 1.0, n)),
            "flag": np.arange(n) % 2 == 0,
            "when": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "small": (np.arange(n) % 3).astype("int8"),
        }
    )
    suite = infer_suite(frame, null_margin=0.02)
    assert [_params(suite, c, "dtype")["value"] for c in frame.columns] == [
        "int64",
        "float64",
        "bool",
        str(frame["when"].dtype),
        "int8",
    ]
    assert suite.column("count").check("not_null") is not None
    assert _params(suite, "ratio", "max_null_fraction") == {"value": 0.12}  # 10% seen + 2%
    assert suite.column("ratio").check("not_null") is None
    assert _kinds(suite, "flag") == ["dtype", "not_null"]  # no range on booleans
    assert _kinds(suite, "when") == ["dtype", "not_null"]  # time moves on: no range
    assert validate(frame, suite).success


def test_numeric_ranges_come_from_quantiles_plus_a_margin() -> None:
    values = pd.Series(np.arange(1, 101, dtype=float))  # 1 .. 100
    frame = pd.DataFrame({"x": values, "neg": values - 50.0, "k": values.astype("int64")})
    suite = infer_suite(frame, margin=0.1)
    assert _params(suite, "x", "range") == {"min": 0.0, "max": 109.9}  # >= 0 stays >= 0
    assert _params(suite, "neg", "range") == {"min": -58.9, "max": 59.9}
    assert _params(suite, "k", "range") == {"min": 0, "max": 109}  # whole steps for ints

    narrow = infer_suite(frame, margin=0.0, quantiles=(0.05, 0.95))
    bounds = _params(narrow, "neg", "range")
    assert bounds["min"] == pytest.approx(values.quantile(0.05) - 50, abs=0.01)
    assert bounds["mostly"] == 0.9
    assert validate(frame, narrow).success  # the reference stays within its own mostly

    constant = infer_suite(pd.DataFrame({"c": [5.0] * 10}), margin=0.1)
    assert _params(constant, "c", "range") == {"min": 4.5, "max": 5.5}


def test_category_domains_only_up_to_the_limit_and_only_for_repeating_values() -> None:
    n = 1_000
    levels = [f"level-{i:03d}" for i in range(100)]
    frame = pd.DataFrame(
        {
            "hundred": [levels[i % 100] for i in range(n)],
            "many": [f"v{i % 101}" for i in range(n)],
            "code": pd.Categorical(["b", "a", "c", "a"] * (n // 4)),
            "mixed": pd.Series([1, "x", None, 1] * (n // 4), dtype=object),
        }
    )
    suite = infer_suite(frame)
    assert _params(suite, "hundred", "allowed_values") == {"values": levels}
    assert _kinds(suite, "many") == ["dtype", "not_null"]  # 101 distinct: too many to list
    assert _params(suite, "code", "allowed_values") == {"values": ["a", "b", "c"]}
    assert _params(suite, "mixed", "allowed_values") == {"values": [1, "x"]}
    assert _params(infer_suite(frame, max_categories=101), "many", "allowed_values")["values"][
        :2
    ] == ["v0", "v1"]


def test_ids_unique_in_the_reference_get_a_uniqueness_check() -> None:
    frame = pd.DataFrame(
        {
            "order_id": np.arange(1_000, 1_050),
            "sku": [f"sku-{i}" for i in range(50)],
            "price": np.linspace(1, 50, 50),  # distinct by chance: measures are not ids
            "qty": [1, 2] * 25,
            "cat": pd.Categorical([f"c{i}" for i in range(50)]),
        }
    )
    suite = infer_suite(frame)
    assert _kinds(suite, "order_id") == ["dtype", "not_null", "unique", "range"]
    assert _kinds(suite, "sku") == ["dtype", "not_null", "unique"]  # ids are no domain
    assert suite.column("price").check("unique") is None
    assert suite.column("qty").check("unique") is None
    assert suite.column("cat").check("unique") is None


def test_row_count_bounds_are_a_warning_unless_asked_otherwise() -> None:
    frame = pd.DataFrame({"x": range(200)})
    suite = infer_suite(frame, rows_margin=0.25)
    (rows,) = suite.table_checks
    assert (rows.kind, rows.severity) == ("row_count", "warn")
    assert rows.params == {"min": 150, "max": 250}
    strict = infer_suite(frame, warn=())
    assert strict.table_checks[0].severity == "error"
    ranges = infer_suite(frame, warn=["range", "row_count"])
    assert ranges.column("x").check("range").severity == "warn"  # type: ignore[union-attr]
    assert ranges.column("x").check("dtype").severity == "error"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": -1}, "margin must be a number >= 0"),
        ({"rows_margin": 2}, "rows_margin must be a share"),
        ({"quantiles": (0.9, 0.1)}, "quantiles must be (low, high)"),
        ({"max_categories": 0}, "max_categories must be a whole number"),
        ({"warn": ["rnage"]}, "unknown check 'rnage'"),
    ],
)
def test_bad_arguments_say_which(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        infer_suite(pd.DataFrame({"x": [1, 2]}), **kwargs)


def test_a_dataset_version_is_loaded_and_named(sqlite_client: Any, tmp_path: Path) -> None:
    data = tmp_path / "orders.parquet"
    pd.DataFrame({"id": [1, 2, 3], "status": ["new", "paid", "new"]}).to_parquet(data)
    version = sqlite_client.datasets.add(data, "orders", pointer=False)
    suite = infer_suite(version, client=sqlite_client)
    assert (suite.name, suite.inferred_from) == ("orders", "orders@1")
    assert _params(suite, "status", "allowed_values") == {"values": ["new", "paid"]}
    by_ref = infer_suite("orders@1", client=sqlite_client, name="mine")
    assert by_ref.name == "mine" and by_ref.columns == suite.columns
