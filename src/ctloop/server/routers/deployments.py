"""``/api/v1/deployments``: the desired serving state of endpoints, and its history.

Every endpoint parses its input with a pydantic model, calls the server's local
``client.deployments`` and returns the result through :func:`~ctloop._internal.wire.to_wire`,
so checks, errors and messages are those of the local backend. Replicas poll
``GET /deployments/{name}`` and converge when its ``revision`` moves.

Revision events are recorded with the server's user (the account ``ctloop server`` runs
as) as their actor, until the server authenticates its callers.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt

from ctloop._internal.wire import to_wire
from ctloop.client.deployments import KEEP
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit
from ctloop.serving.entities import Deployment, DeploymentEvent

PARQUET = "application/vnd.apache.parquet"

router = APIRouter(prefix="/deployments", tags=["deployments"], route_class=JsonBodyLimit)


class CreateIn(BaseModel):
    """A new deployment: all traffic to the version a model reference names now."""

    name: str = Field(description="the deployment's name")
    model: str = Field(description="the version to serve", examples=["churn@champion", "churn/3"])
    description: str | None = Field(None, max_length=10_000)
    sticky_key: str | None = Field(
        None, description="header:NAME or field:NAME", examples=["header:X-User-Id"]
    )
    log_payloads: StrictBool = True


class RouteIn(BaseModel):
    version: StrictInt = Field(description="a version of the deployment's model")
    weight: StrictInt = Field(description="whole percent of the traffic; all add up to 100")
    variant: str | None = Field(None, description="its label (default: kept, or canary)")


class TrafficIn(BaseModel):
    """The new state; a field left out (``sticky_key``) or null (the others) is kept."""

    routes: list[RouteIn] | None = Field(None, max_length=1000)
    shadows: list[StrictInt] | None = Field(None, max_length=1000)
    sticky_key: str | None = Field(None, description="header:NAME, field:NAME or null (clear)")
    reason: str | None = Field(None, description="why, kept in the deployment's history")


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(to_wire(value), status_code=status_code)


@router.get("", responses={200: {"model": list[Deployment]}})
def list_deployments(client: ClientDep) -> JSONResponse:
    """Every deployment, by name."""
    return _json(client.deployments.list())


@router.post("", status_code=201, responses={201: {"model": Deployment}})
def create(body: CreateIn, client: ClientDep) -> JSONResponse:
    """Create a deployment sending all traffic to one version (409 if the name is taken)."""
    found = client.deployments.create(
        body.name,
        body.model,
        description=body.description,
        sticky_key=body.sticky_key,
        log_payloads=body.log_payloads,
    )
    return _json(found, status_code=201)


@router.get("/{name}", responses={200: {"model": Deployment}})
def get(name: str, client: ClientDep) -> JSONResponse:
    """One deployment as it should serve now (poll its ``revision``)."""
    return _json(client.deployments.get(name))


@router.put("/{name}/traffic", responses={200: {"model": Deployment}})
def set_traffic(name: str, body: TrafficIn, client: ClientDep) -> JSONResponse:
    """Set routes, shadows and sticky key; a change bumps the revision and is recorded."""
    routes = (
        None if body.routes is None else [(r.version, r.weight, r.variant) for r in body.routes]
    )
    sticky = body.sticky_key if "sticky_key" in body.model_fields_set else KEEP
    found = client.deployments.set_traffic(
        name, routes, shadows=body.shadows, sticky_key=sticky, reason=body.reason
    )
    return _json(found)


@router.get("/{name}/events", responses={200: {"model": list[DeploymentEvent]}})
def history(name: str, client: ClientDep) -> JSONResponse:
    """Every revision of a deployment as it was set, oldest first."""
    return _json(client.deployments.history(name))


@router.get(
    "/{name}/logs/{kind}",
    responses={200: {"content": {PARQUET: {}}, "description": "the rows, as one Parquet file"}},
)
def read_log(
    name: str,
    kind: Literal["predictions", "feedback", "joined"],
    client: ClientDep,
    since: str | None = Query(None, description="first moment included (ISO 8601)"),
    until: str | None = Query(None, description="first moment excluded (ISO 8601)"),
) -> Response:
    """The prediction or feedback log of a deployment, or predictions joined with feedback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    api = client.deployments
    read = {"predictions": api.predictions, "feedback": api.feedback, "joined": api.joined}[kind]
    frame = read(name, since, until)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return Response(sink.getvalue().to_pybytes(), media_type=PARQUET)


@router.get("/{name}/live")
def live(name: str, client: ClientDep) -> JSONResponse:
    """Live figures of the replicas serving a deployment now, added up (null when none runs)."""
    return JSONResponse(client.deployments.live(name))


@router.delete("/{name}", status_code=204)
def delete(name: str, client: ClientDep) -> Response:
    """Delete a deployment and its history."""
    client.deployments.delete(name)
    return Response(status_code=204)
