"""``/api/v1/loop``: the controller's policies, states, leases and events.

Every endpoint parses its input with a pydantic model, calls the server's local
``client.loop`` and returns the result, so checks, errors and messages are those of the
local backend: 400 for bad input, 404 for an unknown deployment, policy or event, 409 when
a transition's revision moved or another controller holds the lease. Times are the
server's clock.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr

from ctloop.loop.entities import LoopEvent, LoopState, StoredPolicy
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

router = APIRouter(prefix="/loop", tags=["loop"], route_class=JsonBodyLimit)

_STATES = "STABLE, TRIGGERED, TRAINING, GATED, CANARY, PROMOTED, ROLLED_BACK or REJECTED"


class PolicyIn(BaseModel):
    """The loop policy of the deployment in the path: its text and its parsed form."""

    source: StrictStr = Field(
        description="the policy as written (YAML), kept verbatim",
        examples=["trigger:\n  drift_share: 0.3\n"],
    )
    policy: dict[str, Any] = Field(
        description="the parsed policy (a JSON object)",
        examples=[{"trigger": {"drift_share": 0.3}}],
    )


class EventIn(BaseModel):
    """An event to append to the deployment's history in its current state."""

    kind: StrictStr = Field(
        description="what happened: lowercase snake_case", examples=["analysis", "note"]
    )
    summary: StrictStr = Field(
        description="one sentence saying what happened and why",
        examples=["canary error rate 0.4% vs champion 0.5%: within bounds"],
    )
    evidence: dict[str, Any] | None = Field(
        None, description="the numbers behind it (NaN is stored as null)"
    )
    links: dict[str, Any] | None = Field(
        None,
        description="what it refers to",
        examples=[{"report_ids": ["3f2a…"], "model_version": 4}],
    )
    owner: StrictStr | None = Field(
        None,
        description="the controller acting: refused (409) if another holds the lease",
        examples=["controller@host:4242"],
    )


class TransitionIn(EventIn):
    """A move of the deployment's controller to a state, with the event saying why."""

    expected_revision: StrictInt = Field(
        description="the revision of the state read; 409 if it moved", examples=[3]
    )
    to_state: StrictStr = Field(description=f"the state to move to: {_STATES}", examples=["GATED"])
    step: StrictInt | None = Field(None, description="the canary step (>= 0)", examples=[0])
    candidate_version: StrictInt | None = Field(
        None, description="the candidate model version", examples=[4]
    )
    data: dict[str, Any] = Field(
        description="the controller's working memory to keep",
        examples=[{"pipeline_run_id": "9c1e…"}],
    )


class LeaseIn(BaseModel):
    """Who takes (or renews) the lease, and for how long."""

    owner: StrictStr = Field(description="the controller", examples=["controller@host:4242"])
    ttl_seconds: StrictFloat | StrictInt = Field(
        description="how long the lease lasts from now (0 < s <= 604800)", examples=[60]
    )


class TransitionOut(BaseModel):
    """The state as written and the event appended."""

    state: LoopState
    event: LoopEvent


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(value, status_code=status_code)


@router.get("/policies", responses={200: {"model": list[StoredPolicy]}})
def list_policies(client: ClientDep) -> JSONResponse:
    """Every stored loop policy, by deployment name."""
    return _json([p.to_dict() for p in client.loop.policies()])


@router.put("/deployments/{deployment}/policy", responses={200: {"model": StoredPolicy}})
def set_policy(deployment: str, body: PolicyIn, client: ClientDep) -> JSONResponse:
    """Set (or replace) the loop policy of a deployment."""
    found = client.loop.set_policy(deployment, source=body.source, policy=body.policy)
    return _json(found.to_dict())


@router.get("/deployments/{deployment}/policy", responses={200: {"model": StoredPolicy}})
def get_policy(deployment: str, client: ClientDep) -> JSONResponse:
    """The loop policy of a deployment."""
    return _json(client.loop.get_policy(deployment).to_dict())


@router.delete("/deployments/{deployment}/policy", status_code=204)
def delete_policy(deployment: str, client: ClientDep) -> Response:
    """Delete the loop policy of a deployment (its state and events stay)."""
    client.loop.delete_policy(deployment)
    return Response(status_code=204)


@router.get("/deployments/{deployment}/state", responses={200: {"model": LoopState}})
def get_state(deployment: str, client: ClientDep) -> JSONResponse:
    """Where the deployment's controller is (STABLE at revision 0 if never run)."""
    return _json(client.loop.state(deployment).to_dict())


@router.post(
    "/deployments/{deployment}/transitions",
    status_code=201,
    responses={201: {"model": TransitionOut}},
)
def transition(deployment: str, body: TransitionIn, client: ClientDep) -> JSONResponse:
    """Move the controller to a state and append the event, if the revision is unchanged."""
    state, event = client.loop.transition(
        deployment,
        expected_revision=body.expected_revision,
        to_state=body.to_state,
        step=body.step,
        candidate_version=body.candidate_version,
        data=body.data,
        kind=body.kind,
        summary=body.summary,
        evidence=body.evidence,
        links=body.links,
        owner=body.owner,
    )
    return _json({"state": state.to_dict(), "event": event.to_dict()}, status_code=201)


@router.post(
    "/deployments/{deployment}/events", status_code=201, responses={201: {"model": LoopEvent}}
)
def record(deployment: str, body: EventIn, client: ClientDep) -> JSONResponse:
    """Append an event without changing the state."""
    event = client.loop.record(
        deployment,
        kind=body.kind,
        summary=body.summary,
        evidence=body.evidence,
        links=body.links,
        owner=body.owner,
    )
    return _json(event.to_dict(), status_code=201)


@router.get("/deployments/{deployment}/events", responses={200: {"model": list[LoopEvent]}})
def list_events(
    deployment: str,
    client: ClientDep,
    limit: int = Query(100, description="at most this many, oldest first (1 to 10,000)"),
    since: str | None = Query(None, description="only those written at or after (ISO 8601)"),
    kind: list[str] | None = Query(None, description="only those of these kinds"),
    after_seq: int | None = Query(None, description="only those after this seq"),
    newest: bool = Query(False, description="the newest `limit` matching (still oldest first)"),
) -> JSONResponse:
    """The events of a deployment, oldest first."""
    found = client.loop.events(
        deployment, limit=limit, since=since, kinds=kind, after_seq=after_seq, newest=newest
    )
    return _json([e.to_dict() for e in found])


@router.put("/deployments/{deployment}/lease", responses={200: {"model": LoopState}})
def acquire_lease(deployment: str, body: LeaseIn, client: ClientDep) -> JSONResponse:
    """Take, renew or extend the lease (409 naming the holder if another has it)."""
    state = client.loop.acquire_lease(deployment, body.owner, body.ttl_seconds)
    return _json(state.to_dict())


@router.delete("/deployments/{deployment}/lease", responses={200: {"model": LoopState}})
def release_lease(
    deployment: str,
    client: ClientDep,
    owner: str = Query(description="the controller giving the lease back"),
) -> JSONResponse:
    """Give the lease back (nothing changes if ``owner`` does not hold it)."""
    return _json(client.loop.release_lease(deployment, owner).to_dict())


@router.get("/events/{event_id}", responses={200: {"model": LoopEvent}})
def get_event(event_id: str, client: ClientDep) -> JSONResponse:
    """One loop event."""
    return _json(client.loop.event(event_id).to_dict())
