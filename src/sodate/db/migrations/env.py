"""Alembic environment: the engine comes from the caller (`sodate migrate` or the tests)."""

from __future__ import annotations

from alembic import context

from sodate.db.metadata import migrated_metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration rebuilds a table (a copy, then a drop of the old one), and with
        # foreign keys on, the drop deletes the rows that reference the table by ON DELETE
        # CASCADE. SQLite ignores this pragma inside a transaction, so it goes to the driver's
        # connection before one begins; the connection is discarded afterwards, so that none
        # returns to the pool without its checks.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=migrated_metadata(connection.dialect.name),
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                raise RuntimeError(f"the migration left rows whose references dangle: {broken}")
        connection.commit()
    finally:
        if sqlite:
            connection.invalidate()
