"""``client.runs`` over HTTP: the same methods, checks and errors as the local backend.

Values are checked here with the local API's own checks, so bad keys and values fail
before any request, with the same messages; the server checks them again. What the run
records about where it ran (code version, Python, packages) is captured in this process,
where the training code runs, and sent along when the run is created.

Metric batches larger than the server takes in one request (:data:`MAX_BATCH_METRICS`
points, ``CTLOOP_SERVER_MAX_BODY_BYTES``) are sent as several requests of at most about
1 MiB, params and tags first; each request is one transaction on the server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import TypeAdapter

from ctloop._internal import environment as env
from ctloop._internal.ids import now_ms
from ctloop._internal.names import check_name, check_relative_path
from ctloop._internal.wire import to_wire
from ctloop.client._http import HttpContext
from ctloop.client._runs_shortcuts import RunsShortcuts
from ctloop.errors import InvalidInput, NotFound
from ctloop.tracking import validation as check
from ctloop.tracking.entities import (
    Metric,
    RunArtifact,
    RunInput,
    RunPage,
    RunRecord,
    RunStatus,
)

if TYPE_CHECKING:
    from ctloop.data.entities import DatasetVersion

MAX_BATCH_METRICS = 10_000  # points per request (``ctloop.server.routers.runs`` enforces it)
MAX_PAGE = 10_000

# Batches are cut well below any sensible body limit (the server's default is 16 MiB):
# the size of each part is estimated, not measured, and 1 MiB is thousands of points.
_PART_BYTES = 1 << 20
_POINT_OVERHEAD = 80  # brackets, quotes, commas, value, step and timestamp of one point

_record = TypeAdapter(RunRecord)
_page = TypeAdapter(RunPage)
_history = TypeAdapter(list[Metric])
_artifact = TypeAdapter(RunArtifact)
_input = TypeAdapter(RunInput)


def segment(value: str) -> str:
    """``value`` as one URL path segment (the server reads keys and paths with ``:path``).

    Everything but letters, digits, ``-``, ``_`` and ``~`` is percent-encoded, ``.`` too:
    httpx would otherwise drop ``.`` segments of a key like ``a/./b``.
    """
    return quote(value, safe="").replace(".", "%2E")


def _batch_parts(
    points: list[list[Any]], params: dict[str, str], tags: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """Request bodies of at most MAX_BATCH_METRICS points and about _PART_BYTES each.

    Params and tags go first, so a param conflict fails before any point is written; an
    empty batch is still one request (it checks that the run exists, as locally).
    """
    body: dict[str, Any] = {"metrics": [], "params": {}, "tags": {}}
    size = 0
    for field, values in (("params", params), ("tags", tags)):
        for k, v in values.items():
            n = len(k) + len(json.dumps(v)) + 8
            if size + n > _PART_BYTES:
                yield body
                body, size = {"metrics": [], "params": {}, "tags": {}}, 0
            body[field][k] = v
            size += n
    for point in points:
        n = len(point[0]) + _POINT_OVERHEAD
        if size + n > _PART_BYTES or len(body["metrics"]) >= MAX_BATCH_METRICS:
            yield body
            body, size = {"metrics": [], "params": {}, "tags": {}}, 0
        body["metrics"].append(point)
        size += n
    yield body


def _artifact_path(path: str) -> str:
    """A checked artifact path (as ``RunsAPI.record_artifact`` checks it, before uploading)."""
    artifact_path = check_relative_path(path)
    if len(artifact_path) > 1024:
        raise InvalidInput(f"invalid artifact path {path[:80]!r}…: use at most 1024 characters")
    return artifact_path


class HttpRunsAPI(RunsShortcuts):
    """Everything about runs, on a ctloop server (see :class:`ctloop.client.runs.RunsAPI`)."""

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    def _path(self, run_id: str, *rest: str) -> str:
        return "/".join(["/runs", segment(run_id), *rest])

    # --- life cycle ---------------------------------------------------------------------

    def create(
        self,
        experiment: str = "default",
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        capture_code: bool = True,
        source: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
        user: str | None = None,
    ) -> RunRecord:
        """Start a RUNNING run in ``experiment`` (created if missing).

        The code version, environment and user recorded are this process's, not the
        server's.
        """
        check_name(experiment, "experiment")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 256):
            raise InvalidInput(f"invalid run name {name!r}: use 1-256 characters")
        clean_tags = {check.key(k, "tag"): check.tag_value(k, v) for k, v in (tags or {}).items()}
        if source is None:
            source = env.run_source(capture_code)
        body = {
            "experiment": experiment,
            "name": name,
            "tags": clean_tags,
            "source": to_wire(dict(source)),
            "environment": to_wire(
                dict(environment) if environment is not None else env.environment()
            ),
            "user": user if user is not None else env.current_user(),
        }
        return _record.validate_python(self._ctx.request("POST", "/runs", json=body))

    def end(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, error: str | None = None
    ) -> None:
        """Mark a run FINISHED, FAILED or KILLED (with the error text for a failure)."""
        try:
            final = RunStatus(str(status).upper())
        except ValueError:
            raise InvalidInput(
                f"invalid run status {status!r}: use one of "
                + ", ".join(s.value for s in RunStatus)
            ) from None
        body = {"status": final.value, "error": error}
        self._ctx.request("POST", self._path(run_id, "end"), json=body)

    # --- reading ------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        """A run with its params, latest metrics, tags, artifacts and inputs."""
        return _record.validate_python(self._ctx.request("GET", self._path(run_id)))

    def search(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,  # noqa: A002 - MLflow's name for it
        order_by: str | Sequence[str] | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """Runs matching an MLflow-style filter (parsed by the server; see the local API)."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"invalid limit {limit!r}: use an integer from 1 to {MAX_PAGE}")
        body = {
            "experiments": (
                None
                if experiment is None
                else [experiment]
                if isinstance(experiment, str)
                else list(experiment)
            ),
            "filter": filter,
            "order_by": order_by if isinstance(order_by, str | None) else list(order_by),
            "limit": limit,
            "page_token": page_token,
        }
        return _page.validate_python(self._ctx.request("POST", "/runs/search", json=body))

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged point of one metric, in step order."""
        path = self._path(run_id, "metrics", segment(key))
        return _history.validate_python(self._ctx.request("GET", path))

    # --- logging ------------------------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record params; re-logging the same value is fine, another value is a Conflict."""
        clean = {check.key(k, "param"): check.param_value(k, v) for k, v in params.items()}
        if clean:  # locally, logging no params touches nothing (not even the run)
            self.log_batch(run_id, params=clean)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        k = check.key(key, "tag")
        body = {"value": check.tag_value(k, value)}
        self._ctx.request("PUT", self._path(run_id, "tags", segment(k)), json=body)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags (unlike params, tags may be changed)."""
        self.log_batch(run_id, tags=tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._ctx.request("DELETE", self._path(run_id, "tags", segment(key)))

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, Any, Any, Any] | Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metric points ``(key, value, step, timestamp_ms)``, params and tags.

        One request is one transaction; a batch over the server's per-request limits is
        sent as several requests, params and tags first.
        """
        clean, clean_params, clean_tags = check.clean_batch(metrics, params, tags, now_ms())
        points = [[k, to_wire(v), step, ts] for k, v, step, ts in clean]
        path = self._path(run_id, "batch")
        for body in _batch_parts(points, clean_params, clean_tags):
            self._ctx.request("POST", path, json=body)

    # --- artifacts and inputs -----------------------------------------------------------

    def log_artifact(
        self, run_id: str, path: str | os.PathLike[str], name: str | None = None
    ) -> RunArtifact:
        """Upload a file or folder to the server's artifact store and record it on the run.

        ``name`` is the artifact's path within the run (default: the file's name); it must
        be relative, without ``..``.
        """
        src = Path(path)
        artifact_path = _artifact_path(name if name is not None else src.name)
        if not src.exists():
            raise NotFound(f"no such file or folder: {str(path)!r}")
        self.get(run_id)  # an unknown run fails before anything is uploaded, as locally
        from ctloop.client import _transfer

        uploaded = _transfer.upload(self._ctx, src)
        return self.record_artifact(run_id, artifact_path, uploaded.digest, uploaded.kind)

    def record_artifact(self, run_id: str, path: str, digest: str, kind: str) -> RunArtifact:
        """Record an object already in the server's artifact store as the artifact ``path``.

        Raises:
            NotFound: no such run.
            InvalidInput: a bad path, digest or kind.
            Conflict: the server's artifact store holds no such object.
        """
        body = {"path": _artifact_path(path), "digest": digest, "kind": kind}
        return _artifact.validate_python(
            self._ctx.request("POST", self._path(run_id, "artifacts"), json=body)
        )

    def download_artifact(self, run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
        """Write a run's artifact to ``dest`` (verified against its digest)."""
        artifact_path = check_relative_path(name)
        found = _artifact.validate_python(
            self._ctx.request("GET", self._path(run_id, "artifacts", segment(artifact_path)))
        )
        from ctloop.client import _transfer

        return _transfer.download(self._ctx, found.digest, found.kind, dest)

    def log_input(
        self,
        run_id: str,
        dataset: DatasetVersion | str,
        context: str | None = "training",
    ) -> RunInput:
        """Record that the run consumed a dataset version (``DatasetVersion`` or ``NAME@V``).

        A ``DatasetVersion`` is sent by id (and ref, for the message when the server's
        store does not hold it); a ``NAME@V`` reference is resolved by the server.
        """
        if isinstance(dataset, str):
            from ctloop.data.refs import parse_ref

            parse_ref(dataset)  # malformed references fail here, with the local message
            body: dict[str, Any] = {"dataset": dataset, "context": context}
        else:
            body = {"dataset": dataset.ref, "dataset_version_id": dataset.id, "context": context}
        return _input.validate_python(
            self._ctx.request("POST", self._path(run_id, "inputs"), json=body)
        )
