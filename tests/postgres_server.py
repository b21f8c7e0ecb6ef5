"""A throwaway PostgreSQL cluster on a free loopback port, for the stores' ARCHIVIST_DB_URL mode.

Debian's server binaries (`make test` installs the `postgresql` package) run as the `postgres`
user when the tests run as root, as in CI: PostgreSQL refuses to run as root.  The cluster lives
in a temporary folder owned by that user, trusts every connection from 127.0.0.1, and is started
once per test session; each test module gets a database of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.server import free_port

PG_BIN = Path(os.environ.get("ARCHIVIST_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresServer:
    def __init__(self, durable: bool = False) -> None:
        """durable: fsync on, as in production (benchmarks); tests run without it."""
        self.durable = durable
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="archivist-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        self._databases = 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        # fsync off: a test cluster need not survive a power cut, and 2 shared cores are slow.
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} {'' if self.durable else '-F'} "
                   "-c max_connections=200 -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def fresh_database(self) -> str:
        self._databases += 1
        return self.create_database(f"test_{self._databases}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (install Debian's "
                    "`postgresql` package; `make test` does)")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database for this test module."""
    name = re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])[:60]
    return postgres_server.create_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """Run the test on both backends: None (SQLite files in the index folder, the default), then
    an empty PostgreSQL database of its own (pass it as the db_url setting)."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_server").fresh_database()
