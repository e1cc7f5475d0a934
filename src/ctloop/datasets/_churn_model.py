"""The data-generating model behind :mod:`ctloop.datasets.churn`: the schema, the label's
coefficients, the layout of the random streams, and the vectorised simulation.

Public names are re-exported by ``churn``; everything here is private to it. Any change to
the simulation changes the data a given seed produces: note it in the CHANGELOG.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ctloop.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np
    import pandas as pd

    from ctloop.datasets.churn import Drift

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
