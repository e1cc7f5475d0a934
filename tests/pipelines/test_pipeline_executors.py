"""Executors: the same outputs everywhere, parallel branches, Ray, records and lineage."""

from __future__ import annotations

from typing import Any

import pipeline_steps as ps
import pytest

from ctloop.pipelines import PipelineStatus


def digests(run: Any) -> dict[str, dict[str, str]]:
    return {s.name: {k: v.digest for k, v in s.outputs.items()} for s in run.steps}


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_inline_local_and_ray_give_the_same_output_digests(
    sqlite_client: Any, ray_cluster: Any
) -> None:
    runs = {
        ex: ps.numbers.run(executor=ex, client=sqlite_client, cache=False, n=80, seed=3)
        for ex in ("inline", "local", "ray")
    }
    for run in runs.values():
        assert run.status is PipelineStatus.COMPLETED and run.cache_hits == 0
    assert digests(runs["inline"]) == digests(runs["local"]) == digests(runs["ray"])
    assert runs["ray"].executor == "ray"
    assert runs["ray"].output("summarise")["rows"] == 80


@pytest.mark.slow
def test_ray_failures_and_timeouts(sqlite_client: Any, ray_cluster: Any) -> None:
    run = ps.half_broken.run(executor="ray", client=sqlite_client, raise_on_failure=False)
    assert {s.name: s.status.value for s in run.steps}["scale"] == "SKIPPED"
    assert "blew up" in (run.step("explode").error or "")
    slow = ps.slow.run(executor="ray", client=sqlite_client, raise_on_failure=False)
    assert slow.step("sleepy").status.value == "TIMED_OUT"


def test_the_local_executor_runs_independent_steps_at_the_same_time(sqlite_client: Any) -> None:
    run = ps.two_naps.run(executor="local", client=sqlite_client, max_workers=2, cache=False)
    a, b = run.step("nap"), run.step("nap_2")
    assert a.start_time and a.end_time and b.start_time and b.end_time
    # the two windows overlap: neither waited for the other
    assert a.start_time < b.end_time and b.start_time < a.end_time


def test_the_local_executor_with_one_worker_runs_them_one_after_the_other(
    sqlite_client: Any,
) -> None:
    run = ps.two_naps.run(
        executor="local", client=sqlite_client, max_workers=1, cache=False, seconds=0.3
    )
    first, second = sorted((run.step("nap"), run.step("nap_2")), key=lambda s: s.start_time)
    assert first.end_time is not None and second.start_time is not None
    assert second.start_time >= first.end_time or second.attempts == 1


def test_records_trace_every_artifact_to_the_step_and_inputs_that_made_it(client: Any) -> None:
    run = ps.numbers.run(executor="local", client=client)
    scale, summarise = run.step("scale"), run.step("summarise")
    # the input summarise read is exactly the artifact scale wrote
    assert summarise.inputs["df"].digest == scale.outputs["output"].digest
    assert summarise.upstream == ["scale"]
    assert scale.outputs["output"].materializer == "dataframe/1"
    assert run.step("to_array").outputs["output"].materializer == "ndarray/1"
    assert summarise.outputs["output"].materializer == "json/1"
    assert run.step("split").outputs.keys() == {"low", "high"}
    stored = client.pipelines.get(run.id[:8])  # a unique prefix finds it
    assert stored.id == run.id and [s.name for s in stored.steps] == [s.name for s in run.steps]
    assert [g["name"] for g in stored.graph] == [s.name for s in run.steps]


def test_params_and_metrics_logged_in_steps_land_on_the_pipeline_tracking_run(
    client: Any,
) -> None:
    run = ps.numbers.run(executor="local", client=client, n=33, cache=False)
    tracked = client.runs.get(run.run_id)
    assert tracked.status == "FINISHED"
    assert tracked.params["n"] == "33" and tracked.params["factor"] == "2.0"
    assert tracked.params["summarised"] == "yes"  # logged inside a step, in a worker
    assert tracked.metrics["rows"] == 33
    assert tracked.tags["ctloop.pipeline_run_id"] == run.id
    assert tracked.experiment == "numbers"
