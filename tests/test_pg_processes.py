"""The queue with real worker processes on one PostgreSQL server: each item is taken by
exactly one of them, and a worker killed while holding items leaves them to the reaper,
which never makes a create that may have left pending again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from akool_async.workers import PostgresQueue, Reaped

CLAIMER = [sys.executable, "-m", "tests.pg_claimer"]
ROOT = Path(__file__).resolve().parent.parent


def start(mode: str, url: str, backend: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLAIMER, mode, url, backend], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def enqueue_file(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"take {n}"}) + "\n" for n in range(count)))
    return path


async def test_worker_processes_take_each_item_exactly_once(
    postgres_url: str, tmp_path: Path, anyio_backend: str
) -> None:
    """Four processes draining one queue of 60 items at once: every item is taken, none
    twice (the keys they printed, and one claim's fence on each item)."""
    async with PostgresQueue(postgres_url) as queue:
        await queue.enqueue_file(enqueue_file(tmp_path / "p.jsonl", 60))
    workers = [start("drain", postgres_url, anyio_backend) for _ in range(4)]
    taken: list[str] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        taken += [line.removeprefix("took ") for line in out.splitlines()]
    with psycopg.connect(postgres_url) as connection:
        items = connection.execute("SELECT key, fence, state FROM akool_items").fetchall()
    assert len(taken) == len(set(taken)) == 60
    assert set(taken) == {key for key, _, _ in items}
    assert {(fence, state) for _, fence, state in items} == {(1, "done")}


async def test_a_killed_holder_leaves_its_items_to_the_reaper(
    postgres_url: str, tmp_path: Path, anyio_backend: str
) -> None:
    """A worker SIGKILLed holding two items, one with its create's intent recorded: while
    its leases run nobody else gets them; once expired, the reaper makes the sent one
    uncertain (never handed out again) and gives the other back."""
    async with PostgresQueue(postgres_url) as queue:
        await queue.enqueue_file(enqueue_file(tmp_path / "p.jsonl", 3))
    holder = start("hold", postgres_url, anyio_backend)
    assert holder.stdout is not None
    sent = holder.stdout.readline().split()[-1]
    claimed = holder.stdout.readline().split()[-1]
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    async with PostgresQueue(postgres_url) as live:
        third = await live.claim_next(lease=60)  # the leases (2 s) may run yet: only the third
        assert third is not None
        assert third.claim.key not in (sent, claimed)
        await live.release(third.claim)
    later = time.time() + 3600  # a clock past the dead worker's leases
    async with PostgresQueue(postgres_url, clock=lambda: later) as reaper:
        assert await reaper.reap() == Reaped(pending=1, uncertain=(sent,))
        handed = [await reaper.claim_next(lease=60) for _ in range(3)]
    assert {item.claim.key for item in handed if item} == {claimed, third.claim.key}
    assert handed[2] is None
    with psycopg.connect(postgres_url) as connection:
        states = dict(connection.execute("SELECT key, state FROM akool_items").fetchall())
    assert states[sent] == "uncertain"
