"""A local cache of file digests keyed by (device, inode) and checked against size and mtime.

Re-adding unchanged data is then a ``stat`` per file, not a re-hash (DVC keeps the same kind
of state). An entry whose file was modified within :data:`RACY_NS` of being hashed is not
trusted: a later write within the file system's timestamp granularity could leave size and
mtime unchanged (git calls this the "racily clean" case). Such files are hashed again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

RACY_NS = 1_000_000_000


class HashCache:
    """Digests of local files, remembered across processes in a small SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hashes (dev INTEGER, ino INTEGER, size INTEGER,"
                " mtime_ns INTEGER, digest TEXT, hashed_ns INTEGER, PRIMARY KEY (dev, ino))"
            )
            conn.commit()
            self._conn = conn
        return self._conn

    def lookup(self, stats: Iterable[os.stat_result]) -> list[str | None]:
        """The cached digest for each stat result, or None where unknown or stale."""
        items = list(stats)
        if not items:
            return []
        with self._lock:
            db = self._db()
            found: dict[tuple[int, int], tuple[int, int, str, int]] = {}
            keys = sorted({(st.st_dev, st.st_ino) for st in items})
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT dev, ino, size, mtime_ns, digest, hashed_ns FROM hashes "
                    f"WHERE ino IN ({marks})",
                    [k[1] for k in chunk],
                ).fetchall()
                for dev, ino, size, mtime_ns, digest, hashed_ns in rows:
                    found[(dev, ino)] = (size, mtime_ns, digest, hashed_ns)
        out: list[str | None] = []
        for st in items:
            hit = found.get((st.st_dev, st.st_ino))
            if (
                hit is not None
                and hit[0] == st.st_size
                and hit[1] == st.st_mtime_ns
                and hit[3] - hit[1] > RACY_NS
            ):
                out.append(hit[2])
            else:
                out.append(None)
        return out

    def remember(
        self, entries: Iterable[tuple[os.stat_result, str]], hashed_ns: int | None = None
    ) -> None:
        """Record digests of files just hashed: their stat and when the hashing started."""
        now = hashed_ns if hashed_ns is not None else time.time_ns()
        rows = [
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, digest, now)
            for st, digest in entries
        ]
        if not rows:
            return
        with self._lock:
            db = self._db()
            db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.commit()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
