"""Module-level tracking (``ctloop.log_*`` on the active run) and the metric buffer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import ctloop
from ctloop.errors import InvalidInput
from ctloop.tracking.entities import RunStatus


@pytest.fixture(autouse=True)
def _no_active_run() -> Any:
    yield
    while ctloop.active_run() is not None:
        ctloop.end_run()


def test_module_functions_log_to_the_active_run(sqlite_client: Any) -> None:
    with ctloop.start_run(experiment="e", client=sqlite_client) as run:
        assert ctloop.active_run() is run
        ctloop.log_param("a", 1)
        ctloop.log_params({"b": 2})
        ctloop.log_metric("m", 0.5, step=1)
        ctloop.log_metrics({"n": 1.5})
        ctloop.set_tag("t", "x")
        ctloop.set_tags({"u": "y"})
    assert ctloop.active_run() is None
    rec = sqlite_client.runs.get(run.id)
    assert rec.params == {"a": "1", "b": "2"}
    assert rec.metrics == {"m": 0.5, "n": 1.5}
    assert rec.tags == {"t": "x", "u": "y"}


def test_second_run_needs_nested(sqlite_client: Any) -> None:
    with ctloop.start_run(experiment="e", client=sqlite_client) as parent:
        with pytest.raises(InvalidInput, match="already active"):
            ctloop.start_run(experiment="e", client=sqlite_client)
        with ctloop.start_run(experiment="e", nested=True, client=sqlite_client) as child:
            assert ctloop.active_run() is child
        assert ctloop.active_run() is parent
    assert sqlite_client.runs.get(child.id).tags["ctloop.parent_run_id"] == parent.id


def test_logging_without_a_run_starts_one_in_the_default_store(tmp_path: Path) -> None:
    os.environ["CTLOOP_STORE"] = str(tmp_path / "auto")
    try:
        ctloop.log_metric("x", 1.0)
        run = ctloop.active_run()
        assert run is not None and run.experiment == "default"
        ctloop.end_run()
        rec = ctloop.Client(store=str(tmp_path / "auto")).runs.get(run.id)
        assert rec.status is RunStatus.FINISHED and rec.metrics == {"x": 1.0}
    finally:
        del os.environ["CTLOOP_STORE"]


def test_metrics_are_written_in_the_background_before_the_run_ends(sqlite_client: Any) -> None:
    with ctloop.start_run(experiment="e", client=sqlite_client) as run:
        for i in range(50):
            run.log_metric("m", float(i), step=i)
        deadline = time.monotonic() + 10
        stored = 0
        while time.monotonic() < deadline:
            with sqlite_client.db.read() as conn:
                from ctloop.store import runs as repo

                stored = len(repo.metric_history(conn, run.id, "m"))
            if stored == 50:
                break
            time.sleep(0.05)
        assert stored == 50  # the writer thread flushed without end() or flush()


def _run_script(body: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unended_run_is_flushed_and_finished_at_exit(tmp_path: Path) -> None:
    store = tmp_path / "s"
    proc = _run_script(
        """
        import ctloop
        run = ctloop.start_run(experiment="e")
        for i in range(3000):
            run.log_metric("m", i, step=i)
        print(run.id)
        """,
        store,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    client = ctloop.Client(store=str(store))
    assert client.runs.get(run_id).status is RunStatus.FINISHED
    assert len(client.runs.metric_history(run_id, "m")) == 3000


def test_uncaught_exception_marks_fluent_run_failed(tmp_path: Path) -> None:
    store = tmp_path / "s"
    proc = _run_script(
        """
        import ctloop
        run = ctloop.start_run(experiment="e")
        print(run.id, flush=True)
        ctloop.log_metric("m", 1.0)
        raise ValueError("bad data")
        """,
        store,
    )
    assert proc.returncode == 1 and "ValueError: bad data" in proc.stderr
    run_id = proc.stdout.strip()
    rec = ctloop.Client(store=str(store)).runs.get(run_id)
    assert rec.status is RunStatus.FAILED
    assert rec.error is not None and "bad data" in rec.error
    assert rec.metrics == {"m": 1.0}


def test_ended_run_refuses_more_metrics(sqlite_client: Any) -> None:
    with ctloop.start_run(experiment="e", client=sqlite_client) as run:
        pass
    with pytest.raises(ctloop.CtloopError, match="has ended"):
        run.log_metric("late", 1.0)
