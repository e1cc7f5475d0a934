"""Several processes logging into one SQLite store at once lose nothing."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import ctloop

POINTS = 10_000


def _log(store: str, worker: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    with ctloop.start_run(
        experiment="parallel", name=f"w{worker}", client=ctloop.Client(store=store)
    ) as run:
        run.log_param("worker", worker)
        for i in range(POINTS):
            run.log_metric("loss", i / POINTS, step=i)
    queue.put(run.id)


def test_four_processes_log_10000_points_each(tmp_path: Path) -> None:
    store = str(tmp_path / "shared")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_log, args=(store, w, queue)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    run_ids = [queue.get(timeout=5) for _ in procs]
    client = ctloop.Client(store=store)
    for run_id in run_ids:
        history = client.runs.metric_history(run_id, "loss")
        assert len(history) == POINTS
        assert [m.step for m in history] == list(range(POINTS))
    assert client.experiments.get("parallel").name == "parallel"
    assert len(client.runs.search("parallel").runs) == 4
