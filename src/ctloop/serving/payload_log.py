"""The prediction and feedback logs: rows buffered in memory, written as Parquet segments.

Every served row (and every piece of feedback) goes through :meth:`PayloadLog.append`,
which only queues it. A background thread writes the queue as one Parquet segment per
date partition every ``flush_seconds`` or once ``flush_rows`` rows wait::

    <root>/logs/<deployment>/<kind>/date=YYYY-MM-DD/<replica>-<UTC time>-<seq>.parquet

Segments are published atomically (a hidden temporary name renamed into place locally; a
single PUT on S3), so a reader never sees half a file. On a crash the rows still queued
are lost: at most ``flush_seconds`` seconds' or ``flush_rows`` rows' worth, whichever
comes first. :func:`install_sigterm_flush` makes SIGTERM lose nothing.

Columns are documented in ``docs/logs.md``: the core ones (:data:`PREDICTION_COLUMNS`,
:data:`FEEDBACK_COLUMNS`) have fixed types; input features become ``f.<name>`` columns
and class probabilities ``p.<class>`` columns.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ctloop.artifacts.filesystems import remote_filesystem
from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FEEDBACK_COLUMNS",
    "KINDS",
    "PREDICTION_COLUMNS",
    "PayloadLog",
    "install_sigterm_flush",
]

log = logging.getLogger(__name__)

Kind = Literal["predictions", "feedback"]
KINDS: tuple[str, ...] = ("predictions", "feedback")

_STRING = pa.string()
_TIMESTAMP = pa.timestamp("us", tz="UTC")

#: The core columns of the prediction log, in order, with their Arrow types. ``prediction``
#: keeps the type the model returned (so it is not listed with a type here).
PREDICTION_COLUMNS: dict[str, pa.DataType | None] = {
    "prediction_id": _STRING,
    "request_id": _STRING,
    "timestamp": _TIMESTAMP,
    "deployment": _STRING,
    "model_version": _STRING,
    "variant": _STRING,
    "prediction": None,
    "latency_ms": pa.float64(),
    "status": _STRING,
}

#: The core columns of the feedback log. ``label`` (a class) keeps its type; ``value`` (a
#: regression target) is a float.
FEEDBACK_COLUMNS: dict[str, pa.DataType | None] = {
    "prediction_id": _STRING,
    "timestamp": _TIMESTAMP,
    "deployment": _STRING,
    "label": None,
    "value": pa.float64(),
}

_COLUMNS: dict[str, dict[str, pa.DataType | None]] = {
    "predictions": PREDICTION_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
}

# row keys holding a mapping that becomes prefixed columns
_NESTED = {"features": "f.", "probabilities": "p."}

_Chunk = tuple[float, "list[dict[str, Any]] | pd.DataFrame | Columns", int]


class Columns(dict[str, list[Any]]):
    """Rows given column by column (see :meth:`PayloadLog.append_columns`)."""


class _Block:
    """Columnar rows with the same column names, gathered as they are appended.

    Appending extends one list per column, so a server's one-row requests cost a few
    list operations each; the writer turns each list into an Arrow array in one call.
    ``times`` holds each row's append time (epoch seconds): the ``timestamp`` column.
    """

    __slots__ = ("columns", "n", "times")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in names}
        self.times: list[float] = []
        self.n = 0

    def extend(self, columns: Mapping[str, list[Any]], now: float, n: int) -> None:
        for name, values in columns.items():
            self.columns[name].extend(values)
        self.times.extend([now] * n)
        self.n += n

    def prepend(self, older: _Block) -> None:
        for name, values in self.columns.items():
            values[:0] = older.columns[name]
        self.times[:0] = older.times
        self.n += older.n


def check_names(deployment: str, kind: str) -> None:
    """Reject a deployment name that would escape its folder, or an unknown log kind."""
    if not deployment or "/" in deployment or "\\" in deployment or deployment in (".", ".."):
        raise InvalidInput(f"invalid deployment name {deployment!r}: use a name without slashes")
    if kind not in KINDS:
        raise InvalidInput(f"unknown log kind {kind!r}: use one of {', '.join(KINDS)}")


class PayloadLog:
    """A buffered, append-only Parquet log of one deployment's predictions or feedback.

    Args:
        root: the artifact store root: a local folder or ``s3://bucket/prefix``.
        deployment: the deployment name (a folder under ``logs/``).
        kind: ``"predictions"`` or ``"feedback"``.
        replica: this writer's name; it prefixes every segment, so replicas never collide.
        flush_rows: queued rows that trigger a flush before ``flush_seconds`` pass.
        flush_seconds: the longest a row waits in memory (the loss window on a crash).
        max_queue_rows: rows held at most; beyond it rows are dropped and counted.
        storage_options: fsspec options for a remote root (see
            :func:`ctloop.artifacts.filesystems.s3_storage_options`).
    """

    def __init__(
        self,
        root: str,
        deployment: str,
        kind: Kind,
        *,
        replica: str,
        flush_rows: int = 1000,
        flush_seconds: float = 5.0,
        max_queue_rows: int = 100_000,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_names(deployment, kind)
        if not replica or "/" in replica:
            raise InvalidInput(f"invalid replica name {replica!r}: use a name without slashes")
        if flush_rows < 1 or flush_seconds <= 0 or max_queue_rows < 1:
            raise InvalidInput(
                f"flush_rows ({flush_rows}) and max_queue_rows ({max_queue_rows}) must be "
                f">= 1 and flush_seconds ({flush_seconds}) > 0"
            )
        self.root = root.rstrip("/")
        self.deployment = deployment
        self.kind = kind
        self.replica = replica
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_queue_rows = max_queue_rows
        self._fs = remote_filesystem(root, storage_options) if "://" in root else None
        if self._fs is not None:
            self.root = self.root.replace("s3a://", "s3://", 1)
        self._columns = _COLUMNS[kind]
        # Reentrant: the SIGTERM handler runs in the main thread and may interrupt it
        # while it holds either lock (inside append or flush).
        self._queue_lock = threading.RLock()
        self._write_lock = threading.RLock()
        # (append time, rows, row count); rows are a list of dicts or one DataFrame
        self._chunks: list[_Chunk] = []
        # columnar appends without timestamps, by their column names (the server's rows)
        self._blocks: dict[tuple[str, ...], _Block] = {}
        self._queued = 0
        self._seq = itertools.count()
        self._wake = threading.Event()
        self._closed = False
        self.rows_written = 0
        self.rows_dropped = 0
        self.segments_written = 0
        self.flush_errors = 0
        self._thread = threading.Thread(
            target=self._run, name=f"ctloop-log-{deployment}-{kind}", daemon=True
        )
        self._thread.start()

    # --- the hot path -------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Rows waiting in memory for the next flush."""
        return self._queued

    def append(self, rows: list[dict[str, Any]] | pd.DataFrame) -> int:
        """Queue rows for the next segment; never waits on I/O.

        Rows are dicts of column values; ``features`` and ``probabilities`` may be
        mappings, stored as ``f.<name>`` and ``p.<class>`` columns. A DataFrame's columns
        are stored as they are. A row without ``timestamp`` gets the time of this call.
        Do not mutate the rows after appending them.

        Returns:
            the rows accepted; the rest (past ``max_queue_rows``, or after close) are
            dropped and counted in :attr:`rows_dropped`.
        """
        if isinstance(rows, dict):
            raise InvalidInput("append takes a list of rows (dicts) or a DataFrame, not a dict")
        n = len(rows)  # a DataFrame is expanded into rows by the writer thread
        if n == 0:
            return 0
        now = time.time()
        with self._queue_lock:
            if self._closed:
                self.rows_dropped += n
                return 0
            room = max(self.max_queue_rows - self._queued, 0)
            if room < n:
                self.rows_dropped += n - room
                if room == 0:
                    return 0
                rows = rows[:room] if isinstance(rows, list) else rows.iloc[:room]
                n = room
            self._chunks.append((now, rows, n))
            self._queued += n
            full = self._queued >= self.flush_rows
        if full:
            self._wake.set()
        return n

    def append_columns(self, columns: Mapping[str, list[Any]], n: int) -> int:
        """Queue ``n`` rows given as columns (each a list of ``n`` values); never waits.

        The cheap form for a server: no dict per row, and the writer turns each column
        into an Arrow array in one call. Keys are final column names (``f.age``,
        ``p.yes``); ``timestamp`` may be left out (the time of this call). Returns the rows
        accepted (all of them, or none when the queue is full or the log closed).
        """
        if n <= 0:
            return 0
        if any(len(values) != n for values in columns.values()):
            raise InvalidInput(f"every column must hold {n} values")
        now = time.time()
        names = tuple(columns)
        with self._queue_lock:
            if self._closed or self._queued + n > self.max_queue_rows:
                self.rows_dropped += n
                return 0
            if "timestamp" in columns:
                self._chunks.append((now, Columns(columns), n))
            else:
                block = self._blocks.get(names)
                if block is None:
                    block = self._blocks[names] = _Block(names)
                block.extend(columns, now, n)
            self._queued += n
            full = self._queued >= self.flush_rows
        if full:
            self._wake.set()
        return n

    # --- flushing -----------------------------------------------------------------------

    def flush(self) -> int:
        """Write every queued row now; returns the rows written.

        Raises:
            OSError: the store refused the write; the rows stay queued for the next try.
        """
        with self._write_lock:
            with self._queue_lock:
                chunks, self._chunks = self._chunks, []
                blocks, self._blocks = self._blocks, {}
            if not chunks and not blocks:
                return 0
            taken = sum(n for _, _, n in chunks) + sum(b.n for b in blocks.values())
            try:
                written = self._write(chunks, list(blocks.values()))
            except BaseException:
                with self._queue_lock:  # keep them for the next flush, in order
                    self._chunks[:0] = chunks
                    for names, block in blocks.items():
                        newer = self._blocks.get(names)
                        if newer is not None:
                            newer.prepend(block)
                        else:
                            self._blocks[names] = block
                raise
            with self._queue_lock:
                self._queued -= taken
            self.rows_written += written
            return written

    def close(self) -> None:
        """Flush everything and stop the writer thread; later appends are dropped.

        Idempotent. Raises what the final write raised (its rows are counted as dropped).
        """
        self._shutdown(join=True)

    def __enter__(self) -> PayloadLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shutdown(self, *, join: bool) -> None:
        with self._queue_lock:
            self._closed = True
        if join:
            self._wake.set()
            self._thread.join()
        try:
            self.flush()
        except BaseException:
            with self._queue_lock:
                lost, self._chunks = self._chunks, []
                blocks, self._blocks = self._blocks, {}
                n = sum(n for _, _, n in lost) + sum(b.n for b in blocks.values())
                self.rows_dropped += n
                self._queued -= n
            raise

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._closed:
                return  # the closer writes the rest
            try:
                self.flush()
            except Exception:
                self.flush_errors += 1
                log.warning(
                    "cannot write the %s log of %r to %s; the rows stay queued",
                    self.kind,
                    self.deployment,
                    self.root,
                    exc_info=True,
                )

    # --- segments -----------------------------------------------------------------------

    def _write(self, chunks: list[_Chunk], blocks: Sequence[_Block] = ()) -> int:
        rows: list[dict[str, Any]] = []
        # columnar chunks of the same day and columns are joined, then converted at once
        groups: dict[tuple[date, tuple[str, ...]], dict[str, list[Any]]] = {}
        written = 0
        for appended, batch, n in chunks:
            if isinstance(batch, Columns):
                when = datetime.fromtimestamp(appended, UTC)
                batch = Columns(batch)
                if "timestamp" not in batch:
                    batch["timestamp"] = [when] * n
                else:
                    batch["timestamp"] = [_utc(t, appended) for t in batch["timestamp"]]
                if "deployment" not in batch:
                    batch["deployment"] = [self.deployment] * n
                day = batch["timestamp"][0].date() if n else when.date()
                group = (day, tuple(batch))
                into = groups.get(group)
                if into is None:
                    into = groups[group] = {k: [] for k in batch}
                for key, values in batch.items():
                    into[key].extend(values)
                written += n
                continue
            records = batch if isinstance(batch, list) else batch.to_dict("records")
            for record in records:
                try:
                    rows.append(self._normalise(record, appended))
                except Exception as exc:  # one bad row must not block the rest forever
                    with self._queue_lock:
                        self.rows_dropped += 1
                    log.warning("dropped a %s log row of %r: %s", self.kind, self.deployment, exc)
        by_date: dict[date, list[pa.Table]] = {}
        day_rows: dict[date, list[dict[str, Any]]] = {}
        for row in rows:
            day_rows.setdefault(row["timestamp"].date(), []).append(row)
        for day, those in day_rows.items():
            by_date.setdefault(day, []).append(_to_table(those, self._columns))
        for (day, _), columns in groups.items():
            by_date.setdefault(day, []).append(_columns_table(columns, self._columns))
        for block in blocks:
            for day, table in self._block_tables(block):
                by_date.setdefault(day, []).append(table)
            written += block.n
        for day, tables in sorted(by_date.items(), key=lambda item: item[0]):
            try:
                joined = [pa.concat_tables(tables, promote_options="permissive")]
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                joined = tables  # e.g. predictions as numbers here, as text there: one each
            for table in joined:
                self._write_segment(day, table)
        return len(rows) + written

    def _block_tables(self, block: _Block) -> list[tuple[date, pa.Table]]:
        """A block as one table per UTC day of its rows."""
        columns = dict(block.columns)
        if "deployment" not in columns:
            columns["deployment"] = [self.deployment] * block.n
        micros = (np.asarray(block.times, dtype=np.float64) * 1e6).astype(np.int64)
        table = _columns_table(columns, self._columns, timestamps=pa.array(micros, _TIMESTAMP))
        days = micros // 86_400_000_000
        first, last = int(days[0]), int(days[-1])
        if first == last and (days == first).all():
            return [(_day(first), table)]
        return [(_day(int(d)), table.filter(pa.array(days == d))) for d in np.unique(days)]

    def _normalise(self, row: Mapping[Any, Any], appended: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in row.items():
            prefix = _NESTED.get(key)
            if prefix is not None and isinstance(value, Mapping):
                for name, v in value.items():
                    out[f"{prefix}{name}"] = v
            else:
                out[str(key)] = value
        out["timestamp"] = _utc(out.get("timestamp"), appended)
        if out.get("deployment") is None:
            out["deployment"] = self.deployment
        if self.kind == "predictions" and out.get("prediction_id") is None:
            out["prediction_id"] = uuid.uuid4().hex
        return out

    def _write_segment(self, day: date, table: pa.Table) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{self.replica}-{stamp}-{next(self._seq):06d}.parquet"
        folder = f"logs/{self.deployment}/{self.kind}/date={day.isoformat()}"
        if self._fs is None:
            final_dir = os.path.join(self.root, folder)
            os.makedirs(final_dir, exist_ok=True)
            # a dot name: readers glob *.parquet and never see a half-written file
            tmp = os.path.join(final_dir, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                pq.write_table(table, tmp)
                os.replace(tmp, os.path.join(final_dir, name))
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        else:
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            self._fs.pipe_file(f"{self.root}/{folder}/{name}", sink.getvalue().to_pybytes())
        self.segments_written += 1


def install_sigterm_flush(*logs: PayloadLog) -> None:
    """On SIGTERM, flush and close ``logs``, then let the signal do what it did before.

    A previous Python handler (e.g. uvicorn's) is called next; with the default action
    the process then dies of SIGTERM as it would have. Call from the main thread (Python
    runs signal handlers there), after any other code that installs a SIGTERM handler.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: FrameType | None) -> None:
        for payload_log in logs:
            try:
                # no join: the writer thread may wait for a lock this thread holds
                payload_log._shutdown(join=False)
            except Exception:
                log.exception(
                    "cannot flush the %s log of %r", payload_log.kind, payload_log.deployment
                )
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handle)


# --- helpers ------------------------------------------------------------------------------


def _utc(value: Any, default: float) -> datetime:
    """A timestamp as an aware UTC datetime: datetimes (naive = UTC), ISO strings, epochs."""
    if value is None or value != value:  # missing, NaN or NaT
        return datetime.fromtimestamp(default, UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    raise InvalidInput(f"cannot read {value!r} as a timestamp: use a datetime or ISO string")


def _to_table(rows: list[dict[str, Any]], core: Mapping[str, pa.DataType | None]) -> pa.Table:
    names = list(core)
    seen = set(names)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                names.append(key)
    arrays: dict[str, pa.Array] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        arrays[name] = _column(values, core.get(name))
    return pa.table(arrays)


def _day(days_since_epoch: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + days_since_epoch)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _columns_table(
    columns: Mapping[str, list[Any]],
    core: Mapping[str, pa.DataType | None],
    *,
    timestamps: pa.Array | None = None,
) -> pa.Table:
    n = len(next(iter(columns.values())))
    names = list(core) + [k for k in columns if k not in core]
    arrays = {}
    for name in names:
        if name == "timestamp" and timestamps is not None:
            arrays[name] = timestamps
        else:
            arrays[name] = _column(columns.get(name, [None] * n), core.get(name))
    return pa.table(arrays)


def _column(values: list[Any], type_: pa.DataType | None) -> pa.Array:
    if type_ == pa.string():
        try:
            return pa.array(values, pa.string())  # text already: one C loop
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if type_ is not None:
        try:
            return pa.array(values, type_)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # e.g. a value sent as "3.5": keep it in whatever type fits
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # mixed types in one column (e.g. 1 and "yes"), or an integer past 64 bits: keep
        # them all, as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())
