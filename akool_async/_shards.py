"""httpx's connection pool, split into small pools of two connections each.

httpcore looks at every connection of a pool on every request and every response (for
expiry: an idle connection costs a ``getpeername`` and a ``poll`` each time), so a pool's
CPU per request grows with its size. Polling a fast server with 8 requests in flight, that
look was a third of the client's CPU, and the request rate fell to 0.6 of what 2 in flight
reach (``benchmarks/waiting.py``). Shards of two keep every look short, while the cap on
requests in flight stays the client's.

A request holds a place in one shard for its whole exchange (``HttpxTransport`` gives it
back once the body is read): under the client's cap, no shard ever serves more than two at
once, so none opens more than two connections or waits for one.

Creates go through a pool of their own (``CREATES``) whose idle connections expire twice
as fast: a server closes an idle connection at its own keep-alive timeout, and a request
sent on it just then is lost in the close. For a read that costs a retry; a create would
come back uncertain. So a create never leaves on a connection idle for more than half the
keep-alive expiry, itself well under common servers' timeouts (uvicorn and Node 5 s).
"""

from __future__ import annotations

import httpx

from ._defaults import KEEPALIVE_EXPIRY
from ._gate import Gate

PER_SHARD = 2
SHARD = "akool_async.shard"  # the request extension naming the shard to send on
CREATES = -2  # the shard of creates


class ShardedPool(httpx.AsyncBaseTransport):
    def __init__(self, size: int, keepalive_expiry: float = KEEPALIVE_EXPIRY) -> None:
        count = -(-size // PER_SHARD)
        ssl_context = httpx.create_ssl_context()  # one for all: each costs milliseconds
        limits = httpx.Limits(
            max_connections=size,
            max_keepalive_connections=PER_SHARD,
            keepalive_expiry=keepalive_expiry,
        )
        self._shards = [
            httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits) for _ in range(count)
        ]
        self._places = [Gate(PER_SHARD) for _ in range(count)]  # each shard's connections
        self._creates = httpx.AsyncHTTPTransport(
            verify=ssl_context,
            limits=httpx.Limits(
                max_connections=size,
                max_keepalive_connections=size,
                keepalive_expiry=keepalive_expiry / 2,
            ),
        )

    def take(self) -> int:
        """A shard with a free place, taken; past the cap (which the client never lets
        happen) the first shard, which then opens one more connection rather than make
        anyone wait."""
        for shard, places in enumerate(self._places):
            if places.try_acquire():
                return shard
        return -1

    def give_back(self, shard: int) -> None:
        if shard >= 0:
            self._places[shard].release()

    @property
    def _free(self) -> list[int]:
        """The free places, by shard (for tests and debugging)."""
        return [shard for shard, places in enumerate(self._places) for _ in range(places.free)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard: int = request.extensions.get(SHARD, -1)
        pool = self._creates if shard == CREATES else self._shards[max(shard, 0)]
        response: httpx.Response = await pool.handle_async_request(request)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
        await self._creates.aclose()
