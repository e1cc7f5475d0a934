"""``client.deployments`` over HTTP: the same methods, checks and errors as the local backend.

Names, references, traffic splits, shadows and sticky keys are checked here with the local
API's own checks, so bad input fails before any request with the same message; the server
checks again. Revision events are recorded with the server's user as their actor.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
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

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.serving.log_reader import Moment

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

    def predictions(self, name: str, since: Moment = None, until: Moment = None) -> pd.DataFrame:
        """The prediction log of deployment ``name``, as the server's store holds it."""
        return self._read(name, "predictions", since, until)

    def feedback(self, name: str, since: Moment = None, until: Moment = None) -> pd.DataFrame:
        """The feedback log of deployment ``name``."""
        return self._read(name, "feedback", since, until)

    def joined(self, name: str, since: Moment = None, until: Moment = None) -> pd.DataFrame:
        """Predictions with their latest feedback (see the local backend)."""
        return self._read(name, "joined", since, until)

    def live(self, name: str) -> dict[str, Any] | None:
        """Live figures of the replicas serving ``name`` (see the local backend)."""
        found = self._ctx.request("GET", _path(name, "live"))
        return found if isinstance(found, dict) else None

    def _read(self, name: str, kind: str, since: Moment, until: Moment) -> pd.DataFrame:
        import io

        import pyarrow.parquet as pq

        params = {k: _moment_text(v) for k, v in (("since", since), ("until", until)) if v}
        with self._ctx.stream("GET", _path(name, "logs", kind), params=params) as response:
            data = response.read()
        return pq.read_table(io.BytesIO(data)).to_pandas()


def _moment_text(value: Moment) -> str:
    """A moment as the ISO text the server parses (a date, a datetime or a string)."""
    return value if isinstance(value, str) else value.isoformat()  # type: ignore[union-attr]
