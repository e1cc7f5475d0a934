"""What a stored folder is: its manifest (sorted entries of path, sha256, size), the walk
that lists a folder's files, and the hash-only scan a client does before uploading."""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_mod
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.hashing import canonical_json, is_sha256, sha256_file
from ctloop._internal.names import check_relative_path
from ctloop.errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
)

if TYPE_CHECKING:
    from ctloop.artifacts.hashcache import HashCache


Progress = Callable[[int], None]


def check_digest(digest: str) -> str:
    """``digest`` if it is a sha256 in 64 lowercase hex characters, else InvalidInput."""
    if not is_sha256(digest):
        raise InvalidInput(f"invalid digest {digest!r}: expected 64 lowercase hex characters")
    return digest


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
        check_digest(e.sha256)
    return entries


def walk_folder(root: Path, shown: str) -> list[tuple[str, str, os.stat_result]]:
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


def folder_or_raise(root: Path, shown: str) -> None:
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
        files = walk_folder(p, str(path))
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
