"""What the resource APIs of a local client share: settings, database, artifact store."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ctloop.settings import Settings
from ctloop.store import Database

if TYPE_CHECKING:
    from ctloop.artifacts import BlobStore


class LocalContext:
    """The local backend: SQL metadata and the blob store of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.store_url())
        self._blobs: BlobStore | None = None
        self._lock = threading.Lock()

    @property
    def blobs(self) -> BlobStore:
        """The artifact store, opened on first use (S3 clients are not cheap)."""
        if self._blobs is None:
            with self._lock:
                if self._blobs is None:
                    from ctloop.artifacts import open_blob_store

                    self._blobs = open_blob_store(self.settings)
        return self._blobs

    def close(self) -> None:
        if self._blobs is not None and self._blobs.hash_cache is not None:
            self._blobs.hash_cache.close()
        self.db.dispose()
