"""What changed between two dataset versions: content, schema and profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctloop.data.entities import DatasetVersion

__all__ = ["Change", "ColumnChange", "ColumnStatsChange", "DatasetDiff", "diff_versions"]

# Per-column statistics compared between two profiles.
STATS = ("null_count", "mean", "std", "min", "max", "distinct")


@dataclass(frozen=True)
class Change:
    """A value before (in ``a``) and after (in ``b``)."""

    before: Any
    after: Any

    @property
    def delta(self) -> float | None:
        """``after - before`` for numbers, else None."""
        numbers = (int, float)
        if (
            isinstance(self.before, numbers)
            and isinstance(self.after, numbers)
            and not isinstance(self.before, bool)
            and not isinstance(self.after, bool)
        ):
            return self.after - self.before
        return None


@dataclass(frozen=True)
class ColumnChange:
    """A column present in both versions whose type or nullability changed."""

    name: str
    type: Change | None = None
    nullable: Change | None = None


@dataclass(frozen=True)
class ColumnStatsChange:
    """How the profile of a column present in both versions moved."""

    name: str
    changes: dict[str, Change] = field(default_factory=dict)  # null_count, mean, std, …
    new_categories: list[Any] = field(default_factory=list)  # in b's top, not in a's
    vanished_categories: list[Any] = field(default_factory=list)  # in a's top, not in b's


@dataclass(frozen=True)
class DatasetDiff:
    """Differences from version ``a`` to version ``b`` (each field None when equal)."""

    a: str
    b: str
    digest: Change | None = None
    kind: Change | None = None
    size: Change | None = None
    file_count: Change | None = None
    format: Change | None = None
    row_count: Change | None = None
    added_columns: list[dict[str, Any]] = field(default_factory=list)
    removed_columns: list[dict[str, Any]] = field(default_factory=list)
    changed_columns: list[ColumnChange] = field(default_factory=list)
    column_stats: list[ColumnStatsChange] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when both versions hold the same content."""
        return self.digest is None and self.kind is None

    @property
    def schema_changed(self) -> bool:
        """True when a column was added, removed, retyped or changed nullability."""
        return bool(self.added_columns or self.removed_columns or self.changed_columns)


def _change(before: Any, after: Any) -> Change | None:
    return None if before == after else Change(before, after)


def diff_versions(a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    """Compare two versions (of one dataset or of two): content, schema and profile."""
    a_schema = {c["name"]: c for c in a.schema or []}
    b_schema = {c["name"]: c for c in b.schema or []}
    common = [n for n in b_schema if n in a_schema]
    changed: list[ColumnChange] = []
    for name in common:
        before, after = a_schema[name], b_schema[name]
        type_change = _change(before.get("type"), after.get("type"))
        null_change = _change(before.get("nullable"), after.get("nullable"))
        if type_change or null_change:
            changed.append(ColumnChange(name, type_change, null_change))
    return DatasetDiff(
        a=a.ref,
        b=b.ref,
        digest=_change(a.digest, b.digest),
        kind=_change(a.kind, b.kind),
        size=_change(a.size, b.size),
        file_count=_change(a.file_count, b.file_count),
        format=_change(a.format, b.format),
        row_count=_change(a.row_count, b.row_count),
        added_columns=[c for n, c in b_schema.items() if n not in a_schema],
        removed_columns=[c for n, c in a_schema.items() if n not in b_schema],
        changed_columns=changed,
        column_stats=_stats_changes(a, b, common),
    )


def _stats_changes(
    a: DatasetVersion, b: DatasetVersion, names: list[str]
) -> list[ColumnStatsChange]:
    a_cols = (a.profile or {}).get("columns") or {}
    b_cols = (b.profile or {}).get("columns") or {}
    out: list[ColumnStatsChange] = []
    for name in names:
        before, after = a_cols.get(name), b_cols.get(name)
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        changes = {
            stat: c
            for stat in STATS
            if (stat in before or stat in after)
            and (c := _change(before.get(stat), after.get(stat))) is not None
        }
        a_top = [t["value"] for t in before.get("top") or []]
        b_top = [t["value"] for t in after.get("top") or []]
        new = [v for v in b_top if v not in a_top]
        vanished = [v for v in a_top if v not in b_top]
        if changes or new or vanished:
            out.append(ColumnStatsChange(name, changes, new, vanished))
    return out
