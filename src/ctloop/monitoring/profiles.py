"""Mergeable reference profiles: drift from histograms, not rows.

A :class:`ReferenceProfile` freezes, per column, what drift is measured against: for a
numeric column the bin edges (reference quantiles) and the counts in them, the missing
and infinite counts, the moments and a uniform sample; for a categorical column the
count of each category. A :class:`WindowProfile` counts a window over the *same* bins,
so drift needs nothing but the two profiles.

Profiles add up. The counts of two segments (days, replicas, batches) over the same bins
are the counts of their union; moments merge exactly (Chan's parallel update); samples
merge into a uniform sample of the union (bottom-k by random keys, see
:class:`NumericColumn`). A window of a billion rows is built batch by batch in constant
memory with :meth:`ReferenceProfile.window_from_batches`, and its drift
(:func:`ctloop.monitoring.profile_drift.drift`) is computed from histograms with a few
dozen bins.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from ctloop.errors import InvalidInput
from ctloop.monitoring import stats
from ctloop.monitoring.detectors import column_kind

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion

__all__ = [
    "MAX_CATEGORIES",
    "PROFILE_VERSION",
    "CategoricalColumn",
    "ColumnProfile",
    "NumericColumn",
    "ReferenceProfile",
    "WindowProfile",
    "profile_dataset",
    "profile_model_training_data",
]

#: The version of the JSON layout written by ``to_dict``; ``from_dict`` refuses newer ones.
PROFILE_VERSION = 1

#: Categories a categorical column keeps by default before folding the rarest into "other".
MAX_CATEGORIES = 100

_EMPTY = np.zeros(0)

C = TypeVar("C", bound="ColumnProfile")
P = TypeVar("P", bound="Profile")


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


def _new_column(
    name: str,
    series: pd.Series,
    kind: str | None,
    template: ColumnProfile | None,
    bins: int,
    sample_size: int,
) -> ColumnProfile:
    """An empty column for ``series``: the template's bins, else its own quantile bins."""
    if template is not None:
        column = template.empty_copy()
        if isinstance(column, NumericColumn):
            column.sample_size = sample_size
        elif isinstance(column, CategoricalColumn):
            column.pinned = frozenset()
        return column
    kind = kind or column_kind(series)
    if kind == CategoricalColumn.kind:
        return CategoricalColumn(name=name)
    if kind != NumericColumn.kind:
        raise InvalidInput(f"kind {kind!r} for column {name!r}: use 'numeric' or 'categorical'")
    # no finite value gives no edges: one bin counting whatever is not NaN
    values = _as_floats(series, name)
    edges = stats.quantile_edges(values, bins)
    return NumericColumn(
        name=name,
        edges=edges,
        counts=np.zeros(len(edges) + 1, dtype=np.int64),
        sample_size=sample_size,
    )


def _as_floats(series: pd.Series, name: str) -> np.ndarray:
    """A column as floats (NaN for missing); text that is not a number is refused."""
    import pandas as pd

    try:
        return pd.to_numeric(series).to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"column {name!r} is to be numeric but holds values that are not numbers"
        ) from None


# --- profiles -----------------------------------------------------------------------------


@dataclass(eq=False)
class Profile:
    """Column profiles by name, and the columns that could not be profiled (with why)."""

    columns: dict[str, ColumnProfile]
    skipped: dict[str, str] = field(default_factory=dict)

    kind: ClassVar[str] = "profile"

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidInput(
                f"the profile has no column {name!r}; it has: {', '.join(self.columns) or 'none'}"
            ) from None

    @property
    def rows(self) -> int:
        """Rows behind the profile (the most any column saw)."""
        return max((c.rows for c in self.columns.values()), default=0)

    def merge(self: P, *others: P) -> P:
        """The profile of the union of the rows behind this profile and ``others``.

        Columns merge by name; a column only some parts have is merged from those.

        Raises:
            InvalidInput: a reference and a window are mixed, or a column's bins differ.
        """
        columns = dict(self.columns)
        skipped = dict(self.skipped)
        for other in others:
            if type(other) is not type(self):
                raise InvalidInput(
                    f"cannot merge a {type(other).__name__} into a {type(self).__name__}: "
                    "merge windows with windows and references with references"
                )
            for name, column in other.columns.items():
                columns[name] = columns[name].merge(column) if name in columns else column
            skipped.update({k: v for k, v in other.skipped.items() if k not in columns})
        return self._replace(columns, skipped)

    def __add__(self: P, other: P) -> P:
        return self.merge(other)

    def _replace(self: P, columns: dict[str, ColumnProfile], skipped: dict[str, str]) -> P:
        return type(self)(columns=columns, skipped=skipped)

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain JSON values (no NaN or infinity), for storing."""
        return {
            "version": PROFILE_VERSION,
            "type": self.kind,
            "columns": [c.to_dict() for c in self.columns.values()],
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls: type[P], data: Mapping[str, Any]) -> P:
        """A profile from :meth:`to_dict`'s output.

        Raises:
            InvalidInput: not a profile of this type, or written by a newer ctloop.
        """
        version = data.get("version")
        if not isinstance(version, int) or version > PROFILE_VERSION:
            raise InvalidInput(
                f"profile layout version {version!r} is not readable by this ctloop (it reads "
                f"up to {PROFILE_VERSION}); upgrade ctloop to read it"
            )
        if data.get("type") != cls.kind:
            raise InvalidInput(f"expected a {cls.kind} profile, got {data.get('type')!r}")
        columns = [ColumnProfile.from_dict(c) for c in data.get("columns", [])]
        return cls(
            columns={c.name: c for c in columns},
            skipped={str(k): str(v) for k, v in dict(data.get("skipped", {})).items()},
        )


@dataclass(eq=False)
class WindowProfile(Profile):
    """A window of current data counted over a reference's bins and categories."""

    kind: ClassVar[str] = "window"


@dataclass(eq=False)
class ReferenceProfile(Profile):
    """The frozen reference drift is measured against. Build with :meth:`from_frame`."""

    kind: ClassVar[str] = "reference"

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        columns: Sequence[str] | None = None,
        bins: int = 10,
        sample_size: int = 10_000,
        seed: int = 0,
        max_categories: int = MAX_CATEGORIES,
        kinds: Mapping[str, str] | None = None,
        like: ReferenceProfile | None = None,
    ) -> ReferenceProfile:
        """Profile a frame: numeric columns by quantile bins, the others by category.

        Kinds follow the detectors (:func:`~ctloop.monitoring.detectors.column_kind`):
        numeric dtypes except bool are numeric; bool, category, object and string
        columns categorical; other dtypes (datetimes, …) are listed in ``skipped``.

        Args:
            df: the reference data.
            columns: the columns to profile (default: all).
            bins: quantile bins per numeric column (fewer when values repeat).
            sample_size: finite values kept per numeric column for exact tests (0: none).
            seed: seeds the sample keys (see :class:`NumericColumn`).
            max_categories: categories kept per categorical column before "other".
            kinds: column name to ``numeric`` or ``categorical``, overriding the dtype.
            like: reuse this profile's kinds and bin edges, so that profiles of several
                parts (days, shards) of a reference can be merged.

        Raises:
            InvalidInput: a named column is missing, or the options are out of range.
        """
        if bins < 1 or sample_size < 0 or max_categories < 1:
            raise InvalidInput(
                f"bins={bins}, sample_size={sample_size}, max_categories={max_categories}: "
                "bins and max_categories must be at least 1, sample_size at least 0"
            )
        names = list(df.columns if columns is None else columns)
        absent = [c for c in names if c not in df.columns]
        if absent:
            raise InvalidInput(
                f"columns {absent} are not in the data; it has: {', '.join(map(str, df.columns))}"
            )
        profile = cls(columns={})
        for name in names:
            series = df[name]
            template = like.columns.get(str(name)) if like is not None else None
            try:
                column = _new_column(
                    str(name), series, (kinds or {}).get(str(name)), template, bins, sample_size
                )
            except InvalidInput as exc:
                if kinds and str(name) in kinds:
                    raise  # asked for something this column cannot be
                profile.skipped[str(name)] = exc.message
                continue
            if isinstance(column, CategoricalColumn):
                column.max_categories = max_categories
            column.observe(series, seed)
            profile.columns[column.name] = column
        return profile

    def empty_window(self, *, sample_size: int | None = None) -> WindowProfile:
        """A window with this profile's bins and nothing counted yet.

        Args:
            sample_size: finite values sampled per numeric column (default: as the
                reference; 0 keeps no sample, so KS and Wasserstein come from the bins).
        """
        columns: dict[str, ColumnProfile] = {}
        for name, column in self.columns.items():
            empty = column.empty_copy()
            if isinstance(empty, NumericColumn) and sample_size is not None:
                empty.sample_size = sample_size
            if isinstance(column, CategoricalColumn) and isinstance(empty, CategoricalColumn):
                empty.pinned = frozenset(column.categories)
            columns[name] = empty
        return WindowProfile(columns=columns)

    def window(
        self, df: pd.DataFrame, *, sample_size: int | None = None, seed: int = 0
    ) -> WindowProfile:
        """Count ``df`` over this profile's bins and categories.

        Columns of the reference that ``df`` lacks are listed in ``skipped``; columns
        the reference does not know are ignored. New categories are kept as their own
        entries (up to the reference's ``max_categories`` of them).
        """
        return self.window_from_batches([df], sample_size=sample_size, seed=seed)

    def window_from_batches(
        self,
        batches: Iterable[pd.DataFrame],
        *,
        sample_size: int | None = None,
        seed: int = 0,
    ) -> WindowProfile:
        """Count a stream of frames, one at a time, over this profile's bins.

        Memory stays that of one batch plus the profile, whatever the number of rows;
        the result equals :meth:`window` of the concatenated frames (the sample is a
        different but equally uniform draw).
        """
        out = self.empty_window(sample_size=sample_size)
        absent = dict.fromkeys(out.columns, 0)  # rows of batches without the column
        seen: set[str] = set()
        for batch in batches:
            for name, column in out.columns.items():
                if name in batch.columns:
                    seen.add(name)
                    column.observe(batch[name], seed)
                else:
                    absent[name] += len(batch)
        for name in list(out.columns):
            if name not in seen:
                del out.columns[name]
                out.skipped[name] = "not in the window"
            else:  # as in the concatenated frame, where those rows would be NaN
                out.columns[name].rows += absent[name]
                out.columns[name].missing += absent[name]
        return out


# --- references from the store ------------------------------------------------------------


def profile_dataset(client: Client, ref: str | DatasetVersion, **options: Any) -> ReferenceProfile:
    """The reference profile of a dataset version's data (``"churn@3"``).

    ``options`` go to :meth:`ReferenceProfile.from_frame` (``columns``, ``bins``, …).

    Raises:
        NotFound: an unknown dataset or version.
        InvalidInput: the version is not a CSV or Parquet table.
    """
    from ctloop.validation.frames import load_frame

    return ReferenceProfile.from_frame(load_frame(client, ref), **options)


def profile_model_training_data(client: Client, ref: str, **options: Any) -> ReferenceProfile:
    """The reference profile of the data a model version was trained on.

    The data is the first input of the version's run logged with context ``training``
    (or, when none is, its first input).

    Raises:
        NotFound: an unknown model or version, or a run that logged no input dataset.
    """
    from ctloop.errors import NotFound

    inputs = client.models.lineage(ref).inputs
    if not inputs:
        raise NotFound(
            f"model version {ref} has no training data on record: its run logged no input "
            "dataset; log one with run.log_input(dataset_version), or profile a dataset "
            "with profile_dataset(client, 'NAME@VERSION')"
        )
    chosen = next((i for i in inputs if i.context == "training"), inputs[0])
    return profile_dataset(client, f"{chosen.dataset}@{chosen.version}", **options)
