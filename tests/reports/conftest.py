"""The store fixtures of tests/store: every report test runs on SQLite and on PostgreSQL."""

from tests.store.conftest import db_url, engine, store

__all__ = ["db_url", "engine", "store"]
