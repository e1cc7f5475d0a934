"""Alembic environment: always run online on the connection ctloop hands over."""

from __future__ import annotations

from alembic import context

from ctloop.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - ctloop always passes its connection
    raise RuntimeError("run migrations through 'ctloop db upgrade', not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
