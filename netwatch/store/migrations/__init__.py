"""Alembic migrations of the NetWatch store (run from code by netwatch.store.migrate)."""
