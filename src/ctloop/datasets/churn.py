"""A synthetic customer-churn table with drift you can switch on at chosen rows.

Each row is one customer of a subscription business seen at ``event_time``: who they are
(``age``, ``region``), what they bought (``contract``, ``plan``, ``internet_service``,
``payment_method``, ``monthly_charges``), how long they have stayed (``tenure_months``,
``total_charges``) and how they behave (``support_calls``, ``data_usage_gb``,
``days_since_last_login``). The label ``churned`` is drawn from a logistic model of those
features, with interactions and an unobserved satisfaction score, so a good model reaches
a ROC AUC of about 0.85 and never 1.0. ``docs/churn-data.md`` describes every column, the
label mechanism and the drift semantics.

The table is endless and fixed by ``seed``: row ``i`` is the same customer whether it
comes from ``generate(n)`` or from a later window of ``stream()``, and a drift changes
nothing outside the rows it covers::

    from ctloop.datasets import churn

    train = churn.generate(10_000, seed=7)
    live = churn.stream(batch_size=1_440, offset=10_000, seed=7, drift=[
        churn.Drift(start=20_000, kind="covariate",
                    features={"monthly_charges": {"shift": 15.0}}),
        churn.Drift(start="2026-01-30", kind="concept", coef_changes={"support_calls": 3.0}),
    ])
    X, y = churn.split(train)

Importing this module is cheap: numpy and pandas load on the first call that needs them.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, SupportsIndex, cast

from ctloop.datasets._churn_model import (  # the schema and the simulation live there
    _DEFAULT_FREQ,
    _INTEGER,
    _KINDS,
    _MAX_ROWS,
    _NS_PER_DAY,
    _NUMERIC_KEYS,
    CATEGORICAL,
    CATEGORIES,
    FEATURES,
    ID,
    LABEL_TERMS,
    NUMERIC,
    TARGET,
    TIMESTAMP,
    DriftKind,
    _Active,
    _category_target,
    _frame,
    _shift_for_base_rate,
)
from ctloop.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd

__all__ = [
    "CATEGORICAL",
    "CATEGORIES",
    "FEATURES",
    "ID",
    "LABEL_TERMS",
    "NUMERIC",
    "TARGET",
    "TIMESTAMP",
    "Drift",
    "generate",
    "split",
    "stream",
]


@dataclass(frozen=True)
class Drift:
    """A change in the data from row ``start`` on (until ``end``, exclusive).

    ``start`` and ``end`` are absolute row positions in the endless table (row 0 is at
    ``generate``'s ``start`` time) or timestamps (the first row whose ``event_time`` is at
    or after it; naive timestamps are UTC). The change reaches full strength at once, or
    grows linearly over ``ramp`` rows (an int) or a duration (``"3D"``, a timedelta).

    kind="covariate": ``features`` maps a column to what changes.
        Numeric columns: ``{"shift": s, "scale": k}`` turns a value ``x`` into
        ``x * k + s`` (then clipped to the column's range), where it is drawn, so derived
        columns (``total_charges``) and the label follow; ``{"missing": r}`` makes a share
        ``r`` of the values NaN (float columns only). Categorical columns:
        ``{"month-to-month": 0.8}`` gives that level probability 0.8 and lets the other
        levels share the rest in their usual proportions; ``{"missing": r}`` makes a
        share ``r`` NaN. The label mechanism P(churn | features) is unchanged.
    kind="concept": ``coef_changes`` maps a term of the label model (``LABEL_TERMS``) to a
        factor on its contribution to the log-odds: 2.0 doubles the effect, 0.0 removes
        it, -1.0 reverses it. Features are unchanged.
    kind="prior": ``base_rate`` (0 < r < 1) or ``log_odds_shift`` changes how many
        customers churn, not which: every affected row's log-odds moves by the same
        amount, solved so the undrifted population would churn at ``base_rate``.
        Features are unchanged.

    Raises:
        InvalidInput: for an unknown kind, column, level, term or key, or a value out of
            range.
    """

    start: int | str | datetime | date
    kind: DriftKind
    end: int | str | datetime | date | None = None
    features: Mapping[str, Mapping[str, float]] | None = None
    coef_changes: Mapping[str, float] | None = None
    base_rate: float | None = None
    log_odds_shift: float | None = None
    ramp: int | str | timedelta = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidInput(
                f"unknown drift kind {self.kind!r}; use one of 'covariate', 'concept', 'prior'"
            )
        _check_position(self.start, "start")
        if self.end is not None:
            _check_position(self.end, "end")
            if _is_row(self.start) and _is_row(self.end) and self.end <= self.start:  # type: ignore[operator]
                raise InvalidInput(
                    f"drift end {self.end!r} is not after start {self.start!r}; "
                    "end is exclusive, so pass a later row or leave it None"
                )
        if _is_row(self.ramp):
            _whole(self.ramp, "drift ramp", 0)
        elif not isinstance(self.ramp, str | timedelta):
            raise InvalidInput(
                f"drift ramp must be a row count or a duration like '2D', got {self.ramp!r}"
            )
        given = {
            "features": self.features is not None,
            "coef_changes": self.coef_changes is not None,
            "base_rate": self.base_rate is not None,
            "log_odds_shift": self.log_odds_shift is not None,
        }
        wanted = {
            "covariate": {"features"},
            "concept": {"coef_changes"},
            "prior": {"base_rate", "log_odds_shift"},
        }[self.kind]
        stray = sorted(k for k, v in given.items() if v and k not in wanted)
        if stray:
            raise InvalidInput(
                f"a {self.kind} drift does not take {', '.join(stray)}; "
                f"it takes {' or '.join(sorted(wanted))}"
            )
        if self.kind == "covariate":
            object.__setattr__(self, "features", _check_features(self.features))
        elif self.kind == "concept":
            object.__setattr__(self, "coef_changes", _check_coefs(self.coef_changes))
        else:
            _check_prior(self.base_rate, self.log_odds_shift)


def generate(
    n_rows: int = 10_000,
    *,
    seed: int = 0,
    start: str | datetime | date = "2026-01-01",
    freq: str | timedelta | None = None,
    rows_per_day: float | None = None,
    drift: Drift | Sequence[Drift] | None = None,
    label: bool = True,
    offset: int = 0,
) -> pd.DataFrame:
    """Generate ``n_rows`` customers of the churn table, one every ``freq``.

    Args:
        n_rows: How many rows (0 gives an empty frame with the full schema).
        seed: Fixes the whole endless table; same arguments give an identical frame.
        start: ``event_time`` of row 0 (naive means UTC).
        freq: Time between rows, e.g. ``"1min"`` (the default) or a timedelta.
        rows_per_day: Alternative to ``freq``: ``86400 s / rows_per_day`` between rows.
        drift: Changes to inject (see :class:`Drift`), applied in list order.
        label: Include the ``churned`` column.
        offset: Row position of the first row, to continue a table: ``generate(n,
            offset=k)`` equals rows ``k..k+n-1`` of ``generate(k + n)``.

    Returns:
        A DataFrame indexed by row position with columns ``[ID, TIMESTAMP, *FEATURES,
        TARGET]``.

    Raises:
        InvalidInput: for a bad argument or drift spec; the message names it.
    """
    n = _whole(n_rows, "n_rows", 0)
    first = _whole(offset, "offset", 0)
    seed_ = _whole(seed, "seed", 0)
    if not isinstance(label, bool):
        raise InvalidInput(f"label must be True or False, got {label!r}")
    if first + n > _MAX_ROWS:
        raise InvalidInput(
            f"offset + n_rows = {first + n} is past the table's end ({_MAX_ROWS} rows); "
            "ask for fewer rows"
        )
    start_ns = _timestamp_ns(start, "start")
    step = _step_ns(freq, rows_per_day)
    if start_ns + (first + max(n, 1) - 1) * step > 2**63 - 1:
        raise InvalidInput(
            f"{n} rows from offset {first} every {step} ns run past the year 2262, the "
            "last time pandas can hold; use fewer rows, a smaller offset or a shorter freq"
        )
    plan = _resolve_drifts(drift, start_ns, step)
    return _frame(seed_, first, n, start_ns, step, plan, label)


def stream(
    batches: int | None = None,
    batch_size: int = 1_000,
    *,
    seed: int = 0,
    start: str | datetime | date = "2026-01-01",
    freq: str | timedelta | None = None,
    rows_per_day: float | None = None,
    drift: Drift | Sequence[Drift] | None = None,
    label: bool = True,
    offset: int = 0,
) -> Iterator[pd.DataFrame]:
    """Yield consecutive windows of the table, ``batch_size`` rows each (live traffic).

    Window ``k`` holds rows ``offset + k * batch_size`` onwards, exactly as
    :func:`generate` would produce them with the same arguments, so the windows
    concatenate to ``generate(batches * batch_size, offset=offset, ...)``. Drift
    positions are absolute rows or timestamps, as in :func:`generate`.

    Args:
        batches: How many windows; ``None`` streams until the caller stops.
        batch_size: Rows per window.
        seed, start, freq, rows_per_day, drift, label, offset: As for :func:`generate`.

    Raises:
        InvalidInput: for a bad argument, when ``stream`` is called (not on first use).
    """
    size = _whole(batch_size, "batch_size", 1)
    count = None if batches is None else _whole(batches, "batches", 0)
    first = _whole(offset, "offset", 0)
    options: dict[str, Any] = dict(
        seed=seed, start=start, freq=freq, rows_per_day=rows_per_day, drift=drift, label=label
    )
    generate(0, offset=first, **options)  # checks every argument now, not on first next()

    def windows() -> Iterator[pd.DataFrame]:
        k = 0
        while count is None or k < count:
            yield generate(size, offset=first + k * size, **options)
            k += 1

    return windows()


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Split a churn table into model inputs ``X = df[FEATURES]`` and the label ``y``.

    Raises:
        InvalidInput: if a feature column or the label is missing.
    """
    missing = [c for c in [*FEATURES, TARGET] if c not in df.columns]
    if missing:
        hint = " (generate it with label=True)" if missing == [TARGET] else ""
        raise InvalidInput(f"the frame has no column(s) {missing}{hint}")
    return df[FEATURES], df[TARGET]


# --- argument checks (pure Python, so Drift() needs neither numpy nor pandas) -------------


def _is_row(value: object) -> bool:
    return not isinstance(value, bool) and hasattr(value, "__index__")


def _whole(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InvalidInput(f"{name} must be a whole number >= {minimum}, got {value!r}")
    number = operator.index(cast(SupportsIndex, value))
    if number < minimum:
        raise InvalidInput(f"{name} must be a whole number >= {minimum}, got {number}")
    return int(number)


def _check_position(value: object, name: str) -> None:
    if _is_row(value):
        _whole(value, f"drift {name}", 0)
    elif not isinstance(value, str | datetime | date):
        raise InvalidInput(
            f"drift {name} must be a row position (int) or a timestamp, got {value!r}"
        )


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # type: ignore[arg-type]  # numpy scalars
        except (TypeError, ValueError):
            raise InvalidInput(f"{what} must be a number, got {value!r}") from None
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{what} must be finite, got {number}")
    return number


def _check_features(features: object) -> dict[str, dict[str, float]]:
    if not isinstance(features, Mapping) or not features:
        raise InvalidInput(
            "a covariate drift needs features={column: change}, e.g. "
            "{'monthly_charges': {'shift': 15.0}} or {'contract': {'month-to-month': 0.8}}"
        )
    checked: dict[str, dict[str, float]] = {}
    for column, change in features.items():
        if column not in FEATURES:
            raise InvalidInput(
                f"unknown feature {column!r} in a covariate drift; use one of {FEATURES}"
            )
        if not isinstance(change, Mapping) or not change:
            raise InvalidInput(
                f"the change for {column!r} must be a non-empty mapping, got {change!r}"
            )
        values = {str(k): _number(v, f"{column}[{k!r}]") for k, v in change.items()}
        allowed = _NUMERIC_KEYS if column in NUMERIC else (*CATEGORIES[column], "missing")
        for key, number in values.items():
            if key not in allowed:
                raise InvalidInput(
                    f"{key!r} is not something a covariate drift can change on {column!r}; "
                    f"use one of {list(allowed)}"
                )
            if key == "scale" and number <= 0:
                raise InvalidInput(f"{column} scale must be > 0, got {number}")
            if key not in ("shift", "scale") and not 0 <= number <= 1:
                raise InvalidInput(f"{column}[{key!r}] is a share in [0, 1], got {number}")
        if "missing" in values and column in _INTEGER:
            holders = [c for c in FEATURES if c not in _INTEGER]
            raise InvalidInput(
                f"{column!r} is an integer column and cannot hold missing values; "
                f"missing can be injected into {holders}"
            )
        if column in CATEGORICAL:
            _category_target(column, values)  # validates the mix
        checked[column] = values
    return checked


def _check_coefs(coefs: object) -> dict[str, float]:
    if not isinstance(coefs, Mapping) or not coefs:
        raise InvalidInput(
            "a concept drift needs coef_changes={term: factor}, e.g. {'support_calls': 2.0}"
        )
    for term in coefs:
        if term not in LABEL_TERMS:
            raise InvalidInput(
                f"unknown label-model term {term!r} in coef_changes; use one of {LABEL_TERMS}"
            )
    return {str(t): _number(v, f"coef_changes[{t!r}]") for t, v in coefs.items()}


def _check_prior(base_rate: float | None, shift: float | None) -> None:
    if (base_rate is None) == (shift is None):
        raise InvalidInput(
            "a prior drift needs exactly one of base_rate (e.g. 0.4) or log_odds_shift (e.g. 0.8)"
        )
    if base_rate is not None and not 0 < _number(base_rate, "base_rate") < 1:
        raise InvalidInput(f"base_rate must be between 0 and 1 (exclusive), got {base_rate}")
    if shift is not None:
        _number(shift, "log_odds_shift")


# --- time ---------------------------------------------------------------------------------


def _timestamp_ns(value: object, what: str) -> int:
    import pandas as pd

    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{what} {value!r} is not a timestamp ({exc}); use e.g. '2026-01-01T00:00Z'"
        ) from None
    if ts is pd.NaT:
        raise InvalidInput(f"{what} {value!r} is not a timestamp; use e.g. '2026-01-01'")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def _duration_ns(value: object, what: str) -> int:
    import pandas as pd

    try:
        delta = pd.Timedelta(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{what} {value!r} is not a duration ({exc}); use e.g. '1min'") from None
    if delta is pd.NaT or delta.value <= 0:
        raise InvalidInput(f"{what} must be a positive duration, got {value!r}")
    return int(delta.value)


def _step_ns(freq: object, rows_per_day: object) -> int:
    if freq is not None and rows_per_day is not None:
        raise InvalidInput(f"give freq ({freq!r}) or rows_per_day ({rows_per_day!r}), not both")
    if rows_per_day is None:
        return _duration_ns(_DEFAULT_FREQ if freq is None else freq, "freq")
    rate = _number(rows_per_day, "rows_per_day")
    if rate <= 0 or _NS_PER_DAY / rate < 1:
        raise InvalidInput(
            f"rows_per_day must be > 0 and at most {_NS_PER_DAY} (one per ns), got {rate}"
        )
    return round(_NS_PER_DAY / rate)


# --- drift plan ---------------------------------------------------------------------------


def _resolve_drifts(drift: object, start_ns: int, step: int) -> list[_Active]:
    if drift is None:
        return []
    specs = [drift] if isinstance(drift, Drift) else drift
    if isinstance(specs, str | bytes) or not isinstance(specs, Sequence):
        raise InvalidInput(f"drift must be a list of churn.Drift, got {drift!r}")
    plan = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, Drift):
            raise InvalidInput(f"drift[{i}] must be a churn.Drift, got {spec!r}")
        begin = _row_at(spec.start, f"drift[{i}].start", start_ns, step)
        end = None if spec.end is None else _row_at(spec.end, f"drift[{i}].end", start_ns, step)
        if end is not None and end <= begin:
            raise InvalidInput(
                f"drift[{i}] ends at row {end}, not after its start at row {begin}; "
                "end is exclusive, so pass a later end or None"
            )
        ramp = (
            operator.index(cast(SupportsIndex, spec.ramp))
            if _is_row(spec.ramp)
            else -(-_duration_ns(spec.ramp, f"drift[{i}].ramp") // step)
        )
        shift = 0.0
        if spec.kind == "prior":
            shift = (
                float(spec.log_odds_shift)
                if spec.log_odds_shift is not None
                else _shift_for_base_rate(float(spec.base_rate))  # type: ignore[arg-type]
            )
        plan.append(_Active(spec, begin, end, ramp, shift))
    return plan


def _row_at(value: object, what: str, start_ns: int, step: int) -> int:
    """A drift position as a row: the row itself, or the first row at or after a time."""
    if _is_row(value):
        return operator.index(cast(SupportsIndex, value))
    return max(0, -((start_ns - _timestamp_ns(value, what)) // step))
