"""Alembic environment: runs on the connection `por.store.migrate` hands in (online only).

There is no alembic.ini: `por db upgrade` (por.store.migrate.upgrade) builds the Alembic
configuration in code and passes an open connection, so the database URL, its password
and the PostgreSQL search_path come from por's configuration, the same way the store
connects.
"""

from alembic import context

from por.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only por.store.migrate runs this environment
    raise RuntimeError("run migrations with `por db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
