"""``client.objects`` over HTTP: content-addressed files and folders on a ctloop server.

Built on the objects protocol (:mod:`ctloop.client._transfer`): only objects the server
lacks are sent, and what arrives is verified against its digest before it is written.
Digests and kinds are checked here with the local store's own checks, so bad input fails
before any request, with the local messages.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.artifacts.blobstore import BlobStore
from ctloop.artifacts.manifest import StoredObject
from ctloop.client import _transfer
from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.client._http import HttpContext

__all__ = ["HttpObjectsAPI"]


def _checked(objects: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``objects`` without repeats, each (digest, kind) checked as the local store does."""
    wanted = list(dict.fromkeys((str(d), str(k)) for d, k in objects))
    for digest, kind in wanted:
        if kind not in ("file", "dir"):
            raise InvalidInput(f"invalid object kind {kind!r}: use 'file' or 'dir'")
        BlobStore.key(digest, kind)  # InvalidInput for a malformed digest
    return wanted


class HttpObjectsAPI:
    """Store and fetch objects by digest on a ctloop server (see
    :class:`ctloop.client.objects.ObjectsAPI`)."""

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    def put(self, path: str | os.PathLike[str]) -> StoredObject:
        """Store a file or a folder (a folder becomes a manifest of its files).

        Only what the server lacks travels; ``existed`` says it held everything already.
        """
        sent = _transfer.upload(self._ctx, path)
        return StoredObject(sent.digest, sent.kind, sent.size, sent.file_count, sent.existed)

    def put_bytes(self, data: bytes) -> StoredObject:
        """Store ``data`` as one file object (sent only when the server lacks it)."""
        with tempfile.TemporaryDirectory(prefix="ctloop-put-") as tmp:
            file = Path(tmp) / "object"
            file.write_bytes(data)
            return self.put(file)

    def get(self, digest: str, kind: str, dest: str | os.PathLike[str]) -> Path:
        """Write object ``digest`` (``file`` or ``dir``) to ``dest``, verified."""
        return _transfer.download(self._ctx, digest, kind, dest)

    def read_bytes(self, digest: str) -> bytes:
        """The bytes of a file object, verified."""
        with tempfile.TemporaryDirectory(prefix="ctloop-get-") as tmp:
            return _transfer.download(self._ctx, digest, "file", Path(tmp) / "object").read_bytes()

    def missing(self, objects: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Those of ``objects`` (digest, kind) the server's store does not hold, in order."""
        wanted = _checked(objects)
        if not wanted:
            return []
        absent, _ = _transfer._missing(self._ctx, wanted)
        return absent
