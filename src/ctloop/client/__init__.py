"""The one entry point to a ctloop store: ``ctloop.Client``.

``Client`` is a facade handing out small resource APIs (``client.experiments``,
``client.runs``, ``client.datasets`` …), each in its own module. Opening a client on the
embedded default creates the store on first use (never at import).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from ctloop.client._local import LocalContext
from ctloop.errors import InvalidInput
from ctloop.settings import Settings, load_settings

if TYPE_CHECKING:
    from ctloop.artifacts import BlobStore
    from ctloop.client.datasets import DatasetsAPI
    from ctloop.client.experiments import ExperimentsAPI
    from ctloop.client.runs import RunsAPI
    from ctloop.store import Database

__all__ = ["Client"]


class Client:
    """Read and write one ctloop store.

    Args:
        store: a folder, ``sqlite:///FILE`` or ``postgresql+psycopg://…``; default
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
        url = settings.store_url()
        if url.startswith(("http://", "https://")):
            raise InvalidInput(
                f"store {url!r} is a ctloop server; the HTTP backend is not available in this "
                "version: point CTLOOP_STORE at a folder, sqlite:///FILE or postgresql+psycopg://"
            )
        self.settings = settings
        self._ctx = LocalContext(settings)
        self._ctx.db.ensure_ready()

    @cached_property
    def experiments(self) -> ExperimentsAPI:
        """Experiments: named groups of runs."""
        from ctloop.client.experiments import ExperimentsAPI

        return ExperimentsAPI(self._ctx)

    @cached_property
    def runs(self) -> RunsAPI:
        """Runs: create, log to, read and search them."""
        from ctloop.client.runs import RunsAPI

        return RunsAPI(self._ctx)

    @cached_property
    def datasets(self) -> DatasetsAPI:
        """Versioned datasets."""
        from ctloop.client.datasets import DatasetsAPI

        return DatasetsAPI(self._ctx)

    def __repr__(self) -> str:
        return f"Client(store={self.settings.store_url()!r})"

    @property
    def db(self) -> Database:
        """The metadata store (for tools; prefer the resource APIs)."""
        return self._ctx.db

    @property
    def blobs(self) -> BlobStore:
        """The artifact store."""
        return self._ctx.blobs

    def close(self) -> None:
        """Release connections and caches."""
        self._ctx.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
