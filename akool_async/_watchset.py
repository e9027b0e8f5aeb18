"""Jobs followed together by one waiter (``wait``, ``as_completed``, a generation, a bulk
item, or a workflow of a user's own through ``AkoolClient.watch()``): outcomes as they
come from the shared scheduler, with per-job deadlines."""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Self

import anyio

from ._clock import Clock, wall_time
from ._exceptions import JobTimeoutError
from ._models import ImageJob
from ._polling import Result

if TYPE_CHECKING:  # made by the client: the scheduler is not part of the public surface
    from ._polling import PollScheduler


class WatchSet:
    """Jobs followed together: ``next()`` gives each one's outcome as it comes.

    Get one from ``AkoolClient.watch()``, which follows the jobs on the client's shared
    poll scheduler (and its webhook callbacks): ``add`` jobs (more at any time, e.g. the
    children of a button press), ``add_result`` a job already over, ``await next()`` for
    ``(job_id, outcome)`` in the order they end, until ``idle``. An outcome is the job's
    final ``ImageJob`` (completed or failed: check ``status``; a completed one that a
    callback brought has no buttons: ``AkoolClient.with_buttons``) or the exception that
    stopped following it. ``close()`` (or leaving ``async with``) stops polling the jobs
    still ``pending``.

    Each job may have its own deadline; when it passes, the job's outcome is a
    ``JobTimeoutError`` (the job goes on remotely; wait on its id again to resume), or,
    for a grid completed but for its parts, the job as it is with ``parts_missing``.
    """

    def __init__(self, scheduler: PollScheduler) -> None:
        self._scheduler = scheduler
        self._pending: set[str] = set()
        self._ready: deque[tuple[str, Result, float]] = deque()
        self._deadlines: list[tuple[float, str]] = []
        self._arrived = anyio.Event()
        self.timed_out: set[str] = set()  # left running on the server, past their deadline
        self.last_arrival = 0.0  # epoch seconds the outcome last returned by next() arrived

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def clock(self) -> Clock:
        """The clock of the scheduler (and its client): deadlines run on it."""
        return self._scheduler.clock

    @property
    def pending(self) -> frozenset[str]:
        """The ids of jobs added and not yet ended (nor timed out)."""
        return frozenset(self._pending)

    def add(
        self, job_id: str, *, age: float | None = 0.0, timeout: float | None = None,
        grid: bool | None = None,
    ) -> None:  # fmt: skip
        """Follow ``job_id``; one already followed is left as it is.

        ``age``: seconds since it was created (the first poll comes when a job of that age
        is likely done), None: poll at once (an old job). ``timeout``: seconds until its
        outcome is a ``JobTimeoutError``. ``grid``: whether it is a grid job (v3 first
        result, V result), None: as its create or its answers say."""
        if job_id in self._pending:
            return
        self._pending.add(job_id)
        if timeout is not None:
            heapq.heappush(self._deadlines, (self.clock.now() + timeout, job_id))
        self._scheduler.watch(job_id, self._deliver, age=age, grid=grid)

    def is_grid(self, job: ImageJob) -> bool:
        """Whether ``job`` is a grid (known from its create or as its answers say)."""
        return self._scheduler.is_grid(job)

    def add_result(self, job_id: str, result: Result) -> None:
        """A job already known to be over: its outcome comes without a poll."""
        if job_id in self._pending:
            self._scheduler.unwatch(job_id, self._deliver)
        self._pending.add(job_id)
        self._deliver(job_id, result)

    @property
    def idle(self) -> bool:
        """Nothing pending, nothing ready."""
        return not self._pending and not self._ready

    def _deliver(self, job_id: str, result: Result) -> None:
        if job_id in self._pending:
            self._pending.discard(job_id)
            self._ready.append((job_id, result, wall_time(self.clock)))
            self._arrived.set()

    async def next(self) -> tuple[str, Result]:
        """``(job_id, outcome)`` of the next job to end; ``LookupError`` when nothing is
        pending or ready (``idle``)."""
        clock = self.clock
        while not self._ready:
            if not self._pending:
                raise LookupError("no job left to wait for")
            self._expire(clock.now())
            if self._ready:
                break
            self._arrived = anyio.Event()
            await clock.wait(self._arrived, self._deadlines[0][0] if self._deadlines else None)
        job_id, result, self.last_arrival = self._ready.popleft()
        return job_id, result

    def _expire(self, now: float) -> None:
        """Past its deadline, a job completed but for its grid's parts is delivered as it
        is (``parts_missing``); any other times out. The former first: a waiter that stops
        at the first timeout (``as_completed``) still gets them."""
        late: list[str] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id = heapq.heappop(self._deadlines)
            if job_id in self._pending:
                late.append(job_id)
        for job_id in late:
            if (partial := self._scheduler.parts_pending(job_id)) is not None:
                self._scheduler.unwatch(job_id, self._deliver)
                self._deliver(job_id, partial)
        for job_id in late:
            if job_id in self._pending:
                self._scheduler.unwatch(job_id, self._deliver)
                self.timed_out.add(job_id)
                self._deliver(job_id, JobTimeoutError(
                    "the job did not finish in time; it goes on on the server", job_id=job_id
                ))  # fmt: skip

    def close(self) -> tuple[str, ...]:
        """Stop watching; the ids of jobs left running remotely (pending or timed out)."""
        for job_id in self._pending:
            self._scheduler.unwatch(job_id, self._deliver)
        left = tuple(sorted(self._pending | self.timed_out))
        self._pending.clear()
        self._ready.clear()
        return left
