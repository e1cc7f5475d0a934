"""Run a suite on a DataFrame: pandera checks the rows, ctloop writes the report.

The row-wise checks (``not_null``, ``unique``, ``range``, ``allowed_values``) become one
pandera ``DataFrameSchema`` validated lazily, so a single pass collects every failing row
of every check; its failure cases are counted and sampled per check. Checks of a whole
column or the table (``dtype``, ``max_null_fraction``, ``row_count``, a missing column)
are measured here. pandas and pandera are imported on the first call.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.validation.report import CheckResult, ValidationReport
from ctloop.validation.suite import Check, ColumnSpec, Suite, load

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SAMPLE_SIZE", "check", "validate"]

SAMPLE_SIZE = 5  # failing rows kept per check
_MAX_UNEXPECTED = 10  # distinct unexpected values listed per allowed_values check
_ROW_CHECKS = ("not_null", "unique", "range", "allowed_values")
_PANDERA_NAMES = {"not_nullable": "not_null", "field_uniqueness": "unique"}


@dataclass(frozen=True)
class _Found:
    """What pandera found failing for one check: a count and samples, not every row."""

    count: int = 0
    rows: list[tuple[Any, Any]] = field(default_factory=list)  # (index label, value)
    values: list[Any] = field(default_factory=list)  # the first distinct failing values
    distinct: int = 0  # how many distinct failing values


_NOTHING = _Found()
Failures = dict[tuple[str, str], _Found]


def validate(
    data: pd.DataFrame,
    suite: Suite,
    *,
    dataset: str | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> ValidationReport:
    """Run every check of ``suite`` on ``data``.

    Failing checks never raise: the report says what failed (call
    :meth:`~ValidationReport.raise_for_errors` to turn error-severity failures into an
    exception).

    Args:
        data: the table to check.
        suite: the checks (see :class:`~ctloop.validation.Suite`).
        dataset: the ``NAME@VERSION`` the data came from, for the report.
        sample_size: how many failing rows each check keeps as examples.

    Raises:
        InvalidInput: ``data`` is not a DataFrame, ``suite`` not a Suite, or the frame
            has two columns of one name.
    """
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(f"validate needs a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(suite, Suite):
        raise InvalidInput(
            f"validate needs a ctloop.validation.Suite, got {type(suite).__name__}; "
            "read one with ctloop.validation.load(path) or infer_suite(data)"
        )
    labels: dict[str, Any] = {}
    for label in data.columns:
        if str(label) in labels:
            raise InvalidInput(
                f"the frame has two columns named {str(label)!r}; rename one before validating"
            )
        labels[str(label)] = label
    failures, broken = _row_failures(data, suite, labels, sample_size)
    results = [_row_count(c, len(data)) for c in suite.table_checks]
    for col in suite.columns:
        label = labels.get(col.name, _ABSENT)
        if label is _ABSENT:
            results.extend(_absent(col))
            continue
        series = data[label]
        for c in col.checks:
            found = failures.get((col.name, c.kind), _NOTHING)
            problem = broken.get((col.name, c.kind))
            results.append(_COLUMN[c.kind](c, series, found, problem, sample_size))
    return ValidationReport(
        results=tuple(results),
        row_count=len(data),
        suite=suite.name,
        dataset=dataset,
        column_count=len(data.columns),
    )


def check(data: pd.DataFrame, suite: Suite | str | os.PathLike[str]) -> ValidationReport:
    """The report of ``suite`` (a Suite or the path of its YAML) on ``data``.

    The entry point for pipeline steps: a failed check never raises, the report says so;
    ``report.raise_for_errors()`` raises :class:`~ctloop.validation.ValidationFailed`.

    Raises:
        NotFound: ``suite`` is a path that does not exist.
        InvalidInput: the suite file is not a valid suite, or ``data`` is not a DataFrame.
    """
    if isinstance(suite, str | os.PathLike):
        suite = load(suite)
    return validate(data, suite)


class _Absent:
    pass


_ABSENT = _Absent()


# --- pandera: every row-wise check in one lazy pass -------------------------------------


def _is_numeric(series: pd.Series) -> bool:
    from pandas.api import types

    return bool(types.is_numeric_dtype(series.dtype)) and not types.is_bool_dtype(series.dtype)


def _row_failures(
    data: pd.DataFrame, suite: Suite, labels: dict[str, Any], sample_size: int
) -> tuple[Failures, dict[tuple[str, str], str]]:
    """What failed per (column, kind), and the checks that could not run."""
    import pandera.pandas as pa

    columns: dict[Any, Any] = {}
    for col in suite.columns:
        label = labels.get(col.name, _ABSENT)
        if label is _ABSENT or not any(c.kind in _ROW_CHECKS for c in col.checks):
            continue
        checks = []
        for c in col.checks:
            if c.kind == "range" and _is_numeric(data[label]):
                checks.append(_range_check(pa, c))
            elif c.kind == "allowed_values":
                checks.append(pa.Check.isin(c.params["values"], error="ctloop:allowed_values"))
        columns[label] = pa.Column(
            None,
            nullable=col.check("not_null") is None,
            unique=col.check("unique") is not None,
            checks=checks,
            required=False,
        )
    failures: Failures = {}
    broken: dict[tuple[str, str], str] = {}
    if not columns:
        return failures, broken
    schema = pa.DataFrameSchema(columns, strict=False, coerce=False)
    try:
        with warnings.catch_warnings():
            # pandera's and pandas' own notices about their internals must not abort a
            # validation (pytest and some pipelines turn warnings into errors).
            warnings.simplefilter("ignore")
            schema.validate(data, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        ran = cases["index"].notna()
        for _, case in cases[~ran].iterrows():  # the check itself raised, e.g. a TypeError
            broken[(str(case["column"]), _kind_of(str(case["check"])))] = str(case["failure_case"])
        groups = cases[ran].groupby(["column", "check"], sort=False, dropna=False)
        for (column, name), group in groups:
            failures[(str(column), _kind_of(str(name)))] = _summary(group, sample_size)
    return failures, broken


def _summary(group: pd.DataFrame, sample_size: int) -> _Found:
    """Count, sample rows and distinct values of one check's failure cases."""
    values = group["failure_case"]
    try:
        distinct = values.drop_duplicates()
    except TypeError:  # unhashable values (lists in an object column)
        distinct = values.astype(str).drop_duplicates()
    head = group.head(sample_size)
    return _Found(
        count=len(group),
        rows=list(zip(head["index"], head["failure_case"], strict=True)),
        values=distinct.head(_MAX_UNEXPECTED).tolist(),
        distinct=len(distinct),
    )


def _kind_of(pandera_check: str) -> str:
    if pandera_check.startswith("ctloop:"):
        return pandera_check.removeprefix("ctloop:")
    return _PANDERA_NAMES.get(pandera_check, pandera_check)


def _range_check(pa: Any, c: Check) -> Any:
    low, high = c.params.get("min"), c.params.get("max")
    if low is not None and high is not None:
        return pa.Check.in_range(low, high, error="ctloop:range")
    if low is not None:
        return pa.Check.ge(low, error="ctloop:range")
    return pa.Check.le(high, error="ctloop:range")


# --- one result per check -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as JSON-able Python (numpy scalars unwrapped, missing as None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    item = getattr(value, "item", None)
    if item is not None and hasattr(value, "dtype"):
        return _plain(item())
    if isinstance(value, datetime | date):
        text = value.isoformat()
        return None if text == "NaT" else text
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return str(value)


def _sample(rows: list[tuple[Any, Any]]) -> tuple[dict[str, Any], ...]:
    return tuple({"row": _plain(i), "value": _plain(v)} for i, v in rows)


def _result(
    c: Check,
    passed: bool,
    expected: Any,
    observed: Any,
    message: str,
    found: _Found | None = None,
) -> CheckResult:
    """A check's result; ``found`` is what failed, for row-wise checks."""
    return CheckResult(
        check=c.id,
        kind=c.kind,
        column=c.column,
        severity=c.severity,
        status="passed" if passed else "failed",
        expected=expected,
        observed=observed,
        message=message,
        failure_count=None if found is None else found.count,
        failing_rows=() if found is None or passed else _sample(found.rows),
    )


def _row_count(c: Check, rows: int) -> CheckResult:
    low, high = c.params.get("min"), c.params.get("max")
    ok = (low is None or rows >= low) and (high is None or rows <= high)
    expected = {k: c.params[k] for k in ("min", "max") if k in c.params}
    message = f"{rows:,} rows, expected {_bounds(low, high)}"
    return _result(c, ok, expected, {"rows": rows}, message)


def _absent(col: ColumnSpec) -> list[CheckResult]:
    out: list[CheckResult] = []
    if col.required:
        out.append(
            CheckResult(
                check=f"{col.name}.present",
                kind="present",
                column=col.name,
                severity="error",
                status="failed",
                expected="present",
                observed="missing",
                message=f"column {col.name!r} is missing (mark it 'required: false' if it may be)",
            )
        )
    why = "required" if col.required else "optional"
    for c in col.checks:
        out.append(
            CheckResult(
                check=c.id,
                kind=c.kind,
                column=c.column,
                severity=c.severity,
                status="skipped",
                expected=_expected(c),
                observed=None,
                message=f"not run: the {why} column {col.name!r} is absent",
            )
        )
    return out


def _expected(c: Check) -> Any:
    if c.kind in ("dtype", "max_null_fraction"):
        return c.params["value"]
    return dict(c.params)


Evaluate = Callable[[Check, "pd.Series", _Found, str | None, int], CheckResult]


def _dtype(c: Check, s: pd.Series, _f: _Found, _p: str | None, _n: int) -> CheckResult:
    observed = str(s.dtype)
    expected = c.params["value"]
    ok = observed == expected
    message = f"dtype {observed}" + ("" if ok else f", expected {expected}")
    return _result(c, ok, expected, observed, message)


def _not_null(c: Check, s: pd.Series, found: _Found, _p: str | None, _n: int) -> CheckResult:
    count = found.count
    message = "no nulls" if not count else f"{_share(count, len(s), 'rows')} null, expected none"
    return _result(c, count == 0, {"null_count": 0}, {"null_count": count}, message, found)


def _max_null_fraction(c: Check, s: pd.Series, _f: _Found, _p: str | None, n: int) -> CheckResult:
    nulls = s.isna()
    count = int(nulls.sum())
    fraction = count / len(s) if len(s) else 0.0
    limit = c.params["value"]
    expected = {"null_fraction_max": limit}
    observed = {"null_fraction": round(fraction, 6), "null_count": count}
    message = f"{_share(count, len(s), 'rows')} null, expected at most {limit:.2%}"
    found = _Found(count=count, rows=[(i, None) for i in s.index[nulls.to_numpy()][:n]])
    return _result(c, fraction <= limit, expected, observed, message, found)


def _unique(c: Check, s: pd.Series, found: _Found, _p: str | None, _n: int) -> CheckResult:
    observed = {"duplicated_rows": found.count, "duplicated_values": found.distinct}
    message = (
        "all values distinct"
        if not found.count
        else f"{found.distinct:,} value(s) repeat over {found.count:,} rows, expected all distinct"
    )
    return _result(c, not found.count, {"duplicated_rows": 0}, observed, message, found)


def _range(c: Check, s: pd.Series, found: _Found, problem: str | None, _n: int) -> CheckResult:
    low, high = c.params.get("min"), c.params.get("max")
    expected = _expected(c)
    if not _is_numeric(s):
        message = f"column is {s.dtype}, not numeric, so it has no range"
        return _result(c, False, expected, {"dtype": str(s.dtype)}, message)
    if problem is not None:
        return _result(c, False, expected, {"error": problem}, f"could not run: {problem}")
    valid = s.dropna()
    observed = {
        "min": _plain(valid.min()) if len(valid) else None,
        "max": _plain(valid.max()) if len(valid) else None,
        "outside": found.count,
    }
    ok, allowed = _mostly(c, found.count, len(valid))
    if found.count:
        message = f"{_share(found.count, len(valid), 'values')} outside {_bounds(low, high)}"
        message += f"{allowed}; observed {_bounds(observed['min'], observed['max'])}"
    else:
        message = f"all values within {_bounds(low, high)}"
    return _result(c, ok, expected, observed, message, found)


def _allowed_values(
    c: Check, s: pd.Series, found: _Found, problem: str | None, _n: int
) -> CheckResult:
    expected = _expected(c)
    if problem is not None:
        return _result(c, False, expected, {"error": problem}, f"could not run: {problem}")
    shown = [_plain(v) for v in found.values]
    observed = {"unexpected": shown, "unexpected_count": found.count}
    present = int(s.notna().sum())
    ok, allowed = _mostly(c, found.count, present)
    count = len(c.params["values"])
    if found.count:
        more = "" if found.distinct <= len(shown) else f" and {found.distinct - len(shown)} more"
        message = (
            f"{_share(found.count, present, 'values')} not among the {count} "
            f"allowed{allowed}: {', '.join(map(repr, shown))}{more}"
        )
    else:
        message = f"all values among the {count} allowed"
    return _result(c, ok, expected, observed, message, found)


_COLUMN: dict[str, Evaluate] = {
    "dtype": _dtype,
    "not_null": _not_null,
    "max_null_fraction": _max_null_fraction,
    "unique": _unique,
    "range": _range,
    "allowed_values": _allowed_values,
}


# --- small helpers ------------------------------------------------------------------------


def _mostly(c: Check, failing: int, total: int) -> tuple[bool, str]:
    """Whether ``failing`` of ``total`` values pass the check's ``mostly``, and a note."""
    share = c.params.get("mostly")
    if share is None:
        return failing == 0, ""
    tolerated = math.floor((1 - share) * total + 1e-9)
    return failing <= tolerated, f" (tolerated: {1 - share:.2%})"


def _share(count: int, total: int, what: str) -> str:
    """``3 of 1,000 rows (0.30%)``."""
    if not total:
        return f"{count:,} {what}"
    return f"{count:,} of {total:,} {what} ({count / total:.2%})"


def _bounds(low: Any, high: Any) -> str:
    def num(value: Any) -> str:
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    if low is not None and high is not None:
        return f"[{num(low)}, {num(high)}]"
    if low is not None:
        return f">= {num(low)}"
    if high is not None:
        return f"<= {num(high)}"
    return "any"
