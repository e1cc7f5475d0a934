"""What one evaluation of the triggers reads, and what a trigger that fires says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctloop.errors import NotFound
from ctloop.loop.entities import LoopEvent
from ctloop.loop.events import RETRAIN_ENDED, SPENDING
from ctloop.loop.guards import newest

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.loop.policy import Policy
    from ctloop.monitoring.entities import ReportSummary
    from ctloop.registry.entities import Lineage

__all__ = ["Look", "TriggerDecision"]


@dataclass(frozen=True)
class TriggerDecision:
    """A trigger that fires now, and why.

    Attributes:
        kind: ``manual``, ``performance``, ``drift``, ``new_data`` or ``schedule``.
        summary: one sentence for ``ctloop loop history``, naming values and thresholds.
        evidence: the numbers behind it, with the thresholds (JSON).
        links: what it spends (JSON): ``report_ids``, ``dataset`` (``NAME@N``),
            ``manual_event_id`` or ``schedule_due`` (ISO 8601).
    """

    kind: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict, hash=False)
    links: dict[str, Any] = field(default_factory=dict, hash=False)


class Look:
    """One evaluation's view of the store: the inputs, and what it read once."""

    def __init__(
        self,
        client: Client,
        deployment: str,
        policy: Policy,
        now: datetime,
        events: list[LoopEvent],
    ) -> None:
        self.client, self.deployment, self.policy = client, deployment, policy
        self.now, self.events = now, events
        self._champion: tuple[Lineage | None, str] | None = None

    @property
    def model(self) -> str:
        return self.policy.model or self.client.deployments.get(self.deployment).model

    def champion(self) -> tuple[Lineage | None, str]:
        """The lineage of ``MODEL@champion`` (None when there is none), and that ref."""
        if self._champion is None:
            ref = f"{self.model}@champion"
            try:
                self._champion = (self.client.models.lineage(ref), ref)
            except NotFound:
                self._champion = (None, ref)
        return self._champion

    def spent(self, key: str) -> list[Any]:
        """The values of ``links[key]`` of the spending events, oldest first."""
        return [e.links[key] for e in self.events if e.kind in SPENDING and key in e.links]

    def fresh_reports(self, count: int) -> list[ReportSummary]:
        """The newest ``count`` reports built after the last retrain ended, newest first,
        stopping at the first one a trigger spent (fewer than ``count``: not enough)."""
        ended = newest(self.events, RETRAIN_ENDED)
        cutoff = None if ended is None else ended.created_at
        spent = {r for ids in self.spent("report_ids") for r in ids}
        # a few more than needed: `since` includes reports built in the cutoff's millisecond
        reports = self.client.monitors.reports(self.deployment, limit=count + 10, since=cutoff)
        out: list[ReportSummary] = []
        for summary in reports:
            if cutoff is not None and summary.created_at <= cutoff:
                continue
            if summary.id in spent or len(out) == count:
                break
            out.append(summary)
        return out
