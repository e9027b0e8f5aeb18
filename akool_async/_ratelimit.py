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
The arithmetic (GCRA, departures, throttling, recovery) is ``_gcra``'s, pure; this module
executes it: it reads the clock, sleeps until the slot, gives the slot back on cancel.
With a ``SharedBudget`` (an account's budget that several processes share), a request
takes its local slot first, so that waiters sleep here, then the shared one; a throttle is
reported to both.
"""

from __future__ import annotations

from ._arguments import check_count, check_rate
from ._clock import Clock, SystemClock, sleep_until
from ._defaults import DEFAULT_BURST
from ._gcra import Gcra
from ._shared_budget import SharedBudget

RATE_MARGIN = 0.95


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
        shared: SharedBudget | None = None,
    ) -> None:
        rate = check_rate("rate_limit", rate)
        self.shared = shared
        burst = check_count("rate_burst", burst)
        self.clock = clock or SystemClock()
        self._gcra = Gcra(
            rate * RATE_MARGIN,
            burst,
            now=self.clock.now(),
            min_fraction=min_fraction,
            recovery=recovery,
            max_pause=max_pause,
        )
        self.configured_rate = self._gcra.configured_rate
        self.burst = burst
        self.effective_burst = self._gcra.effective_burst

    @property
    def rate(self) -> float:
        """The current rate: the configured one, or less while recovering from throttling."""
        return self._gcra.rate(self.clock.now())

    @property
    def throttles(self) -> int:
        """Throttling episodes so far."""
        return self._gcra.throttles

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        now = self.clock.now()
        slot = self._gcra.reserve(now)
        try:
            if slot.wait(now):
                await sleep_until(self.clock, slot.at)
            if self.shared is not None:
                await self.shared.acquire()  # the account's budget, after the local gate
            # Slots are kept in order above; leaving is paced here on when requests really
            # left. A loop that stalls (a busy process, a GC pause) wakes several slots at
            # once, and they would reach the server as one bunch past its bucket.
            while (not_yet := self._gcra.leave(self.clock.now())) is not None:
                await sleep_until(self.clock, not_yet)
        except BaseException:  # cancelled, or the shared budget unreachable: nothing sent
            self._gcra.give_back(slot)
            raise

    def throttled(self, retry_after: float | None = None) -> None:
        """The server said too many requests: slow everyone down (once per episode)."""
        self._gcra.throttled(self.clock.now(), retry_after)

    async def report_throttled(self, retry_after: float | None = None) -> None:
        """``throttled``, and the same said to the shared budget (every worker slows)."""
        self.throttled(retry_after)
        if self.shared is not None:
            await self.shared.throttled(retry_after)
