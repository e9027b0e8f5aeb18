"""What the client's rate limiter asks of a budget shared with other processes: an
account's requests per second, kept by a server every worker reaches (Redis:
``akool_async.redis_budget``, the ``redis`` extra).

The in-process ``RateLimiter`` stays the front gate: a request first takes its local slot
(so a process's many waiters sleep in memory, not on the server), then the shared one;
a throttle (1005, HTTP 429) that any worker meets is reported so that every worker slows.
No implementation is imported here: the core never imports the extra.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class SharedBudget(Protocol):
    async def acquire(self) -> None:
        """Wait until the shared budget lets one request go; raise
        ``SharedBudgetUnavailableError`` if it cannot say so within its bound (fail closed:
        the request is then not sent)."""
        ...

    async def throttled(self, retry_after: float | None = None) -> None:
        """The server said too many requests: slow every worker of the account down.
        Best effort: never raises for an unreachable budget (the caller's error stands)."""
        ...
