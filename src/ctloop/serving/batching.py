"""Opportunistic micro-batching: concurrent requests for one model share a predict call.

A :class:`MicroBatcher` wraps one model's predict function. While no batch is running a
request goes out at once (with ``max_wait_ms`` > 0 it may first wait that long, counted
from its arrival, for company). While a batch runs in the executor, new requests queue;
when it finishes, the queued rows go out together in the next call, up to ``max_rows``,
and the result is split back so each request gets exactly its own rows. A request larger
than ``max_rows`` is never split: it runs alone. Only frames with the same columns and
dtypes share a call, so one request's schema never changes another's input.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError, InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BatchStats", "MicroBatcher"]


@dataclass(frozen=True)
class BatchStats:
    """Counters of a batcher since it was made, for metrics."""

    batches: int = 0
    requests: int = 0
    rows: int = 0
    largest_batch: int = 0
    failed_batches: int = 0


@dataclass
class _Request:
    frame: pd.DataFrame
    future: asyncio.Future[Any]
    arrived: float
    signature: tuple[Any, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.signature = (tuple(self.frame.columns), tuple(self.frame.dtypes))

    @property
    def rows(self) -> int:
        return len(self.frame)


class MicroBatcher:
    """Batches the rows of concurrent requests into one call of ``predict``.

    Args:
        predict: called in ``executor`` with a frame of one or more requests' rows
            (index reset to 0…n-1); returns an array-like of one entry per row, or a
            tuple or dict of such (e.g. labels and probabilities).
        max_rows: most rows in one call, unless a single request has more.
        max_wait_ms: how long a request that arrives while the model is idle may wait
            for others; 0 sends it at once.
        executor: where ``predict`` runs; None uses the event loop's default executor.

    Use one batcher per model version, on one event loop; ``close()`` (or leaving
    ``async with``) refuses new requests and waits until the queued ones are answered.
    """

    def __init__(
        self,
        predict: Callable[[pd.DataFrame], Any],
        *,
        max_rows: int = 64,
        max_wait_ms: float = 0.0,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise InvalidInput(f"max_rows must be a positive integer, got {max_rows!r}")
        if not isinstance(max_wait_ms, int | float) or not 0 <= max_wait_ms < float("inf"):
            raise InvalidInput(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms!r}")
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait_ms / 1000.0
        self._executor = executor
        self._queue: deque[_Request] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._arrival: asyncio.Event | None = None
        self._closed = False
        self._stats = BatchStats()

    @property
    def stats(self) -> BatchStats:
        """Batches, requests and rows served so far, and the largest batch in rows."""
        return self._stats

    @property
    def queued(self) -> int:
        """Requests waiting for a batch (not counting the one running)."""
        return len(self._queue)

    async def predict(self, frame: pd.DataFrame) -> Any:
        """Predict ``frame``'s rows, batched with whatever else is waiting.

        Returns:
            What ``predict`` returns, restricted to this frame's rows: an array-like,
            or a tuple or dict of them. Pandas results carry ``frame``'s index.

        Raises:
            InvalidInput: ``frame`` is not a DataFrame.
            CtloopError: the batcher is closed, or ``predict`` returned the wrong length.
            Exception: whatever ``predict`` raised for the batch holding these rows.
        """
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"a micro-batcher takes a pandas DataFrame, got {type(frame)!r}")
        if self._closed:
            raise CtloopError("this micro-batcher is closed; make a new one to predict again")
        loop = asyncio.get_running_loop()
        request = _Request(frame, loop.create_future(), loop.time())
        self._queue.append(request)
        if self._arrival is not None:
            self._arrival.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run())
        return await request.future

    async def close(self) -> None:
        """Refuse new requests and wait until every queued one has its answer."""
        self._closed = True
        if self._worker is not None:
            await asyncio.shield(self._worker)

    async def __aenter__(self) -> MicroBatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Request] = []
        try:
            while self._drop_cancelled():
                if self._max_wait > 0:
                    await self._gather(loop)
                batch = self._take()
                if batch:
                    await self._serve(loop, batch)
                batch = []
        except BaseException as exc:
            # Only a cancelled worker (the loop shutting down) or a bug gets here; either
            # way nobody else will answer the waiting requests, so tell them.
            failure = exc if isinstance(exc, Exception) else None
            for request in [*batch, *self._queue]:
                if not request.future.done():
                    request.future.set_exception(
                        failure or CtloopError("the micro-batcher stopped before answering")
                    )
            self._queue.clear()
            if failure is None:
                raise

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the oldest request has waited max_wait, or a batch is full."""
        first = self._queue[0]
        deadline = first.arrived + self._max_wait
        if self._arrival is None:
            self._arrival = asyncio.Event()
        while self._fitting_rows(first) < self._max_rows:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), remaining)
            except TimeoutError:
                return

    def _fitting_rows(self, first: _Request) -> int:
        rows = 0
        for request in self._queue:
            if request.signature == first.signature and not request.future.done():
                rows += request.rows
        return rows

    def _drop_cancelled(self) -> bool:
        """Forget queued requests whose caller gave up; True if any are left."""
        if any(r.future.done() for r in self._queue):
            self._queue = deque(r for r in self._queue if not r.future.done())
        return bool(self._queue)

    def _take(self) -> list[_Request]:
        """The next batch: the oldest request, then every compatible one that fits."""
        self._drop_cancelled()
        if not self._queue:
            return []
        first = self._queue.popleft()
        batch, rows, rest = [first], first.rows, deque[_Request]()
        while self._queue:
            request = self._queue.popleft()
            if request.signature == first.signature and rows + request.rows <= self._max_rows:
                batch.append(request)
                rows += request.rows
                if rows == self._max_rows:
                    break
            else:
                rest.append(request)
        rest.extend(self._queue)
        self._queue = rest
        return batch

    async def _serve(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> None:
        import pandas as pd

        rows = sum(r.rows for r in batch)
        try:
            frames = [r.frame.reset_index(drop=True) for r in batch]
            combined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            result = await loop.run_in_executor(self._executor, self._predict, combined)
            parts = _split(result, [r.rows for r in batch], rows)
        except Exception as exc:
            self._count(len(batch), rows, failed=True)
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        self._count(len(batch), rows, failed=False)
        for request, part in zip(batch, parts, strict=True):
            if not request.future.done():
                request.future.set_result(_reindex(part, request.frame.index))

    def _count(self, requests: int, rows: int, *, failed: bool) -> None:
        s = self._stats
        self._stats = BatchStats(
            batches=s.batches + 1,
            requests=s.requests + requests,
            rows=s.rows + rows,
            largest_batch=max(s.largest_batch, rows),
            failed_batches=s.failed_batches + failed,
        )


def _split(result: Any, sizes: list[int], total: int) -> list[Any]:
    """Cut a batch's result into one piece per request, by row counts."""
    if isinstance(result, tuple):
        columns = [_split(item, sizes, total) for item in result]
        pieces: list[Any] = [tuple(parts) for parts in zip(*columns, strict=True)]
        if type(result) is not tuple:  # a namedtuple keeps its type
            pieces = [type(result)(*p) for p in pieces]
        return pieces if columns else [() for _ in sizes]
    if isinstance(result, dict):
        split = {name: _split(value, sizes, total) for name, value in result.items()}
        return [{name: parts[i] for name, parts in split.items()} for i in range(len(sizes))]
    try:
        length = len(result)
    except TypeError:
        raise CtloopError(
            f"the model returned {type(result).__name__}, not an array-like with one "
            f"entry per row ({total} rows), so the batch cannot be split"
        ) from None
    if length != total:
        raise CtloopError(f"the model returned {length} predictions for a batch of {total} rows")
    pieces = []
    start = 0
    for size in sizes:
        pieces.append(_rows(result, start, start + size))
        start += size
    return pieces


def _rows(result: Any, start: int, stop: int) -> Any:
    if hasattr(result, "iloc"):  # pandas: positional, whatever the index
        return result.iloc[start:stop]
    return result[start:stop]


def _reindex(part: Any, index: pd.Index) -> Any:
    """Give pandas pieces the request's own index; other types have none."""
    if isinstance(part, tuple):
        items = [_reindex(p, index) for p in part]
        return tuple(items) if type(part) is tuple else type(part)(*items)
    if isinstance(part, dict):
        return {name: _reindex(value, index) for name, value in part.items()}
    if hasattr(part, "iloc") and hasattr(part, "set_axis"):
        return part.set_axis(index, axis=0)
    return part
