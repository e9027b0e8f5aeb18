"""``Worker``: the queue worker inside a user's own process, sharing one ``AkoolClient``,
against the emulator over real HTTP and a real PostgreSQL queue: every item's tree
driven once (its follow-ups too), its images on disk byte for byte with host, path and
SHA-256 in the queue; a stopped worker's items finished by the next, nothing paid twice."""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import psycopg
import pytest

from akool_async import AkoolClient, SharedBudgetUnavailableError, ValidationError
from akool_async.emulator import Emulator, EmulatorConfig, Fixed, serve_emulator
from akool_async.redis_budget import RedisBudget
from akool_async.workers import PostgresQueue, Worker, WorkerSettings, queue_status

from ._servers import free_port
from .test_bulk_cli import prompts
from .test_redis_budget import LEAKS_ON_FAILED_CONNECT, failed_connects  # noqa: F401 (fixture)

FAST = EmulatorConfig(time_scale=500, durations=Fixed(30), image_max_side=16)


@contextlib.asynccontextmanager
async def client_of(emulator: Emulator) -> AsyncIterator[AkoolClient]:
    """A client of the emulator over HTTP on loopback, polling at the emulator's pace."""
    with serve_emulator(emulator=emulator) as running:
        async with AkoolClient(api_key=running.api_key, base_url=running.base_url,
                               rate_limit=None,
                               poll_policy=emulator.poll_policy()) as client:  # fmt: skip
            yield client


async def enqueue(url: str, path: Path) -> None:
    async with PostgresQueue(url) as queue:
        await queue.enqueue_file(path)


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


async def test_two_workers_share_one_client_and_drive_every_tree_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two workers in one process on one client drain 8 prompts of 2 images with an
    upscale each: 8 done, 16 + 16 jobs, every image on disk as the emulator serves it,
    recorded with this host and its SHA-256; 0 duplicate creates."""
    await enqueue(postgres_url, prompts(tmp_path / "p.jsonl", 8, batch_quantity=2,
                                        follow_ups=["U1"]))  # fmt: skip
    emulator = Emulator(FAST)
    settings = WorkerSettings(concurrency=3, lease=10)
    reports = []
    async with client_of(emulator) as client:

        async def work(name: str) -> None:
            async with Worker(client, postgres_url, out_dir=tmp_path / name,
                              settings=settings) as worker:  # fmt: skip
                reports.append(await worker.run())

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(work, "a")
            tasks.start_soon(work, "b")
        async with PostgresQueue(postgres_url, create=False) as queue:
            status = await queue_status(queue)
    assert sum(r.items.get("done", 0) for r in reports) == 8
    assert not any(r.bad for r in reports)
    assert status.counts["done"] == 8
    assert emulator.counters.requests["createBySourcePrompt"] == 8
    assert emulator.counters.jobs_created == 32
    assert not emulator.counters.duplicate_creates
    images = rows(postgres_url, "SELECT m.job_id, m.idx, m.path, m.sha256, m.host FROM"
                  " akool_images m WHERE m.idx > 0")  # fmt: skip
    assert len(images) == 32  # 16 batch images, 16 upscales
    for job_id, _index, path, sha256, host in images:
        data = Path(str(path)).read_bytes()
        assert host == socket.gethostname()
        assert hashlib.sha256(data).hexdigest() == sha256
        assert data == emulator.image_bytes(str(job_id))  # one image per job here
        assert Path(str(path)).is_relative_to(tmp_path)


@pytest.mark.long
async def test_a_stopped_worker_leaves_its_trees_to_the_next_without_paying_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    """A worker stopped once its creates were answered (slow jobs): it claims nothing
    more, its items stay submitted (the jobs run on) with their claims released; a second
    worker follows them to the end. Each create sent once."""
    await enqueue(postgres_url, prompts(tmp_path / "p.jsonl", 6))
    emulator = Emulator(EmulatorConfig(time_scale=20, durations=Fixed(30), image_max_side=16))
    async with client_of(emulator) as client:
        first = Worker(client, postgres_url, out_dir=tmp_path / "a",
                       settings=WorkerSettings(concurrency=4))  # fmt: skip

        async def stop_when_created() -> None:
            while emulator.counters.requests["createBySourcePrompt"] < 4:  # noqa: ASYNC110 - no signal
                await anyio.sleep(0.01)  # polling for the point to stop at
            first.stop()

        async with first, anyio.create_task_group() as tasks:
            tasks.start_soon(stop_when_created)
            stopped = await first.run()
        assert stopped.stopped
        assert stopped.items.get("stopped", 0) >= 1
        left = rows(postgres_url, "SELECT state, lease_until FROM akool_items"
                    " WHERE state IS DISTINCT FROM 'done'")  # fmt: skip
        assert left
        assert {state for state, _ in left} <= {None, "submitted"}
        assert all(until is None for _, until in left)  # released, not left to a lease
        async with Worker(client, postgres_url, out_dir=tmp_path / "b") as second:
            report = await second.run()
    assert not report.bad
    assert [state for (state,) in rows(postgres_url, "SELECT state FROM akool_items")] == [
        "done"
    ] * 6
    assert emulator.counters.requests["createBySourcePrompt"] == 6
    assert not emulator.counters.duplicate_creates


@LEAKS_ON_FAILED_CONNECT
@pytest.mark.usefixtures("failed_connects")
async def test_a_budget_out_of_reach_stops_the_worker_and_gives_up_nothing(
    postgres_url: str, account: str, tmp_path: Path
) -> None:
    """The account's job leases on a Redis nobody serves: the worker stops on the first
    item (every item would meet it) with the budget's error, and releases what it claimed
    as it was: pending, not failed (a failed item is never handed out again; a submitted
    one's jobs would be lost), nothing created."""
    await enqueue(postgres_url, prompts(tmp_path / "p.jsonl", 3))
    emulator = Emulator(FAST)
    budget = RedisBudget.from_url(f"redis://127.0.0.1:{free_port()}/0", account=account,
                                  max_jobs=2, unavailable_timeout=0.2)  # fmt: skip
    settings = WorkerSettings(concurrency=2)
    async with (
        budget,
        client_of(emulator) as client,
        Worker(
            client, postgres_url, out_dir=tmp_path / "a", shared_budget=budget, settings=settings
        ) as worker,
    ):
        with pytest.raises(SharedBudgetUnavailableError):
            await worker.run()
    left = rows(postgres_url, "SELECT state, lease_until FROM akool_items")
    assert left == [(None, None)] * 3
    assert emulator.counters.requests["createBySourcePrompt"] == 0


async def test_a_worker_checks_its_arguments_before_anything(tmp_path: Path) -> None:
    async with AkoolClient(api_key="k") as client:
        with pytest.raises(ValidationError, match="out_dir"):
            Worker(client, "postgresql://u@h/db", out_dir=str(tmp_path))  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="job_timeout"):
            Worker(client, "postgresql://u@h/db", out_dir=tmp_path, job_timeout=0)
