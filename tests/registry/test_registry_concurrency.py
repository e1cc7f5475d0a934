"""Registrations and alias moves from several processes at once stay consistent."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from typing import Any

import ctloop

WORKERS = 4
EACH = 5  # registrations (or alias moves) per worker

MakeRun = Callable[..., str]


def _register(store: str, artifacts: str, run_id: str, barrier: Any, queue: Any) -> None:
    client = ctloop.Client(store=store, artifacts=artifacts)
    try:
        client.models.list()  # connect before the race starts
        barrier.wait(timeout=60)
        for _ in range(EACH):
            queue.put(client.models.register(run_id, name="shared").version)
    finally:
        client.close()


def _promote(store: str, artifacts: str, worker: int, barrier: Any, queue: Any) -> None:
    client = ctloop.Client(store=store, artifacts=artifacts)
    try:
        client.models.list()
        barrier.wait(timeout=60)
        for i in range(EACH):
            version = (worker + i) % 3 + 1
            client.models.set_alias("shared", "champion", version, reason=f"w{worker}-{i}")
        queue.put(worker)
    finally:
        client.close()


def _race(target: Any, args: Callable[[int], tuple[Any, ...]], results: int) -> list[Any]:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args(w), barrier, queue)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    return [queue.get(timeout=10) for _ in range(results)]


def test_four_processes_registering_one_model_get_unique_versions(
    client: Any, store_url: str, artifacts_dir: Any, model_run: MakeRun
) -> None:
    run = model_run()
    versions = _race(_register, lambda w: (store_url, str(artifacts_dir), run), WORKERS * EACH)
    total = WORKERS * EACH
    assert sorted(versions) == list(range(1, total + 1))
    assert [v.version for v in client.models.versions("shared")] == list(range(1, total + 1))
    assert client.models.get("shared").latest_version == total


def test_concurrent_alias_moves_form_one_unbroken_chain(
    client: Any, store_url: str, artifacts_dir: Any, model_run: MakeRun
) -> None:
    """Each event's from_version is the previous event's to_version: no lost update."""
    for _ in range(3):
        client.models.register(model_run(), name="shared")
    _race(_promote, lambda w: (store_url, str(artifacts_dir), w), WORKERS)
    events = client.models.alias_history("shared", "champion")
    assert events, "no alias move was recorded"
    assert events[0].from_version is None
    for before, after in zip(events, events[1:], strict=False):
        assert after.from_version == before.to_version != after.to_version
    assert client.models.resolve("shared@champion").version == events[-1].to_version
