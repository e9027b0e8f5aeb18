"""The default httpx pool, split in shards of two connections: over real HTTP, requests at
the cap spread over the shards, none opens more than two connections, and every place is
given back, whatever happened to the request."""

from __future__ import annotations

import anyio
import httpx
import pytest
import respx

from akool_async import AkoolClient, ConnectError, RetryPolicy
from akool_async._shards import PER_SHARD, ShardedPool
from akool_async._transport import HttpxTransport
from akool_async.emulator import EmulatorConfig, serve_emulator

from .conftest import API_KEY, BASE_URL
from .payloads import CREDIT, ok

ON_ASYNCIO = pytest.mark.parametrize("anyio_backend", ["asyncio"])  # one is enough here


def shards_of(client: AkoolClient) -> ShardedPool:
    transport = client._requester.transport
    assert isinstance(transport, HttpxTransport)
    assert transport._shards is not None
    return transport._shards


def connections(pool: ShardedPool) -> list[int]:
    return [len(shard._pool.connections) for shard in pool._shards]


@ON_ASYNCIO
async def test_requests_at_the_cap_spread_over_shards_of_two() -> None:
    config = EmulatorConfig(instant=True)
    with serve_emulator(config) as akool:
        async with AkoolClient(api_key=config.api_key, base_url=akool.base_url,
                               rate_limit=None, max_in_flight=8) as client:  # fmt: skip
            pool = shards_of(client)
            async with anyio.create_task_group() as tasks:
                for _ in range(400):
                    tasks.start_soon(client.credit_info)
            per_shard = connections(pool)
            free = sorted(pool._free)
    assert akool.emulator.counters.requests["quota/info"] == 400
    assert len(per_shard) == 4
    assert all(1 <= n <= PER_SHARD for n in per_shard)  # all used, none past two
    assert free == sorted(list(range(4)) * PER_SHARD)  # every place given back


@ON_ASYNCIO
async def test_a_failed_request_gives_its_place_back() -> None:
    with serve_emulator(EmulatorConfig(instant=True)) as akool:
        closed_port = akool.base_url  # served now, closed once the block ends
    async with AkoolClient(api_key="k" * 32, base_url=closed_port,
                           retry=RetryPolicy(attempts=1)) as client:  # fmt: skip
        pool = shards_of(client)
        with pytest.raises(ConnectError):
            await client.credit_info()
        assert len(pool._free) == 4 * PER_SHARD


def test_a_given_transport_is_not_sharded() -> None:
    given = HttpxTransport("http://x", transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    assert given._shards is None


def test_a_proxy_from_the_environment_keeps_httpx_own_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httpx routes by HTTPS_PROXY/NO_PROXY only in the pool it builds itself."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert HttpxTransport("https://openapi.akool.com")._shards is None


async def test_a_cookie_the_api_sets_is_sent_back(api: respx.MockRouter) -> None:
    """A load balancer's affinity cookie goes back on the next request, as httpx would."""
    route = api.get(CREDIT)
    route.side_effect = [
        httpx.Response(200, json={"code": 1000, "msg": "OK", "data": {"credit": 1}},
                       headers={"set-cookie": "AWSALB=xyz; Path=/"}),
        ok({"credit": 2}),
    ]  # fmt: skip
    async with AkoolClient(api_key=API_KEY, base_url=BASE_URL, rate_limit=None) as client:
        shards_of(client)  # the direct path
        await client.credit_info()
        await client.credit_info()
    assert "cookie" not in route.calls[0].request.headers
    assert route.calls[1].request.headers["cookie"] == "AWSALB=xyz"
