"""Alembic environment: runs on the connection that storage.db.migrate hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import chatplane.storage.models  # noqa: F401  (registers the tables)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through chatplane.storage.db.migrate or `chatplane migrate`")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
