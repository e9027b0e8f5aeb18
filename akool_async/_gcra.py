"""The rate arithmetic of the client's request budget, as plain functions of ``now``.

No I/O and no clock here: ``_ratelimit.RateLimiter`` passes ``now`` in, sleeps until the
times this module returns, and gives a slot back when its waiter is cancelled.

- GCRA: each request reserves the next slot (``reserve(now)`` says when it may go), so
  waiters are served in order without polling. At most ``effective_burst`` go at once,
  then one per ``1 / rate`` seconds.
- Cold start: ``effective_burst`` is half the burst (at least 1): the other half stays in
  the server's bucket to absorb requests that arrive bunched.
- Departures: a second bucket of the same size, on when requests really left
  (``leave(now)``): a stalled loop that wakes many reserved slots at once lets only a
  burst's worth leave together.
- Throttled (the server said too many requests): the rate halves (not below
  ``min_fraction`` of the configured one), once per episode: throttles within one burst's
  time at the new rate count as the same episode. It then recovers linearly, the
  configured rate regained per ``recovery`` seconds. A changed rate keeps the backlog the
  same number of requests (not seconds).
- A Retry-After (capped at ``max_pause``) holds every request until it has passed; then
  they go at the rate, up to a burst at once.
"""

from __future__ import annotations

import attrs

__all__ = ["Gcra", "Slot"]

ROUNDING = 1e-9  # seconds: slots summed from 1/rate steps must not miss "now" by a hair


@attrs.frozen
class Slot:
    """A reserved slot: the request may go at ``at``; ``until`` and ``interval`` let the
    slot be given back (``Gcra.give_back``) if its request never goes."""

    at: float
    until: float
    interval: float

    def wait(self, now: float) -> bool:
        """Whether the request must wait before going."""
        return self.at > now + ROUNDING


class Gcra:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        now: float,
        min_fraction: float = 0.1,
        recovery: float = 30.0,
        max_pause: float = 60.0,
    ) -> None:
        self.configured_rate = rate
        self.burst = burst
        self.effective_burst = max(1, burst // 2)  # the other half absorbs bunching
        self._min_rate = rate * min_fraction
        self._recovery = recovery
        self._max_pause = max_pause
        self._rate = rate
        self._tat = now  # the theoretical arrival time of the next request
        self._left = now  # the same, from when requests actually left
        self._updated = now
        self._calm_after = now  # throttles before this count as the same episode
        self._not_before = now  # a server's Retry-After: nobody goes earlier
        self.throttles = 0

    def rate(self, now: float) -> float:
        """The rate at ``now``: the configured one, or less while recovering."""
        self._recover(now)
        return self._rate

    def reserve(self, now: float) -> Slot:
        """Reserve the next slot for a request that asks at ``now``."""
        self._recover(now)
        interval = 1.0 / self._rate
        arrival = max(self._tat, now)
        allowed_at = max(arrival - (self.effective_burst - 1) * interval, self._not_before)
        self._tat = until = max(arrival, allowed_at) + interval
        return Slot(allowed_at, until, interval)

    def give_back(self, slot: Slot) -> None:
        """The slot's request will not go: free the slot if nobody reserved after it."""
        if self._tat == slot.until:
            self._tat -= slot.interval

    def leave(self, now: float) -> float | None:
        """Let a request leave now (None) if the departures so far allow it, else say when."""
        interval = 1.0 / self._rate
        earliest = max(self._left - (self.effective_burst - 1) * interval, self._not_before)
        if now + ROUNDING < earliest:
            return earliest
        self._left = max(self._left, now) + interval
        return None

    def throttled(self, now: float, retry_after: float | None = None) -> None:
        """The server said too many requests: slow everyone down (once per episode)."""
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
        """Change the rate, keeping the backlog the same number of requests (not seconds).

        A Retry-After's pause is time, not requests: only the backlog past it is rescaled,
        or a faster rate would pull slots granted after the pause back onto it."""
        start = max(now, self._not_before)
        if self._tat > start:
            self._tat = start + (self._tat - start) * self._rate / rate
        if self._left > start:
            self._left = start + (self._left - start) * self._rate / rate
        self._rate = rate
