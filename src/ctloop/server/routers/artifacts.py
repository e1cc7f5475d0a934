"""``/api/v1/runs/{run_id}/artifacts``: record uploaded objects on runs, and find them.

A remote ``log_artifact`` is two steps: the bytes travel by the objects protocol
(``/api/v1/objects``, see :mod:`ctloop.server.routers.objects`), then
``POST /runs/{run_id}/artifacts`` ``{"path", "digest", "kind"}`` records the object on the
run. The server checks the run exists (404), the path is relative without ``..`` or NUL
(400) and the object is in its own store (409 otherwise); it reads size and file count
from the store, never from the request. ``GET /runs/{run_id}/artifacts/{path}`` returns
the recorded artifact, whose object the client then downloads by digest.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ctloop._internal.names import check_relative_path
from ctloop._internal.wire import to_wire
from ctloop.errors import NotFound
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

router = APIRouter(prefix="/runs", tags=["artifacts"], route_class=JsonBodyLimit)


class ArtifactIn(BaseModel):
    path: str = Field(
        min_length=1, max_length=1024, description="where the artifact goes in the run"
    )
    digest: str = Field(description="sha256 of an object already uploaded to /objects")
    kind: Literal["file", "dir"]


class ArtifactOut(BaseModel):
    path: str
    digest: str
    kind: Literal["file", "dir"]
    size: int
    file_count: int


@router.post(
    "/{run_id}/artifacts",
    status_code=201,
    response_model=ArtifactOut,
    responses={
        404: {"description": "no such run"},
        409: {"description": "the object is not in the server's store: upload it first"},
    },
)
def record_artifact(run_id: str, body: ArtifactIn, client: ClientDep) -> dict[str, Any]:
    """Record an uploaded object as the run's artifact ``path`` (the same path replaces)."""
    artifact = client.runs.record_artifact(run_id, body.path, body.digest, body.kind)
    return to_wire(artifact)


@router.get(
    "/{run_id}/artifacts/{path:path}",
    response_model=ArtifactOut,
    responses={404: {"description": "no such run or artifact"}},
)
def get_artifact(run_id: str, path: str, client: ClientDep) -> dict[str, Any]:
    """The artifact ``path`` of a run: its digest, kind, size and file count."""
    artifact_path = check_relative_path(path)
    try:
        artifacts = client.runs.get(run_id).artifacts
    except NotFound:
        artifacts = []  # answered as the local backend does: no such artifact
    for artifact in artifacts:
        if artifact.path == artifact_path:
            return to_wire(artifact)
    # The local backend's message (ctloop.store.runs.get_artifact), word for word.
    raise NotFound(
        f"run {run_id} has no artifact {artifact_path!r}; see its artifacts with: "
        f"ctloop runs show {run_id}"
    )
