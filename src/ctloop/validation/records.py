"""What the store keeps about a suite attached to a dataset version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["SuiteRecord"]


@dataclass(frozen=True)
class SuiteRecord:
    """A validation suite attached to a dataset version under a name.

    The suite's YAML is an object in the artifact store (``digest``); attaching again under
    the same name replaces it. Read the suite itself with ``client.datasets.get_suite``.
    """

    dataset: str  # NAME@VERSION
    dataset_version_id: str
    name: str
    digest: str  # sha256 of the suite's YAML
    created_at: datetime
    created_by: str | None = None
