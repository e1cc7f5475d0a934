"""Column profiles: what a reference or window profile holds for one column.

A :class:`NumericColumn` counts a numeric column over fixed bin edges and keeps its
moments (merged exactly, Chan's parallel update) and a mergeable uniform bottom-k sample
(see the class); a :class:`CategoricalColumn` counts each category up to a cap. Both
merge column by column, so the profiles of :mod:`ctloop.monitoring.profiles` add up.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from ctloop.errors import InvalidInput
from ctloop.monitoring import stats

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_CATEGORIES",
    "CategoricalColumn",
    "ColumnProfile",
    "NumericColumn",
]

#: Categories a categorical column keeps by default before folding the rarest into "other".
MAX_CATEGORIES = 100

_EMPTY = np.zeros(0)

C = TypeVar("C", bound="ColumnProfile")


def _float(value: float) -> float | None:
    """A float for JSON: NaN and ±inf have no JSON spelling, so they become null."""
    return None if not math.isfinite(value) else float(value)


def _unfloat(value: Any, default: float = math.nan) -> float:
    return default if value is None else float(value)


# --- columns ------------------------------------------------------------------------------


@dataclass(eq=False, kw_only=True)
class ColumnProfile:
    """What one column of a profile holds: its rows and how many of them were missing.

    Attributes:
        name: the column.
        rows: rows seen, missing ones included.
        missing: rows that were NaN or None.
    """

    kind: ClassVar[str]

    name: str
    rows: int = 0
    missing: int = 0

    @property
    def values(self) -> int:
        """Rows that were not missing."""
        return self.rows - self.missing

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    def empty_copy(self: C) -> C:  # pragma: no cover - overridden
        raise NotImplementedError

    def observe(self, values: pd.Series, seed: int = 0) -> None:  # pragma: no cover
        raise NotImplementedError

    def merge(self: C, other: C) -> C:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ColumnProfile:
        """A column from :meth:`to_dict`'s output."""
        kind = data.get("kind")
        if kind == NumericColumn.kind:
            return NumericColumn._from_dict(data)
        if kind == CategoricalColumn.kind:
            return CategoricalColumn._from_dict(data)
        raise InvalidInput(
            f"column {data.get('name')!r} of the profile has kind {kind!r}; "
            "expected 'numeric' or 'categorical'"
        )

    def _check_mergeable(self, other: ColumnProfile) -> None:
        if type(other) is not type(self) or other.name != self.name:
            raise InvalidInput(
                f"cannot merge column {other.name!r} ({other.kind}) into column "
                f"{self.name!r} ({self.kind}): profiles merge column by column, same kind"
            )


@dataclass(eq=False, kw_only=True)
class NumericColumn(ColumnProfile):
    """A numeric column: bin counts over fixed edges, moments, and a uniform sample.

    ``counts`` has ``len(edges) + 1`` bins: bin 0 holds values below ``edges[0]``
    (``-inf`` included), the last bin values at or above ``edges[-1]`` (``+inf``
    included); NaN is counted in ``missing``, never in a bin. ``n``, ``mean``, ``m2``
    (the sum of squared deviations), ``min`` and ``max`` describe the finite values and
    merge exactly (Chan et al.'s parallel update). ``std`` is the sample deviation
    (``ddof=1``).

    The sample is a bottom-k sample: every finite value draws a uniform random key and
    the ``sample_size`` values with the smallest keys are kept, with their keys. The
    smallest keys of a union are the smallest of the smallest keys of its parts, so
    merging two samples (keep the ``sample_size`` smallest of both) gives exactly the
    sample the union would have drawn: uniform, without replacement. The keys of a batch
    come from a generator seeded by the profile's seed and a hash of the batch's values,
    so batches, segments and replicas draw independent keys and a rebuild is
    reproducible. While ``n <= sample_size`` the sample holds every finite value.
    """

    kind: ClassVar[str] = "numeric"

    edges: np.ndarray = field(default_factory=lambda: _EMPTY)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    infinite: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.nan
    max: float = math.nan
    sample_size: int = 0
    sample: np.ndarray = field(default_factory=lambda: _EMPTY)
    sample_keys: np.ndarray = field(default_factory=lambda: _EMPTY)

    @property
    def std(self) -> float:
        """The sample standard deviation of the finite values (NaN below two values)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan

    @property
    def infinite_share(self) -> float:
        return self.infinite / self.rows if self.rows else 0.0

    @property
    def sample_complete(self) -> bool:
        """Whether the sample holds every finite value (so sample tests are exact)."""
        return len(self.sample) == self.n

    def empty_copy(self) -> NumericColumn:
        """A column with the same bins and sample size and nothing counted."""
        return NumericColumn(
            name=self.name,
            edges=self.edges,
            counts=np.zeros(len(self.edges) + 1, dtype=np.int64),
            sample_size=self.sample_size,
        )

    def observe(self, values: pd.Series, seed: int = 0) -> None:
        """Count ``values`` into this column (in place). Non-numbers count as missing."""
        import pandas as pd

        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        nan = np.isnan(x)
        finite = x[np.isfinite(x)]
        self.rows += len(x)
        self.missing += int(nan.sum())
        self.infinite += len(x) - int(nan.sum()) - len(finite)
        self.counts = self.counts + np.asarray(stats.histogram(x, self.edges), dtype=np.int64)
        if len(finite) == 0:
            return
        mean = float(finite.mean())
        m2 = float(((finite - mean) ** 2).sum())
        self._add_moments(len(finite), mean, m2, float(finite.min()), float(finite.max()))
        if self.sample_size > 0:
            digest = hashlib.blake2b(finite.tobytes(), digest_size=8).digest()
            rng = np.random.default_rng([seed, len(finite), int.from_bytes(digest, "little")])
            self._add_sample(finite, rng.random(len(finite)))

    def _add_moments(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        if n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2, self.min, self.max = n, mean, m2, lo, hi
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        self.min, self.max = min(self.min, lo), max(self.max, hi)

    def _add_sample(self, values: np.ndarray, keys: np.ndarray) -> None:
        values = np.concatenate([self.sample, values])
        keys = np.concatenate([self.sample_keys, keys])
        if len(keys) > self.sample_size:
            keep = np.argpartition(keys, self.sample_size - 1)[: self.sample_size]
            values, keys = values[keep], keys[keep]
        self.sample, self.sample_keys = values, keys

    def merge(self, other: NumericColumn) -> NumericColumn:
        """The column of the union of the rows behind ``self`` and ``other``.

        Raises:
            InvalidInput: the two columns were not counted over the same edges.
        """
        self._check_mergeable(other)
        if not np.array_equal(self.edges, other.edges):
            raise InvalidInput(
                f"cannot merge profiles of column {self.name!r}: their bin edges differ "
                f"({_show(self.edges)} vs {_show(other.edges)}); build both from the same "
                "reference (reference.window(...), or ReferenceProfile.from_frame(..., like=ref))"
            )
        out = self.empty_copy()
        out.sample_size = max(self.sample_size, other.sample_size)
        for part in (self, other):
            out.rows += part.rows
            out.missing += part.missing
            out.infinite += part.infinite
            out.counts = out.counts + part.counts
            out._add_moments(part.n, part.mean, part.m2, part.min, part.max)
            if out.sample_size:
                out._add_sample(part.sample, part.sample_keys)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "missing": self.missing,
            "infinite": self.infinite,
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "n": self.n,
            "mean": _float(self.mean) if self.n else None,
            "m2": _float(self.m2) if self.n else None,
            "min": _float(self.min),
            "max": _float(self.max),
            "sample_size": self.sample_size,
            "sample": [float(v) for v in self.sample],
            "sample_keys": [float(k) for k in self.sample_keys],
        }

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> NumericColumn:
        edges = np.asarray(data.get("edges", []), dtype=float)
        counts = np.asarray(data.get("counts", [0]), dtype=np.int64)
        sample = np.asarray(data.get("sample", []), dtype=float)
        keys = np.asarray(data.get("sample_keys", []), dtype=float)
        if len(counts) != len(edges) + 1 or len(sample) != len(keys):
            raise InvalidInput(
                f"numeric column {data.get('name')!r} of the profile is inconsistent: "
                f"{len(edges)} edges need {len(edges) + 1} counts (got {len(counts)}) and "
                f"a key per sampled value ({len(sample)} values, {len(keys)} keys)"
            )
        return cls(
            name=str(data["name"]),
            rows=int(data.get("rows", 0)),
            missing=int(data.get("missing", 0)),
            infinite=int(data.get("infinite", 0)),
            edges=edges,
            counts=counts,
            n=int(data.get("n", 0)),
            mean=_unfloat(data.get("mean"), 0.0),
            m2=_unfloat(data.get("m2"), 0.0),
            min=_unfloat(data.get("min")),
            max=_unfloat(data.get("max")),
            sample_size=int(data.get("sample_size", 0)),
            sample=sample,
            sample_keys=keys,
        )


@dataclass(eq=False, kw_only=True)
class CategoricalColumn(ColumnProfile):
    """A categorical column: the count of every category, up to a cap.

    Categories are compared as text (``str(value)``), which is also how they are stored
    in JSON. At most ``max_categories`` categories are kept besides the ``pinned`` ones
    (a window pins its reference's categories, so they are never folded); the rarest of
    the rest are folded into ``other``. Below the cap every count is exact; above it the
    kept set is the most frequent so far, which for a profile built in batches or merged
    from parts is an approximation of the overall top categories (a category can be
    folded in one part and kept in another).
    """

    kind: ClassVar[str] = "categorical"

    categories: dict[str, int] = field(default_factory=dict)
    other: int = 0
    max_categories: int = MAX_CATEGORIES
    pinned: frozenset[str] = frozenset()

    @property
    def truncated(self) -> bool:
        """Whether some categories were folded into ``other``."""
        return self.other > 0

    def empty_copy(self) -> CategoricalColumn:
        return CategoricalColumn(
            name=self.name, max_categories=self.max_categories, pinned=self.pinned
        )

    def observe(self, values: pd.Series, seed: int = 0) -> None:
        """Count ``values`` into this column (in place)."""
        self.rows += len(values)
        self.missing += int(values.isna().sum())
        counts = values.value_counts(dropna=True, sort=False)
        for key, count in counts.items():
            text = str(key)
            self.categories[text] = self.categories.get(text, 0) + int(count)
        self._fold()

    def _fold(self) -> None:
        free = [c for c in self.categories if c not in self.pinned]
        if len(free) <= self.max_categories:
            return
        free.sort(key=lambda c: (-self.categories[c], c))
        for category in free[self.max_categories :]:
            self.other += self.categories.pop(category)

    def merge(self, other: CategoricalColumn) -> CategoricalColumn:
        """The column of the union of the rows behind ``self`` and ``other``."""
        self._check_mergeable(other)
        out = CategoricalColumn(
            name=self.name,
            max_categories=max(self.max_categories, other.max_categories),
            pinned=self.pinned | other.pinned,
        )
        for part in (self, other):
            out.rows += part.rows
            out.missing += part.missing
            out.other += part.other
            for category, count in part.categories.items():
                out.categories[category] = out.categories.get(category, 0) + count
        out._fold()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "missing": self.missing,
            "categories": dict(self.categories),
            "other": self.other,
            "max_categories": self.max_categories,
            "pinned": sorted(self.pinned),
        }

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> CategoricalColumn:
        return cls(
            name=str(data["name"]),
            rows=int(data.get("rows", 0)),
            missing=int(data.get("missing", 0)),
            categories={str(k): int(v) for k, v in dict(data.get("categories", {})).items()},
            other=int(data.get("other", 0)),
            max_categories=int(data.get("max_categories", MAX_CATEGORIES)),
            pinned=frozenset(str(c) for c in data.get("pinned", [])),
        )


def _show(edges: np.ndarray) -> str:
    shown = ", ".join(f"{e:g}" for e in edges[:4])
    return f"[{shown}{', …' if len(edges) > 4 else ''}] ({len(edges)} edges)"
