"""Alembic's environment for the state database, run programmatically by runner/store/migrate.py
(no alembic.ini): the caller passes an open SQLAlchemy connection as `config.attributes["connection"]`
and the migrations run inside the caller's transaction. Offline (SQL script) mode is not supported."""

from __future__ import annotations

from alembic import context

from runner.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
