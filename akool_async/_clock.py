"""Time for the rate limiter and the poll scheduler, injectable so that their tests run on
a fake clock with no real waiting."""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def wait(self, event: anyio.Event, until: float | None) -> None:
        """Return when ``event`` is set or the clock reaches ``until`` (None: no limit)."""
        ...


class MonotonicClock:
    """Real time."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, event: anyio.Event, until: float | None) -> None:
        if until is None:
            await event.wait()
            return
        with anyio.move_on_after(until - time.monotonic()):
            await event.wait()


async def sleep_until(clock: Clock, until: float) -> None:
    """Sleep on ``clock`` until ``until``."""
    if until > clock.now():
        await clock.wait(anyio.Event(), until)
