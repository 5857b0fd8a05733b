"""Fixtures shared by every test package: the private PostgreSQL cluster."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

# Unix socket only (listen_addresses=''): the port just names the socket file in our own dir.
PG_PORT = 15401
BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class PgCluster:
    """A private PostgreSQL cluster listening on a unix socket in a temp dir."""

    socket_dir: Path
    port: int
    databases: itertools.count[int]

    def url(self, database: str) -> str:
        """SQLAlchemy URL of a database in this cluster."""
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def admin(self) -> AsyncEngine:
        """An autocommit engine on the maintenance database (CREATE/DROP DATABASE)."""
        return create_async_engine(
            self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found (Debian: apt-get install postgresql); "
            "scripts/bootstrap.sh installs them"
        )
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """initdb + pg_ctl start as the postgres user; stopped and removed even when tests fail."""
    bin_dir = _pg_bin()
    # A short path: unix socket paths are limited to ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix="nw-pg-"))
    data = base / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    options = (
        f"-k {base} -p {PG_PORT} -c listen_addresses='' "
        # Throwaway data: durability off makes CREATE DATABASE and commits fast.
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
    )
    pg_ctl = [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "--no-sync", "--no-instructions", "-E", "UTF8", "--no-locale"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        subprocess.run(
            [*pg_ctl, "-l", str(base / "server.log"), "-w", "-t", "30", "-o", options, "start"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield PgCluster(socket_dir=base, port=PG_PORT, databases=itertools.count(1))
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60
            )
        shutil.rmtree(base, ignore_errors=True)
