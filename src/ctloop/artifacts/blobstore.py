"""A content-addressed store of files and folders.

Layout under the root (a local folder or ``s3://bucket/prefix``)::

    objects/sha256/ab/cdef…        a file's bytes, named by their sha256
    objects/sha256/ab/cdef….dir    a folder: the canonical JSON manifest of its files
    tmp/                           local only: partial writes, renamed into place when whole

A folder's digest is the sha256 of its manifest (sorted entries of path, sha256, size),
as DVC does with ``.dir`` objects, so equal folders have equal digests wherever they live.
Writes are atomic: a temporary name and an ``os.replace`` locally, a single PUT on S3 (an S3
object appears only once its upload completes). A process killed mid-write leaves no object
under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat as stat_mod
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ctloop._internal.hashing import CHUNK, canonical_json, sha256_file
from ctloop.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    MissingExtraError,
    NotFound,
    StoreError,
)

if TYPE_CHECKING:
    from ctloop.artifacts.hashcache import HashCache
    from ctloop.settings import Settings


from ctloop.artifacts.filesystems import (
    FsspecFS,
    LocalFS,
    remote_filesystem,
    s3_storage_options,
)
from ctloop.artifacts.manifest import (
    DirEntry,
    Scan,
    ScannedFile,
    StoredObject,
    check_digest,
    folder_or_raise,
    manifest_bytes,
    parse_manifest,
    scan,
    walk_folder,
)
from ctloop.artifacts.uploads import ObjectUpload

__all__ = [
    "BlobStore",
    "DirEntry",
    "ObjectUpload",
    "Scan",
    "ScannedFile",
    "StoredObject",
    "manifest_bytes",
    "open_blob_store",
    "parse_manifest",
    "scan",
]

Progress = Callable[[int], None]
SMALL_FILE = 4 << 20  # read whole, hash and write in one pass below this size
OVERLAP_COPY = 64 << 20  # above this, copy in a thread while hashing


# --- the store ----------------------------------------------------------------------------


class BlobStore:
    """Files and folders stored once each, under the sha256 of their content."""

    def __init__(
        self,
        root: str,
        *,
        fs: Any = None,
        hash_cache: HashCache | None = None,
        workers: int = 8,
    ) -> None:
        self.root = root
        self.hash_cache = hash_cache
        self.workers = max(1, workers)
        self._fs: LocalFS | FsspecFS
        if fs is None and "://" not in root:
            self._fs = LocalFS(root)
        else:
            self._fs = FsspecFS(root, fs)

    def __repr__(self) -> str:
        return f"BlobStore({self.root!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self._fs, LocalFS)

    # --- naming -------------------------------------------------------------------------

    @staticmethod
    def key(digest: str, kind: str = "file") -> str:
        """The object key of a digest (``objects/sha256/ab/cdef…[.dir]``)."""
        check_digest(digest)
        suffix = ".dir" if kind == "dir" else ""
        return f"objects/sha256/{digest[:2]}/{digest[2:]}{suffix}"

    def url(self, digest: str, kind: str = "file") -> str:
        """Where the object lives (a path or an ``s3://`` URL)."""
        return self._fs.url(self.key(digest, kind))

    def exists(self, digest: str, kind: str = "file") -> bool:
        return self._fs.exists(self.key(digest, kind))

    def kind_of(self, digest: str) -> str:
        """``file`` or ``dir``, whichever the store holds for ``digest``."""
        if self.exists(digest, "dir"):
            return "dir"
        if self.exists(digest, "file"):
            return "file"
        raise NotFound(f"no object {digest} in the artifact store {self.root}")

    # --- writing ------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> StoredObject:
        """Store ``data``; returns its digest."""
        digest = hashlib.sha256(data).hexdigest()
        key = self.key(digest)
        existed = self._fs.exists(key)
        if not existed:
            self._fs.put_bytes(data, key)
        return StoredObject(digest, "file", len(data), 1, existed)

    def put_json(self, value: Any) -> StoredObject:
        """Store a JSON value in its canonical encoding."""
        return self.put_bytes(canonical_json(value))

    def put(self, path: str | os.PathLike[str], progress: Progress | None = None) -> StoredObject:
        """Store a file or a folder (recursively), whichever ``path`` is."""
        p = Path(path)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise NotFound(f"no such file or folder: {str(path)!r}") from None
        if stat_mod.S_ISDIR(st.st_mode):
            return self.put_dir(p, progress=progress)
        if not stat_mod.S_ISREG(st.st_mode):
            raise InvalidInput(f"{str(path)!r} is neither a regular file nor a folder")
        return self.put_file(p, progress=progress)

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> StoredObject:
        """Store one file. Unchanged files known to the hash cache are not read again."""
        src = str(path)
        try:
            st = os.stat(src)
        except FileNotFoundError:
            raise NotFound(f"no such file: {src!r}") from None
        cached = self.hash_cache.lookup([st])[0] if self.hash_cache is not None else None
        digest, existed = self._ingest(src, st, progress, cached)
        return StoredObject(digest, "file", st.st_size, 1, existed)

    def _ingest(
        self,
        src: str,
        st: os.stat_result,
        progress: Progress | None,
        cached: str | None,
        remember: list[tuple[os.stat_result, str]] | None = None,
    ) -> tuple[str, bool]:
        """Hash ``src`` (unless ``cached``) and store it if new; returns (digest, existed).

        With ``remember`` the new digest is appended there for one batched cache write;
        without it, it is written to the hash cache at once.
        """
        started = time.time_ns()
        digest = cached
        if digest is not None:
            key = self.key(digest)
            if self._fs.exists(key):
                if progress:
                    progress(st.st_size)
                return digest, True
            # Known digest but no object (e.g. a fresh store): upload without re-hashing.
            self._fs.put_file(src, key)
            if progress:
                progress(st.st_size)
            return digest, False

        if st.st_size <= SMALL_FILE:
            with open(src, "rb") as f:
                data = f.read()
            digest = hashlib.sha256(data).hexdigest()
            key = self.key(digest)
            existed = self._fs.exists(key)
            if not existed:
                self._fs.put_bytes(data, key)
        elif isinstance(self._fs, LocalFS) and st.st_size >= OVERLAP_COPY:
            digest, existed = self._hash_and_copy_local(src, self._fs, progress)
            self._remember(st, digest, started, remember)
            return digest, existed
        else:
            digest, _ = sha256_file(src)
            key = self.key(digest)
            existed = self._fs.exists(key)
            if not existed:
                self._fs.put_file(src, key)
        self._remember(st, digest, started, remember)
        if progress:
            progress(st.st_size)
        return digest, existed

    def _remember(
        self,
        st: os.stat_result,
        digest: str,
        started: int,
        remember: list[tuple[os.stat_result, str]] | None,
    ) -> None:
        if self.hash_cache is None:
            return
        if remember is not None:
            remember.append((st, digest))
        else:
            self.hash_cache.remember([(st, digest)], hashed_ns=started)

    def _hash_and_copy_local(
        self, src: str, fs: LocalFS, progress: Progress | None
    ) -> tuple[str, bool]:
        """Hash a large file on this thread while a second thread copies it (two cores)."""
        result: dict[str, Any] = {}

        def copy() -> None:
            try:
                result["tmp"] = fs.copy_to_tmp(src)
            except BaseException as exc:  # re-raised on the calling thread below
                result["error"] = exc

        worker = threading.Thread(target=copy, name="ctloop-copy", daemon=True)
        worker.start()
        h = hashlib.sha256()
        with open(src, "rb", buffering=0) as f:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while n := f.readinto(buf):
                h.update(view[:n])
                if progress:
                    progress(n)
        worker.join()
        if "error" in result:
            raise result["error"]
        digest = h.hexdigest()
        key = self.key(digest)
        tmp: Path = result["tmp"]
        if fs.exists(key):
            fs.discard_tmp(tmp)
            return digest, True
        fs.put_tmp(tmp, key)
        return digest, False

    def put_dir(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> StoredObject:
        """Store a folder: every file (in parallel), then its manifest (last, atomically).

        The manifest is written only after all its files, so an existing ``.dir`` object
        means the whole folder is present and re-adding it copies nothing.
        """
        root = Path(path)
        folder_or_raise(root, str(path))
        files = walk_folder(root, str(path))
        cached: list[str | None] = (
            self.hash_cache.lookup(st for _, _, st in files)
            if self.hash_cache is not None
            else [None] * len(files)
        )
        total = sum(st.st_size for _, _, st in files)
        entries: list[DirEntry | None] = [None] * len(files)
        if all(c is not None for c in cached):
            entries = [
                DirEntry(rel, c, st.st_size)
                for (rel, _, st), c in zip(files, cached, strict=True)
                if c is not None
            ]
            data = manifest_bytes([e for e in entries if e is not None])
            digest = hashlib.sha256(data).hexdigest()
            if self.exists(digest, "dir"):
                if progress:
                    progress(total)
                return StoredObject(digest, "dir", total, len(files), existed=True)

        remember: list[tuple[os.stat_result, str]] = []
        started = time.time_ns()

        def some(indices: range) -> None:
            for i in indices:
                rel, full, st = files[i]
                digest, _ = self._ingest(full, st, progress, cached=cached[i], remember=remember)
                entries[i] = DirEntry(rel, digest, st.st_size)

        workers = min(self.workers, len(files))
        if workers > 1:
            # One task per worker over a strided slice: a future per file costs more than
            # storing a small file (10,000 files spent ~0.5 s in submit and wake-ups).
            with ThreadPoolExecutor(workers, thread_name_prefix="ctloop-put") as pool:
                list(pool.map(some, [range(w, len(files), workers) for w in range(workers)]))
        else:
            some(range(len(files)))
        if self.hash_cache is not None and remember:
            self.hash_cache.remember(remember, hashed_ns=started)
        done = [e for e in entries if e is not None]
        data = manifest_bytes(done)
        digest = hashlib.sha256(data).hexdigest()
        key = self.key(digest, "dir")
        existed = self._fs.exists(key)
        if not existed:
            self._fs.put_bytes(data, key)
        return StoredObject(digest, "dir", total, len(done), existed)

    # --- receiving (a server taking objects from remote clients) -----------------------

    def receive(self, digest: str, *, max_bytes: int | None = None) -> ObjectUpload:
        """Begin receiving the file object ``digest`` in pieces (see :class:`ObjectUpload`)."""
        return ObjectUpload(self, digest, max_bytes)

    def put_stream(
        self, digest: str, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        """Store the bytes of ``chunks`` as ``digest``, only if they hash to it.

        Raises:
            IntegrityError: the bytes hash to another digest (nothing is stored).
            PayloadTooLarge: more than ``max_bytes`` arrived (nothing is stored).
        """
        with self.receive(digest, max_bytes=max_bytes) as upload:
            for chunk in chunks:
                upload.write(chunk)
            return upload.commit()

    def put_manifest(self, digest: str, data: bytes) -> StoredObject:
        """Store a folder object received from elsewhere, once every check passes.

        The bytes must hash to ``digest`` and be a canonical manifest (sorted entries,
        canonical JSON) of safe relative paths, each naming a file object this store
        already holds with the size the entry claims, so an existing ``.dir`` object still
        means the whole folder is present.

        Raises:
            IntegrityError: the bytes hash to another digest, or an entry's size is not its
                object's size.
            InvalidInput: not a canonical manifest, or an unsafe or duplicate path.
            Conflict: entries name file objects the store lacks (the message lists them).
        """
        key = self.key(digest, "dir")
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise IntegrityError(
                f"the manifest received as folder object {digest} hashes to {actual}; "
                "nothing was stored"
            )
        entries = parse_manifest(data, digest, malformed=InvalidInput)
        if manifest_bytes(entries) != data:
            raise InvalidInput(
                f"folder object {digest} is not a canonical manifest: entries must be sorted "
                "by path, each exactly {path, sha256, size}, in canonical JSON"
            )
        paths = {e.path for e in entries}
        if len(paths) != len(entries):
            raise InvalidInput(f"folder object {digest} lists a path more than once")
        for e in entries:
            if e.size < 0:
                raise InvalidInput(f"folder object {digest}: {e.path!r} has a negative size")
            parent = e.path.rpartition("/")[0]
            while parent:
                if parent in paths:
                    raise InvalidInput(
                        f"folder object {digest} lists {parent!r} both as a file and as a folder"
                    )
                parent = parent.rpartition("/")[0]
        sizes = self.object_sizes({e.sha256 for e in entries})
        absent = sorted(d for d, size in sizes.items() if size is None)
        if absent:
            shown = ", ".join(absent[:10]) + (
                f" and {len(absent) - 10} more" if len(absent) > 10 else ""
            )
            raise Conflict(
                f"folder object {digest} refers to {len(absent)} file object(s) this store "
                f"does not hold: {shown}; upload them first"
            )
        for e in entries:
            if sizes[e.sha256] != e.size:
                raise IntegrityError(
                    f"folder object {digest} says {e.path!r} has {e.size} bytes but object "
                    f"{e.sha256} holds {sizes[e.sha256]}; nothing was stored"
                )
        existed = self._fs.exists(key)
        if not existed:
            self._fs.put_bytes(data, key)
        return StoredObject(digest, "dir", sum(e.size for e in entries), len(entries), existed)

    def object_sizes(self, digests: Iterable[str], kind: str = "file") -> dict[str, int | None]:
        """The size of each object of ``kind``, None for those the store does not hold."""
        keys = {d: self.key(d, kind) for d in digests}

        def one(key: str) -> int | None:
            try:
                return self._fs.size(key)
            except NotFound:
                return None

        if isinstance(self._fs, LocalFS) or len(keys) < 2:
            return {d: one(k) for d, k in keys.items()}
        # Remote stores: one round trip each, so many at once.
        with ThreadPoolExecutor(self.workers, thread_name_prefix="ctloop-stat") as pool:
            return dict(zip(keys, pool.map(one, keys.values()), strict=True))

    def missing(self, objects: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Those of ``objects`` (digest, kind) the store does not hold, in the given order."""
        wanted = list(dict.fromkeys(objects))
        for digest, kind in wanted:
            if kind not in ("file", "dir"):
                raise InvalidInput(f"invalid object kind {kind!r}: use 'file' or 'dir'")
            self.key(digest, kind)
        found: dict[tuple[str, str], int | None] = {}
        for kind in ("file", "dir"):
            sizes = self.object_sizes([d for d, k in wanted if k == kind], kind)
            found.update({(d, kind): size for d, size in sizes.items()})
        return [o for o in wanted if found[o] is None]

    def stat(self, digest: str, kind: str = "file") -> StoredObject:
        """Size and file count of a stored object, from the store itself.

        Raises:
            NotFound: the store holds no such object.
        """
        if kind == "dir":
            entries = self.read_manifest(digest)
            return StoredObject(digest, "dir", sum(e.size for e in entries), len(entries), True)
        if kind != "file":
            raise InvalidInput(f"invalid object kind {kind!r}: use 'file' or 'dir'")
        return StoredObject(digest, "file", self.size(digest), 1, True)

    # --- reading ------------------------------------------------------------------------

    @contextlib.contextmanager
    def open(self, digest: str) -> Iterator[IO[bytes]]:
        """Open a stored file for reading (unverified; see :meth:`read_bytes`)."""
        f = self._fs.open(self.key(digest))
        try:
            yield f
        finally:
            f.close()

    def size(self, digest: str, kind: str = "file") -> int:
        return self._fs.size(self.key(digest, kind))

    def read_bytes(self, digest: str, *, verify: bool = True, kind: str = "file") -> bytes:
        """The bytes of a stored object, checked against the digest unless ``verify=False``."""
        with contextlib.closing(self._fs.open(self.key(digest, kind))) as f:
            data = f.read()
        if verify and hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(self._corrupt_message(digest))
        return data

    def read_manifest(self, digest: str, *, verify: bool = True) -> list[DirEntry]:
        """The entries of a folder object, each path checked to stay inside the folder."""
        return parse_manifest(self.read_bytes(digest, verify=verify, kind="dir"), digest)

    def verify(self, digest: str, kind: str | None = None) -> None:
        """Raise :class:`IntegrityError` unless the object (and a folder's files) hash right."""
        kind = kind or self.kind_of(digest)
        if kind == "dir":
            for e in self.read_manifest(digest):
                self._verify_file(e.sha256)
        else:
            self._verify_file(digest)

    def _verify_file(self, digest: str) -> None:
        h = hashlib.sha256()
        with contextlib.closing(self._fs.open(self.key(digest))) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        if h.hexdigest() != digest:
            raise IntegrityError(self._corrupt_message(digest))

    def _corrupt_message(self, digest: str) -> str:
        return (
            f"object {digest} in {self.root} is corrupted: its content no longer matches its "
            "sha256; restore it from a backup or re-add the original data"
        )

    def get(
        self,
        digest: str,
        dest: str | os.PathLike[str],
        *,
        kind: str | None = None,
        verify: bool = True,
        progress: Progress | None = None,
    ) -> Path:
        """Write a stored file or folder to ``dest``; verified while copying by default.

        Each file is written to a temporary name beside its destination and renamed only
        once whole (and verified), so a failed or corrupted read leaves nothing behind.
        """
        kind = kind or self.kind_of(digest)
        out = Path(dest)
        if kind == "dir":
            entries = self.read_manifest(digest, verify=verify)
            out.mkdir(parents=True, exist_ok=True)
            for e in entries:
                self._get_file(e.sha256, out / e.path, verify, progress)
            return out
        self._get_file(digest, out, verify, progress)
        return out

    def _get_file(self, digest: str, dest: Path, verify: bool, progress: Progress | None) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        h = hashlib.sha256()
        try:
            with contextlib.closing(self._fs.open(self.key(digest))) as src, open(tmp, "wb") as f:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    f.write(chunk)
                    if progress:
                        progress(len(chunk))
            if verify and h.hexdigest() != digest:
                raise IntegrityError(self._corrupt_message(digest))
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def open_blob_store(settings: Settings) -> BlobStore:
    """The artifact store named by the settings (local folder or ``s3://``)."""
    from ctloop.artifacts.hashcache import HashCache

    root = settings.artifacts_root()
    cache = HashCache(settings.cache_dir() / "hashes.db")
    workers = settings.data.hash_workers or os.cpu_count() or 2
    if "://" not in root:
        return BlobStore(root, hash_cache=cache, workers=workers)
    options = s3_storage_options(settings)
    try:
        fs = remote_filesystem(root, options)
    except (InvalidInput, MissingExtraError):
        raise
    except Exception as exc:  # s3fs raises many types for bad configuration
        raise StoreError(f"cannot open the artifact store {root!r}: {exc}") from exc
    return BlobStore(
        root.replace("s3a://", "s3://"),
        fs=fs,
        hash_cache=cache,
        workers=settings.data.hash_workers or 16,
    )
