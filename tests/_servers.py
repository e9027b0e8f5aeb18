"""Real servers for the tests that need them (Redis, for the shared rate budget).

``AKOOL_TEST_REDIS_URL`` (``.ci/run`` exports it) names a server to use; else, where the
``redis-server`` binary exists, each test worker starts its own on 127.0.0.1. Without
either the tests skip with the reason, except under ``CI=true``: there they fail, never
silently skip. Each test takes its own account name (a key prefix), so tests in parallel
(pytest-xdist) never share a budget.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_URL_VARIABLE = "AKOOL_TEST_REDIS_URL"
_START_TIMEOUT = 20.0  # seconds for a redis-server to accept connections


def server_missing(reason: str) -> None:
    """Skip, or under CI fail: CI must run every test against real servers."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: servers must be there; .ci/run starts them)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on loopback, owned by a test (which may stop and restart
    it: the port is kept). No persistence: a restart loses every key."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            server_missing("redis-server is not installed (apt-get install redis-server)")
        assert binary is not None
        self.port = free_port()
        self.command = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                        "--appendonly", "no", "--dir", str(workdir), *extra]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start: {self.command}") from None
                time.sleep(0.05)
            else:
                return

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # no persistence: nothing to flush
            self.process.wait()
            self.process = None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server's URL for the whole session (one per xdist worker if started here)."""
    url = os.environ.get(REDIS_URL_VARIABLE)
    if url:
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, started; it may stop and restart it."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def account() -> str:
    """An account name no other test uses: its own keys on a shared server."""
    return f"test-{uuid.uuid4().hex}"
