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

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from ctloop.errors import InvalidInput
from ctloop.monitoring import stats
from ctloop.monitoring.detectors import column_kind
from ctloop.monitoring.profile_columns import (
    MAX_CATEGORIES,
    CategoricalColumn,
    ColumnProfile,
    NumericColumn,
)

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

P = TypeVar("P", bound="Profile")


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

    def window_from_parquet(
        self,
        source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        batch_rows: int = 32_768,
        sample_size: int | None = None,
        seed: int = 0,
        filesystem: Any = None,
    ) -> WindowProfile:
        """Count Parquet data over this profile's bins without holding it in memory.

        Reads only the profiled columns, ``batch_rows`` rows at a time, one file after the
        other (no read-ahead), so memory stays about one batch plus one decompressed row
        group, however many rows there are.

        Args:
            source: a Parquet file, a folder of them, or a list of files (local paths, or
                URIs pyarrow reads such as ``s3://bucket/key``).
            batch_rows: rows converted to a DataFrame at a time.
            sample_size, seed: as for :meth:`window`.
            filesystem: a ``pyarrow.fs`` filesystem to read ``source`` from.

        Raises:
            InvalidInput: ``batch_rows`` below 1, or no Parquet data at ``source``.
        """
        import pyarrow.parquet as pq

        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise InvalidInput(f"batch_rows={batch_rows!r} must be a whole number >= 1")
        files = _parquet_files(source, filesystem)

        def frames() -> Iterator[pd.DataFrame]:
            for path in files:
                try:
                    reader = pq.ParquetFile(path, filesystem=filesystem, pre_buffer=False)
                except (OSError, ValueError) as exc:
                    raise InvalidInput(f"cannot read {path!r} as Parquet: {exc}") from None
                with reader:
                    present = set(reader.schema_arrow.names)
                    wanted = [name for name in self.columns if name in present]
                    for batch in reader.iter_batches(
                        batch_size=batch_rows, columns=wanted, use_threads=False
                    ):
                        yield batch.to_pandas()

        return self.window_from_batches(frames(), sample_size=sample_size, seed=seed)


def _parquet_files(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], filesystem: Any
) -> list[str]:
    """The Parquet files of ``source``: itself, the ``*.parquet`` files under a local
    folder (sorted), or each path of a list."""
    if isinstance(source, list | tuple):
        files = [os.fspath(p) for p in source]
    else:
        path = os.fspath(source)  # type: ignore[arg-type]  # a path here, not a list
        if filesystem is None and "://" not in path and os.path.isdir(path):
            files = sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(path)
                for name in names
                if name.endswith(".parquet") and not name.startswith(".")
            )
        else:
            files = [path]
    if not files:
        raise InvalidInput(f"no Parquet file under {source!r}")
    return files


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
