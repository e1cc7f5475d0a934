"""``client.deployments`` over HTTP: the same methods, checks and errors as the local backend.

Names, references, traffic splits, shadows and sticky keys are checked here with the local
API's own checks, so bad input fails before any request with the same message; the server
checks again. Revision events are recorded with the server's user as their actor.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from ctloop._internal.names import check_name
from ctloop.client._http import HttpContext
from ctloop.client.deployments import (
    KEEP,
    Weights,
    _Keep,
    check_description,
    check_model_ref,
    check_traffic,
)
from ctloop.client.models import _reason
from ctloop.errors import InvalidInput
from ctloop.serving.entities import Deployment, DeploymentEvent, check_sticky_key

__all__ = ["HttpDeploymentsAPI"]

_deployment = TypeAdapter(Deployment)
_deployments = TypeAdapter(list[Deployment])
_events = TypeAdapter(list[DeploymentEvent])


def _path(name: str, *rest: str) -> str:
    segment = quote(check_name(name, "deployment"), safe="").replace(".", "%2E")
    return "/".join(["/deployments", segment, *rest])


class HttpDeploymentsAPI:
    """The deployments of a ctloop server (see :class:`~ctloop.client.deployments.DeploymentsAPI`).

    Same methods, checks and errors as the local backend.
    """

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    def create(
        self,
        name: str,
        model_ref: str,
        *,
        description: str | None = None,
        sticky_key: str | None = None,
        log_payloads: bool = True,
    ) -> Deployment:
        """Create deployment ``name`` sending all traffic to the version ``model_ref`` names."""
        check_name(name, "deployment")
        if not isinstance(log_payloads, bool):
            raise InvalidInput(f"invalid log_payloads {log_payloads!r}: use True or False")
        body = {
            "name": name,
            "model": check_model_ref(model_ref),
            "description": check_description(description),
            "sticky_key": check_sticky_key(sticky_key),
            "log_payloads": log_payloads,
        }
        return _deployment.validate_python(self._ctx.request("POST", "/deployments", json=body))

    def get(self, name: str) -> Deployment:
        """Deployment ``name`` as it should serve now (what replicas poll)."""
        return _deployment.validate_python(self._ctx.request("GET", _path(name)))

    def list(self) -> builtins.list[Deployment]:
        """Every deployment, by name."""
        return _deployments.validate_python(self._ctx.request("GET", "/deployments"))

    def set_traffic(
        self,
        name: str,
        weights: Weights | None,
        *,
        shadows: Iterable[int] | None = None,
        sticky_key: str | None | _Keep = KEEP,
        reason: str | None = None,
    ) -> Deployment:
        """Set the traffic split of deployment ``name`` (and its shadows, sticky key).

        See :meth:`ctloop.client.deployments.DeploymentsAPI.set_traffic`.
        """
        path = _path(name, "traffic")
        specs, clean_shadows, sticky = check_traffic(weights, shadows, sticky_key)
        body: dict[str, Any] = {
            "routes": None
            if specs is None
            else [{"version": s.version, "weight": s.weight, "variant": s.variant} for s in specs],
            "shadows": clean_shadows,
            "reason": _reason(reason),
        }
        if sticky is not KEEP:
            body["sticky_key"] = sticky
        return _deployment.validate_python(self._ctx.request("PUT", path, json=body))

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        """Every revision of deployment ``name`` as it was set, oldest first (1: creation)."""
        return _events.validate_python(self._ctx.request("GET", _path(name, "events")))

    def delete(self, name: str) -> None:
        """Delete deployment ``name`` and its history."""
        self._ctx.request("DELETE", _path(name))
