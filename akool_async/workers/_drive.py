"""The bulk runner's tree driver (``bulk/_tree.TreeDriver``) as a worker's driver: one
queued item's tree through THE follow machine, journalled in the PostgreSQL queue under
the worker's claim, its images saved under the worker's own output folder (each image's
host, path and SHA-256 recorded by the queue).

With a shared budget (``RedisBudget``) each tree holds its jobs in flight as job leases
of the account (``job_lease``) while it runs: every worker of the account together stays
under the plan's concurrent jobs.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from .. import _journal_protocol as jp
from .._client import AkoolClient
from .._converter import structure, unstructure
from .._defaults import DEFAULT_MAX_DOWNLOADS
from .._exceptions import AkoolError, SharedBudgetUnavailableError
from .._requests import SourcePromptRequest
from ..bulk._gates import Budget, PriorityGate
from ..bulk._input import BulkItem
from ..bulk._results import BulkStats
from ..bulk._tree import Sending, TreeDriver
from ._pg_queue import PostgresQueue, QueuedItem

STOPPED = "stopped"  # a tree stopped with its worker: the next worker takes it on


class JobLeases(Protocol):
    """What a tree needs of a shared budget: ``RedisBudget``'s jobs in flight."""

    max_jobs: int | None

    def job_lease(self, jobs: int = 1) -> contextlib.AbstractAsyncContextManager[None]: ...


class _TreeJournal:
    """The queue as the tree driver's journal: ``FollowJournal`` plus what a resumed tree
    reads back (saved files on THIS host only: another worker's disk is not ours)."""

    def __init__(self, queue: PostgresQueue) -> None:
        self.queue = queue

    async def claim(self, key: str, *, lease: float) -> jp.Claim | None:
        return await self.queue.claim(key, lease=lease)

    async def renew(self, claim: jp.Claim, *, lease: float) -> jp.Claim:
        return await self.queue.renew(claim, lease=lease)

    async def write(self, claim: jp.Claim, entries: Any) -> None:
        await self.queue.write(claim, entries)

    async def history(self, claim: jp.Claim) -> jp.History:
        return await self.queue.history(claim)

    async def release(self, claim: jp.Claim) -> None:
        await self.queue.release(claim)

    async def saved_files(self, key: str) -> dict[tuple[str, int], tuple[str, str]]:
        host = self.queue.host

        def run(connection: Any) -> dict[tuple[str, int], tuple[str, str]]:
            rows = connection.execute(
                "SELECT m.job_id, m.idx, m.path, m.sha256 FROM akool_images m JOIN akool_jobs j"
                " USING (job_id) WHERE j.item_key = %s AND m.host = %s AND m.path IS NOT NULL"
                " AND m.sha256 IS NOT NULL",
                (key, host),
            ).fetchall()
            return {(job_id, int(idx)): (path, sha) for job_id, idx, path, sha in rows}

        return await self.queue.database.run(run)

    async def job_details(self, key: str) -> dict[str, tuple[float | None, float | None,
                                                             str | None]]:  # fmt: skip
        def run(connection: Any) -> dict[str, tuple[float | None, float | None, str | None]]:
            rows = connection.execute(
                "SELECT job_id, created, credits, error FROM akool_jobs WHERE item_key = %s",
                (key,),
            ).fetchall()
            return {job_id: (created, credits, error) for job_id, created, credits, error in rows}

        return await self.queue.database.run(run)


class QueueDriver:
    """``drive(item, queue)`` for ``run_worker``: the item's tree, created (a new item)
    or resumed from what the queue recorded (an item a worker left while following it).

    ``stop()`` stops every tree (new ones do not start): creates on their way are let
    answer (their ids are recorded), the jobs go on on the server and their items stay
    ``submitted`` for the next worker to follow. ``fatal`` is the first error every other
    request would meet too (a refused key, the API unreachable): the worker stops on it.
    """

    def __init__(self, client: AkoolClient, queue: PostgresQueue, *, out_dir: Path,
                 save_grid: bool = False, job_timeout: float | None = None,
                 downloads: int = DEFAULT_MAX_DOWNLOADS, leases: JobLeases | None = None,
                 on_fatal: Callable[[AkoolError], None] | None = None) -> None:  # fmt: skip
        self.client, self.out_dir = client, out_dir
        self.journal = _TreeJournal(queue)
        self.budget = Budget(None, 0.0)  # credits are the account's: no cap per worker
        self.downloads = PriorityGate(downloads)
        self.stats = BulkStats()
        self.save_grid, self.job_timeout = save_grid, job_timeout
        self.sending = Sending()
        self.unrecorded: list[str] = []  # (the SQLite journal's failure only; unused here)
        self.leases = leases
        self.results: Counter[str] = Counter()  # items' ends, by state; "stopped"
        self.fatal: AkoolError | None = None
        self._on_fatal = on_fatal
        self.on_fatal: Callable[[AkoolError], None] = self._fatal
        self._trees: set[anyio.CancelScope] = set()
        self.stopping = False

    def payload(self, item: BulkItem) -> dict[str, object]:
        return dict(unstructure(item.request))

    def _fatal(self, error: AkoolError) -> None:
        if self.fatal is None:
            self.fatal = error
            if self._on_fatal is not None:
                self._on_fatal(error)
        self.stop()

    def stop(self) -> None:
        self.stopping = True
        self.sending.stop()
        for scope in self._trees:
            scope.cancel()

    async def __call__(self, queued: QueuedItem, queue: PostgresQueue) -> None:
        item = bulk_item(queued)
        with anyio.CancelScope() as scope:
            self._trees.add(scope)
            try:
                if self.stopping:
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()
                try:
                    async with self._lease(item):
                        history = (None if queued.state is None
                                   else await queue.history(queued.claim))  # fmt: skip
                        result = await TreeDriver(self, item, queued.claim).run(history)
                except SharedBudgetUnavailableError as exc:
                    # The account's budget is out of reach for every item alike: stop,
                    # this item released as it was (given up, a paid one would be lost).
                    self._fatal(exc)
                    await anyio.lowlevel.checkpoint()  # the stop cancels this scope
                    raise
                self.results[result.state.value] += 1
            finally:
                self._trees.discard(scope)
        if scope.cancelled_caught:
            self.results[STOPPED] += 1

    @contextlib.asynccontextmanager
    async def _lease(self, item: BulkItem) -> AsyncIterator[None]:
        """The tree's jobs in flight at most: its batch, then each image's follow-ups at
        once (capped by the account's own cap: one tree never waits for more than all)."""
        leases = self.leases
        if leases is None or leases.max_jobs is None:
            yield
            return
        batch = item.request.batch_quantity
        jobs = min(batch * max(1, len(item.follow_ups)), leases.max_jobs)
        async with leases.job_lease(jobs):
            yield


def bulk_item(queued: QueuedItem) -> BulkItem:
    """The queued item as the tree driver's input (its request as it was enqueued)."""
    request = structure(queued.request or {}, SourcePromptRequest, path="$.request")
    return BulkItem(queued.line or 0, queued.claim.key, queued.user_id, request,
                    queued.follow_ups)  # fmt: skip
