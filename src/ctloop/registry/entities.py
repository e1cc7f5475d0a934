"""What the registry holds: registered models, their immutable versions, alias moves, lineage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ctloop.tracking.entities import RunInput

__all__ = [
    "AliasEvent",
    "CodeVersion",
    "Lineage",
    "LineageRun",
    "ModelVersion",
    "ModelVersionStatus",
    "RegisteredModel",
]


class ModelVersionStatus(StrEnum):
    """Where a version is in its life (only READY today: registration is synchronous)."""

    READY = "READY"


@dataclass(frozen=True)
class ModelVersion:
    """One immutable, numbered version of a registered model.

    Its package is the run artifact it was registered from, named by content digest;
    nothing can change which package a version is. Tags and aliases may change.
    """

    id: str
    name: str
    version: int
    run_id: str
    artifact_path: str
    package_digest: str
    flavor: str
    status: ModelVersionStatus
    created_at: datetime
    created_by: str | None = None
    description: str | None = None
    signature: dict[str, Any] | None = None  # {"inputs": [...], "output": {...}}
    metrics: dict[str, float] = field(default_factory=dict)  # the run's, at registration
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)  # aliases naming it now

    @property
    def ref(self) -> str:
        """``NAME/VERSION``, the way to name this version anywhere."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: a sequence of versions and the aliases that point into it."""

    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    latest_version: int | None = None
    version_count: int = 0
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias, kept forever.

    ``from_version`` is None when the move created the alias, ``to_version`` None when it
    deleted it. ``action`` is ``set``, ``delete`` or ``rollback``.
    """

    id: int
    name: str
    alias: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    created_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class LineageRun:
    """The run a version came from, as lineage shows it."""

    id: str
    name: str
    experiment: str
    status: str
    user: str
    start_time: datetime
    end_time: datetime | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest values now


@dataclass(frozen=True)
class CodeVersion:
    """The code a run was started from."""

    git_commit: str | None
    git_dirty: bool | None = None
    git_branch: str | None = None
    git_diff_sha256: str | None = None


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from: run, input dataset versions, code, package."""

    version: ModelVersion
    run: LineageRun
    inputs: list[RunInput]
    code: CodeVersion | None
    package_digest: str
    flavor: str
    pipeline_run: str | None = None  # filled in once pipelines record their runs
