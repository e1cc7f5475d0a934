"""The fluent API (``ctloop.start_run`` and its buffered ``Run``) on every backend."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

import ctloop
from ctloop.errors import CtloopError, InvalidInput
from ctloop.tracking.entities import RunStatus


@pytest.fixture(autouse=True)
def _no_active_run() -> Iterator[None]:
    yield
    while ctloop.active_run() is not None:
        ctloop.end_run()


def test_buffered_metrics_are_all_written_and_read_back(backend_client: Any) -> None:
    with ctloop.start_run(experiment="fluent", name="long", client=backend_client) as run:
        run.log_params({"model": "rf", "max_depth": 6})
        for step in range(2000):
            run.log_metric("train/loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"auc": 0.91, "f1": math.nan})
        run.set_tag("stage", "dev")
    rec = backend_client.runs.get(run.id)
    assert rec.status is RunStatus.FINISHED and rec.name == "long"
    assert rec.params == {"model": "rf", "max_depth": "6"}
    assert rec.tags == {"stage": "dev"}
    assert rec.metrics["train/loss"] == pytest.approx(1 / 2000)
    assert rec.metrics["auc"] == pytest.approx(0.91) and math.isnan(rec.metrics["f1"])
    history = backend_client.runs.metric_history(run.id, "train/loss")
    assert [m.step for m in history] == list(range(2000))
    assert history[0].value == 1.0


def test_metrics_are_written_in_the_background_before_the_run_ends(backend_client: Any) -> None:
    with ctloop.start_run(experiment="e", client=backend_client) as run:
        for i in range(50):
            run.log_metric("m", float(i), step=i)
        deadline = time.monotonic() + 10
        stored = 0
        while time.monotonic() < deadline:
            try:
                stored = len(backend_client.runs.metric_history(run.id, "m"))
            except LookupError:  # nothing written yet
                stored = 0
            if stored == 50:
                break
            time.sleep(0.05)
        assert stored == 50  # the writer thread flushed without end() or flush()


def test_failed_run_records_the_error_and_its_buffered_metrics(backend_client: Any) -> None:
    with (
        pytest.raises(ZeroDivisionError),
        ctloop.start_run(experiment="e", client=backend_client) as run,
    ):
        run.log_metric("before", 1.0)
        _ = 1 / 0
    rec = backend_client.runs.get(run.id)
    assert rec.status is RunStatus.FAILED
    assert rec.error is not None and rec.error.startswith("ZeroDivisionError")
    assert "Traceback" in rec.error
    assert rec.metrics == {"before": 1.0}


def test_keyboard_interrupt_marks_the_run_killed(backend_client: Any) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        ctloop.start_run(experiment="e", client=backend_client) as run,
    ):
        raise KeyboardInterrupt
    rec = backend_client.runs.get(run.id)
    assert rec.status is RunStatus.KILLED and rec.error == "KeyboardInterrupt"


def test_module_functions_and_nested_runs(backend_client: Any) -> None:
    with ctloop.start_run(experiment="e", client=backend_client) as parent:
        ctloop.log_param("a", 1)
        ctloop.log_metric("m", 0.5, step=1)
        ctloop.set_tags({"t": "x"})
        with pytest.raises(InvalidInput, match="already active"):
            ctloop.start_run(experiment="e", client=backend_client)
        with ctloop.start_run(experiment="e", nested=True, client=backend_client) as child:
            assert ctloop.active_run() is child
        assert ctloop.active_run() is parent
    rec = backend_client.runs.get(parent.id)
    assert (rec.params, rec.metrics, rec.tags) == ({"a": "1"}, {"m": 0.5}, {"t": "x"})
    assert backend_client.runs.get(child.id).tags == {"ctloop.parent_run_id": parent.id}


def test_ended_run_refuses_more_metrics(backend_client: Any) -> None:
    with ctloop.start_run(experiment="e", client=backend_client) as run:
        run.log_metric("m", 1.0)
    with pytest.raises(CtloopError, match="has ended"):
        run.log_metric("late", 1.0)
    assert run.record().metrics == {"m": 1.0}
