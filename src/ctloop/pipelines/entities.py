"""What a pipeline run leaves behind: the run, its step runs, and references to artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.client import Client

__all__ = ["ArtifactRef", "ArtifactTrace", "PipelineRun", "PipelineStatus", "StepRun", "StepStatus"]


class PipelineStatus(StrEnum):
    """Where a pipeline run is: RUNNING until every step has ended."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class StepStatus(StrEnum):
    """Where a step run is. CACHED: its outputs were reused from an earlier identical run."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CACHED = "CACHED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # an upstream step did not produce its outputs
    TIMED_OUT = "TIMED_OUT"

    @property
    def ended(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)

    @property
    def succeeded(self) -> bool:
        return self in (StepStatus.COMPLETED, StepStatus.CACHED)


@dataclass(frozen=True)
class ArtifactRef:
    """An output (or input) of a step: a content-addressed object and how to read it back.

    Attributes:
        digest: sha256 of the file, or the tree digest of a folder.
        kind: ``file`` or ``dir``.
        materializer: ``NAME/VERSION`` of the materializer that wrote it (``dataframe/1`` …).
        type: the Python type it was made from (``pandas.core.frame.DataFrame``).
        size: bytes.
    """

    digest: str
    kind: str
    materializer: str
    type: str
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "kind": self.kind,
            "materializer": self.materializer,
            "type": self.type,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ArtifactRef:
        return cls(
            digest=str(raw["digest"]),
            kind=str(raw["kind"]),
            materializer=str(raw["materializer"]),
            type=str(raw.get("type", "")),
            size=int(raw.get("size") or 0),
        )


@dataclass(frozen=True)
class StepRun:
    """One step of one pipeline run.

    ``inputs`` maps each argument that came from another step to the artifact it read;
    ``outputs`` maps output names to the artifacts written (or reused, on a cache hit:
    then ``cached_from`` is the step run that wrote them).
    """

    id: str
    pipeline_run_id: str
    name: str
    step: str
    status: StepStatus
    attempts: int = 0
    cache_key: str | None = None
    cache_hit: bool = False
    cached_from: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, ArtifactRef] = field(default_factory=dict)
    outputs: dict[str, ArtifactRef] = field(default_factory=dict)
    upstream: list[str] = field(default_factory=list)
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: str | None = None
    logs: dict[str, str] | None = None  # {"stdout": digest, "stderr": digest}

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, when both are known."""
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass(frozen=True)
class PipelineRun:
    """One execution of a pipeline, with its steps in plan order.

    Params and metrics that steps log go to the tracking run ``run_id``.
    """

    id: str
    pipeline: str
    status: PipelineStatus
    executor: str
    params: dict[str, Any]
    start_time: datetime
    user: str
    run_id: str | None = None
    end_time: datetime | None = None
    error: str | None = None
    graph: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepRun] = field(default_factory=list)
    client: Client | None = field(default=None, repr=False, compare=False)

    def step(self, name: str) -> StepRun:
        """The step run called ``name``; :class:`~ctloop.errors.NotFound` otherwise."""
        for s in self.steps:
            if s.name == name:
                return s
        from ctloop.errors import NotFound

        names = ", ".join(s.name for s in self.steps) or "none"
        raise NotFound(f"pipeline run {self.id} has no step {name!r} (its steps: {names})")

    @property
    def cache_hits(self) -> int:
        return sum(1 for s in self.steps if s.cache_hit)

    @property
    def duration(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()

    def output(self, step: str, name: str | None = None) -> Any:
        """Load an output of a step (``name`` may be omitted when the step has one output)."""
        if self.client is None:
            from ctloop.errors import InvalidInput

            raise InvalidInput(
                "this PipelineRun is not bound to a client; use "
                "client.pipelines.get(run_id).output(...)"
            )
        ref = output_ref(self.step(step), name)
        return self.client.pipelines.load(ref)


@dataclass(frozen=True)
class ArtifactTrace:
    """Where an artifact came from: the step run that wrote it, and what that step read.

    ``producer`` is None for an artifact no step wrote (e.g. a value passed to a step
    directly, stored when its run started). ``inputs`` maps each argument of the producer
    to the trace of the artifact it read, back to the first steps of the pipeline.
    """

    digest: str
    ref: ArtifactRef | None = None
    producer: StepRun | None = None
    output: str | None = None  # the producer's output name
    inputs: dict[str, ArtifactTrace] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        p = self.producer
        return {
            "digest": self.digest,
            "artifact": self.ref.to_dict() if self.ref is not None else None,
            "output": self.output,
            "producer": None
            if p is None
            else {
                "step_run_id": p.id,
                "pipeline_run_id": p.pipeline_run_id,
                "name": p.name,
                "step": p.step,
                "params": p.params,
                "end_time": p.end_time.isoformat() if p.end_time else None,
            },
            "inputs": {k: v.to_dict() for k, v in self.inputs.items()},
        }


def output_ref(step: StepRun, name: str | None) -> ArtifactRef:
    """The artifact of ``step``'s output ``name`` (or its only output)."""
    from ctloop.errors import InvalidInput, NotFound

    if not step.outputs:
        raise NotFound(
            f"step {step.name!r} has no outputs (it is {step.status.value}); see "
            f"ctloop pipeline show {step.pipeline_run_id}"
        )
    if name is None:
        if len(step.outputs) > 1:
            raise InvalidInput(
                f"step {step.name!r} has several outputs ({', '.join(step.outputs)}); name one"
            )
        return next(iter(step.outputs.values()))
    if name not in step.outputs:
        raise NotFound(
            f"step {step.name!r} has no output {name!r} (its outputs: {', '.join(step.outputs)})"
        )
    return step.outputs[name]
