"""Adds of one dataset from several processes at once never share a version number."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import ctloop

WORKERS = 4
ADDS = 6  # per worker, each of new content, so writes overlap once imports are warm


def _add(store: str, artifacts: str, paths: list[str], barrier: Any, queue: Any) -> None:
    client = ctloop.Client(store=store, artifacts=artifacts)
    try:
        client.datasets.list()  # connect before the race starts
        barrier.wait(timeout=60)
        for path in paths:
            v = client.datasets.add(path, "shared", pointer=False)
            queue.put((v.version, v.digest, v.is_new))
    finally:
        client.close()


def test_four_processes_adding_to_one_dataset_get_unique_versions(
    client: Any, store_url: str, artifacts_dir: Path, tmp_path: Path
) -> None:
    work: list[list[str]] = []
    for w in range(WORKERS):
        paths = []
        for i in range(ADDS):
            path = tmp_path / f"w{w}" / f"part{i}.csv"
            path.parent.mkdir(exist_ok=True)
            path.write_text(f"worker,add\n{w},{i}\n")
            paths.append(str(path))
        work.append(paths)
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [
        ctx.Process(target=_add, args=(store_url, str(artifacts_dir), paths, barrier, queue))
        for paths in work
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    results = [queue.get(timeout=5) for _ in range(WORKERS * ADDS)]
    total = WORKERS * ADDS
    assert sorted(v for v, _, _ in results) == list(range(1, total + 1))
    assert all(new for _, _, new in results)
    versions = client.datasets.versions("shared")
    assert [v.version for v in versions] == list(range(1, total + 1))
    assert len({v.digest for v in versions}) == total
