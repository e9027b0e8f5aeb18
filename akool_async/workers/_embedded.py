"""A queue worker inside your own process, sharing your ``AkoolClient`` (beside a web
app, inside another task queue's worker):

    budget = RedisBudget.from_url(limits_url, account="acme", rate=20, max_jobs=4)
    async with budget, AkoolClient(shared_budget=budget) as client:
        async with Worker(client, queue_url, out_dir=Path("images"),
                          shared_budget=budget) as worker:
            report = await worker.run()   # until the queue is empty, or worker.stop()

``akool-async worker`` is this, with a client of its own and signals wired to ``stop``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import attrs

from .._client import AkoolClient
from .._defaults import DEFAULT_MAX_DOWNLOADS
from .._exceptions import ValidationError
from ..bulk._states import ItemState
from ._drive import JobLeases, QueueDriver
from ._pg_queue import PostgresQueue
from ._worker import WorkerSettings, WorkerStats, run_worker


@attrs.frozen
class WorkerReport:
    """What a worker's run did: the loop's counts (``stats``), the items whose trees it
    drove by how they ended (``done``, ``failed``, ``uncertain``; ``stopped``: stopped with
    the worker, their jobs left running on the server or never created, for the next
    worker), the requests its client
    sent, and whether it was stopped (``stop()``) rather than running out of work."""

    stats: WorkerStats
    items: Mapping[str, int]
    requests: int
    stopped: bool

    @property
    def bad(self) -> int:
        """Items that ended failed or uncertain, or whose driver failed."""
        return (
            self.items.get(ItemState.FAILED.value, 0)
            + self.items.get(ItemState.UNCERTAIN.value, 0)
            + self.stats.failed
        )


class Worker:
    """Claims items from the queue (``queue``: its ``postgresql://`` URL, or a
    ``PostgresQueue`` you opened) and drives each through the follow machine with
    ``client``, saving images under ``out_dir``. ``shared_budget``: the ``RedisBudget`` the
    client was made with, so each tree also holds its jobs as the account's job leases.
    ``settings``: leases, concurrency, ``until_empty`` (False: wait for more work until
    ``stop()``). Raises what stopped it for every item (a refused key, the API gone)."""

    def __init__(self, client: AkoolClient, queue: str | PostgresQueue, *, out_dir: Path,
                 shared_budget: JobLeases | None = None, settings: WorkerSettings | None = None,
                 save_grid: bool = False, job_timeout: float | None = None,
                 downloads: int = DEFAULT_MAX_DOWNLOADS,
                 worker_id: str | None = None) -> None:  # fmt: skip
        if not isinstance(out_dir, Path):
            raise ValidationError("out_dir", out_dir, "a pathlib.Path of a folder")
        if job_timeout is not None and not job_timeout > 0:
            raise ValidationError("job_timeout", job_timeout, "a positive number of seconds")
        self.client, self.out_dir = client, out_dir
        self.settings = settings or WorkerSettings()
        self._given = queue if isinstance(queue, PostgresQueue) else None
        self._url = queue if isinstance(queue, str) else None
        self._options = (shared_budget, save_grid, job_timeout, downloads)
        self._worker_id = worker_id
        self._queue: PostgresQueue | None = None
        self._driver: QueueDriver | None = None
        self._stop = anyio.Event()

    @property
    def queue(self) -> PostgresQueue:
        if self._queue is None:
            raise RuntimeError("use the Worker with 'async with' first")
        return self._queue

    async def __aenter__(self) -> Self:
        if self._given is not None:
            self._queue = self._given
        else:
            assert self._url is not None
            self._queue = await PostgresQueue(self._url, worker_id=self._worker_id).__aenter__()
        await anyio.Path(self.out_dir).mkdir(parents=True, exist_ok=True)
        shared, save_grid, job_timeout, downloads = self._options
        self._driver = QueueDriver(self.client, self._queue, out_dir=self.out_dir,
                                   save_grid=save_grid, job_timeout=job_timeout,
                                   downloads=downloads, leases=shared,
                                   on_fatal=lambda _: self._stop.set())  # fmt: skip
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()
        if self._given is None and self._queue is not None:
            await self._queue.__aexit__(exc_type, exc, tb)
        self._queue = None

    def stop(self) -> None:
        """Claim nothing more and stop the trees running: creates on their way answer
        first (their ids are recorded); items left follow on the next worker."""
        self._stop.set()
        if self._driver is not None:
            self._driver.stop()

    async def run(self) -> WorkerReport:
        queue, driver = self.queue, self._driver
        assert driver is not None
        if self.settings.until_empty:  # a dead worker's expired claims are work left too
            await queue.reap()
        stats = await run_worker(queue, driver, self.settings, stop=self._stop,
                                 requests=lambda: self.client.requests_sent)  # fmt: skip
        if driver.fatal is not None:
            raise driver.fatal
        return WorkerReport(stats, dict(driver.results), self.client.requests_sent, driver.stopping)
