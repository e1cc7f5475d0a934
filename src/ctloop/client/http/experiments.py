"""``client.experiments`` over HTTP."""

from __future__ import annotations

from pydantic import TypeAdapter

from ctloop._internal.names import check_name
from ctloop.client._http import HttpContext
from ctloop.tracking.entities import Experiment

_one = TypeAdapter(Experiment)
_many = TypeAdapter(list[Experiment])


class HttpExperimentsAPI:
    """Create, find and list experiments on a ctloop server."""

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    def create(self, name: str, description: str | None = None) -> Experiment:
        check_name(name, "experiment")
        body = {"name": name, "description": description}
        return _one.validate_python(self._ctx.request("POST", "/experiments", json=body))

    def get_or_create(self, name: str) -> Experiment:
        check_name(name, "experiment")
        body = {"name": name, "get_or_create": True}
        return _one.validate_python(self._ctx.request("POST", "/experiments", json=body))

    def get(self, name_or_id: str) -> Experiment:
        from urllib.parse import quote

        path = f"/experiments/{quote(name_or_id, safe='')}"
        return _one.validate_python(self._ctx.request("GET", path))

    def list(self) -> list[Experiment]:
        return _many.validate_python(self._ctx.request("GET", "/experiments"))
