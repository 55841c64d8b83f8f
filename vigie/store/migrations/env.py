"""Alembic's entry point, run by `vigie.store.migrate` on a connection it already holds
(inside the write lock): there is no alembic.ini to configure."""

from alembic import context

from vigie.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
