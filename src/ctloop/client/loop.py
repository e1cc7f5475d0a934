"""``client.loop``: the continuous-training controller's policies, state, lease and history.

The controller (``ctloop loop run``) keeps all it knows here, so it can be killed in any
state and carry on where it stopped:

- a **policy** per deployment (the YAML as given and its parsed form); the deployments
  with one are what ``ctloop loop run --all`` runs;
- a **state** per deployment (:class:`~ctloop.loop.entities.LoopState`): where it is, the
  candidate version and canary step, its working memory, and a ``revision``. A deployment
  never run is STABLE at revision 0;
- a **lease**: which controller may act on a deployment, until when;
- **events** (:class:`~ctloop.loop.entities.LoopEvent`): every transition and analysis,
  with its evidence and links, numbered 1, 2, 3… per deployment.

:meth:`LoopAPI.transition` writes a state and its event in one transaction, only if the
revision is still the one the caller read (compare-and-set) and no other controller holds
the lease. Times come from this process's clock (over HTTP: the server's). Deleting a
deployment deletes its policy, state and events.

Checks shared with the HTTP backend live in :mod:`ctloop.client._loop_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctloop._internal.environment import current_user
from ctloop._internal.ids import ms_to_datetime
from ctloop._internal.names import check_name
from ctloop.client._loop_checks import (
    check_after_seq,
    check_event_id,
    check_kind,
    check_kinds,
    check_owner,
    check_policy,
    check_revision,
    check_source,
    check_state,
    check_step,
    check_summary,
    check_ttl,
    check_version,
    json_object,
)
from ctloop.client._monitor_checks import check_limit, check_since, to_ms
from ctloop.errors import NotFound
from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName, StoredPolicy
from ctloop.store import deployments as deployments_store
from ctloop.store import loop as store

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ctloop.client._local import LocalContext
    from ctloop.serving.log_reader import Moment

__all__ = [
    "LoopAPI",
    "check_event",
    "check_transition",
    "event_from_row",
    "policy_from_row",
    "state_from_row",
]


# --- rows -> entities ---------------------------------------------------------------------


def _time(ms: int) -> datetime:
    when = ms_to_datetime(ms)
    assert when is not None
    return when


def policy_from_row(row: Mapping[str, Any]) -> StoredPolicy:
    """A :class:`StoredPolicy` from a row of ``store.loop``."""
    return StoredPolicy(
        deployment=row["deployment"],
        source=row["source"],
        policy=dict(row["policy"]),
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        created_by=row["created_by"],
    )


def state_from_row(name: str, row: Mapping[str, Any] | None) -> LoopState:
    """A :class:`LoopState` from a row of ``store.loop`` (None: never written)."""
    if row is None:
        return LoopState(deployment=name)
    return LoopState(
        deployment=name,
        state=LoopStateName(row["state"]),
        step=row["step"],
        candidate_version=row["candidate_version"],
        data=dict(row["data"]),
        revision=int(row["revision"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=ms_to_datetime(row["lease_expires_at"]),
        updated_at=_time(row["updated_at"]),
    )


def event_from_row(row: Mapping[str, Any]) -> LoopEvent:
    """A :class:`LoopEvent` from a row of ``store.loop``."""
    return LoopEvent(
        id=row["id"],
        deployment=row["deployment"],
        seq=int(row["seq"]),
        created_at=_time(row["created_at"]),
        from_state=LoopStateName(row["from_state"]),
        to_state=LoopStateName(row["to_state"]),
        kind=row["kind"],
        summary=row["summary"],
        evidence=dict(row["evidence"]),
        links=dict(row["links"]),
        actor=row["actor"],
    )


def _no_policy(deployment: str) -> NotFound:
    return NotFound(
        f"deployment '{deployment}' has no loop policy; set one with: "
        f"ctloop loop run {deployment} --policy policy.yaml"
    )


# --- checks of both backends --------------------------------------------------------------


def check_event(
    *, kind: object, summary: object, evidence: object, links: object, owner: object
) -> dict[str, Any]:
    """An event's fields (``kind``, ``summary``, ``evidence``, ``links``) and ``owner``."""
    return {
        "kind": check_kind(kind),
        "summary": check_summary(summary),
        "evidence": {} if evidence is None else json_object(evidence, "evidence"),
        "links": {} if links is None else json_object(links, "links"),
        "owner": check_owner(owner, optional=True),
    }


def check_transition(
    *,
    expected_revision: object,
    to_state: object,
    step: object,
    candidate_version: object,
    data: object,
) -> dict[str, Any]:
    """A transition's state fields, checked (``to_state`` as its name)."""
    return {
        "expected_revision": check_revision(expected_revision),
        "to_state": check_state(to_state).value,
        "step": check_step(step),
        "candidate_version": check_version(candidate_version),
        "data": json_object(data, "data"),
    }


class LoopAPI:
    """The controller's policies, states, leases and events. Reached as ``client.loop``."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

    def _deployment_id(self, conn: Connection, name: str) -> str:
        return str(deployments_store.get(conn, check_name(name, "deployment"))["id"])

    # --- policies -------------------------------------------------------------------------

    def set_policy(
        self, deployment: str, *, source: str, policy: Mapping[str, Any]
    ) -> StoredPolicy:
        """Store the loop policy of ``deployment`` as given, replacing any it had.

        Args:
            deployment: an existing deployment.
            source: the policy as the user wrote it (YAML text), kept verbatim.
            policy: its parsed form, a JSON object (``ctloop.loop.policy`` parses and
                checks it; the store keeps it as it is).

        Raises:
            InvalidInput: an empty source, or a policy that is not a JSON object with
                finite numbers.
            NotFound: an unknown deployment.
        """
        check_name(deployment, "deployment")
        text, parsed = check_source(source), check_policy(policy)
        with self._ctx.db.write() as conn:
            deployment_id = store.lock(conn, deployment)
            store.put_policy(
                conn, deployment_id, source=text, policy=parsed, created_by=current_user()
            )
            row = store.get_policy(conn, deployment_id)
        assert row is not None
        return policy_from_row(row)

    def get_policy(self, deployment: str) -> StoredPolicy:
        """The loop policy of ``deployment``.

        Raises:
            NotFound: an unknown deployment, or one without a policy (saying how to set one).
        """
        with self._ctx.db.read() as conn:
            row = store.get_policy(conn, self._deployment_id(conn, deployment))
        if row is None:
            raise _no_policy(deployment)
        return policy_from_row(row)

    def policies(self) -> list[StoredPolicy]:
        """Every stored policy, by deployment name (what ``ctloop loop run --all`` runs)."""
        with self._ctx.db.read() as conn:
            return [policy_from_row(r) for r in store.list_policies(conn)]

    def delete_policy(self, deployment: str) -> None:
        """Delete the loop policy of ``deployment`` (its state and events stay).

        Raises:
            NotFound: an unknown deployment, or one without a policy.
        """
        with self._ctx.db.write() as conn:
            if not store.remove_policy(conn, self._deployment_id(conn, deployment)):
                raise _no_policy(deployment)

    # --- state ----------------------------------------------------------------------------

    def state(self, deployment: str) -> LoopState:
        """Where the controller of ``deployment`` is (STABLE at revision 0 if never run).

        Raises:
            NotFound: an unknown deployment.
        """
        with self._ctx.db.read() as conn:
            row = store.get_state(conn, self._deployment_id(conn, deployment))
        return state_from_row(deployment, row)

    def transition(
        self,
        deployment: str,
        *,
        expected_revision: int,
        to_state: LoopStateName | str,
        step: int | None = None,
        candidate_version: int | None = None,
        data: Mapping[str, Any],
        kind: str,
        summary: str,
        evidence: Mapping[str, Any] | None = None,
        links: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> tuple[LoopState, LoopEvent]:
        """Move ``deployment`` to ``to_state`` and write why, in one transaction.

        The state is written only if its revision is still ``expected_revision``; it
        becomes ``expected_revision + 1`` and the event gets the deployment's next ``seq``.
        ``to_state`` may be the current state (an analysis that changes only ``data``).

        Args:
            expected_revision: the revision of the state the decision was made on.
            to_state: the state to move to (a :class:`LoopStateName` or its name).
            step, candidate_version: the canary step and candidate version (None: none).
            data: the controller's working memory to keep (replaces the previous one).
            kind, summary: what happened (``gate_passed``…) and one sentence saying why.
            evidence: the numbers behind it (JSON; NaN and infinity are stored as None).
            links: what it refers to (``report_ids``, ``pipeline_run_id``,
                ``model_version``, ``deployment_revision``…).
            owner: the controller acting; when given, refused if another owner holds an
                unexpired lease. It is also the event's actor (else the user).

        Returns:
            The state as written and the event appended.

        Raises:
            InvalidInput: an unknown state, a negative step, or data, evidence or links that
                are not JSON objects.
            NotFound: an unknown deployment.
            Conflict: the revision moved (someone else acted) or another owner holds the
                lease; nothing was written.
        """
        check_name(deployment, "deployment")
        change = check_transition(
            expected_revision=expected_revision,
            to_state=to_state,
            step=step,
            candidate_version=candidate_version,
            data=data,
        )
        event = check_event(kind=kind, summary=summary, evidence=evidence, links=links, owner=owner)
        who = event.pop("owner")
        revision = change.pop("expected_revision")
        change["state"] = change.pop("to_state")
        with self._ctx.db.write() as conn:
            written, appended = store.transition(
                conn,
                deployment,
                expected_revision=revision,
                state=change,
                event={**event, "actor": who or current_user()},
                owner=who,
            )
        return state_from_row(deployment, written), event_from_row(appended)

    def record(
        self,
        deployment: str,
        *,
        kind: str,
        summary: str,
        evidence: Mapping[str, Any] | None = None,
        links: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> LoopEvent:
        """Append an event to ``deployment``'s history without changing its state.

        The event's from and to state are the current state; the revision stays.

        Raises:
            InvalidInput: a bad kind or summary, or evidence or links that are not JSON.
            NotFound: an unknown deployment.
            Conflict: ``owner`` is given and another owner holds an unexpired lease.
        """
        check_name(deployment, "deployment")
        event = check_event(kind=kind, summary=summary, evidence=evidence, links=links, owner=owner)
        who = event.pop("owner")
        with self._ctx.db.write() as conn:
            row = store.record(
                conn, deployment, event={**event, "actor": who or current_user()}, owner=who
            )
        return event_from_row(row)

    # --- lease ----------------------------------------------------------------------------

    def acquire_lease(self, deployment: str, owner: str, ttl_seconds: float) -> LoopState:
        """Let ``owner`` alone act on ``deployment`` for ``ttl_seconds`` from now.

        Succeeds when the lease is free, expired, or already ``owner``'s (then it is
        extended: call it again to renew). The state's revision does not change.

        Raises:
            InvalidInput: a bad owner, or a ttl not in (0, 7 days].
            NotFound: an unknown deployment.
            Conflict: another owner holds an unexpired lease (named, with its expiry).
        """
        check_name(deployment, "deployment")
        who, ttl_ms = check_owner(owner), check_ttl(ttl_seconds)
        assert who is not None
        with self._ctx.db.write() as conn:
            row = store.acquire_lease(conn, deployment, who, ttl_ms)
        return state_from_row(deployment, row)

    def release_lease(self, deployment: str, owner: str) -> LoopState:
        """Give back ``owner``'s lease of ``deployment``.

        Changes nothing when ``owner`` does not hold it (it expired and another took it,
        or it was released already), so it is safe to call on the way out.

        Raises:
            NotFound: an unknown deployment.
        """
        check_name(deployment, "deployment")
        who = check_owner(owner)
        assert who is not None
        with self._ctx.db.write() as conn:
            row = store.release_lease(conn, deployment, who)
        return state_from_row(deployment, row)

    # --- events ---------------------------------------------------------------------------

    def events(
        self,
        deployment: str,
        *,
        limit: int = 100,
        since: Moment = None,
        kinds: Sequence[str] | None = None,
        after_seq: int | None = None,
        newest: bool = False,
    ) -> list[LoopEvent]:
        """The events of ``deployment``, oldest first (a changelog reads top-down).

        Args:
            limit: at most this many (1 to 10,000): the first ones matching, or the last
                ones with ``newest``.
            since: only those written at or after this moment.
            kinds: only those of these kinds.
            after_seq: only those after this ``seq`` (page on with the last one's seq).
            newest: the newest ``limit`` matching events (still oldest first).

        Raises:
            NotFound: an unknown deployment.
        """
        count, start = check_limit(limit), check_since(since)
        chosen, after = check_kinds(kinds), check_after_seq(after_seq)
        with self._ctx.db.read() as conn:
            rows = store.list_events(
                conn,
                self._deployment_id(conn, deployment),
                limit=count,
                since=None if start is None else to_ms(start),
                kinds=chosen,
                after_seq=after,
                newest=bool(newest),
            )
        return [event_from_row(r) for r in rows]

    def event(self, event_id: str) -> LoopEvent:
        """The loop event ``event_id`` (what ``ctloop loop explain`` shows).

        Raises:
            NotFound: no event has that id.
        """
        check_event_id(event_id)
        with self._ctx.db.read() as conn:
            row = store.get_event(conn, event_id)
        if row is None:
            raise NotFound(
                f"no loop event with id '{event_id}'; list a deployment's events with: "
                "ctloop loop history DEPLOYMENT"
            )
        return event_from_row(row)
