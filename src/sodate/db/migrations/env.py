"""Alembic environment: the engine comes from the caller (`sodate migrate` or the tests)."""

from __future__ import annotations

from alembic import context

from sodate.db.metadata import migrated_metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=migrated_metadata(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
