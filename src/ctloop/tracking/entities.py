"""What the store holds about experiments and runs, as read back by the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Life cycle of a run (MLflow's names)."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    created_at: datetime
    description: str | None = None
    run_count: int | None = None


@dataclass(frozen=True)
class Metric:
    """One logged point of a metric."""

    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class RunArtifact:
    """A file or folder logged by a run, stored by digest in the artifact store."""

    path: str
    digest: str
    kind: str  # file | dir
    size: int
    file_count: int


@dataclass(frozen=True)
class RunInput:
    """A dataset version a run consumed."""

    dataset: str
    version: int
    digest: str
    dataset_version_id: str
    context: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: identity, status, timing, what it logged and where it ran."""

    id: str
    experiment_id: str
    experiment: str
    name: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None
    user: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each key
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[RunArtifact] = field(default_factory=list)
    inputs: list[RunInput] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)  # git_commit, git_dirty, …
    environment: dict[str, Any] = field(default_factory=dict)  # python, platform, packages
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (None while running)."""
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass(frozen=True)
class RunPage:
    """One page of a run search; pass ``next_page_token`` back for the next page."""

    runs: list[RunRecord]
    next_page_token: str | None
