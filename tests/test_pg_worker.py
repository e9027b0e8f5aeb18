"""The worker loop on a real PostgreSQL queue: every item driven once across workers, a
driver whose claim is taken over stopped, a failing driver's item given up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import psycopg
import pytest

from akool_async import ValidationError
from akool_async import _journal_protocol as jp
from akool_async._models import ImageJob, ImageStatus
from akool_async.workers import (
    PostgresQueue,
    QueuedItem,
    WorkerSettings,
    queue_status,
    run_worker,
)


async def enqueue(url: str, path: Path, count: int) -> None:
    path.write_text("".join(json.dumps({"prompt": f"take {n}"}) + "\n" for n in range(count)))
    async with PostgresQueue(url) as queue:
        await queue.enqueue_file(path)


async def finish(item: QueuedItem, queue: PostgresQueue) -> None:
    """A driver's records for a tree that went well (the HTTP side is the bulk driver's)."""
    created = ImageJob(id=f"job-{item.claim.fence}-{item.line}", status=ImageStatus.QUEUEING)
    await queue.write(item.claim, [jp.CreateIntent(item.request or {}, item.follow_ups)])
    await queue.write(item.claim, [jp.CreateSettled((created,)), jp.TreeSettled("done", None)])


async def test_two_workers_drive_every_item_once(postgres_url: str, tmp_path: Path) -> None:
    """Two workers of three items at a time drain a queue of 12: each item is driven by
    one of them, once; both say they stopped."""
    await enqueue(postgres_url, tmp_path / "p.jsonl", 12)
    driven: list[str] = []

    async def drive(item: QueuedItem, queue: PostgresQueue) -> None:
        driven.append(item.claim.key)
        await finish(item, queue)

    settings = WorkerSettings(concurrency=3)
    results = []

    async def worker() -> None:
        async with PostgresQueue(postgres_url) as queue:
            results.append(await run_worker(queue, drive, settings, requests=lambda: 7))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(worker)
        tasks.start_soon(worker)
    assert len(driven) == len(set(driven)) == 12
    assert sum(r.finished for r in results) == 12
    assert sum(r.lost + r.failed for r in results) == 0
    async with PostgresQueue(postgres_url) as queue:
        status = await queue_status(queue)
    assert status.counts["done"] == 12
    assert (status.workers_alive, status.workers_seen) == (0, 2)  # stopped, both
    with psycopg.connect(postgres_url) as connection:
        held = connection.execute("SELECT COUNT(*) FROM akool_items WHERE holder IS NOT NULL"
                                  " AND lease_until IS NOT NULL").fetchone()  # fmt: skip
    assert held == (0,)


async def test_a_driver_whose_claim_is_taken_over_is_stopped(
    postgres_url: str, tmp_path: Path
) -> None:
    """Another worker takes the item over (as after a lease lost in a long pause): the
    next renewal fails, the driver is cancelled before it sends anything more, and the
    item stays the new holder's."""
    await enqueue(postgres_url, tmp_path / "p.jsonl", 1)
    started, cancelled = anyio.Event(), anyio.Event()

    async def drive(item: QueuedItem, queue: PostgresQueue) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async with PostgresQueue(postgres_url) as queue:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:

                async def work() -> None:
                    stats = await run_worker(queue, drive, WorkerSettings(lease=0.3))
                    assert (stats.lost, stats.finished, stats.failed) == (1, 0, 0)

                tasks.start_soon(work)
                await started.wait()
                later = time.time() + 3600  # past the worker's lease
                async with PostgresQueue(postgres_url, clock=lambda: later) as thief:
                    with psycopg.connect(postgres_url) as connection:
                        (key,) = connection.execute("SELECT key FROM akool_items").fetchone()
                    stolen = await thief.claim(key, lease=3600)
                    assert stolen is not None
                    await cancelled.wait()
        assert await queue.claim(key, lease=10) is None  # still the thief's


async def test_a_failing_driver_is_counted_and_its_item_given_up(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two items' drivers raise: the worker goes on with the others; each is given up with
    the reason, not handed out again: failed, or uncertain once its intent was written."""
    await enqueue(postgres_url, tmp_path / "p.jsonl", 4)

    async def drive(item: QueuedItem, queue: PostgresQueue) -> None:
        if item.line == 4:  # after its intent: the create may have left
            await queue.write(item.claim, [jp.CreateIntent(item.request or {}, ())])
        if item.line in (2, 4):
            raise RuntimeError("the driver broke")
        await finish(item, queue)

    async with PostgresQueue(postgres_url) as queue:
        stats = await run_worker(queue, drive, WorkerSettings(concurrency=1))
        assert await queue.claim_next(lease=10) is None
    assert (stats.finished, stats.failed, stats.lost) == (2, 2, 0)
    with psycopg.connect(postgres_url) as connection:
        failed = connection.execute("SELECT line, state, error, holder FROM akool_items"
                                    " WHERE state <> 'done' ORDER BY line").fetchall()  # fmt: skip
    why = "the worker's driver failed: RuntimeError: the driver broke"
    assert failed == [(2, "failed", why, None), (4, "uncertain", why, None)]


@pytest.mark.parametrize("field", ["lease", "heartbeat", "reap_every", "idle", "concurrency"])
def test_worker_settings_are_checked(field: str) -> None:
    """A setting of zero is refused, naming it."""
    with pytest.raises(ValidationError, match=field):
        WorkerSettings(**{field: 0})
