"""The step cache: unchanged → hit; changed param, input or helper code → the step re-runs."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path
from typing import Any

import pipeline_steps as ps
import pytest

from ctloop.pipelines import PipelineStatus, StepStatus


def statuses(run: Any) -> dict[str, str]:
    return {s.name: s.status.value for s in run.steps}


def test_a_second_identical_run_is_fully_cached(client: Any) -> None:
    first = ps.numbers.run(executor="inline", client=client)
    assert first.status is PipelineStatus.COMPLETED
    assert set(statuses(first).values()) == {"COMPLETED"}
    second = ps.numbers.run(executor="inline", client=client)
    assert set(statuses(second).values()) == {"CACHED"}
    assert second.cache_hits == len(second.steps) == 6
    for a, b in zip(first.steps, second.steps, strict=True):
        assert b.cached_from == a.id
        assert b.outputs == a.outputs
        assert b.cache_key == a.cache_key
    assert second.output("summarise") == first.output("summarise")


def test_a_changed_param_reruns_that_step_and_what_depends_on_it(client: Any) -> None:
    ps.numbers.run(executor="inline", client=client)
    run = ps.numbers.run(executor="inline", client=client, factor=3.0)
    assert statuses(run) == {
        "make_frame": "CACHED",  # its params did not change
        "scale": "COMPLETED",
        "summarise": "COMPLETED",
        "split": "COMPLETED",
        "to_array": "COMPLETED",
        "to_array_2": "COMPLETED",
    }


def test_a_changed_input_reruns_downstream_but_equal_outputs_hit_again(client: Any) -> None:
    ps.numbers.run(executor="inline", client=client, n=40)
    run = ps.numbers.run(executor="inline", client=client, n=41)
    assert statuses(run)["make_frame"] == "COMPLETED"
    assert statuses(run)["scale"] == "COMPLETED"  # its input digest changed
    # the input changed but produces the same data: downstream is a hit again
    again = ps.numbers.run(executor="inline", client=client, n=40, seed=0)
    assert set(statuses(again).values()) == {"CACHED"}


def test_cache_false_reruns_everything_and_is_recorded(client: Any) -> None:
    ps.numbers.run(executor="inline", client=client)
    run = ps.numbers.run(executor="inline", client=client, cache=False)
    assert set(statuses(run).values()) == {"COMPLETED"}
    assert run.cache_hits == 0
    # identical outputs all the same (deterministic steps): the digests agree
    cached = ps.numbers.run(executor="inline", client=client)
    assert [s.outputs for s in cached.steps] == [s.outputs for s in run.steps]


def test_a_step_with_cache_off_always_runs(sqlite_client: Any) -> None:
    from ctloop import pipeline

    @pipeline
    def pids():
        ps.pid()

    a = pids.run(executor="inline", client=sqlite_client)
    b = pids.run(executor="inline", client=sqlite_client)
    assert a.steps[0].status is b.steps[0].status is StepStatus.COMPLETED


def test_outputs_gone_from_the_store_are_not_a_cache_hit(sqlite_client: Any) -> None:
    first = ps.numbers.run(executor="inline", client=sqlite_client)
    ref = first.step("summarise").outputs["output"]
    path = Path(sqlite_client.blobs.root) / sqlite_client.blobs.key(ref.digest, ref.kind)
    path.unlink()
    second = ps.numbers.run(executor="inline", client=sqlite_client)
    assert statuses(second)["summarise"] == "COMPLETED"
    assert statuses(second)["scale"] == "CACHED"


# --- code changes ---------------------------------------------------------------------------


def write_project(root: Path, name: str, helper_body: str, comment: str = "") -> Any:
    """A project module with a step calling a helper in a sibling module; imported fresh."""
    (root / f"{name}_helpers.py").write_text(
        textwrap.dedent(
            f"""
            def adjust(x):
                {comment}
                return {helper_body}
            """
        )
    )
    (root / f"{name}_steps.py").write_text(
        textwrap.dedent(
            f"""
            from ctloop import pipeline, step
            import {name}_helpers as helpers

            @step
            def compute(x: int) -> int:
                return helpers.adjust(x)

            @pipeline
            def project(x: int = 1):
                compute(x)
            """
        )
    )
    importlib.invalidate_caches()
    for mod in (f"{name}_helpers", f"{name}_steps"):
        if mod in __import__("sys").modules:
            importlib.reload(__import__("sys").modules[mod])
    importlib.import_module(f"{name}_helpers")
    return importlib.import_module(f"{name}_steps")


def test_changing_a_helper_the_step_calls_invalidates_the_cache(
    sqlite_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    project = write_project(tmp_path, "cachehelp", "x + 1")
    first = project.project.run(executor="inline", client=sqlite_client)
    assert first.output("compute") == 2

    project = write_project(tmp_path, "cachehelp", "x + 1", comment="# only a comment")
    unchanged = project.project.run(executor="inline", client=sqlite_client)
    assert unchanged.steps[0].cache_hit  # comments do not change what a helper computes

    project = write_project(tmp_path, "cachehelp", "x + 100")
    changed = project.project.run(executor="inline", client=sqlite_client)
    assert not changed.steps[0].cache_hit
    assert changed.output("compute") == 101


def test_on_cache_hit_runs_for_the_new_run_when_the_outputs_are_reused(client: Any) -> None:
    from ctloop import pipeline, step
    from ctloop.errors import InvalidInput

    calls: list[tuple[dict[str, Any], str | None]] = []

    def again(params: dict[str, Any], client_: Any, tracking_run_id: str | None) -> None:
        assert client_ is client
        calls.append((params, tracking_run_id))

    @step(on_cache_hit=again)
    def source(n: int = 3) -> list[int]:
        return list(range(n))

    @pipeline(name="hooked", experiment="hooked")
    def hooked(n: int = 3) -> None:
        source(n=n)

    first = hooked.run(executor="inline", client=client, echo=False)
    assert calls == []  # it ran: nothing to repeat
    second = hooked.run(executor="inline", client=client, echo=False)
    assert second.step("source").status is StepStatus.CACHED
    assert calls == [({"n": 3}, second.run_id)] and second.run_id != first.run_id
    with pytest.raises(InvalidInput, match="on_cache_hit must be a function, not 3"):
        step(on_cache_hit=3)  # type: ignore[arg-type]


def test_run_tags_are_on_the_tracking_run_from_its_creation(client: Any) -> None:
    run = ps.numbers.run(executor="inline", client=client, run_tags={"started.by": "test"})
    tags = client.runs.get(run.run_id).tags
    assert tags["started.by"] == "test" and tags["ctloop.pipeline"] == "numbers"
