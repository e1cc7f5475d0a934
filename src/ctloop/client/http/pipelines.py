"""``client.pipelines`` over HTTP: the same methods, checks and errors as the local backend.

Statuses, limits and step fields are checked here with the local API's own checks, so bad
input fails before any request with the same message; the server checks again.

The wire form of a pipeline run (:func:`run_to_wire`, also what ``ctloop pipeline … --json``
prints) is its fields as JSON, timestamps as ISO 8601 strings like every other resource of
the REST API; :func:`run_from_wire` reads it back. Requests carry timestamps as
milliseconds since the epoch, as the local API takes them.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctloop._internal.wire import to_wire
from ctloop.client._http import HttpContext
from ctloop.client.http.runs import segment
from ctloop.client.pipelines import (
    PipelineArtifacts,
    check_digest_prefix,
    check_limit,
    first_intact,
    matching_outputs,
    parse_status,
    run_from_row,
    step_fields_to_row,
    step_from_row,
)
from ctloop.errors import InvalidInput, NotFound
from ctloop.pipelines.entities import (
    PipelineRun,
    PipelineStatus,
    StepRun,
)

if TYPE_CHECKING:
    from ctloop.client.http.objects import HttpObjectsAPI

__all__ = ["HttpPipelinesAPI", "run_from_wire", "run_to_wire", "step_from_wire", "step_to_wire"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(value: Any) -> int | None:
    """A wire timestamp (ISO 8601 string, or milliseconds) as milliseconds since the epoch."""
    if value is None or isinstance(value, int):
        return value
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS  # exact: no float on the way


def step_to_wire(step: StepRun) -> dict[str, Any]:
    """A step run as JSON-ready data (timestamps ISO 8601)."""
    out: dict[str, Any] = to_wire(step)
    return out


def run_to_wire(run: PipelineRun) -> dict[str, Any]:
    """A pipeline run with its steps as JSON-ready data (without the client it is bound to)."""
    return {
        f.name: to_wire(getattr(run, f.name)) for f in dataclasses.fields(run) if f.name != "client"
    }


def _timed(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` with its start and end times in milliseconds, as rows hold them."""
    return {**raw, "start_time": _ms(raw.get("start_time")), "end_time": _ms(raw.get("end_time"))}


def step_from_wire(raw: Mapping[str, Any]) -> StepRun:
    """A step run from its wire form."""
    return step_from_row(_timed(raw))


def run_from_wire(raw: Mapping[str, Any], client: Any = None) -> PipelineRun:
    """A pipeline run (with its steps) from its wire form, bound to ``client``."""
    row = {**_timed(raw), "steps": [_timed(s) for s in raw.get("steps") or []]}
    return run_from_row(row, client)


def _no_run(pipeline_run_id: str) -> NotFound:
    return NotFound(f"no pipeline run {pipeline_run_id!r}; list them with: ctloop pipeline runs")


class HttpPipelinesAPI(PipelineArtifacts):
    """Pipeline runs and step runs of a ctloop server (see
    :class:`ctloop.client.pipelines.PipelinesAPI`)."""

    def __init__(self, ctx: HttpContext, objects: HttpObjectsAPI | None = None) -> None:
        self._ctx = ctx
        self._objects = objects

    @property
    def objects(self) -> HttpObjectsAPI:
        if self._objects is None:
            from ctloop.client.http.objects import HttpObjectsAPI

            self._objects = HttpObjectsAPI(self._ctx)
        return self._objects

    # --- writing (what the pipeline runner calls) ----------------------------------------

    def create_run(self, run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> PipelineRun:
        """Record a new pipeline run and its planned steps (all PENDING).

        See :meth:`ctloop.client.pipelines.PipelinesAPI.create_run`.
        """
        body = {
            "id": run["id"],
            "pipeline": run["pipeline"],
            "run_id": run.get("run_id"),
            "executor": run["executor"],
            "params": to_wire(dict(run.get("params") or {})),
            "graph": to_wire(list(run.get("graph") or [])),
            "start_time": int(run["start_time"]),
            "user": run["user"],
            "steps": [
                {
                    "id": s["id"],
                    "name": s["name"],
                    "step": s["step"],
                    "params": to_wire(dict(s.get("params") or {})),
                    "upstream": list(s.get("upstream") or []),
                }
                for s in steps
            ],
        }
        answer = self._ctx.request("POST", "/pipeline-runs", json=body)
        return run_from_wire(answer, self._owner)

    def update_step(self, step_run_id: str, **fields: Any) -> None:
        """Change a step run's status, timings, cache facts, inputs, outputs, error, logs."""
        row = step_fields_to_row(fields)
        if not step_run_id:
            raise NotFound(f"no step run {step_run_id!r}")
        self._ctx.request("PATCH", f"/step-runs/{segment(step_run_id)}", json=to_wire(row))

    def end_run(
        self, pipeline_run_id: str, status: PipelineStatus | str, error: str | None = None
    ) -> None:
        """Set a pipeline run's final status (and the end time, the server's clock)."""
        final = parse_status(PipelineStatus, status)
        if final is PipelineStatus.RUNNING:
            raise InvalidInput("end_run needs COMPLETED or FAILED, not RUNNING")
        if not pipeline_run_id:
            raise _no_run(pipeline_run_id)
        body = {"status": final.value, "error": error}
        self._ctx.request("POST", f"/pipeline-runs/{segment(pipeline_run_id)}/end", json=body)

    # --- reading -----------------------------------------------------------------------------

    def get(self, pipeline_run_id: str) -> PipelineRun:
        """A pipeline run by id (or unique prefix), with its steps."""
        if not pipeline_run_id:
            raise _no_run(pipeline_run_id)
        answer = self._ctx.request("GET", f"/pipeline-runs/{segment(pipeline_run_id)}")
        return run_from_wire(answer, self._owner)

    def list(
        self,
        pipeline: str | None = None,
        status: PipelineStatus | str | None = None,
        limit: int = 50,
    ) -> builtins.list[PipelineRun]:
        """Pipeline runs, newest first."""
        params: dict[str, Any] = {"limit": check_limit(limit)}
        if pipeline is not None:
            params["pipeline"] = pipeline
        if status is not None:
            params["status"] = parse_status(PipelineStatus, status).value
        answer = self._ctx.request("GET", "/pipeline-runs", params=params)
        return [run_from_wire(r, self._owner) for r in answer]

    def find_cached(self, cache_key: str) -> StepRun | None:
        """The newest completed step run with ``cache_key`` whose outputs are all still stored."""
        answer = self._ctx.request("GET", "/step-runs", params={"cache_key": cache_key})
        # The server answers only intact candidates; checking again here costs one request
        # and keeps the rule in one place (first_intact), as on the local backend.
        return first_intact([step_from_wire(s) for s in answer], self.objects)

    def producers(self, digest: str) -> builtins.list[StepRun]:
        """See :meth:`ctloop.client.pipelines.PipelinesAPI.producers`."""
        prefix = check_digest_prefix(digest)
        rows = self._ctx.request("GET", "/step-runs", params={"output": prefix})
        return matching_outputs([step_from_wire(r) for r in rows], prefix)
