"""``/api/v1/pipeline-runs`` and ``/api/v1/step-runs``: the records pipelines leave behind.

What ``Pipeline.run`` writes through ``client.pipelines`` on a remote store, and what
``ctloop pipeline runs|show`` read:

- ``POST /pipeline-runs``: a new run with its planned steps (all PENDING) → 201, the run;
- ``GET /pipeline-runs?pipeline=&status=&limit=``: runs, newest first, with their steps;
- ``GET /pipeline-runs/{id}``: one run (a unique id prefix of 6+ characters works too);
- ``POST /pipeline-runs/{id}/end``: its final status (COMPLETED or FAILED) → 204;
- ``PATCH /step-runs/{id}``: change a step run's status, timings, cache facts, inputs,
  outputs, error, logs → 204;
- ``GET /step-runs?cache_key=``: completed step runs with that cache key whose outputs are
  all in the store (a cache hit reuses them; the newest first).

Every endpoint parses its input with a pydantic model and calls the server's local
``client.pipelines``, so checks, errors and messages are those of the local backend.
Requests carry timestamps as milliseconds since the epoch; answers carry ISO 8601 strings,
like every other router. JSON bodies are limited to ``CTLOOP_SERVER_MAX_BODY_BYTES``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ctloop.client.http.pipelines import run_to_wire, step_to_wire
from ctloop.client.pipelines import MAX_LIST
from ctloop.errors import InvalidInput
from ctloop.pipelines.entities import PipelineStatus, StepStatus
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

router = APIRouter(tags=["pipelines"], route_class=JsonBodyLimit)

# Milliseconds since the epoch up to the end of year 9999 (what a datetime can hold).
MAX_MS = 253_402_300_799_999
ID_LENGTH = 32


# --- what travels ------------------------------------------------------------------------


class ArtifactRefModel(BaseModel):
    """An output (or input) of a step: a content-addressed object and how to read it."""

    model_config = ConfigDict(extra="forbid")

    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256, or a folder's tree digest")
    kind: Literal["file", "dir"]
    materializer: str = Field(max_length=256, examples=["dataframe/1"])
    type: str = Field("", max_length=1024, description="the Python type it was made from")
    size: int = Field(0, ge=0, description="bytes")


class StepRunOut(BaseModel):
    """One step of one pipeline run."""

    id: str
    pipeline_run_id: str
    name: str
    step: str = Field(description="module:qualname of the step function")
    status: StepStatus
    attempts: int
    cache_key: str | None
    cache_hit: bool
    cached_from: str | None = Field(description="the step run whose outputs a cache hit reused")
    params: dict[str, Any]
    inputs: dict[str, ArtifactRefModel]
    outputs: dict[str, ArtifactRefModel]
    upstream: list[str] = Field(description="names of the steps it waited for")
    start_time: datetime | None
    end_time: datetime | None
    error: str | None
    logs: dict[str, Any] | None = Field(description='{"stdout": digest, "stderr": digest}')


class PipelineRunOut(BaseModel):
    """One execution of a pipeline, with its steps in plan order."""

    id: str
    pipeline: str
    status: PipelineStatus
    executor: str
    params: dict[str, Any]
    start_time: datetime
    user: str
    run_id: str | None = Field(description="the tracking run its steps log to")
    end_time: datetime | None
    error: str | None
    graph: list[dict[str, Any]] = Field(description="[{name, step, upstream}] in plan order")
    steps: list[StepRunOut]


class GraphNode(BaseModel):
    """One node of a planned graph (further keys, such as ``outputs``, are kept)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=256)
    step: str = Field("", max_length=512, description="module:qualname")
    upstream: list[str] = Field(default_factory=list)


class StepIn(BaseModel):
    """A planned step of a new pipeline run."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=ID_LENGTH)
    name: str = Field(min_length=1, max_length=256, description="unique within the run")
    step: str = Field(min_length=1, max_length=512, description="module:qualname")
    params: dict[str, Any] = Field(default_factory=dict)
    upstream: list[str] = Field(default_factory=list)


class PipelineRunIn(BaseModel):
    """A new pipeline run (RUNNING) and its planned steps (PENDING)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=ID_LENGTH)
    pipeline: str = Field(min_length=1, max_length=256, description="the pipeline's name")
    run_id: str | None = Field(
        None, max_length=ID_LENGTH, description="an existing tracking run its steps log to"
    )
    executor: str = Field(min_length=1, max_length=16, examples=["inline", "local", "ray"])
    params: dict[str, Any] = Field(default_factory=dict)
    graph: list[GraphNode] = Field(default_factory=list, description="the plan, in order")
    start_time: int = Field(ge=0, le=MAX_MS, description="milliseconds since the epoch")
    user: str = Field(min_length=1, max_length=256)
    steps: list[StepIn] = Field(default_factory=list)


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: PipelineStatus = Field(description="COMPLETED or FAILED")
    error: str | None = Field(None, description="what went wrong, for a FAILED run")


class StepUpdateIn(BaseModel):
    """Fields of a step run to change; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    status: StepStatus | None = None
    cache_key: str | None = Field(None, max_length=64)
    cache_hit: bool | None = None
    cached_from: str | None = Field(None, max_length=ID_LENGTH)
    attempts: int | None = Field(None, ge=0, le=2**31 - 1)
    inputs: dict[str, ArtifactRefModel] | None = None
    outputs: dict[str, ArtifactRefModel] | None = None
    start_time: int | None = Field(None, ge=0, le=MAX_MS)
    end_time: int | None = Field(None, ge=0, le=MAX_MS)
    error: str | None = None
    logs: dict[str, str] | None = None


# Columns that may not be null: a null in the request is refused rather than stored.
_NOT_NULL = ("status", "cache_hit", "attempts", "inputs", "outputs")


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(value, status_code=status_code)


# --- pipeline runs -------------------------------------------------------------------------


@router.post("/pipeline-runs", status_code=201, responses={201: {"model": PipelineRunOut}})
def create_pipeline_run(body: PipelineRunIn, client: ClientDep) -> JSONResponse:
    """Record a new pipeline run (RUNNING) and its planned steps (PENDING).

    409 when the run id or a step id is taken; 404 when ``run_id`` names no tracking run.
    """
    run = body.model_dump(exclude={"steps"})
    steps = [s.model_dump() for s in body.steps]
    return _json(run_to_wire(client.pipelines.create_run(run, steps)), 201)


@router.get("/pipeline-runs", responses={200: {"model": list[PipelineRunOut]}})
def list_pipeline_runs(
    client: ClientDep,
    pipeline: str | None = Query(None, description="only runs of this pipeline"),
    status: PipelineStatus | None = Query(None, description="only runs in this status"),
    limit: int = Query(50, ge=1, le=MAX_LIST, description=f"at most this many (1-{MAX_LIST})"),
) -> JSONResponse:
    """Pipeline runs, newest first, each with its steps."""
    runs = client.pipelines.list(pipeline, status, limit)
    return _json([run_to_wire(r) for r in runs])


@router.get("/pipeline-runs/{pipeline_run_id}", responses={200: {"model": PipelineRunOut}})
def get_pipeline_run(pipeline_run_id: str, client: ClientDep) -> JSONResponse:
    """One pipeline run, by id or a unique prefix of at least 6 characters."""
    return _json(run_to_wire(client.pipelines.get(pipeline_run_id)))


@router.post("/pipeline-runs/{pipeline_run_id}/end", status_code=204)
def end_pipeline_run(pipeline_run_id: str, body: EndIn, client: ClientDep) -> Response:
    """Set the run's final status and end time (and the error of a failed run)."""
    client.pipelines.end_run(pipeline_run_id, body.status, body.error)
    return Response(status_code=204)


# --- step runs -----------------------------------------------------------------------------


@router.patch("/step-runs/{step_run_id}", status_code=204)
def update_step_run(step_run_id: str, body: StepUpdateIn, client: ClientDep) -> Response:
    """Change a step run's status, timings, cache facts, inputs, outputs, error or logs."""
    fields = body.model_dump(include=body.model_fields_set)
    nulls = [k for k in _NOT_NULL if k in fields and fields[k] is None]
    if nulls:
        raise InvalidInput(f"invalid request: {', '.join(nulls)} of a step run cannot be null")
    client.pipelines.update_step(step_run_id, **fields)
    return Response(status_code=204)


@router.get("/step-runs", responses={200: {"model": list[StepRunOut]}})
def find_step_runs(
    client: ClientDep,
    cache_key: str | None = Query(
        None, max_length=64, description="the cache key of a step (code, params, inputs)"
    ),
    output: str | None = Query(
        None,
        min_length=8,
        max_length=64,
        description="a digest (or its first 8+ hex characters) of an artifact a step wrote",
    ),
) -> JSONResponse:
    """Step runs by cache key, or by an artifact they output; give exactly one.

    ``cache_key``: the completed step run whose outputs are all still stored (a cache hit;
    at most one, empty on a miss). ``output``: the step runs that wrote (COMPLETED) or
    reused (CACHED) that artifact, oldest first.
    """
    if (cache_key is None) == (output is None):
        raise InvalidInput("give exactly one of the query parameters cache_key and output")
    if output is not None:
        return _json([step_to_wire(s) for s in client.pipelines.producers(output)])
    assert cache_key is not None
    hit = client.pipelines.find_cached(cache_key)
    return _json([] if hit is None else [step_to_wire(hit)])
