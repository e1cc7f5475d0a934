"""What the store holds about datasets and their versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Dataset:
    """A named, versioned dataset."""

    id: str
    name: str
    created_at: datetime
    description: str | None = None
    latest_version: int | None = None
    version_count: int = 0
    updated_at: datetime | None = None  # when the latest version was added


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset: its content digest and what it looks like."""

    id: str
    name: str
    version: int
    digest: str
    kind: str  # file | dir
    size: int
    file_count: int
    created_at: datetime
    format: str | None = None  # csv | parquet
    source_path: str | None = None
    row_count: int | None = None
    schema: list[dict[str, Any]] | None = None  # [{"name", "type", "nullable"}]
    profile: dict[str, Any] | None = None  # per-column statistics
    created_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # True only on the object returned by the ``add`` call that created this version;
    # False when the content was unchanged or the version was read back later.
    is_new: bool = field(default=False, compare=False)

    @property
    def ref(self) -> str:
        """``NAME@VERSION``, the way to name this version anywhere."""
        return f"{self.name}@{self.version}"

    @property
    def columns(self) -> list[str]:
        """Column names of a tabular version (empty when it has no schema)."""
        return [str(c["name"]) for c in self.schema or []]
