"""Alembic revisions; Alembic ignores this file, setuptools needs it to package the folder."""
