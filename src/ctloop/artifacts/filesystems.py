"""Where a blob store's bytes live: plain ``os`` calls locally, any fsspec file system
(S3 through s3fs) otherwise. Both publish atomically (see :mod:`ctloop.artifacts.blobstore`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ctloop.errors import InvalidInput, MissingExtraError, NotFound

if TYPE_CHECKING:
    from ctloop.settings import Settings


def s3_storage_options(settings: Settings) -> dict[str, Any]:
    """The s3fs options the settings give (``CTLOOP_S3_*``): endpoint, region, anonymity."""
    client_kwargs: dict[str, Any] = {}
    if settings.s3.endpoint_url:
        client_kwargs["endpoint_url"] = settings.s3.endpoint_url
    if settings.s3.region:
        client_kwargs["region_name"] = settings.s3.region
    return {"anon": settings.s3.anon, "client_kwargs": client_kwargs}


def remote_filesystem(root: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """The fsspec file system of a remote artifact root (``s3://bucket/prefix``).

    Raises:
        InvalidInput: the root's scheme is not supported.
        MissingExtraError: s3fs is not installed.
    """
    scheme = root.split("://", 1)[0]
    if scheme not in ("s3", "s3a"):
        raise InvalidInput(
            f"unsupported artifact store {root!r}: use a local folder or s3://bucket/prefix"
        )
    try:
        import s3fs
    except ImportError as exc:
        raise MissingExtraError("s3fs", "s3", "an S3 artifact store") from exc
    return s3fs.S3FileSystem(**dict(storage_options or {}))


class LocalFS:
    """Plain ``os`` calls: the fast path for the embedded store."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self._root = str(self.root)
        self._made: set[str] = set()  # folders known to exist: no mkdir per object

    def url(self, key: str) -> str:
        return os.path.join(self._root, key)

    def exists(self, key: str) -> bool:
        return os.path.exists(os.path.join(self._root, key))

    def size(self, key: str) -> int:
        try:
            return os.stat(os.path.join(self._root, key)).st_size
        except FileNotFoundError:
            raise NotFound(f"no object {key} in the artifact store {self.root}") from None

    def _mkdir(self, folder: str) -> None:
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def _tmp_name(self) -> Path:
        self._mkdir(str(self.tmp))
        return self.tmp / f"{uuid.uuid4().hex}.part"

    def _publish(self, tmp: Path, key: str, *, chmod: bool = True) -> None:
        final = os.path.join(self._root, key)
        self._mkdir(os.path.dirname(final))
        if chmod:
            os.chmod(tmp, 0o444)  # objects are immutable; guard against in-place edits
        os.replace(tmp, final)

    def put_bytes(self, data: bytes, key: str) -> None:
        tmp = self._tmp_name()
        try:
            # created read-only at once (the open descriptor may still write)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            self._publish(tmp, key, chmod=False)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def copy_to_tmp(self, src: str) -> Path:
        tmp = self._tmp_name()
        try:
            shutil.copyfile(src, tmp)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return tmp

    def put_tmp(self, tmp: Path, key: str) -> None:
        try:
            self._publish(tmp, key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def discard_tmp(self, tmp: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()

    def put_file(self, src: str, key: str) -> None:
        self.put_tmp(self.copy_to_tmp(src), key)

    def open(self, key: str) -> IO[bytes]:
        try:
            return open(self.root / key, "rb")
        except FileNotFoundError:
            raise NotFound(f"no object {key} in the artifact store {self.root}") from None


class FsspecFS:
    """Any fsspec file system (S3 through s3fs). A single PUT is atomic on object stores."""

    def __init__(self, root: str, fs: Any) -> None:
        self.root = root.rstrip("/")
        self.fs = fs

    def url(self, key: str) -> str:
        return f"{self.root}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.url(key)))

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self.url(key)))
        except FileNotFoundError:
            raise NotFound(f"no object {key} in the artifact store {self.root}") from None

    def put_bytes(self, data: bytes, key: str) -> None:
        self.fs.pipe_file(self.url(key), data)

    def put_file(self, src: str, key: str) -> None:
        self.fs.put_file(src, self.url(key))

    def open(self, key: str) -> IO[bytes]:
        try:
            f: IO[bytes] = self.fs.open(self.url(key), "rb")
            return f
        except FileNotFoundError:
            raise NotFound(f"no object {key} in the artifact store {self.root}") from None
