"""Database layer: engine and sessions, column types, metadata, migrations."""
