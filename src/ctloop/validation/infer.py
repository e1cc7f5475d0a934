"""Profile, then validate: a suite inferred from reference data.

From a reference table (a DataFrame or a dataset version) :func:`infer_suite` writes down
what the data looks like, loosened by margins so that the reference passes and data like
it passes too:

- ``dtype``: the exact pandas dtype of every column;
- ``not_null`` where the reference has no nulls, else ``max_null_fraction`` up to the
  observed share plus ``null_margin``;
- ``range`` of numeric columns: the reference's ``quantiles`` widened by ``margin`` times
  their spread (a column that is never negative stays so; an integer column of two
  values, such as a 0/1 label, keeps exactly those bounds);
- ``allowed_values`` of text and categorical columns with at most ``max_categories``
  distinct values that repeat;
- ``unique`` for integer and text columns whose values are all distinct (ids);
- ``row_count`` within ``rows_margin`` of the reference's count (severity ``warn``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.validation.suite import Check, ColumnSpec, Suite, with_severity

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion

__all__ = ["MAX_CATEGORIES", "infer_suite"]

MAX_CATEGORIES = 100


def infer_suite(
    reference: pd.DataFrame | DatasetVersion | str,
    *,
    client: Client | None = None,
    name: str | None = None,
    margin: float = 1.0,
    null_margin: float = 0.05,
    rows_margin: float = 0.5,
    quantiles: tuple[float, float] = (0.0, 1.0),
    max_categories: int = MAX_CATEGORIES,
    warn: Iterable[str] = ("row_count",),
) -> Suite:
    """A suite that ``reference`` passes, describing its columns (see the module docstring).

    Args:
        reference: a DataFrame, a :class:`~ctloop.DatasetVersion`, or a dataset reference
            (``NAME@VERSION``) whose data is loaded.
        client: the store a dataset version is read from (default: the default client).
        name: the suite's name (default: the dataset's name, if any).
        margin: how far numeric ranges reach past the reference's quantiles, as a share
            of their spread (1.0: one spread on each side). Ranges catch gross errors
            (units, signs, sentinel values); a shifting distribution is drift, for
            monitoring. A long-tailed column's next sample often exceeds its reference's
            maximum, so small margins fail clean data.
        null_margin: how much more null share than the reference's a column may have.
        rows_margin: the row count may differ from the reference's by this share.
        quantiles: the reference quantiles a range starts from; (0, 1) is min and max.
            Narrower quantiles also set the range's ``mostly`` to their coverage.
        max_categories: text columns with at most this many distinct values get
            ``allowed_values``.
        warn: kinds of check to give severity ``warn`` (report, don't fail); by default
            ``row_count``, which changes legitimately (more data, smaller windows). Pass
            ``()`` to make every check an error.

    Raises:
        InvalidInput: for a bad argument or a reference that is not a table.
    """
    import pandas as pd

    _check_args(margin, null_margin, rows_margin, quantiles, max_categories)
    inferred_from = None
    if isinstance(reference, pd.DataFrame):
        frame = reference
    else:
        from ctloop.validation.frames import load_frame

        if client is None:
            from ctloop.client.default import default_client

            client = default_client()
        version = client.datasets.resolve(reference)
        frame = load_frame(client, version)
        inferred_from = version.ref
        name = name if name is not None else version.name
    columns = tuple(
        _column(str(label), frame[label], margin, null_margin, quantiles, max_categories)
        for label in frame.columns
    )
    rows = len(frame)
    row_check = Check(
        "row_count",
        params={
            "min": max(0, math.floor(rows * (1 - rows_margin))),
            "max": math.ceil(rows * (1 + rows_margin)),
        },
    )
    suite = Suite(
        columns=columns, table_checks=(row_check,), name=name, inferred_from=inferred_from
    )
    kinds = tuple(warn)
    return with_severity(suite, "warn", kinds) if kinds else suite


def _check_args(
    margin: float,
    null_margin: float,
    rows_margin: float,
    quantiles: tuple[float, float],
    max_categories: int,
) -> None:
    for label, value in (("margin", margin), ("null_margin", null_margin)):
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise InvalidInput(f"{label} must be a number >= 0, got {value!r}")
    if not isinstance(rows_margin, int | float) or not 0 <= rows_margin <= 1:
        raise InvalidInput(f"rows_margin must be a share from 0 to 1, got {rows_margin!r}")
    if (
        not isinstance(quantiles, tuple | list)
        or len(quantiles) != 2
        or not all(isinstance(q, int | float) for q in quantiles)
        or not 0 <= quantiles[0] < quantiles[1] <= 1
    ):
        raise InvalidInput(
            f"quantiles must be (low, high) with 0 <= low < high <= 1, got {quantiles!r}"
        )
    if type(max_categories) is not int or max_categories < 1:
        raise InvalidInput(f"max_categories must be a whole number >= 1, got {max_categories!r}")


def _column(
    name: str,
    s: pd.Series,
    margin: float,
    null_margin: float,
    quantiles: tuple[float, float],
    max_categories: int,
) -> ColumnSpec:
    from pandas.api import types

    checks = [Check("dtype", name, {"value": str(s.dtype)})]
    nulls = int(s.isna().sum())
    if nulls == 0:
        checks.append(Check("not_null", name))
    elif len(s):
        limit = math.ceil((nulls / len(s) + null_margin) * 10_000) / 10_000
        if limit < 1:
            checks.append(Check("max_null_fraction", name, {"value": limit}))
    values = s.dropna()
    dtype = s.dtype
    is_bool = types.is_bool_dtype(dtype)
    is_numeric = types.is_numeric_dtype(dtype) and not is_bool
    is_text = (
        types.is_string_dtype(dtype)
        or isinstance(dtype, _categorical())
        or types.is_object_dtype(dtype)
    )
    distinct = int(values.nunique()) if len(values) else 0
    all_distinct = len(values) >= 2 and distinct == len(values)
    if all_distinct and (types.is_integer_dtype(dtype) and not is_bool or _plain_text(s)):
        checks.append(Check("unique", name))
    if is_numeric and len(values):
        bounds = _range(values, margin, quantiles, types.is_integer_dtype(dtype))
        if bounds is not None:
            checks.append(Check("range", name, bounds))
    elif is_text and not all_distinct and 0 < distinct <= max_categories:
        allowed = sorted((_py(v) for v in values.unique()), key=_order)
        checks.append(Check("allowed_values", name, {"values": allowed}))
    return ColumnSpec(name=name, checks=tuple(checks))


def _categorical() -> type:
    import pandas as pd

    return pd.CategoricalDtype


def _plain_text(s: pd.Series) -> bool:
    """A text column that could hold ids (not a categorical, whose values are levels)."""
    from pandas.api import types

    return bool(types.is_string_dtype(s.dtype)) and not isinstance(s.dtype, _categorical())


def _range(
    values: pd.Series, margin: float, quantiles: tuple[float, float], integer: bool
) -> dict[str, Any] | None:
    """``{min, max[, mostly]}`` from the reference quantiles widened by ``margin``."""
    q_low, q_high = quantiles
    low = float(values.min() if q_low == 0 else values.quantile(q_low))
    high = float(values.max() if q_high == 1 else values.quantile(q_high))
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    spread = high - low
    pad = margin * spread if spread > 0 else margin * max(abs(low), 1.0)
    wide_low, wide_high = low - pad, high + pad
    if low >= 0:
        wide_low = max(0.0, wide_low)  # counts, amounts, durations stay non-negative
    out: dict[str, Any]
    if integer:
        # whole steps of padding; a column of two values (a 0/1 flag) keeps its two
        step = 0 if values.nunique() <= 2 else math.floor(pad)
        out = {"min": math.floor(low) - step, "max": math.ceil(high) + step}
        if low >= 0:
            out["min"] = max(0, out["min"])
    else:
        out = {"min": _round(wide_low, wide_high - wide_low, math.floor)}
        out["max"] = _round(wide_high, wide_high - wide_low, math.ceil)
    if tuple(quantiles) != (0, 1):
        out["mostly"] = round(q_high - q_low, 6)
    return out


def _round(value: float, width: float, direction: Any) -> float:
    """``value`` rounded outward to about four significant digits of ``width``."""
    if width <= 0 or not math.isfinite(width):
        return value
    exponent = math.floor(math.log10(width)) - 3
    step = 10.0**exponent
    rounded = direction(value / step) * step
    return round(rounded, max(0, -exponent))


def _py(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if item is not None and hasattr(value, "dtype") else value


def _order(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))
