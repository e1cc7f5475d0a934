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
import warnings
from collections.abc import Iterable
from pathlib import Path

RACY_NS = 1_000_000_000


class HashCache:
    """Digests of local files, remembered across processes in a small SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._broken = False

    def _db(self) -> sqlite3.Connection | None:
        """The cache database, or None when it cannot be opened (the cache is only a
        speed-up: without it files are simply hashed again)."""
        if self._conn is None and not self._broken:
            try:
                self._conn = self._open()
            except sqlite3.Error as exc:
                self._broken = True
                warnings.warn(
                    f"ctloop's hash cache {self.path} is unusable ({exc}); files will be "
                    "hashed again on every add",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return self._conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        # Switching to WAL needs a moment of exclusive access: several processes opening a
        # new cache at once can see "database is locked" despite the busy timeout.
        for attempt in range(50):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS hashes (dev INTEGER, ino INTEGER, size INTEGER,"
                    " mtime_ns INTEGER, digest TEXT, hashed_ns INTEGER, PRIMARY KEY (dev, ino))"
                )
                conn.commit()
                return conn
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    conn.close()
                    raise
                time.sleep(0.05 + 0.01 * attempt)
        raise AssertionError("unreachable")

    def lookup(self, stats: Iterable[os.stat_result]) -> list[str | None]:
        """The cached digest for each stat result, or None where unknown or stale."""
        items = list(stats)
        if not items:
            return []
        with self._lock:
            db = self._db()
            if db is None:
                return [None] * len(items)
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
            if db is None:
                return
            db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.commit()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
