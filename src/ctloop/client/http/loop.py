"""``client.loop`` over HTTP: the same methods, checks and errors as the local backend.

Arguments are checked here with the local API's own checks, so bad input fails before any
request with the same message; the server checks again. Times (event times, lease expiry)
are the server's clock, and events are written with the lease owner, else the server's
user, as their actor. Taking a lease is a PUT and giving it back a DELETE, so both are
retried on a dropped connection (repeating either is harmless); a transition is a POST and
is not retried: its revision check makes a lost answer safe to find out about by reading
the state again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ctloop._internal.names import check_name
from ctloop.client._http import HttpContext
from ctloop.client._loop_checks import (
    check_after_seq,
    check_event_id,
    check_kinds,
    check_owner,
    check_policy,
    check_source,
    check_ttl,
)
from ctloop.client._monitor_checks import check_limit, check_since
from ctloop.client.loop import check_event, check_transition
from ctloop.loop.entities import LoopEvent, LoopState, LoopStateName, StoredPolicy

if TYPE_CHECKING:
    from ctloop.serving.log_reader import Moment

__all__ = ["HttpLoopAPI"]


def _path(deployment: str, *rest: str) -> str:
    segment = quote(check_name(deployment, "deployment"), safe="").replace(".", "%2E")
    return "/".join(["/loop/deployments", segment, *rest])


class HttpLoopAPI:
    """The loop state of a ctloop server (see :class:`~ctloop.client.loop.LoopAPI`).

    Same methods, checks and errors as the local backend.
    """

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    # --- policies -------------------------------------------------------------------------

    def set_policy(
        self, deployment: str, *, source: str, policy: Mapping[str, Any]
    ) -> StoredPolicy:
        """Store the loop policy of ``deployment`` as given (see the local backend)."""
        body = {"source": check_source(source), "policy": check_policy(policy)}
        found = self._ctx.request("PUT", _path(deployment, "policy"), json=body)
        return StoredPolicy.from_dict(found)

    def get_policy(self, deployment: str) -> StoredPolicy:
        """The loop policy of ``deployment``."""
        return StoredPolicy.from_dict(self._ctx.request("GET", _path(deployment, "policy")))

    def policies(self) -> list[StoredPolicy]:
        """Every stored policy, by deployment name."""
        return [StoredPolicy.from_dict(p) for p in self._ctx.request("GET", "/loop/policies")]

    def delete_policy(self, deployment: str) -> None:
        """Delete the loop policy of ``deployment`` (its state and events stay)."""
        self._ctx.request("DELETE", _path(deployment, "policy"))

    # --- state ----------------------------------------------------------------------------

    def state(self, deployment: str) -> LoopState:
        """Where the controller of ``deployment`` is."""
        return LoopState.from_dict(self._ctx.request("GET", _path(deployment, "state")))

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
        """Move ``deployment`` to ``to_state`` and write why, in one transaction."""
        path = _path(deployment, "transitions")
        body = {
            **check_transition(
                expected_revision=expected_revision,
                to_state=to_state,
                step=step,
                candidate_version=candidate_version,
                data=data,
            ),
            **check_event(kind=kind, summary=summary, evidence=evidence, links=links, owner=owner),
        }
        found = self._ctx.request("POST", path, json=body)
        return LoopState.from_dict(found["state"]), LoopEvent.from_dict(found["event"])

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
        """Append an event to ``deployment``'s history without changing its state."""
        path = _path(deployment, "events")
        body = check_event(kind=kind, summary=summary, evidence=evidence, links=links, owner=owner)
        return LoopEvent.from_dict(self._ctx.request("POST", path, json=body))

    # --- lease ----------------------------------------------------------------------------

    def acquire_lease(self, deployment: str, owner: str, ttl_seconds: float) -> LoopState:
        """Let ``owner`` alone act on ``deployment`` for ``ttl_seconds`` from now."""
        path = _path(deployment, "lease")
        check_ttl(ttl_seconds)
        body = {"owner": check_owner(owner), "ttl_seconds": ttl_seconds}
        return LoopState.from_dict(self._ctx.request("PUT", path, json=body))

    def release_lease(self, deployment: str, owner: str) -> LoopState:
        """Give back ``owner``'s lease of ``deployment`` (nothing if it does not hold it)."""
        path = _path(deployment, "lease")
        params = {"owner": check_owner(owner)}
        return LoopState.from_dict(self._ctx.request("DELETE", path, params=params))

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
        """The events of ``deployment``, oldest first."""
        path = _path(deployment, "events")
        params: dict[str, Any] = {"limit": check_limit(limit)}
        start, chosen, after = check_since(since), check_kinds(kinds), check_after_seq(after_seq)
        if start is not None:
            params["since"] = start.isoformat()
        if chosen is not None:
            params["kind"] = chosen
        if after is not None:
            params["after_seq"] = after
        if newest:
            params["newest"] = "true"
        return [LoopEvent.from_dict(e) for e in self._ctx.request("GET", path, params=params)]

    def event(self, event_id: str) -> LoopEvent:
        """The loop event ``event_id``."""
        path = "/loop/events/" + quote(check_event_id(event_id), safe="")
        return LoopEvent.from_dict(self._ctx.request("GET", path))
