"""Pipeline runs and their step runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.store.tables import pipeline_runs, runs, step_runs

# Columns of a step run a caller may change (everything but identity and plan).
STEP_FIELDS = frozenset(
    {
        "status",
        "cache_key",
        "cache_hit",
        "cached_from",
        "attempts",
        "inputs",
        "outputs",
        "start_time",
        "end_time",
        "error",
        "logs",
    }
)
RUN_FIELDS = frozenset({"status", "end_time", "error", "run_id"})


def create_run(
    conn: Connection, run: Mapping[str, Any], steps: Iterable[Mapping[str, Any]]
) -> None:
    """Insert a pipeline run and its planned (PENDING) step runs.

    Raises:
        Conflict: the pipeline run id, or a step run id, is taken.
        InvalidInput: two steps share a name or an id.
        NotFound: ``run["run_id"]`` names no tracking run.
    """
    rows = [dict(s) for s in steps]
    for field in ("name", "id"):
        seen: set[str] = set()
        for r in rows:
            if r[field] in seen:
                raise InvalidInput(
                    f"two steps of pipeline run {run['id']!r} have the {field} {r[field]!r}; "
                    f"step {field}s must be unique within a run"
                )
            seen.add(r[field])
    found = conn.execute(select(pipeline_runs.c.id).where(pipeline_runs.c.id == run["id"]))
    if found.first() is not None:
        raise Conflict(f"pipeline run {run['id']!r} already exists; give the new run a new id")
    if rows:
        taken = conn.execute(
            select(step_runs.c.id).where(step_runs.c.id.in_([r["id"] for r in rows])).limit(1)
        ).scalar()
        if taken is not None:
            raise Conflict(f"step run {taken!r} already exists; give the new step a new id")
    if run.get("run_id") is not None:
        tracked = conn.execute(select(runs.c.id).where(runs.c.id == run["run_id"])).first()
        if tracked is None:
            raise NotFound(
                f"no run with id {run['run_id']!r} to track pipeline run {run['id']!r}; "
                "list runs with: ctloop runs list"
            )
    try:
        conn.execute(pipeline_runs.insert().values(**run))
        if rows:
            conn.execute(step_runs.insert(), rows)
    except SqlIntegrityError as exc:  # a concurrent insert of the same ids won the race
        raise Conflict(
            f"pipeline run {run['id']!r} or one of its step runs already exists; give the "
            "new run new ids"
        ) from exc


def update_run(conn: Connection, run_id: str, fields: Mapping[str, Any]) -> None:
    bad = set(fields) - RUN_FIELDS
    if bad:
        raise InvalidInput(f"cannot change {sorted(bad)} of a pipeline run")
    done = conn.execute(update(pipeline_runs).where(pipeline_runs.c.id == run_id).values(**fields))
    if done.rowcount == 0:
        raise NotFound(_no_run(run_id))


def update_step(conn: Connection, step_run_id: str, fields: Mapping[str, Any]) -> None:
    bad = set(fields) - STEP_FIELDS
    if bad:
        raise InvalidInput(f"cannot change {sorted(bad)} of a step run")
    if not fields:  # nothing to change; an UPDATE without SET is not SQL
        found = conn.execute(select(step_runs.c.id).where(step_runs.c.id == step_run_id))
        if found.first() is None:
            raise NotFound(f"no step run {step_run_id!r}")
        return
    done = conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(**fields))
    if done.rowcount == 0:
        raise NotFound(f"no step run {step_run_id!r}")


def _no_run(run_id: str) -> str:
    return f"no pipeline run {run_id!r}; list them with: ctloop pipeline runs"


def get_run(conn: Connection, run_id: str) -> dict[str, Any]:
    """A pipeline run by id (or a unique prefix of at least 6 characters) with its steps."""
    row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_id)).mappings().first()
    if row is None and 6 <= len(run_id) < 32 and run_id.isalnum():
        found = (
            conn.execute(
                select(pipeline_runs).where(pipeline_runs.c.id.startswith(run_id)).limit(2)
            )
            .mappings()
            .all()
        )
        if len(found) > 1:
            raise InvalidInput(f"pipeline run id prefix {run_id!r} is ambiguous; give more of it")
        row = found[0] if found else None
    if row is None:
        raise NotFound(_no_run(run_id))
    out = dict(row)
    out["steps"] = steps_of(conn, [out["id"]]).get(out["id"], [])
    return out


def steps_of(conn: Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The step runs of each pipeline run, in plan order."""
    out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in run_ids}
    if not run_ids:
        return out
    stmt = select(step_runs).where(step_runs.c.pipeline_run_id.in_(run_ids))
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for r in rows:
        out[r["pipeline_run_id"]].append(r)
    graphs = conn.execute(
        select(pipeline_runs.c.id, pipeline_runs.c.graph).where(pipeline_runs.c.id.in_(run_ids))
    ).all()
    for rid, graph in graphs:
        order = _plan_order(graph)

        def position(step: dict[str, Any], order: dict[str, int] = order) -> tuple[int, str]:
            return order.get(step["name"], len(order)), step["name"]

        out[rid].sort(key=position)
    return out


def _plan_order(graph: Any) -> dict[str, int]:
    """Each step name's position in a stored graph (nodes without a name are skipped)."""
    order: dict[str, int] = {}
    for i, node in enumerate(graph if isinstance(graph, list) else []):
        name = node.get("name") if isinstance(node, dict) else None
        if isinstance(name, str):
            order.setdefault(name, i)
    return order


def list_runs(
    conn: Connection, pipeline: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Pipeline runs, newest first, each with its steps."""
    stmt = select(pipeline_runs).order_by(
        pipeline_runs.c.start_time.desc(), pipeline_runs.c.id.desc()
    )
    if pipeline is not None:
        stmt = stmt.where(pipeline_runs.c.pipeline == pipeline)
    if status is not None:
        stmt = stmt.where(pipeline_runs.c.status == status)
    rows = [dict(r) for r in conn.execute(stmt.limit(limit)).mappings()]
    steps = steps_of(conn, [r["id"] for r in rows])
    for r in rows:
        r["steps"] = steps[r["id"]]
    return rows


def find_cached(conn: Connection, cache_key: str, limit: int = 5) -> list[dict[str, Any]]:
    """The newest completed step runs with ``cache_key`` (a cache hit reuses their outputs)."""
    stmt = (
        select(step_runs)
        .where(step_runs.c.cache_key == cache_key, step_runs.c.status == "COMPLETED")
        .order_by(step_runs.c.end_time.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def steps_with_output(
    conn: Connection, digest_prefix: str, limit: int = 200
) -> list[dict[str, Any]]:
    """Completed and cached step runs whose outputs name a digest starting with the prefix,
    oldest first (a text search of the outputs; callers check the match)."""
    from sqlalchemy import String, cast

    stmt = (
        select(step_runs)
        .where(
            step_runs.c.status.in_(("COMPLETED", "CACHED")),
            cast(step_runs.c.outputs, String).contains(digest_prefix),
        )
        .order_by(step_runs.c.end_time, step_runs.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]
