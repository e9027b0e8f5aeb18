"""The one clock: monotonic and wall readings from one object, the emulator's time built on it."""

from __future__ import annotations

import anyio

from akool_async import MonotonicClock, SystemClock
from akool_async._clock import SYSTEM_CLOCK, wall_time
from akool_async.emulator._config import EmulatorConfig
from akool_async.emulator._state import Backend, ScaledClock


class ManualClock:
    """A wall clock that moves only when told."""

    def __init__(self, monotonic: float, wall: float) -> None:
        self.t, self.epoch = monotonic, wall

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.epoch

    async def wait(self, event: anyio.Event, until: float | None) -> None:
        await event.wait()

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.epoch += seconds


class MonotonicOnly:
    """A clock written against the old ``Clock``: no ``wall()``."""

    def now(self) -> float:
        return 5.0

    async def wait(self, event: anyio.Event, until: float | None) -> None:
        await event.wait()


def test_wall_time_reads_the_clocks_wall() -> None:
    """A clock with ``wall()`` gives the wall time: nothing reads the system's instead."""
    assert wall_time(ManualClock(1.0, 1_700_000_000.0)) == 1_700_000_000.0


def test_a_clock_without_wall_is_paired_with_the_systems() -> None:
    """An older ``Clock`` (``now``/``wait`` only) still works: wall time is the system's."""
    before = SYSTEM_CLOCK.wall()
    assert before <= wall_time(MonotonicOnly()) <= SYSTEM_CLOCK.wall()


def test_the_old_name_is_the_system_clock() -> None:
    """``MonotonicClock`` is kept for importers; it is ``SystemClock``."""
    assert MonotonicClock is SystemClock
    clock = SystemClock()
    assert clock.now() <= clock.now()


def test_the_emulators_scaled_time_runs_on_the_clock_it_is_given() -> None:
    """Emulated epoch seconds start at the real clock's wall time and run ``time_scale``
    times faster than its monotonic readings; a resumed clock goes on from the saved time."""
    real = ManualClock(100.0, 1_700_000_000.0)
    scaled = ScaledClock(30.0, real)
    assert scaled() == 1_700_000_000.0
    real.advance(2.0)
    assert scaled() == 1_700_000_060.0
    assert scaled.wall_time(1_700_000_060.0) == 1_700_000_002.0
    scaled.resume_from(1_800_000_000.0)
    real.advance(1.0)
    assert scaled() == 1_800_000_030.0


def test_the_emulators_rate_limit_runs_on_its_real_clock() -> None:
    """The emulator's per-key bucket refills on the injected clock's monotonic time."""
    real = ManualClock(0.0, 1_700_000_000.0)
    backend = Backend(EmulatorConfig(seed=1, rate_limit=1.0, rate_burst=1), real=real)
    assert backend.clock() == 1_700_000_000.0
    account = backend.default_account
    assert backend.within_rate_limit(account)
    assert not backend.within_rate_limit(account)
    real.advance(1.0)
    assert backend.within_rate_limit(account)
