"""The one entry point to a ctloop store: ``ctloop.Client``.

``Client`` is a facade handing out small resource APIs (``client.experiments``,
``client.runs``, ``client.datasets`` …), each in its own module. Opening a client on the
embedded default creates the store on first use (never at import).
"""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ctloop.client._local import LocalContext
from ctloop.errors import InvalidInput
from ctloop.settings import Settings, load_settings

if TYPE_CHECKING:
    from ctloop.artifacts import BlobStore
    from ctloop.client._http import HttpContext
    from ctloop.client.datasets import DatasetsAPI
    from ctloop.client.deployments import DeploymentsAPI
    from ctloop.client.experiments import ExperimentsAPI
    from ctloop.client.loop import LoopAPI
    from ctloop.client.models import ModelsAPI
    from ctloop.client.monitors import MonitorsAPI
    from ctloop.client.objects import ObjectsAPI
    from ctloop.client.pipelines import PipelinesAPI
    from ctloop.client.runs import RunsAPI
    from ctloop.client.tokens import TokensAPI
    from ctloop.store import Database

__all__ = ["Client"]


class Client:
    """Read and write one ctloop store.

    Args:
        store: a folder, ``sqlite:///FILE``, ``postgresql+psycopg://…`` (the local backend)
            or ``http(s)://host:port`` of a ``ctloop server`` (the HTTP backend); default
            ``CTLOOP_STORE`` or ``./.ctloop``.
        artifacts: a folder or ``s3://bucket/prefix``; default ``CTLOOP_ARTIFACTS`` or the
            store folder's ``artifacts/``.
        settings: a complete settings tree (then ``store`` and ``artifacts`` must be None).
    """

    def __init__(
        self,
        store: str | None = None,
        artifacts: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        if settings is None:
            settings = load_settings(store=store, artifacts=artifacts)
        elif store is not None or artifacts is not None:
            raise InvalidInput("pass either settings or store/artifacts to Client, not both")
        self.settings = settings
        self.remote = settings.store_url().startswith(("http://", "https://"))
        self._ctx: LocalContext | HttpContext
        if self.remote:
            from ctloop.client._http import HttpContext

            self._ctx = HttpContext(settings)
        else:
            self._ctx = LocalContext(settings)
            self._ctx.db.ensure_ready()

    def _api(self, resource: str, local_class: str) -> Any:
        """The resource API of this client's backend (``ctloop.client[.http].<resource>``)."""
        if self.remote:
            try:
                module = importlib.import_module(f"ctloop.client.http.{resource}")
            except ModuleNotFoundError as exc:
                if exc.name != f"ctloop.client.http.{resource}":
                    raise
                raise InvalidInput(
                    f"client.{resource} is not available over HTTP in this version of ctloop; "
                    "point CTLOOP_STORE at the store itself (a folder or database URL)"
                ) from None
            return getattr(module, "Http" + local_class)(self._ctx)
        module = importlib.import_module(f"ctloop.client.{resource}")
        return getattr(module, local_class)(self._ctx)

    @cached_property
    def experiments(self) -> ExperimentsAPI:
        """Experiments: named groups of runs."""
        return self._api("experiments", "ExperimentsAPI")

    @cached_property
    def runs(self) -> RunsAPI:
        """Runs: create, log to, read and search them."""
        return self._api("runs", "RunsAPI")

    @cached_property
    def datasets(self) -> DatasetsAPI:
        """Versioned datasets."""
        return self._api("datasets", "DatasetsAPI")

    @cached_property
    def models(self) -> ModelsAPI:
        """The model registry: versions, aliases and their history, lineage, loading."""
        return self._api("models", "ModelsAPI")

    @cached_property
    def deployments(self) -> DeploymentsAPI:
        """Deployments: the desired serving state of endpoints (routes, shadows, revisions)."""
        return self._api("deployments", "DeploymentsAPI")

    @cached_property
    def monitors(self) -> MonitorsAPI:
        """Monitors of deployments, their monitoring reports and the alerts that fired."""
        return self._api("monitors", "MonitorsAPI")

    @cached_property
    def loop(self) -> LoopAPI:
        """The continuous-training controller's policies, states, leases and events."""
        return self._api("loop", "LoopAPI")

    @cached_property
    def objects(self) -> ObjectsAPI:
        """Content-addressed files and folders of the artifact store, by digest."""
        return self._api("objects", "ObjectsAPI")

    @cached_property
    def pipelines(self) -> PipelinesAPI:
        """Pipeline runs and step runs: their records and their outputs."""
        api: PipelinesAPI = self._api("pipelines", "PipelinesAPI")
        api._owner = self
        api._objects = self.objects
        return api

    @cached_property
    def tokens(self) -> TokensAPI:
        """API tokens for ``ctloop server --auth`` (local backend only)."""
        if self.remote:
            raise InvalidInput(
                f"tokens are managed where the store is, not through the server "
                f"{self.settings.store_url()}; point CTLOOP_STORE (or --store) at the folder or "
                "database that server serves, e.g.: ctloop --store ./.ctloop tokens list"
            )
        tokens: TokensAPI = self._api("tokens", "TokensAPI")
        return tokens

    def __repr__(self) -> str:
        return f"Client(store={self.settings.store_url()!r})"

    def _local(self, what: str) -> LocalContext:
        if not isinstance(self._ctx, LocalContext):
            raise InvalidInput(
                f"a client of the ctloop server {self.settings.store_url()} has no {what} of "
                "its own; use the resource APIs (client.runs, client.datasets, …)"
            )
        return self._ctx

    @property
    def db(self) -> Database:
        """The metadata store (local backend only; prefer the resource APIs)."""
        return self._local("database").db

    @property
    def blobs(self) -> BlobStore:
        """The artifact store (local backend only)."""
        return self._local("artifact store").blobs

    def close(self) -> None:
        """Release connections and caches."""
        self._ctx.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
