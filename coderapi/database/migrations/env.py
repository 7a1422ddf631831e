"""Alembic environment: migrations always run on a connection handed in by `coderapi.database.migrate`."""

from alembic import context

from coderapi.database.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
