"""Moving files and folders between this machine and a ctloop server: the objects protocol.

Upload (:func:`upload`):

1. hash the file or folder here; files the local hash cache knows unchanged are a ``stat``;
2. ask which objects the server lacks: ``POST /api/v1/objects/missing`` (for a folder the
   ``.dir`` object alone first: when the server holds it, it holds every file, and nothing
   more is asked or sent);
3. send only those, each streamed, several at once: ``PUT /api/v1/objects/sha256/{digest}``
   (the server hashes what arrives and keeps it only if it is ``digest``);
4. send a folder's manifest last: ``PUT /api/v1/objects/sha256/{digest}.dir`` (the server
   accepts it only once it holds every file it names).

Download (:func:`download`): ``GET /api/v1/objects/sha256/{digest}[.dir]``, streamed to a
temporary name beside the destination while hashing, renamed into place only when the
bytes match the digest; a folder's manifest is fetched and verified before its files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ctloop._internal.hashing import CHUNK
from ctloop.artifacts.blobstore import BlobStore, ScannedFile, parse_manifest, scan
from ctloop.errors import IntegrityError, InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from ctloop.client._http import HttpContext

__all__ = ["Uploaded", "download", "upload"]

Progress = Callable[[int], None]
T = TypeVar("T")

THREADS = 8  # parallel transfers: many small files are latency-bound, not bandwidth-bound
MISSING_BATCH = 5_000  # objects per /objects/missing request (the server takes 10,000)


@dataclass(frozen=True)
class Uploaded:
    """What an upload stored on the server (the server recomputes sizes for itself).

    Two uploads of the same data compare equal whether or not anything travelled.
    """

    digest: str
    kind: str  # "file" | "dir"
    size: int
    file_count: int
    existed: bool = field(default=False, compare=False)  # nothing had to be sent


def upload(
    ctx: HttpContext, path: str | os.PathLike[str], progress: Progress | None = None
) -> Uploaded:
    """Send a file or folder to the server's artifact store; only what it lacks travels.

    Args:
        ctx: the HTTP backend.
        path: a file, or a folder (every regular file under it).
        progress: called with byte counts as data is sent or found already present
            (from several threads; the calls are serialised); they add up to the size.

    Raises:
        NotFound: ``path`` does not exist.
        PayloadTooLarge: a file is over the server's upload limit (nothing of it is sent).
        IntegrityError: a file changed while it was sent.
    """
    from ctloop.artifacts.hashcache import HashCache

    settings = ctx.settings
    cache = HashCache(settings.cache_dir() / "hashes.db")
    try:
        workers = settings.data.hash_workers or os.cpu_count() or 2
        found = scan(path, hash_cache=cache, workers=workers)
    finally:
        cache.close()
    done = Uploaded(found.digest, found.kind, found.size, found.file_count)
    report = _serialised(progress)
    if found.kind == "dir":
        absent, _ = _missing(ctx, [(found.digest, "dir")])
        if not absent:
            report(found.size)
            return replace(done, existed=True)
    first: dict[str, ScannedFile] = {}
    for f in found.files:
        first.setdefault(f.sha256, f)  # equal files travel once
    absent, limit = _missing(ctx, [(digest, "file") for digest in first])
    send = [first[digest] for digest, _ in absent]
    too_big = [f for f in send if f.size > limit]
    if too_big:
        f = too_big[0]
        raise PayloadTooLarge(
            f"{f.source!r} has {f.size} bytes, over the upload limit of the ctloop server at "
            f"{ctx.url} ({limit} bytes); its operator can raise CTLOOP_SERVER_MAX_UPLOAD_BYTES"
        )
    report(found.size - sum(f.size for f in send))
    _parallel(lambda f: _put_file(ctx, f, report), send)
    if found.manifest is not None:
        ctx.request(
            "PUT",
            f"/objects/sha256/{found.digest}.dir",
            content=found.manifest,
            headers={"Content-Type": "application/json"},
        )
    return replace(done, existed=not send and found.kind == "file")


def download(
    ctx: HttpContext,
    digest: str,
    kind: str,
    dest: str | os.PathLike[str],
    progress: Progress | None = None,
) -> Path:
    """Write the server's object ``digest`` (a file or a folder) to ``dest``, verified.

    Each file is streamed to a temporary name beside its destination and renamed only
    once its bytes hash to its digest; a folder's manifest is verified before any file.

    Raises:
        NotFound: the server holds no such object.
        IntegrityError: what arrived does not match the digest (nothing is left behind).
    """
    if kind not in ("file", "dir"):
        raise InvalidInput(f"invalid object kind {kind!r}: use 'file' or 'dir'")
    BlobStore.key(digest, kind)  # a malformed digest is refused before any request
    out = Path(dest)
    report = _serialised(progress)
    if kind == "file":
        _get_file(ctx, digest, out, report)
        return out
    with ctx.stream("GET", f"/objects/sha256/{digest}.dir") as response:
        raw = response.read()
    if hashlib.sha256(raw).hexdigest() != digest:
        raise IntegrityError(_corrupt(ctx, f"{digest}.dir"))
    entries = parse_manifest(raw, digest)
    out.mkdir(parents=True, exist_ok=True)
    _parallel(lambda e: _get_file(ctx, e.sha256, out / e.path, report), entries)
    return out


# --- the pieces ---------------------------------------------------------------------------


def _missing(ctx: HttpContext, objects: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """Which of ``objects`` the server lacks, and its upload limit in bytes."""
    absent: list[tuple[str, str]] = []
    limit = 0
    for start in range(0, max(len(objects), 1), MISSING_BATCH):
        batch = objects[start : start + MISSING_BATCH]
        body = {"objects": [{"digest": d, "kind": k} for d, k in batch]}
        answer = ctx.request("POST", "/objects/missing", json=body)
        absent.extend((str(o["digest"]), str(o["kind"])) for o in answer["missing"])
        limit = int(answer["max_upload_bytes"])
    return absent, limit


class _FileBody:
    """The bytes of a scanned file as a request body.

    Iterable again (not a generator), so a PUT retried after a dropped connection sends
    the file from its start. It sends exactly the scanned size, which the request
    declares as its Content-Length; a file that changed since is refused by the server.
    """

    def __init__(self, file: ScannedFile, report: Progress) -> None:
        self.file = file
        self.report = report

    def __iter__(self) -> Iterator[bytes]:
        left = self.file.size
        with open(self.file.source, "rb") as f:
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise InvalidInput(
                        f"{self.file.source!r} shrank while it was being uploaded; upload it again"
                    )
                left -= len(chunk)
                self.report(len(chunk))
                yield chunk


def _put_file(ctx: HttpContext, file: ScannedFile, report: Progress) -> None:
    try:
        ctx.request(
            "PUT",
            f"/objects/sha256/{file.sha256}",
            content=_FileBody(file, report),
            headers={"Content-Length": str(file.size), "Content-Type": "application/octet-stream"},
        )
    except IntegrityError:
        raise IntegrityError(
            f"{file.source!r} changed while it was being uploaded (the server received bytes "
            "with another sha256 and stored nothing); upload it again"
        ) from None


def _get_file(ctx: HttpContext, digest: str, dest: Path, report: Progress) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    h = hashlib.sha256()
    try:
        with ctx.stream("GET", f"/objects/sha256/{digest}") as response, open(tmp, "wb") as f:
            for chunk in response.iter_bytes(CHUNK):
                h.update(chunk)
                f.write(chunk)
                report(len(chunk))
        if h.hexdigest() != digest:
            raise IntegrityError(_corrupt(ctx, digest))
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _corrupt(ctx: HttpContext, name: str) -> str:
    return (
        f"object {name} from the ctloop server at {ctx.url} does not match its sha256: the "
        "server's copy is corrupted or the transfer was; nothing was written"
    )


def _serialised(progress: Progress | None) -> Progress:
    """``progress`` made safe to call from several threads (a no-op for None)."""
    if progress is None:
        return lambda _n: None
    lock = threading.Lock()

    def report(n: int) -> None:
        if n:
            with lock:
                progress(n)

    return report


def _parallel(fn: Callable[[T], None], items: Sequence[T]) -> None:
    """``fn`` on every item, in up to :data:`THREADS` threads; the first error is raised."""
    if len(items) < 2:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(min(THREADS, len(items)), thread_name_prefix="ctloop-xfer") as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
