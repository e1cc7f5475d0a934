"""Validating frames: the right checks fail, with expected vs observed and failing rows."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.datasets import churn
from ctloop.errors import InvalidInput, NotFound
from ctloop.validation import (
    CheckResult,
    Suite,
    ValidationFailed,
    ValidationReport,
    check,
    infer_suite,
    validate,
)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return churn.generate(2_000, seed=5)


@pytest.fixture(scope="module")
def suite(reference: pd.DataFrame) -> Suite:
    return infer_suite(reference, name="churn")


def test_a_clean_copy_passes_every_check(reference: pd.DataFrame, suite: Suite) -> None:
    report = validate(reference.copy(), suite)
    assert report.success and report.errors == [] and report.warnings == []
    assert {r.status for r in report.results} == {"passed"}
    assert len(report.results) == len(suite.checks)
    assert (report.row_count, report.column_count, report.suite) == (2_000, 15, "churn")
    ages = report.result("age.range")
    assert ages.observed == {
        "min": int(reference["age"].min()),
        "max": int(reference["age"].max()),
        "outside": 0,
    }
    assert ages.failure_count == 0 and ages.failing_rows == ()


def test_corrupted_data_fails_exactly_the_checks_it_breaks(
    reference: pd.DataFrame, suite: Suite
) -> None:
    bad = reference.copy()
    bad.loc[[3, 8], "age"] = [-7, 400]
    bad["region"] = bad["region"].astype(str)  # a dtype change ...
    bad.loc[11, "region"] = "atlantis"  # ... and an unknown level
    bad.loc[[20, 21], "contract"] = None
    bad.loc[30, churn.ID] = bad.loc[31, churn.ID]
    bad["monthly_charges"] = bad["monthly_charges"].astype("float32")
    bad.loc[bad.index[:600], "data_usage_gb"] = np.nan
    report = validate(bad, suite, dataset="churn@9")

    assert not report.success and report.dataset == "churn@9"
    assert sorted(r.check for r in report.errors) == [
        "age.range",
        "contract.not_null",
        "customer_id.unique",
        "data_usage_gb.max_null_fraction",
        "monthly_charges.dtype",
        "region.allowed_values",
        "region.dtype",
    ]
    ages = report.result("age.range")
    assert ages.expected == suite.column("age").check("range").params  # type: ignore[union-attr]
    assert ages.observed == {"min": -7, "max": 400, "outside": 2}
    assert ages.failure_count == 2
    assert ages.failing_rows == ({"row": 3, "value": -7}, {"row": 8, "value": 400})
    assert "2 of 2,000 values (0.10%) outside" in ages.message

    region = report.result("region.allowed_values")
    assert region.observed == {"unexpected": ["atlantis"], "unexpected_count": 1}
    assert region.failing_rows == ({"row": 11, "value": "atlantis"},)
    dtype = report.result("region.dtype")
    assert (dtype.expected, dtype.observed) == ("category", "str")
    assert report.result("monthly_charges.dtype").observed == "float32"

    nulls = report.result("contract.not_null")
    assert nulls.observed == {"null_count": 2} and nulls.failure_count == 2
    assert [r["row"] for r in nulls.failing_rows] == [20, 21]
    ids = report.result("customer_id.unique")
    assert ids.observed == {"duplicated_rows": 2, "duplicated_values": 1}
    assert [r["row"] for r in ids.failing_rows] == [30, 31]
    usage = report.result("data_usage_gb.max_null_fraction")
    assert usage.observed["null_fraction"] > 0.3 and usage.failure_count >= 600
    assert len(usage.failing_rows) == 5  # a sample, not every row
    assert report.result("age.not_null").passed and report.result("contract.dtype").passed


def test_warn_severity_failures_are_reported_but_do_not_fail() -> None:
    suite = Suite.from_yaml(
        "row_count: {max: 2, severity: warn}\n"
        "columns:\n"
        "  x:\n"
        "    range: {min: 0, max: 10, severity: warn}\n"
        "    not_null: true\n"
    )
    report = validate(pd.DataFrame({"x": [1, 50, 3]}), suite)
    assert report.success
    assert [r.check for r in report.warnings] == ["row_count", "x.range"]
    assert report.result("row_count").observed == {"rows": 3}
    assert report.counts == {"checks": 3, "passed": 1, "errors": 0, "warnings": 2, "skipped": 0}
    report.raise_for_errors()  # warnings never raise
    assert "warn x.range" in report.to_text()


def test_missing_and_optional_columns() -> None:
    suite = Suite.from_yaml(
        "columns:\n"
        "  a: {dtype: int64}\n"
        "  b: {not_null: true}\n"
        "  c: {required: false, unique: true}\n"
    )
    report = validate(pd.DataFrame({"a": [1, 2]}), suite)
    assert not report.success
    assert [(r.check, r.status) for r in report.results] == [
        ("a.dtype", "passed"),
        ("b.present", "failed"),
        ("b.not_null", "skipped"),
        ("c.unique", "skipped"),
    ]
    assert report.result("b.present").observed == "missing"
    assert "absent" in report.result("c.unique").message


def test_mostly_tolerates_a_share_of_failing_values() -> None:
    frame = pd.DataFrame({"x": list(range(100)), "s": ["a"] * 97 + ["b", "c", None]})
    loose = Suite.from_yaml(
        "columns:\n"
        "  x: {range: {max: 96, mostly: 0.97}}\n"
        "  s: {allowed_values: {values: [a], mostly: 0.97}}\n"
    )
    report = validate(frame, loose)
    assert report.result("x.range").passed  # 3 of 100 outside, 3% tolerated
    assert report.result("x.range").failure_count == 3
    allowed = report.result("s.allowed_values")
    assert allowed.passed and allowed.failure_count == 2  # 2 of the 99 non-null values
    tight = Suite.from_yaml("columns:\n  x: {range: {max: 96, mostly: 0.98}}\n")
    assert not validate(frame, tight).success


def test_odd_columns_fail_clearly_instead_of_crashing() -> None:
    suite = Suite.from_yaml("columns:\n  s: {range: {min: 0}}\n  n: {allowed_values: [1, 2]}\n")
    frame = pd.DataFrame({"s": ["a", "b"], "n": [1.0, np.inf]})
    report = validate(frame, suite)
    assert report.result("s.range").message == "column is str, not numeric, so it has no range"
    assert report.result("n.allowed_values").observed == {
        "unexpected": [float("inf")],
        "unexpected_count": 1,
    }
    empty = validate(frame.iloc[:0], Suite.from_yaml("columns:\n  n: {range: {max: 1}}\n"))
    assert empty.success and empty.result("n.range").observed["min"] is None


def test_the_report_renders_as_json_and_text(reference: pd.DataFrame, suite: Suite) -> None:
    bad = reference.head(100).copy()
    bad.loc[4, "age"] = -1
    report = validate(bad, suite)
    data = json.loads(report.to_json())
    assert data["success"] is False and data["row_count"] == 100
    assert data["counts"]["errors"] == 1 and data["counts"]["warnings"] == 1  # rows: warn
    (ages,) = [r for r in data["results"] if r["check"] == "age.range"]
    assert ages["failing_rows"] == [{"row": 4, "value": -1}] and ages["status"] == "failed"
    assert data == report.to_dict() | {"results": data["results"]}

    text = report.to_text()
    lines = text.splitlines()
    assert lines[0].startswith("validation against suite 'churn' FAILED")
    assert lines[1].startswith("  FAIL age.range: 1 of 100 values (1.00%) outside")
    assert lines[2] == "         e.g. row 4: -1"
    assert lines[3].startswith("  warn row_count: 100 rows, expected [1000, 3000]")
    assert str(report) == text


def test_raise_for_errors_lists_the_failed_error_checks(
    reference: pd.DataFrame, suite: Suite
) -> None:
    bad = reference.head(1_000).copy()
    bad.loc[0, "age"] = 1_000
    bad.loc[1, "plan"] = None
    report = check(bad, suite)  # never raises for failed checks
    with pytest.raises(ValidationFailed) as failed:
        report.raise_for_errors()
    err = failed.value
    assert isinstance(err, InvalidInput) and err.report is report
    lines = str(err).splitlines()
    assert "FAILED" in lines[0] and "failed error checks" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["  - age.range", "  - plan.not_null"]
    again = pickle.loads(pickle.dumps(err))  # crosses process boundaries in pipelines
    assert isinstance(again, ValidationFailed) and again.report == report
    assert str(again) == str(err)


def test_check_reads_a_suite_file(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("columns:\n  x: {not_null: true}\n")
    report = check(pd.DataFrame({"x": [1.0, None]}), path)
    assert not report.success and report.result("x.not_null").failure_count == 1
    assert check(pd.DataFrame({"x": [1.0]}), str(path)).success
    with pytest.raises(NotFound, match="no such suite file"):
        check(pd.DataFrame({"x": [1.0]}), tmp_path / "nope.yaml")


def test_bad_arguments_are_invalid_input() -> None:
    suite = Suite.from_yaml("columns: {}\n")
    with pytest.raises(InvalidInput, match="needs a pandas DataFrame, got list"):
        validate([1, 2], suite)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs a ctloop.validation.Suite, got str"):
        validate(pd.DataFrame(), "columns: {}")  # type: ignore[arg-type]
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInput, match="two columns named 'a'"):
        validate(twice, suite)


def test_results_are_plain_data() -> None:
    result = validate(
        pd.DataFrame({"t": pd.to_datetime(["2026-01-01", None])}),
        infer_suite(pd.DataFrame({"t": pd.to_datetime(["2026-01-01", "2026-01-02"])})),
    ).result("t.not_null")
    assert isinstance(result, CheckResult) and result.failing_rows == ({"row": 1, "value": None},)
    assert isinstance(pickle.loads(pickle.dumps(result)), CheckResult)
    assert ValidationReport(results=(), row_count=0).success
