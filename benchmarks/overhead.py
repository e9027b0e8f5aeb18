"""The client's CPU per request against raw httpx, and the aiohttp transport's throughput.

Against the minimal fast server (``_fastserver.py``, its own core) that answers every
request with a completed job's envelope, four contenders each make the same requests from
the same number of long-lived workers (default 4: httpx's best concurrency), in
interleaved rounds (medians reported):

- raw httpx: ``httpx.AsyncClient.get`` + ``json.loads`` (the baseline of issue 7);
- akool httpx: ``client.info_by_model_id`` (request building, auth, rate limiting, the
  envelope, cattrs structuring, logging) on the default transport;
- raw aiohttp: ``session.get`` + ``read`` + ``json.loads``;
- akool aiohttp: ``client.info_by_model_id`` on ``transport="aiohttp"``.

Goals (issue 7): akool httpx's CPU per call at most 1.10x raw httpx's; akool aiohttp at
least 4x akool httpx's requests/s.

    python benchmarks/overhead.py [--requests 5000] [--workers 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import anyio
import httpx
from _common import fast_server, pin_client  # benchmarks/ is on sys.path

from akool_async import AkoolClient

JOB_ID = "6650a1b2c3d4e5f6a7b8c9d0"
PATH = "/api/open/v3/content/image/infobymodelid"
KEY = "sk-bench-0123456789abcdef0123456789abcdef"
Call = Callable[[], Awaitable[object]]
UNBOUND = 1e9  # the rate limiter runs (its cost is counted) but never waits


async def timed(call: Call, requests: int, workers: int) -> tuple[float, float]:
    """(requests/s, CPU µs per request) of ``requests`` calls from ``workers`` tasks."""
    per_worker = requests // workers

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    wall, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tasks:
        for _ in range(workers):
            tasks.start_soon(worker)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = per_worker * workers
    return done / wall, 1e6 * cpu / done


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(pin_client())
    print(f"{args.requests} GETs per contender per round, {args.workers} workers, "
          f"{args.rounds} rounds (medians)")  # fmt: skip
    with fast_server() as base_url:
        limits = httpx.Limits(max_connections=args.workers)
        async with (
            httpx.AsyncClient(base_url=base_url, limits=limits) as raw_httpx,
            aiohttp.ClientSession(base_url) as raw_aiohttp,
            AkoolClient(api_key=KEY, base_url=base_url, rate_limit=UNBOUND) as akool_httpx,
            AkoolClient(
                api_key=KEY, base_url=base_url, rate_limit=UNBOUND, transport="aiohttp"
            ) as akool_aiohttp,
        ):
            params = {"image_model_id": JOB_ID}
            headers = {"x-api-key": KEY}

            async def httpx_get() -> object:
                response = await raw_httpx.get(PATH, params=params, headers=headers)
                return json.loads(response.content)

            async def aiohttp_get() -> object:
                async with raw_aiohttp.get(PATH, params=params, headers=headers) as response:
                    return json.loads(await response.read())

            contenders: dict[str, Call] = {
                "raw httpx": httpx_get,
                "akool httpx": lambda: akool_httpx.info_by_model_id(JOB_ID),
                "raw aiohttp": aiohttp_get,
                "akool aiohttp": lambda: akool_aiohttp.info_by_model_id(JOB_ID),
            }
            for call in contenders.values():  # warm up: connections, caches, imports
                await timed(call, 200, args.workers)
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
            for _ in range(args.rounds):
                for name, call in contenders.items():
                    runs[name].append(await timed(call, args.requests, args.workers))
    figures = {
        name: (statistics.median(r for r, _ in got), statistics.median(c for _, c in got))
        for name, got in runs.items()
    }
    for name, (rate, cpu) in figures.items():
        print(f"{name:>14}: {rate:8,.0f} requests/s | {cpu:6,.0f} µs CPU/request")
    ratio = figures["akool httpx"][1] / figures["raw httpx"][1]
    print(f"akool httpx CPU/request vs raw httpx: x{ratio:.2f} (goal <= 1.10)")
    ratio = figures["akool aiohttp"][1] / figures["raw aiohttp"][1]
    print(f"akool aiohttp CPU/request vs raw aiohttp: x{ratio:.2f}")
    ratio = figures["akool aiohttp"][0] / figures["akool httpx"][0]
    print(f"akool aiohttp requests/s vs akool httpx: x{ratio:.2f} (goal >= 4)")
    ratio = figures["raw aiohttp"][0] / figures["raw httpx"][0]
    print(f"raw aiohttp requests/s vs raw httpx: x{ratio:.2f}")


if __name__ == "__main__":
    anyio.run(main)
