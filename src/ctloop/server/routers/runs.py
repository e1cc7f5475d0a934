"""``/api/v1/runs``: create runs, log to them, read and search them.

Every endpoint parses its body with a pydantic model, calls the local ``client.runs`` and
returns its result through :func:`~ctloop._internal.wire.to_wire` (non-finite metric values
travel as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``). Request bodies over
``CTLOOP_SERVER_MAX_BODY_BYTES`` (see :class:`~ctloop.server.limits.JsonBodyLimit`)
and batches over :data:`~ctloop.client.http.runs.MAX_BATCH_METRICS` points are refused with
413 ``PAYLOAD_TOO_LARGE``; the Python client splits its batches to fit.

Artifacts of runs (``/runs/{run_id}/artifacts``) have their own router, ``artifacts``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ctloop._internal.wire import to_wire
from ctloop.client.http.runs import MAX_BATCH_METRICS
from ctloop.errors import NotFound, PayloadTooLarge
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit
from ctloop.tracking.entities import Metric, RunInput, RunPage, RunRecord

router = APIRouter(prefix="/runs", tags=["runs"], route_class=JsonBodyLimit)

MetricPoint = tuple[str, float, int | None, int | None]


class RunIn(BaseModel):
    """A new run. ``source`` and ``environment`` describe where the training code runs."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    experiment: str = "default"
    name: str | None = Field(None, description="default: a random readable name")
    tags: dict[str, str] = Field(default_factory=dict)
    source: dict[str, Any] | None = Field(
        None, description="code version: git_commit, git_dirty, git_diff_sha256, entry_point…"
    )
    environment: dict[str, Any] | None = Field(
        None, description="python, platform, hostname, executable, packages…"
    )
    user: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="who started the run, as the client's machine knows them (default: the "
        "server's user)",
    )


class EndIn(BaseModel):
    status: str = Field("FINISHED", description="FINISHED, FAILED or KILLED")
    error: str | None = Field(None, description="what went wrong, for a FAILED run")


class SearchIn(BaseModel):
    experiments: list[str] | None = Field(None, description="names or ids; default: all")
    filter: str | None = Field(None, examples=["metrics.auc > 0.8 and params.model = 'rf'"])
    order_by: str | list[str] | None = Field(None, examples=[["metrics.auc DESC"]])
    limit: int = 100
    page_token: str | None = None


class BatchIn(BaseModel):
    """Metric points, params and tags, written in one transaction."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    metrics: list[MetricPoint] = Field(
        default_factory=list,
        description=(
            f"[key, value, step, timestamp_ms] points, at most {MAX_BATCH_METRICS}; value "
            'may be "NaN", "Infinity" or "-Infinity"; step defaults to 0, timestamp to now'
        ),
    )
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class TagIn(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    value: str


class InputIn(BaseModel):
    dataset: str = Field(description="a dataset version reference: NAME, NAME@latest or NAME@V")
    dataset_version_id: str | None = Field(
        None, description="when given, the version must have this id (else 404)"
    )
    context: str | None = "training"


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(to_wire(value), status_code=status_code)


@router.post("", status_code=201, responses={201: {"model": RunRecord}})
def create_run(body: RunIn, client: ClientDep) -> JSONResponse:
    """Start a RUNNING run (its experiment is created if missing).

    The run records the ``source`` and ``environment`` sent by the client (where the
    training code runs), never the server's own; omitted, they are recorded empty.
    """
    run = client.runs.create(
        body.experiment,
        body.name,
        body.tags,
        capture_code=False,
        source=body.source if body.source is not None else {},
        environment=body.environment if body.environment is not None else {},
        user=body.user,
    )
    return _json(run, 201)


@router.post("/search", responses={200: {"model": RunPage}})
def search_runs(body: SearchIn, client: ClientDep) -> JSONResponse:
    """Runs matching an MLflow-style filter, one page at a time.

    A malformed filter or order-by is a 400 naming the bad token and its position.
    """
    page = client.runs.search(
        body.experiments, body.filter, body.order_by, body.limit, body.page_token
    )
    return _json(page)


@router.get("/{run_id}", responses={200: {"model": RunRecord}})
def get_run(run_id: str, client: ClientDep) -> JSONResponse:
    """A run with its params, latest metrics, tags, artifacts and inputs."""
    return _json(client.runs.get(run_id))


@router.post("/{run_id}/end", status_code=204)
def end_run(run_id: str, body: EndIn, client: ClientDep) -> Response:
    """Set the run's final status (and the error of a failed run)."""
    client.runs.end(run_id, body.status, body.error)
    return Response(status_code=204)


@router.post("/{run_id}/batch", status_code=204)
def log_batch(run_id: str, body: BatchIn, client: ClientDep) -> Response:
    """Write metric points, params and tags in one transaction.

    Params are immutable: a different value for a logged param is a 409 and nothing of
    the batch is written.
    """
    if len(body.metrics) > MAX_BATCH_METRICS:
        raise PayloadTooLarge(
            f"a batch holds at most {MAX_BATCH_METRICS} metric points, this one has "
            f"{len(body.metrics)}; send them in several requests (the Python client does)"
        )
    client.runs.log_batch(run_id, metrics=body.metrics, params=body.params, tags=body.tags)
    return Response(status_code=204)


@router.get("/{run_id}/metrics/{key:path}", responses={200: {"model": list[Metric]}})
def metric_history(run_id: str, key: str, client: ClientDep) -> JSONResponse:
    """Every point of one metric, in step order (the key may contain ``/``)."""
    return _json(client.runs.metric_history(run_id, key))


@router.put("/{run_id}/tags/{key:path}", status_code=204)
def set_tag(run_id: str, key: str, body: TagIn, client: ClientDep) -> Response:
    """Set one tag (tags, unlike params, may change)."""
    client.runs.set_tag(run_id, key, body.value)
    return Response(status_code=204)


@router.delete("/{run_id}/tags/{key:path}", status_code=204)
def delete_tag(run_id: str, key: str, client: ClientDep) -> Response:
    """Remove one tag."""
    client.runs.delete_tag(run_id, key)
    return Response(status_code=204)


@router.post("/{run_id}/inputs", status_code=201, responses={201: {"model": RunInput}})
def log_input(run_id: str, body: InputIn, client: ClientDep) -> JSONResponse:
    """Record a dataset version of this store as an input of the run.

    With ``dataset_version_id`` the reference must name exactly that version (a client
    holding a version of another store gets a 404), as the local API checks by id.
    """
    if body.dataset_version_id is None:
        return _json(client.runs.log_input(run_id, body.dataset, body.context), 201)
    client.runs.get(run_id)  # the local API reports an unknown run first
    try:
        version = client.datasets.get(body.dataset)
    except NotFound:
        version = None
    if version is None or version.id != body.dataset_version_id:
        raise NotFound(
            f"dataset version {body.dataset} is not in this store; add it with: "
            "ctloop data add PATH --name NAME"
        )
    return _json(client.runs.log_input(run_id, version, body.context), 201)
