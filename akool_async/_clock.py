"""The package's one source of time: monotonic seconds for intervals and deadlines, wall
(epoch) seconds for timestamps, and waiting, from one injectable object. Nothing else in
the package reads ``time`` (``tests/test_layers.py`` checks it), so a test gives every
part of the client (and the emulator) the same fake clock, and no policy test waits.

It imports nothing from the package: every layer may read the clock, the emulator too.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    """What the client needs of a clock. A clock may also have ``wall()`` (epoch seconds,
    see ``WallClock``); one without it is paired with the system's wall time."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def wait(self, event: anyio.Event, until: float | None) -> None:
        """Return when ``event`` is set or the clock reaches ``until`` (None: no limit)."""
        ...


class WallClock(Clock, Protocol):
    """A clock that also tells the time of day."""

    def wall(self) -> float:
        """Epoch seconds (timestamps: a job's age, a callback's time, a journal row)."""
        ...


class SystemClock:
    """Real time: ``time.monotonic`` and ``time.time``."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def wait(self, event: anyio.Event, until: float | None) -> None:
        if until is None:
            await event.wait()
            return
        with anyio.move_on_after(until - time.monotonic()):
            await event.wait()


MonotonicClock = SystemClock  # its name before wall time joined it, kept for importers
SYSTEM_CLOCK = SystemClock()


def wall_time(clock: Clock) -> float:
    """Epoch seconds on ``clock``: its ``wall()``, or the system's for a clock without one
    (a ``Clock`` written before wall time was part of it)."""
    wall = getattr(clock, "wall", None)
    return float(wall()) if callable(wall) else SYSTEM_CLOCK.wall()


async def sleep_until(clock: Clock, until: float) -> None:
    """Sleep on ``clock`` until ``until``."""
    if until > clock.now():
        await clock.wait(anyio.Event(), until)
