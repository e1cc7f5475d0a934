"""Content digests: sha256 of files, streams and canonical JSON."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, BinaryIO

CHUNK = 1 << 20  # 1 MiB reads: large enough for hashlib to release the GIL and run flat out


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Hex sha256 and size in bytes of the file at ``path``."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


def sha256_stream(f: BinaryIO) -> tuple[str, int]:
    """Hex sha256 and length of everything left in the binary stream ``f``."""
    h = hashlib.sha256()
    size = 0
    while chunk := f.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def canonical_json(value: Any) -> bytes:
    """The one byte encoding of a JSON value that digests are taken over.

    Keys sorted, no insignificant whitespace, UTF-8, non-finite floats rejected.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def is_sha256(value: str) -> bool:
    """True when ``value`` looks like a hex sha256 digest."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)
