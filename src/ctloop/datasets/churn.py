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

import functools
import itertools
import math
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, SupportsIndex, cast

from ctloop.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np
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

ID = "customer_id"
TIMESTAMP = "event_time"
TARGET = "churned"
NUMERIC = [
    "age",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "data_usage_gb",
    "days_since_last_login",
]
CATEGORICAL = ["contract", "payment_method", "internet_service", "region", "plan"]
FEATURES = NUMERIC + CATEGORICAL
"""Model inputs, in column order (lists so that ``df[churn.FEATURES]`` works; don't mutate)."""

CATEGORIES = {
    "contract": ["month-to-month", "one-year", "two-year"],
    "payment_method": ["electronic-check", "credit-card", "bank-transfer", "mailed-check"],
    "internet_service": ["fiber", "dsl", "no-internet"],
    "region": ["north", "south", "east", "west", "central"],
    "plan": ["basic", "standard", "premium"],
}
"""The levels of each categorical column, in the order of its ``category`` dtype."""

LABEL_TERMS = [
    *FEATURES,
    "contract:support_calls",
    "internet_service:monthly_charges",
    "payment_method:tenure_months",
]
"""Terms of the label model; the keys a concept drift's ``coef_changes`` accepts."""

DriftKind = Literal["covariate", "concept", "prior"]
_KINDS = ("covariate", "concept", "prior")

# Default category mix, aligned with CATEGORIES.
_MIX = {
    "contract": (0.55, 0.24, 0.21),
    "payment_method": (0.35, 0.24, 0.22, 0.19),
    "internet_service": (0.44, 0.34, 0.22),
    "region": (0.31, 0.24, 0.19, 0.16, 0.10),
    "plan": (0.52, 0.33, 0.15),
}
# Valid range of each numeric column; drifted values are clipped into it.
_BOUNDS = {
    "age": (18.0, 95.0),
    "tenure_months": (0.0, 72.0),
    "monthly_charges": (18.0, 250.0),
    "total_charges": (0.0, 25_000.0),
    "support_calls": (0.0, 30.0),
    "data_usage_gb": (0.0, 2_000.0),
    "days_since_last_login": (0.0, 365.0),
}
_INTEGER = frozenset({"age", "tenure_months", "support_calls", "days_since_last_login"})
_BASE_MISSING = {"data_usage_gb": 0.02}  # share of values lost at observation
_NUMERIC_KEYS = ("shift", "scale", "missing")

# The label model's log-odds: intercept + sum of centred terms - satisfaction.
_INTERCEPT = -1.8
_SATISFACTION_EFFECT = 0.9
_CONTRACT_EFFECT = (0.75, -0.55, -1.45)
_PAYMENT_EFFECT = (0.40, -0.25, -0.20, 0.0)
_INTERNET_EFFECT = (0.30, -0.10, -0.45)
_REGION_EFFECT = (0.0, 0.10, -0.05, 0.05, -0.12)
_PLAN_EFFECT = (0.08, -0.05, -0.12)

_BLOCK = 16_384  # rows per random block; row i's randomness depends only on (seed, i // _BLOCK)
_SALT = 0x63746C6F6F70  # "ctloop": keeps our streams apart from a user's SeedSequence(seed)
_MAX_ROWS = 2**40  # customer ids are a bijection of the row index on 40 bits
_REFERENCE_SEED = 20_260_101
_REFERENCE_ROWS = 65_536
_NS_PER_DAY = 86_400 * 10**9
_DEFAULT_FREQ = "1min"

# Layout of the per-row uniforms: categorical draws, support calls, label, then one
# missingness draw per feature.
_U_CATEGORICAL = {name: i for i, name in enumerate(CATEGORICAL)}
_U_CALLS = len(CATEGORICAL)
_U_LABEL = _U_CALLS + 1
_U_MISSING = {name: _U_LABEL + 1 + i for i, name in enumerate(FEATURES)}
_N_UNIFORM = _U_LABEL + 1 + len(FEATURES)
_N_NORMAL = 5  # satisfaction, tenure, charges noise, total noise, usage noise
_N_EXPONENTIAL = 2  # tenure, login gap


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


def _category_target(column: str, change: Mapping[str, float]) -> list[float]:
    """Level probabilities after a mix change: named levels fixed, the rest rescaled."""
    levels = CATEGORIES[column]
    fixed = {k: v for k, v in change.items() if k != "missing"}
    if not fixed:
        return list(_MIX[column])
    total = sum(fixed.values())
    rest = [p for level, p in zip(levels, _MIX[column], strict=True) if level not in fixed]
    if total > 1 + 1e-9 or (not rest and abs(total - 1) > 1e-6):
        raise InvalidInput(
            f"the {column} mix {dict(fixed)} sums to {total:g}; probabilities of the named "
            "levels must sum to at most 1 (exactly 1 when every level is named)"
        )
    scale = (1 - total) / sum(rest) if rest else 0.0
    return [
        fixed[level] if level in fixed else p * scale
        for level, p in zip(levels, _MIX[column], strict=True)
    ]


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


@dataclass(frozen=True)
class _Active:
    """A drift with its positions resolved to rows: full strength from start + ramp - 1."""

    spec: Drift
    start: int
    end: int | None
    ramp: int
    log_odds_shift: float = 0.0

    def strength(self, rows: np.ndarray) -> np.ndarray:
        import numpy as np

        inside = rows >= self.start
        if self.end is not None:
            inside &= rows < self.end
        if self.ramp <= 1:
            return inside.astype(np.float64)
        return np.where(inside, np.minimum((rows - self.start + 1) / self.ramp, 1.0), 0.0)


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


@functools.lru_cache(maxsize=64)
def _shift_for_base_rate(rate: float) -> float:
    """The log-odds shift that makes the undrifted reference population churn at ``rate``."""
    import numpy as np

    logits = _reference_logits()
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if float(np.mean(_sigmoid(logits + mid))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@functools.cache
def _reference_logits() -> np.ndarray:
    return _simulate(_REFERENCE_SEED, 0, _REFERENCE_ROWS, [])["_logit"]


# --- simulation ---------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for any x


def _draws(seed: int, first: int, n: int) -> tuple[np.ndarray, ...]:
    """Standard random variates for rows ``first..first+n-1``, independent of how they
    are chunked: each block of ``_BLOCK`` rows has its own generator."""
    import numpy as np

    parts: list[tuple[np.ndarray, ...]] = []
    for block in range(first // _BLOCK, (first + n - 1) // _BLOCK + 1):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([_SALT, seed, block])))
        u = rng.random((_BLOCK, _N_UNIFORM))
        z = rng.standard_normal((_BLOCK, _N_NORMAL))
        e = rng.standard_exponential((_BLOCK, _N_EXPONENTIAL))
        g = rng.standard_gamma(4.0, _BLOCK)
        lo = max(first, block * _BLOCK) - block * _BLOCK
        hi = min(first + n, (block + 1) * _BLOCK) - block * _BLOCK
        parts.append((u[lo:hi], z[lo:hi], e[lo:hi], g[lo:hi]))
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _poisson(lam: np.ndarray, u: np.ndarray, cap: int) -> np.ndarray:
    """Inverse-CDF Poisson draws (so one uniform per row, whatever the rate)."""
    import numpy as np

    x = np.zeros(len(u), dtype=np.int64)
    pmf = np.exp(-lam)
    cdf = pmf.copy()
    idx = np.flatnonzero(u > cdf)
    k = 0
    while idx.size and k < cap:
        k += 1
        x[idx] = k
        pmf_i = pmf[idx] * lam[idx] / k
        pmf[idx] = pmf_i
        cdf[idx] += pmf_i
        idx = idx[u[idx] > cdf[idx]]
    return x


def _simulate(seed: int, first: int, n: int, plan: list[_Active]) -> dict[str, np.ndarray]:
    """Feature values (categoricals as codes, -1 = missing), labels and logits."""
    import numpy as np

    u, z, e, g = _draws(seed, first, n)
    rows = np.arange(first, first + n, dtype=np.int64)
    strength = [d.strength(rows) for d in plan]
    covariate = [(d, s) for d, s in zip(plan, strength, strict=True) if d.spec.kind == "covariate"]

    def changes(column: str) -> list[tuple[Mapping[str, float], np.ndarray]]:
        return [
            (features[column], s)
            for d, s in covariate
            if column in (features := d.spec.features or {}) and s.any()
        ]

    out: dict[str, np.ndarray] = {}
    for column in CATEGORICAL:
        cum = np.cumsum(_MIX[column])
        draws = u[:, _U_CATEGORICAL[column]]
        mixes = [(c, s) for c, s in changes(column) if set(c) - {"missing"}]
        if not mixes:
            out[column] = np.searchsorted(cum[:-1], draws, side="right")
            continue
        probs = np.broadcast_to(np.asarray(_MIX[column]), (n, len(cum))).copy()
        for change, s in mixes:
            target = np.asarray(_category_target(column, change))
            probs += s[:, None] * (target - probs)
        out[column] = (draws[:, None] >= np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1)

    def finish(column: str, x: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
        """Apply covariate shift/scale where the column is drawn, then clip and round."""
        for change, s in changes(column):
            if "shift" in change or "scale" in change:
                hit = s > 0 if free is None else (s > 0) & free
                k = 1.0 + (change.get("scale", 1.0) - 1.0) * s[hit]
                x[hit] = x[hit] * k + change.get("shift", 0.0) * s[hit]
        lo, hi = _BOUNDS[column]
        x = np.clip(x, lo, hi)
        return np.floor(x).astype(np.int64) if column in _INTEGER else np.round(x, 2)

    contract, internet, plan_ = out["contract"], out["internet_service"], out["plan"]
    fiber, offline, e_check = internet == 0, internet == 2, out["payment_method"] == 0
    satisfaction = z[:, 0]  # unobserved; drives behaviour and churn

    age = finish("age", 18.0 + 7.0 * g)
    tenure_raw = np.select(
        [contract == 0, contract == 1],
        [16.0 * np.exp(0.25 * satisfaction) * e[:, 0], 30.0 + 15.0 * z[:, 1]],
        72.0 - 20.0 * e[:, 0],
    )
    tenure = finish("tenure_months", tenure_raw)
    charges = finish(
        "monthly_charges",
        np.asarray([78.0, 52.0, 25.0])[internet]
        + np.asarray([0.0, 14.0, 30.0])[plan_]
        + np.asarray([0.0, -2.0, 2.0, 3.0, -2.0])[out["region"]]
        + np.asarray([7.0, 6.0, 3.0])[internet] * z[:, 2],
    )
    billed = tenure > 0  # no bill has closed in a customer's first month
    total = finish("total_charges", tenure * charges * np.exp(0.06 * z[:, 3]), free=billed)
    total[~billed] = np.nan
    calls_rate = 0.9 * np.exp(
        0.45 * fiber - 0.3 * offline + 0.5 * (tenure < 6) - 0.35 * satisfaction + 0.004 * (age - 46)
    )
    calls = finish("support_calls", _poisson(calls_rate, u[:, _U_CALLS], 60).astype(np.float64))
    usage_raw = np.exp(
        np.log(18.0)
        + np.asarray([0.0, 0.35, 0.7])[plan_]
        + 0.25 * fiber
        - 0.02 * (age - 46)
        + 0.25 * satisfaction
        + 0.7 * z[:, 4]
    )
    usage = finish("data_usage_gb", np.where(offline, 0.0, usage_raw), free=~offline)
    login = finish(
        "days_since_last_login",
        6.0 * np.exp(-0.6 * satisfaction + 0.01 * (age - 46)) * e[:, 1],
    )
    out.update(
        age=age,
        tenure_months=tenure,
        monthly_charges=charges,
        total_charges=total,
        support_calls=calls,
        data_usage_gb=usage,
        days_since_last_login=login,
    )

    terms = {
        "age": 0.0007 * ((age - 48.0) ** 2 - 200.0),
        "tenure_months": -0.6 * (np.log1p(tenure) - 2.85),
        "monthly_charges": 0.018 * (charges - 66.5),
        "total_charges": -0.1 * (np.log1p(np.where(billed, total, 0.0)) - 6.7),
        "support_calls": 0.30 * (calls - 1.3),
        "data_usage_gb": -0.15 * (np.log1p(usage) - 2.6),
        "days_since_last_login": 0.45 * (np.log1p(login) - 1.5),
        "contract": np.asarray(_CONTRACT_EFFECT)[contract],
        "payment_method": np.asarray(_PAYMENT_EFFECT)[out["payment_method"]],
        "internet_service": np.asarray(_INTERNET_EFFECT)[internet],
        "region": np.asarray(_REGION_EFFECT)[out["region"]],
        "plan": np.asarray(_PLAN_EFFECT)[plan_],
        "contract:support_calls": 0.25 * (contract == 0) * (calls - 1.4),
        "internet_service:monthly_charges": 0.6 * ((fiber & (charges > 95.0)) - 0.12),
        "payment_method:tenure_months": 0.5 * ((e_check & (tenure < 6)) - 0.07),
    }
    factor = {term: np.ones(n) for term in terms}
    logit = _INTERCEPT - _SATISFACTION_EFFECT * satisfaction
    for d, s in zip(plan, strength, strict=True):
        if d.spec.kind == "concept":
            for term, c in d.spec.coef_changes.items():  # type: ignore[union-attr]
                factor[term] *= 1.0 + (c - 1.0) * s
        elif d.spec.kind == "prior":
            logit = logit + d.log_odds_shift * s
    for term, value in terms.items():
        logit = logit + factor[term] * value
    out["_logit"] = logit
    out[TARGET] = (u[:, _U_LABEL] < _sigmoid(logit)).astype(np.int64)

    # Values go missing at observation, after the label was drawn from the true values.
    for column in FEATURES:
        rate = np.full(n, _BASE_MISSING.get(column, 0.0))
        for change, s in changes(column):
            if "missing" in change:
                rate += s * (change["missing"] - rate)
        if rate.any():
            lost = u[:, _U_MISSING[column]] < rate
            out[column] = np.where(lost, -1 if column in CATEGORICAL else np.nan, out[column])
    return out


def _customer_ids(seed: int, rows: np.ndarray) -> list[str]:
    """Random-looking, unique ids: a seeded bijection of the row index on 40 bits."""
    import numpy as np

    mask = np.uint64(_MAX_ROWS - 1)
    key_mul, key_xor = np.random.SeedSequence([_SALT, seed, 1]).generate_state(2, np.uint64)
    v = rows.astype(np.uint64)
    v = ((v ^ (key_xor & mask)) * (key_mul | np.uint64(1))) & mask
    v ^= v >> np.uint64(19)
    v = (v * np.uint64(0x9E3779B97F4A7C15)) & mask
    return [f"cus_{x:010x}" for x in v.tolist()]


def _frame(
    seed: int, first: int, n: int, start_ns: int, step: int, plan: list[_Active], label: bool
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rows = np.arange(first, first + n, dtype=np.int64)
    index = pd.RangeIndex(first, first + n)
    if n:
        # Chunks follow the random blocks, so each draws one block and memory stays flat.
        edges = [first, *range((first // _BLOCK + 1) * _BLOCK, first + n, _BLOCK), first + n]
        chunks = [_simulate(seed, lo, hi - lo, plan) for lo, hi in itertools.pairwise(edges)]
        values: dict[str, Any] = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    else:
        values = {c: np.zeros(0, np.int64 if c in _INTEGER else np.float64) for c in NUMERIC}
        values.update({c: np.zeros(0, np.int64) for c in [*CATEGORICAL, TARGET]})
    times = pd.DatetimeIndex((start_ns + rows * step).astype("datetime64[ns]")).tz_localize("UTC")
    columns: dict[str, Any] = {
        ID: pd.Series(_customer_ids(seed, rows), index=index, dtype=str),  # pandas' text dtype
        TIMESTAMP: times,
    }
    for column in NUMERIC:
        columns[column] = values[column]
    for column in CATEGORICAL:
        columns[column] = pd.Categorical.from_codes(
            values[column], dtype=pd.CategoricalDtype(CATEGORIES[column])
        )
    if label:
        columns[TARGET] = values[TARGET]
    return pd.DataFrame(columns, index=index)
