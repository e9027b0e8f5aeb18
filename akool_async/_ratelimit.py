"""One request budget per client, shared by everything it sends: creates, buttons, polls and
token fetches (downloads go to another host and do not count).

A token bucket (GCRA: each request reserves the next slot, so waiters are served in order
without polling) at ``rate`` requests per second with bursts of up to ``burst``. A second
bucket of the same size follows when requests really leave: a loop that stalls wakes many
reserved slots at once, and only as many leave together as a server's bucket would take.
Requests still reach the server's bucket somewhat bunched (the network, a loaded machine,
the server's event loop checking several at once): what left over a stretch of time can
arrive together. So the client keeps two margins. It paces 5% under the rate, so that the
server's bucket refills to full and stays there. And it sends at most half the burst at once
(cold, or after idle): with the other half always left in the server's bucket, requests
sent over up to half the bucket's fill time (``burst / rate``: half a second at 20/s and
20) may arrive together without one being refused. (A fifth of the burst, the margin
before, ran a same-size bucket dry at cold start once 0.35 s of requests bunched.) When the
server throttles anyway (1005, or HTTP 429), the shared rate halves and then recovers
linearly over ``recovery`` seconds: all requests slow down together, instead of each one
backing off alone while the others keep the server saturated. A Retry-After pauses
everyone until it has passed.
"""

from __future__ import annotations

import anyio

from ._arguments import check_count, check_rate
from ._clock import Clock, MonotonicClock, sleep_until

DEFAULT_RATE = 10.0
DEFAULT_BURST = 10
RATE_MARGIN = 0.95
_ROUNDING = 1e-9  # seconds: slots summed from 1/rate steps must not miss "now" by a hair


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int = DEFAULT_BURST,
        *,
        clock: Clock | None = None,
        min_fraction: float = 0.1,
        recovery: float = 30.0,
        max_pause: float = 60.0,
    ) -> None:
        rate = check_rate("rate_limit", rate)
        burst = check_count("rate_burst", burst)
        self.configured_rate = rate * RATE_MARGIN
        self.burst = burst
        self.effective_burst = max(1, burst // 2)  # the other half absorbs bunching
        self.clock = clock or MonotonicClock()
        self._min_rate = self.configured_rate * min_fraction
        self._recovery = recovery
        self._max_pause = max_pause
        self._rate = self.configured_rate
        self._tat = self.clock.now()  # the theoretical arrival time of the next request
        self._left = self._tat  # the same, from when requests actually left
        self._updated = self._tat
        self._calm_after = self._tat  # throttles before this count as the same episode
        self._not_before = self._tat  # a server's Retry-After: nobody goes earlier
        self.throttles = 0

    @property
    def rate(self) -> float:
        """The current rate: the configured one, or less while recovering from throttling."""
        self._recover(self.clock.now())
        return self._rate

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        now = self.clock.now()
        self._recover(now)
        interval = 1.0 / self._rate
        arrival = max(self._tat, now)
        allowed_at = max(arrival - (self.effective_burst - 1) * interval, self._not_before)
        self._tat = reserved_until = max(arrival, allowed_at) + interval
        try:
            if allowed_at > now + _ROUNDING:
                await sleep_until(self.clock, allowed_at)
            # Slots are kept in order above; leaving is paced here on when requests really
            # left. A loop that stalls (a busy process, a GC pause) wakes several slots at
            # once, and they would reach the server as one bunch past its bucket.
            while (not_yet := self._leave(self.clock.now())) is not None:
                await sleep_until(self.clock, not_yet)
        except anyio.get_cancelled_exc_class():
            if self._tat == reserved_until:  # nobody reserved after us: give the slot back
                self._tat -= interval
            raise

    def _leave(self, now: float) -> float | None:
        """Let a request leave now (None) if the departures so far allow it, else say when."""
        interval = 1.0 / self._rate
        earliest = max(self._left - (self.effective_burst - 1) * interval, self._not_before)
        if now + _ROUNDING < earliest:
            return earliest
        self._left = max(self._left, now) + interval
        return None

    def throttled(self, retry_after: float | None = None) -> None:
        """The server said too many requests: slow everyone down (once per episode)."""
        now = self.clock.now()
        self._recover(now)
        if now >= self._calm_after:
            self.throttles += 1
            self._set_rate(max(self._min_rate, self._rate / 2), now)
            # Requests already granted at the old rate will still arrive; one burst's worth
            # of time at the new rate lets them drain before another halving.
            self._calm_after = now + self.burst / self._rate
        if retry_after:
            # Nobody goes before the server's own wait (capped) has passed, then at the rate.
            pause = min(retry_after, self._max_pause)
            self._not_before = max(self._not_before, now + pause)
            self._tat = max(self._tat, self._not_before + (self.effective_burst - 1) / self._rate)

    def _recover(self, now: float) -> None:
        if self._rate < self.configured_rate:
            regained = (now - self._updated) * self.configured_rate / self._recovery
            self._set_rate(min(self.configured_rate, self._rate + regained), now)
        self._updated = now

    def _set_rate(self, rate: float, now: float) -> None:
        """Change the rate, keeping the backlog the same number of requests (not seconds)."""
        if self._tat > now:
            self._tat = now + (self._tat - now) * self._rate / rate
        if self._left > now:
            self._left = now + (self._left - now) * self._rate / rate
        self._rate = rate
