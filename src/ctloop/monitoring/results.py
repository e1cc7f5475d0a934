"""What a drift check reports, shared by the sample-based detectors and the profile path."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DatasetDrift", "DriftResult"]


@dataclass(frozen=True)
class DriftResult:
    """The drift of one column between a reference and a current window.

    Attributes:
        column: the column name.
        kind: ``numeric`` or ``categorical``.
        method: the test or distance (``ks``, ``wasserstein``, ``psi``, ``jensenshannon``,
            ``hellinger``, ``chisquare``, ``linf``, ``ztest``).
        score: the statistic (a distance, or the test statistic).
        threshold: the score (or p-value, see ``p_value``) at which it counts as drift.
        drifted: whether it did.
        p_value: for the tests that have one (KS, chi-squared, z-test), else None.
        reference_rows, current_rows: rows seen (including missing values).
        missing_share_reference, missing_share_current: the share of NaN/None.
        infinite_share_reference, infinite_share_current: the share of ±inf (numeric).
        note: why a result is special (an empty window, a constant column, …), else None.
    """

    column: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool
    p_value: float | None = None
    reference_rows: int = 0
    current_rows: int = 0
    missing_share_reference: float = 0.0
    missing_share_current: float = 0.0
    infinite_share_reference: float = 0.0
    infinite_share_current: float = 0.0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetDrift:
    """Per-column results and the dataset verdict: drift when the share of drifted
    columns is at least ``drift_share``."""

    columns: list[DriftResult]
    drift_share: float
    drifted_share: float
    drifted: bool
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not tested

    @property
    def drifted_columns(self) -> list[str]:
        return [r.column for r in self.columns if r.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [r.to_dict() for r in self.columns],
            "drift_share": self.drift_share,
            "drifted_share": self.drifted_share,
            "drifted": self.drifted,
            "skipped": dict(self.skipped),
        }
