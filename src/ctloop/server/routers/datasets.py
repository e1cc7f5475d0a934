"""``/api/v1/datasets``: versioned datasets over REST.

Adding a version remotely is two steps: the data travels by the objects protocol
(``/api/v1/objects``), then ``POST /datasets/{name}/versions`` names the object by digest
with what the client measured (format, row count, schema, profile). The server checks
the object is in its store (409 otherwise) and reads size and file count from the store;
when the content equals the latest version's, that version comes back unchanged (200,
``is_new`` false) instead of a new one (201).

Validation suites attached to a version travel as YAML text inside JSON:
``PUT /datasets/{name}/versions/{version}/suites/{suite}`` with ``{"yaml": …}`` parses the
suite here (a malformed one is a 400 naming line and key), stores the YAML in the
artifact store and links it; ``GET …/suites/{suite}`` answers the link with the YAML.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ctloop._internal.names import check_name
from ctloop._internal.wire import to_wire
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

router = APIRouter(tags=["datasets"], route_class=JsonBodyLimit)


class VersionIn(BaseModel):
    digest: str = Field(description="sha256 of an object already uploaded to /objects")
    kind: Literal["file", "dir"]
    format: Literal["csv", "parquet"] | None = None
    row_count: int | None = Field(None, ge=0)
    schema_: list[dict[str, Any]] | None = Field(
        None, alias="schema", description="[{name, type, nullable}]"
    )
    profile: dict[str, Any] | None = Field(None, description="per-column statistics")
    source_path: str | None = Field(None, max_length=4096)
    description: str | None = Field(None, max_length=10_000)
    created_by: str | None = Field(None, max_length=256)


class SuiteIn(BaseModel):
    yaml: str = Field(description="the suite's YAML, as `ctloop data suite` writes it")
    created_by: str | None = Field(None, max_length=256)


@router.get("/datasets")
def list_datasets(client: ClientDep) -> list[dict[str, Any]]:
    """Every dataset, by name."""
    return to_wire(client.datasets.list())


@router.get("/datasets/{name}")
def get_dataset(name: str, client: ClientDep) -> dict[str, Any]:
    """A dataset: description, latest version, number of versions."""
    return to_wire(client.datasets.info(name))


@router.get("/datasets/{name}/versions")
def list_versions(name: str, client: ClientDep) -> list[dict[str, Any]]:
    """Every version of a dataset, oldest first."""
    return to_wire(client.datasets.versions(name))


@router.post(
    "/datasets/{name}/versions",
    status_code=201,
    responses={
        200: {"description": "the content equals the latest version's, which is returned"},
        409: {"description": "the object is not in the server's store: upload it first"},
    },
)
def add_version(name: str, body: VersionIn, client: ClientDep) -> JSONResponse:
    """Make an uploaded object the next version of dataset ``name`` (created if new)."""
    version = client.datasets.add_stored(
        name,
        body.digest,
        body.kind,
        format=body.format,
        row_count=body.row_count,
        schema=body.schema_,
        profile=body.profile,
        source_path=body.source_path,
        description=body.description,
        created_by=body.created_by,
    )
    return JSONResponse(to_wire(version), status_code=201 if version.is_new else 200)


@router.get("/datasets/{name}/versions/{version}")
def get_version(name: str, version: str, client: ClientDep) -> dict[str, Any]:
    """Version ``version`` (a number, or ``latest``) of a dataset."""
    return to_wire(client.datasets.get(f"{name}@{version}"))


@router.get("/dataset-versions/{version_id}")
def get_version_by_id(version_id: str, client: ClientDep) -> dict[str, Any]:
    """A dataset version by its id."""
    return to_wire(client.datasets.get_by_id(version_id))


def _version_ref(name: str, version: str) -> str:
    return f"{name}@{version}"


@router.get("/datasets/{name}/versions/{version}/suites")
def list_suites(name: str, version: str, client: ClientDep) -> list[dict[str, Any]]:
    """The validation suites attached to a dataset version, by name."""
    return to_wire(client.datasets.suites(_version_ref(name, version)))


@router.get("/datasets/{name}/versions/{version}/suites/{suite}")
def get_suite(name: str, version: str, suite: str, client: ClientDep) -> dict[str, Any]:
    """The suite attached under ``suite``: its record and its YAML."""
    ref = _version_ref(name, version)
    for _ in range(3):  # a suite re-attached between the two reads: read both again
        text = client.datasets.get_suite(ref, suite).to_yaml()  # NotFound says how to attach
        record = next(r for r in client.datasets.suites(ref) if r.name == suite)
        if hashlib.sha256(text.encode("utf-8")).hexdigest() == record.digest:
            break
    return {**to_wire(record), "yaml": text}


@router.put("/datasets/{name}/versions/{version}/suites/{suite}")
def attach_suite(
    name: str, version: str, suite: str, body: SuiteIn, client: ClientDep
) -> dict[str, Any]:
    """Attach a validation suite to a dataset version under ``suite`` (replacing one)."""
    from ctloop.validation.suite import Suite

    check_name(suite, "suite")
    parsed = Suite.from_yaml(body.yaml, source=f"suite '{suite}'")
    record = client.datasets.attach_suite(
        _version_ref(name, version), parsed, suite, created_by=body.created_by
    )
    return to_wire(record)
