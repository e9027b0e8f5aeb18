"""A worker's loop around a driver: claim items from the queue, keep their leases alive,
beat its heart, reap what dead workers left, and give each item up when its driver ends.

What an item's tree does is the driver's (``drive(item, journal)``, the bulk driver over
``PostgresQueue``): this loop only decides which item, for how long, and stops a driver
whose claim was taken over (a renewal raised ``ClaimLostError``) before it can send
anything more: its scope is cancelled, and the journal refuses its writes anyway.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import attrs

from .._defaults import (
    DEFAULT_BULK_CONCURRENCY,
    WORKER_HEARTBEAT,
    WORKER_IDLE,
    WORKER_LEASE,
    WORKER_REAP_EVERY,
)
from .._exceptions import ClaimLostError, ValidationError
from ._pg_database import QueueError
from ._pg_queue import PostgresQueue, QueuedItem

logger = logging.getLogger("akool_async.workers")

Driver = Callable[[QueuedItem, PostgresQueue], Awaitable[None]]


@attrs.frozen
class WorkerSettings:
    """``lease`` seconds per claim, renewed every ``lease / 3``; a heartbeat every
    ``heartbeat`` seconds, a reap every ``reap_every``; ``concurrency`` items at once; with
    ``until_empty`` the worker claims nothing more once the queue has nothing for it (and
    ends when its items do), else it looks again every ``idle`` seconds."""

    lease: float = WORKER_LEASE
    heartbeat: float = WORKER_HEARTBEAT
    reap_every: float = WORKER_REAP_EVERY
    concurrency: int = DEFAULT_BULK_CONCURRENCY
    until_empty: bool = True
    idle: float = WORKER_IDLE

    def __attrs_post_init__(self) -> None:
        for name in ("lease", "heartbeat", "reap_every", "idle"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise ValidationError(name, value, "a positive number of seconds")
        if not (isinstance(self.concurrency, int) and self.concurrency >= 1):
            raise ValidationError("concurrency", self.concurrency, "a whole number, 1 or more")


@attrs.define
class WorkerStats:
    """What one worker did: items its driver finished, items it lost to another worker
    (their drivers stopped), items it gave up unfinished (its driver failed), reaps."""

    finished: int = 0
    lost: int = 0
    failed: int = 0
    reaped_pending: int = 0
    reaped_uncertain: int = 0


async def run_worker(
    queue: PostgresQueue,
    drive: Driver,
    settings: WorkerSettings | None = None,
    *,
    requests: Callable[[], int] = lambda: 0,
    stop: anyio.Event | None = None,
) -> WorkerStats:
    """Run items from ``queue`` through ``drive`` until the queue is empty (or forever,
    ``until_empty=False``); ``requests()`` is what the heartbeat reports (requests sent).
    Once ``stop`` is set nothing more is claimed (the items running end as their drivers
    do: stopping those is the driver's)."""
    settings = settings or WorkerSettings()
    stop = stop or anyio.Event()
    stats = WorkerStats()
    slots = anyio.Semaphore(settings.concurrency)
    await queue.register_worker()
    try:
        async with anyio.create_task_group() as background:
            background.start_soon(_every, settings.heartbeat, lambda: queue.heartbeat(requests()))
            background.start_soon(_every, settings.reap_every, lambda: _reap(queue, stats))
            async with anyio.create_task_group() as items:
                while not stop.is_set():
                    await slots.acquire()
                    if stop.is_set():
                        slots.release()
                        break
                    item = await queue.claim_next(lease=settings.lease)
                    if item is None:
                        slots.release()
                        if settings.until_empty:
                            break  # the items running end before the task group does
                        with anyio.move_on_after(settings.idle):  # look again later
                            await stop.wait()
                        continue
                    items.start_soon(functools.partial(_run_item, queue, drive, item,
                                                       settings=settings, stats=stats,
                                                       slots=slots))  # fmt: skip
            background.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await queue.stop_worker()
            except QueueError as exc:  # the heartbeat's silence says it as well
                logger.warning("the queue: %s", exc)
    return stats


async def _every(seconds: float, action: Callable[[], Awaitable[object]]) -> None:
    """``action`` now and every ``seconds``; a queue that cannot be reached for a while
    is logged, not fatal (the claims' leases say what a long outage means)."""
    while True:
        try:
            await action()
        except QueueError as exc:
            logger.warning("the queue: %s", exc)
        await anyio.sleep(seconds)


async def _reap(queue: PostgresQueue, stats: WorkerStats) -> None:
    reaped = await queue.reap()
    stats.reaped_pending += reaped.pending
    stats.reaped_uncertain += len(reaped.uncertain)


async def _run_item(queue: PostgresQueue, drive: Driver, item: QueuedItem, *,
                    settings: WorkerSettings, stats: WorkerStats,
                    slots: anyio.Semaphore) -> None:  # fmt: skip
    """Drive one item under its claim, renewed every third of the lease; the item is
    given up when the driver ends, however it ends: a driver's failure is logged, counted
    and recorded on the item (``give_up``), not raised: it does not stop the worker."""
    lost, failure = False, ""
    try:
        async with anyio.create_task_group() as tasks:

            async def renew(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                nonlocal lost
                claim = item.claim
                task_status.started()
                while True:
                    await anyio.sleep(settings.lease / 3)
                    try:
                        claim = await queue.renew(claim, lease=settings.lease)
                    except ClaimLostError:
                        lost = True
                        tasks.cancel_scope.cancel()  # stop the driver: it may send nothing
                        return

            await tasks.start(renew)
            await drive(item, queue)
            tasks.cancel_scope.cancel()
    except Exception as exc:
        if _holds(exc, ClaimLostError):
            lost = True
        else:
            failure = f"the worker's driver failed: {_describe(exc)}"
            logger.warning("item %s: %s", item.claim.key, failure)
    finally:
        stats.lost += lost
        stats.failed += bool(failure) and not lost
        stats.finished += not (lost or failure)
        with anyio.CancelScope(shield=True):
            if failure and not lost:
                await queue.give_up(item.claim, failure)
            else:
                await queue.release(item.claim)
        slots.release()


def _holds(error: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return any(_holds(inner, kind) for inner in error.exceptions)
    return isinstance(error, kind)


def _describe(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"
