"""The package's one concurrency gate: ``Gate(capacity)`` lets ``capacity`` holders in at
once and serves waiters by priority (lowest first; first come, first served among equals).

Every cap is one: requests in flight (``Requester.in_flight``, all priorities equal), the
transports' downloads at once, a shard's two connections (``_shards``, taken without
waiting), and bulk's downloads (oldest job first: closest to its 7-day expiry).

Cheaper than ``anyio.CapacityLimiter``, whose ``acquire`` passes through the event loop
twice even when a token is free (a cancellation check, then a shielded checkpoint) and
keeps per-borrower bookkeeping: that measured at 40-90 µs of CPU per request under real
I/O (``benchmarks/overhead.py``), more than everything else the client adds. Here a free
place is taken without a pass through the event loop: the request checkpoints soon enough,
on the wire. (One checkpoint used to stay because without it requests reached a server
whose limit equals ours bunched past its bucket; the rate limiter now paces requests on
when they really leave.) A released place goes straight to the first waiter.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

import anyio


class Gate:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a gate needs at least one place")
        self.total = capacity
        self.free = capacity
        self._waiters: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    @property
    def busy(self) -> int:
        return self.total - self.free

    def try_acquire(self) -> bool:
        """Take a free place if there is one (and nobody waits for it); never waits."""
        if self.free and not self._waiters:
            self.free -= 1
            return True
        return False

    async def acquire(self, priority: float = 0.0) -> None:
        """Take a place, waiting behind those of lower ``priority`` (and equal ones that
        came first) when none is free."""
        if self.free and not self._waiters:
            self.free -= 1
            return
        handed = anyio.Event()
        entry = (priority, next(self._order), handed)
        heapq.heappush(self._waiters, entry)
        try:
            await handed.wait()  # release() hands its place straight to the first waiter
        except BaseException:
            if handed.is_set():
                self.release()  # handed a place while being cancelled: pass it on
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        if self._waiters:
            heapq.heappop(self._waiters)[2].set()
        else:
            self.free += 1

    @asynccontextmanager
    async def slot(self, priority: float = 0.0) -> AsyncIterator[None]:
        """Hold a place for the block, served by ``priority`` (lowest first)."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
