"""Runs and what they log: params, tags, metrics, artifacts, dataset inputs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update

from ctloop.errors import Conflict, NotFound
from ctloop.store._sql import chunks, upsert
from ctloop.store.tables import (
    dataset_versions,
    datasets,
    experiments,
    latest_metrics,
    metrics,
    params,
    run_artifacts,
    run_inputs,
    runs,
    tags,
)

# (key, value, step, timestamp_ms)
MetricPoint = tuple[str, float, int, int]


def create(conn: Connection, row: dict[str, Any], run_tags: dict[str, str]) -> None:
    """Insert a run (``row`` holds every column of ``runs``) and its first tags."""
    conn.execute(runs.insert().values(**row))
    if run_tags:
        set_tags(conn, row["id"], run_tags)


def _not_found(run_id: str) -> NotFound:
    return NotFound(f"no run with id {run_id!r}; list runs with: ctloop runs list")


def get_row(conn: Connection, run_id: str) -> dict[str, Any]:
    """The run's own columns plus its experiment's name."""
    stmt = (
        select(runs, experiments.c.name.label("experiment"))
        .select_from(runs.join(experiments, experiments.c.id == runs.c.experiment_id))
        .where(runs.c.id == run_id)
    )
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise _not_found(run_id)
    return dict(row)


def hydrate(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attach params, tags, latest metrics, artifacts and inputs to run rows (5 queries)."""
    by_id = {
        r["id"]: {**r, "params": {}, "tags": {}, "metrics": {}, "artifacts": [], "inputs": []}
        for r in rows
    }
    ids = list(by_id)
    for part in chunks(ids):
        for r in conn.execute(select(params).where(params.c.run_id.in_(part))).mappings():
            by_id[r["run_id"]]["params"][r["key"]] = r["value"]
        for r in conn.execute(select(tags).where(tags.c.run_id.in_(part))).mappings():
            by_id[r["run_id"]]["tags"][r["key"]] = r["value"]
        stmt = select(latest_metrics).where(latest_metrics.c.run_id.in_(part))
        for r in conn.execute(stmt).mappings():
            by_id[r["run_id"]]["metrics"][r["key"]] = _value(r)
        stmt = (
            select(run_artifacts)
            .where(run_artifacts.c.run_id.in_(part))
            .order_by(run_artifacts.c.path)
        )
        for r in conn.execute(stmt).mappings():
            by_id[r["run_id"]]["artifacts"].append(dict(r))
        stmt = (
            select(
                run_inputs.c.run_id,
                run_inputs.c.context,
                run_inputs.c.dataset_version_id,
                dataset_versions.c.version,
                dataset_versions.c.digest,
                datasets.c.name.label("dataset"),
            )
            .select_from(
                run_inputs.join(
                    dataset_versions, dataset_versions.c.id == run_inputs.c.dataset_version_id
                ).join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            )
            .where(run_inputs.c.run_id.in_(part))
            .order_by(run_inputs.c.created_at)
        )
        for r in conn.execute(stmt).mappings():
            by_id[r["run_id"]]["inputs"].append(dict(r))
    return [by_id[r["id"]] for r in rows]


def get(conn: Connection, run_id: str) -> dict[str, Any]:
    """A run with everything it logged."""
    return hydrate(conn, [get_row(conn, run_id)])[0]


def set_status(
    conn: Connection, run_id: str, status: str, end_time: int | None, error: str | None
) -> None:
    values: dict[str, Any] = {"status": status, "end_time": end_time}
    if error is not None:
        values["error"] = error
    result = conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
    if result.rowcount == 0:
        raise _not_found(run_id)


def exists(conn: Connection, run_id: str) -> bool:
    return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def log_params(conn: Connection, run_id: str, values: dict[str, str]) -> None:
    """Record params; the same value again is fine, a different one is a :class:`Conflict`."""
    if not values:
        return
    if not exists(conn, run_id):
        raise _not_found(run_id)
    keys = list(values)
    existing: dict[str, str] = {}
    for part in chunks(keys):
        stmt = select(params.c.key, params.c.value).where(
            params.c.run_id == run_id, params.c.key.in_(part)
        )
        existing.update({k: v for k, v in conn.execute(stmt)})
    for key, old in existing.items():
        if old != values[key]:
            raise Conflict(
                f"param {key!r} of run {run_id} is already {old!r} and cannot be changed to "
                f"{values[key]!r}; params are immutable: log a new run or use another key"
            )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in values.items() if k not in existing]
    if new:
        conn.execute(params.insert(), new)


def set_tags(conn: Connection, run_id: str, values: dict[str, str]) -> None:
    """Set tags (they may change, unlike params)."""
    if not values:
        return
    stmt = upsert(conn, tags)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
    )
    conn.execute(stmt, [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()])


def delete_tag(conn: Connection, run_id: str, key: str) -> None:
    result = conn.execute(delete(tags).where(tags.c.run_id == run_id, tags.c.key == key))
    if result.rowcount == 0:
        raise NotFound(f"run {run_id} has no tag {key!r}")


def _value(row: Any) -> float:
    return math.nan if row["is_nan"] else float(row["value"])


def log_metrics(conn: Connection, run_id: str, points: Sequence[MetricPoint]) -> None:
    """Append metric points and keep ``latest_metrics`` at each key's last (step, time)."""
    if not points:
        return
    rows = []
    latest: dict[str, MetricPoint] = {}
    for key, value, step, ts in points:
        nan = math.isnan(value)
        rows.append(
            {
                "run_id": run_id,
                "key": key,
                "value": None if nan else value,
                "is_nan": nan,
                "step": step,
                "timestamp": ts,
            }
        )
        best = latest.get(key)
        if best is None or (step, ts) >= (best[2], best[3]):
            latest[key] = (key, value, step, ts)
    conn.execute(metrics.insert(), rows)
    stmt = upsert(conn, latest_metrics)
    ex = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"value": ex.value, "is_nan": ex.is_nan, "step": ex.step, "timestamp": ex.timestamp},
        where=or_(
            ex.step > latest_metrics.c.step,
            and_(ex.step == latest_metrics.c.step, ex.timestamp >= latest_metrics.c.timestamp),
        ),
    )
    conn.execute(
        stmt,
        [
            {
                "run_id": run_id,
                "key": k,
                "value": None if math.isnan(v) else v,
                "is_nan": math.isnan(v),
                "step": s,
                "timestamp": t,
            }
            for k, v, s, t in latest.values()
        ],
    )


def metric_history(conn: Connection, run_id: str, key: str) -> list[tuple[float, int, int]]:
    """Every point of one metric as (value, step, timestamp), in step then time order."""
    stmt = (
        select(metrics.c.value, metrics.c.is_nan, metrics.c.step, metrics.c.timestamp)
        .where(metrics.c.run_id == run_id, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
    )
    return [(_value(r), r["step"], r["timestamp"]) for r in conn.execute(stmt).mappings()]


def metric_keys(conn: Connection, run_id: str) -> list[str]:
    stmt = select(latest_metrics.c.key).where(latest_metrics.c.run_id == run_id)
    return sorted(k for (k,) in conn.execute(stmt))


def add_artifact(conn: Connection, row: dict[str, Any]) -> None:
    """Record a logged artifact; logging the same path again replaces it (as MLflow does)."""
    stmt = upsert(conn, run_artifacts)
    ex = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "path"],
        set_={
            "digest": ex.digest,
            "kind": ex.kind,
            "size": ex.size,
            "file_count": ex.file_count,
            "created_at": ex.created_at,
        },
    )
    conn.execute(stmt, [row])


def get_artifact(conn: Connection, run_id: str, path: str) -> dict[str, Any]:
    stmt = select(run_artifacts).where(
        run_artifacts.c.run_id == run_id, run_artifacts.c.path == path
    )
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(
            f"run {run_id} has no artifact {path!r}; see its artifacts with: "
            f"ctloop runs show {run_id}"
        )
    return dict(row)


def add_inputs(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Link dataset versions to a run (idempotent)."""
    items = list(rows)
    if not items:
        return
    stmt = upsert(conn, run_inputs).on_conflict_do_nothing(
        index_elements=["run_id", "dataset_version_id"]
    )
    conn.execute(stmt, items)
