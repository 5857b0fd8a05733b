"""The store fixtures of tests/store: every report test runs on SQLite and on PostgreSQL; the
notifier's real SMTP server (aiosmtpd, STARTTLS, AUTH) for the report mail."""

from tests.notify.conftest import ca, ca_file, server_tls, smtp_factory
from tests.store.conftest import db_url, engine, store

__all__ = ["ca", "ca_file", "db_url", "engine", "server_tls", "smtp_factory", "store"]
