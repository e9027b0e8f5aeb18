"""Helpers for tests running ``akool-async worker`` processes on a real queue against one
emulator served over HTTP (the emulator's counters are the tests' witness)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from .test_bulk_cli import prompts

__all__ = ["prompts"]

CLI = [sys.executable, "-m", "akool_async"]
CREATE = "createBySourcePrompt"
# Fast for a time-scaled emulator: polls every 20 ms, 2 s leases (a killed worker's items
# are taken over soon), the rate out of the way unless a test sets one.
FAST_WORKER = ["--rate", "500", "--concurrency", "6", "--poll-floor", "0.02", "--lease", "2"]


def cli(
    env: dict[str, str], *arguments: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *arguments], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def start_worker(env: dict[str, str], url: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "worker", "--queue", url, "--out", str(out), "-q",
                             *FAST_WORKER, *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql, params).fetchall()


def states(url: str) -> dict[str, str | None]:
    return dict(rows(url, "SELECT key, state FROM akool_items"))


def leases_running(url: str) -> int:
    return int(rows(url, "SELECT COUNT(*) FROM akool_items WHERE lease_until >"
                    " extract(epoch FROM clock_timestamp())")[0][0])  # fmt: skip
