"""What the store keeps about the controller: its state, its events and its policies.

A deployment's controller moves through :class:`LoopStateName` (STABLE → TRIGGERED →
TRAINING → GATED → CANARY → PROMOTED | ROLLED_BACK | REJECTED → STABLE). Where it is, with
its working memory, is a :class:`LoopState`; every move (and every analysis worth keeping)
is a :class:`LoopEvent`: what happened, why (the evidence) and what it refers to (the
links). The policy it follows is stored as a :class:`StoredPolicy`: the YAML as given and
its parsed form.

Each class has ``to_dict()`` (plain JSON: datetimes as ISO 8601 text, states as their
names) and ``from_dict()`` reading it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["LoopEvent", "LoopState", "LoopStateName", "StoredPolicy"]


class LoopStateName(StrEnum):
    """The states of a deployment's controller."""

    STABLE = "STABLE"
    TRIGGERED = "TRIGGERED"
    TRAINING = "TRAINING"
    GATED = "GATED"
    CANARY = "CANARY"
    PROMOTED = "PROMOTED"
    ROLLED_BACK = "ROLLED_BACK"
    REJECTED = "REJECTED"


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _maybe_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class LoopState:
    """Where the controller of one deployment is.

    Attributes:
        deployment: the deployment's name.
        state: the current state.
        step: the canary step (an index into the policy's steps), or None.
        candidate_version: the model version being trained, gated or rolled out, or None.
        data: the controller's working memory (trigger evidence, pipeline run id, pending
            intent, failed-check count…), as the last transition wrote it.
        revision: goes up by one on every transition; 0 for a deployment never run. A
            transition names the revision it read, and fails if it moved.
        lease_owner: the controller that holds (or last held) the lease, or None.
        lease_expires_at: when that lease runs out (UTC); an expired lease is free.
        updated_at: when the state was last written (UTC), or None if it never was.
    """

    deployment: str
    state: LoopStateName = LoopStateName.STABLE
    step: int | None = None
    candidate_version: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    revision: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "deployment": self.deployment,
            "state": self.state.value,
            "step": self.step,
            "candidate_version": self.candidate_version,
            "data": self.data,
            "revision": self.revision,
            "lease_owner": self.lease_owner,
            "lease_expires_at": _iso(self.lease_expires_at),
            "updated_at": _iso(self.updated_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopState:
        """A state from :meth:`to_dict`'s output."""
        return cls(
            deployment=str(data["deployment"]),
            state=LoopStateName(data["state"]),
            step=data.get("step"),
            candidate_version=data.get("candidate_version"),
            data=dict(data.get("data") or {}),
            revision=int(data["revision"]),
            lease_owner=data.get("lease_owner"),
            lease_expires_at=_maybe_time(data.get("lease_expires_at")),
            updated_at=_maybe_time(data.get("updated_at")),
        )


@dataclass(frozen=True)
class LoopEvent:
    """One entry of a deployment's loop history: a transition, or a note in a state.

    Attributes:
        id: a random hex id (``ctloop loop explain ID``).
        deployment: the deployment's name.
        seq: its place in the deployment's history: 1, 2, 3…
        created_at: when it was written (UTC, the store's clock).
        from_state, to_state: the state before and after (equal for a note or analysis).
        kind: what happened: ``triggered``, ``training_started``, ``trained``,
            ``gate_passed``, ``gate_failed``, ``canary_step``, ``analysis``, ``promoted``,
            ``rolled_back``, ``rejected``, ``note``…
        summary: one sentence saying what happened and why.
        evidence: the numbers behind the decision (JSON; NaN and infinity stored as null).
        links: what it refers to: ``report_ids``, ``pipeline_run_id``, ``model_version``,
            ``deployment_revision``…
        actor: who wrote it: the lease owner given, else the user.
    """

    id: str
    deployment: str
    seq: int
    created_at: datetime
    from_state: LoopStateName
    to_state: LoopStateName
    kind: str
    summary: str
    evidence: dict[str, Any]
    links: dict[str, Any]
    actor: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "id": self.id,
            "deployment": self.deployment,
            "seq": self.seq,
            "created_at": self.created_at.isoformat(),
            "from_state": self.from_state.value,
            "to_state": self.to_state.value,
            "kind": self.kind,
            "summary": self.summary,
            "evidence": self.evidence,
            "links": self.links,
            "actor": self.actor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopEvent:
        """An event from :meth:`to_dict`'s output."""
        return cls(
            id=str(data["id"]),
            deployment=str(data["deployment"]),
            seq=int(data["seq"]),
            created_at=_time(data["created_at"]),
            from_state=LoopStateName(data["from_state"]),
            to_state=LoopStateName(data["to_state"]),
            kind=str(data["kind"]),
            summary=str(data["summary"]),
            evidence=dict(data.get("evidence") or {}),
            links=dict(data.get("links") or {}),
            actor=str(data["actor"]),
        )


@dataclass(frozen=True)
class StoredPolicy:
    """The loop policy of one deployment, as stored.

    Attributes:
        deployment: the deployment's name.
        source: the policy as the user gave it (YAML text), kept verbatim.
        policy: its parsed form (what ``ctloop.loop.policy`` reads back).
        created_at, updated_at: when it was first set and last replaced (UTC).
        created_by: who first set it.
    """

    deployment: str
    source: str
    policy: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "deployment": self.deployment,
            "source": self.source,
            "policy": self.policy,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredPolicy:
        """A policy from :meth:`to_dict`'s output."""
        return cls(
            deployment=str(data["deployment"]),
            source=str(data["source"]),
            policy=dict(data["policy"]),
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            created_by=data.get("created_by"),
        )
