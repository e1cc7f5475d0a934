"""``client.pipelines``: the records of pipeline runs and step runs, and their outputs.

Running a pipeline is ``Pipeline.run`` (``ctloop.pipelines``); this API is what it writes
through, and what ``ctloop pipeline runs|show`` and the server read.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ctloop._internal.ids import ms_to_datetime
from ctloop.client._local import LocalContext
from ctloop.errors import InvalidInput
from ctloop.pipelines.entities import (
    ArtifactRef,
    ArtifactTrace,
    PipelineRun,
    PipelineStatus,
    StepRun,
    StepStatus,
)
from ctloop.store import pipelines as repo

if TYPE_CHECKING:
    from ctloop.client.objects import ObjectsAPI

_TIMES = ("start_time", "end_time")
MAX_LIST = 10_000  # pipeline runs per list() call

S = TypeVar("S", bound=StrEnum)


def parse_status(kind: type[S], value: str) -> S:
    """``value`` as a member of the status enum ``kind``; InvalidInput naming the valid ones."""
    try:
        return kind(value)
    except ValueError:
        what = "pipeline" if kind.__name__.startswith("Pipeline") else "step"
        valid = ", ".join(m.value for m in kind)
        raise InvalidInput(f"invalid {what} status {value!r}: use one of {valid}") from None


def check_limit(limit: object) -> int:
    """``limit`` of :meth:`PipelinesAPI.list` if it is an integer from 1 to MAX_LIST."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"invalid limit {limit!r}: use an integer from 1 to {MAX_LIST}")
    return limit


def step_from_row(row: Mapping[str, Any]) -> StepRun:
    """A step run from its stored (or wire) form."""
    return StepRun(
        id=row["id"],
        pipeline_run_id=row["pipeline_run_id"],
        name=row["name"],
        step=row["step"],
        status=StepStatus(row["status"]),
        attempts=int(row.get("attempts") or 0),
        cache_key=row.get("cache_key"),
        cache_hit=bool(row.get("cache_hit")),
        cached_from=row.get("cached_from"),
        params=dict(row.get("params") or {}),
        inputs={k: ArtifactRef.from_dict(v) for k, v in (row.get("inputs") or {}).items()},
        outputs={k: ArtifactRef.from_dict(v) for k, v in (row.get("outputs") or {}).items()},
        upstream=list(row.get("upstream") or []),
        start_time=ms_to_datetime(row.get("start_time")),
        end_time=ms_to_datetime(row.get("end_time")),
        error=row.get("error"),
        logs=row.get("logs"),
    )


def run_from_row(row: Mapping[str, Any], client: Any = None) -> PipelineRun:
    """A pipeline run (with its steps) from its stored (or wire) form."""
    start = ms_to_datetime(row["start_time"])
    assert start is not None
    return PipelineRun(
        id=row["id"],
        pipeline=row["pipeline"],
        status=PipelineStatus(row["status"]),
        executor=row["executor"],
        params=dict(row.get("params") or {}),
        start_time=start,
        user=row["user"],
        run_id=row.get("run_id"),
        end_time=ms_to_datetime(row.get("end_time")),
        error=row.get("error"),
        graph=list(row.get("graph") or []),
        steps=[step_from_row(s) for s in row.get("steps") or []],
        client=client,
    )


def step_fields_to_row(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Step-run fields as stored: enums as strings, artifact refs as dicts."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in repo.STEP_FIELDS:
            raise InvalidInput(
                f"cannot change {key!r} of a step run (changeable: {sorted(repo.STEP_FIELDS)})"
            )
        if key == "status":
            value = parse_status(StepStatus, value).value
        elif key in ("inputs", "outputs"):
            value = {
                k: (
                    v.to_dict()
                    if isinstance(v, ArtifactRef)
                    else ArtifactRef.from_dict(v).to_dict()
                )
                for k, v in (value or {}).items()
            }
        out[key] = value
    return out


class PipelineArtifacts:
    """What both backends' pipelines APIs do the same way on top of ``producers`` and
    ``objects``: trace an artifact, load one."""

    # the Client that owns this API, so runs it returns can load their outputs
    _owner: Any = None
    objects: Any

    def producers(self, digest: str) -> builtins.list[StepRun]:
        raise NotImplementedError

    def trace(self, digest: str) -> ArtifactTrace:
        """Where the artifact ``digest`` came from: its producer and, recursively, its inputs."""
        return trace_artifact(self, digest)

    def load(self, ref: ArtifactRef | Mapping[str, Any]) -> Any:
        """Read an artifact back into the Python object it was written from."""
        from ctloop.pipelines.materializers import load

        art = ref if isinstance(ref, ArtifactRef) else ArtifactRef.from_dict(dict(ref))
        return load(art, self.objects)


class PipelinesAPI(PipelineArtifacts):
    """Record pipeline runs and step runs; read them back; load step outputs."""

    def __init__(self, ctx: LocalContext, objects: ObjectsAPI | None = None) -> None:
        self._ctx = ctx
        self._objects = objects

    @property
    def objects(self) -> ObjectsAPI:
        if self._objects is None:
            from ctloop.client.objects import ObjectsAPI

            self._objects = ObjectsAPI(self._ctx)
        return self._objects

    # --- writing (what the pipeline runner calls) ----------------------------------------

    def create_run(self, run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> PipelineRun:
        """Record a new pipeline run and its planned steps (all PENDING).

        ``run`` has ``id``, ``pipeline``, ``executor``, ``params``, ``graph``,
        ``start_time`` (ms), ``user`` and optionally ``run_id``; each step has ``id``,
        ``name``, ``step``, ``params`` and ``upstream``.
        """
        run_row = {
            "id": run["id"],
            "pipeline": run["pipeline"],
            "run_id": run.get("run_id"),
            "status": PipelineStatus.RUNNING.value,
            "executor": run["executor"],
            "params": dict(run.get("params") or {}),
            "graph": list(run.get("graph") or []),
            "start_time": int(run["start_time"]),
            "end_time": None,
            "user": run["user"],
            "error": None,
        }
        step_rows = [
            {
                "id": s["id"],
                "pipeline_run_id": run_row["id"],
                "name": s["name"],
                "step": s["step"],
                "status": StepStatus.PENDING.value,
                "cache_key": None,
                "cache_hit": False,
                "cached_from": None,
                "attempts": 0,
                "params": dict(s.get("params") or {}),
                "inputs": {},
                "outputs": {},
                "upstream": list(s.get("upstream") or []),
                "start_time": None,
                "end_time": None,
                "error": None,
                "logs": None,
            }
            for s in steps
        ]
        with self._ctx.db.write() as conn:
            repo.create_run(conn, run_row, step_rows)
        return self.get(run_row["id"])

    def update_step(self, step_run_id: str, **fields: Any) -> None:
        """Change a step run's status, timings, cache facts, inputs, outputs, error, logs."""
        row = step_fields_to_row(fields)
        with self._ctx.db.write() as conn:
            repo.update_step(conn, step_run_id, row)

    def end_run(
        self, pipeline_run_id: str, status: PipelineStatus | str, error: str | None = None
    ) -> None:
        """Set a pipeline run's final status (and the end time)."""
        from ctloop._internal.ids import now_ms

        final = parse_status(PipelineStatus, status)
        if final is PipelineStatus.RUNNING:
            raise InvalidInput("end_run needs COMPLETED or FAILED, not RUNNING")
        fields = {"status": final.value, "end_time": now_ms(), "error": error}
        with self._ctx.db.write() as conn:
            repo.update_run(conn, pipeline_run_id, fields)

    # --- reading -----------------------------------------------------------------------------

    def get(self, pipeline_run_id: str) -> PipelineRun:
        """A pipeline run by id (or unique prefix), with its steps."""
        with self._ctx.db.read() as conn:
            return run_from_row(repo.get_run(conn, pipeline_run_id), self._owner)

    def list(
        self,
        pipeline: str | None = None,
        status: PipelineStatus | str | None = None,
        limit: int = 50,
    ) -> builtins.list[PipelineRun]:
        """Pipeline runs, newest first."""
        check_limit(limit)
        state = parse_status(PipelineStatus, status).value if status is not None else None
        with self._ctx.db.read() as conn:
            rows = repo.list_runs(conn, pipeline, state, limit)
        return [run_from_row(r, self._owner) for r in rows]

    def find_cached(self, cache_key: str) -> StepRun | None:
        """The newest completed step run with ``cache_key`` whose outputs are all still stored."""
        with self._ctx.db.read() as conn:
            rows = repo.find_cached(conn, cache_key)
        return first_intact([step_from_row(r) for r in rows], self.objects)

    def producers(self, digest: str) -> builtins.list[StepRun]:
        """Step runs that wrote (COMPLETED) or reused (CACHED) the artifact ``digest`` (or the
        one digest starting with a prefix of at least 8 hex characters), oldest first."""
        prefix = check_digest_prefix(digest)
        with self._ctx.db.read() as conn:
            rows = repo.steps_with_output(conn, prefix)
        return matching_outputs([step_from_row(r) for r in rows], prefix)


class ObjectChecker(Protocol):
    """What :func:`first_intact` needs of ``client.objects`` (either backend's)."""

    def missing(self, objects: Iterable[tuple[str, str]]) -> builtins.list[tuple[str, str]]: ...


def first_intact(candidates: Sequence[StepRun], objects: ObjectChecker) -> StepRun | None:
    """The first step run whose every output is still in the artifact store."""
    for cand in candidates:
        wanted = [(o.digest, o.kind) for o in cand.outputs.values()]
        if not wanted or not objects.missing(wanted):
            return cand
    return None


MIN_PREFIX = 8


def check_digest_prefix(digest: str) -> str:
    """A sha256 digest, or a prefix of one (lower-case hex, 8 to 64 characters)."""
    value = digest.strip().lower()
    if not (MIN_PREFIX <= len(value) <= 64) or any(c not in "0123456789abcdef" for c in value):
        raise InvalidInput(
            f"{digest!r} is not an artifact digest: give its sha256 (64 hex characters) or at "
            f"least the first {MIN_PREFIX}, as `ctloop pipeline show` prints them"
        )
    return value


def matching_outputs(steps: Sequence[StepRun], prefix: str) -> builtins.list[StepRun]:
    """The step runs with an output whose digest starts with ``prefix``; one digest only."""
    found = [s for s in steps if any(o.digest.startswith(prefix) for o in s.outputs.values())]
    digests = {o.digest for s in found for o in s.outputs.values() if o.digest.startswith(prefix)}
    if len(digests) > 1:
        raise InvalidInput(
            f"the digest prefix {prefix!r} names {len(digests)} artifacts; give more of it"
        )
    return found


def trace_artifact(api: Any, digest: str, depth: int = 64) -> ArtifactTrace:
    """The lineage of an artifact, through ``api.producers`` (either backend).

    An input is traced to the step the consumer waited for in the same pipeline run (the
    same bytes may have been written by several steps, e.g. a validation step passing its
    data through); an artifact asked for by digest, to the first step run that wrote it.
    """
    seen: dict[tuple[str, str], ArtifactTrace] = {}

    def walk(
        prefix: str, ref: ArtifactRef | None, consumer: StepRun | None, left: int
    ) -> ArtifactTrace:
        key = (prefix, consumer.id if consumer else "")
        if key in seen:
            return seen[key]
        steps = api.producers(prefix)
        writer = None
        if consumer is not None:
            writer = next(
                (
                    s
                    for s in steps
                    if s.pipeline_run_id == consumer.pipeline_run_id and s.name in consumer.upstream
                ),
                None,
            )
        if writer is None:
            writer = next((s for s in steps if s.status is StepStatus.COMPLETED), None)
        if writer is None:
            out = ArtifactTrace(digest=ref.digest if ref else prefix, ref=ref)
        else:
            name, written = next(
                (n, o) for n, o in writer.outputs.items() if o.digest.startswith(prefix)
            )
            inputs = (
                {arg: walk(r.digest, r, writer, left - 1) for arg, r in writer.inputs.items()}
                if left > 0
                else {}
            )
            out = ArtifactTrace(written.digest, written, writer, name, inputs)
        seen[key] = out
        return out

    prefix = check_digest_prefix(digest)
    result = walk(prefix, None, None, depth)
    if result.producer is None:
        from ctloop.errors import NotFound

        raise NotFound(
            f"no step run wrote an artifact {digest!r}; the digests of step outputs are in: "
            "ctloop pipeline show RUN_ID"
        )
    return result
