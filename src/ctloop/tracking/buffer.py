"""Batched, asynchronous metric writes for a live run.

``Run.log_metric`` only validates and appends to a list; a background thread writes the
list in one transaction every ``flush_interval`` seconds or as soon as ``batch_size``
points wait. ``flush()`` writes what is pending on the caller's thread; ``close()`` (run
end, and interpreter exit for runs never ended) flushes and stops the thread. Points keep
their logging order. If the writer falls far behind, the logging thread writes itself
(back-pressure) rather than letting memory grow without bound.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ctloop.errors import StoreError

if TYPE_CHECKING:
    from ctloop.client.runs import RunsAPI

Point = tuple[str, float, int, int]

_live: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


class MetricBuffer:
    """Pending metric points of one run and the thread that writes them."""

    def __init__(
        self, runs: RunsAPI, run_id: str, flush_interval: float = 0.5, batch_size: int = 1000
    ) -> None:
        self._runs = runs
        self._run_id = run_id
        self._interval = flush_interval
        self._batch = batch_size
        self._pending: list[Point] = []
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one writer at a time keeps points in order
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def add(self, point: Point) -> None:
        """Queue one validated point."""
        if self._error is not None:
            self._raise()
        if self._closed:
            raise StoreError(f"run {self._run_id} has ended; its metrics can no longer change")
        with self._lock:
            self._pending.append(point)
            waiting = len(self._pending)
        if self._thread is None:
            self._start()
        if waiting >= self._batch:
            self._wake.set()
        if waiting >= 20 * self._batch:
            self._write_pending()  # back-pressure: the writer thread fell behind

    def add_many(self, points: list[Point]) -> None:
        for p in points:
            self.add(p)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._loop, name=f"ctloop-metrics-{self._run_id[:8]}", daemon=True
            )
            _live.add(self)
            self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._closed:
                break
            try:
                self._write_pending()
            except BaseException:  # kept in self._error, raised to the logging thread
                pass

    def _write_pending(self) -> None:
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._runs.log_batch(self._run_id, metrics=batch)
            except BaseException as exc:
                with self._lock:  # keep the points for the next attempt
                    self._pending[:0] = batch
                self._error = exc
                raise

    def _raise(self) -> None:
        exc, self._error = self._error, None
        assert exc is not None
        raise StoreError(
            f"writing metrics of run {self._run_id} failed: {exc}; the points are kept "
            "and written on the next flush"
        ) from exc

    def flush(self) -> None:
        """Write every pending point now; raise if a background write had failed."""
        self._error = None
        self._write_pending()

    def close(self) -> None:
        """Flush and stop the writer thread."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        _live.discard(self)
        self.flush()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)


def _flush_all_at_exit() -> None:
    for buffer in list(_live):
        try:
            buffer.close()
        except Exception:  # at exit there is no one left to tell but stderr
            import sys

            print(f"ctloop: could not write pending metrics: {buffer!r}", file=sys.stderr)


atexit.register(_flush_all_at_exit)


def live_buffers() -> list[Any]:
    """Buffers with a running writer (for tests and diagnostics)."""
    return list(_live)
