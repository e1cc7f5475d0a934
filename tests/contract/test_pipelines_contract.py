"""``client.pipelines`` and ``client.objects`` on every backend: SQLite, PostgreSQL, HTTP.

Records are written here directly (as the pipeline runner writes them), so these tests pin
the store's behaviour without running any pipeline.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ctloop._internal.ids import ms_to_datetime, new_id, now_ms
from ctloop.artifacts.manifest import StoredObject
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.pipelines.entities import (
    ArtifactRef,
    PipelineRun,
    PipelineStatus,
    StepRun,
    StepStatus,
)

GRAPH = [
    {"name": "load", "step": "flows:load", "upstream": [], "outputs": ["out"]},
    {"name": "split", "step": "flows:split", "upstream": ["load"], "outputs": ["train", "test"]},
    {"name": "train", "step": "flows:train", "upstream": ["split"], "outputs": ["out"]},
]
NEVER_STORED = hashlib.sha256(b"bytes no store holds").hexdigest()


def record(
    client: Any,
    pipeline: str = "churn",
    *,
    run_id: str | None = None,
    start: int | None = None,
    params: dict[str, Any] | None = None,
) -> PipelineRun:
    """A new pipeline run of the three steps of GRAPH, planned in reverse insertion order."""
    rid = run_id or new_id()
    steps = [
        {
            "id": new_id(),
            "name": node["name"],
            "step": node["step"],
            "params": {"depth": 3} if node["name"] == "train" else {},
            "upstream": node["upstream"],
        }
        for node in reversed(GRAPH)  # the plan, not the insertion order, orders the steps
    ]
    run = {
        "id": rid,
        "pipeline": pipeline,
        "executor": "local",
        "params": params if params is not None else {"depth": 3, "ref": "churn@latest"},
        "graph": GRAPH,
        "start_time": start if start is not None else now_ms(),
        "user": "alice",
    }
    created: PipelineRun = client.pipelines.create_run(run, steps)
    return created


def ref_of(stored: StoredObject, materializer: str = "json/1") -> ArtifactRef:
    return ArtifactRef(stored.digest, stored.kind, materializer, "dict", stored.size)


def complete(client: Any, step: StepRun, key: str, outputs: dict[str, ArtifactRef]) -> None:
    t = now_ms()
    client.pipelines.update_step(
        step.id,
        status=StepStatus.COMPLETED,
        cache_key=key,
        attempts=1,
        outputs=outputs,
        start_time=t - 1500,
        end_time=t,
    )


# --- pipeline runs ---------------------------------------------------------------------------


def test_create_run_records_a_running_run_with_pending_steps_in_plan_order(
    backend_client: Any,
) -> None:
    start = now_ms()
    run = record(backend_client, start=start)
    assert (run.pipeline, run.status, run.executor, run.user) == (
        "churn",
        PipelineStatus.RUNNING,
        "local",
        "alice",
    )
    assert run.params == {"depth": 3, "ref": "churn@latest"}
    assert run.start_time == ms_to_datetime(start)
    assert (run.end_time, run.error, run.run_id, run.duration) == (None, None, None, None)
    assert run.graph == GRAPH
    assert [s.name for s in run.steps] == ["load", "split", "train"]
    assert all(s.status is StepStatus.PENDING and s.pipeline_run_id == run.id for s in run.steps)
    assert run.step("split").upstream == ["load"]
    assert run.step("train").params == {"depth": 3}
    assert run.client is backend_client
    assert backend_client.pipelines.get(run.id) == run


def test_update_step_and_end_run_are_read_back(backend_client: Any) -> None:
    run = record(backend_client)
    stored = backend_client.objects.put_bytes(b'{"rows": 10}')
    out = ref_of(stored)
    load = run.step("load")
    t = now_ms()
    backend_client.pipelines.update_step(load.id, status="RUNNING", attempts=1, start_time=t)
    mid = backend_client.pipelines.get(run.id).step("load")
    assert (mid.status, mid.attempts, mid.start_time, mid.end_time) == (
        StepStatus.RUNNING,
        1,
        ms_to_datetime(t),
        None,
    )
    backend_client.pipelines.update_step(
        load.id,
        status=StepStatus.COMPLETED,
        cache_key="k" * 64,
        outputs={"out": out},
        end_time=t + 1500,
        logs={"stdout": stored.digest},
    )
    split = run.step("split")
    backend_client.pipelines.update_step(
        split.id,
        status="FAILED",
        inputs={"df": out.to_dict()},  # refs may be given as dicts too
        error="Traceback…\nValueError: no rows",
        end_time=t + 2000,
    )
    backend_client.pipelines.update_step(run.step("train").id, status=StepStatus.SKIPPED)
    backend_client.pipelines.update_step(run.step("train").id)  # nothing to change
    backend_client.pipelines.end_run(run.id, "FAILED", error="step split failed")

    done = backend_client.pipelines.get(run.id)
    assert done.status is PipelineStatus.FAILED and done.error == "step split failed"
    assert done.end_time is not None and done.end_time >= done.start_time
    first = done.step("load")
    assert (first.status, first.cache_key, first.outputs, first.duration) == (
        StepStatus.COMPLETED,
        "k" * 64,
        {"out": out},
        1.5,
    )
    assert first.logs == {"stdout": stored.digest}
    failed = done.step("split")
    assert (failed.status, failed.inputs, failed.error) == (
        StepStatus.FAILED,
        {"df": out},
        "Traceback…\nValueError: no rows",
    )
    assert done.step("train").status is StepStatus.SKIPPED
    assert [s.name for s in done.steps] == ["load", "split", "train"]


def test_get_by_unique_prefix_and_ambiguous_prefix(backend_client: Any) -> None:
    a = record(backend_client, run_id="abcdef01" + new_id()[8:])
    record(backend_client, run_id="abcdef02" + new_id()[8:])
    assert backend_client.pipelines.get(a.id[:8]).id == a.id
    with pytest.raises(InvalidInput, match="prefix 'abcdef' is ambiguous"):
        backend_client.pipelines.get("abcdef")
    with pytest.raises(NotFound, match="no pipeline run 'abc'; list them with: ctloop pipeline"):
        backend_client.pipelines.get("abc")  # too short to be a prefix
    with pytest.raises(NotFound, match="no pipeline run ''"):
        backend_client.pipelines.get("")


def test_list_is_newest_first_and_filters(backend_client: Any) -> None:
    t = now_ms()
    old = record(backend_client, "churn", start=t - 3000)
    mid = record(backend_client, "fraud", start=t - 2000)
    new = record(backend_client, "churn", start=t - 1000)
    backend_client.pipelines.end_run(old.id, PipelineStatus.COMPLETED)
    backend_client.pipelines.end_run(mid.id, "FAILED", error="boom")
    pipes = backend_client.pipelines

    assert [r.id for r in pipes.list()] == [new.id, mid.id, old.id]
    assert [r.id for r in pipes.list(pipeline="churn")] == [new.id, old.id]
    assert [r.id for r in pipes.list(status="FAILED")] == [mid.id]
    assert [r.id for r in pipes.list(status=PipelineStatus.RUNNING)] == [new.id]
    assert [r.id for r in pipes.list(pipeline="churn", status="COMPLETED")] == [old.id]
    assert [r.id for r in pipes.list(limit=2)] == [new.id, mid.id]
    assert pipes.list(pipeline="nothing") == []
    listed = pipes.list(pipeline="fraud")[0]
    assert listed == pipes.get(mid.id)  # steps included, as get returns them
    assert [s.name for s in listed.steps] == ["load", "split", "train"]


def test_params_of_any_json_shape_round_trip(backend_client: Any) -> None:
    params = {"layers": [64, 32], "opts": {"lr": 0.01, "nesterov": True}, "note": None}
    run = record(backend_client, params=params)
    assert backend_client.pipelines.get(run.id).params == params


# --- the cache -------------------------------------------------------------------------------


def test_find_cached_skips_runs_whose_outputs_are_gone(backend_client: Any) -> None:
    key = hashlib.sha256(b"step code, params, inputs").hexdigest()
    pipes = backend_client.pipelines
    assert pipes.find_cached(key) is None

    intact = record(backend_client).step("load")
    out = ref_of(backend_client.objects.put_bytes(b"[1, 2, 3]"))
    complete(backend_client, intact, key, {"out": out})
    hit = pipes.find_cached(key)
    assert hit is not None and hit.id == intact.id and hit.outputs == {"out": out}
    assert hit == pipes.get(intact.pipeline_run_id).step("load")

    # A newer run with the same key whose output object is missing from the store is no
    # hit: the older intact one is.
    broken = record(backend_client).step("load")
    gone = ArtifactRef(NEVER_STORED, "file", "json/1", "list", 9)
    complete(backend_client, broken, key, {"out": out, "extra": gone})
    hit = pipes.find_cached(key)
    assert hit is not None and hit.id == intact.id

    # Only completed step runs count: a cache hit or a failure under the key is no source.
    failed = record(backend_client).step("load")
    backend_client.pipelines.update_step(failed.id, status="FAILED", cache_key=key)
    assert pipes.find_cached(key).id == intact.id
    assert pipes.find_cached("0" * 64) is None


def test_find_cached_with_only_broken_candidates_is_a_miss(backend_client: Any) -> None:
    key = "f" * 64
    step = record(backend_client).step("train")
    complete(backend_client, step, key, {"out": ArtifactRef(NEVER_STORED, "dir", "model/1", "x")})
    assert backend_client.pipelines.find_cached(key) is None


def test_a_completed_step_without_outputs_is_a_hit(backend_client: Any) -> None:
    step = record(backend_client).step("train")
    complete(backend_client, step, "e" * 64, {})
    hit = backend_client.pipelines.find_cached("e" * 64)
    assert hit is not None and hit.id == step.id


# --- objects ---------------------------------------------------------------------------------


def test_objects_file_round_trip(backend_client: Any, tmp_path: Path) -> None:
    objects = backend_client.objects
    data = os.urandom(5000)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert objects.missing([(digest, "file")]) == [(digest, "file")]

    first = objects.put(src)
    assert first == StoredObject(digest, "file", len(data), 1, False)
    assert objects.put(src).existed
    assert objects.missing([(digest, "file"), (NEVER_STORED, "file")]) == [(NEVER_STORED, "file")]
    assert objects.read_bytes(digest) == data
    out = objects.get(digest, "file", tmp_path / "out" / "copy.bin")
    assert out == tmp_path / "out" / "copy.bin" and out.read_bytes() == data

    small = objects.put_bytes(b"hello")
    assert small == StoredObject(hashlib.sha256(b"hello").hexdigest(), "file", 5, 1, False)
    assert objects.put_bytes(b"hello").existed
    assert objects.read_bytes(small.digest) == b"hello"
    assert objects.put_bytes(b"") == StoredObject(hashlib.sha256(b"").hexdigest(), "file", 0, 1)


def test_objects_folder_round_trip(backend_client: Any, tmp_path: Path) -> None:
    objects = backend_client.objects
    files = {"a.txt": b"alpha", "sub/b.bin": os.urandom(2000), "sub/deeper/c.txt": b"alpha"}
    src = tmp_path / "folder"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    stored = objects.put(src)
    assert (stored.kind, stored.size, stored.file_count, stored.existed) == (
        "dir",
        sum(len(d) for d in files.values()),
        3,
        False,
    )
    assert objects.put(src).existed
    assert objects.missing([(stored.digest, "dir")]) == []
    assert objects.missing([(stored.digest, "file")]) == [(stored.digest, "file")]
    files_back = objects.get(stored.digest, "dir", tmp_path / "back")
    got = {
        p.relative_to(files_back).as_posix(): p.read_bytes()
        for p in files_back.rglob("*")
        if p.is_file()
    }
    assert got == files


def test_objects_errors(backend_client: Any, tmp_path: Path) -> None:
    objects = backend_client.objects
    named = NEVER_STORED[2:]  # the local store names the object's key: sha256/b5/1c1e…
    with pytest.raises(NotFound, match=named):
        objects.read_bytes(NEVER_STORED)
    with pytest.raises(NotFound, match=named):
        objects.get(NEVER_STORED, "file", tmp_path / "x")
    with pytest.raises(NotFound, match=named):
        objects.get(NEVER_STORED, "dir", tmp_path / "y")
    assert not (tmp_path / "x").exists()
    with pytest.raises(InvalidInput, match="invalid object kind 'blob': use 'file' or 'dir'"):
        objects.missing([(NEVER_STORED, "blob")])
    with pytest.raises(InvalidInput, match="invalid digest 'abc'"):
        objects.missing([("abc", "file")])
    with pytest.raises(InvalidInput, match="invalid digest"):
        objects.read_bytes("not-a-digest")
    with pytest.raises(NotFound, match="no such file or folder"):
        objects.put(tmp_path / "absent")
    assert objects.missing([]) == []


# --- errors ----------------------------------------------------------------------------------


def test_not_found_messages(backend_client: Any) -> None:
    pipes = backend_client.pipelines
    ghost = new_id()
    with pytest.raises(NotFound, match=f"no pipeline run '{ghost}'; list them with"):
        pipes.get(ghost)
    with pytest.raises(NotFound, match=f"no pipeline run '{ghost}'"):
        pipes.end_run(ghost, "COMPLETED")
    with pytest.raises(NotFound, match=f"no step run '{ghost}'"):
        pipes.update_step(ghost, status="RUNNING")
    with pytest.raises(NotFound, match=f"no step run '{ghost}'"):
        pipes.update_step(ghost)
    run = record(backend_client)
    with pytest.raises(NotFound, match="has no step 'deploy' \\(its steps: load, split, train\\)"):
        run.step("deploy")
    untracked = {
        "id": new_id(),
        "pipeline": "p",
        "executor": "inline",
        "run_id": ghost,  # no such tracking run
        "start_time": now_ms(),
        "user": "u",
    }
    with pytest.raises(NotFound, match=f"no run with id '{ghost}' to track pipeline run"):
        pipes.create_run(untracked, [])


def test_invalid_input_messages(backend_client: Any) -> None:
    pipes = backend_client.pipelines
    run = record(backend_client)
    step = run.step("load")
    with pytest.raises(InvalidInput, match="invalid step status 'DONE': use one of PENDING"):
        pipes.update_step(step.id, status="DONE")
    with pytest.raises(InvalidInput, match="cannot change 'name' of a step run"):
        pipes.update_step(step.id, name="other")
    with pytest.raises(InvalidInput, match="invalid pipeline status 'DONE': use one of RUNNING"):
        pipes.end_run(run.id, "DONE")
    with pytest.raises(InvalidInput, match="end_run needs COMPLETED or FAILED, not RUNNING"):
        pipes.end_run(run.id, "RUNNING")
    with pytest.raises(InvalidInput, match="invalid pipeline status 'sleeping'"):
        pipes.list(status="sleeping")
    for limit in (0, 10_001):
        with pytest.raises(InvalidInput, match=f"invalid limit {limit}: use an integer from 1"):
            pipes.list(limit=limit)
    assert pipes.get(run.id) == run  # nothing changed


def test_ids_are_unique(backend_client: Any) -> None:
    run = record(backend_client)
    with pytest.raises(Conflict, match=f"pipeline run '{run.id}' already exists"):
        record(backend_client, run_id=run.id)
    taken = run.steps[0].id
    with pytest.raises(Conflict, match=f"step run '{taken}' already exists"):
        backend_client.pipelines.create_run(
            {"id": new_id(), "pipeline": "p", "executor": "inline", "start_time": 1, "user": "u"},
            [{"id": taken, "name": "a", "step": "m:a"}],
        )
    twice = [
        {"id": new_id(), "name": "a", "step": "m:a"},
        {"id": new_id(), "name": "a", "step": "m:b"},
    ]
    with pytest.raises(InvalidInput, match="have the name 'a'; step names must be unique"):
        backend_client.pipelines.create_run(
            {"id": new_id(), "pipeline": "p", "executor": "inline", "start_time": 1, "user": "u"},
            twice,
        )
    assert len(backend_client.pipelines.list()) == 1


def test_a_pipeline_run_can_point_at_its_tracking_run(backend_client: Any) -> None:
    tracked = backend_client.runs.create("churn", capture_code=False)
    run = backend_client.pipelines.create_run(
        {
            "id": new_id(),
            "pipeline": "churn",
            "run_id": tracked.id,
            "executor": "inline",
            "start_time": now_ms(),
            "user": "u",
        },
        [],
    )
    assert run.run_id == tracked.id and run.steps == [] and run.graph == []


# --- outputs -----------------------------------------------------------------------------


def test_step_outputs_load_back_through_the_materializers(backend_client: Any) -> None:
    materializers = pytest.importorskip("ctloop.pipelines.materializers")
    np = pytest.importorskip("numpy")
    run = record(backend_client)
    table = {"auc": 0.81, "rows": [1, 2]}
    array = np.arange(12.0).reshape(3, 4)
    refs = {
        "json": materializers.save(table, backend_client.objects),
        "array": materializers.save(array, backend_client.objects),
    }
    complete(backend_client, run.step("split"), "d" * 64, refs)
    done = backend_client.pipelines.get(run.id)
    assert done.output("split", "json") == table
    assert np.array_equal(done.output("split", "array"), array)
    assert backend_client.pipelines.load(refs["json"].to_dict()) == table
    unbound = replace(done, client=None)
    with pytest.raises(InvalidInput, match="not bound to a client"):
        unbound.output("split", "json")


# --- lineage: which step runs wrote an artifact ---------------------------------------------


def test_producers_and_trace_follow_outputs_back_through_inputs(backend_client: Any) -> None:
    client = backend_client
    run = record(client)
    load, train = run.step("load"), run.step("train")
    data = ref_of(client.objects.put_bytes(b'{"rows": 3}'))
    model = ref_of(client.objects.put_bytes(b'{"weights": [1, 2]}'))
    complete(client, load, "k-load", {"output": data})
    client.pipelines.update_step(train.id, inputs={"df": data})
    complete(client, train, "k-train", {"output": model})

    (writer,) = client.pipelines.producers(model.digest)
    assert writer.id == train.id
    assert [s.id for s in client.pipelines.producers(data.digest[:10].upper())] == [load.id]

    traced = client.pipelines.trace(model.digest[:12])
    assert traced.digest == model.digest and traced.producer is not None
    assert traced.producer.id == train.id and traced.output == "output"
    assert traced.inputs["df"].producer is not None
    assert traced.inputs["df"].producer.id == load.id
    assert traced.to_dict()["inputs"]["df"]["producer"]["name"] == "load"

    with pytest.raises(InvalidInput, match="not an artifact digest"):
        client.pipelines.producers("abc")
    with pytest.raises(NotFound, match="no step run wrote an artifact"):
        client.pipelines.trace("0" * 64)
    assert client.pipelines.producers("0" * 64) == []
