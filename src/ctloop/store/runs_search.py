"""Run search: filter clauses and order keys (see ``store.filters``) as SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, not_, select
from sqlalchemy.sql import Select

from ctloop.store.filters import Clause, OrderKey
from ctloop.store.runs import hydrate
from ctloop.store.tables import experiments, latest_metrics, params, runs, tags


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return column.ilike(value)
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return not_(column.in_(list(value)))
    raise AssertionError(op)  # the parser admits no other operator


def _condition(clause: Clause) -> ColumnElement[bool]:
    if clause.entity == "metric":
        return exists().where(
            latest_metrics.c.run_id == runs.c.id,
            latest_metrics.c.key == clause.key,
            latest_metrics.c.is_nan.is_(False),
            _compare(latest_metrics.c.value, clause.op, clause.value),
        )
    if clause.entity in ("param", "tag"):
        table = params if clause.entity == "param" else tags
        return exists().where(
            table.c.run_id == runs.c.id,
            table.c.key == clause.key,
            _compare(table.c.value, clause.op, clause.value),
        )
    return _compare(runs.c[clause.key], clause.op, clause.value)


def search(
    conn: Connection,
    experiment_ids: list[str] | None,
    clauses: list[Clause],
    order: list[OrderKey],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of matching runs (hydrated) and whether more pages follow."""
    stmt: Select[Any] = select(runs, experiments.c.name.label("experiment")).select_from(
        runs.join(experiments, experiments.c.id == runs.c.experiment_id)
    )
    if experiment_ids is not None:
        stmt = stmt.where(runs.c.experiment_id.in_(experiment_ids))
    if clauses:
        stmt = stmt.where(and_(*(_condition(c) for c in clauses)))
    ordering: list[Any] = []
    for i, key in enumerate(order):
        if key.entity == "attribute":
            col: Any = runs.c[key.key]
        elif key.entity == "metric":
            lm = latest_metrics.alias(f"order_m{i}")
            stmt = stmt.outerjoin(lm, and_(lm.c.run_id == runs.c.id, lm.c.key == key.key))
            col = lm.c.value
        else:
            table = (params if key.entity == "param" else tags).alias(f"order_t{i}")
            stmt = stmt.outerjoin(table, and_(table.c.run_id == runs.c.id, table.c.key == key.key))
            col = table.c.value
        # missing values sort last in both directions, on SQLite and PostgreSQL alike
        ordering.append(col.is_(None))
        ordering.append(col.asc() if key.ascending else col.desc())
    if not any(k.entity == "attribute" and k.key == "start_time" for k in order):
        ordering.append(runs.c.start_time.desc())
    ordering.append(runs.c.id)
    stmt = stmt.order_by(*ordering).limit(limit + 1).offset(offset)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    more = len(rows) > limit
    return hydrate(conn, rows[:limit]), more
