"""What every benchmark needs: an emulator in its own process (on its own core where
`taskset` exists), the client pinned to another core, and the emulator's admin data."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import httpx

SERVER_CORE, CLIENT_CORE = 0, 1
NO_PIN = "BENCH_NO_PIN"  # set: no process is pinned (as a user's client runs)


@attrs.frozen
class EmulatorProcess:
    base_url: str
    api_key: str
    client_id: str
    pid: int

    def cpu_seconds(self) -> float:
        """The emulator process's CPU time so far (user + system), from /proc."""
        return process_cpu_seconds(self.pid)

    def counters(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/_emulator/counters", timeout=60).json()  # type: ignore[no-any-return]

    def jobs(self) -> dict[str, dict[str, Any]]:
        return httpx.get(f"{self.base_url}/_emulator/jobs", timeout=60).json()  # type: ignore[no-any-return]


def pin_client() -> str:
    """Run this process on its own core, away from the server's; says what was done."""
    if os.environ.get(NO_PIN):
        return f"no pinning ({NO_PIN} set): client, its threads and server share the cores"
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {CLIENT_CORE})
        return f"client pinned to core {CLIENT_CORE}, server to core {SERVER_CORE}"
    return "no pinning (single core or no sched_setaffinity)"


@contextlib.contextmanager
def emulator_process(*arguments: str) -> Iterator[EmulatorProcess]:
    """``akool-async emulator --port 0 ARGS`` in its own process, ready when yielded."""
    command = [sys.executable, "-m", "akool_async", "emulator", "--port", "0", *arguments]
    with server_process(command, lines=3) as settings:
        yield EmulatorProcess(
            settings["AKOOL_BASE_URL"],
            settings["AKOOL_API_KEY"],
            settings["AKOOL_CLIENT_ID"],
            int(settings["PID"]),
        )


@contextlib.contextmanager
def fast_server(*arguments: str) -> Iterator[str]:
    """The minimal JSON server (``_fastserver.py``) in its own process: its base URL."""
    script = os.path.join(os.path.dirname(__file__), "_fastserver.py")
    with server_process([sys.executable, script, *arguments], lines=1) as settings:
        yield f"http://127.0.0.1:{settings['PORT']}"


@contextlib.contextmanager
def server_process(command: list[str], *, lines: int) -> Iterator[dict[str, str]]:
    """Run a server on the server core; the ``NAME=value`` lines it prints when ready."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1 and not os.environ.get(NO_PIN):
        command = ["taskset", "-c", str(SERVER_CORE), *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(lines))
        yield {**settings, "PID": str(process.pid)}  # taskset execs: the same process
    finally:
        process.terminate()
        process.wait(timeout=30)


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
