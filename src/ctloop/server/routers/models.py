"""``/api/v1/models``: the model registry — versions, aliases and their history, lineage.

Every endpoint parses its input with a pydantic model, calls the server's local
``client.models`` and returns the result through :func:`~ctloop._internal.wire.to_wire`, so
checks, errors and messages are those of the local backend.

Model references travel path-safe: a version is ``/models/{name}/versions/{version}``
(``{version}`` a number or ``latest``), an alias ``/models/{name}/aliases/{alias}``, and any
reference string (``churn@champion``, ``models:/churn/3``, ``runs:/RUN_ID/PATH``) goes in a
query parameter: ``GET /models/resolve?ref=…``, ``GET /models/package-digest?ref=…``.

A version is registered only from the server store's own record of a run artifact: the
request names the run and the artifact path, never a digest, path or URL.

Alias moves are recorded with the server's user (the account ``ctloop server`` runs as)
as their actor, until the server authenticates its callers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ctloop._internal.names import check_name
from ctloop._internal.wire import to_wire
from ctloop.registry.entities import AliasEvent, Lineage, ModelVersion, RegisteredModel
from ctloop.registry.refs import LATEST, ModelRef, check_alias, parse_model_ref
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

router = APIRouter(prefix="/models", tags=["models"], route_class=JsonBodyLimit)

REF_EXAMPLES = ["churn@champion", "churn/3", "churn", "runs:/RUN_ID/model"]


class RegisterIn(BaseModel):
    """A run artifact to register as the next version of a model."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    run_id: str = Field(description="the run that logged the model package")
    artifact_path: str = Field("model", description="the package's artifact path in the run")
    description: str | None = Field(None, max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)


class DescriptionIn(BaseModel):
    description: str | None = Field(None, max_length=10_000)


class AliasIn(BaseModel):
    """Where an alias should point, and why (kept in the alias history)."""

    version: StrictInt = Field(description="a version number of the model, from 1")
    reason: str | None = None


class ReasonIn(BaseModel):
    reason: str | None = Field(None, description="why, kept in the alias history")


class TagsIn(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    tags: dict[str, str] = Field(description="tags to set; other tags are kept")


class PackageDigest(BaseModel):
    ref: str
    package_digest: str


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(to_wire(value), status_code=status_code)


def _version_ref(name: str, version: str) -> ModelRef:
    """``/models/{name}/versions/{version}`` as a reference (``latest`` is the newest)."""
    check_name(name, "model")
    return parse_model_ref(f"{name}/{version}")


def _model_named(client: Any, literal: str) -> JSONResponse:
    # ``/models/resolve`` and ``/models/package-digest`` without ``ref`` are the models of
    # that name: model names are free, so the fixed routes must not hide any model.
    return _json(client.models.get(literal))


# --- the collection and reference look-ups (before /{name}, which would match them) -----


@router.get("", responses={200: {"model": list[RegisteredModel]}})
def list_models(client: ClientDep) -> JSONResponse:
    """Every registered model, by name, with its latest version and aliases."""
    return _json(client.models.list())


@router.get("/resolve", responses={200: {"model": ModelVersion}})
def resolve(
    client: ClientDep,
    ref: str | None = Query(None, description="a model reference", examples=REF_EXAMPLES),
) -> JSONResponse:
    """The version a reference names now (``NAME/V``, ``NAME@ALIAS``, ``NAME``).

    Without ``ref`` this is ``GET /models/{name}`` of a model named ``resolve``.
    """
    if ref is None:
        return _model_named(client, "resolve")
    return _json(client.models.resolve(ref))


@router.get("/package-digest", responses={200: {"model": PackageDigest}})
def package_digest(
    client: ClientDep,
    ref: str | None = Query(None, description="a model reference", examples=REF_EXAMPLES),
) -> JSONResponse:
    """The digest of the package a reference names, ``runs:/RUN_ID/PATH`` included.

    Download the package with ``GET /objects/sha256/{digest}.dir``. Without ``ref`` this
    is ``GET /models/{name}`` of a model named ``package-digest``.
    """
    if ref is None:
        return _model_named(client, "package-digest")
    return _json({"ref": ref, "package_digest": client.models.package_digest(ref)})


# --- one model -------------------------------------------------------------------------


@router.get("/{name}", responses={200: {"model": RegisteredModel}})
def get_model(name: str, client: ClientDep) -> JSONResponse:
    """Model ``name``: latest version, number of versions, aliases."""
    return _json(client.models.get(name))


@router.put("/{name}/description", responses={200: {"model": RegisteredModel}})
def set_description(name: str, body: DescriptionIn, client: ClientDep) -> JSONResponse:
    """Replace the description of a model."""
    return _json(client.models.set_description(name, body.description))


@router.get("/{name}/versions", responses={200: {"model": list[ModelVersion]}})
def list_versions(name: str, client: ClientDep) -> JSONResponse:
    """Every version of a model, oldest first."""
    return _json(client.models.versions(name))


@router.post("/{name}/versions", status_code=201, responses={201: {"model": ModelVersion}})
def register(name: str, body: RegisterIn, client: ClientDep) -> JSONResponse:
    """Register a run's model package as the next version (the model is made on first use).

    The package is the run artifact as this server's store recorded it; its manifest
    must read and verify. The version snapshots the run's latest metrics.
    """
    version = client.models.register(
        body.run_id,
        body.artifact_path,
        name=name,
        description=body.description,
        tags=body.tags,
    )
    return _json(version, status_code=201)


@router.get("/{name}/versions/{version}", responses={200: {"model": ModelVersion}})
def get_version(name: str, version: str, client: ClientDep) -> JSONResponse:
    """One version (``latest``: the newest)."""
    return _json(client.models.get_version(_version_ref(name, version)))


@router.get("/{name}/versions/{version}/lineage", responses={200: {"model": Lineage}})
def lineage(name: str, version: str, client: ClientDep) -> JSONResponse:
    """Where a version came from: its run, the run's input datasets, code, package."""
    return _json(client.models.lineage(_version_ref(name, version)))


@router.patch("/{name}/versions/{version}/tags", responses={200: {"model": ModelVersion}})
def set_version_tags(name: str, version: str, body: TagsIn, client: ClientDep) -> JSONResponse:
    """Set tags on a version (its package never changes)."""
    return _json(client.models.set_version_tags(_version_ref(name, version), body.tags))


@router.delete(
    "/{name}/versions/{version}/tags/{key:path}", responses={200: {"model": ModelVersion}}
)
def delete_version_tag(name: str, version: str, key: str, client: ClientDep) -> JSONResponse:
    """Delete one tag of a version (404 when it has no such tag)."""
    return _json(client.models.delete_version_tag(_version_ref(name, version), key))


# --- aliases ---------------------------------------------------------------------------


@router.get("/{name}/aliases/{alias}", responses={200: {"model": ModelVersion}})
def get_alias(name: str, alias: str, client: ClientDep) -> JSONResponse:
    """The version an alias points to now (``latest``: the newest version)."""
    check_name(name, "model")
    if alias != LATEST:
        check_alias(alias)  # so ``aliases/3`` is refused, not read as version 3
    return _json(client.models.resolve(f"{name}@{alias}"))


@router.put("/{name}/aliases/{alias}", responses={200: {"model": ModelVersion}})
def set_alias(name: str, alias: str, body: AliasIn, client: ClientDep) -> JSONResponse:
    """Point an alias at a version and record the move (no-op if it already does)."""
    return _json(client.models.set_alias(name, alias, body.version, reason=body.reason))


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(
    name: str, alias: str, client: ClientDep, body: ReasonIn | None = Body(None)
) -> Response:
    """Remove an alias and record it (its history stays)."""
    client.models.delete_alias(name, alias, reason=body.reason if body else None)
    return Response(status_code=204)


@router.post("/{name}/aliases/{alias}/rollback", responses={200: {"model": ModelVersion}})
def rollback(
    name: str, alias: str, client: ClientDep, body: ReasonIn | None = Body(None)
) -> JSONResponse:
    """Undo the newest move of an alias not undone yet (409 with nothing to go back to)."""
    return _json(client.models.rollback(name, alias, reason=body.reason if body else None))


@router.get("/{name}/alias-events", responses={200: {"model": list[AliasEvent]}})
def alias_history(
    name: str,
    client: ClientDep,
    alias: str | None = Query(None, description="only this alias's moves"),
) -> JSONResponse:
    """Every move of the model's aliases (or of one), oldest first."""
    return _json(client.models.alias_history(name, alias))
