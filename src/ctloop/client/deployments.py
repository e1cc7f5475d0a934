"""``client.deployments``: the desired serving state of endpoints, and its history.

A deployment serves versions of one registered model: routes split the traffic by whole
percentages, shadows get a copy of it. Every change bumps the deployment's ``revision``
and is recorded as an event (who, when, why, the state it set), so inference replicas poll
:meth:`DeploymentsAPI.get` and converge when the revision moves.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ctloop._internal.environment import current_user
from ctloop._internal.ids import ms_to_datetime, now_ms
from ctloop._internal.names import check_name
from ctloop.client.models import _reason
from ctloop.errors import InvalidInput
from ctloop.registry.refs import parse_model_ref
from ctloop.serving.entities import (
    Deployment,
    DeploymentEvent,
    Route,
    RouteSpec,
    assign_variants,
    check_shadows,
    check_sticky_key,
    parse_weights,
)
from ctloop.store import deployments as store
from ctloop.store import models as models_store

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

    from ctloop.client._local import LocalContext
    from ctloop.serving.log_reader import Moment

__all__ = ["KEEP", "DeploymentsAPI", "Weights"]

MAX_DESCRIPTION = 10_000
Weights = Mapping[int, int] | Iterable[Any]


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP  # "leave this setting as it is" (a sticky key may be set to None)


def _time(ms: int) -> Any:
    when = ms_to_datetime(ms)
    assert when is not None
    return when


def _routes(values: Iterable[dict[str, Any]]) -> list[Route]:
    return [Route(int(r["version"]), int(r["weight"]), str(r["variant"])) for r in values]


def _routes_json(routes: Iterable[Route]) -> list[dict[str, Any]]:
    return [{"version": r.version, "weight": r.weight, "variant": r.variant} for r in routes]


def deployment_from_row(row: dict[str, Any]) -> Deployment:
    """A :class:`Deployment` from a row of ``store.deployments``."""
    return Deployment(
        id=row["id"],
        name=row["name"],
        model=row["model"],
        routes=_routes(row["routes"]),
        shadows=[int(v) for v in row["shadows"]],
        sticky_key=row["sticky_key"],
        log_payloads=bool(row["log_payloads"]),
        revision=int(row["revision"]),
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        description=row["description"],
    )


def _event(row: dict[str, Any]) -> DeploymentEvent:
    return DeploymentEvent(
        revision=int(row["revision"]),
        routes=_routes(row["routes"]),
        shadows=[int(v) for v in row["shadows"]],
        sticky_key=row["sticky_key"],
        actor=row["actor"],
        created_at=_time(row["created_at"]),
        reason=row["reason"],
    )


def check_description(value: object) -> str | None:
    """A description, checked (None: none)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"invalid description {value!r}: it must be text")
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"the description is {len(value)} characters long; the limit is {MAX_DESCRIPTION}"
        )
    return value or None


def check_model_ref(model_ref: object) -> str:
    """A registry reference a deployment can start from (``NAME@ALIAS``, ``NAME/V``, ``NAME``)."""
    parsed = parse_model_ref(model_ref)
    if parsed.run_id is not None:
        raise InvalidInput(
            f"{str(parsed)!r} names a run's package, not a registered version; a deployment "
            "serves registered versions: register it with ctloop.register_model(RUN_ID, "
            "'model', name=NAME), then deploy NAME@ALIAS or NAME/VERSION"
        )
    return str(parsed) if not isinstance(model_ref, str) else model_ref


def check_traffic(
    weights: Weights | None, shadows: Iterable[object] | None, sticky_key: object
) -> tuple[list[RouteSpec] | None, list[int] | None, str | None | _Keep]:
    """The arguments of ``set_traffic``, checked (both backends run this before anything)."""
    specs = None if weights is None else parse_weights(weights)
    clean_shadows = None if shadows is None else check_shadows(shadows, specs or [])
    sticky = sticky_key if sticky_key is KEEP else check_sticky_key(sticky_key)
    if specs is None and clean_shadows is None and sticky is KEEP:
        raise InvalidInput(
            "nothing to change: give a traffic split (e.g. 3=90 4=10), shadows or a sticky key"
        )
    return specs, clean_shadows, sticky


class DeploymentsAPI:
    """The deployments of one store. Reached as ``client.deployments``."""

    def __init__(self, ctx: LocalContext) -> None:
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
        """Create deployment ``name`` sending all traffic to the version ``model_ref`` names.

        The reference is resolved now: the route pins that version (deployments change only
        through :meth:`set_traffic`). A route made from ``NAME@ALIAS`` is labelled with the
        alias (``churn@champion`` → variant ``champion``), else ``v<VERSION>``.

        Raises:
            InvalidInput: for a bad name, reference or sticky key.
            NotFound: for an unknown model, version or alias.
            Conflict: when a deployment of that name exists.
        """
        check_name(name, "deployment")
        ref = parse_model_ref(check_model_ref(model_ref))
        sticky = check_sticky_key(sticky_key)
        text = check_description(description)
        if not isinstance(log_payloads, bool):
            raise InvalidInput(f"invalid log_payloads {log_payloads!r}: use True or False")
        assert ref.name is not None
        with self._ctx.db.write() as conn:
            now = now_ms()
            model = models_store.lock_model(conn, ref.name, now=now)
            if ref.alias is not None:
                version = models_store.get_version_by_alias(conn, ref.name, ref.alias)
            else:
                version = models_store.get_version(conn, ref.name, ref.version)
            number = int(version["version"])
            route = Route(number, 100, ref.alias or f"v{number}")
            store.add(
                conn,
                name=name,
                model_id=model["id"],
                routes=_routes_json([route]),
                shadows=[],
                sticky_key=sticky,
                log_payloads=log_payloads,
                description=text,
                actor=current_user(),
                now=now,
            )
            return deployment_from_row(store.get(conn, name))

    def get(self, name: str) -> Deployment:
        """Deployment ``name`` as it should serve now (one read: what replicas poll)."""
        check_name(name, "deployment")
        with self._ctx.db.read() as conn:
            return deployment_from_row(store.get(conn, name))

    def list(self) -> builtins.list[Deployment]:
        """Every deployment, by name."""
        with self._ctx.db.read() as conn:
            return [deployment_from_row(r) for r in store.list_all(conn)]

    def _check_versions(self, conn: Connection, model: str, versions: Iterable[int]) -> None:
        for number in versions:
            models_store.get_version(conn, model, number)  # NotFound names what exists

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

        ``weights`` is ``{3: 90, 4: 10}`` or ``["3=90", "4=10:canary"]``: versions of the
        deployment's model with whole percentages adding up to 100, optionally naming each
        route's variant. Unnamed routes keep the variant they had; a new one is ``canary``
        (``v<VERSION>`` when several are new). ``weights=None`` keeps the routes,
        ``shadows=None`` the shadows, ``sticky_key=KEEP`` the sticky key (None clears it).

        A change bumps the revision and records an event; setting what is already set
        changes nothing and records nothing.

        Raises:
            InvalidInput: for a bad split, shadow or sticky key, naming the values.
            NotFound: for an unknown deployment, or a version the model does not have.
        """
        check_name(name, "deployment")
        specs, clean_shadows, sticky = check_traffic(weights, shadows, sticky_key)
        why = _reason(reason)
        with self._ctx.db.write() as conn:
            current = store.lock(conn, name)
            now_routes = _routes(current["routes"])
            routes = now_routes if specs is None else assign_variants(specs, now_routes)
            new_shadows = (
                [int(v) for v in current["shadows"]] if clean_shadows is None else clean_shadows
            )
            check_shadows(new_shadows, routes)  # kept shadows against new routes
            new_sticky = current["sticky_key"] if sticky is KEEP else sticky
            self._check_versions(conn, current["model"], [r.version for r in routes])
            self._check_versions(conn, current["model"], new_shadows)
            before = (
                current["routes"],
                [int(v) for v in current["shadows"]],
                current["sticky_key"],
            )
            if (_routes_json(routes), new_shadows, new_sticky) != before:
                store.set_state(
                    conn,
                    current,
                    routes=_routes_json(routes),
                    shadows=new_shadows,
                    sticky_key=new_sticky,
                    reason=why,
                    actor=current_user(),
                    now=now_ms(),
                )
            return deployment_from_row(store.get(conn, name))

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        """Every revision of deployment ``name`` as it was set, oldest first (1: creation)."""
        check_name(name, "deployment")
        with self._ctx.db.read() as conn:
            row = store.get(conn, name)
            return [_event(r) for r in store.list_events(conn, row["id"])]

    def predictions(self, name: str, since: Moment = None, until: Moment = None) -> pd.DataFrame:
        """The prediction log of deployment ``name`` (``since <= timestamp < until``).

        One row per served row, oldest first: ``prediction_id``, ``request_id``,
        ``timestamp``, ``deployment``, ``model_version``, ``variant``, ``prediction``,
        ``latency_ms``, ``status``, then the inputs as ``f.<feature>`` and the class
        probabilities as ``p.<class>`` (see ``docs/logs.md``). ``name`` may also be an
        ad-hoc deployment (``ctloop serve churn@champion`` logs under ``churn``).
        Segments still in a server's memory (up to its flush interval) are not included.
        """
        return self._read(name, "predictions", since, until)

    def feedback(self, name: str, since: Moment = None, until: Moment = None) -> pd.DataFrame:
        """The feedback log: ``prediction_id``, ``timestamp``, ``deployment``, ``label``,
        ``value`` (see :meth:`predictions`)."""
        return self._read(name, "feedback", since, until)

    def joined(self, name: str, since: Moment = None, until: Moment = None) -> pd.DataFrame:
        """Predictions (in the window) with their latest feedback: ``label``, ``value``,
        ``feedback_time`` (null where none arrived yet)."""
        return self._read(name, "joined", since, until)

    def live(self, name: str) -> dict[str, Any] | None:
        """Live figures of the replicas serving ``name`` now, added up; None when none runs.

        Replicas report to the artifact store every 2 s (see :mod:`ctloop.serving.status`):
        requests per model version and variant by outcome, p50/p99 latency, rows logged
        and dropped. A replica silent for 10 s is left out.
        """
        from ctloop.artifacts.filesystems import s3_storage_options
        from ctloop.serving import status

        check_name(name, "deployment")
        settings = self._ctx.settings
        root = settings.artifacts_root()
        options = s3_storage_options(settings) if "://" in root else None
        return status.live_figures(status.read_statuses(root, name, storage_options=options))

    def _read(self, name: str, kind: str, since: Moment, until: Moment) -> pd.DataFrame:
        from ctloop.artifacts.filesystems import s3_storage_options
        from ctloop.serving import log_reader

        check_name(name, "deployment")
        settings = self._ctx.settings
        root = settings.artifacts_root()
        options = s3_storage_options(settings) if "://" in root else None
        if kind == "joined":
            return log_reader.joined(root, name, since, until, storage_options=options)
        return log_reader.read_log(
            root, name, kind, since=since, until=until, storage_options=options
        )

    def delete(self, name: str) -> None:
        """Delete deployment ``name`` and its history.

        Raises:
            NotFound: for an unknown deployment.
        """
        check_name(name, "deployment")
        with self._ctx.db.write() as conn:
            store.remove(conn, name)
