"""Alembic environment: always run in-process with a connection handed over by the store."""

from __future__ import annotations

from alembic import context

from mloop.store._sql._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline SQL generation is not supported
    raise RuntimeError("mloop migrations run through mloop (SqlStore / `mloop db upgrade`).")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
