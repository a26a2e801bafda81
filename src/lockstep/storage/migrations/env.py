"""Alembic environment: runs with the connection handed over by ``storage.migrate``."""

from __future__ import annotations

from alembic import context

from lockstep.storage.rows import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
