"""Receiving one object in pieces (a server taking an upload): hashed while written,
published only if the bytes match the digest they were sent under."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.errors import (
    IntegrityError,
    PayloadTooLarge,
    StoreError,
)

if TYPE_CHECKING:
    pass


from ctloop.artifacts.filesystems import LocalFS
from ctloop.artifacts.manifest import StoredObject

if TYPE_CHECKING:
    from ctloop.artifacts.blobstore import BlobStore


class ObjectUpload:
    """A file object arriving in pieces, e.g. the body of an HTTP upload.

    The bytes go to a temporary file while they are hashed; :meth:`commit` publishes them
    under their digest only when they hash to the digest announced at the start, so no
    client can store bytes under a name they do not have. Anything else (a wrong digest,
    too many bytes, :meth:`abort`, leaving the ``with`` block) removes the temporary file.
    """

    def __init__(self, store: BlobStore, digest: str, max_bytes: int | None = None) -> None:
        self.digest = digest
        self.key = store.key(digest)
        self.size = 0
        self._store = store
        self._max = max_bytes
        self._hash = hashlib.sha256()
        fs = store._fs
        if isinstance(fs, LocalFS):
            self._tmp = fs._tmp_name()  # beside the objects: the publish is a rename
            self._file = open(self._tmp, "xb")  # noqa: SIM115 - closed by commit or abort
        else:
            fd, name = tempfile.mkstemp(prefix="ctloop-upload-", suffix=".part")
            self._tmp = Path(name)
            self._file = os.fdopen(fd, "wb")
        self._open = True

    def write(self, data: bytes) -> None:
        """Take the next piece.

        Raises:
            PayloadTooLarge: over ``max_bytes`` in all (the upload is aborted).
        """
        if not self._open:
            raise StoreError(f"the upload of object {self.digest} is already finished")
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            self.abort()
            raise PayloadTooLarge(
                f"object {self.digest} is larger than the limit of {self._max} bytes; "
                "nothing was stored"
            )
        self._hash.update(data)
        self._file.write(data)

    def commit(self) -> StoredObject:
        """Publish the object if its bytes hash to its digest.

        Raises:
            IntegrityError: they hash to something else (nothing is stored).
        """
        if not self._open:
            raise StoreError(f"the upload of object {self.digest} is already finished")
        try:
            self._file.close()
            actual = self._hash.hexdigest()
            if actual != self.digest:
                raise IntegrityError(
                    f"the bytes received as object {self.digest} hash to {actual}: the upload "
                    "was corrupted or announced the wrong digest; nothing was stored"
                )
            fs = self._store._fs
            existed = fs.exists(self.key)
            if not existed:
                if isinstance(fs, LocalFS):
                    fs.put_tmp(self._tmp, self.key)
                else:
                    fs.put_file(str(self._tmp), self.key)
            return StoredObject(self.digest, "file", self.size, 1, existed)
        finally:
            self._open = False
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

    def abort(self) -> None:
        """Drop what arrived so far (nothing is stored); harmless when already finished."""
        if not self._open:
            return
        self._open = False
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> ObjectUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
