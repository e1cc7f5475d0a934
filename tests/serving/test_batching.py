"""MicroBatcher, driven through asyncio.run (pytest-asyncio is not a dependency).

Ordering is made deterministic with a gate: the model blocks in its executor thread until
the test opens the gate, so "requests arriving while a batch is in flight" is a fact of
the test, not a matter of timing.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest

from ctloop.errors import CtloopError, InvalidInput
from ctloop.serving.batching import BatchStats, MicroBatcher


class Model:
    """Records each call's rows; returns x * 10; fails on a row with x == -1."""

    def __init__(self, *, gated: bool = False, sleep: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.indexes: list[list[Any]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.sleep = sleep
        if not gated:
            self.gate.set()

    def __call__(self, frame: pd.DataFrame) -> Any:
        self.calls.append(frame["x"].tolist())
        self.indexes.append(list(frame.index))
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.sleep:
            time.sleep(self.sleep)
        if (frame["x"] == -1).any():
            raise ValueError("poisoned row")
        return frame["x"].to_numpy() * 10

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.calls]

    async def in_flight(self) -> None:
        """Wait until the first call has started (and is held at the gate)."""
        assert await asyncio.to_thread(self.entered.wait, 10)


def rows(*xs: int, **index: Any) -> pd.DataFrame:
    return pd.DataFrame({"x": list(xs), "y": [float(x) for x in xs]}, **index)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


async def settle() -> None:
    """Let every ready task run until it blocks (e.g. queues its request)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows(
    executor: ThreadPoolExecutor,
) -> None:
    model = Model(sleep=0.05)

    async def scenario() -> None:
        batcher = MicroBatcher(model, executor=executor)
        results = await asyncio.gather(*(batcher.predict(rows(i)) for i in range(32)))
        for i, result in enumerate(results):
            assert result.tolist() == [i * 10]
        assert len(model.calls) < 8
        assert sorted(x for call in model.calls for x in call) == list(range(32))
        assert batcher.stats.rows == 32 and batcher.stats.requests == 32

    run(scenario)


def test_requests_arriving_during_a_batch_go_together_into_the_next(
    executor: ThreadPoolExecutor,
) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        batcher = MicroBatcher(model, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(0)))
        await model.in_flight()
        later = [asyncio.create_task(batcher.predict(rows(i, i + 100))) for i in range(1, 32)]
        await settle()
        assert batcher.queued == 31
        model.gate.set()
        assert (await first).tolist() == [0]
        for i, task in enumerate(later, start=1):
            assert (await task).tolist() == [i * 10, (i + 100) * 10]
        assert model.sizes == [1, 62]
        assert batcher.stats == BatchStats(batches=2, requests=32, rows=63, largest_batch=62)

    run(scenario)


def test_an_idle_request_is_sent_at_once_and_alone(executor: ThreadPoolExecutor) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_wait_ms=0, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(7)))
        await model.in_flight()  # sent with nothing else waiting: no gathering delay
        second = asyncio.create_task(batcher.predict(rows(8)))
        await settle()
        assert model.calls == [[7]]  # the second did not join the running call
        model.gate.set()
        assert (await first).tolist() == [70]
        assert (await second).tolist() == [80]
        assert model.calls == [[7], [8]]

    run(scenario)


def test_max_wait_gathers_until_the_batch_is_full(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        # a minute's wait that must end early: two rows fill the batch
        batcher = MicroBatcher(model, max_rows=2, max_wait_ms=60_000, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(1)))
        await settle()
        assert model.calls == []  # waiting for company
        second = asyncio.create_task(batcher.predict(rows(2)))
        assert (await first).tolist() == [10]
        assert (await second).tolist() == [20]
        assert model.calls == [[1, 2]]

    run(scenario)


def test_max_wait_ends_with_whatever_came(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=10, max_wait_ms=5, executor=executor)
        assert (await batcher.predict(rows(3))).tolist() == [30]
        assert model.calls == [[3]]

    run(scenario)


def test_max_rows_caps_each_call(executor: ThreadPoolExecutor) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=8, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(0)))
        await model.in_flight()
        later = [asyncio.create_task(batcher.predict(rows(i))) for i in range(1, 32)]
        await settle()
        model.gate.set()
        await first
        assert [(await t).tolist() for t in later] == [[i * 10] for i in range(1, 32)]
        assert model.sizes == [1, 8, 8, 8, 7]
        # first come, first served
        assert [x for call in model.calls for x in call] == list(range(32))

    run(scenario)


def test_a_request_over_max_rows_runs_alone_and_whole(executor: ThreadPoolExecutor) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=4, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(0)))
        await model.in_flight()
        small = asyncio.create_task(batcher.predict(rows(1, 2)))
        big = asyncio.create_task(batcher.predict(rows(*range(10, 20))))
        tail = asyncio.create_task(batcher.predict(rows(3)))
        await settle()
        model.gate.set()
        await first
        assert (await small).tolist() == [10, 20]
        assert (await big).tolist() == [x * 10 for x in range(10, 20)]
        assert (await tail).tolist() == [30]
        # the small ones that fit went first together; the big one alone, unsplit
        assert model.calls == [[0], [1, 2, 3], list(range(10, 20))]
        assert batcher.stats.largest_batch == 10

    run(scenario)


def test_an_error_fails_exactly_the_requests_of_its_batch(executor: ThreadPoolExecutor) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        batcher = MicroBatcher(model, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(1)))
        await model.in_flight()
        poisoned = asyncio.create_task(batcher.predict(rows(-1)))
        neighbour = asyncio.create_task(batcher.predict(rows(2)))
        await settle()
        model.gate.set()
        assert (await first).tolist() == [10]
        with pytest.raises(ValueError, match="poisoned row") as poisoned_error:
            await poisoned
        with pytest.raises(ValueError, match="poisoned row") as neighbour_error:
            await neighbour
        assert poisoned_error.value is neighbour_error.value
        # the batcher keeps serving afterwards
        assert (await batcher.predict(rows(4))).tolist() == [40]
        assert model.calls == [[1], [-1, 2], [4]]
        assert batcher.stats.failed_batches == 1 and batcher.stats.batches == 3

    run(scenario)


def test_a_failing_first_batch_spares_the_queued_requests(executor: ThreadPoolExecutor) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        batcher = MicroBatcher(model, executor=executor)
        poisoned = asyncio.create_task(batcher.predict(rows(-1)))
        await model.in_flight()
        queued = [asyncio.create_task(batcher.predict(rows(i))) for i in (5, 6)]
        await settle()
        model.gate.set()
        with pytest.raises(ValueError):
            await poisoned
        assert [(await t).tolist() for t in queued] == [[50], [60]]

    run(scenario)


def test_the_model_sees_a_fresh_index_and_pandas_results_get_the_request_index(
    executor: ThreadPoolExecutor,
) -> None:
    model = Model(gated=True)

    def as_series(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(model(frame), name="score")

    async def scenario() -> None:
        batcher = MicroBatcher(as_series, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(1, index=[5])))
        await model.in_flight()
        a = asyncio.create_task(batcher.predict(rows(2, 3, index=["a", "b"])))
        b = asyncio.create_task(batcher.predict(rows(4, 5, index=[10, 10])))
        await settle()
        model.gate.set()
        assert (await first).to_dict() == {5: 10}
        result_a, result_b = await a, await b
        assert model.indexes == [[0], [0, 1, 2, 3]]
        assert result_a.to_dict() == {"a": 20, "b": 30}
        assert list(result_b.index) == [10, 10] and result_b.tolist() == [40, 50]
        assert result_b.name == "score"

    run(scenario)


class Prediction(NamedTuple):
    labels: np.ndarray
    probabilities: np.ndarray


def labels_and_probabilities(frame: pd.DataFrame) -> Any:
    x = frame["x"].to_numpy()
    return x % 2, np.column_stack([x / 100, 1 - x / 100])


def test_tuple_dict_and_namedtuple_outputs_are_split_per_request(
    executor: ThreadPoolExecutor,
) -> None:
    outputs: dict[str, Callable[[pd.DataFrame], Any]] = {
        "tuple": labels_and_probabilities,
        "namedtuple": lambda f: Prediction(*labels_and_probabilities(f)),
        "dict": lambda f: dict(
            zip(["labels", "probabilities"], labels_and_probabilities(f), strict=True)
        ),
    }

    async def scenario(kind: str) -> None:
        gate, entered = threading.Event(), threading.Event()
        calls: list[int] = []

        def predict(frame: pd.DataFrame) -> Any:
            calls.append(len(frame))
            entered.set()
            gate.wait(10)
            return outputs[kind](frame)

        batcher = MicroBatcher(predict, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(0)))
        assert await asyncio.to_thread(entered.wait, 10)
        tasks = [asyncio.create_task(batcher.predict(rows(*xs))) for xs in ([1, 2], [3], [4, 5, 6])]
        await settle()
        gate.set()
        await first
        for xs, task in zip(([1, 2], [3], [4, 5, 6]), tasks, strict=True):
            result = await task
            if kind == "dict":
                labels, probabilities = result["labels"], result["probabilities"]
                assert set(result) == {"labels", "probabilities"}
            else:
                labels, probabilities = result
                assert isinstance(result, Prediction if kind == "namedtuple" else tuple)
            x = np.array(xs)
            assert labels.tolist() == (x % 2).tolist()
            assert probabilities.shape == (len(xs), 2)
            np.testing.assert_allclose(probabilities[:, 0], x / 100)
        assert calls == [1, 6]

    for kind in outputs:
        run(lambda kind=kind: scenario(kind))  # type: ignore[misc]


def test_a_result_of_the_wrong_length_fails_its_batch(executor: ThreadPoolExecutor) -> None:
    async def scenario() -> None:
        short = MicroBatcher(lambda f: np.zeros(len(f) - 1), executor=executor)
        with pytest.raises(CtloopError, match="returned 1 predictions for a batch of 2 rows"):
            await short.predict(rows(1, 2))
        scalar = MicroBatcher(lambda f: 3.0, executor=executor)
        with pytest.raises(CtloopError, match="returned float"):
            await scalar.predict(rows(1))

    run(scenario)


def test_frames_with_other_columns_are_not_mixed(executor: ThreadPoolExecutor) -> None:
    seen: list[list[str]] = []
    gate, entered = threading.Event(), threading.Event()

    def predict(frame: pd.DataFrame) -> Any:
        seen.append(list(frame.columns))
        entered.set()
        gate.wait(10)
        return np.arange(len(frame))

    async def scenario() -> None:
        batcher = MicroBatcher(predict, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(0)))
        assert await asyncio.to_thread(entered.wait, 10)
        tasks = [
            asyncio.create_task(batcher.predict(frame))
            for frame in (
                rows(1),
                pd.DataFrame({"x": [2]}),
                rows(3),
                rows(4).astype({"x": "float64"}),
            )
        ]
        await settle()
        gate.set()
        await first
        assert [(await t).tolist() for t in tasks] == [[0], [0], [1], [0]]
        assert batcher.stats.batches == 4  # first, then x+y twice, x alone, float x alone

    run(scenario)
    assert seen == [["x", "y"], ["x", "y"], ["x"], ["x", "y"]]


def test_a_cancelled_request_is_not_predicted(executor: ThreadPoolExecutor) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        batcher = MicroBatcher(model, executor=executor)
        first = asyncio.create_task(batcher.predict(rows(0)))
        await model.in_flight()
        gone = asyncio.create_task(batcher.predict(rows(1)))
        kept = asyncio.create_task(batcher.predict(rows(2)))
        await settle()
        gone.cancel()
        model.gate.set()
        await first
        assert (await kept).tolist() == [20]
        assert gone.cancelled()
        assert model.calls == [[0], [2]]

    run(scenario)


def test_close_answers_the_queue_then_refuses(executor: ThreadPoolExecutor) -> None:
    model = Model(gated=True)

    async def scenario() -> None:
        async with MicroBatcher(model, max_rows=2, executor=executor) as batcher:
            tasks = [asyncio.create_task(batcher.predict(rows(i))) for i in range(5)]
            await model.in_flight()
            closing = asyncio.create_task(batcher.close())
            await settle()
            assert not closing.done()
            with pytest.raises(CtloopError, match="closed"):
                await batcher.predict(rows(9))
            model.gate.set()
            await closing
            assert all(t.done() for t in tasks)
            assert [t.result().tolist() for t in tasks] == [[i * 10] for i in range(5)]
        assert model.sizes == [2, 2, 1]

    run(scenario)


def test_bad_arguments_are_refused() -> None:
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInput, match="max_rows"):
            MicroBatcher(Model(), max_rows=bad)  # type: ignore[arg-type]
    for wait in (-1, float("inf"), float("nan"), "5"):
        with pytest.raises(InvalidInput, match="max_wait_ms"):
            MicroBatcher(Model(), max_wait_ms=wait)  # type: ignore[arg-type]

    async def scenario() -> None:
        with pytest.raises(InvalidInput, match="takes a pandas DataFrame"):
            await MicroBatcher(Model()).predict([[1, 2]])  # type: ignore[arg-type]

    run(scenario)


def test_importing_the_modules_does_not_import_pandas_or_fastapi() -> None:
    import subprocess

    code = (
        "import sys, ctloop.serving.batching, ctloop.serving.routing\n"
        "print(sorted(m for m in ('pandas', 'fastapi', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
