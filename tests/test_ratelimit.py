"""The shared rate budget, on a fake clock: pacing, bursts, throttling, recovery."""

from __future__ import annotations

import itertools
import math

import anyio
import anyio.lowlevel
import pytest

from akool_async import SharedBudgetUnavailableError
from akool_async._ratelimit import RATE_MARGIN, RateLimiter

from .fakes import FakeClock


async def _times(limiter: RateLimiter, clock: FakeClock, count: int) -> list[float]:
    granted: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        granted.append(clock.now())

    async with clock.autojump(), anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return granted


def test_keeps_a_margin_under_the_configured_rate() -> None:
    """The client paces 5% under the rate it is given, to leave the server headroom."""
    limiter = RateLimiter(100, burst=10, clock=FakeClock())
    assert limiter.rate == pytest.approx(95)
    assert limiter.effective_burst == 5  # half the burst: the rest absorbs bunching


async def test_paces_at_rate_after_a_burst() -> None:
    """A burst goes at once, then one request per 1/rate seconds, in order."""
    clock = FakeClock()
    limiter = RateLimiter(10, burst=5, clock=clock)
    granted = sorted(await _times(limiter, clock, 25))
    effective_burst = limiter.effective_burst
    assert granted[:effective_burst] == [0.0] * effective_burst
    gaps = [
        b - a
        for a, b in zip(granted[effective_burst - 1 :], granted[effective_burst:], strict=False)
    ]
    assert all(gap == pytest.approx(1 / (10 * RATE_MARGIN)) for gap in gaps)


async def test_never_more_than_rate_over_any_window() -> None:
    """Over any window, grants never exceed the configured burst plus rate x window."""
    clock = FakeClock()
    limiter = RateLimiter(50, burst=10, clock=clock)
    granted = sorted(await _times(limiter, clock, 500))
    for i, start in enumerate(granted):
        for window in (0.1, 0.5, 1.0):
            inside = sum(1 for t in granted[i:] if t < start + window)
            assert inside <= 10 + 50 * window + 1e-9


async def test_a_stalled_loop_does_not_release_its_backlog_at_once() -> None:
    """Slots reserved before a stall all fall due when the loop wakes; they still leave
    no faster than the rate and one burst, counted from when requests really left."""
    clock = FakeClock()
    limiter = RateLimiter(100, burst=10, clock=clock)
    left: list[float] = []
    all_left = anyio.Event()

    async def one() -> None:
        await limiter.acquire()
        left.append(clock.now())
        if len(left) == 30:
            all_left.set()

    async with anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        assert len(left) == limiter.effective_burst  # the rest reserved later slots
        clock.advance(0.2)  # nothing ran for 0.2 s: 19 slots have passed
        async with clock.autojump():
            await all_left.wait()
    after = [t for t in left if t >= 0.2]
    assert after.count(0.2) <= limiter.effective_burst
    for i, start in enumerate(left):
        inside = sum(1 for t in left[i:] if t < start + 0.1)
        assert inside <= limiter.effective_burst + limiter.rate * 0.1 + 1e-9


async def test_throttle_halves_once_per_episode_then_recovers() -> None:
    """A burst of throttle signals halves the rate once; it then climbs back linearly."""
    clock = FakeClock()
    limiter = RateLimiter(20, burst=4, clock=clock, recovery=10)
    full = 20 * RATE_MARGIN
    for _ in range(5):
        limiter.throttled()
    assert limiter.rate == pytest.approx(full / 2)
    assert limiter.throttles == 1
    clock.advance(5)
    assert limiter.rate == pytest.approx(full)
    limiter.throttled()
    clock.advance(0.3)
    limiter.throttled()  # within the calm period (one burst at the new rate): same episode
    assert limiter.throttles == 2
    clock.advance(0.2)
    limiter.throttled()  # a new episode once the calm period has passed
    assert limiter.throttles == 3
    assert limiter.rate == pytest.approx(full / 4, abs=1)


async def test_rate_never_drops_below_its_floor() -> None:
    """However many throttle episodes, the rate stays at 10% of the configured one."""
    clock = FakeClock()
    limiter = RateLimiter(10, burst=2, clock=clock, recovery=1e12)
    for _ in range(50):
        limiter.throttled()
        clock.advance(60)  # past any calm period; recovery is negligible here
    assert limiter.throttles == 50
    assert limiter.rate == pytest.approx(1.0 * RATE_MARGIN)


async def test_retry_after_pauses_everyone() -> None:
    """After a Retry-After of 5 s, no request is granted before 5 s have passed."""
    clock = FakeClock()
    limiter = RateLimiter(100, burst=10, clock=clock)
    limiter.throttled(retry_after=5)
    granted = await _times(limiter, clock, 10)
    assert min(granted) >= 5


async def test_cancelled_waiter_gives_its_slot_back() -> None:
    """A waiter cancelled before its slot does not leave a hole in the schedule."""
    clock = FakeClock()
    limiter = RateLimiter(1, burst=1, clock=clock)
    await limiter.acquire()  # the burst
    with anyio.move_on_after(0):  # cancelled at once (fake clock does not move)
        await limiter.acquire()
    granted = await _times(limiter, clock, 1)
    assert granted == [pytest.approx(1 / RATE_MARGIN)]


def test_bad_settings_are_refused() -> None:
    """A rate that is not positive, or a burst under one, is refused."""
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(5, burst=0)


async def test_a_throttle_mid_backlog_does_not_release_a_burst() -> None:
    """After the burst is spent, halving the rate grants nothing more at once."""
    clock = FakeClock()
    limiter = RateLimiter(10, burst=10, clock=clock)
    for _ in range(limiter.effective_burst):
        await limiter.acquire()
    limiter.throttled()
    granted = await _times(limiter, clock, 4)
    assert min(granted) > 0
    gaps = [b - a for a, b in itertools.pairwise([0.0, *sorted(granted)])]
    assert all(gap >= 1 / limiter.rate - 1e-9 for gap in gaps[1:])


async def test_requests_already_waiting_respect_a_later_retry_after() -> None:
    """Waiters who reserved slots before a Retry-After still wait it out, then go paced."""
    clock = FakeClock()
    limiter = RateLimiter(10, burst=2, clock=clock)
    granted: list[float] = []
    all_granted = anyio.Event()

    async def one() -> None:
        await limiter.acquire()
        granted.append(clock.now())
        if len(granted) == 6:
            all_granted.set()

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        assert granted == [0.0]  # the burst (less its reserve) went at once
        limiter.throttled(retry_after=5)
        async with clock.autojump():
            await all_granted.wait()  # blocked, not spinning: time jumps only when all are
    later = sorted(granted[1:])
    assert min(later) >= 5
    assert all(b - a >= 1 / limiter.rate - 1e-9 for a, b in itertools.pairwise(later))


async def test_retry_after_is_capped() -> None:
    """A day-long Retry-After pauses no longer than max_pause."""
    clock = FakeClock()
    limiter = RateLimiter(10, burst=1, clock=clock, max_pause=30)
    limiter.throttled(retry_after=86400)
    granted = await _times(limiter, clock, 1)
    assert 30 <= granted[0] < 40


def _server_rejections(departures: list[float], rate: float, burst: int, bunch: float) -> int:
    """Rejections by a server's token bucket (``burst`` tokens, ``rate`` per second, full at
    the start) when the network delivers requests bunched: every request that left within
    one ``bunch``-long window arrives together at that window's end, the worst a loaded
    machine does to requests sent ``bunch`` seconds apart."""
    worst = 0
    for phase in (k * bunch / 10 for k in range(10)):
        arrivals = sorted(math.ceil((t - phase) / bunch) * bunch + phase for t in departures)
        tokens, last, rejected = float(burst), arrivals[0], 0
        for at in arrivals:
            tokens = min(float(burst), tokens + (at - last) * rate)
            last = at
            if tokens >= 1 - 1e-9:
                tokens -= 1
            else:
                rejected += 1
        worst = max(worst, rejected)
    return worst


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # pure arithmetic on a fake clock
@pytest.mark.parametrize(("rate", "burst"), [(20, 20), (10, 10), (50, 20), (5, 5), (100, 3)])
async def test_a_same_size_server_bucket_never_runs_dry_at_cold_start(
    rate: int, burst: int
) -> None:
    """200 requests at once on a cold client, delivered bunched by up to half the server
    bucket's fill time (at 20/s and 20 a loaded machine brought 27 within 0.35 s): a server
    bucket of the same size and rate never runs dry, at the start or later."""
    clock = FakeClock()
    limiter = RateLimiter(rate, burst=burst, clock=clock)
    departures = await _times(limiter, clock, 200)
    for fraction in (0.1, 0.35, 0.5):
        bunch = fraction * burst / rate
        assert _server_rejections(departures, rate, burst, bunch) == 0, bunch


class RecordingBudget:
    """A SharedBudget double: counts asks, records throttles, fails while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.asks = 0
        self.throttles: list[float | None] = []

    async def acquire(self) -> None:
        if self.down:
            raise SharedBudgetUnavailableError("the shared budget is down")
        self.asks += 1

    async def throttled(self, retry_after: float | None = None) -> None:
        self.throttles.append(retry_after)


async def test_a_shared_budget_is_asked_after_the_local_slot() -> None:
    """The shared budget is asked once the local slot is due; if it fails, the local slot
    is given back (nothing was sent); throttles are reported to both."""
    clock = FakeClock()
    shared = RecordingBudget()
    limiter = RateLimiter(1, burst=2, clock=clock, shared=shared)  # one at once, then 1/s
    shared.down = True
    with pytest.raises(SharedBudgetUnavailableError):
        await limiter.acquire()
    shared.down = False
    async with clock.autojump():
        await limiter.acquire()  # the failed request's slot came back: no wait
        assert (clock.now(), shared.asks) == (0.0, 1)
        await limiter.acquire()  # then the local rate, before the shared budget is asked
        assert clock.now() == pytest.approx(1 / RATE_MARGIN)
        assert shared.asks == 2
    await limiter.report_throttled(3.0)
    assert (shared.throttles, limiter.throttles) == ([3.0], 1)
