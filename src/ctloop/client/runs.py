"""``client.runs``: create, log to, read and search runs."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from ctloop._internal import environment as env
from ctloop._internal.ids import ms_to_datetime, new_id, now_ms
from ctloop._internal.names import check_name, check_relative_path
from ctloop.client._local import LocalContext
from ctloop.client._runs_shortcuts import RunsShortcuts
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.store import experiments as experiments_repo
from ctloop.store import runs as repo
from ctloop.store import runs_search
from ctloop.store.filters import parse_filter, parse_order_by
from ctloop.tracking import validation as check
from ctloop.tracking.entities import (
    Metric,
    RunArtifact,
    RunInput,
    RunPage,
    RunRecord,
    RunStatus,
)
from ctloop.tracking.naming import random_run_name

if TYPE_CHECKING:
    from ctloop.artifacts import StoredObject
    from ctloop.data.entities import DatasetVersion

MAX_PAGE = 10_000


def run_from_row(row: dict[str, Any]) -> RunRecord:
    start = ms_to_datetime(row["start_time"])
    assert start is not None
    return RunRecord(
        id=row["id"],
        experiment_id=row["experiment_id"],
        experiment=row["experiment"],
        name=row["name"],
        status=RunStatus(row["status"]),
        start_time=start,
        end_time=ms_to_datetime(row["end_time"]),
        user=row["user"],
        params=dict(row.get("params", {})),
        metrics=dict(row.get("metrics", {})),
        tags=dict(row.get("tags", {})),
        artifacts=[
            RunArtifact(a["path"], a["digest"], a["kind"], a["size"], a["file_count"])
            for a in row.get("artifacts", [])
        ],
        inputs=[
            RunInput(i["dataset"], i["version"], i["digest"], i["dataset_version_id"], i["context"])
            for i in row.get("inputs", [])
        ],
        source=dict(row.get("source") or {}),
        environment=dict(row.get("environment") or {}),
        error=row.get("error"),
    )


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["offset"])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput(
            f"invalid page_token {token!r}: pass back the next_page_token of a previous search"
        ) from None


class RunsAPI(RunsShortcuts):
    """Everything about runs. The tracking handle :class:`ctloop.Run` is built on this."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

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

        Records the code version (git commit, dirty flag, diff digest), Python, platform,
        key package versions and the user.

        Args:
            source: the code version to record instead of capturing this process's (the
                server passes what its HTTP client captured where the training code ran).
            environment: likewise for Python, platform and package versions.
            user: likewise for who started the run (default: this process's user).
        """
        check_name(experiment, "experiment")
        run_name = name if name is not None else random_run_name()
        if not isinstance(run_name, str) or not run_name.strip() or len(run_name) > 256:
            raise InvalidInput(f"invalid run name {run_name!r}: use 1-256 characters")
        clean_tags = {check.key(k, "tag"): check.tag_value(k, v) for k, v in (tags or {}).items()}
        if source is None:
            source = env.run_source(capture_code)
        run_id = new_id()
        row: dict[str, Any] = {
            "id": run_id,
            "name": run_name,
            "status": RunStatus.RUNNING.value,
            "start_time": now_ms(),
            "end_time": None,
            "user": user if user is not None else env.current_user(),
            "source": dict(source),
            "environment": dict(environment) if environment is not None else env.environment(),
            "error": None,
        }
        with self._ctx.db.write() as conn:
            row["experiment_id"] = experiments_repo.get_or_create(conn, experiment)["id"]
            repo.create(conn, row, clean_tags)
        return self.get(run_id)

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
        end_time = None if final is RunStatus.RUNNING else now_ms()
        with self._ctx.db.write() as conn:
            repo.set_status(conn, run_id, final.value, end_time, error)

    # --- reading ------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        """A run with its params, latest metrics, tags, artifacts and inputs."""
        with self._ctx.db.read() as conn:
            return run_from_row(repo.get(conn, run_id))

    def search(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,  # noqa: A002 - MLflow's name for it
        order_by: str | Sequence[str] | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """Runs matching an MLflow-style filter, e.g. ``metrics.auc > 0.8 and params.m = 'rf'``.

        Args:
            experiment: one experiment name (or id), several, or None for all.
            filter: clauses joined by ``and`` over ``metrics.``, ``params.``, ``tags.`` and
                attributes (``status``, ``run_name``, ``start_time``, ``end_time``, ``user``).
            order_by: e.g. ``["metrics.auc DESC", "start_time"]`` (default: newest first).
            limit: page size (1-10000).
            page_token: ``next_page_token`` of the previous page.

        Raises:
            InvalidInput: a malformed filter or order-by, naming the bad token.
            NotFound: an unknown experiment.
        """
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"invalid limit {limit!r}: use an integer from 1 to {MAX_PAGE}")
        clauses = parse_filter(filter)
        order = parse_order_by(order_by if isinstance(order_by, str | None) else list(order_by))
        offset = _decode_token(page_token)
        with self._ctx.db.read() as conn:
            ids: list[str] | None = None
            if experiment is not None:
                names = [experiment] if isinstance(experiment, str) else list(experiment)
                ids = [experiments_repo.get(conn, n)["id"] for n in names]
            rows, more = runs_search.search(conn, ids, clauses, order, limit, offset)
        token = _encode_token(offset + limit) if more else None
        return RunPage([run_from_row(r) for r in rows], token)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged point of one metric, in step order."""
        with self._ctx.db.read() as conn:
            points = repo.metric_history(conn, run_id, key)
            if not points:
                repo.get_row(conn, run_id)  # NotFound for an unknown run
                keys = repo.metric_keys(conn, run_id)
                raise NotFound(
                    f"run {run_id} has no metric {key!r}"
                    + (f" (it has: {', '.join(keys)})" if keys else " (it logged no metrics)")
                )
        out = []
        for value, step, ts in points:
            when = ms_to_datetime(ts)
            assert when is not None
            out.append(Metric(key, value, step, when))
        return out

    # --- logging ------------------------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record params; re-logging the same value is fine, another value is a Conflict."""
        clean = {check.key(k, "param"): check.param_value(k, v) for k, v in params.items()}
        with self._ctx.db.write() as conn:
            repo.log_params(conn, run_id, clean)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags (unlike params, tags may be changed)."""
        clean = {check.key(k, "tag"): check.tag_value(k, v) for k, v in tags.items()}
        with self._ctx.db.write() as conn:
            if not repo.exists(conn, run_id):
                repo.get_row(conn, run_id)
            repo.set_tags(conn, run_id, clean)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._ctx.db.write() as conn:
            repo.delete_tag(conn, run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, Any, Any, Any] | Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metric points ``(key, value, step, timestamp_ms)``, params and tags in one
        transaction."""
        points, clean_params, clean_tags = check.clean_batch(metrics, params, tags, now_ms())
        with self._ctx.db.write() as conn:
            if not repo.exists(conn, run_id):
                repo.get_row(conn, run_id)
            repo.log_params(conn, run_id, clean_params)
            repo.set_tags(conn, run_id, clean_tags)
            repo.log_metrics(conn, run_id, points)

    # --- artifacts and inputs -----------------------------------------------------------

    def log_artifact(
        self, run_id: str, path: str | os.PathLike[str], name: str | None = None
    ) -> RunArtifact:
        """Store a file or folder in the artifact store and record it on the run.

        ``name`` is the artifact's path within the run (default: the file's name); it must
        be relative, without ``..``.
        """
        src = Path(path)
        artifact_path = check_relative_path(name if name is not None else src.name)
        if not src.exists():
            raise NotFound(f"no such file or folder: {str(path)!r}")
        with self._ctx.db.read() as conn:
            repo.get_row(conn, run_id)
        return self._add_artifact(run_id, artifact_path, self._ctx.blobs.put(src))

    def record_artifact(self, run_id: str, path: str, digest: str, kind: str) -> RunArtifact:
        """Record an object already in the artifact store as the run's artifact ``path``.

        For data that reached the store another way (an upload to ``ctloop server``).
        Size and file count are read from the store, never taken from the caller.

        Raises:
            NotFound: no such run.
            InvalidInput: a bad path, digest or kind.
            Conflict: the artifact store holds no such object.
        """
        artifact_path = check_relative_path(path)
        if len(artifact_path) > 1024:
            raise InvalidInput(f"invalid artifact path {path[:80]!r}…: use at most 1024 characters")
        with self._ctx.db.read() as conn:
            repo.get_row(conn, run_id)
        try:
            stored = self._ctx.blobs.stat(digest, kind)
        except NotFound:
            raise Conflict(
                f"the artifact store holds no {kind} object {digest}; store or upload it "
                f"before recording it as artifact {artifact_path!r} of run {run_id}"
            ) from None
        return self._add_artifact(run_id, artifact_path, stored)

    def _add_artifact(self, run_id: str, artifact_path: str, stored: StoredObject) -> RunArtifact:
        row = {
            "run_id": run_id,
            "path": artifact_path,
            "digest": stored.digest,
            "kind": stored.kind,
            "size": stored.size,
            "file_count": stored.file_count,
            "created_at": now_ms(),
        }
        with self._ctx.db.write() as conn:
            repo.add_artifact(conn, row)
        return RunArtifact(
            artifact_path, stored.digest, stored.kind, stored.size, stored.file_count
        )

    def download_artifact(self, run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
        """Write a run's artifact to ``dest`` (verified against its digest)."""
        artifact_path = check_relative_path(name)
        with self._ctx.db.read() as conn:
            row = repo.get_artifact(conn, run_id, artifact_path)
        return self._ctx.blobs.get(row["digest"], dest, kind=row["kind"])

    def log_input(
        self,
        run_id: str,
        dataset: DatasetVersion | str,
        context: str | None = "training",
    ) -> RunInput:
        """Record that the run consumed a dataset version (``DatasetVersion`` or ``NAME@V``)."""
        if isinstance(dataset, str):
            from ctloop.client.datasets import DatasetsAPI

            version = DatasetsAPI(self._ctx).get(dataset)
        else:
            version = dataset
        row = {
            "run_id": run_id,
            "dataset_version_id": version.id,
            "context": context,
            "created_at": now_ms(),
        }
        try:
            with self._ctx.db.write() as conn:
                repo.get_row(conn, run_id)
                repo.add_inputs(conn, [row])
        except SQLIntegrityError:
            raise NotFound(
                f"dataset version {version.ref} is not in this store; add it with: "
                "ctloop data add PATH --name NAME"
            ) from None
        return RunInput(version.name, version.version, version.digest, version.id, context)
