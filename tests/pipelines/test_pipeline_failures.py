"""Failures: skipped dependents, recorded errors, retries with backoff, timeouts, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pipeline_steps as ps
import pytest

from ctloop.pipelines import PipelineFailed, PipelineStatus, StepStatus, TimeoutNotEnforced


def test_a_failing_step_skips_its_dependents_and_fails_the_run(sqlite_client: Any) -> None:
    with pytest.raises(PipelineFailed) as caught:
        ps.half_broken.run(executor="inline", client=sqlite_client)
    run = caught.value.run
    assert run.status is PipelineStatus.FAILED
    got = {s.name: s.status for s in run.steps}
    assert got == {
        "make_frame": StepStatus.COMPLETED,
        "explode": StepStatus.FAILED,
        "scale": StepStatus.SKIPPED,
        "summarise": StepStatus.COMPLETED,  # not downstream of the failure
    }
    failed = run.step("explode")
    assert failed.error is not None
    assert "RuntimeError: the step blew up on purpose" in failed.error
    assert "Traceback" in failed.error and "pipeline_steps.py" in failed.error
    assert "explode" in str(caught.value) and f"ctloop pipeline show {run.id}" in str(caught.value)
    # the record in the store says the same, and the tracking run failed too
    stored = sqlite_client.pipelines.get(run.id)
    assert stored.status is PipelineStatus.FAILED and stored.step("scale").status == "SKIPPED"
    assert sqlite_client.runs.get(run.run_id).status == "FAILED"


def test_raise_on_failure_false_returns_the_failed_run(sqlite_client: Any) -> None:
    run = ps.half_broken.run(executor="inline", client=sqlite_client, raise_on_failure=False)
    assert run.status is PipelineStatus.FAILED
    assert run.error is not None and "explode" in run.error


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_retries_until_an_attempt_succeeds(
    sqlite_client: Any, tmp_path: Path, executor: str
) -> None:
    counter = tmp_path / f"attempts-{executor}"
    run = ps.retrying.run(executor=executor, client=sqlite_client, counter=str(counter))
    step = run.step("flaky")
    assert step.status is StepStatus.COMPLETED
    assert step.attempts == 3
    assert run.output("flaky") == 3


def test_retries_give_up_after_the_last_attempt(sqlite_client: Any, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    counter.write_text("-10")  # needs 13 attempts; it gets 3
    run = ps.retrying.run(
        executor="inline", client=sqlite_client, counter=str(counter), raise_on_failure=False
    )
    step = run.step("flaky")
    assert step.status is StepStatus.FAILED and step.attempts == 3
    assert "ConnectionError: attempt -7 failed" in (step.error or "")
    # backoff: 0.05 s, then 0.1 s between the attempts
    assert step.duration is not None and step.duration >= 0.15


def test_a_step_past_its_timeout_is_stopped(sqlite_client: Any) -> None:
    run = ps.slow.run(executor="local", client=sqlite_client, raise_on_failure=False)
    step = run.step("sleepy")
    assert step.status is StepStatus.TIMED_OUT
    assert "timeout of 1.5s" in (step.error or "")
    assert step.duration is not None and step.duration < 30  # stopped, not waited for
    assert run.status is PipelineStatus.FAILED


def test_the_inline_executor_warns_that_it_cannot_enforce_timeouts(sqlite_client: Any) -> None:
    with pytest.warns(TimeoutNotEnforced, match="inline executor"):
        run = ps.slow.run(executor="inline", client=sqlite_client, seconds=0.01)
    assert run.step("sleepy").status is StepStatus.COMPLETED


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_stdout_and_stderr_of_a_step_are_kept(sqlite_client: Any, executor: str) -> None:
    run = ps.numbers.run(executor=executor, client=sqlite_client, cache=False, n=7)
    logs = run.step("summarise").logs
    assert logs is not None
    assert sqlite_client.objects.read_bytes(logs["stdout"]) == b"summarising 7 rows\n"
    assert sqlite_client.objects.read_bytes(logs["stderr"]) == b"a warning line\n"


def test_an_unknown_executor_is_refused_before_anything_is_recorded(sqlite_client: Any) -> None:
    from ctloop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="unknown executor 'threads'"):
        ps.numbers.run(executor="threads", client=sqlite_client)
    assert sqlite_client.pipelines.list() == []


def test_worker_processes_die_with_the_driver(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "worker.pid"
    code = (
        "import pipeline_steps as ps\n"
        "from ctloop import Client\n"
        f"ps.long_nap.run(executor='local', client=Client(store={str(tmp_path / 's')!r}), "
        f"path={str(pid_file)!r})\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    driver = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()):
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        worker = int(pid_file.read_text())
        driver.send_signal(signal.SIGKILL)  # no chance to clean up
        driver.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                return  # the worker went with it
            time.sleep(0.2)
        os.kill(worker, signal.SIGKILL)
        raise AssertionError(f"worker {worker} outlived its driver")
    finally:
        if driver.poll() is None:
            driver.kill()
