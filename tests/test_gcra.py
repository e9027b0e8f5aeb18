"""The rate arithmetic (``_gcra``) as plain calls with ``now`` passed in: no loop, no clock."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from akool_async._gcra import Gcra


def _admit(gcra: Gcra, now: float) -> float:
    """When a request that asks at ``now`` goes, once its slot and the departures allow."""
    slot = gcra.reserve(now)
    at = slot.at if slot.wait(now) else now
    while (later := gcra.leave(at)) is not None:
        at = later
    return at


def _most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t <= start + window) for i, start in enumerate(times)),
        default=0,
    )


def test_cold_start_sends_half_the_burst_at_once() -> None:
    """Cold, half the burst goes at once (the rest is the server's margin), then 1/rate apart."""
    gcra = Gcra(10.0, 6, now=0.0)
    assert gcra.effective_burst == 3
    slots = [gcra.reserve(0.0) for _ in range(6)]
    assert [slot.wait(0.0) for slot in slots] == [False] * 3 + [True] * 3
    assert [slot.at for slot in slots[3:]] == pytest.approx([0.1, 0.2, 0.3])


def test_a_burst_of_one_still_sends_one() -> None:
    """Half of a burst of 1 rounds down, but one request may always go."""
    gcra = Gcra(2.0, 1, now=0.0)
    assert gcra.effective_burst == 1
    assert [gcra.reserve(0.0).at for _ in range(3)] == pytest.approx([0.0, 0.5, 1.0])


def test_an_idle_bucket_refills_to_half_the_burst_only() -> None:
    """After idle the bucket holds half the burst again, never more."""
    gcra = Gcra(10.0, 4, now=0.0)
    for _ in range(4):
        gcra.reserve(0.0)
    waits = [gcra.reserve(100.0).wait(100.0) for _ in range(3)]
    assert waits == [False, False, True]


def test_a_cancelled_slot_is_given_back_only_if_it_was_the_last() -> None:
    """Giving back the last slot frees it; one with a later slot after it changes nothing."""
    gcra = Gcra(10.0, 2, now=0.0)
    gcra.reserve(0.0)
    last = gcra.reserve(0.0)
    gcra.give_back(last)
    assert gcra.reserve(0.0).at == pytest.approx(last.at)
    earlier, later = gcra.reserve(0.0), gcra.reserve(0.0)
    gcra.give_back(earlier)
    assert gcra.reserve(0.0).at == pytest.approx(later.at + 0.1)


def test_a_stalled_loop_lets_only_a_burst_leave_together() -> None:
    """Slots woken late all at once: half the burst leaves, the rest is told when."""
    gcra = Gcra(10.0, 4, now=0.0)
    for _ in range(6):
        gcra.reserve(0.0)
    stalled = 5.0  # every slot was due long before the loop woke
    answers = [gcra.leave(stalled) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] == pytest.approx(stalled + 0.1)


def test_throttling_halves_the_rate_once_per_episode() -> None:
    """A throttle halves the rate; more within a burst's time at the new rate do not."""
    gcra = Gcra(10.0, 10, now=0.0, recovery=1e9)
    gcra.throttled(0.0)
    assert gcra.rate(0.0) == pytest.approx(5.0)
    gcra.throttled(1.9)  # the episode lasts burst / rate = 2 s
    assert gcra.rate(1.9) == pytest.approx(5.0)
    assert gcra.throttles == 1
    gcra.throttled(2.0)
    assert gcra.rate(2.0) == pytest.approx(2.5)
    assert gcra.throttles == 2


def test_throttling_never_goes_below_the_minimum_fraction() -> None:
    """However often throttled, the rate stays at least min_fraction of the configured one."""
    gcra = Gcra(10.0, 1, now=0.0, min_fraction=0.25, recovery=1e9)
    for second in range(20):
        gcra.throttled(float(second * 10))
    assert gcra.rate(200.0) == pytest.approx(2.5)


def test_the_rate_recovers_linearly_over_the_recovery_time() -> None:
    """After a halving, the configured rate is regained per recovery seconds, then capped."""
    gcra = Gcra(10.0, 10, now=0.0, recovery=30.0)
    gcra.throttled(0.0)
    assert gcra.rate(6.0) == pytest.approx(5.0 + 6.0 * 10 / 30)
    assert gcra.rate(15.0) == pytest.approx(10.0)
    assert gcra.rate(100.0) == pytest.approx(10.0)


def test_a_new_rate_keeps_the_backlog_in_requests() -> None:
    """Ten requests queued at 10/s take 1 s; halved, the same ten take 2 s."""
    gcra = Gcra(10.0, 2, now=0.0, recovery=1e9)
    for _ in range(10):
        gcra.reserve(0.0)
    gcra.throttled(0.0)
    assert gcra.reserve(0.0).at == pytest.approx(2.0)


def test_retry_after_holds_everyone_then_goes_at_the_rate() -> None:
    """Nobody goes before a Retry-After has passed; then up to a burst, then at the rate."""
    gcra = Gcra(10.0, 4, now=0.0, recovery=1e9)
    gcra.throttled(0.0, retry_after=3.0)
    slots = [gcra.reserve(0.0) for _ in range(3)]
    assert all(slot.wait(2.99) for slot in slots)
    assert min(slot.at for slot in slots) >= 3.0
    assert gcra.leave(1.0) == pytest.approx(3.0)


def test_retry_after_is_capped() -> None:
    """A server's Retry-After longer than max_pause holds requests for max_pause only."""
    gcra = Gcra(10.0, 2, now=0.0, max_pause=5.0, recovery=1e9)
    gcra.throttled(0.0, retry_after=3600.0)
    assert gcra.reserve(0.0).at == pytest.approx(5.0)


asks = st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=60).map(sorted)
rates = st.floats(min_value=1.0, max_value=100.0)
bursts = st.integers(min_value=1, max_value=20)
windows = st.sampled_from([0.0, 0.05, 0.3, 1.0])


@given(asks, rates, bursts, windows)
def test_never_more_than_rate_times_t_plus_burst(
    times: list[float], rate: float, burst: int, window: float
) -> None:
    """Whenever requests ask, no window t ever sees more than rate * t + burst go."""
    gcra = Gcra(rate, burst, now=0.0)
    went = [_admit(gcra, now) for now in times]
    assert _most_in_window(went, window) <= rate * window + gcra.effective_burst + 1e-6
    assert all(at >= now for at, now in zip(went, times, strict=True))


@given(asks, st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=60, max_size=60),
       rates, bursts, windows)  # fmt: skip
def test_departures_stay_in_bounds_however_the_loop_stalls(
    times: list[float], stalls: list[float], rate: float, burst: int, window: float
) -> None:
    """Slots woken late, many at once: what leaves still fits rate * t + burst."""
    gcra = Gcra(rate, burst, now=0.0)
    slots = [(gcra.reserve(now), now) for now in times]
    left = []
    for (slot, now), stall in zip(slots, stalls, strict=False):
        at = max(slot.at, now) + stall
        while (later := gcra.leave(at)) is not None:
            at = later
        left.append(at)
    assert _most_in_window(left, window) <= rate * window + gcra.effective_burst + 1e-6


events = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=0.5), st.sampled_from(["ask", "429", "1005"])),
    min_size=1,
    max_size=60,
)


@given(events, rates, bursts, windows)
# Recovery after a Retry-After once pulled the slot after the pause back onto it.
@example([(0.0, "429"), (0.0, "ask"), (0.5, "ask")], 7.0, 1, 0.05)
def test_throttles_never_raise_the_rate_above_the_configured_one(
    steps: list[tuple[float, str]], rate: float, burst: int, window: float
) -> None:
    """Throttles, Retry-Afters and recovery interleaved: still at most rate * t + burst."""
    gcra = Gcra(rate, burst, now=0.0, recovery=2.0)
    now, went = 0.0, []
    for gap, kind in steps:
        now += gap
        if kind == "ask":
            went.append(_admit(gcra, now))
        else:
            gcra.throttled(now, retry_after=1.0 if kind == "429" else None)
        assert gcra.rate(now) <= rate + 1e-9
    assert _most_in_window(went, window) <= rate * window + gcra.burst + 1e-6
