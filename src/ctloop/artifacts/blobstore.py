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
import json
import os
import shutil
import stat as stat_mod
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ctloop._internal.hashing import CHUNK, canonical_json, is_sha256, sha256_file
from ctloop._internal.names import check_relative_path
from ctloop.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    MissingExtraError,
    NotFound,
    PayloadTooLarge,
    StoreError,
)

if TYPE_CHECKING:
    from ctloop.artifacts.hashcache import HashCache
    from ctloop.settings import Settings

__all__ = [
    "BlobStore",
    "DirEntry",
    "ObjectUpload",
    "Scan",
    "ScannedFile",
    "StoredObject",
    "open_blob_store",
    "parse_manifest",
    "scan",
]

Progress = Callable[[int], None]
SMALL_FILE = 4 << 20  # read whole, hash and write in one pass below this size
OVERLAP_COPY = 64 << 20  # above this, copy in a thread while hashing


@dataclass(frozen=True)
class DirEntry:
    """One file of a folder object."""

    path: str
    sha256: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class StoredObject:
    """What the store holds under one digest."""

    digest: str
    kind: str  # "file" | "dir"
    size: int  # bytes of the file, or of all files of the folder
    file_count: int
    existed: bool = False  # True when nothing had to be written


def manifest_bytes(entries: list[DirEntry]) -> bytes:
    """The canonical manifest of a folder: entries sorted by path, canonical JSON."""
    ordered = sorted(entries, key=lambda e: e.path)
    return canonical_json([e.as_json() for e in ordered])


def parse_manifest(
    raw: bytes, digest: str, *, malformed: type[InvalidInput] = IntegrityError
) -> list[DirEntry]:
    """The entries of manifest bytes, each path checked to stay inside the folder.

    Raises:
        IntegrityError: (or ``malformed``) when ``raw`` is not a list of entries.
        InvalidInput: for a path that could escape the folder or a malformed digest.
    """
    try:
        items = json.loads(raw)
        if not isinstance(items, list):
            raise TypeError("not a list")
        entries = [DirEntry(str(i["path"]), str(i["sha256"]), int(i["size"])) for i in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise malformed(f"folder object {digest} is not a valid manifest: {exc}") from exc
    for e in entries:
        check_relative_path(e.path, "path in a folder manifest")
        BlobStore.key(e.sha256)
    return entries


def _walk_folder(root: Path, shown: str) -> list[tuple[str, str, os.stat_result]]:
    """The regular files under ``root`` as (relative POSIX path, full path, stat), sorted."""
    files: list[tuple[str, str, os.stat_result]] = []
    prefix = len(os.path.join(str(root), ""))
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue  # vanished (or a dangling symlink) between listing and stat
            if not stat_mod.S_ISREG(st.st_mode):
                continue
            rel = full[prefix:]
            if os.sep != "/":
                rel = rel.replace(os.sep, "/")
            # Refuse now what read_manifest would refuse later (e.g. a '\\' in a name),
            # rather than store a folder that can never be read back. Names from os.walk
            # hold no '..' or absolute parts, so only the cheap checks remain.
            if "\\" in rel or "\x00" in rel:
                check_relative_path(rel, f"file name in folder {shown!r}")
            files.append((rel, full, st))
    return files


def _folder_or_raise(root: Path, shown: str) -> None:
    if not root.is_dir():
        if root.exists():
            raise InvalidInput(f"{shown!r} is not a folder; store a file with put_file")
        raise NotFound(f"no such folder: {shown!r}")


@dataclass(frozen=True)
class ScannedFile:
    """One file found by :func:`scan`: where it is here and what the store would call it."""

    path: str  # relative path in the folder (a single file: its name)
    source: str  # the file on this machine
    sha256: str
    size: int


@dataclass(frozen=True)
class Scan:
    """What a file or folder would be stored as, computed without storing anything."""

    digest: str
    kind: str  # "file" | "dir"
    size: int
    files: tuple[ScannedFile, ...]
    manifest: bytes | None = None  # a folder's manifest (its digest is ``digest``)

    @property
    def file_count(self) -> int:
        return len(self.files)


def scan(
    path: str | os.PathLike[str],
    *,
    hash_cache: HashCache | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> Scan:
    """Hash a file or folder the way the store would, without storing it.

    Files known to ``hash_cache`` (unchanged inode, size and mtime) are not read; the
    others are hashed in ``workers`` threads and remembered. This is the first step of an
    upload to a remote store: the digests say which objects the other side lacks.

    Raises:
        NotFound: when ``path`` does not exist.
        InvalidInput: when it is neither a regular file nor a folder.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise NotFound(f"no such file or folder: {str(path)!r}") from None
    if stat_mod.S_ISDIR(st.st_mode):
        files = _walk_folder(p, str(path))
    elif stat_mod.S_ISREG(st.st_mode):
        files = [(p.name, str(p), st)]
    else:
        raise InvalidInput(f"{str(path)!r} is neither a regular file nor a folder")
    digests: list[str | None] = (
        hash_cache.lookup(st for _, _, st in files)
        if hash_cache is not None
        else [None] * len(files)
    )
    sizes = [st.st_size for _, _, st in files]
    todo = [i for i, d in enumerate(digests) if d is None]
    if progress:
        progress(sum(sizes[i] for i, d in enumerate(digests) if d is not None))
    started = time.time_ns()

    def one(i: int) -> None:
        digests[i], sizes[i] = sha256_file(files[i][1])
        if progress:
            progress(sizes[i])

    if len(todo) > 1 and workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="ctloop-scan") as pool:
            list(pool.map(one, todo))
    else:
        for i in todo:
            one(i)
    if hash_cache is not None and todo:
        # A file whose size moved while it was read changed under us: not worth remembering.
        fresh = [
            (files[i][2], d)
            for i in todo
            if (d := digests[i]) is not None and sizes[i] == files[i][2].st_size
        ]
        hash_cache.remember(fresh, hashed_ns=started)
    found = tuple(
        ScannedFile(rel, full, d, size)
        for (rel, full, _), d, size in zip(files, digests, sizes, strict=True)
        if d is not None
    )
    if not stat_mod.S_ISDIR(st.st_mode):
        (only,) = found
        return Scan(only.sha256, "file", only.size, found)
    data = manifest_bytes([DirEntry(f.path, f.sha256, f.size) for f in found])
    total = sum(f.size for f in found)
    return Scan(hashlib.sha256(data).hexdigest(), "dir", total, found, data)


# --- file systems -------------------------------------------------------------------------


class _LocalFS:
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


class _FsspecFS:
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
        self._fs: _LocalFS | _FsspecFS
        if fs is None and "://" not in root:
            self._fs = _LocalFS(root)
        else:
            self._fs = _FsspecFS(root, fs)

    def __repr__(self) -> str:
        return f"BlobStore({self.root!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self._fs, _LocalFS)

    # --- naming -------------------------------------------------------------------------

    @staticmethod
    def key(digest: str, kind: str = "file") -> str:
        """The object key of a digest (``objects/sha256/ab/cdef…[.dir]``)."""
        if not is_sha256(digest):
            raise InvalidInput(f"invalid digest {digest!r}: expected 64 lowercase hex characters")
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
        elif isinstance(self._fs, _LocalFS) and st.st_size >= OVERLAP_COPY:
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
        self, src: str, fs: _LocalFS, progress: Progress | None
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
        _folder_or_raise(root, str(path))
        files = _walk_folder(root, str(path))
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

        if isinstance(self._fs, _LocalFS) or len(keys) < 2:
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
        if isinstance(fs, _LocalFS):
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
                if isinstance(fs, _LocalFS):
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


def open_blob_store(settings: Settings) -> BlobStore:
    """The artifact store named by the settings (local folder or ``s3://``)."""
    from ctloop.artifacts.hashcache import HashCache

    root = settings.artifacts_root()
    cache = HashCache(settings.cache_dir() / "hashes.db")
    workers = settings.data.hash_workers or os.cpu_count() or 2
    if "://" not in root:
        return BlobStore(root, hash_cache=cache, workers=workers)
    scheme = root.split("://", 1)[0]
    if scheme not in ("s3", "s3a"):
        raise InvalidInput(
            f"unsupported artifact store {root!r}: use a local folder or s3://bucket/prefix"
        )
    try:
        import s3fs
    except ImportError as exc:
        raise MissingExtraError("s3fs", "s3", "an S3 artifact store") from exc
    client_kwargs: dict[str, Any] = {}
    if settings.s3.endpoint_url:
        client_kwargs["endpoint_url"] = settings.s3.endpoint_url
    if settings.s3.region:
        client_kwargs["region_name"] = settings.s3.region
    try:
        fs = s3fs.S3FileSystem(anon=settings.s3.anon, client_kwargs=client_kwargs)
    except Exception as exc:  # s3fs raises many types for bad configuration
        raise StoreError(f"cannot open the artifact store {root!r}: {exc}") from exc
    return BlobStore(
        root.replace("s3a://", "s3://"),
        fs=fs,
        hash_cache=cache,
        workers=settings.data.hash_workers or 16,
    )
