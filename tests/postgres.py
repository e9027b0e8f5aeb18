"""A real PostgreSQL server for the queue's tests, and a schema of its own for each test.

``AKOOL_TEST_POSTGRES_URL`` (``.ci/run`` starts a server and sets it) is used when set;
else a throwaway cluster is started here (``initdb`` + ``pg_ctl`` on loopback, as the
``postgres`` user when run as root) and stopped at the end of the session; else the tests
skip, saying why. Under ``CI=true`` they fail instead: CI must never pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._servers import free_port, server_missing

ENV = "AKOOL_TEST_POSTGRES_URL"


def _unavailable(reason: str) -> None:
    server_missing(f"no PostgreSQL server: {reason} (set {ENV} or install PostgreSQL 15)")


def _as_postgres(command: list[str]) -> list[str]:
    """``command`` as the postgres user when we are root (initdb refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        _as_postgres(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """A cluster in a temporary folder on 127.0.0.1 and a free port: its URL."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        _unavailable("initdb/pg_ctl are not on PATH")
    assert initdb is not None
    assert pg_ctl is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _unavailable("running as root without runuser to become the postgres user")
    folder = Path(tempfile.mkdtemp(prefix="akool-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    made = _run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    if made.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"initdb failed: {made.stderr.decode(errors='replace').strip()[-300:]}")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = _run([pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w",
                    "start"])  # fmt: skip
    if started.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"pg_ctl start failed: {started.stderr.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections work in ``schema`` (libpq's ``options`` parameter), named
    after it (``application_name``: a test can find its own connections)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    query = [(k, v) for k, v in query if k not in ("options", "application_name")]
    query += [("options", f"-c search_path={schema}"), ("application_name", schema)]
    return urllib.parse.urlunsplit(
        parts._replace(query=urllib.parse.urlencode(query, quote_via=urllib.parse.quote))
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for this session (see the module's docstring)."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'akool-async[postgres]')")
    url = os.environ.get(ENV)
    if url:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as exc:
            _unavailable(f"{ENV} is set but cannot be reached: {type(exc).__name__}")
        yield url
        return
    with throwaway_cluster() as started:
        yield started


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections see a fresh, empty schema of this test's own (dropped
    after it), so tests run side by side under pytest-xdist."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    yield with_schema(postgres_server, schema)
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")
