"""The driver of a pipeline run: what runs when, the cache, retries, timeouts, records.

It walks the plan in order. A step whose upstream steps all succeeded is *ready*: its
cache key is computed from its code, params and the digests of its inputs; a completed
step run with that key (whose outputs are still stored) is a cache hit and the step is
recorded CACHED without running. Otherwise an attempt is submitted to the executor. A
failed attempt is retried after ``retry_delay`` × 2^(attempt−1) seconds while retries
remain; an attempt past its timeout is stopped (TIMED_OUT). A step that ends without
outputs makes every step downstream of it SKIPPED; independent branches still run, and
the pipeline run ends FAILED. Every change is written to the store as it happens.
"""

from __future__ import annotations

import contextlib
import json
import linecache
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop._internal.environment import current_user
from ctloop._internal.ids import new_id, now_ms
from ctloop.errors import InvalidInput
from ctloop.pipelines.entities import ArtifactRef, PipelineStatus, StepStatus
from ctloop.pipelines.executors import EXECUTORS, Executor, make_executor
from ctloop.pipelines.fingerprint import cache_key, code_digest
from ctloop.pipelines.materializers import MATERIALIZERS, _is_json

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.pipelines.definition import Node, Pipeline, Plan
    from ctloop.pipelines.entities import PipelineRun
    from ctloop.pipelines.worker import StepOutcome, StepTask
    from ctloop.settings import Settings

log = logging.getLogger("ctloop.pipelines")

PIPELINE_TAG = "ctloop.pipeline"
PIPELINE_RUN_TAG = "ctloop.pipeline_run_id"


class TimeoutNotEnforced(UserWarning):
    """A step has a timeout but runs on the inline executor, which cannot stop it."""


@dataclass
class _Attempt:
    node: str
    number: int
    handle: Any
    deadline: float | None  # time.monotonic() past which it is stopped


def run_plan(
    pipeline: Pipeline,
    plan: Plan,
    params: dict[str, Any],
    *,
    executor: str,
    cache: bool,
    client: Client | None,
    raise_on_failure: bool,
    max_workers: int | None,
    ray_address: str | None,
    echo: bool = True,
    tags: Mapping[str, str] | None = None,
) -> PipelineRun:
    """Run ``plan`` and record it; see the module docstring."""
    if executor not in EXECUTORS:
        raise InvalidInput(f"unknown executor {executor!r}; use one of: {', '.join(EXECUTORS)}")
    if max_workers is not None and max_workers < 1:
        raise InvalidInput(f"max_workers must be at least 1, not {max_workers}")
    if client is None:
        from ctloop.client.default import default_client

        client = default_client()
    if executor == "inline":
        for node in plan.nodes.values():
            if node.step.options.timeout is not None:
                warnings.warn(
                    f"step {node.name!r} has timeout={node.step.options.timeout}s, but the "
                    "inline executor runs steps in this thread and cannot stop them; the "
                    "timeout is not enforced (use executor='local' or 'ray')",
                    TimeoutNotEnforced,
                    stacklevel=3,
                )
    driver = _Driver(
        pipeline, plan, params, executor, cache, client, max_workers, ray_address, echo, tags
    )
    record = driver.run()
    if record.status is PipelineStatus.FAILED and raise_on_failure:
        from ctloop.pipelines.definition import PipelineFailed

        raise PipelineFailed(failure_summary(record), record)
    return record


def failure_summary(run: PipelineRun) -> str:
    """One paragraph: which steps failed, their errors' last lines, what to run next."""
    lines = [f"pipeline {run.pipeline!r} run {run.id} FAILED"]
    for s in run.steps:
        if s.status in (StepStatus.FAILED, StepStatus.TIMED_OUT):
            last = (s.error or "").strip().splitlines()
            lines.append(f"  step {s.name!r} {s.status.value}: {last[-1] if last else ''}")
    skipped = [s.name for s in run.steps if s.status is StepStatus.SKIPPED]
    if skipped:
        lines.append(f"  skipped: {', '.join(skipped)}")
    lines.append(f"  details: ctloop pipeline show {run.id}")
    return "\n".join(lines)


class _Driver:
    def __init__(
        self,
        pipeline: Pipeline,
        plan: Plan,
        params: dict[str, Any],
        executor: str,
        cache: bool,
        client: Client,
        max_workers: int | None,
        ray_address: str | None,
        echo: bool,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.tags = dict(tags or {})
        self.plan = plan
        self.params = params
        self.executor_name = executor
        self.cache = cache
        self.client = client
        self.max_workers = max_workers
        self.ray_address = ray_address
        self.id = new_id()
        self.step_ids = {name: new_id() for name in plan.nodes}
        self.status: dict[str, StepStatus] = {name: StepStatus.PENDING for name in plan.nodes}
        self.outputs: dict[str, dict[str, ArtifactRef]] = {}
        self.attempts: dict[str, int] = {name: 0 for name in plan.nodes}
        self.retry_at: dict[str, float] = {}
        self.started: dict[str, int] = {}
        self.running: dict[Any, _Attempt] = {}
        self.literals: dict[str, dict[str, ArtifactRef]] = {}
        self.keys: dict[str, str] = {}
        self.looked_up: set[str] = set()  # steps whose cache was already consulted
        self.echo = echo
        self.exe: Executor | None = None
        self.tracking_run_id: str | None = None
        self.settings: Settings | None = None
        linecache.checkcache()  # source edited since the last run must be seen as edited
        self.code = {name: code_digest(n.step.fn) for name, n in plan.nodes.items()}
        self.materializers = ",".join(m.id for m in MATERIALIZERS)

    # --- the run -------------------------------------------------------------------------

    def run(self) -> PipelineRun:
        client = self.client
        record = client.runs.create(
            self.pipeline.experiment,
            f"{self.pipeline.name}-{self.id[:8]}",
            {**self.tags, PIPELINE_TAG: self.pipeline.name, PIPELINE_RUN_TAG: self.id},
        )
        self.tracking_run_id = record.id
        if self.params:
            client.runs.log_params(record.id, {k: _param_text(v) for k, v in self.params.items()})
        client.pipelines.create_run(
            {
                "id": self.id,
                "pipeline": self.pipeline.name,
                "run_id": record.id,
                "executor": self.executor_name,
                "params": self.params,
                "graph": self.plan.graph(),
                "start_time": now_ms(),
                "user": current_user(),
            },
            [
                {
                    "id": self.step_ids[n.name],
                    "name": n.name,
                    "step": n.step.path,
                    "params": n.params,
                    "upstream": n.upstream,
                }
                for n in self.plan.nodes.values()
            ],
        )
        error: str | None = None
        try:
            self._loop()
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc or 'the run was interrupted'}"
            self._abandon(error)
            self._finish(error)
            raise
        finally:
            if self.exe is not None:
                with contextlib.suppress(Exception):
                    self.exe.close()
        return self._finish(error)

    def _finish(self, error: str | None) -> PipelineRun:
        failed = error is not None or any(not s.succeeded for s in self.status.values())
        status = PipelineStatus.FAILED if failed else PipelineStatus.COMPLETED
        if failed and error is None:
            bad = [n for n, s in self.status.items() if s in _DEAD and s is not StepStatus.SKIPPED]
            error = f"step(s) {', '.join(bad)} did not complete" if bad else "steps did not run"
        self.client.pipelines.end_run(self.id, status, error)
        assert self.tracking_run_id is not None
        self.client.runs.end(self.tracking_run_id, "FAILED" if failed else "FINISHED", error)
        return self.client.pipelines.get(self.id)

    def _abandon(self, reason: str) -> None:
        """An interrupted run: stop what runs, record what never finished."""
        for handle, attempt in list(self.running.items()):
            with contextlib.suppress(Exception):
                assert self.exe is not None
                self.exe.cancel(handle)
            self.running.pop(handle, None)
            self._set(attempt.node, StepStatus.FAILED, end_time=now_ms(), error=reason)
        for name, status in self.status.items():
            if status is StepStatus.PENDING:
                self._set(name, StepStatus.SKIPPED)

    # --- scheduling ------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._skip_downstream_of_failures()
            self._start_ready()
            if not self.running:
                if not self.retry_at:
                    return
                time.sleep(max(0.0, min(self.retry_at.values()) - time.monotonic()))
                continue
            assert self.exe is not None
            for handle, outcome in self.exe.wait(list(self.running), self._wait_timeout()):
                attempt = self.running.pop(handle, None)
                if attempt is not None:
                    self._ended(attempt, outcome)
            self._stop_overdue()

    def _wait_timeout(self) -> float | None:
        moments = [a.deadline for a in self.running.values() if a.deadline is not None]
        moments += list(self.retry_at.values())
        if not moments:
            return None
        return max(0.0, min(moments) - time.monotonic())

    def _skip_downstream_of_failures(self) -> None:
        for name, node in self.plan.nodes.items():
            if self.status[name] is not StepStatus.PENDING:
                continue
            if any(self.status[up] in _DEAD for up in node.upstream):
                self._set(name, StepStatus.SKIPPED)

    def _start_ready(self) -> None:
        now = time.monotonic()
        for name, node in self.plan.nodes.items():
            if self.status[name] is not StepStatus.PENDING:
                continue
            if any(self.status[up] not in _DONE for up in node.upstream):
                continue
            if name in self.retry_at and self.retry_at[name] > now:
                continue
            if any(a.node == name for a in self.running.values()):
                continue
            inputs = self._inputs(node)
            if name not in self.keys:
                self.keys[name] = self._key(node, inputs)
            key = self.keys[name]
            if name not in self.looked_up and self.cache and node.step.options.cache:
                self.looked_up.add(name)
                hit = self.client.pipelines.find_cached(key)
                if hit is not None:
                    hook = node.step.options.on_cache_hit
                    if hook is not None:
                        hook(dict(node.params), self.client, self.tracking_run_id)
                    self.outputs[name] = dict(hit.outputs)
                    t = now_ms()
                    self._set(
                        name,
                        StepStatus.CACHED,
                        cache_key=key,
                        cache_hit=True,
                        cached_from=hit.id,
                        inputs=inputs,
                        outputs=hit.outputs,
                        start_time=t,
                        end_time=t,
                    )
                    log.info("step %s: cached (from step run %s)", name, hit.id)
                    continue
            exe = self._executor()
            if len(self.running) >= exe.max_parallel:
                return
            self._submit(node, inputs, key)

    def _executor(self) -> Executor:
        if self.exe is None:
            self.exe = make_executor(
                self.executor_name,
                self.client,
                max_workers=self.max_workers,
                ray_address=self.ray_address,
            )
        return self.exe

    def _inputs(self, node: Node) -> dict[str, ArtifactRef]:
        from ctloop.pipelines import materializers

        inputs = {arg: self.outputs[ref.node][ref.output] for arg, ref in node.inputs.items()}
        if node.literals and node.name not in self.literals:
            self.literals[node.name] = {
                arg: materializers.save(value, self.client.objects, what=f"argument {arg!r}")
                for arg, value in node.literals.items()
            }
        inputs.update(self.literals.get(node.name, {}))
        return inputs

    def _key(self, node: Node, inputs: dict[str, ArtifactRef]) -> str:
        params = dict(node.params)
        extra = node.step.options.cache_extra
        if extra is not None:
            value = extra(dict(node.params), self.client)
            if not _is_json(value):
                raise InvalidInput(
                    f"cache_extra of step {node.name!r} returned a {type(value).__name__}; "
                    "it must return a JSON value (e.g. a digest or version string)"
                )
            params["\0cache_extra"] = value
        return cache_key(
            self.code[node.name],
            params,
            {arg: ref.digest for arg, ref in inputs.items()},
            {**{arg: ref.materializer for arg, ref in inputs.items()}, "*": self.materializers},
        )

    def _task_settings(self) -> Settings | None:
        if self.settings is None and self._executor().needs_settings:
            s = self.client.settings
            self.settings = s.model_copy(
                update={
                    "store": _absolute_store(s.store_url()),
                    "artifacts": s.artifacts_root(),
                    "home": s.home.absolute(),
                }
            )
        return self.settings

    def _submit(self, node: Node, inputs: dict[str, ArtifactRef], key: str) -> None:
        from ctloop.pipelines.worker import StepTask

        exe = self._executor()
        self.attempts[node.name] += 1
        number = self.attempts[node.name]
        self.retry_at.pop(node.name, None)
        task = StepTask(
            step=node.step,
            node=node.name,
            step_run_id=self.step_ids[node.name],
            attempt=number,
            params=dict(node.params),
            inputs=inputs,
            settings=self._task_settings(),
            tracking_run_id=self.tracking_run_id,
            pipeline_run_id=self.id,
            echo=self.echo,
        )
        start = now_ms()
        self.started.setdefault(node.name, start)
        self._set(
            node.name,
            StepStatus.RUNNING,
            cache_key=key,
            attempts=number,
            inputs=inputs,
            start_time=self.started[node.name],
        )
        self._submit_task(exe, node, task, number)

    def _submit_task(self, exe: Executor, node: Node, task: StepTask, number: int) -> None:
        timeout = node.step.options.timeout
        handle = exe.submit(task)
        deadline = time.monotonic() + timeout if timeout and exe.enforces_timeouts else None
        self.running[handle] = _Attempt(node.name, number, handle, deadline)

    # --- outcomes --------------------------------------------------------------------------

    def _ended(self, attempt: _Attempt, outcome: StepOutcome, timed_out: bool = False) -> None:
        name = attempt.node
        node = self.plan.nodes[name]
        for category, message in outcome.warnings:
            _rewarn(category, message)
        if outcome.ok:
            self.outputs[name] = outcome.outputs
            self._set(
                name,
                StepStatus.COMPLETED,
                outputs=outcome.outputs,
                end_time=outcome.end_ms,
                error=None,
                logs=outcome.logs or None,
            )
            log.info("step %s: completed (attempt %d)", name, attempt.number)
            return
        if attempt.number <= node.step.options.retries:
            delay = node.step.options.retry_delay * (2 ** (attempt.number - 1))
            self.retry_at[name] = time.monotonic() + delay
            self.status[name] = StepStatus.PENDING
            self.client.pipelines.update_step(
                self.step_ids[name],
                status=StepStatus.PENDING,
                error=outcome.error,
                logs=outcome.logs or None,
            )
            log.info("step %s: attempt %d failed; retrying in %.1fs", name, attempt.number, delay)
            return
        status = StepStatus.TIMED_OUT if timed_out else StepStatus.FAILED
        self._set(
            name, status, end_time=outcome.end_ms, error=outcome.error, logs=outcome.logs or None
        )
        log.info("step %s: %s after %d attempt(s)", name, status.value, attempt.number)

    def _stop_overdue(self) -> None:
        from ctloop.pipelines.worker import StepOutcome

        now = time.monotonic()
        for handle, attempt in list(self.running.items()):
            if attempt.deadline is None or attempt.deadline > now:
                continue
            assert self.exe is not None
            self.exe.cancel(handle)
            self.running.pop(handle, None)
            timeout = self.plan.nodes[attempt.node].step.options.timeout
            t = now_ms()
            outcome = StepOutcome(
                ok=False,
                start_ms=t,
                end_ms=t,
                error=f"TimeoutError: step {attempt.node!r} ran longer than its timeout of "
                f"{timeout}s (attempt {attempt.number}) and was stopped",
            )
            self._ended(attempt, outcome, timed_out=True)

    def _set(self, name: str, status: StepStatus, **fields: Any) -> None:
        self.status[name] = status
        self.client.pipelines.update_step(self.step_ids[name], status=status, **fields)


_DONE = frozenset({StepStatus.COMPLETED, StepStatus.CACHED})
_DEAD = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.TIMED_OUT})


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _absolute_store(url: str) -> str:
    """``sqlite:///relative.db`` made absolute, so workers in other folders find it."""
    from pathlib import Path

    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(Path(url.removeprefix(prefix)).absolute())
    return url


def _rewarn(category: str, message: str) -> None:
    """Raise a warning from a worker again in the driver, where the user sees it."""
    from ctloop.pipelines.materializers import PickledOutputWarning

    cls: type[Warning] = PickledOutputWarning if category == "PickledOutputWarning" else UserWarning
    warnings.warn(message, cls, stacklevel=4)
