"""``/api/v1/experiments``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ctloop._internal.wire import to_wire
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

router = APIRouter(prefix="/experiments", tags=["experiments"], route_class=JsonBodyLimit)


class ExperimentIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(None, max_length=10_000)
    get_or_create: bool = False


@router.get("")
def list_experiments(client: ClientDep) -> list[dict[str, Any]]:
    """Every experiment with its run count, newest first."""
    return to_wire(client.experiments.list())


@router.post("", status_code=201)
def create_experiment(body: ExperimentIn, client: ClientDep) -> dict[str, Any]:
    """Create an experiment (409 if the name is taken, unless ``get_or_create``)."""
    if body.get_or_create:
        return to_wire(client.experiments.get_or_create(body.name))
    return to_wire(client.experiments.create(body.name, body.description))


@router.get("/{name_or_id}")
def get_experiment(name_or_id: str, client: ClientDep) -> dict[str, Any]:
    """An experiment by name or id."""
    return to_wire(client.experiments.get(name_or_id))
