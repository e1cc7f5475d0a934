"""``client.objects``: content-addressed files and folders in the store's artifact store.

The lowest level of artifact access, the same on both backends: pipelines read and write
step outputs through it, by digest. Runs' named artifacts sit on top (``client.runs``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ctloop.artifacts.manifest import StoredObject
from ctloop.client._local import LocalContext


class ObjectsAPI:
    """Store and fetch objects by digest in the local artifact store."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

    def put(self, path: str | os.PathLike[str]) -> StoredObject:
        """Store a file or a folder (a folder becomes a manifest of its files)."""
        return self._ctx.blobs.put(path)

    def put_bytes(self, data: bytes) -> StoredObject:
        """Store ``data`` as one file object."""
        return self._ctx.blobs.put_bytes(data)

    def get(self, digest: str, kind: str, dest: str | os.PathLike[str]) -> Path:
        """Write object ``digest`` (``file`` or ``dir``) to ``dest``, verified."""
        return self._ctx.blobs.get(digest, dest, kind=kind)

    def read_bytes(self, digest: str) -> bytes:
        """The bytes of a file object, verified."""
        return self._ctx.blobs.read_bytes(digest)

    def missing(self, objects: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Those of ``objects`` (digest, kind) the store does not hold."""
        return self._ctx.blobs.missing(objects)
