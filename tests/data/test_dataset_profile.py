"""Profiles of CSV and Parquet data, checked number by number against pandas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.data.profile import PERCENTILES, detect_format, profile_data


def _frame(rows: int = 500, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, rows)
    income[rng.choice(rows, 25, replace=False)] = np.nan
    # distinct counts per city, so the top-10 order has no ties
    cities = [f"city{i:02d}" for i in range(14) for _ in range(i + 1)]
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": income,
            "city": [cities[i % len(cities)] for i in range(rows)],
            "churned": rng.random(rows) < 0.3,
            "signup": pd.date_range("2021-01-01", periods=rows, freq="h"),
        }
    )


def _check_against_pandas(profile: dict[str, Any], df: pd.DataFrame) -> None:
    assert profile["row_count"] == len(df)
    cols = profile["columns"]
    assert list(cols) == list(df.columns)
    for name in ("age", "income"):
        s = df[name].dropna()
        p = cols[name]
        assert p["kind"] == "numeric"
        assert p["null_count"] + p.get("nan_count", 0) == df[name].isna().sum()
        assert p["min"] == pytest.approx(s.min())
        assert p["max"] == pytest.approx(s.max())
        assert p["mean"] == pytest.approx(s.mean(), rel=1e-12)
        assert p["std"] == pytest.approx(s.std(), rel=1e-9)  # sample std, ddof=1
        for q in PERCENTILES:
            assert p["quantiles"][f"p{round(q * 100):02d}"] == pytest.approx(s.quantile(q))
        assert p["distinct"] == s.nunique()
    city = cols["city"]
    assert city["kind"] == "string" and city["null_count"] == 0
    assert city["distinct"] == df["city"].nunique()
    expected_top = df["city"].value_counts().head(10)
    assert [(t["value"], t["count"]) for t in city["top"]] == list(expected_top.items())
    churned = cols["churned"]
    assert churned["kind"] == "boolean"
    assert churned["true"] == int(df["churned"].sum())
    assert churned["false"] == int((~df["churned"]).sum())
    signup = cols["signup"]
    assert signup["kind"] == "temporal"
    assert pd.Timestamp(signup["min"]) == df["signup"].min()
    assert pd.Timestamp(signup["max"]) == df["signup"].max()


def test_csv_profile_matches_pandas(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    assert detect_format(path) == "csv"
    result = profile_data(path, "csv")
    _check_against_pandas(result.profile, df)
    assert result.row_count == len(df)
    assert [c["name"] for c in result.schema or []] == list(df.columns)
    types = {c["name"]: c["type"] for c in result.schema or []}
    assert types["age"] == "int64" and types["income"] == "double"
    assert types["churned"] == "bool" and types["city"] == "string"


def test_parquet_profile_matches_pandas_including_categoricals(tmp_path: Path) -> None:
    df = _frame(seed=11)
    path = tmp_path / "train.parquet"
    df.assign(city=df["city"].astype("category")).to_parquet(path)
    assert detect_format(path) == "parquet"
    result = profile_data(path, "parquet")
    _check_against_pandas(result.profile, df)
    types = {c["name"]: c["type"] for c in result.schema or []}
    assert types["city"].startswith("dictionary<values=string")
    assert types["signup"].startswith("timestamp")


def test_folder_of_parquet_parts_is_profiled_as_one_table(tmp_path: Path) -> None:
    df = _frame(rows=900, seed=3)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3):
        df.iloc[i * 300 : (i + 1) * 300].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_bytes(b"")  # Spark's marker is not data
    assert detect_format(folder) == "parquet"
    result = profile_data(folder, "parquet")
    assert result.profile["files"] == 3
    _check_against_pandas(result.profile, df)


def test_folder_of_csv_parts_with_different_columns_records_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    pd.DataFrame({"a": [1, 2]}).to_csv(folder / "a.csv", index=False)
    pd.DataFrame({"b": [1, 2]}).to_csv(folder / "b.csv", index=False)
    result = profile_data(folder, "csv")
    assert result.row_count is None and result.schema is None
    assert "do not share one schema" in result.profile["error"]


def test_malformed_csv_records_an_error_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(b'a,b\n1,2\n3\n4,5,6\n"unterminated')
    result = profile_data(path, "csv")
    assert result.row_count is None
    assert result.profile["error"].startswith("ArrowInvalid")


def test_all_null_and_all_nan_columns_profile_without_non_finite_numbers(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pd.DataFrame({"x": [np.nan, np.nan], "y": [None, None]}).to_parquet(path)
    cols = profile_data(path, "parquet").profile["columns"]
    assert cols["x"]["null_count"] == 2 and cols["x"]["mean"] is None
    assert cols["y"]["null_count"] == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.csv", "csv"), ("a.CSV.gz", "csv"), ("a.parquet", "parquet"), ("a.json", None)],
)
def test_format_is_detected_from_the_file_name(tmp_path: Path, name: str, expected: Any) -> None:
    path = tmp_path / name
    path.write_bytes(b"x")
    assert detect_format(path) == expected


def test_folder_with_mixed_formats_is_not_tabular(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("a\n1\n")
    (tmp_path / "d" / "b.parquet").write_bytes(b"PAR1")
    assert detect_format(tmp_path / "d") is None
